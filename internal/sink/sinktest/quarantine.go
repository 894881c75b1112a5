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
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// testPayloadsAreNormalised writes payloads PostgreSQL refuses as they are (\u0000, lone
// surrogates, bytes that are not UTF-8) and checks that every sink stores the same
// documented replacement, U+FFFD, and keeps everything else.
func testPayloadsAreNormalised(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	cases := []struct{ sent, stored string }{
		{`{"nul":"a\u0000b","key\u0000":1}`, `{"nul":"a\ufffdb","key\ufffd":1}`},
		{`{"high":"\ud800x","low":"\uDC00","pair":"\ud83d\ude80","highs":"\ud800\ud800\udc00"}`,
			`{"high":"\ufffdx","low":"\ufffd","pair":"🚀","highs":"\ufffd𐀀"}`},
		{`{"escaped":"\\u0000 and \\ud800 are text","tail":"\\"}`, `{"escaped":"\\u0000 and \\ud800 are text","tail":"\\"}`},
		{"{\"bytes\":\"a\xffb\xc3\x28c\",\"\xfe\":[\"\xe2\x82\"]}", `{"bytes":"a\ufffdb\ufffd(c","\ufffd":["\ufffd\ufffd"]}`},
		{`{"plain":"nothing to do","n":15}`, `{"plain":"nothing to do","n":15}`},
	}
	sent := make([]sink.Record, len(cases))
	want := make([]sink.Record, len(cases))
	for i, c := range cases {
		sent[i] = record(fmt.Sprint("r", i), added, 1, c.sent)
		want[i] = record(fmt.Sprint("r", i), added, 1, c.stored)
	}
	if result := write(t, sk, k, "c1", sent...); result.Added != int64(len(cases)) || result.Quarantined != 0 {
		t.Fatalf("writing %d records that can be normalised counted %+v", len(cases), result)
	}
	expectRows(t, sk, k, want...)
	expectCheckpoint(t, sk, k, "c1")
	// Comparing decoded JSON cannot tell these apart: Go's decoder replaces bad bytes and
	// lone surrogates itself. The stored text must not hold them.
	for _, row := range readRows(t, sk, k) {
		lower := bytes.ToLower(row.Payload)
		if !utf8.Valid(row.Payload) || bytes.Contains(lower, []byte(`"\ud800`)) ||
			bytes.Contains(lower, []byte(`"\udc00`)) || bytes.Contains(lower, []byte(`x\ud800`)) {
			t.Errorf("row %s holds %q, which PostgreSQL would refuse", row.ID, row.Payload)
		}
	}
}

// testUnstorableIDsAreQuarantined writes a page in which some ids cannot be stored: the
// other records and the checkpoint are written, and the refused ones wait in the
// quarantine, whole, with the reason.
func testUnstorableIDsAreQuarantined(t *testing.T, s *suite) {
	sk, k, other := s.sink(t), key("acme"), key("globex")
	longest := strings.Repeat("x", sink.MaxIDBytes-1) + "y"
	unstorable := map[string]string{
		"nul\x00id":                            "NUL",
		strings.Repeat("z", sink.MaxIDBytes+1): "bytes long",
		"bad\xffutf8":                          "UTF-8",
	}
	page := make([]sink.Record, 0, len(unstorable)+3)
	page = append(page, record("a", added, 1), record(longest, added, 1))
	for id := range unstorable {
		page = append(page, unstorableRecord(id, added, 1))
	}
	page = append(page, record("b", deleted, 1))

	for replay := range 2 { // a replayed page changes nothing
		result := write(t, sk, k, "c1", page...)
		if want := (sink.WriteResult{Added: 2, Deleted: 1, Quarantined: 3}); result != want {
			t.Fatalf("a page with 3 unstorable ids counted %+v, want %+v", result, want)
		}
		expectRows(t, sk, k, record("a", added, 1), record("b", deleted, 1), record(longest, added, 1))
		expectCheckpoint(t, sk, k, "c1")
		if replay == 0 {
			expectWritten(t, sk, k, sink.WriteResult{Added: 2, Deleted: 1})
		}
		quarantined := readQuarantine(t, sk, k)
		if len(quarantined) != len(unstorable) {
			t.Fatalf("quarantined %d records, want %d", len(quarantined), len(unstorable))
		}
		for _, q := range quarantined {
			reason, ok := unstorable[q.ID]
			if !ok {
				t.Fatalf("quarantined %q, which was not refused", q.ID)
			}
			if !strings.Contains(q.Reason, reason) {
				t.Errorf("%q was quarantined because %q, want a reason that says %q", q.ID, q.Reason, reason)
			}
			if diff := diffRecord(unstorableRecord(q.ID, added, 1), q.Record); diff != "" {
				t.Errorf("quarantined %q: %s", q.ID, diff)
			}
		}
	}

	// Another data set's quarantine is its own, and DeleteRows empties a data set's.
	write(t, sk, other, "o1", unstorableRecord("nul\x00id", added, 1))
	if err := sk.DeleteRows(context.Background(), k, sink.Owner{}); err != nil {
		t.Fatalf("DeleteRows: %v", err)
	}
	if q := readQuarantine(t, sk, k); len(q) != 0 {
		t.Fatalf("after DeleteRows, %d records are still quarantined", len(q))
	}
	if q := readQuarantine(t, sk, other); len(q) != 1 {
		t.Fatalf("another data set's quarantine holds %d records after DeleteRows, want 1", len(q))
	}
}

// testQuarantineKeepsNewestVersion checks that the quarantine merges versions as the
// records table does: newest wins, pruned versions keep the fields.
func testQuarantineKeepsNewestVersion(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	const id = "nul\x00id"
	write(t, sk, k, "c2", unstorableRecord(id, updated, 2))
	write(t, sk, k, "c1", unstorableRecord(id, added, 1))
	expectQuarantined(t, sk, k, unstorableRecord(id, updated, 2))
	newer := pruned(unstorableRecord(id, deleted, 3))
	write(t, sk, k, "c3", newer)
	expectQuarantined(t, sk, k, withPayloadOf(newer, unstorableRecord(id, updated, 2)))
	expectRows(t, sk, k)
	expectCheckpoint(t, sk, k, "c3")
}

// unstorableRecord is record for an id that neither a JSON payload nor a cursor can quote
// as record does.
func unstorableRecord(id string, action sink.Action, version int) sink.Record {
	r := record(id, action, version, fmt.Sprintf(`{"version":%d}`, version))
	r.Cursor = fmt.Sprintf("%x@%d", id, version)
	return r
}

func readQuarantine(t *testing.T, s Sink, k sink.Key) []sink.Quarantined {
	t.Helper()
	q, err := s.Quarantine(context.Background(), k)
	if err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	return q
}

func expectQuarantined(t *testing.T, s Sink, k sink.Key, want ...sink.Record) {
	t.Helper()
	quarantined := readQuarantine(t, s, k)
	got := make([]sink.Record, len(quarantined))
	for i, q := range quarantined {
		got[i] = q.Record
	}
	if diff := diffRecords(want, got); diff != "" {
		t.Fatalf("quarantine of %s:\n%s", k, diff)
	}
}

// testNumbersOutOfRangeAreQuarantined writes numbers on both sides of the limits of
// PostgreSQL's numeric: those it holds are stored, the others quarantined, by every sink.
func testNumbersOutOfRangeAreQuarantined(t *testing.T, s *suite) {
	sk, k := s.sink(t), key("acme")
	zeros := strings.Repeat("0", 131072)
	fits := []string{"0e200000", "0e-16383", "1.000e-16380", "0.000123e131075", "123e131069", "-1e131071",
		"1.5e-16382", "1E+5", "0." + zeros[:16383], "1" + zeros[:131071], "-0.5", "12345678901234567890"}
	overflows := []string{"0e-20000", "0e-16384", "0.0e-16383", "1.000e-16381", "0.000123e131076", "123e131070",
		"0e999999999999", "1e-999999999999", "1e131072", "0." + zeros[:16384], "1" + zeros, "1.5e-16383", "10e-16384"}
	page := make([]sink.Record, 0, len(fits)+len(overflows))
	stored := make([]string, 0, len(fits))
	for i, n := range fits {
		r := record(fmt.Sprintf("fits%02d", i), added, 1, `{"s":"1e999999 \"-1e999999\"","n":`+n+`}`)
		page, stored = append(page, r), append(stored, r.ID)
	}
	for i, n := range overflows {
		page = append(page, record(fmt.Sprintf("over%02d", i), added, 1, `{"s":"1e999999","n":[`+n+`]}`))
	}
	result := write(t, sk, k, "c1", page...)
	if want := (sink.WriteResult{Added: int64(len(fits)), Quarantined: int64(len(overflows))}); result != want {
		t.Fatalf("counted %+v, want %+v", result, want)
	}
	// jsonb writes numbers in full (1E+5 as 100000): compare ids, not payloads.
	rows := readRows(t, sk, k)
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	if !slices.Equal(ids, stored) {
		t.Fatalf("stored %q, want %q", ids, stored)
	}
	for _, q := range readQuarantine(t, sk, k) {
		if !strings.HasPrefix(q.ID, "over") || !strings.Contains(q.Reason, "numeric") {
			t.Errorf("quarantined %s because %q", q.ID, q.Reason)
		}
	}
}
