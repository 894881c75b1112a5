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
	"fmt"

	"github.com/nango-operator/nango-operator/internal/sink"
)

const createRecordsTable = `CREATE TABLE IF NOT EXISTS %s (
	provider_config_key TEXT NOT NULL,
	connection_id TEXT NOT NULL,
	model TEXT NOT NULL,
	variant TEXT NOT NULL,
	id TEXT NOT NULL,
	payload TEXT,
	pruned INTEGER NOT NULL DEFAULT 0,
	last_action TEXT NOT NULL,
	first_seen_at TEXT NOT NULL,
	last_modified_at TEXT NOT NULL,
	deleted_at TEXT,
	cursor TEXT NOT NULL,
	written_at TEXT NOT NULL,
	PRIMARY KEY (provider_config_key, connection_id, model, variant, id)
)`

const createCheckpointTable = `CREATE TABLE IF NOT EXISTS %s (
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
	owner_uid TEXT NOT NULL DEFAULT '',
	owner_name TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (table_name, provider_config_key, connection_id, model, variant)
)`

// ownerColumns are the checkpoint table's columns that a table from before owners were
// recorded lacks, and how to add them. SQLite has no ADD COLUMN IF NOT EXISTS: the sink
// adds those that table_info does not list. The rows get no owner: the first NangoSync
// that writes each data set claims it.
func ownerColumns() map[string]string {
	return map[string]string{
		"owner_uid":  "ALTER TABLE %s ADD COLUMN owner_uid TEXT NOT NULL DEFAULT ''",
		"owner_name": "ALTER TABLE %s ADD COLUMN owner_name TEXT NOT NULL DEFAULT ''",
	}
}

// createQuarantineTable is the PostgreSQL sink's, in SQLite's types: the id as a BLOB,
// since it may hold what text should not, and a hash of it in the key.
const createQuarantineTable = `CREATE TABLE IF NOT EXISTS %s (
	table_name TEXT NOT NULL,
	provider_config_key TEXT NOT NULL,
	connection_id TEXT NOT NULL,
	model TEXT NOT NULL,
	variant TEXT NOT NULL,
	id_sha256 BLOB NOT NULL,
	id BLOB NOT NULL,
	id_quoted TEXT NOT NULL,
	reason TEXT NOT NULL,
	payload TEXT,
	pruned INTEGER NOT NULL DEFAULT 0,
	last_action TEXT NOT NULL,
	first_seen_at TEXT NOT NULL,
	last_modified_at TEXT NOT NULL,
	deleted_at TEXT,
	cursor TEXT NOT NULL,
	quarantined_at TEXT NOT NULL,
	PRIMARY KEY (table_name, provider_config_key, connection_id, model, variant, id_sha256)
)`

// createTables creates the three tables when missing, and adds the owner columns to a
// checkpoint table that lacks them. In SQLite DDL is transactional and serialised by the
// write lock, so concurrent opens need no more care than this.
func (s *Sink) createTables(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.createMissingTables(ctx, tx); err != nil {
			return err
		}
		return s.migrateCheckpoints(ctx, tx)
	})
}

// migrateCheckpoints adds the owner columns that the checkpoint table lacks.
func (s *Sink) migrateCheckpoints(ctx context.Context, tx *sql.Tx) error {
	for column, add := range ownerColumns() {
		var present bool
		err := tx.QueryRowContext(ctx, "SELECT count(*) > 0 FROM pragma_table_info(?) WHERE name = ?",
			CheckpointTable, column).Scan(&present)
		if err != nil {
			return fmt.Errorf("look for column %s of %s: %w", column, CheckpointTable, err)
		}
		if present {
			continue
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(add, s.checkpoints)); err != nil {
			return fmt.Errorf("add column %s to %s: %w", column, CheckpointTable, err)
		}
	}
	return nil
}

// createMissingTables creates those of the three tables (four with the history) that are
// missing.
func (s *Sink) createMissingTables(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(createRecordsTable, s.records)); err != nil {
		return fmt.Errorf("create table %s: %w", s.tableName, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(createCheckpointTable, s.checkpoints)); err != nil {
		return fmt.Errorf("create table %s: %w", CheckpointTable, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(createQuarantineTable, s.quarantine)); err != nil {
		return fmt.Errorf("create table %s: %w", sink.QuarantineTable, err)
	}
	if s.history != "" {
		return s.createHistory(ctx, tx)
	}
	return nil
}

// inTx runs f in a transaction, committed when f succeeds and rolled back otherwise.
func (s *Sink) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
