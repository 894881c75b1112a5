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
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
)

const selectCheckpoint = `SELECT cursor, added, updated, deleted, owner_uid, owner_name FROM %s
WHERE table_name = ? AND provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ?`

const selectOwner = `SELECT owner_uid, owner_name FROM %s
WHERE table_name = ? AND provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ?`

const deleteCheckpoint = `DELETE FROM %s
WHERE table_name = ? AND provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ?`

const deleteKeyRecords = `DELETE FROM %s
WHERE provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ?`

const deleteKeyQuarantined = `DELETE FROM %s
WHERE table_name = ? AND provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ?`

// selectQuarantined orders by the id's bytes (a BLOB compares as memcmp does).
const selectQuarantined = `SELECT reason, id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor
FROM %s
WHERE table_name = ? AND provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ?
ORDER BY id`

// selectRecords orders by id byte by byte (SQLite's BINARY collation), as Go does.
const selectRecords = `SELECT id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor
FROM %s
WHERE provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ?
ORDER BY id`

// Checkpoint answers the checkpoint stored with the last committed page of key, or the
// zero Checkpoint.
func (s *Sink) Checkpoint(ctx context.Context, key sink.Key) (sink.Checkpoint, error) {
	var c sink.Checkpoint
	err := s.reader.QueryRowContext(ctx, fmt.Sprintf(selectCheckpoint, s.checkpoints), s.checkpointArgs(key)...).
		Scan(&c.Cursor, &c.Written.Added, &c.Written.Updated, &c.Written.Deleted, &c.Owner.UID, &c.Owner.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return sink.Checkpoint{}, nil
	}
	if err != nil {
		return sink.Checkpoint{}, fmt.Errorf("read checkpoint of %s in %s: %w", key, s.name, classify(err))
	}
	return c, nil
}

// DeleteCheckpoint forgets the checkpoint of key, and so its owner; its rows stay. It
// deletes nothing of a data set another owns (*sink.ConflictError).
func (s *Sink) DeleteCheckpoint(ctx context.Context, key sink.Key, owner sink.Owner) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.checkOwner(ctx, tx, key, owner); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf(deleteCheckpoint, s.checkpoints), s.checkpointArgs(key)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete checkpoint of %s in %s: %w", key, s.name, classify(err))
	}
	return nil
}

// resetCheckpoint is the PostgreSQL sink's: it forgets the cursor and counts of a data set
// and keeps it claimed. The transaction has checked the owner before (checkOwner).
const resetCheckpoint = `INSERT INTO %s AS stored (table_name, provider_config_key, connection_id, model, variant,
	cursor, added, updated, deleted, updated_at, owner_uid, owner_name)
VALUES (?, ?, ?, ?, ?, '', 0, 0, 0, ?, ?, ?)
ON CONFLICT (table_name, provider_config_key, connection_id, model, variant) DO UPDATE SET
	cursor = '', added = 0, updated = 0, deleted = 0,
	owner_uid = excluded.owner_uid,
	owner_name = excluded.owner_name,
	updated_at = excluded.updated_at`

// ResetCheckpoint forgets the cursor and counts of key and keeps its owner, claiming the
// data set for owner if no one owns it; its rows stay. It changes nothing of a data set
// another owns (*sink.ConflictError).
func (s *Sink) ResetCheckpoint(ctx context.Context, key sink.Key, owner sink.Owner) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.checkOwner(ctx, tx, key, owner); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf(resetCheckpoint, s.checkpoints),
			append(s.checkpointArgs(key), formatTime(time.Now()), owner.UID, owner.Name)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset checkpoint of %s in %s: %w", key, s.name, classify(err))
	}
	return nil
}

// checkOwner fails with a *sink.ConflictError when another than owner owns the data set
// key, and answers whether the data set has a checkpoint. The transaction holds the write
// lock: no one claims the data set before it ends.
func (s *Sink) checkOwner(ctx context.Context, tx *sql.Tx, key sink.Key, owner sink.Owner) (bool, error) {
	var stored sink.Owner
	err := tx.QueryRowContext(ctx, fmt.Sprintf(selectOwner, s.checkpoints), s.checkpointArgs(key)...).
		Scan(&stored.UID, &stored.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // no checkpoint, no owner
	}
	if err != nil {
		return false, fmt.Errorf("read the owner: %w", err)
	}
	return true, sink.Claimable(key, stored, owner)
}

// DeleteRows removes every row of key, its history, its quarantined records and its checkpoint, in one
// transaction. It deletes nothing of a data set another owns (*sink.ConflictError), nor of
// one without a checkpoint: such rows are no one's (sink.Sink.DeleteRows).
func (s *Sink) DeleteRows(ctx context.Context, key sink.Key, owner sink.Owner) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		found, err := s.checkOwner(ctx, tx, key, owner)
		if err != nil || !found {
			return err
		}
		_, err = tx.ExecContext(ctx, fmt.Sprintf(deleteKeyRecords, s.records),
			key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant)
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, fmt.Sprintf(deleteKeyQuarantined, s.quarantine), s.checkpointArgs(key)...); err != nil {
			return err
		}
		if s.history != "" {
			_, err = tx.ExecContext(ctx, fmt.Sprintf(deleteKeyHistory, s.history),
				key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant)
			if err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, fmt.Sprintf(deleteCheckpoint, s.checkpoints), s.checkpointArgs(key)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete rows of %s from %s: %w", key, s.name, classify(err))
	}
	return nil
}

// ReadRows answers every stored row of key, deleted ones included, ordered by id, as
// records: Payload is nil while only a pruned version was seen, times are UTC. It reads
// the whole data set into memory: it is meant for verification and tests (comparing a
// sink with the source row by row), not for serving data.
func (s *Sink) ReadRows(ctx context.Context, key sink.Key) ([]sink.Record, error) {
	records, err := s.readRows(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read rows of %s from %s: %w", key, s.name, classify(err))
	}
	return records, nil
}

func (s *Sink) readRows(ctx context.Context, key sink.Key) ([]sink.Record, error) {
	rows, err := s.reader.QueryContext(ctx, fmt.Sprintf(selectRecords, s.records),
		key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var records []sink.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		records = append(records, r)
	}
	return records, rows.Err()
}

// Quarantine answers the records of key that could not be stored (sink.Quarantined),
// ordered by id. Like ReadRows, it is meant for people and tests.
func (s *Sink) Quarantine(ctx context.Context, key sink.Key) ([]sink.Quarantined, error) {
	quarantined, err := s.readQuarantine(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read quarantined records of %s in %s: %w", key, s.name, classify(err))
	}
	return quarantined, nil
}

func (s *Sink) readQuarantine(ctx context.Context, key sink.Key) ([]sink.Quarantined, error) {
	rows, err := s.reader.QueryContext(ctx, fmt.Sprintf(selectQuarantined, s.quarantine), s.checkpointArgs(key)...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var quarantined []sink.Quarantined
	for rows.Next() {
		var q sink.Quarantined
		if q.Record, err = scanRecord(rows, &q.Reason); err != nil {
			return nil, err
		}
		quarantined = append(quarantined, q)
	}
	return quarantined, rows.Err()
}

// scanRecord scans the columns of selectRecords, after the leading ones into leading.
func scanRecord(rows *sql.Rows, leading ...any) (sink.Record, error) {
	var (
		r                                 sink.Record
		payload, deletedAt                sql.NullString
		action, firstSeenAt, lastModified string
	)
	err := rows.Scan(append(leading, &r.ID, &payload, &r.Pruned, &action, &firstSeenAt, &lastModified, &deletedAt, &r.Cursor)...)
	if err != nil {
		return sink.Record{}, err
	}
	if payload.Valid {
		r.Payload = []byte(payload.String)
	}
	r.Action = sink.Action(action)
	if r.FirstSeenAt, err = parseTime(firstSeenAt); err != nil {
		return sink.Record{}, fmt.Errorf("record %q: first_seen_at: %w", r.ID, err)
	}
	if r.LastModifiedAt, err = parseTime(lastModified); err != nil {
		return sink.Record{}, fmt.Errorf("record %q: last_modified_at: %w", r.ID, err)
	}
	if deletedAt.Valid {
		t, err := parseTime(deletedAt.String)
		if err != nil {
			return sink.Record{}, fmt.Errorf("record %q: deleted_at: %w", r.ID, err)
		}
		r.DeletedAt = &t
	}
	return r, nil
}

func parseTime(s string) (time.Time, error) {
	return time.Parse(timeLayout, s)
}

func (s *Sink) checkpointArgs(key sink.Key) []any {
	return []any{s.tableName, key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant}
}
