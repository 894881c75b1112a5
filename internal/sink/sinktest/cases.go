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
	"fmt"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
)

const (
	added   = sink.ActionAdded
	updated = sink.ActionUpdated
	deleted = sink.ActionDeleted
)

func testUpsertIsIdempotent(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	page := []sink.Record{record("a", added, 1), record("b", updated, 2)}

	first := write(t, sk, k, "c2", page...)
	expectRows(t, sk, k, page...)
	second := write(t, sk, k, "c2", page...)
	expectRows(t, sk, k, page...)
	expectCheckpoint(t, sk, k, "c2")
	if first != second {
		t.Fatalf("writing a page twice counted %+v, then %+v", first, second)
	}
}

func testNewerVersionReplacesOlder(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	write(t, sk, k, "c1", record("a", added, 1))
	write(t, sk, k, "c2", record("a", updated, 2))
	expectRows(t, sk, k, record("a", updated, 2))

	// An equal last_modified_at rewrites: Nango sends a record again only as it now is.
	again := record("a", updated, 2, `{"id":"a","version":2,"fixed":true}`)
	write(t, sk, k, "c2", again)
	expectRows(t, sk, k, again)
}

func testOlderVersionNeverOverwritesNewer(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	newest := record("a", updated, 5)
	write(t, sk, k, "c5", newest)

	write(t, sk, k, "c1", record("a", added, 1))
	write(t, sk, k, "c3", pruned(record("a", updated, 3)))
	write(t, sk, k, "c4", record("a", deleted, 4))
	expectRows(t, sk, k, newest)

	// Whole seconds against fractions: a store comparing times as text must not think
	// 12:00:00 newer than 12:00:00.5 (as "12:00:00Z" > "12:00:00.5Z" would have it).
	atHalf, atWhole := record("b", updated, 2), record("b", added, 1)
	atHalf.LastModifiedAt = time.Date(2026, 4, 14, 12, 0, 0, 500000000, time.UTC)
	atWhole.LastModifiedAt = time.Date(2026, 4, 14, 12, 0, 0, 0, time.UTC)
	write(t, sk, k, "c5", atHalf)
	write(t, sk, k, "c5", atWhole)
	expectRows(t, sk, k, newest, atHalf)
}

func testPrunedRecordKeepsFields(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	full := record("a", added, 1)
	write(t, sk, k, "c1", full)

	// Nango prunes without changing last_modified_at: the same version comes back empty.
	samePruned := pruned(record("a", added, 1))
	write(t, sk, k, "c1", samePruned)
	expectRows(t, sk, k, withPayloadOf(samePruned, full))

	// A newer version seen only pruned takes the new metadata and keeps the old fields.
	newerPruned := pruned(record("a", updated, 2))
	write(t, sk, k, "c2", newerPruned)
	expectRows(t, sk, k, withPayloadOf(newerPruned, full))

	// An empty payload that is not marked pruned keeps the fields too.
	newerEmpty := record("a", updated, 3)
	newerEmpty.Payload = nil
	write(t, sk, k, "c3", newerEmpty)
	expectRows(t, sk, k, withPayloadOf(newerEmpty, full))
}

func testPrunedRecordFirstSeenHasNoFields(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	onlyPruned := pruned(record("a", added, 1))
	write(t, sk, k, "c1", onlyPruned)
	expectRows(t, sk, k, onlyPruned) // a row with no payload: the record exists, its fields are unknown

	// Its fields arrive later with the same last_modified_at (read from before the pruning).
	full := record("a", added, 1)
	write(t, sk, k, "c1", full)
	expectRows(t, sk, k, full)
}

func testSoftDeleteKeepsPayload(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	full := record("a", added, 1)
	write(t, sk, k, "c1", full, record("b", added, 1))

	deletion := record("a", deleted, 2)
	deletion.Payload = nil // whether or not Nango sends the fields of a deleted record
	result := write(t, sk, k, "c2", deletion)
	if result.Deleted != 1 {
		t.Fatalf("deleting one record counted %+v", result)
	}
	expectRows(t, sk, k, withPayloadOf(deletion, full), record("b", added, 1))

	// A DELETED record without deleted_at is deleted as of its last modification.
	noDeletedAt := record("b", deleted, 3)
	noDeletedAt.DeletedAt = nil
	write(t, sk, k, "c3", noDeletedAt)
	expectRows(t, sk, k, withPayloadOf(deletion, full), record("b", deleted, 3))
}

func testUndeleteClearsDeletedAt(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	write(t, sk, k, "c1", record("a", added, 1))
	write(t, sk, k, "c2", record("a", deleted, 2))
	back := record("a", added, 3, `{"id":"a","back":true}`)
	write(t, sk, k, "c3", back)
	expectRows(t, sk, k, back)
}

func testHardDeleteRemovesRow(t *testing.T, s *suite) {
	sk, k := s.hardDeletingSink(t), key("acme")
	write(t, sk, k, "c1", record("a", added, 1), record("b", added, 5))

	result := write(t, sk, k, "c6", record("a", deleted, 2), record("b", deleted, 4), record("never-stored", deleted, 6))
	if result.Deleted != 3 {
		t.Fatalf("deleting three records counted %+v", result)
	}
	// b's stored version is newer than its deletion: it stays. The others are gone.
	expectRows(t, sk, k, record("b", added, 5))
	expectCheckpoint(t, sk, k, "c6")

	// A record deleted and added again in one page ends up present.
	write(t, sk, k, "c8", record("c", deleted, 7), record("c", added, 8))
	expectRows(t, sk, k, record("b", added, 5), record("c", added, 8))
}

func testKeysSharingATableStayApart(t *testing.T, s *suite) {
	sk := s.sink(t)
	acme, globex := key("acme"), key("globex")
	variant := acme
	variant.Variant = "archived"

	write(t, sk, acme, "acme-1", record("a", added, 1, `{"owner":"acme"}`))
	write(t, sk, globex, "globex-1", record("a", added, 1, `{"owner":"globex"}`), record("g", added, 1))
	write(t, sk, variant, "variant-1", record("a", added, 2, `{"owner":"variant"}`))

	expectRows(t, sk, acme, record("a", added, 1, `{"owner":"acme"}`))
	expectRows(t, sk, globex, record("a", added, 1, `{"owner":"globex"}`), record("g", added, 1))
	expectRows(t, sk, variant, record("a", added, 2, `{"owner":"variant"}`))
	expectCheckpoint(t, sk, acme, "acme-1")
	expectCheckpoint(t, sk, globex, "globex-1")
	expectCheckpoint(t, sk, variant, "variant-1")
	expectCheckpoint(t, sk, key("initech"), "")
}

func testSinksOnTheSameTableShareRows(t *testing.T, s *suite) {
	writer, reader := s.sink(t), s.sink(t)
	k := key("acme")
	write(t, writer, k, "c1", record("a", added, 1))
	expectRows(t, reader, k, record("a", added, 1))
	expectCheckpoint(t, reader, k, "c1")

	// Both write at once, as two NangoSyncs sharing a table do.
	errs := runConcurrently(2, func(i int) error {
		both := []Sink{writer, reader}
		_, err := both[i].WritePage(context.Background(), key(fmt.Sprint("sync-", i)),
			sink.Page{Records: []sink.Record{record("x", added, i)}, Checkpoint: fmt.Sprint("c", i)})
		return err
	})
	if len(errs) > 0 {
		t.Fatalf("concurrent writes through two sinks: %v", errs)
	}
	expectRows(t, writer, key("sync-1"), record("x", added, 1))
	expectRows(t, reader, key("sync-0"), record("x", added, 0))
}

func testCheckpointIsWrittenWithThePage(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	expectCheckpoint(t, sk, k, "")
	write(t, sk, k, "c1", record("a", added, 1))
	expectCheckpoint(t, sk, k, "c1")
	write(t, sk, k, "c2", record("b", added, 2))
	expectCheckpoint(t, sk, k, "c2")

	// A page without a checkpoint leaves the stored one: it never moves back to the start.
	write(t, sk, k, "", record("c", added, 3))
	expectCheckpoint(t, sk, k, "c2")
	expectRows(t, sk, k, record("a", added, 1), record("b", added, 2), record("c", added, 3))
}

func testEmptyPageMovesCheckpoint(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	write(t, sk, k, "c1", record("a", added, 1))
	if result := write(t, sk, k, "c2"); result != (sink.WriteResult{}) {
		t.Fatalf("an empty page counted %+v", result)
	}
	expectCheckpoint(t, sk, k, "c2")
	expectRows(t, sk, k, record("a", added, 1))
}

func testDeleteCheckpointKeepsRows(t *testing.T, s *suite) {
	sk, k, other := s.sink(t), key("acme"), key("globex")
	write(t, sk, k, "c1", record("a", added, 1))
	write(t, sk, other, "o1", record("a", added, 1))

	if err := sk.DeleteCheckpoint(context.Background(), k, sink.Owner{}); err != nil {
		t.Fatalf("DeleteCheckpoint: %v", err)
	}
	expectCheckpoint(t, sk, k, "")
	expectRows(t, sk, k, record("a", added, 1))
	expectCheckpoint(t, sk, other, "o1")

	if err := sk.DeleteCheckpoint(context.Background(), key("never-written"), sink.Owner{}); err != nil {
		t.Fatalf("DeleteCheckpoint of a key without one: %v", err)
	}
}

// testCheckpointAddsUpWrites checks the counts stored with the checkpoint: they grow by
// each page's result, stay put for a page without a checkpoint, belong to one key, and
// start over with the checkpoint.
func testCheckpointAddsUpWrites(t *testing.T, s *suite) {
	sk, k, other := s.sink(t), key("acme"), key("globex")
	expectWritten(t, sk, k, sink.WriteResult{})
	write(t, sk, k, "c1", record("a", added, 1), record("b", added, 1))
	write(t, sk, k, "c2", record("a", updated, 2), record("b", deleted, 2), record("c", added, 2))
	write(t, sk, other, "o1", record("a", added, 1))
	expectWritten(t, sk, k, sink.WriteResult{Added: 3, Updated: 1, Deleted: 1})
	expectWritten(t, sk, other, sink.WriteResult{Added: 1})

	write(t, sk, k, "", record("d", added, 3))
	expectWritten(t, sk, k, sink.WriteResult{Added: 3, Updated: 1, Deleted: 1})

	if err := sk.DeleteCheckpoint(context.Background(), k, sink.Owner{}); err != nil {
		t.Fatalf("DeleteCheckpoint: %v", err)
	}
	expectWritten(t, sk, k, sink.WriteResult{})
	write(t, sk, k, "c3", record("a", updated, 4))
	expectWritten(t, sk, k, sink.WriteResult{Updated: 1})
	expectWritten(t, sk, other, sink.WriteResult{Added: 1})
}

func testDeleteRowsRemovesOnlyThatKey(t *testing.T, s *suite) {
	sk, k, other := s.sink(t), key("acme"), key("globex")
	write(t, sk, k, "c1", record("a", added, 1), record("b", added, 1))
	write(t, sk, other, "o1", record("a", added, 1))

	if err := sk.DeleteRows(context.Background(), k, sink.Owner{}); err != nil {
		t.Fatalf("DeleteRows: %v", err)
	}
	expectRows(t, sk, k)
	expectCheckpoint(t, sk, k, "")
	expectRows(t, sk, other, record("a", added, 1))
	expectCheckpoint(t, sk, other, "o1")
}

func testDuplicateIDWithinPage(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	// Nango can return a record updated while paging twice; a stale copy can follow too.
	result := write(t, sk, k, "c9",
		record("a", added, 1), record("b", added, 1), record("a", updated, 3), record("a", updated, 2))
	expectRows(t, sk, k, record("a", updated, 3), record("b", added, 1))
	if want := (sink.WriteResult{Added: 1, Updated: 1}); result != want {
		t.Fatalf("a page with a duplicate id counted %+v, want %+v (one per id, newest version)", result, want)
	}

	// Within a page as across pages: a pruned copy keeps the fields of the full one.
	full := record("c", added, 4)
	write(t, sk, k, "c9", full, pruned(record("c", updated, 4)))
	expectRows(t, sk, k, record("a", updated, 3), record("b", added, 1), withPayloadOf(pruned(record("c", updated, 4)), full))
}

func testWriteResultCountsByAction(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	result := write(t, sk, k, "c1",
		record("a", added, 1), record("b", added, 1), record("c", updated, 1), record("d", deleted, 1))
	if want := (sink.WriteResult{Added: 2, Updated: 1, Deleted: 1}); result != want {
		t.Fatalf("counted %+v, want %+v", result, want)
	}
}

func testPayloadFidelity(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	payloads := []string{
		`{"big":12345678901234567890,"negative":-9223372036854775809,"small":0.000001,"decimal":3.10,"zero":0}`,
		`{"nothing":null,"yes":true,"no":false,"empty":{},"none":[],"blank":""}`,
		`{"nested":{"list":[1,"two",{"three":[3]}],"deeper":{"deepest":{"x":null}}}}`,
		`{"unicode":"héllo wörld – 世界 🚀","escapes":"quote\" backslash\\ slash/ newline\n tab\t \u00e9 \ud83d\ude80"}`,
		`  {  "spaced" : [ 1 , 2 ] ,"order":"kept?", "a":1 }  `,
	}
	want := make([]sink.Record, 0, len(payloads))
	for i, payload := range payloads {
		want = append(want, record(fmt.Sprint("p", i), added, 1, payload))
	}
	write(t, sk, k, "c1", want...)
	expectRows(t, sk, k, want...)
}

func testTimestampsKeepMicroseconds(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	r := record("a", added, 1)
	// Nango sends microseconds and an offset; the instant is what counts.
	r.FirstSeenAt = time.Date(2026, 4, 14, 20, 46, 3, 123456789, time.FixedZone("CEST", 2*3600))
	r.LastModifiedAt = time.Date(2026, 4, 14, 18, 46, 3, 999999999, time.UTC)
	write(t, sk, k, "c1", r)

	rows := readRows(t, sk, k)
	if len(rows) != 1 {
		t.Fatalf("stored %d rows, want 1", len(rows))
	}
	if want := time.Date(2026, 4, 14, 18, 46, 3, 123456000, time.UTC); !rows[0].FirstSeenAt.Equal(want) {
		t.Fatalf("FirstSeenAt = %v, want %v", rows[0].FirstSeenAt, want)
	}
	// Truncated, not rounded: a version must not look newer than it is.
	if want := time.Date(2026, 4, 14, 18, 46, 3, 999999000, time.UTC); !rows[0].LastModifiedAt.Equal(want) {
		t.Fatalf("LastModifiedAt = %v, want %v", rows[0].LastModifiedAt, want)
	}
	if rows[0].LastModifiedAt.Location() != time.UTC {
		t.Fatalf("LastModifiedAt is in %v, want UTC", rows[0].LastModifiedAt.Location())
	}
}

func testConcurrentWritesOnDifferentKeys(t *testing.T, s *suite) {
	sk := s.sink(t)
	const syncs, pages, perPage = 6, 4, 25
	errs := runConcurrently(syncs, func(i int) error {
		k := key(fmt.Sprint("conn-", i))
		for p := range pages {
			records := make([]sink.Record, perPage)
			for r := range records {
				records[r] = record(fmt.Sprintf("r%03d", p*perPage+r), added, p)
			}
			page := sink.Page{Records: records, Checkpoint: fmt.Sprint("page-", p)}
			if _, err := sk.WritePage(context.Background(), k, page); err != nil {
				return err
			}
		}
		return nil
	})
	if len(errs) > 0 {
		t.Fatalf("concurrent writes: %v", errs)
	}
	for i := range syncs {
		k := key(fmt.Sprint("conn-", i))
		if rows := readRows(t, sk, k); len(rows) != pages*perPage {
			t.Errorf("%s has %d rows, want %d", k, len(rows), pages*perPage)
		}
		expectCheckpoint(t, sk, k, fmt.Sprint("page-", pages-1))
	}
}

func testInvalidPageWritesNothing(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	write(t, sk, k, "c1", record("a", added, 1))

	noID := record("", added, 2)
	badAction := record("b", "CREATED", 2)
	badJSON := record("c", added, 2, `{"unterminated":`)
	for _, bad := range []sink.Record{noID, badAction, badJSON} {
		page := sink.Page{Records: []sink.Record{record("a", updated, 2), bad}, Checkpoint: "c2"}
		if _, err := sk.WritePage(context.Background(), k, page); err == nil {
			t.Errorf("a page with record %+v was written", bad)
		}
	}
	incomplete := k
	incomplete.Variant = ""
	if _, err := sk.WritePage(context.Background(), incomplete, sink.Page{Checkpoint: "c2"}); err == nil {
		t.Error("a page for a key without a variant was written")
	}
	expectRows(t, sk, k, record("a", added, 1))
	expectCheckpoint(t, sk, k, "c1")
}

// testInterruptedWriteLeavesNothing interrupts writes at every point the sink looks at its
// context, from before the transaction starts to after it commits: each write must have
// happened entirely (rows and checkpoint) or not at all. An error does not prove that
// nothing was written: a commit can succeed while its answer is lost, which is why the
// checkpoint, not the error, says how far a sync got.
func testInterruptedWriteLeavesNothing(t *testing.T, s *suite) {
	sk := s.sink(t)
	before := []sink.Record{record("a", added, 1), record("b", added, 1)}
	page := make([]sink.Record, 0, 202)
	page = append(page, record("a", updated, 2), record("b", deleted, 2))
	for i := range 200 {
		page = append(page, record(fmt.Sprintf("n%03d", i), added, 2))
	}

	var interrupted int
	// Every point early on, then ever sparser, so that a sink looking at its context once
	// per record does not make this quadratic.
	for calls := 1; ; calls += 1 + calls/10 {
		if calls > 100000 {
			t.Fatal("the write never completed")
		}
		k := key(fmt.Sprint("attempt-", calls))
		write(t, sk, k, "before", before...)

		ctx := cancelAfterCalls(context.Background(), calls)
		_, err := sk.WritePage(ctx, k, sink.Page{Records: page, Checkpoint: "after"})
		written := expectBeforeOrAfter(t, sk, k, before, page)
		if err == nil {
			if !written {
				t.Fatal("WritePage succeeded, yet the page is not stored")
			}
			break
		}
		interrupted++
	}
	if interrupted == 0 {
		t.Fatal("no write was interrupted: the sink never looks at its context")
	}
	t.Logf("%d writes interrupted at successive points before one completed", interrupted)
}

// expectBeforeOrAfter fails the test unless k holds exactly the rows and checkpoint (cursor
// and counts) it had before the page, or exactly those after it, and answers which. A write
// whose answer was lost to its context can still be committing on the server, so the rows
// and the checkpoint are read until they are read between two equal checkpoints, for a while.
func expectBeforeOrAfter(t *testing.T, sk Sink, k sink.Key, before, page []sink.Record) (after bool) {
	t.Helper()
	countedBefore := int64(len(before))
	countedAfter := countedBefore + int64(len(page))
	var rows []sink.Record
	var c sink.Checkpoint
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		c = checkpoint(t, sk, k)
		rows = readRows(t, sk, k)
		if checkpoint(t, sk, k) != c {
			continue // a commit landed between the reads
		}
		switch {
		case c.Cursor == "before" && diffRecords(before, rows) == "" && total(c.Written) == countedBefore:
			return false
		case c.Cursor == "after" && len(rows) == len(page) && total(c.Written) == countedAfter:
			return true
		}
	}
	t.Fatalf("a write stopped half way: checkpoint %q counting %+v with %d rows (%d before the page, %d after it)",
		c.Cursor, c.Written, len(rows), len(before), len(page))
	return false
}

func total(w sink.WriteResult) int64 { return w.Added + w.Updated + w.Deleted }
