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

package sinktest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// EventSink is an event sink under test (HTTP, Kafka): a sink.Sink that delivers each
// record version as an event to a consumer that can be read back. Such a sink keeps no
// rows, so it is held to what events promise instead of the table rules of Run.
type EventSink interface {
	sink.Sink
	// Delivered answers the events of key the consumer received, in the order received,
	// redeliveries included.
	Delivered(ctx context.Context, key sink.Key) ([]Event, error)
}

// Event is a delivered event, decoded back into the record version it carries.
type Event struct {
	// ID is the event's id: the same on every delivery of one version, unique otherwise.
	ID string
	// Record is the version, as PreparePage made it (times in UTC to the microsecond).
	Record sink.Record
}

// EventOpener opens an event sink; the sinks it opens within one RunEvents share their
// consumer and checkpoints. It fails t when it cannot. The suite closes the sinks.
type EventOpener func(t *testing.T) EventSink

// RunEvents checks what every event sink promises: the versions of a page delivered in
// order, one event per version with an id that stays the same when delivered again, the
// checkpoint moved only after delivery and kept apart per key, and no version lost when a
// write is interrupted at any point.
func RunEvents(t *testing.T, open EventOpener) {
	cases := []struct {
		name string
		test func(*testing.T, func(*testing.T) EventSink)
	}{
		{"VersionsArriveInOrder", testVersionsArriveInOrder},
		{"RedeliveryKeepsEventIDs", testRedeliveryKeepsEventIDs},
		{"CheckpointFollowsDelivery", testCheckpointFollowsDelivery},
		{"InterruptedWriteLosesNothing", testInterruptedWriteLosesNothing},
		{"PrunedAndDeletedVersions", testPrunedAndDeletedVersions},
		{"OneOwnerPerDataSet", testEventsOneOwnerPerDataSet},
		{"ResetKeepsTheOwner", testEventsResetKeepsTheOwner},
		{"RowsWithoutCheckpointAreNoOnes", testEventsWithoutCheckpointAreNoOnes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.test(t, func(t *testing.T) EventSink {
				t.Helper()
				opened := open(t)
				t.Cleanup(func() {
					if err := opened.Close(); err != nil {
						t.Errorf("close sink: %v", err)
					}
				})
				return opened
			})
		})
	}
}

// eventKey answers a key of its own for every case, so that cases sharing a consumer stay apart.
func eventKey(t *testing.T, connection string) sink.Key {
	k := key(connection)
	k.Model = "Event" + tableName(t.Name())[len("conformance"):]
	return k
}

func delivered(t *testing.T, s EventSink, k sink.Key) []Event {
	t.Helper()
	events, err := s.Delivered(context.Background(), k)
	if err != nil {
		t.Fatalf("Delivered: %v", err)
	}
	return events
}

// expectVersions fails the test unless the delivered events carry want, in order.
func expectVersions(t *testing.T, events []Event, want ...sink.Record) {
	t.Helper()
	got := make([]sink.Record, len(events))
	for i, e := range events {
		got[i] = e.Record
	}
	if diff := diffRecords(want, got); diff != "" {
		t.Fatalf("delivered versions:\n%s", diff)
	}
}

func testVersionsArriveInOrder(t *testing.T, open func(*testing.T) EventSink) {
	s, k := open(t), eventKey(t, "acme")
	first := []sink.Record{record("b", added, 1), record("a", added, 2)}
	second := []sink.Record{record("b", updated, 3), record("c", added, 4), record("a", updated, 5)}
	write(t, s, k, "c2", first...)
	write(t, s, k, "c5", second...)
	events := delivered(t, s, k)
	expectVersions(t, events, append(slices.Clone(first), second...)...)
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.ID] {
			t.Fatalf("two versions delivered with event id %s", e.ID)
		}
		seen[e.ID] = true
	}
}

func testRedeliveryKeepsEventIDs(t *testing.T, open func(*testing.T) EventSink) {
	s, k := open(t), eventKey(t, "acme")
	page := []sink.Record{record("a", added, 1), record("b", updated, 2)}
	write(t, s, k, "c2", page...)
	// As after a crash between delivery and checkpoint: the same page from the same cursor.
	if err := s.DeleteCheckpoint(context.Background(), k, sink.Owner{}); err != nil {
		t.Fatalf("DeleteCheckpoint: %v", err)
	}
	write(t, s, k, "c2", page...)
	events := delivered(t, s, k)
	expectVersions(t, events, append(slices.Clone(page), page...)...)
	for i := range page {
		if events[i].ID != events[len(page)+i].ID {
			t.Fatalf("record %s delivered again with event id %s, first with %s", page[i].ID, events[len(page)+i].ID, events[i].ID)
		}
	}
}

func testCheckpointFollowsDelivery(t *testing.T, open func(*testing.T) EventSink) {
	s, k, other := open(t), eventKey(t, "acme"), eventKey(t, "globex")
	expectCheckpoint(t, s, k, "")
	write(t, s, k, "c1", record("a", added, 1), record("b", updated, 2))
	write(t, s, k, "c2", record("c", deleted, 3))
	write(t, s, other, "o1", record("a", added, 1))
	expectCheckpoint(t, s, k, "c2")
	expectWritten(t, s, k, sink.WriteResult{Added: 1, Updated: 1, Deleted: 1})
	expectCheckpoint(t, s, other, "o1")

	write(t, s, k, "") // a page without a checkpoint leaves it as it is
	expectCheckpoint(t, s, k, "c2")
	write(t, s, k, "c3") // an empty page with one moves it
	expectCheckpoint(t, s, k, "c3")
	expectWritten(t, s, k, sink.WriteResult{Added: 1, Updated: 1, Deleted: 1})

	// A second sink on the same consumer sees the same checkpoint, as after a restart.
	expectCheckpoint(t, open(t), k, "c3")

	if err := s.DeleteCheckpoint(context.Background(), k, sink.Owner{}); err != nil {
		t.Fatalf("DeleteCheckpoint: %v", err)
	}
	expectCheckpoint(t, s, k, "")
	expectWritten(t, s, k, sink.WriteResult{})
	expectCheckpoint(t, s, other, "o1")
}

func testInterruptedWriteLosesNothing(t *testing.T, open func(*testing.T) EventSink) {
	s, k := open(t), eventKey(t, "acme")
	write(t, s, k, "c1", record("a", added, 1))
	page := []sink.Record{record("a", updated, 2), record("b", added, 3), record("c", added, 4)}
	// Interrupt the write at the nth point the sink looks at its context, for every n
	// until a write gets through: whatever it delivered, the checkpoint moves only with
	// the whole page, and writing again delivers every version.
	for n := 1; ; n++ {
		if n > 500 {
			t.Fatal("no write got through 500 interruptions")
		}
		_, err := s.WritePage(cancelAfterCalls(context.Background(), n), k, sink.Page{Records: page, Checkpoint: "c4"})
		got := checkpoint(t, s, k).Cursor
		if err == nil {
			if got != "c4" {
				t.Fatalf("checkpoint after a write that succeeded = %q, want c4", got)
			}
			t.Logf("a write got through after %d interruptions", n-1)
			break
		}
		if !errors.Is(err, context.Canceled) && !sink.IsUnavailable(err) {
			t.Fatalf("interrupted write %d failed with %v, want a cancellation or an unavailable sink", n, err)
		}
		if got == "c4" {
			break // it committed before the interruption was seen
		}
		if got != "c1" {
			t.Fatalf("checkpoint after an interrupted write = %q, want c1 or c4", got)
		}
	}
	// Every version was delivered, at least once, and the last delivery of each record is its newest.
	last := map[string]sink.Record{}
	for _, e := range delivered(t, s, k) {
		last[e.Record.ID] = e.Record
	}
	for _, r := range page {
		if diff := diffRecords([]sink.Record{r}, []sink.Record{last[r.ID]}); diff != "" {
			t.Fatalf("newest delivery of %s:\n%s", r.ID, diff)
		}
	}
}

func testPrunedAndDeletedVersions(t *testing.T, open func(*testing.T) EventSink) {
	s, k := open(t), eventKey(t, "acme")
	newest, gone := record("a", updated, 2), record("a", deleted, 4)
	// Within a page, only the newest version of a record is delivered.
	write(t, s, k, "c3", record("a", added, 1), newest, pruned(record("b", updated, 3)))
	write(t, s, k, "c4", gone)
	expectVersions(t, delivered(t, s, k), newest, pruned(record("b", updated, 3)), gone)
}

// testEventsOneOwnerPerDataSet checks that an event sink keeps a data set's owner as the
// table sinks do: another owner's pages are refused before anything is delivered, its
// deletions touch nothing, and the owner's DeleteCheckpoint releases the data set.
func testEventsOneOwnerPerDataSet(t *testing.T, open func(*testing.T) EventSink) {
	ctx := context.Background()
	s, k := open(t), eventKey(t, "acme")
	if err := writeAs(s, k, ownerA, "a1", record("x", added, 1)); err != nil {
		t.Fatalf("first page of A: %v", err)
	}
	expectOwner(t, s, k, ownerA)

	expectConflict(t, writeAs(s, k, ownerB, "b1", record("y", added, 2)), k, ownerA)
	expectConflict(t, s.DeleteRows(ctx, k, ownerB), k, ownerA)
	expectConflict(t, s.DeleteCheckpoint(ctx, k, ownerB), k, ownerA)
	expectVersions(t, delivered(t, s, k), record("x", added, 1))
	expectCheckpoint(t, s, k, "a1")

	if err := s.DeleteCheckpoint(ctx, k, ownerA); err != nil {
		t.Fatalf("DeleteCheckpoint of the owner: %v", err)
	}
	if err := writeAs(s, k, ownerB, "b1", record("y", added, 2)); err != nil {
		t.Fatalf("B after A left: %v", err)
	}
	expectOwner(t, s, k, ownerB)
}

// testEventsResetKeepsTheOwner holds an event sink to ResetCheckpoint's rules: nothing is
// delivered by a reset, and the owner's next page is delivered from the start.
func testEventsResetKeepsTheOwner(t *testing.T, open func(*testing.T) EventSink) {
	s, k := open(t), eventKey(t, "acme")
	if err := writeAs(s, k, ownerA, "a1", record("x", added, 1)); err != nil {
		t.Fatalf("page of A: %v", err)
	}
	checkResetKeepsTheOwner(t, s, k, eventKey(t, "globex"))
	expectVersions(t, delivered(t, s, k), record("x", added, 1))
	if err := writeAs(s, k, ownerA, "a2", record("x", added, 1)); err != nil {
		t.Fatalf("page of A after its reset: %v", err)
	}
	expectVersions(t, delivered(t, s, k), record("x", added, 1), record("x", added, 1))
	expectCheckpoint(t, s, k, "a2")
}

// testEventsWithoutCheckpointAreNoOnes checks that DeleteRows of a data set without a
// checkpoint delivers nothing, whoever asks.
func testEventsWithoutCheckpointAreNoOnes(t *testing.T, open func(*testing.T) EventSink) {
	ctx := context.Background()
	s, k := open(t), eventKey(t, "acme")
	if err := writeAs(s, k, ownerA, "a1", record("x", added, 1)); err != nil {
		t.Fatalf("page of A: %v", err)
	}
	if err := s.DeleteCheckpoint(ctx, k, ownerA); err != nil {
		t.Fatalf("DeleteCheckpoint of the owner: %v", err)
	}
	for _, o := range []sink.Owner{ownerB, ownerA, {}} {
		if err := s.DeleteRows(ctx, k, o); err != nil {
			t.Fatalf("DeleteRows by %s of a data set without a checkpoint: %v", o, err)
		}
	}
	if events := delivered(t, s, k); len(events) != 1 {
		t.Fatalf("%d events delivered, want the one record: DeleteRows of a data set without a checkpoint delivered", len(events))
	}
}
