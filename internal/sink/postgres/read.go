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
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nango-operator/nango-operator/internal/sink"
)

const selectCheckpoint = `SELECT cursor, added, updated, deleted, owner_uid, owner_name FROM %s
WHERE table_name = $1 AND provider_config_key = $2 AND connection_id = $3 AND model = $4 AND variant = $5`

// lockOwner reads the owner of a data set and locks its checkpoint, so that no page can
// claim it before the transaction ends.
const lockOwner = `SELECT owner_uid, owner_name FROM %s
WHERE table_name = $1 AND provider_config_key = $2 AND connection_id = $3 AND model = $4 AND variant = $5
FOR UPDATE`

const deleteCheckpoint = `DELETE FROM %s
WHERE table_name = $1 AND provider_config_key = $2 AND connection_id = $3 AND model = $4 AND variant = $5`

const deleteKeyRecords = `DELETE FROM %s
WHERE provider_config_key = $1 AND connection_id = $2 AND model = $3 AND variant = $4`

const deleteKeyQuarantined = `DELETE FROM %s
WHERE table_name = $1 AND provider_config_key = $2 AND connection_id = $3 AND model = $4 AND variant = $5`

// selectQuarantined orders by the id's bytes, as selectRecords does.
const selectQuarantined = `SELECT id, reason, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor
FROM %s
WHERE table_name = $1 AND provider_config_key = $2 AND connection_id = $3 AND model = $4 AND variant = $5
ORDER BY id`

// selectRecords orders by id byte by byte (COLLATE "C"), whatever the database's collation,
// so that both sinks and Go agree on the order.
const selectRecords = `SELECT id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor
FROM %s
WHERE provider_config_key = $1 AND connection_id = $2 AND model = $3 AND variant = $4
ORDER BY id COLLATE "C"`

// Checkpoint answers the checkpoint stored with the last committed page of key, or the
// zero Checkpoint.
func (s *Sink) Checkpoint(ctx context.Context, key sink.Key) (sink.Checkpoint, error) {
	var c sink.Checkpoint
	err := s.call(ctx, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, fmt.Sprintf(selectCheckpoint, s.checkpoints), s.checkpointArgs(key)...).
			Scan(&c.Cursor, &c.Written.Added, &c.Written.Updated, &c.Written.Deleted, &c.Owner.UID, &c.Owner.Name)
		if errors.Is(err, pgx.ErrNoRows) {
			c = sink.Checkpoint{}
			return nil
		}
		return err
	})
	if err != nil {
		return sink.Checkpoint{}, fmt.Errorf("read checkpoint of %s in %s: %w", key, s.name, err)
	}
	return c, nil
}

// DeleteCheckpoint forgets the checkpoint of key, and so its owner; its rows stay. It
// deletes nothing of a data set another owns (*sink.ConflictError).
func (s *Sink) DeleteCheckpoint(ctx context.Context, key sink.Key, owner sink.Owner) error {
	batch := &pgx.Batch{}
	batch.Queue(fmt.Sprintf(deleteCheckpoint, s.checkpoints), s.checkpointArgs(key)...)
	if err := s.call(ctx, func(ctx context.Context) error { return s.sendOwnedInTx(ctx, key, owner, batch, true) }); err != nil {
		return fmt.Errorf("delete checkpoint of %s in %s: %w", key, s.name, err)
	}
	return nil
}

// resetCheckpoint forgets the cursor and counts of a data set and keeps it claimed: for
// owner when no one owned it, for no one when owner is the zero Owner. It changes no row
// when another owner claimed the data set meanwhile.
const resetCheckpoint = `INSERT INTO %s AS stored (table_name, provider_config_key, connection_id, model, variant,
	cursor, owner_uid, owner_name)
VALUES ($1, $2, $3, $4, $5, '', $6, $7)
ON CONFLICT (table_name, provider_config_key, connection_id, model, variant) DO UPDATE SET
	cursor = '', added = 0, updated = 0, deleted = 0,
	owner_uid = EXCLUDED.owner_uid,
	owner_name = EXCLUDED.owner_name,
	updated_at = now()
WHERE stored.owner_uid IN ('', EXCLUDED.owner_uid)`

// ResetCheckpoint forgets the cursor and counts of key and keeps its owner, claiming the
// data set for owner if no one owns it; its rows stay. It changes nothing of a data set
// another owns (*sink.ConflictError).
func (s *Sink) ResetCheckpoint(ctx context.Context, key sink.Key, owner sink.Owner) error {
	batch := &pgx.Batch{}
	batch.Queue(fmt.Sprintf(resetCheckpoint, s.checkpoints), append(s.checkpointArgs(key), owner.UID, owner.Name)...).
		Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() == 0 {
				return errOwnedByAnother
			}
			return nil
		})
	err := s.call(ctx, func(ctx context.Context) error { return s.sendOwnedInTx(ctx, key, owner, batch, true) })
	if errors.Is(err, errOwnedByAnother) {
		// Claimed by another between the check and the upsert: read who, for the error.
		c, readErr := s.Checkpoint(ctx, key)
		if readErr != nil {
			err = fmt.Errorf("%w, and reading its owner failed: %w", err, readErr)
		} else {
			err = &sink.ConflictError{Key: key, Owner: c.Owner}
		}
	}
	if err != nil {
		return fmt.Errorf("reset checkpoint of %s in %s: %w", key, s.name, err)
	}
	return nil
}

// sendOwnedInTx sends batch in one transaction once it has locked the checkpoint of key,
// and fails with a *sink.ConflictError, sending nothing, when another than owner owns it.
// A data set without a checkpoint has no owner: batch is sent only when withoutCheckpoint
// says so. The check takes a round trip of its own: sent with the batch, the statements
// would run before the answer is read, deleting another's data set only to roll it back.
func (s *Sink) sendOwnedInTx(ctx context.Context, key sink.Key, owner sink.Owner, batch *pgx.Batch, withoutCheckpoint bool) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		found := false
		check := s.newBatch()
		check.Queue(fmt.Sprintf(lockOwner, s.checkpoints), s.checkpointArgs(key)...).QueryRow(func(row pgx.Row) error {
			var stored sink.Owner
			if err := row.Scan(&stored.UID, &stored.Name); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					return nil // no checkpoint, no owner
				}
				return err
			}
			found = true
			return sink.Claimable(key, stored, owner)
		})
		if err := tx.SendBatch(ctx, check).Close(); err != nil {
			return err
		}
		if !found && !withoutCheckpoint {
			return nil
		}
		return tx.SendBatch(ctx, batch).Close()
	})
}

// DeleteRows removes every row of key, its history, its quarantined records and its checkpoint, in one
// transaction. It deletes nothing of a data set another owns (*sink.ConflictError), nor of
// one without a checkpoint: such rows are no one's (sink.Sink.DeleteRows).
func (s *Sink) DeleteRows(ctx context.Context, key sink.Key, owner sink.Owner) error {
	batch := &pgx.Batch{}
	batch.Queue(fmt.Sprintf(deleteKeyRecords, s.records), key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant)
	batch.Queue(fmt.Sprintf(deleteKeyQuarantined, s.quarantine), s.checkpointArgs(key)...)
	if s.history != "" {
		batch.Queue(fmt.Sprintf(deleteKeyHistory, s.history), key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant)
	}
	batch.Queue(fmt.Sprintf(deleteCheckpoint, s.checkpoints), s.checkpointArgs(key)...)
	if err := s.call(ctx, func(ctx context.Context) error { return s.sendOwnedInTx(ctx, key, owner, batch, false) }); err != nil {
		return fmt.Errorf("delete rows of %s from %s: %w", key, s.name, err)
	}
	s.rowsDeleted(key)
	return nil
}

// ReadRows answers every stored row of key, deleted ones included, ordered by id, as
// records: Payload is nil while only a pruned version was seen, times are UTC. It reads
// the whole data set into memory: it is meant for verification and tests (comparing a
// sink with the source row by row), not for serving data.
func (s *Sink) ReadRows(ctx context.Context, key sink.Key) ([]sink.Record, error) {
	var records []sink.Record
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		records, err = s.readRows(ctx, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read rows of %s from %s: %w", key, s.name, err)
	}
	return records, nil
}

func (s *Sink) readRows(ctx context.Context, key sink.Key) ([]sink.Record, error) {
	rows, err := s.pool.Query(ctx, fmt.Sprintf(selectRecords, s.records),
		key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanRecord)
}

// Quarantine answers the records of key that could not be stored (sink.Quarantined),
// ordered by id. Like ReadRows, it is meant for people and tests.
func (s *Sink) Quarantine(ctx context.Context, key sink.Key) ([]sink.Quarantined, error) {
	var quarantined []sink.Quarantined
	err := s.call(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, fmt.Sprintf(selectQuarantined, s.quarantine), s.checkpointArgs(key)...)
		if err != nil {
			return err
		}
		quarantined, err = pgx.CollectRows(rows, scanQuarantined)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read quarantined records of %s in %s: %w", key, s.name, err)
	}
	return quarantined, nil
}

func scanQuarantined(row pgx.CollectableRow) (sink.Quarantined, error) {
	var (
		q         sink.Quarantined
		id        []byte
		payload   *string
		action    string
		deletedAt *time.Time
	)
	err := row.Scan(&id, &q.Reason, &payload, &q.Pruned, &action, &q.FirstSeenAt, &q.LastModifiedAt, &deletedAt, &q.Cursor)
	if err != nil {
		return sink.Quarantined{}, err
	}
	q.ID = string(id)
	if payload != nil {
		q.Payload = []byte(*payload)
	}
	q.Action = sink.Action(action)
	q.FirstSeenAt, q.LastModifiedAt, q.DeletedAt = utcTimes(q.FirstSeenAt, q.LastModifiedAt, deletedAt)
	return q, nil
}

// utcTimes answers the times as read, in UTC.
func utcTimes(firstSeen, lastModified time.Time, deletedAt *time.Time) (time.Time, time.Time, *time.Time) {
	if deletedAt != nil {
		utc := deletedAt.UTC()
		deletedAt = &utc
	}
	return firstSeen.UTC(), lastModified.UTC(), deletedAt
}

func scanRecord(row pgx.CollectableRow) (sink.Record, error) {
	var (
		r         sink.Record
		payload   []byte
		action    string
		deletedAt *time.Time
	)
	err := row.Scan(&r.ID, &payload, &r.Pruned, &action, &r.FirstSeenAt, &r.LastModifiedAt, &deletedAt, &r.Cursor)
	if err != nil {
		return sink.Record{}, err
	}
	r.Payload = payload
	r.Action = sink.Action(action)
	r.FirstSeenAt, r.LastModifiedAt, r.DeletedAt = utcTimes(r.FirstSeenAt, r.LastModifiedAt, deletedAt)
	return r, nil
}

func (s *Sink) checkpointArgs(key sink.Key) []any {
	return []any{s.tableName, key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant}
}
