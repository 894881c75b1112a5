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

// Package secretcache keeps the data of the Secrets the operator reads: the Nango secret
// keys and sink URLs NangoSyncs name, and the webhook signing keys. The manager caches only
// the metadata of Secrets, so that it never holds every Secret of the cluster in memory;
// the data of a Secret is read from the API server once per resourceVersion the metadata
// cache reports, and kept until that changes. The controller and the webhook receiver of
// one process share one Cache.
package secretcache

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Cache answers the data of Secrets. It is safe for concurrent use.
type Cache struct {
	metadata client.Reader
	api      client.Reader
	now      func() time.Time

	mu   sync.Mutex
	kept map[client.ObjectKey]*kept
}

// kept is the last read of one Secret. Its own lock makes concurrent callers wait for one
// read instead of each sending theirs.
type kept struct {
	mu              sync.Mutex
	resourceVersion string
	data            map[string][]byte
	err             error     // the last read's error; NotFound when the Secret does not exist
	readAt          time.Time // zero before the first read
}

// Option configures a Cache.
type Option func(*Cache)

// WithClock sets the clock Refresh measures intervals with; time.Now by default.
func WithClock(now func() time.Time) Option { return func(c *Cache) { c.now = now } }

// New returns a Cache that learns resourceVersions from metadata (the manager's cached
// client, which holds Secret metadata) and reads data from api (the API server).
func New(metadata, api client.Reader, opts ...Option) *Cache {
	c := &Cache{metadata: metadata, api: api, now: time.Now, kept: map[client.ObjectKey]*kept{}}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Data answers the data of the Secret key: what is kept when the metadata cache reports
// the resourceVersion it was read at, else a read from the API server. A Secret that does
// not exist is a NotFound error. When the read fails otherwise, the data read before (if
// any) comes with the error: a key that worked a minute ago is more likely right than none.
func (c *Cache) Data(ctx context.Context, key client.ObjectKey) (map[string][]byte, error) {
	entry := c.entry(key)
	entry.mu.Lock()
	defer entry.mu.Unlock()
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := c.metadata.Get(ctx, key, meta); err == nil && !entry.readAt.IsZero() && entry.err == nil &&
		meta.ResourceVersion == entry.resourceVersion {
		return entry.data, nil
	}
	// Not read yet, changed since, or not in the metadata cache (yet): ask the API server.
	return c.read(ctx, key, entry)
}

// Refresh reads the Secret key from the API server even though the metadata cache may not
// have seen it change yet (it lags the API server by a watch event), unless the last read
// is younger than minInterval: a caller that refreshes on every miss costs the API server
// at most one read per Secret per minInterval.
func (c *Cache) Refresh(ctx context.Context, key client.ObjectKey, minInterval time.Duration) (map[string][]byte, error) {
	entry := c.entry(key)
	entry.mu.Lock()
	defer entry.mu.Unlock()
	if !entry.readAt.IsZero() && c.now().Sub(entry.readAt) < minInterval {
		return entry.data, entry.err
	}
	return c.read(ctx, key, entry)
}

// read reads key into entry, which the caller holds locked.
func (c *Cache) read(ctx context.Context, key client.ObjectKey, entry *kept) (map[string][]byte, error) {
	entry.readAt = c.now()
	secret := &corev1.Secret{}
	entry.err = c.api.Get(ctx, key, secret)
	switch {
	case apierrors.IsNotFound(entry.err):
		entry.resourceVersion, entry.data = "", nil
	case entry.err == nil:
		entry.resourceVersion, entry.data = secret.ResourceVersion, secret.Data
	}
	return entry.data, entry.err
}

func (c *Cache) entry(key client.ObjectKey) *kept {
	c.mu.Lock()
	defer c.mu.Unlock()
	entry, ok := c.kept[key]
	if !ok {
		entry = &kept{}
		c.kept[key] = entry
	}
	return entry
}
