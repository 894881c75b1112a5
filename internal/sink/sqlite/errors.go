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
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// classify marks err with sink.ErrUnavailable when the database stayed locked by another
// writer for longer than the busy timeout (worth retrying, nothing is misconfigured), and as
// sink.Refused when SQLite will say no until a person changes something, with what to
// change. nil stays nil.
func classify(err error) error {
	var sqliteErr *sqlite.Error
	if err == nil || !errors.As(err, &sqliteErr) {
		return err
	}
	switch sqliteErr.Code() & 0xff { // the primary result code of an extended one
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: %w", sink.ErrUnavailable, err)
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
		return sink.Refused(err, fixFile)
	case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_CONSTRAINT:
		if ofAnotherShape(sqliteErr.Error()) {
			return sink.Refused(err, fixShape)
		}
	}
	return err
}

// The fixes of refusals, for the person who reads the NangoSync's condition.
const (
	fixFile = "The operator cannot open or write the file of spec.sink.sqlite.path: " +
		"make sure its directory exists on a writable volume of the operator's pod"
	fixShape = "The table exists with another shape than the operator's (see the sink's documentation): " +
		"point spec.sink.sqlite.table at a new table, or drop this one"
)

// ofAnotherShape tells whether an SQLite error message says a table lacks a column the
// operator writes, has a column it does not fill, or lacks its primary key. SQLite has no
// result code for these, only SQLITE_ERROR or SQLITE_CONSTRAINT and a message.
func ofAnotherShape(message string) bool {
	for _, says := range []string{
		"has no column named",            // INSERT into a missing column
		"no such column",                 // SELECT or UPDATE of a missing column
		"does not match any PRIMARY KEY", // ON CONFLICT without the operator's key
		"NOT NULL constraint failed",     // a required column the operator does not fill
	} {
		if strings.Contains(message, says) {
			return true
		}
	}
	return false
}
