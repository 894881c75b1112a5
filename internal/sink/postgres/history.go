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
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// HistorySuffix names the history table of a records table: <table>_history.
const HistorySuffix = "_history"

// createHistoryTable keeps every version written (Options.History), one row per record id
// and Nango cursor: a page written twice finds its versions there and adds none. valid_to
// is NULL for the current version of each record.
const createHistoryTable = `CREATE TABLE IF NOT EXISTS %s (
	provider_config_key text NOT NULL,
	connection_id text NOT NULL,
	model text NOT NULL,
	variant text NOT NULL,
	id text NOT NULL,
	cursor text NOT NULL,
	payload jsonb,
	pruned boolean NOT NULL DEFAULT false,
	last_action text NOT NULL,
	first_seen_at timestamptz NOT NULL,
	last_modified_at timestamptz NOT NULL,
	deleted_at timestamptz,
	valid_from timestamptz NOT NULL,
	valid_to timestamptz,
	written_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (provider_config_key, connection_id, model, variant, id, cursor)
)`

// seedHistory starts a new history with the rows the records table already holds, as
// their current versions.
const seedHistory = `INSERT INTO %s (provider_config_key, connection_id, model, variant, id, cursor, payload, pruned,
	last_action, first_seen_at, last_modified_at, deleted_at, valid_from)
SELECT provider_config_key, connection_id, model, variant, id, cursor, payload, pruned,
	last_action, first_seen_at, last_modified_at, deleted_at, last_modified_at
FROM %s
ON CONFLICT DO NOTHING`

// pageRows is the page's records as rows, from the column arrays of upsertArgs: what
// insertHistory reads when fed from a batch's parameters.
const pageRows = `SELECT r.id, r.payload::jsonb AS payload, r.pruned, r.last_action, r.first_seen_at,
	r.last_modified_at, r.deleted_at, r.cursor
FROM unnest($5::text[], $6::text[], $7::boolean[], $8::text[], $9::timestamptz[], $10::timestamptz[],
	$11::timestamptz[], $12::text[])
	AS r(id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor)`

// insertHistory adds the versions of a page that the history lacks, and closes the
// versions they follow, in one statement. %[1]s is the history table; %[2]s a query
// answering the page's rows (id, payload, pruned, last_action, first_seen_at,
// last_modified_at, deleted_at, cursor), one per id, with $1 to $4 the data set's key.
//
// A version is added when it is newer than the record's current one (by
// last_modified_at, or as new with another cursor), as the records table takes it; a
// pruned version keeps the fields of the one before. Its cursor already in the history (a
// replayed page) adds nothing. The version it follows gets its valid_from as valid_to, so
// the history stays contiguous.
//
// The history is never joined by the planner's choice: a new history table looks empty to
// it, and a plan made then (a scan of the whole key for each row of the page) stays cached
// with the statement. The current version is read by LATERAL ... LIMIT 1, one probe of the
// primary key per row, and closed by ON CONFLICT on the primary key, which always probes it.
const insertHistory = `WITH page AS (%[2]s),
prior AS (
	SELECT p.*, latest.cursor AS latest_cursor, latest.payload AS latest_payload, latest.pruned AS latest_pruned,
		latest.last_action AS latest_action, latest.first_seen_at AS latest_first_seen_at,
		latest.last_modified_at AS latest_modified_at, latest.deleted_at AS latest_deleted_at,
		latest.valid_from AS latest_valid_from
	FROM page p LEFT JOIN LATERAL (
		SELECT h.cursor, h.payload, h.pruned, h.last_action, h.first_seen_at, h.last_modified_at, h.deleted_at,
			h.valid_from
		FROM %[1]s h
		WHERE h.provider_config_key = $1 AND h.connection_id = $2 AND h.model = $3 AND h.variant = $4
			AND h.id = p.id AND h.valid_to IS NULL
		LIMIT 1) latest ON true),
added AS (
	INSERT INTO %[1]s (provider_config_key, connection_id, model, variant, id, cursor, payload, pruned,
		last_action, first_seen_at, last_modified_at, deleted_at, valid_from)
	SELECT $1, $2, $3, $4, id, cursor, COALESCE(payload, latest_payload), pruned,
		last_action, first_seen_at, last_modified_at, deleted_at, last_modified_at
	FROM prior
	WHERE latest_cursor IS NULL OR latest_modified_at < last_modified_at
		OR (latest_modified_at = last_modified_at AND latest_cursor <> cursor)
	ON CONFLICT DO NOTHING
	RETURNING id, valid_from)
INSERT INTO %[1]s AS closed (provider_config_key, connection_id, model, variant, id, cursor, payload, pruned,
	last_action, first_seen_at, last_modified_at, deleted_at, valid_from, valid_to)
SELECT $1, $2, $3, $4, prior.id, prior.latest_cursor, prior.latest_payload, prior.latest_pruned,
	prior.latest_action, prior.latest_first_seen_at, prior.latest_modified_at, prior.latest_deleted_at,
	prior.latest_valid_from, added.valid_from
FROM added JOIN prior ON prior.id = added.id
WHERE prior.latest_cursor IS NOT NULL
ON CONFLICT (provider_config_key, connection_id, model, variant, id, cursor) DO UPDATE SET valid_to = EXCLUDED.valid_to`

const deleteKeyHistory = `DELETE FROM %s
WHERE provider_config_key = $1 AND connection_id = $2 AND model = $3 AND variant = $4`

// selectHistory orders as selectRecords does, then by validity.
const selectHistory = `SELECT id, payload, pruned, last_action, first_seen_at, last_modified_at, deleted_at, cursor,
	valid_from, valid_to
FROM %s
WHERE provider_config_key = $1 AND connection_id = $2 AND model = $3 AND variant = $4
ORDER BY id COLLATE "C", valid_from, cursor COLLATE "C"`

// queueHistory queues the history statement of a page: source answers its rows, args are
// its parameters ($1 to $4 the key, then whatever source reads). It is the one place that
// writes the history, whatever feeds it.
func (s *Sink) queueHistory(batch *pgx.Batch, source string, args ...any) {
	batch.Queue(fmt.Sprintf(insertHistory, s.history, source), args...)
}

// createHistory creates the history table, which is missing, started with the rows the
// records table holds. It runs in the transaction that holds the DDL lock.
func (s *Sink) createHistory(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, fmt.Sprintf(createHistoryTable, s.history)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(seedHistory, s.history, s.records)); err != nil {
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
	var versions []sink.Version
	err := s.call(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, fmt.Sprintf(selectHistory, s.history),
			key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant)
		if err != nil {
			return err
		}
		versions, err = pgx.CollectRows(rows, scanVersion)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read history of %s from %s: %w", key, s.name, err)
	}
	return versions, nil
}

func scanVersion(row pgx.CollectableRow) (sink.Version, error) {
	var (
		v         sink.Version
		payload   []byte
		action    string
		deletedAt *time.Time
		validTo   *time.Time
	)
	err := row.Scan(&v.ID, &payload, &v.Pruned, &action, &v.FirstSeenAt, &v.LastModifiedAt, &deletedAt, &v.Cursor,
		&v.ValidFrom, &validTo)
	if err != nil {
		return sink.Version{}, err
	}
	v.Payload = payload
	v.Action = sink.Action(action)
	v.FirstSeenAt, v.LastModifiedAt, v.DeletedAt = utcTimes(v.FirstSeenAt, v.LastModifiedAt, deletedAt)
	v.ValidFrom = v.ValidFrom.UTC()
	if validTo != nil {
		utc := validTo.UTC()
		v.ValidTo = &utc
	}
	return v, nil
}
