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
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
// opened once, not once per reconcile. A sink is closed when the last NangoSync using it
// moves to another (a new Secret, another table) or is deleted, so that a rotated
// PostgreSQL URL does not keep the old pool's connections open for good.
type Sinks struct {
	mu   sync.Mutex
	open map[string]*sharedSink
	// used is the id of the sink each NangoSync wrote to last.
	used map[types.NamespacedName]string
	// opening opens each sink once however many syncs ask for it at the same time.
	opening singleflight.Group
}

// sharedSink is an open sink and how many NangoSyncs use it.
type sharedSink struct {
	sink.Sink
	users int
}

// NewSinks returns an empty set of sinks.
func NewSinks() *Sinks {
	return &Sinks{open: map[string]*sharedSink{}, used: map[types.NamespacedName]string{}}
}

// Close closes every open sink.
func (s *Sinks) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, 0, len(s.open))
	for id, shared := range s.open {
		errs = append(errs, shared.Close())
		delete(s.open, id)
	}
	clear(s.used)
	return errors.Join(errs...)
}

// get returns the sink known by id for the NangoSync user, opening it with open the first
// time. If user wrote to another sink until now, it stops using that one, which closes
// when nobody else uses it. Opening happens outside the lock: a database that cannot be
// reached (an open can wait for a connect timeout) holds up only the syncs that write to
// it, not every sync's lookup.
func (s *Sinks) get(user types.NamespacedName, id string, open func() (sink.Sink, error)) (sink.Sink, error) {
	if snk, ok := s.use(user, id); ok {
		return snk, nil
	}
	_, err, _ := s.opening.Do(id, func() (any, error) {
		s.mu.Lock()
		_, ok := s.open[id]
		s.mu.Unlock()
		if ok {
			return nil, nil // opened by a call that ended just before this one began
		}
		snk, err := open()
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.open[id] = &sharedSink{Sink: snk}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	snk, ok := s.use(user, id)
	if !ok {
		// Closed again between its open and this call: only Close does that.
		return nil, fmt.Errorf("sink %s was closed while opening", id)
	}
	return snk, nil
}

// use makes the open sink id the one user writes to, and answers it; false when it is not
// open.
func (s *Sinks) use(user types.NamespacedName, id string) (sink.Sink, bool) {
	s.mu.Lock()
	shared, ok := s.open[id]
	if !ok {
		s.mu.Unlock()
		return nil, false
	}
	previous, had := s.used[user]
	if had && previous == id {
		s.mu.Unlock()
		return shared.Sink, true
	}
	shared.users++
	s.used[user] = id
	unused := s.leaveLocked(previous, had)
	s.mu.Unlock()
	closeUnused(unused)
	return shared.Sink, true
}

// release tells that user, a NangoSync that is gone, uses no sink any more. Its sink
// closes when nobody else uses it.
func (s *Sinks) release(user types.NamespacedName) {
	s.mu.Lock()
	id, had := s.used[user]
	delete(s.used, user)
	unused := s.leaveLocked(id, had)
	s.mu.Unlock()
	closeUnused(unused)
}

// leaveLocked counts one user less of sink id, if there was one, and answers the sink if
// that was its last user; it is then no longer open.
func (s *Sinks) leaveLocked(id string, had bool) sink.Sink {
	shared, ok := s.open[id]
	if !had || !ok {
		return nil
	}
	if shared.users--; shared.users > 0 {
		return nil
	}
	delete(s.open, id)
	return shared.Sink
}

// closeUnused closes a sink nobody uses any more. Nothing else holds it: the syncs that
// used it have moved on, and a sync's reconciles never overlap. An error closing it
// changes nothing for any NangoSync.
func closeUnused(snk sink.Sink) {
	if snk != nil {
		_ = snk.Close()
	}
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
		return r.Sinks.get(client.ObjectKeyFromObject(nsync), id, func() (sink.Sink, error) {
			snk, err := postgres.Open(ctx, dsn, postgres.Options{Schema: pg.Schema, Table: pg.Table, HardDeletes: hard})
			if err != nil {
				return nil, &sinkError{fmt.Errorf("open PostgreSQL table %s: %w", pg.Table, err)}
			}
			return snk, nil
		})
	case spec.SQLite != nil:
		lite := spec.SQLite
		id := fmt.Sprintf("sqlite/%s/%s/%t", lite.Path, lite.Table, hard)
		return r.Sinks.get(client.ObjectKeyFromObject(nsync), id, func() (sink.Sink, error) {
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
