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

// Package layout versions the tables of the SQL sinks, so that a release can change them
// under data that is already there. Each table a sink makes has a kind (records, history,
// checkpoints, quarantine) and a layout version, recorded in the table Table beside the
// checkpoint table (one row per table name; the PostgreSQL sink keeps one per schema, the
// SQLite sink one per file). A kind's layout changes by numbered steps: step 2 brings a table
// of that kind from version 1 to 2, and so on. Version 1 is the layout of release 0.1.0.
//
// When a sink opens, a table it creates is recorded at its kind's current version; a table
// with no version recorded predates versions and is taken as version 1; a table below the
// current version gets the steps above its version, each applied and the new version recorded
// in one transaction; a table above it was written by a newer release and is refused (see
// Pending), since this one cannot know what changed.
package layout

import (
	"context"
	"fmt"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// Table is the table, beside the checkpoint table, that holds the layout version of every
// table of the sinks: table_name (the key) and version.
const Table = sink.LayoutTable

// Kind is what a table holds. Tables of one kind share their layout versions.
type Kind string

// The kinds of tables a SQL sink makes.
const (
	Records     Kind = "records"
	History     Kind = "history"
	Checkpoints Kind = "checkpoints"
	Quarantine  Kind = "quarantine"
)

// Unrecorded is the version of a table found without a row in Table: it predates versions,
// and is taken as version 1.
const Unrecorded = 0

// Step changes the layout of a table of one kind from version Version-1 to Version. Tx is the
// sink's transaction type.
type Step[Tx any] struct {
	// Version is the layout version the step brings the table to.
	Version int
	// Apply changes the table, given by its quoted name, inside tx. A table found without a
	// version may already have had the change made by a build from before versions, so
	// Apply must succeed on a table that has it (ADD COLUMN IF NOT EXISTS, or look first).
	Apply func(ctx context.Context, tx Tx, table string) error
}

// Steps are the steps of each kind, in order: those of a kind are numbered 2, 3, … A kind
// without steps is at version 1.
type Steps[Tx any] map[Kind][]Step[Tx]

// Current answers the layout version tables of kind have once created or migrated.
func (s Steps[Tx]) Current(kind Kind) int {
	return len(s[kind]) + 1
}

// Check tells whether the steps of each kind are numbered 2, 3, … in order, which Current
// and Pending rely on: for the sinks' tests.
func (s Steps[Tx]) Check() error {
	for kind, steps := range s {
		for i, step := range steps {
			if step.Version != i+2 {
				return fmt.Errorf("step %d of the %s layout brings version %d, want %d", i+1, kind, step.Version, i+2)
			}
			if step.Apply == nil {
				return fmt.Errorf("step to version %d of the %s layout does nothing", step.Version, kind)
			}
		}
	}
	return nil
}

// Pending answers the steps that bring table, of kind, from version stored (Unrecorded when
// no version is recorded) to the current version: none when it is there. A version newer
// than the current one is refused (sink.RefusedError): a later release wrote the table, and
// this one cannot tell what it changed.
func (s Steps[Tx]) Pending(kind Kind, table string, stored int) ([]Step[Tx], error) {
	if stored == Unrecorded {
		stored = 1
	}
	if stored < 1 {
		return nil, fmt.Errorf("table %s has layout version %d in %s: versions start at 1", table, stored, Table)
	}
	current := s.Current(kind)
	if stored > current {
		return nil, Newer(table, stored, current)
	}
	return s[kind][stored-1:], nil
}

// Newer is the refusal of a table whose layout version, stored, is newer than the version
// current that this release knows.
func Newer(table string, stored, current int) error {
	return sink.Refused(
		fmt.Errorf("table %s has layout version %d (%s), newer than version %d, the newest this operator knows",
			table, stored, Table, current),
		fmt.Sprintf("A newer release of nango-operator changed table %s: upgrade the operator to that release "+
			"(or a later one); it cannot be downgraded below the layout of its tables", table))
}
