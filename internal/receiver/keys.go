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
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/secretcache"
)

// keyCache finds webhook signing keys in Secrets. The shared Secret cache reads a Secret
// again as soon as the manager's metadata cache sees it change; a signature that no key
// verifies reads it again at once (the metadata cache may lag a rotation by a watch event),
// at most once per minRefresh, so that a flood of bad signatures costs the API server one
// read per Secret per minRefresh.
type keyCache struct {
	secrets    *secretcache.Cache
	minRefresh time.Duration
}

// keySource is where signing keys are: one key of a Secret, or every key when key is empty.
type keySource struct {
	secret types.NamespacedName
	key    string
}

// verify reports whether a key of source signed body, reading the Secret again when no
// known key did. The error is that of the Secret's last read: a caller that finds nothing
// verified answers 503 rather than 401 when a key may have been missed, so that Nango
// retries.
func (c *keyCache) verify(ctx context.Context, source keySource, sigs nango.WebhookSignatures, body []byte) (bool, error) {
	if keys, _ := c.keys(ctx, source, false); sigs.Verify(body, keys...) {
		return true, nil
	}
	refreshed, err := c.keys(ctx, source, true)
	return sigs.Verify(body, refreshed...), err
}

// keys answers the signing keys of source, read again from the API server when refresh
// is set. A Secret that does not exist holds no keys; on any other error the keys read
// before come with it, since a key that verified a minute ago is more likely right than none.
func (c *keyCache) keys(ctx context.Context, source keySource, refresh bool) ([]string, error) {
	var data map[string][]byte
	var err error
	if refresh {
		data, err = c.secrets.Refresh(ctx, source.secret, c.minRefresh)
	} else {
		data, err = c.secrets.Data(ctx, source.secret)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		err = fmt.Errorf("read webhook signing keys from Secret %s: %w", source.secret, err)
	}
	if source.key != "" {
		if value := trimmed(data[source.key]); value != "" {
			return []string{value}, err
		}
		return nil, err
	}
	keys := make([]string, 0, len(data))
	for _, value := range data {
		if value := trimmed(value); value != "" {
			keys = append(keys, value)
		}
	}
	return keys, err
}

// trimmed is a key as Nango sends it: keys pasted into a Secret often end in a newline;
// Nango's never do.
func trimmed(value []byte) string {
	return strings.TrimSpace(string(value))
}
