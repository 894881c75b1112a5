/*
Copyright 2026 The nango-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package receiver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nango-operator/nango-operator/internal/nango"
)

// keyCache holds the values of the Secrets that hold webhook signing keys, read straight
// from the API server (the manager's cache keeps only the metadata of Secrets). A value is
// reused for ttl; a signature that no cached key verifies reads the Secret again, at most
// once per minRefresh, so that a rotated key verifies at once while a flood of bad
// signatures costs the API server one read per Secret per minRefresh.
type keyCache struct {
	reader     client.Reader
	ttl        time.Duration
	minRefresh time.Duration
	now        func() time.Time

	mu      sync.Mutex
	secrets map[types.NamespacedName]*cachedSecret
}

// cachedSecret is the last read of one Secret. Its own lock makes concurrent requests wait
// for one read instead of each sending theirs.
type cachedSecret struct {
	mu        sync.Mutex
	data      map[string]string // trimmed values by key; nil when the Secret does not exist
	err       error             // the last read's error, other than NotFound
	fetchedAt time.Time         // zero before the first read
}

func newKeyCache(reader client.Reader, ttl, minRefresh time.Duration) *keyCache {
	return &keyCache{
		reader:     reader,
		ttl:        ttl,
		minRefresh: minRefresh,
		now:        time.Now,
		secrets:    map[types.NamespacedName]*cachedSecret{},
	}
}

// keySource is where signing keys are: one key of a Secret, or every key when key is empty.
type keySource struct {
	secret types.NamespacedName
	key    string
}

// verify reports whether a key of source signed body, reading the Secret again when no
// cached key did (if the last read is older than minRefresh). The error is that of the
// Secret's last read: a caller that finds nothing verified answers 503 rather than 401
// when a key may have been missed, so that Nango retries.
func (c *keyCache) verify(ctx context.Context, source keySource, sigs nango.WebhookSignatures, body []byte) (bool, error) {
	if keys, _ := c.keys(ctx, source, false); sigs.Verify(body, keys...) {
		return true, nil
	}
	refreshed, err := c.keys(ctx, source, true)
	return sigs.Verify(body, refreshed...), err
}

// keys answers the signing keys of source: a read of its Secret when the cached one is
// older than ttl, or (refresh) older than minRefresh.
func (c *keyCache) keys(ctx context.Context, source keySource, refresh bool) ([]string, error) {
	entry := c.entry(source.secret)
	entry.mu.Lock()
	defer entry.mu.Unlock()

	age := c.now().Sub(entry.fetchedAt)
	due := entry.fetchedAt.IsZero() || age >= c.ttl || ((refresh || entry.err != nil) && age >= c.minRefresh)
	if due {
		c.read(ctx, source.secret, entry)
	}
	if source.key != "" {
		if value := entry.data[source.key]; value != "" {
			return []string{value}, entry.err
		}
		return nil, entry.err
	}
	keys := make([]string, 0, len(entry.data))
	for _, value := range entry.data {
		if value != "" {
			keys = append(keys, value)
		}
	}
	return keys, entry.err
}

func (c *keyCache) entry(name types.NamespacedName) *cachedSecret {
	c.mu.Lock()
	defer c.mu.Unlock()
	entry, ok := c.secrets[name]
	if !ok {
		entry = &cachedSecret{}
		c.secrets[name] = entry
	}
	return entry
}

// read reads a Secret into entry. A Secret that does not exist holds no keys; on any other
// error the keys read before are kept, since a key that verified a minute ago is more
// likely right than none.
func (c *keyCache) read(ctx context.Context, name types.NamespacedName, entry *cachedSecret) {
	entry.fetchedAt = c.now()
	secret := &corev1.Secret{}
	err := c.reader.Get(ctx, name, secret)
	switch {
	case apierrors.IsNotFound(err):
		entry.data, entry.err = nil, nil
	case err != nil:
		entry.err = fmt.Errorf("read webhook signing keys from Secret %s: %w", name, err)
	default:
		data := make(map[string]string, len(secret.Data))
		for key, value := range secret.Data {
			// Keys pasted into a Secret often end in a newline; Nango's never do.
			data[key] = strings.TrimSpace(string(value))
		}
		entry.data, entry.err = data, nil
	}
}
