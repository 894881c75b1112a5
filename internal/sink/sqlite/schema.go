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
	"github.com/nango-operator/nango-operator/internal/sink/layout"
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
// recorded lacks, and how to add them: step 2 of its layout. SQLite has no ADD COLUMN IF NOT
// EXISTS: the step adds those that table_info does not list. The rows get no owner: the
// first NangoSync that writes each data set claims it.
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

// createLayoutTable holds the layout version of every table of the file that the sinks
// made (see package layout).
const createLayoutTable = `CREATE TABLE IF NOT EXISTS %s (
	table_name TEXT PRIMARY KEY,
	version INTEGER NOT NULL
)`

// recordVersion records the layout version of a table.
const recordVersion = `INSERT INTO %s (table_name, version) VALUES (?, ?)
ON CONFLICT (table_name) DO UPDATE SET version = excluded.version`

// migrations are the numbered steps of each kind of table's layout, as in the PostgreSQL
// sink (see package layout). Issue a new step, never change one that was released.
func migrations() layout.Steps[*sql.Tx] {
	return layout.Steps[*sql.Tx]{
		layout.Checkpoints: {
			{Version: 2, Apply: addOwnerColumnsIfMissing},
		},
	}
}

// table is one of the tables a Sink writes.
type table struct {
	kind layout.Kind
	// name is the table's name as the layout table keys it; quoted is its name for SQL.
	name, quoted string
	// create creates the table, which is missing, at its kind's current layout.
	create func(ctx context.Context, tx *sql.Tx) error
}

// tables answers the tables the sink writes, the history's last.
func (s *Sink) tables() []table {
	tables := []table{
		{kind: layout.Records, name: s.tableName, quoted: s.records, create: createWith(createRecordsTable, s.records)},
		{kind: layout.Checkpoints, name: CheckpointTable, quoted: s.checkpoints,
			create: createWith(createCheckpointTable, s.checkpoints)},
		{kind: layout.Quarantine, name: sink.QuarantineTable, quoted: s.quarantine,
			create: createWith(createQuarantineTable, s.quarantine)},
	}
	if s.history != "" {
		tables = append(tables, table{kind: layout.History, name: s.tableName + HistorySuffix, quoted: s.history,
			create: s.createHistory})
	}
	return tables
}

// createWith answers a function that runs ddl, a CREATE TABLE of table.
func createWith(ddl, table string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, fmt.Sprintf(ddl, table))
		return err
	}
}

// createTables creates the layout table and the sink's tables when missing, and brings
// those that exist to the current layout (see package layout). In SQLite DDL is
// transactional and serialised by the write lock, so concurrent opens need no more care
// than one transaction.
func (s *Sink) createTables(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.createMissingTables(ctx, tx); err != nil {
			return err
		}
		return s.migrate(ctx, tx)
	})
}

// createMissingTables creates the layout table and those of the sink's tables that are
// missing, each recorded at its kind's current layout.
func (s *Sink) createMissingTables(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(createLayoutTable, s.layout)); err != nil {
		return fmt.Errorf("create table %s: %w", layout.Table, err)
	}
	for _, t := range s.tables() {
		var exists bool
		err := tx.QueryRowContext(ctx, "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
			t.name).Scan(&exists)
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
}

// migrate brings the tables whose layout is older than the current one (or not recorded)
// up to it, and refuses tables of a newer layout.
func (s *Sink) migrate(ctx context.Context, tx *sql.Tx) error {
	versions, err := s.layoutVersions(ctx, tx)
	if err != nil {
		return err
	}
	steps := migrations()
	for _, t := range s.tables() {
		stored := versions[t.name] // layout.Unrecorded when missing
		if stored == steps.Current(t.kind) {
			continue
		}
		pending, err := steps.Pending(t.kind, t.name, stored)
		if err != nil {
			return err
		}
		for _, step := range pending {
			if err := step.Apply(ctx, tx, t.quoted); err != nil {
				return fmt.Errorf("bring table %s to layout version %d: %w", t.name, step.Version, err)
			}
		}
		if err := s.recordVersion(ctx, tx, t); err != nil {
			return err
		}
	}
	return nil
}

// layoutVersions answers the layout version recorded for each table of the file.
func (s *Sink) layoutVersions(ctx context.Context, tx *sql.Tx) (map[string]int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT table_name, version FROM "+s.layout)
	if err != nil {
		return nil, fmt.Errorf("read the layout versions in %s: %w", layout.Table, err)
	}
	defer func() { _ = rows.Close() }()
	versions := map[string]int{}
	for rows.Next() {
		var name string
		var version int
		if err := rows.Scan(&name, &version); err != nil {
			return nil, fmt.Errorf("read the layout versions in %s: %w", layout.Table, err)
		}
		versions[name] = version
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the layout versions in %s: %w", layout.Table, err)
	}
	return versions, nil
}

// recordVersion records that t is at its kind's current layout.
func (s *Sink) recordVersion(ctx context.Context, tx *sql.Tx, t table) error {
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(recordVersion, s.layout), t.name, migrations().Current(t.kind)); err != nil {
		return fmt.Errorf("record the layout version of %s in %s: %w", t.name, layout.Table, err)
	}
	return nil
}

// addOwnerColumnsIfMissing adds the owner columns that the checkpoint table lacks: a table
// may have them without a recorded version.
func addOwnerColumnsIfMissing(ctx context.Context, tx *sql.Tx, checkpoints string) error {
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
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(add, checkpoints)); err != nil {
			return fmt.Errorf("add column %s to %s: %w", column, CheckpointTable, err)
		}
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
