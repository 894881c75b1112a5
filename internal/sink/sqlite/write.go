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

package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"time"
	"unsafe"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// timeLayout stores times as fixed-width UTC text, so that string order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// upsertRecord is the PostgreSQL sink's upsert, one record at a time: in SQLite a
// statement costs no round trip, and one prepared statement serves the whole page.
const upsertRecord = `INSERT INTO %s AS stored (provider_config_key, connection_id, model, variant,
	id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor, written_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (provider_config_key, connection_id, model, variant, id) DO UPDATE SET
	payload = COALESCE(excluded.payload, stored.payload),
	pruned = excluded.pruned,
	last_action = excluded.last_action,
	first_seen_at = excluded.first_seen_at,
	last_modified_at = excluded.last_modified_at,
	deleted_at = excluded.deleted_at,
	cursor = excluded.cursor,
	written_at = excluded.written_at
WHERE stored.last_modified_at < excluded.last_modified_at
	OR (stored.last_modified_at = excluded.last_modified_at
		AND (stored.payload, stored.pruned, stored.last_action, stored.first_seen_at, stored.deleted_at, stored.cursor)
		IS NOT (COALESCE(excluded.payload, stored.payload), excluded.pruned, excluded.last_action,
			excluded.first_seen_at, excluded.deleted_at, excluded.cursor))`

// deleteRecord removes the row of a record deleted at the source (hard deletes), unless
// the stored version is newer than the deletion.
const deleteRecord = `DELETE FROM %s
WHERE provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ? AND id = ?
	AND last_modified_at <= ?`

// upsertCheckpoint moves the cursor, unless the page has none, adds the page's counts to
// the stored ones and claims the data set for the page's owner, as the PostgreSQL sink's.
// The transaction has checked the owner before (checkOwner).
const upsertCheckpoint = `INSERT INTO %s AS stored (table_name, provider_config_key, connection_id, model, variant,
	cursor, added, updated, deleted, updated_at, owner_uid, owner_name)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (table_name, provider_config_key, connection_id, model, variant) DO UPDATE SET
	cursor = CASE WHEN excluded.cursor = '' THEN stored.cursor ELSE excluded.cursor END,
	added = stored.added + excluded.added,
	updated = stored.updated + excluded.updated,
	deleted = stored.deleted + excluded.deleted,
	owner_uid = excluded.owner_uid,
	owner_name = excluded.owner_name,
	updated_at = excluded.updated_at
WHERE stored.owner_uid IN ('', excluded.owner_uid)`

// upsertQuarantined is the PostgreSQL sink's: the newest version of a record that cannot
// be stored, merged as the records table merges versions.
const upsertQuarantined = `INSERT INTO %s AS stored (table_name, provider_config_key, connection_id, model, variant,
	id_sha256, id, id_quoted, reason, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor,
	quarantined_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (table_name, provider_config_key, connection_id, model, variant, id_sha256) DO UPDATE SET
	reason = excluded.reason,
	payload = COALESCE(excluded.payload, stored.payload),
	pruned = excluded.pruned,
	last_action = excluded.last_action,
	first_seen_at = excluded.first_seen_at,
	last_modified_at = excluded.last_modified_at,
	deleted_at = excluded.deleted_at,
	cursor = excluded.cursor,
	quarantined_at = excluded.quarantined_at
WHERE stored.last_modified_at <= excluded.last_modified_at`

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
	records, result := prepared.Records, prepared.Result
	if len(records) == 0 && len(prepared.Quarantined) == 0 && page.Checkpoint == "" {
		return result, nil
	}
	upserts, deletes := records, []sink.Record(nil)
	if s.hardDeletes {
		upserts, deletes = sink.SplitDeleted(records)
	}
	checkpoint := sink.Checkpoint{Cursor: page.Checkpoint, Owner: page.Owner}
	if page.Checkpoint != "" {
		checkpoint.Written = result // no checkpoint: the stored counts stay as they are
	}
	now := formatTime(time.Now())
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.checkOwner(ctx, tx, key, page.Owner); err != nil {
			return err
		}
		if err := s.deleteRecords(ctx, tx, key, deletes); err != nil {
			return err
		}
		if err := s.upsertRecords(ctx, tx, key, upserts, now); err != nil {
			return err
		}
		if err := s.writeHistory(ctx, tx, key, records, now); err != nil {
			return err
		}
		if err := s.upsertQuarantined(ctx, tx, key, prepared.Quarantined, now); err != nil {
			return err
		}
		return s.upsertCheckpoint(ctx, tx, key, checkpoint, now)
	})
	if err != nil {
		return sink.WriteResult{}, classify(err)
	}
	return result, nil
}

func (s *Sink) upsertRecords(ctx context.Context, tx *sql.Tx, key sink.Key, records []sink.Record, now string) error {
	if len(records) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf(upsertRecord, s.records))
	if err != nil {
		return err
	}
	defer func() { _ = stmt.Close() }()
	return forEachRecord(ctx, records, func(ctx context.Context, r sink.Record) error {
		_, err := stmt.ExecContext(ctx, key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant,
			r.ID, payloadText(r.Payload), r.Pruned, string(r.Action), formatTime(r.FirstSeenAt),
			formatTime(r.LastModifiedAt), formatOptionalTime(r.DeletedAt), r.Cursor, now)
		return err
	})
}

func (s *Sink) deleteRecords(ctx context.Context, tx *sql.Tx, key sink.Key, records []sink.Record) error {
	if len(records) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf(deleteRecord, s.records))
	if err != nil {
		return err
	}
	defer func() { _ = stmt.Close() }()
	return forEachRecord(ctx, records, func(ctx context.Context, r sink.Record) error {
		_, err := stmt.ExecContext(ctx, key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant,
			r.ID, formatTime(r.LastModifiedAt))
		return err
	})
}

// forEachRecord runs one statement per record, and stops between two records once ctx is
// done. The statements themselves run under a context that cannot be cancelled: for a
// cancellable one, the driver starts a goroutine and installs a progress handler on every
// call (a measurable share of a page's write time, see docs/benchmarks.md, "Sinks: writing
// a page"), to interrupt a statement that takes microseconds. The transaction still rolls back when ctx is done.
func forEachRecord(ctx context.Context, records []sink.Record, exec func(context.Context, sink.Record) error) error {
	uncancellable := context.WithoutCancel(ctx)
	for _, r := range records {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := exec(uncancellable, r); err != nil {
			return fmt.Errorf("record %q: %w", r.ID, err)
		}
	}
	return nil
}

// upsertQuarantined keeps the records that cannot be stored in the quarantine table.
func (s *Sink) upsertQuarantined(ctx context.Context, tx *sql.Tx, key sink.Key, quarantined []sink.Quarantined, now string) error {
	for _, q := range quarantined {
		sum := sha256.Sum256([]byte(q.ID))
		_, err := tx.ExecContext(ctx, fmt.Sprintf(upsertQuarantined, s.quarantine),
			s.tableName, key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant,
			sum[:], []byte(q.ID), q.QuotedID(), q.Reason, payloadText(q.Payload), q.Pruned, string(q.Action),
			formatTime(q.FirstSeenAt), formatTime(q.LastModifiedAt), formatOptionalTime(q.DeletedAt), q.Cursor, now)
		if err != nil {
			return fmt.Errorf("quarantine record %s: %w", q.QuotedID(), err)
		}
	}
	return nil
}

// upsertCheckpoint stores c.Cursor unless it is empty, adds c.Written to the stored counts
// and makes c.Owner the owner.
func (s *Sink) upsertCheckpoint(ctx context.Context, tx *sql.Tx, key sink.Key, c sink.Checkpoint, now string) error {
	_, err := tx.ExecContext(ctx, fmt.Sprintf(upsertCheckpoint, s.checkpoints),
		s.tableName, key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant, c.Cursor,
		c.Written.Added, c.Written.Updated, c.Written.Deleted, now, c.Owner.UID, c.Owner.Name)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// payloadText is the payload as stored: text, or NULL to keep the stored fields. The
// string shares the payload's bytes instead of copying a KiB a record on the writer's
// path: the driver copies bound text into SQLite's own memory while it binds, and
// neither it nor the sink writes to the payload.
func payloadText(payload []byte) any {
	if payload == nil {
		return nil
	}
	return unsafe.String(unsafe.SliceData(payload), len(payload))
}

func formatTime(t time.Time) string {
	return t.UTC().Format(timeLayout)
}

func formatOptionalTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return formatTime(*t)
}
