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
	"strings"
	"testing"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// HistorySink is a sink under test that keeps a history (sink.Version) when opened with
// Options.History, and reads it back.
type HistorySink interface {
	Sink
	// History answers every version of key's records, ordered by id, then valid_from.
	History(ctx context.Context, key sink.Key) ([]sink.Version, error)
}

// HistoryOpener opens a sink as Opener does; the suite asks for a history with
// Options.History.
type HistoryOpener func(t *testing.T, opts Options) HistorySink

// RunHistory checks the history of a sink that keeps one: every version written once,
// contiguous validity, nothing added by a replayed page or an older version, written in
// the page's transaction or not at all. Each case uses a table of its own.
func RunHistory(t *testing.T, open HistoryOpener) {
	cases := []struct {
		name string
		test func(*testing.T, *historySuite)
	}{
		{"EveryVersionOnceWithContiguousValidity", testEveryVersionOnce},
		{"ReplayedPagesAddNoVersion", testReplayedPagesAddNoVersion},
		{"OlderVersionAddsNoVersion", testOlderVersionAddsNoVersion},
		{"PrunedVersionKeepsFields", testHistoryPrunedVersionKeepsFields},
		{"DeletionIsAVersionSoftOrHard", testDeletionIsAVersion},
		{"KeysSharingATableStayApart", testHistoryKeysStayApart},
		{"DeleteRowsRemovesHistoryDeleteCheckpointKeepsIt", testDeleteRowsRemovesHistory},
		{"HistoryStartsWithTheRowsAlreadyStored", testHistoryStartsWithStoredRows},
		{"InterruptedWriteLeavesNoVersion", testInterruptedWriteLeavesNoVersion},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Short: <table>_history must fit PostgreSQL's 63 bytes.
			c.test(t, &historySuite{open: open, table: fmt.Sprint("conformance_history_", i)})
		})
	}
}

type historySuite struct {
	open  HistoryOpener
	table string
}

func (s *historySuite) sink(t *testing.T, opts Options) HistorySink {
	t.Helper()
	opts.Table = s.table
	opened := s.open(t, opts)
	t.Cleanup(func() {
		if err := opened.Close(); err != nil {
			t.Errorf("close sink: %v", err)
		}
	})
	return opened
}

func (s *historySuite) historySink(t *testing.T) HistorySink {
	return s.sink(t, Options{History: true})
}

// version is what the history holds of r, valid until the next version's modification.
func version(r sink.Record, next *sink.Record) sink.Version {
	v := sink.Version{Record: r, ValidFrom: r.LastModifiedAt}
	if next != nil {
		validTo := next.LastModifiedAt
		v.ValidTo = &validTo
	}
	return v
}

// chain answers the history of one record's versions, written in order.
func chain(records ...sink.Record) []sink.Version {
	out := make([]sink.Version, len(records))
	for i, r := range records {
		var next *sink.Record
		if i+1 < len(records) {
			next = &records[i+1]
		}
		out[i] = version(r, next)
	}
	return out
}

// expectHistory fails the test unless the history of k is want, in order.
func expectHistory(t *testing.T, s HistorySink, k sink.Key, want ...sink.Version) {
	t.Helper()
	got, err := s.History(context.Background(), k)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if diff := diffVersions(want, got); diff != "" {
		t.Fatalf("history of %s:\n%s", k, diff)
	}
}

func diffVersions(want, got []sink.Version) string {
	var diffs []string
	for i := 0; i < len(want) || i < len(got); i++ {
		switch {
		case i >= len(got):
			diffs = append(diffs, fmt.Sprintf("missing version %q of %q", want[i].Cursor, want[i].ID))
		case i >= len(want):
			diffs = append(diffs, fmt.Sprintf("unexpected version %q of %q", got[i].Cursor, got[i].ID))
		default:
			d := diffRecord(want[i].Record, got[i].Record)
			if !sameInstant(want[i].ValidFrom, got[i].ValidFrom) {
				d += fmt.Sprintf("; ValidFrom = %v, want %v", got[i].ValidFrom, want[i].ValidFrom)
			}
			if !sameOptionalInstant(want[i].ValidTo, got[i].ValidTo) {
				d += fmt.Sprintf("; ValidTo = %s, want %s", formatOptional(got[i].ValidTo), formatOptional(want[i].ValidTo))
			}
			if d != "" {
				diffs = append(diffs, fmt.Sprintf("version %d (%q of %q): %s", i, want[i].Cursor, want[i].ID, strings.TrimPrefix(d, "; ")))
			}
		}
	}
	return strings.Join(diffs, "\n")
}

func testEveryVersionOnce(t *testing.T, s *historySuite) {
	sk, k := s.historySink(t), key("conn")
	versions := make([]sink.Record, 5)
	for v := range versions {
		action := updated
		if v == 0 {
			action = added
		}
		versions[v] = record("a", action, v+1)
		// One page per sync, each with another record beside it.
		write(t, sk, k, fmt.Sprint("c", v+1), versions[v], record(fmt.Sprint("other-", v), added, v+1))
	}
	want := chain(versions...)
	for v := range 5 {
		want = append(want, version(record(fmt.Sprint("other-", v), added, v+1), nil))
	}
	expectHistory(t, sk, k, want...)
	expectRows(t, sk, k, append([]sink.Record{versions[4]}, otherRecords(5)...)...)
}

func otherRecords(n int) []sink.Record {
	out := make([]sink.Record, n)
	for v := range n {
		out[v] = record(fmt.Sprint("other-", v), added, v+1)
	}
	return out
}

func testReplayedPagesAddNoVersion(t *testing.T, s *historySuite) {
	sk, k := s.historySink(t), key("conn")
	pages := [][]sink.Record{
		{record("a", added, 1), record("b", added, 1)},
		{record("a", updated, 2)},
		{record("a", updated, 3), record("b", updated, 3)},
	}
	for i, page := range pages {
		write(t, sk, k, fmt.Sprint("c", i), page...)
	}
	want := append(chain(record("a", added, 1), record("a", updated, 2), record("a", updated, 3)),
		chain(record("b", added, 1), record("b", updated, 3))...)
	expectHistory(t, sk, k, want...)
	// A crash before the status patch replays the last page; a resync replays them all.
	write(t, sk, k, "c2", pages[2]...)
	for i, page := range pages {
		write(t, sk, k, fmt.Sprint("c", i), page...)
	}
	expectHistory(t, sk, k, want...)
}

func testOlderVersionAddsNoVersion(t *testing.T, s *historySuite) {
	sk, k := s.historySink(t), key("conn")
	write(t, sk, k, "c1", record("a", updated, 3))
	write(t, sk, k, "c2", record("a", updated, 2))
	expectHistory(t, sk, k, version(record("a", updated, 3), nil))
}

func testHistoryPrunedVersionKeepsFields(t *testing.T, s *historySuite) {
	sk, k := s.historySink(t), key("conn")
	v1, v2 := record("a", added, 1), pruned(record("a", updated, 2))
	write(t, sk, k, "c1", v1)
	write(t, sk, k, "c2", v2)
	expectHistory(t, sk, k, chain(v1, withPayloadOf(v2, v1))...)
}

func testDeletionIsAVersion(t *testing.T, s *historySuite) {
	for _, hard := range []bool{false, true} {
		sk := s.sink(t, Options{History: true, HardDeletes: hard})
		k := key(fmt.Sprint("hard-", hard))
		v1, v2, v3 := record("a", added, 1), record("a", deleted, 2), record("a", added, 3)
		write(t, sk, k, "c1", v1)
		write(t, sk, k, "c2", v2)
		expectHistory(t, sk, k, chain(v1, v2)...)
		write(t, sk, k, "c3", v3) // undeleted at the source
		expectHistory(t, sk, k, chain(v1, v2, v3)...)
	}
}

func testHistoryKeysStayApart(t *testing.T, s *historySuite) {
	sk := s.historySink(t)
	k1, k2 := key("one"), key("two")
	write(t, sk, k1, "c1", record("a", added, 1))
	write(t, sk, k2, "c1", record("a", added, 2))
	write(t, sk, k1, "c2", record("a", updated, 3))
	expectHistory(t, sk, k1, chain(record("a", added, 1), record("a", updated, 3))...)
	expectHistory(t, sk, k2, version(record("a", added, 2), nil))
}

func testDeleteRowsRemovesHistory(t *testing.T, s *historySuite) {
	sk := s.historySink(t)
	k1, k2 := key("one"), key("two")
	write(t, sk, k1, "c1", record("a", added, 1))
	write(t, sk, k2, "c1", record("a", added, 1))
	if err := sk.DeleteCheckpoint(context.Background(), k2, sink.Owner{}); err != nil {
		t.Fatalf("DeleteCheckpoint: %v", err)
	}
	expectHistory(t, sk, k2, version(record("a", added, 1), nil))
	if err := sk.DeleteRows(context.Background(), k1, sink.Owner{}); err != nil {
		t.Fatalf("DeleteRows: %v", err)
	}
	expectHistory(t, sk, k1)
	expectHistory(t, sk, k2, version(record("a", added, 1), nil))
}

func testHistoryStartsWithStoredRows(t *testing.T, s *historySuite) {
	k := key("conn")
	v1, v2 := record("a", added, 1), record("a", updated, 2)
	write(t, s.sink(t, Options{}), k, "c1", v1)
	sk := s.historySink(t)
	expectHistory(t, sk, k, version(v1, nil))
	write(t, sk, k, "c2", v2)
	expectHistory(t, sk, k, chain(v1, v2)...)
}

func testInterruptedWriteLeavesNoVersion(t *testing.T, s *historySuite) {
	sk := s.historySink(t)
	before := []sink.Record{record("a", added, 1), record("b", added, 1)}
	page := make([]sink.Record, 0, 102)
	page = append(page, record("a", updated, 2), record("b", deleted, 2))
	for i := range 100 {
		page = append(page, record(fmt.Sprintf("n%03d", i), added, 2))
	}
	var interrupted int
	for calls := 1; ; calls += 1 + calls/5 {
		if calls > 100000 {
			t.Fatal("the write never completed")
		}
		k := key(fmt.Sprint("attempt-", calls))
		write(t, sk, k, "before", before...)
		_, err := sk.WritePage(cancelAfterCalls(context.Background(), calls), k, sink.Page{Records: page, Checkpoint: "after"})
		// Once the rows settle, the transaction has ended: the history agrees with them.
		written := expectBeforeOrAfter(t, sk, k, before, page)
		versions, historyErr := sk.History(context.Background(), k)
		if historyErr != nil {
			t.Fatalf("History: %v", historyErr)
		}
		if want := map[bool]int{false: 2, true: 2 + len(page)}[written]; len(versions) != want {
			t.Fatalf("after a write interrupted at call %d (page stored: %t), %d versions, want %d", calls, written, len(versions), want)
		}
		if err == nil {
			break
		}
		interrupted++
	}
	if interrupted == 0 {
		t.Fatal("no write was interrupted: the sink never looks at its context")
	}
	t.Logf("%d writes interrupted at successive points before one completed", interrupted)
}
