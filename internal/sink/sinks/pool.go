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

package sinks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// maxOpenTime bounds an open that several syncs may wait on. The drivers bound their own
// connects and calls well within it; this only keeps a stuck open from living forever.
const maxOpenTime = 2 * time.Minute

// Opener opens the sink of a Target. Pools use Target.Open unless told otherwise; a test
// passes one that wraps the sinks it opens (to inject a fault after a commit, say).
type Opener func(ctx context.Context, target Target) (sink.Sink, error)

// Pool keeps sinks open, one per place written to, shared by every NangoSync that writes
// there: a PostgreSQL pool or an SQLite handle is opened once, not once per reconcile. A
// sink is closed when the last NangoSync using it moves to another (a new Secret, another
// table) or is gone, so that a rotated PostgreSQL URL does not keep the old pool's
// connections open for good.
type Pool struct {
	opener Opener

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

// NewPool returns an empty pool that opens sinks with opener, or with Target.Open when
// opener is nil.
func NewPool(opener Opener) *Pool {
	if opener == nil {
		opener = func(ctx context.Context, target Target) (sink.Sink, error) { return target.Open(ctx) }
	}
	return &Pool{opener: opener, open: map[string]*sharedSink{}, used: map[types.NamespacedName]string{}}
}

// Close closes every open sink.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := make([]error, 0, len(p.open))
	for id, shared := range p.open {
		errs = append(errs, shared.Close())
		delete(p.open, id)
	}
	clear(p.used)
	return errors.Join(errs...)
}

// Get returns the sink of target for the NangoSync user, opening it the first time. If
// user wrote to another sink until now, it stops using that one, which closes when nobody
// else uses it. Opening happens outside the lock: a database that cannot be reached (an
// open can wait for a connect timeout) holds up only the syncs that write to it, not every
// sync's lookup.
func (p *Pool) Get(ctx context.Context, user types.NamespacedName, target Target) (sink.Sink, error) {
	if snk, ok := p.use(user, target.ID); ok {
		return snk, nil
	}
	opened := p.opening.DoChan(target.ID, func() (any, error) {
		p.mu.Lock()
		_, ok := p.open[target.ID]
		p.mu.Unlock()
		if ok {
			return nil, nil // opened by a call that ended just before this one began
		}
		// Every sync that asks for this sink meanwhile waits on this open: no one caller's
		// context may end it for the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxOpenTime)
		defer cancel()
		snk, err := p.opener(ctx, target)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.open[target.ID] = &sharedSink{Sink: snk}
		return nil, nil
	})
	select {
	case result := <-opened:
		if result.Err != nil {
			return nil, result.Err
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("open sink %s: %w", target.Name, ctx.Err())
	}
	snk, ok := p.use(user, target.ID)
	if !ok {
		// Closed again between its open and this call: only Close does that.
		return nil, fmt.Errorf("sink %s was closed while opening", target.Name)
	}
	return snk, nil
}

// use makes the open sink id the one user writes to, and answers it; false when it is not
// open.
func (p *Pool) use(user types.NamespacedName, id string) (sink.Sink, bool) {
	p.mu.Lock()
	shared, ok := p.open[id]
	if !ok {
		p.mu.Unlock()
		return nil, false
	}
	previous, had := p.used[user]
	if had && previous == id {
		p.mu.Unlock()
		return shared.Sink, true
	}
	shared.users++
	p.used[user] = id
	unused := p.leaveLocked(previous, had)
	p.mu.Unlock()
	closeUnused(unused)
	return shared.Sink, true
}

// Release tells that user, a NangoSync that is gone, uses no sink any more. Its sink
// closes when nobody else uses it.
func (p *Pool) Release(user types.NamespacedName) {
	p.mu.Lock()
	id, had := p.used[user]
	delete(p.used, user)
	unused := p.leaveLocked(id, had)
	p.mu.Unlock()
	closeUnused(unused)
}

// leaveLocked counts one user less of sink id, if there was one, and answers the sink if
// that was its last user; it is then no longer open.
func (p *Pool) leaveLocked(id string, had bool) sink.Sink {
	shared, ok := p.open[id]
	if !had || !ok {
		return nil
	}
	if shared.users--; shared.users > 0 {
		return nil
	}
	delete(p.open, id)
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
