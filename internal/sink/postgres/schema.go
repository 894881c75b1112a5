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
	"github.com/nango-operator/nango-operator/internal/sink/layout"
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

// addOwnerColumns is step 2 of the checkpoint table's layout: a table from before owners
// were recorded gets the owner columns. Its rows get no owner: the first NangoSync that
// writes each data set claims it.
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

// createLayoutTable holds the layout version of every table of the schema that the sinks
// made (see package layout).
const createLayoutTable = `CREATE TABLE IF NOT EXISTS %s (
	table_name text PRIMARY KEY,
	version integer NOT NULL
)`

// selectVersions answers the versions recorded for the tables named in $1.
const selectVersions = `SELECT table_name, version FROM %s WHERE table_name = ANY($1)`

// recordVersion records the layout version $2 of table $1.
const recordVersion = `INSERT INTO %s (table_name, version) VALUES ($1, $2)
ON CONFLICT (table_name) DO UPDATE SET version = excluded.version`

// migrations are the numbered steps of each kind of table's layout (see package layout).
// Issue a new step, never change one that was released.
func migrations() layout.Steps[pgx.Tx] {
	return layout.Steps[pgx.Tx]{
		layout.Checkpoints: {
			{Version: 2, Apply: addOwnerColumnsIfMissing},
		},
	}
}

// table is one of the tables a Sink writes.
type table struct {
	kind layout.Kind
	// name is the table's name as the layout table keys it; quoted is its
	// schema-qualified name for SQL.
	name, quoted string
	// create creates the table, which is missing, at its kind's current layout.
	create func(ctx context.Context, tx pgx.Tx) error
}

// tables answers the tables the sink writes, the history's last.
func (s *Sink) tables() []table {
	tables := []table{
		{kind: layout.Records, name: s.tableName, quoted: s.records, create: s.createWith(createRecordsTable, s.records)},
		{kind: layout.Checkpoints, name: CheckpointTable, quoted: s.checkpoints,
			create: s.createWith(createCheckpointTable, s.checkpoints)},
		{kind: layout.Quarantine, name: sink.QuarantineTable, quoted: s.quarantine,
			create: s.createWith(createQuarantineTable, s.quarantine)},
	}
	if s.history != "" {
		tables = append(tables, table{kind: layout.History, name: s.tableName + HistorySuffix, quoted: s.history,
			create: s.createHistory})
	}
	return tables
}

// createWith answers a function that runs ddl, a CREATE TABLE of table.
func (s *Sink) createWith(ddl, table string) func(context.Context, pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, fmt.Sprintf(ddl, table))
		return err
	}
}

// createTables creates the schema and the tables when missing, and brings those that
// exist to the current layout (see package layout). When the tables exist at the current
// layout it runs no DDL and writes nothing: CREATE ... IF NOT EXISTS checks the CREATE
// privilege before it checks existence, ALTER TABLE checks that the role owns the table,
// and a DBA may well have created the tables for a role that has neither.
func (s *Sink) createTables(ctx context.Context, schema string) error {
	var exist bool
	err := s.pool.QueryRow(ctx,
		"SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL "+
			"AND to_regclass($4) IS NOT NULL AND ($5 = '' OR to_regclass($5) IS NOT NULL)",
		s.records, s.checkpoints, s.quarantine, s.layout, s.history).Scan(&exist)
	if err != nil {
		return fmt.Errorf("look for the tables: %w", err)
	}
	if !exist {
		if err := s.createMissingTables(ctx, schema); err != nil {
			return err
		}
	}
	return s.migrate(ctx)
}

// migration is what brings one table to the current layout: its steps, and a new row in
// the layout table.
type migration struct {
	table table
	steps []layout.Step[pgx.Tx]
}

// migrate brings the tables whose layout is older than the current one (or not recorded)
// up to it, in one transaction under the DDL lock, and refuses tables of a newer layout.
func (s *Sink) migrate(ctx context.Context) error {
	pending, err := s.pendingMigrations(ctx, s.pool)
	if err != nil || len(pending) == 0 {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ddlLockKey); err != nil {
			return fmt.Errorf("lock for altering tables: %w", err)
		}
		// Again, now that no other sink migrates: one may have done it meanwhile.
		pending, err := s.pendingMigrations(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range pending {
			for _, step := range m.steps {
				if err := step.Apply(ctx, tx, m.table.quoted); err != nil {
					return fmt.Errorf("bring table %s to layout version %d: %w", m.table.name, step.Version, err)
				}
			}
			if err := s.recordVersion(ctx, tx, m.table); err != nil {
				return err
			}
		}
		return nil
	})
}

// querier is what reads the layout table: the pool, or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// pendingMigrations answers the tables whose layout version is not recorded or older than
// the current one, with the steps they need. A table of a newer layout is refused.
func (s *Sink) pendingMigrations(ctx context.Context, q querier) ([]migration, error) {
	tables := s.tables()
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	rows, _ := q.Query(ctx, fmt.Sprintf(selectVersions, s.layout), names)
	versions := map[string]int{}
	var name string
	var version int
	_, err := pgx.ForEachRow(rows, []any{&name, &version}, func() error {
		versions[name] = version
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the layout versions in %s: %w", layout.Table, err)
	}
	steps := migrations()
	var pending []migration
	for _, t := range tables {
		stored := versions[t.name] // layout.Unrecorded when missing
		if stored == steps.Current(t.kind) {
			continue
		}
		tableSteps, err := steps.Pending(t.kind, t.name, stored)
		if err != nil {
			return nil, err
		}
		pending = append(pending, migration{table: t, steps: tableSteps})
	}
	return pending, nil
}

// recordVersion records that t is at its kind's current layout.
func (s *Sink) recordVersion(ctx context.Context, tx pgx.Tx, t table) error {
	if _, err := tx.Exec(ctx, fmt.Sprintf(recordVersion, s.layout), t.name, migrations().Current(t.kind)); err != nil {
		return fmt.Errorf("record the layout version of %s in %s: %w", t.name, layout.Table, err)
	}
	return nil
}

// addOwnerColumnsIfMissing adds the owner columns to a checkpoint table that lacks them. It
// looks first, since a table may have them without a recorded version, and a role that
// does not own the table may not even run ADD COLUMN IF NOT EXISTS.
func addOwnerColumnsIfMissing(ctx context.Context, tx pgx.Tx, checkpoints string) error {
	var columns int
	if err := tx.QueryRow(ctx, countOwnerColumns, checkpoints).Scan(&columns); err != nil {
		return fmt.Errorf("look for the owner columns of %s: %w", CheckpointTable, err)
	}
	if columns == 2 {
		return nil
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(addOwnerColumns, checkpoints)); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege: not the table's owner
			err = sink.Refused(err, fixOwnerColumns(checkpoints))
		}
		return fmt.Errorf("add the owner columns to %s: %w", CheckpointTable, err)
	}
	return nil
}

// createMissingTables creates the schema, the layout table and those of the sink's tables
// that are missing, each recorded at its kind's current layout.
func (s *Sink) createMissingTables(ctx context.Context, schema string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ddlLockKey); err != nil {
			return fmt.Errorf("lock for creating tables: %w", err)
		}
		if err := createSchema(ctx, tx, schema); err != nil {
			return err
		}
		if err := s.createLayoutTable(ctx, tx); err != nil {
			return err
		}
		for _, t := range s.tables() {
			exists, err := tableExists(ctx, tx, t.quoted)
			if err != nil {
				return fmt.Errorf("look for table %s: %w", t.name, err)
			}
			if exists {
				continue
			}
			if err := t.create(ctx, tx); err != nil {
				return fmt.Errorf("create table %s: %w", t.name, err)
			}
			if err := s.recordVersion(ctx, tx, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// createLayoutTable creates the layout table unless it exists. A role that may not create
// it is told how to have it created: tables a DBA made before versions were recorded would
// otherwise stop it for good.
func (s *Sink) createLayoutTable(ctx context.Context, tx pgx.Tx) error {
	exists, err := tableExists(ctx, tx, s.layout)
	if err != nil || exists {
		return err
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(createLayoutTable, s.layout)); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
			err = sink.Refused(err, fixLayoutTable(s.layout))
		}
		return fmt.Errorf("create table %s: %w", layout.Table, err)
	}
	return nil
}

// tableExists tells whether the table of quoted, schema-qualified name exists.
func tableExists(ctx context.Context, tx pgx.Tx, quoted string) (bool, error) {
	var exists bool
	err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", quoted).Scan(&exists)
	return exists, err
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
