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

// Package postgres is the PostgreSQL sink: records go to a table of the user's choosing,
// checkpoints to the shared table nango_sync_checkpoints in the same schema, and the
// records it cannot store (see package sink) to the shared table nango_sync_quarantine.
// Several NangoSyncs may share one records table; the key columns keep their rows apart.
// The layout version of each table is recorded in nango_sync_layout, and tables of an older
// layout are migrated when a sink opens them (see package layout). A DBA who creates the
// tables for a role without the CREATE privilege creates all four, and records their
// versions.
//
// A page is written in one transaction: BEGIN; one batch holding the checkpoint upsert (which
// claims the data set or refuses the page), at most a DELETE for hard deletes and one
// upsert into the quarantine per record that cannot be stored; the page's records in
// PostgreSQL's binary COPY format, either straight into the table (the direct path, while
// none of them is stored yet: an initial sync) or into a temporary staging table merged
// into the table by one INSERT ... SELECT ... ON CONFLICT DO UPDATE; COMMIT. Save for the
// rare quarantined records, the number of statements does not grow with the page. See
// writeUpserts for why the direct path is the merge whenever it succeeds.
//
// Every call is bounded (Timeouts): connecting, and each call as a whole, so that a server
// that stops answering is reported unavailable (sink.ErrUnavailable) within a minute
// rather than holding the caller; the server is told to give up too (statement_timeout,
// lock_timeout, idle_in_transaction_session_timeout, set in each write transaction).
//
// The records table, created when missing:
//
//	provider_config_key, connection_id, model, variant, id  text, the primary key
//	payload           jsonb  the record's fields; NULL while only a pruned version was seen
//	pruned            boolean  Nango had pruned the record when it was last written
//	last_action       text   ADDED, UPDATED or DELETED
//	first_seen_at, last_modified_at  timestamptz  Nango's metadata
//	deleted_at        timestamptz  set while the record is deleted at the source
//	cursor            text   the record's own Nango cursor
//	written_at        timestamptz  when this row last changed
//
// Merge rules: a version older than the stored one (by last_modified_at) changes nothing;
// a newer or equal one replaces every column but payload, which it replaces only when it
// carries one (a pruned record keeps the stored fields); a version equal in every column
// to the stored row is not rewritten, so replaying a page creates no dead tuples and keeps
// written_at.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// CheckpointTable is the table, in Options.Schema, that holds every sync's checkpoint.
const CheckpointTable = sink.CheckpointTable

// DefaultSchema is the schema used when Options.Schema is empty.
const DefaultSchema = "public"

// maxIdentifierBytes is the longest name PostgreSQL keeps: it cuts longer ones silently.
const maxIdentifierBytes = 63

// applicationName tells a DBA looking at pg_stat_activity whose connections these are,
// unless the DSN names an application itself.
const applicationName = "nango-operator"

// Options says where a Sink writes and how it deletes.
type Options struct {
	// Schema holds the records table and the checkpoint table; DefaultSchema when empty.
	// It is created when missing.
	Schema string
	// Table is the records table, created when missing. Required.
	Table string
	// HardDeletes removes the rows of deleted records instead of setting their deleted_at.
	HardDeletes bool
	// Timeouts bound every call to the server; the defaults when zero.
	Timeouts Timeouts
	// History keeps every version written in the table <Table>_history (see History),
	// created when missing and started with the rows Table holds.
	History bool
}

// Sink writes records to one PostgreSQL table. It is safe for concurrent use; share one
// per DSN and table.
type Sink struct {
	pool        *pgxpool.Pool
	hardDeletes bool
	timeouts    Timeouts

	// name is schema.table as people read it, for errors.
	name string
	// records, checkpoints, quarantine and layout are the quoted, schema-qualified table
	// names for SQL.
	records     string
	checkpoints string
	quarantine  string
	layout      string
	// history is the quoted history table, "" when the sink keeps no history.
	history string
	// tableName is the records table's name as the checkpoint table's key holds it.
	tableName string
	// stage is true when the role may create temporary tables: the merge path then goes
	// through the staging table (see writeUpserts).
	stage bool
	// direct is true when the records table has the primary key the merge's ON CONFLICT
	// names, which the direct path needs (see writeUpserts).
	direct bool

	mu sync.Mutex
	// recordsStored holds the data sets whose pages met a stored record on the direct
	// path, and so take the merge path (see writeUpserts).
	recordsStored map[sink.Key]struct{}
}

var _ sink.Sink = (*Sink)(nil)

// Open connects to the database of dsn and creates the schema, the records table and the
// checkpoint table when they are missing. dsn is a postgres:// URL that may set only the
// parameters allowedParameters lists, and nothing is taken from the operator's files or
// environment (see dsn.go). Errors never contain the DSN, which may hold a password.
func Open(ctx context.Context, dsn string, opts Options) (*Sink, error) {
	if opts.Table == "" {
		return nil, errors.New("open PostgreSQL sink: no table given")
	}
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if opts.History && len(opts.Table+HistorySuffix) > maxIdentifierBytes {
		return nil, fmt.Errorf("open PostgreSQL sink: table %s is too long for its history table %s%s (at most %d bytes)",
			opts.Table, opts.Table, HistorySuffix, maxIdentifierBytes)
	}
	s := &Sink{
		hardDeletes: opts.HardDeletes,
		timeouts:    opts.Timeouts.withDefaults(),
		name:        opts.Schema + "." + opts.Table,
		records:     pgx.Identifier{opts.Schema, opts.Table}.Sanitize(),
		checkpoints: pgx.Identifier{opts.Schema, CheckpointTable}.Sanitize(),
		quarantine:  pgx.Identifier{opts.Schema, sink.QuarantineTable}.Sanitize(),
		layout:      pgx.Identifier{opts.Schema, sink.LayoutTable}.Sanitize(),
		tableName:   opts.Table,

		recordsStored: map[sink.Key]struct{}{},
	}
	if opts.History {
		s.history = pgx.Identifier{opts.Schema, opts.Table + HistorySuffix}.Sanitize()
	}
	config, err := poolConfig(dsn, s.timeouts)
	if err != nil {
		return nil, sink.Refused(fmt.Errorf("open PostgreSQL sink: %w", err), fixConnectionString)
	}
	s.pool, err = pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL sink %s: %w", s.name, classify(err))
	}
	if err := s.call(ctx, func(ctx context.Context) error { return s.createTables(ctx, opts.Schema) }); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open PostgreSQL sink %s: %w", s.name, err)
	}
	if err := s.call(ctx, s.choosePaths); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open PostgreSQL sink %s: %w", s.name, err)
	}
	return s, nil
}

// probeConflictKey plans, without running it, an insert whose ON CONFLICT names the
// records table's key: PostgreSQL refuses to plan it unless a unique index on exactly
// those columns exists.
const probeConflictKey = `EXPLAIN INSERT INTO %s (provider_config_key, connection_id, model, variant, id, last_action,
	first_seen_at, last_modified_at, cursor) VALUES ('', '', '', '', '', '', now(), now(), '')
ON CONFLICT (provider_config_key, connection_id, model, variant, id) DO NOTHING`

// choosePaths finds out which write paths the database allows: the staging table needs the
// TEMPORARY privilege, the direct path a records table whose key is the one the merge
// names (a table of another shape is refused by the merge, as it should be, rather than
// filled by the direct path).
func (s *Sink) choosePaths(ctx context.Context) error {
	err := s.pool.QueryRow(ctx, "SELECT has_database_privilege(current_database(), 'TEMPORARY')").Scan(&s.stage)
	if err != nil {
		return fmt.Errorf("look for the TEMPORARY privilege: %w", err)
	}
	_, err = s.pool.Exec(ctx, fmt.Sprintf(probeConflictKey, s.records))
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		s.direct = true
	case errors.As(err, &pgErr):
		s.direct = false // the table is not as this sink makes it: the merge says why
	default:
		return fmt.Errorf("look for the key of %s: %w", s.name, err)
	}
	return nil
}

// Close closes every connection, waiting for those in use to be released.
func (s *Sink) Close() error {
	s.pool.Close()
	return nil
}

// String names the sink's table, schema.table.
func (s *Sink) String() string {
	return s.name
}
