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

	"github.com/nango-operator/nango-operator/internal/sink"
)

// HistorySuffix names the history table of a records table: <table>_history.
const HistorySuffix = "_history"

// createHistoryTable is the PostgreSQL sink's history table, in SQLite's types.
const createHistoryTable = `CREATE TABLE IF NOT EXISTS %s (
	provider_config_key TEXT NOT NULL,
	connection_id TEXT NOT NULL,
	model TEXT NOT NULL,
	variant TEXT NOT NULL,
	id TEXT NOT NULL,
	cursor TEXT NOT NULL,
	payload TEXT,
	pruned INTEGER NOT NULL DEFAULT 0,
	last_action TEXT NOT NULL,
	first_seen_at TEXT NOT NULL,
	last_modified_at TEXT NOT NULL,
	deleted_at TEXT,
	valid_from TEXT NOT NULL,
	valid_to TEXT,
	written_at TEXT NOT NULL,
	PRIMARY KEY (provider_config_key, connection_id, model, variant, id, cursor)
)`

// seedHistory starts a new history with the rows the records table already holds.
const seedHistory = `INSERT INTO %s (provider_config_key, connection_id, model, variant, id, cursor, payload, pruned,
	last_action, first_seen_at, last_modified_at, deleted_at, valid_from, written_at)
SELECT provider_config_key, connection_id, model, variant, id, cursor, payload, pruned,
	last_action, first_seen_at, last_modified_at, deleted_at, last_modified_at, written_at
FROM %s WHERE true
ON CONFLICT DO NOTHING`

// currentVersion reads the current version of a record: one probe of the primary key.
const currentVersion = `SELECT cursor, last_modified_at, payload FROM %s
WHERE provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ? AND id = ? AND valid_to IS NULL
LIMIT 1`

// insertVersion adds a version; a cursor already there (a replayed page) adds nothing.
const insertVersion = `INSERT INTO %s (provider_config_key, connection_id, model, variant, id, cursor, payload, pruned,
	last_action, first_seen_at, last_modified_at, deleted_at, valid_from, written_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING`

// closeVersion closes the version that was current when a newer one was added.
const closeVersion = `UPDATE %s SET valid_to = ?
WHERE provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ? AND id = ? AND cursor = ?`

const deleteKeyHistory = `DELETE FROM %s
WHERE provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ?`

// selectHistory orders as selectRecords does, then by validity.
const selectHistory = `SELECT valid_from, valid_to,
	id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor
FROM %s
WHERE provider_config_key = ? AND connection_id = ? AND model = ? AND variant = ?
ORDER BY id, valid_from, cursor`

// writeHistory adds the versions of records that the history lacks and closes the ones
// they follow: the PostgreSQL sink's insertHistory, one record at a time. A version is
// added when it is newer than the record's current one (by last_modified_at, or as new
// with another cursor); a pruned version keeps the fields of the one before. It is the one
// place that writes the history.
func (s *Sink) writeHistory(ctx context.Context, tx *sql.Tx, key sink.Key, records []sink.Record, now string) error {
	if s.history == "" || len(records) == 0 {
		return nil
	}
	var stmts [3]*sql.Stmt
	for i, query := range []string{currentVersion, insertVersion, closeVersion} {
		stmt, err := tx.PrepareContext(ctx, fmt.Sprintf(query, s.history))
		if err != nil {
			return err
		}
		defer func() { _ = stmt.Close() }()
		stmts[i] = stmt
	}
	current, insert, closing := stmts[0], stmts[1], stmts[2]
	return forEachRecord(ctx, records, func(ctx context.Context, r sink.Record) error {
		var (
			cursor, lastModified string
			payload              sql.NullString
		)
		err := current.QueryRowContext(ctx, key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant, r.ID).
			Scan(&cursor, &lastModified, &payload)
		found := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("history: %w", err)
		}
		modified := formatTime(r.LastModifiedAt)
		if found && (lastModified > modified || (lastModified == modified && cursor == r.Cursor)) {
			return nil // not newer than the current version
		}
		stored := payloadText(r.Payload)
		if stored == nil && payload.Valid {
			stored = payload.String // pruned: the fields of the version before
		}
		added, err := insert.ExecContext(ctx, key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant,
			r.ID, r.Cursor, stored, r.Pruned, string(r.Action), formatTime(r.FirstSeenAt),
			modified, formatOptionalTime(r.DeletedAt), modified, now)
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
		if n, err := added.RowsAffected(); err != nil || n == 0 || !found {
			return err
		}
		if _, err := closing.ExecContext(ctx, modified, key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant,
			r.ID, cursor); err != nil {
			return fmt.Errorf("history: %w", err)
		}
		return nil
	})
}

// createHistory creates the history table, which is missing, started with the rows the
// records table holds.
func (s *Sink) createHistory(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(createHistoryTable, s.history)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(seedHistory, s.history, s.records)); err != nil {
		return fmt.Errorf("start table %s%s with the rows of %s: %w", s.tableName, HistorySuffix, s.tableName, err)
	}
	return nil
}

// History answers every version of key's records the history holds, ordered by id, then
// valid_from. It fails unless the sink keeps a history. Like ReadRows, it is meant for
// people and tests.
func (s *Sink) History(ctx context.Context, key sink.Key) ([]sink.Version, error) {
	if s.history == "" {
		return nil, fmt.Errorf("read history of %s: %s keeps none", key, s.name)
	}
	versions, err := s.readHistory(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read history of %s from %s: %w", key, s.name, classify(err))
	}
	return versions, nil
}

func (s *Sink) readHistory(ctx context.Context, key sink.Key) ([]sink.Version, error) {
	rows, err := s.reader.QueryContext(ctx, fmt.Sprintf(selectHistory, s.history),
		key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var versions []sink.Version
	for rows.Next() {
		var (
			v         sink.Version
			validFrom string
			validTo   sql.NullString
		)
		if v.Record, err = scanRecord(rows, &validFrom, &validTo); err != nil {
			return nil, err
		}
		if v.ValidFrom, err = parseTime(validFrom); err != nil {
			return nil, fmt.Errorf("record %q: valid_from: %w", v.ID, err)
		}
		if validTo.Valid {
			t, err := parseTime(validTo.String)
			if err != nil {
				return nil, fmt.Errorf("record %q: valid_to: %w", v.ID, err)
			}
			v.ValidTo = &t
		}
		versions = append(versions, v)
	}
	return versions, rows.Err()
}
