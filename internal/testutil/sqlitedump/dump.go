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

// Package sqlitedump renders a whole SQLite database as text, as the sqlite3 shell's .dump
// does: every schema object's SQL, then every row of every table, each value as text (a
// BLOB both as hex and as its bytes). Tests read it to prove what a database does not hold
// anywhere.
package sqlitedump

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dump answers the database file at path as text.
func Dump(ctx context.Context, path string) (string, error) {
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer func() { _ = db.Close() }()
	var out strings.Builder
	tables, err := schema(ctx, db, &out)
	if err != nil {
		return "", err
	}
	for _, table := range tables {
		if err := dumpRows(ctx, db, table, &out); err != nil {
			return "", err
		}
	}
	return out.String(), nil
}

// schema writes the SQL of every object and answers the tables' names.
func schema(ctx context.Context, db *sql.DB, out *strings.Builder) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("read sqlite_master: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var tables []string
	for rows.Next() {
		var kind, name, text string
		if err := rows.Scan(&kind, &name, &text); err != nil {
			return nil, fmt.Errorf("read sqlite_master: %w", err)
		}
		fmt.Fprintf(out, "%s;\n", text)
		if kind == "table" {
			tables = append(tables, name)
		}
	}
	return tables, rows.Err()
}

// dumpRows writes every row of table, one line each.
func dumpRows(ctx context.Context, db *sql.DB, table string, out *strings.Builder) error {
	rows, err := db.QueryContext(ctx, `SELECT * FROM "`+strings.ReplaceAll(table, `"`, `""`)+`"`)
	if err != nil {
		return fmt.Errorf("read table %s: %w", table, err)
	}
	defer func() { _ = rows.Close() }()
	columns, err := rows.Columns()
	if err != nil {
		return err
	}
	values := make([]any, len(columns))
	pointers := make([]any, len(columns))
	for i := range values {
		pointers[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(pointers...); err != nil {
			return fmt.Errorf("read table %s: %w", table, err)
		}
		fmt.Fprintf(out, "INSERT INTO %q VALUES(", table)
		for i, v := range values {
			if i > 0 {
				out.WriteString(",")
			}
			if b, ok := v.([]byte); ok {
				fmt.Fprintf(out, "X'%s' /* %s */", hex.EncodeToString(b), b)
			} else {
				fmt.Fprintf(out, "%v", v)
			}
		}
		out.WriteString(");\n")
	}
	return rows.Err()
}
