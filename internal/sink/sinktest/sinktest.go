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

// Package sinktest is the conformance suite every sink.Sink passes: the rules of package
// sink (idempotent upserts, newest version wins, pruned records keep their fields, soft
// and hard deletes, one transaction per page, keys that share a table stay apart, payloads
// normalised and unstorable records quarantined alike, a data set owned by the
// first NangoSync that writes it) checked against a real store. A sink's own tests run it:
//
//	func TestConformance(t *testing.T) {
//		sinktest.Run(t, func(t *testing.T, opts sinktest.Options) sinktest.Sink {
//			s, err := mysink.Open(ctx, where, mysink.Options{Table: opts.Table, HardDeletes: opts.HardDeletes})
//			...
//			return s
//		})
//	}
package sinktest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// Sink is a sink under test: a sink.Sink that can read its rows back.
type Sink interface {
	sink.Sink
	// ReadRows answers every row stored for key, deleted ones included, ordered by id.
	ReadRows(ctx context.Context, key sink.Key) ([]sink.Record, error)
	// Quarantine answers the records of key the sink could not store, ordered by id.
	Quarantine(ctx context.Context, key sink.Key) ([]sink.Quarantined, error)
}

// Options are what the suite asks of the sinks it opens.
type Options struct {
	// Table is the records table. Sinks opened with the same Table within one Run must
	// share their rows and checkpoints, as sinks of several NangoSyncs do.
	Table string
	// HardDeletes asks for a sink that removes deleted records.
	HardDeletes bool
	// History asks for a sink that keeps every version in a history (see RunHistory).
	History bool
}

// Opener opens a sink on one store shared by every call within a Run. It fails t when it
// cannot. The suite closes the sinks it opens.
type Opener func(t *testing.T, opts Options) Sink

// Run checks that the sinks open makes keep every rule of package sink. Each case uses a
// table of its own.
func Run(t *testing.T, open Opener) {
	cases := []struct {
		name string
		test func(*testing.T, *suite)
	}{
		{"UpsertIsIdempotent", testUpsertIsIdempotent},
		{"NewerVersionReplacesOlder", testNewerVersionReplacesOlder},
		{"OlderVersionNeverOverwritesNewer", testOlderVersionNeverOverwritesNewer},
		{"PrunedRecordKeepsFields", testPrunedRecordKeepsFields},
		{"PrunedRecordFirstSeenHasNoFields", testPrunedRecordFirstSeenHasNoFields},
		{"SoftDeleteKeepsPayload", testSoftDeleteKeepsPayload},
		{"UndeleteClearsDeletedAt", testUndeleteClearsDeletedAt},
		{"HardDeleteRemovesRow", testHardDeleteRemovesRow},
		{"KeysSharingATableStayApart", testKeysSharingATableStayApart},
		{"SinksOnTheSameTableShareRows", testSinksOnTheSameTableShareRows},
		{"CheckpointIsWrittenWithThePage", testCheckpointIsWrittenWithThePage},
		{"EmptyPageMovesCheckpoint", testEmptyPageMovesCheckpoint},
		{"DeleteCheckpointKeepsRows", testDeleteCheckpointKeepsRows},
		{"CheckpointAddsUpWrites", testCheckpointAddsUpWrites},
		{"DeleteRowsRemovesOnlyThatKey", testDeleteRowsRemovesOnlyThatKey},
		{"DuplicateIDWithinPage", testDuplicateIDWithinPage},
		{"WriteResultCountsByAction", testWriteResultCountsByAction},
		{"PayloadFidelity", testPayloadFidelity},
		{"TimestampsKeepMicroseconds", testTimestampsKeepMicroseconds},
		{"ConcurrentWritesOnDifferentKeys", testConcurrentWritesOnDifferentKeys},
		{"InvalidPageWritesNothing", testInvalidPageWritesNothing},
		{"InterruptedWriteLeavesNothing", testInterruptedWriteLeavesNothing},
		{"PayloadsAreNormalised", testPayloadsAreNormalised},
		{"UnstorableIDsAreQuarantined", testUnstorableIDsAreQuarantined},
		{"QuarantineKeepsNewestVersion", testQuarantineKeepsNewestVersion},
		{"NumbersOutOfRangeAreQuarantined", testNumbersOutOfRangeAreQuarantined},
		{"FirstWriterOwnsTheDataSet", testFirstWriterOwnsTheDataSet},
		{"DeletionTouchesOnlyOwnData", testDeletionTouchesOnlyOwnData},
		{"UnownedCheckpointIsClaimedByFirstOwner", testUnownedCheckpointIsClaimedByFirstOwner},
		{"ConcurrentClaimsHaveOneWinner", testConcurrentClaimsHaveOneWinner},
		{"ResetKeepsTheOwner", testResetKeepsTheOwner},
		{"RowsWithoutCheckpointAreNoOnes", testRowsWithoutCheckpointAreNoOnes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.test(t, &suite{open: open, table: tableName(c.name)})
		})
	}
}

// suite is what each case gets: a way to open sinks on the case's own table.
type suite struct {
	open  Opener
	table string
}

// sink opens a sink on the case's table, closed when the case ends.
func (s *suite) sink(t *testing.T) Sink {
	return s.openSink(t, Options{Table: s.table})
}

func (s *suite) hardDeletingSink(t *testing.T) Sink {
	return s.openSink(t, Options{Table: s.table, HardDeletes: true})
}

func (s *suite) openSink(t *testing.T, opts Options) Sink {
	t.Helper()
	opened := s.open(t, opts)
	t.Cleanup(func() {
		if err := opened.Close(); err != nil {
			t.Errorf("close sink: %v", err)
		}
	})
	return opened
}

// tableName turns a case name into a table name: lower case, as the API requires.
func tableName(caseName string) string {
	var b strings.Builder
	b.WriteString("conformance")
	for _, r := range caseName {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// key answers a key for connection; every case's keys differ only where the case says so.
func key(connection string) sink.Key {
	return sink.Key{ProviderConfigKey: "github", ConnectionID: connection, Model: "Issue", Variant: "base"}
}

// epoch is when the suite's records were first seen; versions are counted in seconds after it.
var epoch = time.Date(2026, 4, 14, 18, 46, 3, 97459000, time.UTC)

// record is a version of record id: modified version seconds after epoch, with a payload
// that names the version unless one is given.
func record(id string, action sink.Action, version int, payload ...string) sink.Record {
	body := fmt.Sprintf(`{"id":%q,"version":%d}`, id, version)
	if len(payload) > 0 {
		body = payload[0]
	}
	r := sink.Record{
		ID:             id,
		Payload:        []byte(body),
		Action:         action,
		FirstSeenAt:    epoch,
		LastModifiedAt: epoch.Add(time.Duration(version) * time.Second),
		Cursor:         fmt.Sprintf("%s@%d", id, version),
	}
	if action == sink.ActionDeleted {
		deletedAt := r.LastModifiedAt
		r.DeletedAt = &deletedAt
	}
	return r
}

// pruned is record with its payload pruned, as Nango sends it.
func pruned(r sink.Record) sink.Record {
	r.Payload = nil
	r.Pruned = true
	return r
}

// withPayloadOf answers r as the sink stores it once a version carrying other's payload
// was written before it: r's metadata with other's fields.
func withPayloadOf(r, other sink.Record) sink.Record {
	r.Payload = other.Payload
	return r
}

// write writes one page and fails the test on error.
func write(t *testing.T, s sink.Sink, k sink.Key, checkpoint string, records ...sink.Record) sink.WriteResult {
	t.Helper()
	result, err := s.WritePage(context.Background(), k, sink.Page{Records: records, Checkpoint: checkpoint})
	if err != nil {
		t.Fatalf("WritePage: %v", err)
	}
	return result
}

func readRows(t *testing.T, s Sink, k sink.Key) []sink.Record {
	t.Helper()
	rows, err := s.ReadRows(context.Background(), k)
	if err != nil {
		t.Fatalf("ReadRows: %v", err)
	}
	return rows
}

func checkpoint(t *testing.T, s sink.Sink, k sink.Key) sink.Checkpoint {
	t.Helper()
	c, err := s.Checkpoint(context.Background(), k)
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return c
}

// expectRows fails the test unless the rows stored for k are want, in id order.
func expectRows(t *testing.T, s Sink, k sink.Key, want ...sink.Record) {
	t.Helper()
	if diff := diffRecords(want, readRows(t, s, k)); diff != "" {
		t.Fatalf("rows of %s:\n%s", k, diff)
	}
}

// expectCheckpoint fails the test unless the cursor stored for k is want.
func expectCheckpoint(t *testing.T, s sink.Sink, k sink.Key, want string) {
	t.Helper()
	if got := checkpoint(t, s, k).Cursor; got != want {
		t.Fatalf("checkpoint of %s = %q, want %q", k, got, want)
	}
}

// expectWritten fails the test unless the counts stored with k's checkpoint are want.
func expectWritten(t *testing.T, s sink.Sink, k sink.Key, want sink.WriteResult) {
	t.Helper()
	if got := checkpoint(t, s, k).Written; got != want {
		t.Fatalf("counts stored with the checkpoint of %s = %+v, want %+v", k, got, want)
	}
}

// runConcurrently runs f(0) … f(n-1) in goroutines and answers their errors.
func runConcurrently(n int, f func(i int) error) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return failed
}
