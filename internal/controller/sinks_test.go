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
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
)

// openTestSink opens an SQLite sink in a folder of the test's own.
func openTestSink(t *testing.T) sink.Sink {
	t.Helper()
	snk, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sink.db"), sqlite.Options{Table: "records"})
	if err != nil {
		t.Fatal(err)
	}
	return snk
}

func TestSinksOpenOneSinkWithoutHoldingUpOthers(t *testing.T) {
	sinks := NewSinks()
	t.Cleanup(func() { _ = sinks.Close() })

	// A sink whose database is slow to answer: its open waits until released.
	started, release := make(chan struct{}), make(chan struct{})
	var opens atomic.Int32
	var wg sync.WaitGroup
	slow := make([]sink.Sink, 3)
	for i := range slow {
		wg.Go(func() {
			snk, err := sinks.get("slow", func() (sink.Sink, error) {
				if opens.Add(1) == 1 {
					close(started)
				}
				<-release
				return openTestSink(t), nil
			})
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
		_, err := sinks.get("other", func() (sink.Sink, error) { return openTestSink(t), nil })
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
