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

// Package sqlite is the SQLite sink (modernc.org/sqlite, no cgo): the embedded default for
// small installations and the demo. It keeps the schema and the merge rules of the
// PostgreSQL sink (see package postgres), with these differences of storage:
//
//   - payload is TEXT holding the JSON as Nango sent it (not normalised as jsonb), but for
//     what package sink replaces in every sink, so that it holds what PostgreSQL would;
//   - times are TEXT in UTC with exactly six decimals, 2006-01-02T15:04:05.000000Z, so
//     that comparing them as strings compares them as times, and people can read them;
//   - pruned is INTEGER 0 or 1.
//
// The database runs in WAL mode, so reads never wait for a write, with synchronous=FULL:
// a page committed is on disk before the controller moves status.cursor past it. SQLite
// has one writer at a time; a Sink holds one connection for writes, so its own writes
// queue in Go, and sinks on the same file wait for each other up to Options.BusyTimeout.
// Reads (checkpoints, rows) go through read-only connections of their own, so that a sync
// starting does not wait behind the writes of the others to learn where it stands.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/nango-operator/nango-operator/internal/sink"
)

// CheckpointTable is the table, in the same database file, that holds every sync's checkpoint.
const CheckpointTable = sink.CheckpointTable

// DefaultBusyTimeout is how long a write waits for another connection's write to finish
// before failing with "database is locked", unless Options say otherwise.
const DefaultBusyTimeout = 30 * time.Second

// Options says where a Sink writes and how it deletes.
type Options struct {
	// Table is the records table, created when missing. Required.
	Table string
	// HardDeletes removes the rows of deleted records instead of setting their deleted_at.
	HardDeletes bool
	// History keeps every version written in the table <Table>_history (see History),
	// created when missing and started with the rows Table holds.
	History bool
	// BusyTimeout is how long a write waits while another connection (another Sink on the
	// file, another process) writes; DefaultBusyTimeout when zero. A write that waited
	// longer fails with an error for which sink.IsUnavailable is true.
	BusyTimeout time.Duration
}

// Sink writes records to one table of an SQLite database file. It is safe for concurrent
// use; share one per file and table.
type Sink struct {
	db          *sql.DB // the one writing connection
	reader      *sql.DB // read-only connections
	hardDeletes bool

	// name is path:table, for errors.
	name string
	// records, checkpoints, quarantine and layout are the quoted table names for SQL.
	records     string
	checkpoints string
	quarantine  string
	layout      string
	// history is the quoted history table, "" when the sink keeps no history.
	history string
	// tableName is the records table's name as the checkpoint table's key holds it.
	tableName string
}

var _ sink.Sink = (*Sink)(nil)

// Open opens (creating when missing) the database file at path and the records and
// checkpoint tables in it.
func Open(ctx context.Context, path string, opts Options) (*Sink, error) {
	if opts.Table == "" {
		return nil, errors.New("open SQLite sink: no table given")
	}
	// The driver takes parameters after a '?', so a path cannot hold one.
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open SQLite sink: invalid database path %q", path)
	}
	s := &Sink{
		hardDeletes: opts.HardDeletes,
		name:        path + ":" + opts.Table,
		records:     quoteIdentifier(opts.Table),
		checkpoints: quoteIdentifier(CheckpointTable),
		quarantine:  quoteIdentifier(sink.QuarantineTable),
		layout:      quoteIdentifier(sink.LayoutTable),
		tableName:   opts.Table,
	}
	if opts.History {
		s.history = quoteIdentifier(opts.Table + HistorySuffix)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	db, err := sql.Open("sqlite", dataSourceName(path, opts.BusyTimeout, false))
	if err != nil {
		return nil, fmt.Errorf("open SQLite sink %s: %w", s.name, err)
	}
	// One connection: SQLite writes one transaction at a time anyway, and queueing in
	// database/sql (which honours contexts) beats spinning in SQLite's busy handler.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s.db = db
	if err := s.createTables(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open SQLite sink %s: %w", s.name, classify(err))
	}
	// Opened once the file is in WAL mode, which the writer set.
	if s.reader, err = sql.Open("sqlite", dataSourceName(path, opts.BusyTimeout, true)); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open SQLite sink %s for reading: %w", s.name, err)
	}
	s.reader.SetMaxOpenConns(readConnections)
	return s, nil
}

// readConnections bounds the read-only connections of a Sink.
const readConnections = 4

// dataSourceName is path with the settings every connection needs. _txlock=immediate makes
// BEGIN take the write lock at once: a transaction that would take it only at its first
// write could find it taken and fail without waiting for busy_timeout. Read-only
// connections only read: they leave the journal mode to the writer.
func dataSourceName(path string, busyTimeout time.Duration, readOnly bool) string {
	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", max(busyTimeout.Milliseconds(), 1)))
	if readOnly {
		params.Add("_pragma", "query_only(1)")
		return path + "?" + params.Encode()
	}
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "synchronous(FULL)")
	params.Set("_txlock", "immediate")
	return path + "?" + params.Encode()
}

// quoteIdentifier quotes name for SQLite, whatever it holds.
func quoteIdentifier(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Close closes the database connections.
func (s *Sink) Close() error {
	return errors.Join(s.reader.Close(), s.db.Close())
}

// String names the sink: path:table.
func (s *Sink) String() string {
	return s.name
}
