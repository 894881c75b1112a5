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
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// LayoutStore is an empty store of a SQL sink, for RunLayout: the suite opens sinks on it,
// and reads and changes their tables behind their back in SQL that PostgreSQL and SQLite
// both speak.
type LayoutStore struct {
	// Open opens a sink on table in the store, answering Open's error. The suite closes
	// the sinks it opens.
	Open func(t *testing.T, table string) (Sink, error)
	// Exec runs statements in the store, failing t when one fails.
	Exec func(t *testing.T, statements ...string)
	// Query answers the one value of query's one row, as text, failing t when it fails.
	Query func(t *testing.T, query string) string
	// LegacyCheckpointTable creates the checkpoint table at layout version 1, as release
	// 0.1.0 did: without the owner columns.
	LegacyCheckpointTable string
}

// RunLayout checks that a SQL sink records the layout version of its tables in
// sink.LayoutTable and migrates tables of an older layout when it opens them, and refuses
// tables of a newer one. newStore answers an empty store for each case.
func RunLayout(t *testing.T, newStore func(t *testing.T) LayoutStore) {
	cases := []struct {
		name string
		test func(*testing.T, func(*testing.T) LayoutStore)
	}{
		{"FreshTablesRecordTheCurrentLayout", testFreshTablesRecordTheCurrentLayout},
		{"OlderLayoutIsMigratedAndRecorded", testOlderLayoutIsMigratedAndRecorded},
		{"UnrecordedCurrentLayoutIsRecorded", testUnrecordedCurrentLayoutIsRecorded},
		{"NewerLayoutIsRefused", testNewerLayoutIsRefused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.test(t, newStore) })
	}
}

// layoutTable is the records table of the layout cases.
const layoutTable = "contacts"

// open opens a sink on layoutTable in the store, closed when the test ends, failing t on error.
func (s LayoutStore) open(t *testing.T) Sink {
	t.Helper()
	opened, err := s.Open(t, layoutTable)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := opened.Close(); err != nil {
			t.Errorf("close sink: %v", err)
		}
	})
	return opened
}

// version answers the layout version recorded for table, 0 when none is.
func (s LayoutStore) version(t *testing.T, table string) int {
	t.Helper()
	text := s.Query(t, fmt.Sprintf("SELECT CAST(coalesce(max(version), 0) AS TEXT) FROM %s WHERE table_name = '%s'",
		sink.LayoutTable, table))
	version, err := strconv.Atoi(text)
	if err != nil {
		t.Fatalf("layout version of %s: %q is not a number", table, text)
	}
	return version
}

// versions answers the layout versions recorded for the tables of a sink on layoutTable.
func (s LayoutStore) versions(t *testing.T) map[string]int {
	t.Helper()
	versions := map[string]int{}
	for _, table := range []string{layoutTable, sink.CheckpointTable, sink.QuarantineTable} {
		versions[table] = s.version(t, table)
	}
	return versions
}

// currentVersions answers the layout versions of the tables a sink creates in an empty store.
func currentVersions(t *testing.T, newStore func(*testing.T) LayoutStore) map[string]int {
	t.Helper()
	fresh := newStore(t)
	closeSink(t, fresh.open(t))
	return fresh.versions(t)
}

func closeSink(t *testing.T, s Sink) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close sink: %v", err)
	}
}

// testFreshTablesRecordTheCurrentLayout checks that the tables a sink creates are recorded
// at a layout version, the checkpoint table's at 2 at least (version 1 had no owners), and
// that opening them again changes none.
func testFreshTablesRecordTheCurrentLayout(t *testing.T, newStore func(*testing.T) LayoutStore) {
	store := newStore(t)
	closeSink(t, store.open(t))
	versions := store.versions(t)
	for table, version := range versions {
		if version < 1 {
			t.Errorf("layout version of %s = %d, want one recorded", table, version)
		}
	}
	if versions[sink.CheckpointTable] < 2 {
		t.Errorf("layout version of %s = %d, want 2 or more (owners)", sink.CheckpointTable, versions[sink.CheckpointTable])
	}
	closeSink(t, store.open(t))
	if again := store.versions(t); fmt.Sprint(again) != fmt.Sprint(versions) {
		t.Errorf("layout versions after opening again = %v, want %v", again, versions)
	}
}

// testOlderLayoutIsMigratedAndRecorded checks that a checkpoint table of layout version 1
// (release 0.1.0, which recorded no versions) keeps its checkpoints, gets the owner
// columns, and is recorded at the version of a fresh one.
func testOlderLayoutIsMigratedAndRecorded(t *testing.T, newStore func(*testing.T) LayoutStore) {
	current := currentVersions(t, newStore)
	store := newStore(t)
	store.Exec(t, store.LegacyCheckpointTable,
		"INSERT INTO "+sink.CheckpointTable+" (table_name, provider_config_key, connection_id, model, variant, cursor, added, updated_at) "+
			"VALUES ('"+layoutTable+"', 'github', 'acme', 'Issue', 'base', 'c1', 1, '2026-01-01T00:00:00.000000Z')")

	sk, k := store.open(t), key("acme")
	if got := store.versions(t); fmt.Sprint(got) != fmt.Sprint(current) {
		t.Fatalf("layout versions after migrating = %v, want those of fresh tables, %v", got, current)
	}
	if c := checkpoint(t, sk, k); c != (sink.Checkpoint{Cursor: "c1", Written: sink.WriteResult{Added: 1}}) {
		t.Fatalf("checkpoint of layout 1 after migrating = %+v, want c1, 1 added, no owner", c)
	}
	if err := writeAs(sk, k, ownerA, "c2", record("x", added, 1)); err != nil {
		t.Fatalf("first owned page after migrating: %v", err)
	}
	expectConflict(t, writeAs(sk, k, ownerB, "c3", record("x", updated, 2)), k, ownerA)
	expectOwner(t, sk, k, ownerA)
}

// testUnrecordedCurrentLayoutIsRecorded checks that tables at the current layout without a
// recorded version (made by a build from before versions, which added the owner columns
// already) are taken as version 1, migrated without harm, and recorded.
func testUnrecordedCurrentLayoutIsRecorded(t *testing.T, newStore func(*testing.T) LayoutStore) {
	store := newStore(t)
	sk, k := store.open(t), key("acme")
	if err := writeAs(sk, k, ownerA, "c1", record("x", added, 1)); err != nil {
		t.Fatal(err)
	}
	current := store.versions(t)
	store.Exec(t, "DELETE FROM "+sink.LayoutTable)

	again := store.open(t)
	if got := store.versions(t); fmt.Sprint(got) != fmt.Sprint(current) {
		t.Fatalf("layout versions after opening unrecorded tables = %v, want %v", got, current)
	}
	expectOwner(t, again, k, ownerA)
	expectRows(t, again, k, record("x", added, 1))
}

// testNewerLayoutIsRefused checks that a table whose recorded layout is newer than the
// sink knows, whether the shared checkpoint table or the records table, is refused when
// the sink opens: a later release changed it, and this one would misread it. The refusal
// names the version and says to upgrade the operator.
func testNewerLayoutIsRefused(t *testing.T, newStore func(*testing.T) LayoutStore) {
	for _, table := range []string{sink.CheckpointTable, layoutTable} {
		t.Run(table, func(t *testing.T) {
			store := newStore(t)
			closeSink(t, store.open(t))
			newer := store.version(t, table) + 1
			store.Exec(t, fmt.Sprintf("UPDATE %s SET version = %d WHERE table_name = '%s'", sink.LayoutTable, newer, table))

			opened, err := store.Open(t, layoutTable)
			if err == nil {
				_ = opened.Close()
				t.Fatalf("Open of %s at layout version %d succeeded, want it refused", table, newer)
			}
			fix, refused := sink.Refusal(err)
			if !refused || sink.IsUnavailable(err) {
				t.Fatalf("Open of %s at layout version %d: %v (refused %t); want refused", table, newer, err, refused)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("layout version %d", newer)) || !strings.Contains(err.Error(), table) {
				t.Errorf("refusal %q does not name table %s and layout version %d", err, table, newer)
			}
			if !strings.Contains(fix, "upgrade the operator") {
				t.Errorf("fix %q does not say to upgrade the operator", fix)
			}
			if got := store.version(t, table); got != newer {
				t.Errorf("layout version of %s after the refusal = %d, want %d untouched", table, got, newer)
			}
		})
	}
}
