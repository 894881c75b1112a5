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

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/postgres"
	"github.com/nango-operator/nango-operator/internal/sink/sinktest"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	sinktest.Run(t, func(t *testing.T, opts sinktest.Options) sinktest.Sink {
		return open(t, dsn, postgres.Options{Table: opts.Table, HardDeletes: opts.HardDeletes})
	})
}

func TestHistoryConformance(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	sinktest.RunHistory(t, func(t *testing.T, opts sinktest.Options) sinktest.HistorySink {
		return open(t, dsn, postgres.Options{Table: opts.Table, HardDeletes: opts.HardDeletes, History: opts.History})
	})
}

func TestLayoutConformance(t *testing.T) {
	sinktest.RunLayout(t, func(t *testing.T) sinktest.LayoutStore {
		dsn := pgtest.NewDatabase(t)
		return sinktest.LayoutStore{
			Open: func(t *testing.T, table string) (sinktest.Sink, error) {
				return postgres.Open(context.Background(), dsn, postgres.Options{Table: table})
			},
			Exec:                  func(t *testing.T, statements ...string) { execSQL(t, dsn, statements...) },
			Query:                 func(t *testing.T, query string) string { return querySQL(t, dsn, query) },
			LegacyCheckpointTable: legacyCheckpointTable,
		}
	})
}

// closeAtEnd closes s when the test ends, failing it if closing fails.
func closeAtEnd(t testing.TB, s io.Closer) {
	t.Cleanup(func() { closeNow(t, s) })
}

func closeNow(t testing.TB, s io.Closer) {
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func open(t testing.TB, dsn string, opts postgres.Options) *postgres.Sink {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestOpenConcurrentlyCreatesTheTableOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	// Without the DDL lock, concurrent CREATE TABLE IF NOT EXISTS fails with a unique
	// violation on pg_type in some of them; every round is a fresh table and schema.
	for round := range 3 {
		opts := postgres.Options{Schema: fmt.Sprint("tenant_", round), Table: "contacts"}
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				s, err := postgres.Open(context.Background(), dsn, opts)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: concurrent Open: %v", round, err)
			}
		}
	}
}

func TestOpenWithTablesCreatedByADBANeedsNoCreatePrivilege(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	closeNow(t, open(t, dsn, postgres.Options{Table: "contacts"}))
	// Roles belong to the whole server, which other tests share: name it after the database.
	writer := "writer_" + querySQL(t, dsn, "SELECT current_database()")
	execSQL(t, dsn,
		"CREATE ROLE "+writer+" LOGIN",
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON contacts, nango_sync_checkpoints, nango_sync_quarantine TO "+writer,
		"GRANT SELECT, INSERT, UPDATE ON nango_sync_layout TO "+writer)
	writerDSN := strings.Replace(dsn, "postgres://postgres@", "postgres://"+writer+"@", 1)

	s := open(t, writerDSN, postgres.Options{Table: "contacts"})
	closeAtEnd(t, s)
	unstorable := testRecord("nul\x00", 1)
	unstorable.Payload, unstorable.Cursor = []byte(`{"quarantined":true}`), "nul"
	page := sink.Page{Records: []sink.Record{testRecord("a", 1), unstorable}, Checkpoint: "c1"}
	if _, err := s.WritePage(ctx, testKey, page); err != nil {
		t.Fatalf("WritePage as a role that may write but not create: %v", err)
	}

	_, err := postgres.Open(ctx, writerDSN, postgres.Options{Table: "other"})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Open of a missing table without CREATE privilege: %v, want permission denied", err)
	}
	if sink.IsUnavailable(err) {
		t.Fatalf("a missing privilege is reported as unavailability: %v", err)
	}
	if fix, refused := sink.Refusal(err); !refused || !strings.Contains(fix, "CREATE") {
		t.Fatalf("a missing CREATE privilege: refused %t, fix %q; want refused, saying to grant CREATE", refused, fix)
	}

	execSQL(t, dsn, "REVOKE INSERT ON contacts FROM "+writer)
	_, err = s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("b", 1)}, Checkpoint: "c2"})
	if fix, refused := sink.Refusal(err); !refused || !strings.Contains(fix, "Grant") {
		t.Fatalf("WritePage without INSERT: %v (refused %t, fix %q); want refused, saying what to grant", err, refused, fix)
	}
}

// TestTablesOfADBAFromBeforeLayoutVersions checks that a role without the CREATE privilege,
// given tables a DBA created before layout versions were recorded, is refused with the
// statement that creates the layout table, and works once it ran.
func TestTablesOfADBAFromBeforeLayoutVersions(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	closeNow(t, open(t, dsn, postgres.Options{Table: "contacts"}))
	writer := "writer_" + querySQL(t, dsn, "SELECT current_database()")
	execSQL(t, dsn,
		"DROP TABLE nango_sync_layout",
		"CREATE ROLE "+writer+" LOGIN",
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON contacts, nango_sync_checkpoints, nango_sync_quarantine TO "+writer)
	writerDSN := strings.Replace(dsn, "postgres://postgres@", "postgres://"+writer+"@", 1)

	_, err := postgres.Open(ctx, writerDSN, postgres.Options{Table: "contacts"})
	fix, refused := sink.Refusal(err)
	if !refused || !strings.Contains(fix, "CREATE TABLE") || !strings.Contains(fix, "nango_sync_layout") {
		t.Fatalf("Open as a role that may not create the layout table: %v (refused %t, fix %q); "+
			"want refused, with the statement that creates it", err, refused, fix)
	}
	create := fix[strings.Index(fix, "CREATE TABLE"):strings.Index(fix, " and grant")]
	execSQL(t, dsn, create, "GRANT SELECT, INSERT, UPDATE ON nango_sync_layout TO "+writer)
	closeNow(t, open(t, writerDSN, postgres.Options{Table: "contacts"}))
	if n := querySQL(t, dsn, "SELECT count(*)::text FROM nango_sync_layout"); n != "3" {
		t.Fatalf("layout versions recorded by the role = %s, want 3", n)
	}
}

// legacyCheckpointTable is the checkpoint table as sinks created it before owners were
// recorded.
const legacyCheckpointTable = `CREATE TABLE nango_sync_checkpoints (
	table_name text NOT NULL,
	provider_config_key text NOT NULL,
	connection_id text NOT NULL,
	model text NOT NULL,
	variant text NOT NULL,
	cursor text NOT NULL,
	added bigint NOT NULL DEFAULT 0,
	updated bigint NOT NULL DEFAULT 0,
	deleted bigint NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (table_name, provider_config_key, connection_id, model, variant)
)`

var (
	ownerA = sink.Owner{UID: "uid-a", Name: "team-a/contacts"}
	ownerB = sink.Owner{UID: "uid-b", Name: "team-b/contacts"}
)

func TestCheckpointTableFromBeforeOwnersIsMigrated(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	execSQL(t, dsn, legacyCheckpointTable,
		`INSERT INTO nango_sync_checkpoints (table_name, provider_config_key, connection_id, model, variant, cursor, added)
		VALUES ('contacts', 'hubspot', 'acme', 'Contact', 'base', 'c1', 1)`)

	s := open(t, dsn, postgres.Options{Table: "contacts"})
	closeAtEnd(t, s)
	if c, err := s.Checkpoint(ctx, testKey); err != nil || c != (sink.Checkpoint{Cursor: "c1", Written: sink.WriteResult{Added: 1}}) {
		t.Fatalf("checkpoint from before owners = %+v, %v; want c1, 1 added, no owner", c, err)
	}
	if _, err := s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 1)}, Checkpoint: "c2", Owner: ownerA}); err != nil {
		t.Fatalf("first owned page: %v", err)
	}
	_, err := s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 2)}, Checkpoint: "c3", Owner: ownerB})
	var conflict *sink.ConflictError
	if !errors.As(err, &conflict) || conflict.Owner != ownerA {
		t.Fatalf("page of another owner: %v; want a conflict naming %s", err, ownerA)
	}
	if c, _ := s.Checkpoint(ctx, testKey); c.Cursor != "c2" || c.Owner != ownerA {
		t.Fatalf("checkpoint = %+v, want c2 owned by %s", c, ownerA)
	}
	// Opening again finds the columns: no DDL runs.
	closeNow(t, open(t, dsn, postgres.Options{Table: "contacts"}))
}

// TestOwnerColumnsOfADBAsTableAreAddedByItsOwner checks that a role which does not own a
// checkpoint table from before owners cannot add the columns, is told the statement that
// adds them, and works once its owner ran it.
func TestOwnerColumnsOfADBAsTableAreAddedByItsOwner(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	closeNow(t, open(t, dsn, postgres.Options{Table: "contacts"}))
	writer := "writer_" + querySQL(t, dsn, "SELECT current_database()")
	execSQL(t, dsn,
		"ALTER TABLE nango_sync_checkpoints DROP COLUMN owner_uid, DROP COLUMN owner_name",
		"UPDATE nango_sync_layout SET version = 1 WHERE table_name = 'nango_sync_checkpoints'",
		"CREATE ROLE "+writer+" LOGIN",
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON contacts, nango_sync_checkpoints, nango_sync_quarantine TO "+writer,
		"GRANT SELECT, INSERT, UPDATE ON nango_sync_layout TO "+writer)
	writerDSN := strings.Replace(dsn, "postgres://postgres@", "postgres://"+writer+"@", 1)

	_, err := postgres.Open(ctx, writerDSN, postgres.Options{Table: "contacts"})
	fix, refused := sink.Refusal(err)
	if !refused || !strings.Contains(fix, "ALTER TABLE") || !strings.Contains(fix, "owner_uid") {
		t.Fatalf("Open as a role that does not own the checkpoint table: %v (refused %t, fix %q); "+
			"want refused, with the statement that adds the owner columns", err, refused, fix)
	}
	execSQL(t, dsn, fix[strings.Index(fix, "ALTER TABLE"):])
	s := open(t, writerDSN, postgres.Options{Table: "contacts"})
	closeAtEnd(t, s)
	if v := querySQL(t, dsn, "SELECT version::text FROM nango_sync_layout WHERE table_name = 'nango_sync_checkpoints'"); v != "2" {
		t.Fatalf("layout version of the checkpoint table once its owner added the columns = %s, want 2", v)
	}
	if _, err := s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 1)}, Checkpoint: "c1", Owner: ownerA}); err != nil {
		t.Fatalf("WritePage once the owner columns exist: %v", err)
	}
}

// TestDeleteRowsOfAnotherOwnerRunsNoDelete checks that another owner's DeleteRows is
// refused before any DELETE runs: one that ran and rolled back would wait for the owner's
// row locks, and could time out on a large data set and hold up the deletion of the
// NangoSync that asked.
func TestDeleteRowsOfAnotherOwnerRunsNoDelete(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	s := open(t, dsn, postgres.Options{Table: "contacts"})
	closeAtEnd(t, s)
	if _, err := s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 1)}, Checkpoint: "c1", Owner: ownerA}); err != nil {
		t.Fatal(err)
	}
	tx, err := connect(t, dsn).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT 1 FROM contacts WHERE id = 'a' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	deleteCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var conflict *sink.ConflictError
	if err := s.DeleteRows(deleteCtx, testKey, ownerB); !errors.As(err, &conflict) {
		t.Fatalf("DeleteRows of another owner while the owner locks a row: %v, want a conflict at once", err)
	}
}

func TestTableOfAnotherShapeIsRefused(t *testing.T) {
	ctx := context.Background()
	for name, ddl := range map[string]string{
		"missing columns":   "CREATE TABLE contacts (id text PRIMARY KEY, name text)",
		"another key":       "CREATE TABLE contacts (provider_config_key text, connection_id text, model text, variant text, id text PRIMARY KEY, payload jsonb, pruned boolean, last_action text, first_seen_at timestamptz, last_modified_at timestamptz, deleted_at timestamptz, cursor text, written_at timestamptz)",
		"a required column": "CREATE TABLE contacts (provider_config_key text, connection_id text, model text, variant text, id text, payload jsonb, pruned boolean, last_action text, first_seen_at timestamptz, last_modified_at timestamptz, deleted_at timestamptz, cursor text, written_at timestamptz, owner text NOT NULL, PRIMARY KEY (provider_config_key, connection_id, model, variant, id))",
	} {
		t.Run(name, func(t *testing.T) {
			dsn := pgtest.NewDatabase(t)
			execSQL(t, dsn, ddl)
			s := open(t, dsn, postgres.Options{Table: "contacts"})
			closeAtEnd(t, s)
			_, err := s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 1)}, Checkpoint: "c1"})
			if fix, refused := sink.Refusal(err); !refused || !strings.Contains(fix, "another shape") {
				t.Fatalf("WritePage into a table of another shape: %v (refused %t, fix %q)", err, refused, fix)
			}
		})
	}
}

func TestUnknownDatabaseAndBadConnectionStringAreRefused(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/no_such_database"
	for _, dsn := range []string{u.String(), "postgres://127.0.0.1:notaport/db"} {
		_, err := postgres.Open(ctx, dsn, postgres.Options{Table: "contacts"})
		if fix, refused := sink.Refusal(err); !refused || fix == "" {
			t.Errorf("Open(%s): %v (refused %t, fix %q); want refused with what to fix", dsn, err, refused, fix)
		}
	}
}

func TestErrorsNeverShowThePassword(t *testing.T) {
	const password = "s3cret-Pa55"
	dsns := []string{
		"postgres://someone:" + password + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=5",
		"postgres://someone:" + password + "@127.0.0.1:notaport/db",
		"host=127.0.0.1 port=1 user=someone password=" + password + " sslmode=disable connect_timeout=5",
		"host=127.0.0.1 port=x password='" + password + "' broken='",
	}
	for _, dsn := range dsns {
		_, err := postgres.Open(context.Background(), dsn, postgres.Options{Table: "contacts"})
		if err == nil {
			t.Fatalf("Open succeeded with a bad DSN")
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// TestConnectionURLMayNotNameFiles checks that a URL from a tenant's Secret cannot make the
// operator read files of its pod, or change the server settings the sink relies on: such
// a parameter is refused by name, before any connection or file is opened.
func TestConnectionURLMayNotNameFiles(t *testing.T) {
	for _, param := range []string{"passfile=/etc/passwd", "servicefile=/etc/passwd", "service=x",
		"sslkey=/etc/passwd", "sslcert=/etc/passwd", "sslrootcert=/etc/passwd", "sslpassword=x",
		"target_session_attrs=read-write", "options=-c%20statement_timeout%3D0", "statement_timeout=0",
		"search_path=other", "pool_max_conns=10000"} {
		name, _, _ := strings.Cut(param, "=")
		_, err := postgres.Open(context.Background(), "postgres://someone@127.0.0.1:1/db?"+param,
			postgres.Options{Table: "contacts"})
		if err == nil || !strings.Contains(err.Error(), "parameter "+name) ||
			!strings.Contains(err.Error(), "may set only host, port, dbname, user, password, sslmode") {
			t.Errorf("Open with %s: %v, want a refusal that names %s and the allowed parameters", param, err, name)
		}
		if _, refused := sink.Refusal(err); !refused {
			t.Errorf("Open with %s: %v is not a refusal", param, err)
		}
	}

	// A name that is not a known parameter may be part of a password that was not
	// percent-encoded: it is not quoted.
	_, err := postgres.Open(context.Background(), "postgres://someone@127.0.0.1:1/db?s3cretPart=1",
		postgres.Options{Table: "contacts"})
	if err == nil || strings.Contains(err.Error(), "s3cretPart") || !strings.Contains(err.Error(), "unknown parameter") {
		t.Errorf("Open with an unknown parameter: %v, want a refusal that does not quote it", err)
	}

	for _, socket := range []string{"postgres://someone@/db?host=/run/postgresql",
		"postgres://someone@db.example/db?host=db.example,/tmp", "postgres://someone@db.example/db?host=@abstract"} {
		_, err = postgres.Open(context.Background(), socket, postgres.Options{Table: "contacts"})
		if err == nil || !strings.Contains(err.Error(), "Unix socket") {
			t.Errorf("Open(%s): %v, want a refusal of the Unix socket", socket, err)
		}
	}

	_, err = postgres.Open(context.Background(), "host=127.0.0.1 port=1 user=someone", postgres.Options{Table: "contacts"})
	if err == nil || !strings.Contains(err.Error(), "must be a postgres:// or postgresql:// URL") {
		t.Errorf("Open with a keyword=value string: %v, want a refusal that asks for a URL", err)
	}
}

func TestServerDownIsUnavailableAndRecovers(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.StartServer(t)
	if err := srv.CreateDatabase(ctx, "sink"); err != nil {
		t.Fatal(err)
	}
	s := open(t, srv.DSN("sink"), postgres.Options{Table: "contacts"})
	closeAtEnd(t, s)
	page := func(v int) sink.Page {
		return sink.Page{Records: []sink.Record{testRecord("a", v)}, Checkpoint: fmt.Sprint("c", v)}
	}
	if _, err := s.WritePage(ctx, testKey, page(1)); err != nil {
		t.Fatal(err)
	}

	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := s.WritePage(ctx, testKey, page(2))
	if !sink.IsUnavailable(err) {
		t.Fatalf("WritePage with the server down: %v, want an unavailable error", err)
	}
	if _, err := s.Checkpoint(ctx, testKey); !sink.IsUnavailable(err) {
		t.Fatalf("Checkpoint with the server down: %v, want an unavailable error", err)
	}

	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WritePage(ctx, testKey, page(3)); err != nil {
		t.Fatalf("WritePage after the server came back: %v", err)
	}
	if c, err := s.Checkpoint(ctx, testKey); err != nil || c.Cursor != "c3" {
		t.Fatalf("Checkpoint after the server came back = %+v, %v; want c3", c, err)
	}
}

func TestReplayedPageRewritesNothing(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	s := open(t, dsn, postgres.Options{Table: "contacts"})
	closeAtEnd(t, s)
	page := sink.Page{Records: []sink.Record{testRecord("a", 1), testRecord("b", 1)}, Checkpoint: "c1"}
	if _, err := s.WritePage(ctx, testKey, page); err != nil {
		t.Fatal(err)
	}
	versions := func() string {
		return querySQL(t, dsn, "SELECT string_agg(id || ':' || xmin || ':' || written_at, ',' ORDER BY id) FROM contacts")
	}
	first := versions()
	if _, err := s.WritePage(ctx, testKey, page); err != nil {
		t.Fatal(err)
	}
	if again := versions(); again != first {
		t.Fatalf("replaying a page rewrote its rows: %s, then %s", first, again)
	}
}

func TestFailureLateInTheTransactionRollsBackEarlierStatements(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	s := open(t, dsn, postgres.Options{Table: "contacts", HardDeletes: true})
	closeAtEnd(t, s)
	if _, err := s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 1)}, Checkpoint: "c1"}); err != nil {
		t.Fatal(err)
	}

	// The DELETE runs first and succeeds; the INSERT then fails, since text cannot hold a
	// NUL, and only the server checks a record's cursor.
	deletion := testRecord("a", 2)
	deletion.Action = sink.ActionDeleted
	poison := testRecord("b", 2)
	poison.Cursor = "nul\x00"
	_, err := s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{deletion, poison}, Checkpoint: "c2"})
	if err == nil {
		t.Fatal("a page PostgreSQL cannot store was written")
	}
	for _, want := range []string{"write page of 2 records", testKey.String(), "public.contacts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	rows, readErr := s.ReadRows(ctx, testKey)
	if readErr != nil || len(rows) != 1 || rows[0].ID != "a" {
		t.Fatalf("rows after the failed page = %+v, %v; want a alone, as before", rows, readErr)
	}
	if c, _ := s.Checkpoint(ctx, testKey); c.Cursor != "c1" {
		t.Fatalf("checkpoint after the failed page = %q, want c1", c.Cursor)
	}
}

var testKey = sink.Key{ProviderConfigKey: "hubspot", ConnectionID: "acme", Model: "Contact", Variant: "base"}

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

func execSQL(t *testing.T, dsn string, statements ...string) {
	t.Helper()
	conn := connect(t, dsn)
	for _, sql := range statements {
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

func querySQL(t *testing.T, dsn, sql string) string {
	t.Helper()
	var s string
	if err := connect(t, dsn).QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// TestConformanceThroughPgBouncerSettings runs the suites as users behind PgBouncer in
// transaction mode configure pgx: no prepared statements, parameters sent as text.
func TestConformanceThroughPgBouncerSettings(t *testing.T) {
	dsn := pgtest.NewDatabase(t) + "&default_query_exec_mode=simple_protocol"
	sinktest.Run(t, func(t *testing.T, opts sinktest.Options) sinktest.Sink {
		return open(t, dsn, postgres.Options{Table: opts.Table, HardDeletes: opts.HardDeletes})
	})
	sinktest.RunHistory(t, func(t *testing.T, opts sinktest.Options) sinktest.HistorySink {
		return open(t, dsn, postgres.Options{Table: opts.Table, HardDeletes: opts.HardDeletes, History: opts.History})
	})
}

// TestDirectCopyMeetingStoredRowsMerges writes, through a sink that has never met the data
// set (so it tries the direct COPY), a page that holds an older version of a stored record
// beside a new record: the COPY is refused by the primary key and the page is merged in the
// same transaction, the stored newer version kept, the new record stored, the counts added
// once.
func TestDirectCopyMeetingStoredRowsMerges(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	first := open(t, dsn, postgres.Options{Table: "contacts"})
	closeAtEnd(t, first)
	if _, err := first.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 2)}, Checkpoint: "c1"}); err != nil {
		t.Fatal(err)
	}

	second := open(t, dsn, postgres.Options{Table: "contacts"})
	closeAtEnd(t, second)
	page := sink.Page{Records: []sink.Record{testRecord("b", 1), testRecord("a", 1)}, Checkpoint: "c2"}
	if _, err := second.WritePage(ctx, testKey, page); err != nil {
		t.Fatal(err)
	}
	rows, err := second.ReadRows(ctx, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Cursor != "a2" || rows[1].Cursor != "b1" {
		t.Fatalf("rows = %+v; want a at version 2 (the newer stored one) and b at version 1", rows)
	}
	c, err := second.Checkpoint(ctx, testKey)
	if err != nil || c.Cursor != "c2" || c.Written.Added != 3 {
		t.Fatalf("checkpoint = %+v, %v; want cursor c2 and 3 added (1 + 2)", c, err)
	}
	// The next page of the data set goes straight to the merge: b's older version changes nothing.
	if _, err := second.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("b", 0)}, Checkpoint: "c3"}); err != nil {
		t.Fatal(err)
	}
	if got := querySQL(t, dsn, "SELECT string_agg(id || '=' || cursor, ',' ORDER BY id) FROM contacts"); got != "a=a2,b=b1" {
		t.Fatalf("rows after an older version = %s, want a=a2,b=b1", got)
	}
}

// TestConformanceWithoutTemporaryTables runs the suite as a role that may not create
// temporary tables, so has no staging table: the merge path sends the records as arrays.
func TestConformanceWithoutTemporaryTables(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	database := querySQL(t, dsn, "SELECT current_database()")
	writer := "notemp_" + database
	execSQL(t, dsn,
		"CREATE ROLE "+writer+" LOGIN",
		"REVOKE TEMPORARY ON DATABASE "+database+" FROM PUBLIC",
		"GRANT CREATE ON SCHEMA public TO "+writer)
	writerDSN := strings.Replace(dsn, "postgres://postgres@", "postgres://"+writer+"@", 1)
	if got := querySQL(t, writerDSN, "SELECT has_database_privilege(current_database(), 'TEMPORARY')::text"); got != "false" {
		t.Fatalf("the role may still create temporary tables (%s)", got)
	}
	sinktest.Run(t, func(t *testing.T, opts sinktest.Options) sinktest.Sink {
		return open(t, writerDSN, postgres.Options{Table: opts.Table, HardDeletes: opts.HardDeletes})
	})
}
