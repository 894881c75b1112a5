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

package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/singleflight"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/postgres"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
)

// sinkError marks a failure of the sink, as opposed to one of Nango.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// Sinks opens sinks and keeps them open, one per place written to (database and table),
// shared by every NangoSync that writes there: a PostgreSQL pool or an SQLite handle is
// opened once, not once per reconcile.
type Sinks struct {
	mu   sync.Mutex
	open map[string]sink.Sink
	// opening opens each sink once however many syncs ask for it at the same time.
	opening singleflight.Group
}

// NewSinks returns an empty set of sinks.
func NewSinks() *Sinks {
	return &Sinks{open: map[string]sink.Sink{}}
}

// Close closes every open sink.
func (s *Sinks) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, 0, len(s.open))
	for id, snk := range s.open {
		errs = append(errs, snk.Close())
		delete(s.open, id)
	}
	return errors.Join(errs...)
}

// get returns the sink known by id, opening it with open the first time. Opening happens
// outside the lock: a database that cannot be reached (an open can wait for a connect
// timeout) holds up only the syncs that write to it, not every sync's lookup.
func (s *Sinks) get(id string, open func() (sink.Sink, error)) (sink.Sink, error) {
	if snk, ok := s.lookup(id); ok {
		return snk, nil
	}
	opened, err, _ := s.opening.Do(id, func() (any, error) {
		if snk, ok := s.lookup(id); ok {
			return snk, nil // opened by a call that ended just before this one began
		}
		snk, err := open()
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.open[id] = snk
		return snk, nil
	})
	if err != nil {
		return nil, err
	}
	return opened.(sink.Sink), nil
}

func (s *Sinks) lookup(id string) (sink.Sink, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snk, ok := s.open[id]
	return snk, ok
}

// sinkFor returns the sink of a NangoSync, reading its Secret.
func (r *NangoSyncReconciler) sinkFor(ctx context.Context, nsync *syncv1alpha1.NangoSync) (sink.Sink, error) {
	spec := nsync.Spec.Sink
	hard := spec.Deletes == syncv1alpha1.DeletesHard
	switch {
	case spec.Postgres != nil:
		pg := spec.Postgres
		dsn, err := r.readSecretKey(ctx, nsync, pg.URLSecretRef)
		if err != nil {
			return nil, fmt.Errorf("read the PostgreSQL URL: %w", err)
		}
		// The id holds a hash of the DSN, never the DSN: it may carry a password.
		sum := sha256.Sum256([]byte(dsn))
		id := fmt.Sprintf("postgres/%s/%s/%s/%t", hex.EncodeToString(sum[:]), pg.Schema, pg.Table, hard)
		return r.Sinks.get(id, func() (sink.Sink, error) {
			snk, err := postgres.Open(ctx, dsn, postgres.Options{Schema: pg.Schema, Table: pg.Table, HardDeletes: hard})
			if err != nil {
				return nil, &sinkError{fmt.Errorf("open PostgreSQL table %s: %w", pg.Table, err)}
			}
			return snk, nil
		})
	case spec.SQLite != nil:
		lite := spec.SQLite
		id := fmt.Sprintf("sqlite/%s/%s/%t", lite.Path, lite.Table, hard)
		return r.Sinks.get(id, func() (sink.Sink, error) {
			snk, err := sqlite.Open(ctx, lite.Path, sqlite.Options{Table: lite.Table, HardDeletes: hard})
			if err != nil {
				return nil, &sinkError{fmt.Errorf("open SQLite table %s in %s: %w", lite.Table, lite.Path, err)}
			}
			return snk, nil
		})
	}
	// The API server refuses a NangoSync without exactly one sink kind.
	return nil, errors.New("spec.sink sets no sink kind")
}

// sinkKey is the data set of a NangoSync in its sink.
func sinkKey(nsync *syncv1alpha1.NangoSync) sink.Key {
	return sink.Key{
		ProviderConfigKey: nsync.Spec.ProviderConfigKey,
		ConnectionID:      nsync.Spec.ConnectionID,
		Model:             nsync.Spec.Model,
		Variant:           nsync.Spec.Variant,
	}
}

// sinkDisplayName names a sink for status and kubectl: "<kind>/<table>".
func sinkDisplayName(spec syncv1alpha1.SinkSpec) string {
	switch {
	case spec.Postgres != nil && spec.Postgres.Schema != "":
		return "postgres/" + spec.Postgres.Schema + "." + spec.Postgres.Table
	case spec.Postgres != nil:
		return "postgres/" + spec.Postgres.Table
	case spec.SQLite != nil:
		return "sqlite/" + spec.SQLite.Table
	}
	return ""
}
