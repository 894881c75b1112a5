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
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// classify marks err with sink.ErrUnavailable when it says PostgreSQL could not be reached
// or refused work for now, so that callers retry, and as sink.Refused when PostgreSQL will
// say no until a person changes something, with what to change. nil stays nil.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", sink.ErrUnavailable, err)
	}
	if _, refused := sink.Refusal(err); refused {
		return err // with a fix of its own already
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if fix := refusalFix(pgErr.Code); fix != "" {
			return sink.Refused(err, fix)
		}
	}
	return err
}

// The fixes of refusals, for the person who reads the NangoSync's condition.
const (
	fixCredentials = "Check the user and password of the connection URL in the Secret named by spec.sink.postgres.urlSecretRef"
	fixDatabase    = "Create the database, or correct its name in the connection URL in the Secret named by spec.sink.postgres.urlSecretRef"
	fixPrivilege   = "Grant the connection URL's role SELECT, INSERT, UPDATE and DELETE on the records table, on " +
		CheckpointTable + " and on " + sink.QuarantineTable + ", SELECT, INSERT and UPDATE on " + sink.LayoutTable +
		", and CREATE on the schema while those tables do not exist yet (the operator creates them)"
	fixShape = "The table exists with another shape than the operator's (see the sink's documentation): " +
		"point spec.sink.postgres.table at a new table, or drop this one"
	fixConnectionString = "Correct the connection URL in the Secret named by spec.sink.postgres.urlSecretRef " +
		"(postgres://user:password@host:port/database?sslmode=...)"
)

// fixOwnerColumns is the fix when the operator's role may not add the owner columns to
// the checkpoint table (whose quoted, schema-qualified name is table): someone who owns the
// table adds them.
func fixOwnerColumns(table string) string {
	return "The checkpoint table predates owners, and the connection URL's role does not own it: have its owner run " +
		strings.Join(strings.Fields(fmt.Sprintf(addOwnerColumns, table)), " ")
}

// fixLayoutTable is the fix when the operator's role may not create the layout table (whose
// quoted, schema-qualified name is table) beside tables a DBA created before layout versions
// were recorded: someone who may creates it.
func fixLayoutTable(table string) string {
	return "The operator records the layout version of its tables in " + sink.LayoutTable +
		", and the connection URL's role may not create it: have a role with CREATE on the schema run " +
		strings.Join(strings.Fields(fmt.Sprintf(createLayoutTable, table)), " ") +
		" and grant the connection URL's role SELECT, INSERT and UPDATE on it"
}

// refusalFix is what to change when a PostgreSQL error code means "no" until a person acts,
// or "" when it does not.
func refusalFix(code string) string {
	switch code {
	case "28P01", // invalid_password
		"28000": // invalid_authorization_specification: no such role, or pg_hba.conf refuses it
		return fixCredentials
	case "3D000": // invalid_catalog_name: no such database
		return fixDatabase
	case "42501": // insufficient_privilege
		return fixPrivilege
	case "42703", // undefined_column
		"42804", // datatype_mismatch
		"42P10", // invalid_column_reference: no unique constraint matching ON CONFLICT
		"42809", // wrong_object_type: a view, for example
		"23502": // not_null_violation: every column the operator writes has a value
		return fixShape
	}
	return ""
}

func isUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up; nothing is wrong with the server
	}
	// A server error decides on its own: a ConnectError can hold one that retrying will
	// not fix (wrong password, no such database).
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableCode(pgErr.Code)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}

// unavailableCode tells whether a PostgreSQL error code means "not now" rather than "no".
func unavailableCode(code string) bool {
	switch code {
	case "57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now: starting up, shutting down, in recovery
		"53300": // too_many_connections
		return true
	}
	return len(code) == 5 && code[:2] == "08" // connection_exception and its subclasses
}
