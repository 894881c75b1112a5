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

package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestNewDatabaseGivesEachTestItsOwnDatabase(t *testing.T) {
	ctx := context.Background()
	first, second := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	if first == second {
		t.Fatalf("two databases share the DSN %s", first)
	}

	exec(ctx, t, first, "CREATE TABLE only_here (id int)")
	if got := queryString(ctx, t, second, "SELECT coalesce(to_regclass('only_here')::text, '')"); got != "" {
		t.Fatalf("a table created in one database is visible in another: %q", got)
	}
	if got := queryString(ctx, t, first, "SELECT current_setting('fsync')"); got != "off" {
		t.Fatalf("fsync = %q, want off on a throwaway server", got)
	}
}

func TestServerStopsAndStartsOnTheSamePort(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.StartServer(t)
	if err := srv.CreateDatabase(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	dsn := srv.DSN("kept")
	exec(ctx, t, dsn, "CREATE TABLE survivor (id int); INSERT INTO survivor VALUES (42)")
	port := srv.Port()

	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		_ = conn.Close(ctx)
		t.Fatal("connected to a stopped server")
	}

	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Port() != port {
		t.Fatalf("port after restart = %d, want %d", srv.Port(), port)
	}
	if got := queryString(ctx, t, dsn, "SELECT id::text FROM survivor"); got != "42" {
		t.Fatalf("row after restart = %q, want 42", got)
	}
}

func exec(ctx context.Context, t *testing.T, dsn, sql string) {
	t.Helper()
	conn := connect(ctx, t, dsn)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryString(ctx context.Context, t *testing.T, dsn, sql string) string {
	t.Helper()
	conn := connect(ctx, t, dsn)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func connect(ctx context.Context, t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}
