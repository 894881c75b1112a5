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

package bench

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// copyColumns are the columns of the sink's records table that a sync writes (written_at
// takes its default).
var copyColumns = []string{"provider_config_key", "connection_id", "model", "variant", "id", "payload",
	"pruned", "last_action", "first_seen_at", "last_modified_at", "deleted_at", "cursor"}

// copyBatch is how many records each COPY of copyLimit carries.
const copyBatch = 10_000

// copyLimit is PostgreSQL's own ingest limit for a sync of the emulator's n records: exactly
// the rows the sink stores (read from the emulator, converted and prepared as a sync does,
// which is not counted) COPYed in binary into table, an empty records table of the sink's
// shape (primary key included) in the database of pgURL, in one transaction. It answers the
// time spent in COPY and COMMIT.
func copyLimit(t *testing.T, pgURL, table, url string, n int) time.Duration {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL)
	must(t, err)
	defer func() { _ = conn.Close(ctx) }()
	tx, err := conn.Begin(ctx)
	must(t, err)
	defer func() { _ = tx.Rollback(ctx) }()

	var spent time.Duration
	written := 0
	rows := make([][]any, 0, copyBatch)
	eachPage(t, url, "", copyBatch, func(records []sink.Record, _ string) {
		prepared, err := sink.PreparePage(benchKey, records)
		must(t, err)
		rows = rows[:0]
		for _, r := range prepared.Records {
			rows = append(rows, []any{benchKey.ProviderConfigKey, benchKey.ConnectionID, benchKey.Model, benchKey.Variant,
				r.ID, []byte(r.Payload), r.Pruned, string(r.Action), r.FirstSeenAt, r.LastModifiedAt, r.DeletedAt, r.Cursor})
		}
		began := time.Now()
		copied, err := tx.CopyFrom(ctx, pgx.Identifier{"public", table}, copyColumns, pgx.CopyFromRows(rows))
		must(t, err)
		spent += time.Since(began)
		written += int(copied)
	})
	began := time.Now()
	must(t, tx.Commit(ctx))
	spent += time.Since(began)
	if written != n {
		t.Fatalf("COPY limit wrote %d records, want %d", written, n)
	}
	return spent
}
