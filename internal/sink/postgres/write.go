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

package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// upsertRecords writes every record of a page in one statement. Each column travels as one
// array parameter, so the statement is the same for a page of 1 or 10 000 records and
// stays in pgx's statement cache. The page holds each id once (sink.PreparePage), since
// ON CONFLICT cannot touch one row twice in a statement.
const upsertRecords = `INSERT INTO %s AS stored (provider_config_key, connection_id, model, variant,
	id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor)
SELECT $1, $2, $3, $4,
	r.id, r.payload::jsonb, r.pruned, r.last_action, r.first_seen_at, r.last_modified_at, r.deleted_at, r.cursor
FROM unnest($5::text[], $6::text[], $7::boolean[], $8::text[], $9::timestamptz[], $10::timestamptz[],
	$11::timestamptz[], $12::text[])
	AS r(id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor)
` + onConflictNewer

// onConflictNewer is the merge rule of a version with the stored row of its id: a newer
// version replaces it (keeping the stored payload when it has none), an equal one only
// when it differs, an older one never.
const onConflictNewer = `ON CONFLICT (provider_config_key, connection_id, model, variant, id) DO UPDATE SET
	payload = COALESCE(EXCLUDED.payload, stored.payload),
	pruned = EXCLUDED.pruned,
	last_action = EXCLUDED.last_action,
	first_seen_at = EXCLUDED.first_seen_at,
	last_modified_at = EXCLUDED.last_modified_at,
	deleted_at = EXCLUDED.deleted_at,
	cursor = EXCLUDED.cursor,
	written_at = now()
WHERE stored.last_modified_at < EXCLUDED.last_modified_at
	OR (stored.last_modified_at = EXCLUDED.last_modified_at
		AND (stored.payload, stored.pruned, stored.last_action, stored.first_seen_at, stored.deleted_at, stored.cursor)
		IS DISTINCT FROM (COALESCE(EXCLUDED.payload, stored.payload), EXCLUDED.pruned, EXCLUDED.last_action,
			EXCLUDED.first_seen_at, EXCLUDED.deleted_at, EXCLUDED.cursor))`

// deleteRecords removes the rows of records deleted at the source (hard deletes), unless
// the stored version is newer than the deletion.
const deleteRecords = `DELETE FROM %s AS stored
USING unnest($5::text[], $6::timestamptz[]) AS d(id, last_modified_at)
WHERE stored.provider_config_key = $1 AND stored.connection_id = $2 AND stored.model = $3 AND stored.variant = $4
	AND stored.id = d.id AND stored.last_modified_at <= d.last_modified_at`

// upsertCheckpoint moves the cursor, unless the page has none, adds the page's counts to
// the stored ones and claims the data set for the page's owner: it changes no row, and so
// the page is refused, when another owns the data set.
const upsertCheckpoint = `INSERT INTO %s AS stored (table_name, provider_config_key, connection_id, model, variant,
	cursor, added, updated, deleted, owner_uid, owner_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (table_name, provider_config_key, connection_id, model, variant) DO UPDATE SET
	cursor = CASE WHEN EXCLUDED.cursor = '' THEN stored.cursor ELSE EXCLUDED.cursor END,
	added = stored.added + EXCLUDED.added,
	updated = stored.updated + EXCLUDED.updated,
	deleted = stored.deleted + EXCLUDED.deleted,
	owner_uid = EXCLUDED.owner_uid,
	owner_name = EXCLUDED.owner_name,
	updated_at = now()
WHERE stored.owner_uid IN ('', EXCLUDED.owner_uid)`

// upsertQuarantined keeps the newest version of a record that cannot be stored, merged as
// the records table merges versions.
const upsertQuarantined = `INSERT INTO %s AS stored (table_name, provider_config_key, connection_id, model, variant,
	id_sha256, id, id_quoted, reason, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (table_name, provider_config_key, connection_id, model, variant, id_sha256) DO UPDATE SET
	reason = EXCLUDED.reason,
	payload = COALESCE(EXCLUDED.payload, stored.payload),
	pruned = EXCLUDED.pruned,
	last_action = EXCLUDED.last_action,
	first_seen_at = EXCLUDED.first_seen_at,
	last_modified_at = EXCLUDED.last_modified_at,
	deleted_at = EXCLUDED.deleted_at,
	cursor = EXCLUDED.cursor,
	quarantined_at = now()
WHERE stored.last_modified_at <= EXCLUDED.last_modified_at`

// copyRecords COPYs a page's records straight into the records table: the direct path
// (see writeUpserts). The columns are copyRows' with the key.
const copyRecords = `COPY %s (provider_config_key, connection_id, model, variant,
	id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor) FROM STDIN (FORMAT binary)`

// stageTable is the per-connection staging table the merge path COPYs a page into. It is
// temporary (the connection's own, never logged to the WAL) and emptied at every commit;
// every write transaction creates it when its connection has none yet, so it needs no
// setup and survives a pooler that hands the transaction another server connection. It has
// copyRows' columns without the key, which are constants of the page.
const (
	stageTable       = "pg_temp.nango_sync_stage"
	createStageTable = `CREATE TEMP TABLE IF NOT EXISTS nango_sync_stage (
	id text NOT NULL,
	payload jsonb,
	pruned boolean NOT NULL,
	last_action text NOT NULL,
	first_seen_at timestamptz NOT NULL,
	last_modified_at timestamptz NOT NULL,
	deleted_at timestamptz,
	cursor text NOT NULL
) ON COMMIT DELETE ROWS`
	copyStage = `COPY ` + stageTable + ` (id, payload, pruned, last_action, first_seen_at, last_modified_at,
	deleted_at, cursor) FROM STDIN (FORMAT binary)`
)

// mergeStaged merges the staged page into the records table by the rules of upsertRecords,
// in one set-based statement. The stage holds each id once (sink.PreparePage merges a
// page's versions of a record, keeping the stored fields of a pruned one, which a DISTINCT
// ON in SQL could not), since ON CONFLICT cannot touch one row twice in a statement.
const mergeStaged = `INSERT INTO %s AS stored (provider_config_key, connection_id, model, variant,
	id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor)
SELECT $1, $2, $3, $4,
	r.id, r.payload, r.pruned, r.last_action, r.first_seen_at, r.last_modified_at, r.deleted_at, r.cursor
FROM ` + stageTable + ` AS r
` + onConflictNewer

// directCopySavepoint is set before the direct path's COPY, so that a COPY that meets a
// stored row undoes only itself.
const directCopySavepoint = "nango_direct_copy"

// WritePage upserts the page's records and stores its checkpoint in one transaction. An
// empty page.Checkpoint leaves the stored checkpoint as it is: "no cursor" never moves the
// checkpoint back to the start. The result counts the page's records, one per id, by the
// action of their newest version.
//
// An error does not prove that nothing was written: a commit can succeed while its answer
// is lost. The page is then either entirely stored or not at all, and Checkpoint tells which.
func (s *Sink) WritePage(ctx context.Context, key sink.Key, page sink.Page) (sink.WriteResult, error) {
	result, err := s.writePage(ctx, key, page)
	if err != nil {
		return sink.WriteResult{}, fmt.Errorf("write page of %d records for %s to %s: %w", len(page.Records), key, s.name, err)
	}
	return result, nil
}

func (s *Sink) writePage(ctx context.Context, key sink.Key, page sink.Page) (sink.WriteResult, error) {
	prepared, err := sink.PreparePage(key, page.Records)
	if err != nil {
		return sink.WriteResult{}, err
	}
	w := s.pageWrite(key, prepared, page.Checkpoint, page.Owner)
	if w == nil {
		return prepared.Result, nil
	}
	err = s.call(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := tx.SendBatch(ctx, w.batch).Close(); err != nil {
				return err
			}
			if err := s.writeUpserts(ctx, tx, w); err != nil || w.after == nil {
				return err
			}
			return tx.SendBatch(ctx, w.after).Close()
		})
	})
	if errors.Is(err, errOwnedByAnother) {
		// Rare: read who owns the data set, for the error.
		c, readErr := s.Checkpoint(ctx, key)
		if readErr != nil {
			return sink.WriteResult{}, fmt.Errorf("%w, and reading its owner failed: %w", err, readErr)
		}
		return sink.WriteResult{}, &sink.ConflictError{Key: key, Owner: c.Owner}
	}
	return prepared.Result, err
}

// errOwnedByAnother is the error of a page whose checkpoint upsert changed no row: another
// owns the data set, and the transaction rolls back.
var errOwnedByAnother = errors.New("the data set belongs to another owner")

// newBatch answers a batch that starts with the server-side timeouts of its transaction.
func (s *Sink) newBatch() *pgx.Batch {
	batch := &pgx.Batch{}
	for _, set := range s.timeouts.serverTimeouts() {
		batch.Queue(set)
	}
	return batch
}

// write is one page's transaction: a batch of statements, then the upserts.
type write struct {
	key   sink.Key
	batch *pgx.Batch
	// upserts are the records written to the records table by writeUpserts.
	upserts []sink.Record
	// direct tries the direct path first (see writeUpserts).
	direct bool
	// after is sent after the upserts, nil when there is nothing to send (the history).
	after *pgx.Batch
}

// pageWrite plans the page's transaction: one batch of the server-side timeouts, the
// checkpoint upsert (which claims the data set or refuses the page, first, so that the
// page's rows wait for nothing while the owner is settled), at most one DELETE for hard
// deletes, one upsert per quarantined record, and what the upserts need; then the upserts
// (writeUpserts). It answers nil when the page has nothing to write.
func (s *Sink) pageWrite(key sink.Key, page sink.PreparedPage, checkpoint string, owner sink.Owner) *write {
	records, result := page.Records, page.Result
	if len(records) == 0 && len(page.Quarantined) == 0 && checkpoint == "" {
		return nil
	}
	w := &write{key: key, upserts: records}
	var deletes []sink.Record
	if s.hardDeletes {
		w.upserts, deletes = sink.SplitDeleted(records)
	}
	if checkpoint == "" {
		result = sink.WriteResult{} // no checkpoint: the stored counts stay as they are
	}
	w.batch = s.newBatch()
	w.batch.Queue(fmt.Sprintf(upsertCheckpoint, s.checkpoints), s.tableName,
		key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant, checkpoint,
		result.Added, result.Updated, result.Deleted, owner.UID, owner.Name).
		Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() == 0 {
				return errOwnedByAnother
			}
			return nil
		})
	if len(deletes) > 0 {
		w.batch.Queue(fmt.Sprintf(deleteRecords, s.records), deleteArgs(key, deletes)...)
	}
	if s.history != "" && len(records) > 0 { // after the upserts, as before the COPY paths
		w.after = &pgx.Batch{}
		s.queueHistory(w.after, pageRows, upsertArgs(key, records)...) // deletions too: they are versions
	}
	for _, q := range page.Quarantined {
		w.batch.Queue(fmt.Sprintf(upsertQuarantined, s.quarantine), quarantineArgs(s.tableName, key, q)...)
	}
	if len(w.upserts) > 0 {
		if s.stage {
			w.batch.Queue(createStageTable)
		}
		if w.direct = s.directCopies(key); w.direct {
			w.batch.Queue("SAVEPOINT " + directCopySavepoint)
		}
	}
	return w
}

// writeUpserts writes w's records to the records table, inside w's transaction, after its
// batch (and so after the checkpoint upsert has locked the data set's checkpoint row).
//
// The direct path COPYs them straight into the table. It is exactly the merge when none of
// the records is stored yet: the merge of a record not stored inserts it as it is, which
// is what COPY does. And it is safe without knowing that beforehand: the primary key
// refuses a COPY that meets any stored row of the page (unique_violation, whoever wrote
// the row and whenever: the key's index checks committed and in-progress rows alike), and
// then the COPY is undone to its savepoint, the data set is remembered as one whose
// records exist (directCopies), and the page takes the merge path in the same transaction.
// An initial sync thus COPYs every page, and an incremental one pays one refused COPY per
// data set and process.
//
// The merge path COPYs the records into the connection's staging table and merges them in
// one statement (mergeStaged). Whatever else must be derived from a page's records in its
// transaction (a history of versions, say) reads the staging table after the merge; a
// sink that needs that must not take the direct path. Without the TEMPORARY privilege on
// the database (stage false), the merge sends the records as arrays (upsertRecords).
func (s *Sink) writeUpserts(ctx context.Context, tx pgx.Tx, w *write) error {
	if len(w.upserts) == 0 {
		return nil
	}
	if w.direct {
		err := copyInto(ctx, tx, fmt.Sprintf(copyRecords, s.records), newCopyRows(&w.key, w.upserts))
		if !isUniqueViolation(err) {
			return err
		}
		s.storedRecordsMet(w.key)
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+directCopySavepoint); err != nil {
			return err
		}
	}
	if !s.stage {
		_, err := tx.Exec(ctx, fmt.Sprintf(upsertRecords, s.records), upsertArgs(w.key, w.upserts)...)
		return err
	}
	if err := copyInto(ctx, tx, copyStage, newCopyRows(nil, w.upserts)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, fmt.Sprintf(mergeStaged, s.records),
		w.key.ProviderConfigKey, w.key.ConnectionID, w.key.Model, w.key.Variant)
	return err
}

// copyInto runs the COPY ... FROM STDIN statement sql in tx with the rows of r.
func copyInto(ctx context.Context, tx pgx.Tx, sql string, r io.Reader) error {
	_, err := tx.Conn().PgConn().CopyFrom(ctx, r, sql)
	return err
}

// isUniqueViolation tells whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// directCopies tells whether pages of key try the direct path: when the table has the
// merge's key, until a page met a stored record (storedRecordsMet) since this sink was
// opened or the data set's rows were deleted.
func (s *Sink) directCopies(key sink.Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, stored := s.recordsStored[key]
	return s.direct && !stored
}

// storedRecordsMet remembers that key has stored records: its pages take the merge path.
func (s *Sink) storedRecordsMet(key sink.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordsStored[key] = struct{}{}
}

// rowsDeleted forgets what storedRecordsMet remembered of key, whose rows are gone.
func (s *Sink) rowsDeleted(key sink.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recordsStored, key)
}

// upsertArgs turns records into the column arrays upsertRecords unnests.
func upsertArgs(key sink.Key, records []sink.Record) []any {
	n := len(records)
	var (
		ids          = make([]string, n)
		payloads     = make([]*string, n) // nil: SQL NULL, keep the stored fields
		pruned       = make([]bool, n)
		actions      = make([]string, n)
		firstSeen    = make([]time.Time, n)
		lastModified = make([]time.Time, n)
		deletedAt    = make([]*time.Time, n)
		cursors      = make([]string, n)
	)
	for i, r := range records {
		ids[i] = r.ID
		if r.Payload != nil {
			payload := string(r.Payload)
			payloads[i] = &payload
		}
		pruned[i] = r.Pruned
		actions[i] = string(r.Action)
		firstSeen[i] = r.FirstSeenAt
		lastModified[i] = r.LastModifiedAt
		deletedAt[i] = r.DeletedAt
		cursors[i] = r.Cursor
	}
	return []any{key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant,
		ids, payloads, pruned, actions, firstSeen, lastModified, deletedAt, cursors}
}

func deleteArgs(key sink.Key, records []sink.Record) []any {
	ids := make([]string, len(records))
	lastModified := make([]time.Time, len(records))
	for i, r := range records {
		ids[i] = r.ID
		lastModified[i] = r.LastModifiedAt
	}
	return []any{key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant, ids, lastModified}
}

// quarantineArgs are the parameters of upsertQuarantined for q.
func quarantineArgs(table string, key sink.Key, q sink.Quarantined) []any {
	sum := sha256.Sum256([]byte(q.ID))
	var payload *string // nil: SQL NULL, keep the stored fields
	if q.Payload != nil {
		p := string(q.Payload)
		payload = &p
	}
	return []any{table, key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant,
		sum[:], []byte(q.ID), q.QuotedID(), q.Reason, payload, q.Pruned, string(q.Action),
		q.FirstSeenAt, q.LastModifiedAt, q.DeletedAt, q.Cursor}
}
