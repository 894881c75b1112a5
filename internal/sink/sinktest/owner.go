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
	"testing"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// Two owners, as two NangoSyncs that name the same data set in the same table.
var (
	ownerA = sink.Owner{UID: "3f1c0e4a-0000-4000-8000-00000000000a", Name: "team-a/contacts"}
	ownerB = sink.Owner{UID: "3f1c0e4a-0000-4000-8000-00000000000b", Name: "team-b/contacts"}
)

// writeAs writes one page as owner and answers the error.
func writeAs(s sink.Sink, k sink.Key, owner sink.Owner, checkpoint string, records ...sink.Record) error {
	_, err := s.WritePage(context.Background(), k, sink.Page{Records: records, Checkpoint: checkpoint, Owner: owner})
	return err
}

// expectConflict fails the test unless err says that owner owns k.
func expectConflict(t *testing.T, err error, k sink.Key, owner sink.Owner) {
	t.Helper()
	var conflict *sink.ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("error %v, want a *sink.ConflictError naming %s", err, owner)
	}
	if conflict.Key != k || conflict.Owner != owner {
		t.Fatalf("conflict over %s owned by %s, want %s owned by %s", conflict.Key, conflict.Owner, k, owner)
	}
}

// expectOwner fails the test unless the checkpoint of k names owner.
func expectOwner(t *testing.T, s sink.Sink, k sink.Key, owner sink.Owner) {
	t.Helper()
	if got := checkpoint(t, s, k).Owner; got != owner {
		t.Fatalf("owner of %s = %s, want %s", k, got, owner)
	}
}

// testFirstWriterOwnsTheDataSet checks that the first page written with an owner claims
// the data set, and that another owner's pages, and pages of no owner, are refused with
// the owner named, changing neither rows nor checkpoint.
func testFirstWriterOwnsTheDataSet(t *testing.T, s *suite) {
	sk, k, other := s.sink(t), key("acme"), key("globex")
	if err := writeAs(sk, k, ownerA, "a1", record("x", added, 1)); err != nil {
		t.Fatalf("first page of A: %v", err)
	}
	expectOwner(t, sk, k, ownerA)

	expectConflict(t, writeAs(sk, k, ownerB, "b1", record("x", updated, 2), record("y", added, 2)), k, ownerA)
	expectConflict(t, writeAs(sk, k, sink.Owner{}, "anonymous", record("z", added, 2)), k, ownerA)
	expectRows(t, sk, k, record("x", added, 1))
	expectCheckpoint(t, sk, k, "a1")
	expectWritten(t, sk, k, sink.WriteResult{Added: 1})
	expectOwner(t, sk, k, ownerA)

	if err := writeAs(sk, k, ownerA, "a2", record("x", updated, 3)); err != nil {
		t.Fatalf("second page of A: %v", err)
	}
	expectCheckpoint(t, sk, k, "a2")

	// Another data set in the same table is B's to claim.
	if err := writeAs(sk, other, ownerB, "b1", record("x", added, 1)); err != nil {
		t.Fatalf("B on another data set: %v", err)
	}
	expectOwner(t, sk, other, ownerB)
}

// testDeletionTouchesOnlyOwnData checks that DeleteRows and DeleteCheckpoint of another
// owner delete nothing, and that the owner's DeleteCheckpoint releases the data set, rows
// kept, for the next owner to claim.
func testDeletionTouchesOnlyOwnData(t *testing.T, s *suite) {
	ctx := context.Background()
	sk, k := s.sink(t), key("acme")
	if err := writeAs(sk, k, ownerA, "a1", record("x", added, 1), unstorableRecord("bad\x00", added, 1)); err != nil {
		t.Fatalf("page of A: %v", err)
	}

	expectConflict(t, sk.DeleteRows(ctx, k, ownerB), k, ownerA)
	expectConflict(t, sk.DeleteCheckpoint(ctx, k, ownerB), k, ownerA)
	expectConflict(t, sk.DeleteRows(ctx, k, sink.Owner{}), k, ownerA)
	expectRows(t, sk, k, record("x", added, 1))
	expectQuarantined(t, sk, k, unstorableRecord("bad\x00", added, 1))
	expectCheckpoint(t, sk, k, "a1")
	expectOwner(t, sk, k, ownerA)

	// A leaves, keeping the rows (deletionPolicy Retain): the data set is B's to take.
	if err := sk.DeleteCheckpoint(ctx, k, ownerA); err != nil {
		t.Fatalf("DeleteCheckpoint of the owner: %v", err)
	}
	if c := checkpoint(t, sk, k); c != (sink.Checkpoint{}) {
		t.Fatalf("checkpoint after its owner deleted it = %+v, want none", c)
	}
	expectRows(t, sk, k, record("x", added, 1))
	if err := writeAs(sk, k, ownerB, "b1", record("y", added, 2)); err != nil {
		t.Fatalf("B after A left: %v", err)
	}
	expectOwner(t, sk, k, ownerB)

	// B leaves with deletionPolicy Delete: the rows it adopted go with its own.
	if err := sk.DeleteRows(ctx, k, ownerB); err != nil {
		t.Fatalf("DeleteRows of the owner: %v", err)
	}
	expectRows(t, sk, k)
	expectQuarantined(t, sk, k)
	if c := checkpoint(t, sk, k); c != (sink.Checkpoint{}) {
		t.Fatalf("checkpoint after DeleteRows = %+v, want none", c)
	}
}

// testUnownedCheckpointIsClaimedByFirstOwner checks that a data set written without an
// owner (as before owners were recorded) goes to the first owner that writes it, cursor and
// counts kept.
func testUnownedCheckpointIsClaimedByFirstOwner(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	write(t, sk, k, "c1", record("x", added, 1))
	expectOwner(t, sk, k, sink.Owner{})

	if err := writeAs(sk, k, ownerB, "", record("y", added, 2)); err != nil {
		t.Fatalf("first owned page: %v", err)
	}
	expectOwner(t, sk, k, ownerB)
	expectCheckpoint(t, sk, k, "c1")
	expectWritten(t, sk, k, sink.WriteResult{Added: 1})
	expectConflict(t, writeAs(sk, k, ownerA, "a1", record("x", updated, 3)), k, ownerB)
	expectRows(t, sk, k, record("x", added, 1), record("y", added, 2))
}

// testConcurrentClaimsHaveOneWinner has two owners write the first pages of one data set
// at once, again and again: one claims it, the other is refused, and the rows are the
// winner's alone.
func testConcurrentClaimsHaveOneWinner(t *testing.T, s *suite) {
	owners := []sink.Owner{ownerA, ownerB}
	sinks := []Sink{s.sink(t), s.sink(t)}
	for round := range 5 {
		k := key("round-" + string(rune('0'+round)))
		errs := make([]error, len(owners))
		runConcurrently(len(owners), func(i int) error {
			errs[i] = writeAs(sinks[i], k, owners[i], owners[i].Name, record(owners[i].Name, added, 1))
			return nil
		})
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("round %d: both owners wrote the data set", round)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither owner wrote the data set: %v", round, errs)
		}
		expectConflict(t, errs[1-winner], k, owners[winner])
		expectOwner(t, sinks[0], k, owners[winner])
		expectCheckpoint(t, sinks[0], k, owners[winner].Name)
		expectRows(t, sinks[0], k, record(owners[winner].Name, added, 1))
	}
}

// expectReset fails the test unless the checkpoint of k has no cursor and no counts, and
// owner owns it.
func expectReset(t *testing.T, s sink.Sink, k sink.Key, owner sink.Owner) {
	t.Helper()
	if c := checkpoint(t, s, k); c != (sink.Checkpoint{Owner: owner}) {
		t.Fatalf("checkpoint of %s after ResetCheckpoint = %+v, want no cursor, no counts, owner %s", k, c, owner)
	}
}

// checkResetKeepsTheOwner holds any sink to ResetCheckpoint's rules on a data set that
// ownerA wrote with checkpoint "a1": another owner's reset is refused and changes
// nothing; the owner's forgets cursor and counts but keeps the data set, so that
// another owner can neither write it nor delete it in the meantime; and a reset of a data
// set never written claims it.
func checkResetKeepsTheOwner(t *testing.T, s sink.Sink, k, fresh sink.Key) {
	t.Helper()
	ctx := context.Background()
	expectConflict(t, s.ResetCheckpoint(ctx, k, ownerB), k, ownerA)
	expectConflict(t, s.ResetCheckpoint(ctx, k, sink.Owner{}), k, ownerA)
	expectCheckpoint(t, s, k, "a1")
	expectOwner(t, s, k, ownerA)

	if err := s.ResetCheckpoint(ctx, k, ownerA); err != nil {
		t.Fatalf("ResetCheckpoint of the owner: %v", err)
	}
	expectReset(t, s, k, ownerA)
	expectConflict(t, writeAs(s, k, ownerB, "b1", record("y", added, 2)), k, ownerA)
	expectConflict(t, s.DeleteRows(ctx, k, ownerB), k, ownerA)
	expectConflict(t, s.DeleteCheckpoint(ctx, k, ownerB), k, ownerA)
	expectReset(t, s, k, ownerA)
	// Resetting again (a retry) changes nothing.
	if err := s.ResetCheckpoint(ctx, k, ownerA); err != nil {
		t.Fatalf("second ResetCheckpoint of the owner: %v", err)
	}
	expectReset(t, s, k, ownerA)

	if err := s.ResetCheckpoint(ctx, fresh, ownerB); err != nil {
		t.Fatalf("ResetCheckpoint of a data set never written: %v", err)
	}
	expectReset(t, s, fresh, ownerB)
	expectConflict(t, writeAs(s, fresh, ownerA, "a1", record("x", added, 1)), fresh, ownerB)
}

// testResetKeepsTheOwner checks ResetCheckpoint on a table: the rows stay, and the
// owner's next pages count from zero.
func testResetKeepsTheOwner(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	if err := writeAs(sk, k, ownerA, "a1", record("x", added, 1)); err != nil {
		t.Fatalf("page of A: %v", err)
	}
	checkResetKeepsTheOwner(t, sk, k, key("globex"))
	expectRows(t, sk, k, record("x", added, 1))

	if err := writeAs(sk, k, ownerA, "a2", record("x", updated, 3)); err != nil {
		t.Fatalf("page of A after its reset: %v", err)
	}
	expectCheckpoint(t, sk, k, "a2")
	expectWritten(t, sk, k, sink.WriteResult{Updated: 1})
	expectOwner(t, sk, k, ownerA)
}

// testRowsWithoutCheckpointAreNoOnes checks that DeleteRows of a data set without a
// checkpoint (its owner left with deletionPolicy Retain) deletes nothing, whoever asks:
// no owner can be told from the rows.
func testRowsWithoutCheckpointAreNoOnes(t *testing.T, s *suite) {
	ctx := context.Background()
	sk, k := s.sink(t), key("acme")
	if err := writeAs(sk, k, ownerA, "a1", record("x", added, 1), unstorableRecord("bad\x00", added, 1)); err != nil {
		t.Fatalf("page of A: %v", err)
	}
	if err := sk.DeleteCheckpoint(ctx, k, ownerA); err != nil {
		t.Fatalf("DeleteCheckpoint of the owner: %v", err)
	}
	for _, o := range []sink.Owner{ownerB, ownerA, {}} {
		if err := sk.DeleteRows(ctx, k, o); err != nil {
			t.Fatalf("DeleteRows by %s of a data set without a checkpoint: %v", o, err)
		}
		expectRows(t, sk, k, record("x", added, 1))
		expectQuarantined(t, sk, k, unstorableRecord("bad\x00", added, 1))
		if c := checkpoint(t, sk, k); c != (sink.Checkpoint{}) {
			t.Fatalf("checkpoint after DeleteRows by %s = %+v, want none", o, c)
		}
	}
}
