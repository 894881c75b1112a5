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

package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/sinktest"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
)

func TestConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nango.db")
	sinktest.Run(t, func(t *testing.T, opts sinktest.Options) sinktest.Sink {
		return open(t, path, sqlite.Options{Table: opts.Table, HardDeletes: opts.HardDeletes})
	})
}

func TestHistoryConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nango.db")
	sinktest.RunHistory(t, func(t *testing.T, opts sinktest.Options) sinktest.HistorySink {
		return open(t, path, sqlite.Options{Table: opts.Table, HardDeletes: opts.HardDeletes, History: opts.History})
	})
}

func TestLayoutConformance(t *testing.T) {
	sinktest.RunLayout(t, func(t *testing.T) sinktest.LayoutStore {
		path := filepath.Join(t.TempDir(), "nango.db")
		return sinktest.LayoutStore{
			Open: func(t *testing.T, table string) (sinktest.Sink, error) {
				return sqlite.Open(context.Background(), path, sqlite.Options{Table: table})
			},
			Exec: func(t *testing.T, statements ...string) {
				t.Helper()
				db := rawDB(t, path)
				for _, statement := range statements {
					if _, err := db.Exec(statement); err != nil {
						t.Fatalf("%s: %v", statement, err)
					}
				}
			},
			Query:                 func(t *testing.T, query string) string { return queryString(t, path, query) },
			LegacyCheckpointTable: legacyCheckpointTable,
		}
	})
}

// legacyCheckpointTable is the checkpoint table as release 0.1.0 created it: layout
// version 1, before owners were recorded.
const legacyCheckpointTable = `CREATE TABLE nango_sync_checkpoints (
	table_name TEXT NOT NULL,
	provider_config_key TEXT NOT NULL,
	connection_id TEXT NOT NULL,
	model TEXT NOT NULL,
	variant TEXT NOT NULL,
	cursor TEXT NOT NULL,
	added INTEGER NOT NULL DEFAULT 0,
	updated INTEGER NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (table_name, provider_config_key, connection_id, model, variant)
)`

// closeAtEnd closes s when the test ends, failing it if closing fails.
func closeAtEnd(t testing.TB, s io.Closer) {
	t.Cleanup(func() { closeNow(t, s) })
}

func closeNow(t testing.TB, s io.Closer) {
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func open(t testing.TB, path string, opts sqlite.Options) *sqlite.Sink {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestDatabaseIsInWALMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nango.db")
	closeNow(t, open(t, path, sqlite.Options{Table: "contacts"}))
	if mode := queryString(t, path, "PRAGMA journal_mode"); mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}

func TestReplayedPageRewritesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nango.db")
	s := open(t, path, sqlite.Options{Table: "contacts"})
	closeAtEnd(t, s)
	page := sink.Page{Records: []sink.Record{testRecord("a", 1), testRecord("b", 1)}, Checkpoint: "c1"}
	if _, err := s.WritePage(ctx, testKey, page); err != nil {
		t.Fatal(err)
	}
	const writtenAt = "SELECT group_concat(id || '@' || written_at, ',') FROM (SELECT * FROM contacts ORDER BY id)"
	first := queryString(t, path, writtenAt)
	if _, err := s.WritePage(ctx, testKey, page); err != nil {
		t.Fatal(err)
	}
	if again := queryString(t, path, writtenAt); again != first {
		t.Fatalf("replaying a page rewrote its rows: %s, then %s", first, again)
	}
}

func TestSinksOnOneFileWriteConcurrently(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nango.db")
	const tables, pages = 4, 10
	sinks := make([]*sqlite.Sink, tables)
	for i := range sinks {
		sinks[i] = open(t, path, sqlite.Options{Table: fmt.Sprint("table_", i)})
		closeAtEnd(t, sinks[i])
	}

	errs := make([]error, tables)
	var wg sync.WaitGroup
	for i, s := range sinks {
		wg.Go(func() {
			for p := range pages {
				page := sink.Page{Records: []sink.Record{testRecord(fmt.Sprint("r", p), p)}, Checkpoint: fmt.Sprint("c", p)}
				if _, err := s.WritePage(ctx, testKey, page); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for i, s := range sinks {
		if errs[i] != nil {
			t.Fatalf("sink %d: %v", i, errs[i])
		}
		rows, err := s.ReadRows(ctx, testKey)
		if err != nil || len(rows) != pages {
			t.Fatalf("sink %d holds %d rows (%v), want %d", i, len(rows), err, pages)
		}
	}
}

func TestWriteLockedTooLongIsUnavailable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nango.db")
	s := open(t, path, sqlite.Options{Table: "contacts", BusyTimeout: 20 * time.Millisecond})
	closeAtEnd(t, s)

	// Another process holds the write lock for as long as this test wants.
	other := rawDB(t, path)
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	page := sink.Page{Records: []sink.Record{testRecord("a", 1)}, Checkpoint: "c1"}
	_, err = s.WritePage(ctx, testKey, page)
	if !sink.IsUnavailable(err) {
		t.Fatalf("WritePage while another writer holds the lock: %v, want an unavailable error", err)
	}

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WritePage(ctx, testKey, page); err != nil {
		t.Fatalf("WritePage once the lock is free: %v", err)
	}
}

func TestOpenRejectsBadPaths(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{"", filepath.Join(t.TempDir(), "what?.db"), filepath.Join(t.TempDir(), "missing", "dir", "nango.db")} {
		if s, err := sqlite.Open(ctx, path, sqlite.Options{Table: "contacts"}); err == nil {
			closeNow(t, s)
			t.Errorf("Open(%q) succeeded", path)
		}
	}
	if _, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "nango.db"), sqlite.Options{}); err == nil {
		t.Error("Open without a table succeeded")
	}
}

var testKey = sink.Key{ProviderConfigKey: "hubspot", ConnectionID: "acme", Model: "Contact", Variant: "base"}

func TestMissingDirectoryAndTableOfAnotherShapeAreRefused(t *testing.T) {
	ctx := context.Background()
	_, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "missing", "nango.db"), sqlite.Options{Table: "contacts"})
	if fix, refused := sink.Refusal(err); !refused || fix == "" {
		t.Errorf("Open in a missing directory: %v (refused %t, fix %q); want refused with what to fix", err, refused, fix)
	}

	path := filepath.Join(t.TempDir(), "nango.db")
	if _, err := rawDB(t, path).ExecContext(ctx, "CREATE TABLE contacts (id text PRIMARY KEY, name text)"); err != nil {
		t.Fatal(err)
	}
	s := open(t, path, sqlite.Options{Table: "contacts"})
	closeAtEnd(t, s)
	_, err = s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 1)}, Checkpoint: "c1"})
	if fix, refused := sink.Refusal(err); !refused || !strings.Contains(fix, "another shape") {
		t.Fatalf("WritePage into a table of another shape: %v (refused %t, fix %q)", err, refused, fix)
	}
}

func TestCheckpointTableFromBeforeOwnersIsMigrated(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nango.db")
	// The checkpoint table as sinks created it before owners were recorded.
	_, err := rawDB(t, path).ExecContext(ctx, `CREATE TABLE nango_sync_checkpoints (
		table_name TEXT NOT NULL, provider_config_key TEXT NOT NULL, connection_id TEXT NOT NULL,
		model TEXT NOT NULL, variant TEXT NOT NULL, cursor TEXT NOT NULL,
		added INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0,
		updated_at TEXT NOT NULL,
		PRIMARY KEY (table_name, provider_config_key, connection_id, model, variant));
	INSERT INTO nango_sync_checkpoints VALUES ('contacts', 'hubspot', 'acme', 'Contact', 'base', 'c1', 1, 0, 0, '');`)
	if err != nil {
		t.Fatal(err)
	}

	s := open(t, path, sqlite.Options{Table: "contacts"})
	closeAtEnd(t, s)
	if c, err := s.Checkpoint(ctx, testKey); err != nil || c != (sink.Checkpoint{Cursor: "c1", Written: sink.WriteResult{Added: 1}}) {
		t.Fatalf("checkpoint from before owners = %+v, %v; want c1, 1 added, no owner", c, err)
	}
	ownerA, ownerB := sink.Owner{UID: "uid-a", Name: "team-a/contacts"}, sink.Owner{UID: "uid-b", Name: "team-b/contacts"}
	if _, err := s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 1)}, Checkpoint: "c2", Owner: ownerA}); err != nil {
		t.Fatalf("first owned page: %v", err)
	}
	_, err = s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 2)}, Checkpoint: "c3", Owner: ownerB})
	var conflict *sink.ConflictError
	if !errors.As(err, &conflict) || conflict.Owner != ownerA {
		t.Fatalf("page of another owner: %v; want a conflict naming %s", err, ownerA)
	}
	if c, _ := s.Checkpoint(ctx, testKey); c.Cursor != "c2" || c.Owner != ownerA {
		t.Fatalf("checkpoint = %+v, want c2 owned by %s", c, ownerA)
	}
	closeNow(t, open(t, path, sqlite.Options{Table: "contacts"}))
}

func testRecord(id string, version int) sink.Record {
	at := time.Date(2026, 4, 14, 18, 46, 3, 0, time.UTC)
	return sink.Record{
		ID:             id,
		Payload:        []byte(fmt.Sprintf(`{"id":%q,"version":%d}`, id, version)),
		Action:         sink.ActionAdded,
		FirstSeenAt:    at,
		LastModifiedAt: at.Add(time.Duration(version) * time.Second),
		Cursor:         fmt.Sprint(id, version),
	}
}

// rawDB opens the file as another program would, without the sink.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func queryString(t *testing.T, path, query string) string {
	t.Helper()
	var s string
	if err := rawDB(t, path).QueryRow(query).Scan(&s); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return s
}
