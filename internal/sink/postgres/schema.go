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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// ddlLockKey is the transaction-level advisory lock every Open takes before creating
// tables. CREATE TABLE IF NOT EXISTS is not safe against itself: two sessions that both
// find the table missing both try to create it, and one fails with a unique violation on
// pg_type. Holding one lock makes the second wait and then find the table.
const ddlLockKey int64 = 0x6e616e676f5f6464 // "nango_dd"

const createRecordsTable = `CREATE TABLE IF NOT EXISTS %s (
	provider_config_key text NOT NULL,
	connection_id text NOT NULL,
	model text NOT NULL,
	variant text NOT NULL,
	id text NOT NULL,
	payload jsonb,
	pruned boolean NOT NULL DEFAULT false,
	last_action text NOT NULL,
	first_seen_at timestamptz NOT NULL,
	last_modified_at timestamptz NOT NULL,
	deleted_at timestamptz,
	cursor text NOT NULL,
	written_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (provider_config_key, connection_id, model, variant, id)
)`

const createCheckpointTable = `CREATE TABLE IF NOT EXISTS %s (
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
	owner_uid text NOT NULL DEFAULT '',
	owner_name text NOT NULL DEFAULT '',
	PRIMARY KEY (table_name, provider_config_key, connection_id, model, variant)
)`

// addOwnerColumns brings a checkpoint table from before owners were recorded up to date.
// Its rows get no owner: the first NangoSync that writes each data set claims it.
const addOwnerColumns = `ALTER TABLE %s
	ADD COLUMN IF NOT EXISTS owner_uid text NOT NULL DEFAULT '',
	ADD COLUMN IF NOT EXISTS owner_name text NOT NULL DEFAULT ''`

// countOwnerColumns counts the owner columns the checkpoint table has: 2 once it is up to date.
const countOwnerColumns = `SELECT count(*) FROM pg_attribute
WHERE attrelid = to_regclass($1) AND attname IN ('owner_uid', 'owner_name') AND NOT attisdropped`

// createQuarantineTable keeps the records the sink cannot store (sink.Quarantined): the
// id as bytes, since it may hold what text cannot, and a hash of it in the key, since it
// may be longer than an index entry.
const createQuarantineTable = `CREATE TABLE IF NOT EXISTS %s (
	table_name text NOT NULL,
	provider_config_key text NOT NULL,
	connection_id text NOT NULL,
	model text NOT NULL,
	variant text NOT NULL,
	id_sha256 bytea NOT NULL,
	id bytea NOT NULL,
	id_quoted text NOT NULL,
	reason text NOT NULL,
	payload text,
	pruned boolean NOT NULL DEFAULT false,
	last_action text NOT NULL,
	first_seen_at timestamptz NOT NULL,
	last_modified_at timestamptz NOT NULL,
	deleted_at timestamptz,
	cursor text NOT NULL,
	quarantined_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (table_name, provider_config_key, connection_id, model, variant, id_sha256)
)`

// createTables creates the schema and the three tables when missing, and adds the owner
// columns to a checkpoint table that lacks them. When the tables exist as they should it
// runs no DDL at all: CREATE ... IF NOT EXISTS checks the CREATE privilege before it checks
// existence, ALTER TABLE ... IF NOT EXISTS checks that the role owns the table, and a DBA
// may well have created the tables for a role that has neither.
func (s *Sink) createTables(ctx context.Context, schema string) error {
	var exist bool
	err := s.pool.QueryRow(ctx,
		"SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL "+
			"AND ($4 = '' OR to_regclass($4) IS NOT NULL)",
		s.records, s.checkpoints, s.quarantine, s.history).Scan(&exist)
	if err != nil {
		return fmt.Errorf("look for the tables: %w", err)
	}
	if !exist {
		if err := s.createMissingTables(ctx, schema); err != nil {
			return err
		}
	}
	return s.migrateCheckpoints(ctx)
}

// migrateCheckpoints adds the owner columns to a checkpoint table created before owners
// were recorded, unless it has them.
func (s *Sink) migrateCheckpoints(ctx context.Context) error {
	var columns int
	if err := s.pool.QueryRow(ctx, countOwnerColumns, s.checkpoints).Scan(&columns); err != nil {
		return fmt.Errorf("look for the owner columns of %s: %w", CheckpointTable, err)
	}
	if columns == 2 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ddlLockKey); err != nil {
			return fmt.Errorf("lock for altering tables: %w", err)
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(addOwnerColumns, s.checkpoints))
		return err
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege: not the table's owner
			err = sink.Refused(err, fixOwnerColumns(s.checkpoints))
		}
		return fmt.Errorf("add the owner columns to %s: %w", CheckpointTable, err)
	}
	return nil
}

// createMissingTables creates the schema and those of the three tables (four with the
// history) that are missing.
func (s *Sink) createMissingTables(ctx context.Context, schema string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ddlLockKey); err != nil {
			return fmt.Errorf("lock for creating tables: %w", err)
		}
		if err := createSchema(ctx, tx, schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(createRecordsTable, s.records)); err != nil {
			return fmt.Errorf("create table %s: %w", s.name, err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(createCheckpointTable, s.checkpoints)); err != nil {
			return fmt.Errorf("create table %s: %w", CheckpointTable, err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(createQuarantineTable, s.quarantine)); err != nil {
			return fmt.Errorf("create table %s: %w", sink.QuarantineTable, err)
		}
		if s.history != "" {
			return s.createHistory(ctx, tx)
		}
		return nil
	})
}

// createSchema creates schema unless it exists, for the same privilege reason as above.
func createSchema(ctx context.Context, tx pgx.Tx, schema string) error {
	var exists bool
	err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists)
	if err != nil {
		return fmt.Errorf("look for schema %s: %w", schema, err)
	}
	if exists {
		return nil
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}
