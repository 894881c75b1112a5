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
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
)

// target is a Target whose sink open opens.
func target(id string, open func() (sink.Sink, error)) Target {
	return Target{ID: id, Name: id, open: func(context.Context) (sink.Sink, error) { return open() }}
}

// openTestSink opens an SQLite sink in a folder of the test's own.
func openTestSink(t *testing.T) sink.Sink {
	t.Helper()
	snk, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sink.db"), sqlite.Options{Table: "records"})
	if err != nil {
		t.Fatal(err)
	}
	return snk
}

func TestPoolOpensOneSinkWithoutHoldingUpOthers(t *testing.T) {
	sinks := NewPool(nil)
	t.Cleanup(func() { _ = sinks.Close() })

	// A sink whose database is slow to answer: its open waits until released.
	started, release := make(chan struct{}), make(chan struct{})
	var opens atomic.Int32
	var wg sync.WaitGroup
	slow := make([]sink.Sink, 3)
	for i := range slow {
		wg.Go(func() {
			user := types.NamespacedName{Namespace: "ns", Name: fmt.Sprint("sync-", i)}
			snk, err := sinks.Get(context.Background(), user, target("slow", func() (sink.Sink, error) {
				if opens.Add(1) == 1 {
					close(started)
				}
				<-release
				return openTestSink(t), nil
			}))
			if err != nil {
				t.Error(err)
			}
			slow[i] = snk
		})
	}
	<-started

	// Another sink opens meanwhile.
	other := make(chan error, 1)
	go func() {
		_, err := sinks.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: "other"},
			target("other", func() (sink.Sink, error) { return openTestSink(t), nil }))
		other <- err
	}()
	select {
	case err := <-other:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("opening one sink held up another")
	}

	close(release)
	wg.Wait()
	if n := opens.Load(); n != 1 {
		t.Fatalf("the slow sink was opened %d times, want once", n)
	}
	if slow[0] == nil || slow[0] != slow[1] || slow[1] != slow[2] {
		t.Fatal("the syncs that asked at once did not get the one sink")
	}
}

// closeCounter is a sink that only counts how often it is closed.
type closeCounter struct {
	sink.Sink
	closed atomic.Int32
}

func (c *closeCounter) Close() error {
	c.closed.Add(1)
	return nil
}

func TestPoolClosesASinkWhenItsLastUserLeaves(t *testing.T) {
	sinks := NewPool(nil)
	t.Cleanup(func() { _ = sinks.Close() })
	opened := map[string]*closeCounter{}
	get := func(user, id string) sink.Sink {
		t.Helper()
		snk, err := sinks.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: user}, target(id, func() (sink.Sink, error) {
			opened[id] = &closeCounter{}
			return opened[id], nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		return snk
	}

	a, b := get("a", "old"), get("b", "old")
	if a != b || len(opened) != 1 {
		t.Fatalf("two syncs writing to one place got %d sinks", len(opened))
	}
	old := opened["old"]
	if get("a", "old"); old.closed.Load() != 0 {
		t.Fatal("asking again for the same sink closed it")
	}
	get("a", "new") // a's Secret now names another database
	if old.closed.Load() != 0 {
		t.Fatal("the old sink closed while b still writes to it")
	}
	if get("b", "old") != old || len(opened) != 2 {
		t.Fatal("b no longer got the sink it still uses")
	}
	sinks.Release(types.NamespacedName{Namespace: "ns", Name: "b"}) // b was deleted
	if n := old.closed.Load(); n != 1 {
		t.Fatalf("the old sink was closed %d times once nobody used it, want once", n)
	}
	sinks.Release(types.NamespacedName{Namespace: "ns", Name: "b"})
	if n := old.closed.Load(); n != 1 {
		t.Fatalf("releasing twice closed the old sink %d times", n)
	}
	if opened["new"].closed.Load() != 0 {
		t.Fatal("the sink a uses was closed")
	}

	// A sink closed for want of users opens again for the next sync that asks.
	if reopened := get("c", "old"); reopened == old || opened["old"] == old {
		t.Fatal("a closed sink was handed out again")
	}
	if err := sinks.Close(); err != nil {
		t.Fatal(err)
	}
	if opened["new"].closed.Load() != 1 || opened["old"].closed.Load() != 1 || old.closed.Load() != 1 {
		t.Fatal("Close did not close every open sink exactly once")
	}
}

func TestPoolOpenOutlivesTheCallerThatStartedIt(t *testing.T) {
	pool := NewPool(nil)
	t.Cleanup(func() { _ = pool.Close() })
	release := make(chan struct{})
	openCtx := make(chan context.Context, 1)
	var opens atomic.Int32
	slow := Target{ID: "slow", Name: "slow", open: func(ctx context.Context) (sink.Sink, error) {
		opens.Add(1)
		openCtx <- ctx
		select {
		case <-release:
			return openTestSink(t), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}

	first, cancelFirst := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := pool.Get(first, types.NamespacedName{Namespace: "ns", Name: "first"}, slow)
		firstErr <- err
	}()
	ctx := <-openCtx
	cancelFirst()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled caller got %v, want its own cancellation at once", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the open, which other syncs may be waiting on, was cancelled with the caller that started it: %v", ctx.Err())
	}
	close(release)
	if _, err := pool.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: "second"}, slow); err != nil {
		t.Fatalf("Get after the open finished: %v", err)
	}
	if n := opens.Load(); n != 1 {
		t.Fatalf("opened %d times, want once", n)
	}
}
