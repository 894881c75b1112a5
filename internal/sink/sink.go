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

// Package sink defines where a NangoSync writes its records. Each kind of sink lives in a
// package of its own (postgres, sqlite) behind the one small Sink interface, so the
// reconciler knows nothing of SQL.
//
// The two SQL drivers read and write in the same shape (WritePage wraps writePage, one
// transaction, the same statements in two dialects). That likeness is kept on purpose
// rather than shared through a helper: what differs is every statement and how each
// database binds it, and sinktest holds both drivers to one behaviour.
//
// Every sink keeps the rules that make a sync correct:
//   - a page of records and the checkpoint (the cursor after the page) are written in one
//     transaction, so a crash can lose neither without the other;
//   - writes are idempotent upserts keyed by (integration, connection, model, variant,
//     record id), so several NangoSyncs may share one table and a page written twice
//     changes nothing;
//   - an older version of a record never overwrites a newer one (last_modified_at only
//     grows), and a pruned record (no payload) never blanks the fields already stored;
//   - deleted records keep their row with deleted_at set, unless the sink deletes hard;
//   - one record a store cannot hold never stops a sync (see below).
//
// Nango stores whatever the provider sent, and PostgreSQL refuses some of it. Every sink
// treats such records alike (PreparePage), so that moving from one sink to another
// changes no data:
//   - in a payload, each byte that is not part of UTF-8 becomes U+FFFD (as Go decodes it);
//   - a payload's \u0000 escapes, and \u escapes of a lone surrogate (half of a UTF-16
//     pair), become \ufffd (U+FFFD), in keys and values alike;
//   - a record whose id cannot be stored (longer than MaxIDBytes, holding a NUL, or not
//     UTF-8), or whose payload holds a number beyond PostgreSQL's numeric (more than
//     131072 digits before the decimal point or 16383 after it), is quarantined: it goes to
//     the table QuarantineTable, with its id as bytes, its fields and the reason, while the
//     rest of its page is stored and the checkpoint moves on. Replacing characters of an id
//     could merge two records, and another number would change the record's meaning, so
//     neither is normalised. DeleteRows removes a data set's quarantined records with its
//     rows.
//
// A page still fails as a whole when a record is one Nango never sends: no id, an unknown
// action, or a payload that is not JSON.
//
// A data set in a table has one owner: the NangoSync that first wrote it, recorded in its
// checkpoint (Owner). A page of another owner is refused with a *ConflictError, writing
// nothing; ResetCheckpoint, DeleteCheckpoint and DeleteRows refuse the same way, touching
// nothing. Until a data set has an owner (a checkpoint from before owners were recorded,
// or none), the first page written with an owner claims it; DeleteRows and
// DeleteCheckpoint release it, and ResetCheckpoint (a resync) keeps it. Rows without a
// checkpoint are no one's, and DeleteRows leaves them.
package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Key identifies one NangoSync's data set: the rows it writes and its checkpoint.
type Key struct {
	// ProviderConfigKey is the Nango integration id.
	ProviderConfigKey string
	// ConnectionID is the Nango connection id.
	ConnectionID string
	// Model is the Nango model name.
	Model string
	// Variant is the model's variant, "base" for the model itself.
	Variant string
}

// String renders the key for logs and errors: integration/connection/model/variant.
func (k Key) String() string {
	return k.ProviderConfigKey + "/" + k.ConnectionID + "/" + k.Model + "/" + k.Variant
}

// Action is what Nango reports last happened to a record.
type Action string

// The actions Nango reports in _nango_metadata.last_action.
const (
	ActionAdded   Action = "ADDED"
	ActionUpdated Action = "UPDATED"
	ActionDeleted Action = "DELETED"
)

// Record is one record as a sink stores it.
type Record struct {
	// ID is the record's id, unique within its Key.
	ID string
	// Payload is the record's own fields as a JSON object, exactly as Nango sent them
	// (without _nango_metadata). Empty for a pruned record.
	Payload json.RawMessage
	// Action is Nango's last_action.
	Action Action
	// FirstSeenAt and LastModifiedAt are Nango's first_seen_at and last_modified_at.
	FirstSeenAt    time.Time
	LastModifiedAt time.Time
	// DeletedAt is set when the record was deleted at the source.
	DeletedAt *time.Time
	// Pruned is true when Nango pruned the record's payload: its stored fields stay.
	Pruned bool
	// Cursor is the record's own Nango cursor.
	Cursor string

	// prepared is set by Prepare: the record is validated and normalised as PreparePage
	// would, and unstorable says why it cannot be stored ("" when it can).
	prepared   bool
	unstorable string
}

// Page is a batch of records written in one transaction, with the checkpoint that follows it.
type Page struct {
	Records []Record
	// Checkpoint is the Nango cursor after the last record of the page: where the next
	// read starts. It is stored in the same transaction as the records.
	Checkpoint string
	// Owner writes the page. It claims a data set that has no owner yet; a data set of
	// another owner refuses the page with a *ConflictError. The zero Owner writes only a
	// data set that has no owner, and claims none.
	Owner Owner
}

// Owner is who owns a data set in a table: the NangoSync that first wrote it.
type Owner struct {
	// UID is the NangoSync's metadata.uid, which tells the owner: a NangoSync deleted and
	// created again under the same name is another.
	UID string
	// Name is the NangoSync's namespace/name, for people.
	Name string
}

// String names the owner for people: namespace/name (uid UID).
func (o Owner) String() string {
	if o.UID == "" {
		return "no one"
	}
	return fmt.Sprintf("%s (uid %s)", o.Name, o.UID)
}

// ConflictError says that a data set in a table belongs to another owner than the one
// that tried to write or delete it. Nothing was written or deleted.
type ConflictError struct {
	// Key is the data set.
	Key Key
	// Owner owns it.
	Owner Owner
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("data set %s in this table belongs to NangoSync %s", e.Key, e.Owner)
}

// Claimable answers nil when claimant may write or delete the data set key that owner
// holds (no one, or claimant itself), and a *ConflictError naming owner otherwise.
func Claimable(key Key, owner, claimant Owner) error {
	if owner.UID == "" || owner.UID == claimant.UID {
		return nil
	}
	return &ConflictError{Key: key, Owner: owner}
}

// WriteResult counts what a write did: the records stored, by the action Nango reported,
// and the records quarantined instead.
type WriteResult struct {
	Added, Updated, Deleted int64
	// Quarantined counts the records that could not be stored and went to the quarantine
	// (see Quarantined). They are not counted by action, and not in Checkpoint.Written:
	// the quarantine itself keeps them.
	Quarantined int64
}

// Add answers the sum of two results.
func (w WriteResult) Add(o WriteResult) WriteResult {
	return WriteResult{Added: w.Added + o.Added, Updated: w.Updated + o.Updated, Deleted: w.Deleted + o.Deleted,
		Quarantined: w.Quarantined + o.Quarantined}
}

// CheckpointTable is the table, beside the records table, where every sink keeps the
// checkpoint and the owner of each data set, keyed by records table and data set.
const CheckpointTable = "nango_sync_checkpoints"

// QuarantineTable is the table, beside the checkpoint table, where every sink keeps the
// records it cannot store, keyed by records table, data set and id.
const QuarantineTable = "nango_sync_quarantine"

// LayoutTable is the table, beside the checkpoint table, where the SQL sinks record the
// layout version of each of their tables (see package layout).
const LayoutTable = "nango_sync_layout"

// Quarantined is a record a sink cannot store, kept in the quarantine table instead of the
// records table: the newest version of each such id, with every field as received (the
// payload normalised as for any record), and why it was refused. The rest of its page is
// stored, and the checkpoint moves past it: one such record does not stop a sync.
type Quarantined struct {
	Record
	// Reason says why the record was not stored, for people.
	Reason string
}

// maxQuotedID bounds the id's bytes that QuotedID shows.
const maxQuotedID = 256

// QuotedID is the id as people can read it, in Go's quoted form (a NUL as \x00), cut
// after maxQuotedID bytes: quarantine tables keep it beside the id's exact bytes.
func (q Quarantined) QuotedID() string {
	if len(q.ID) <= maxQuotedID {
		return strconv.Quote(q.ID)
	}
	return strconv.Quote(q.ID[:maxQuotedID]) + "…"
}

// Checkpoint is where the next read of a data set starts, and what was written to get
// there. Both are stored in the transaction of each page, so after a crash they still
// agree with the rows: counts kept anywhere else would miss or repeat the last page.
type Checkpoint struct {
	// Cursor is the Nango cursor after the last committed page, "" when there is none.
	Cursor string
	// Written adds up the results of every page written with a checkpoint since the data
	// set's first page, or since its checkpoint was last deleted; Quarantined is always 0.
	Written WriteResult
	// Owner owns the data set; the zero Owner while no one does.
	Owner Owner
}

// Version is one version of a record in a sink's history: the record as stored, valid
// from ValidFrom (its LastModifiedAt) until ValidTo, when the next version was modified;
// ValidTo is nil for the current version.
type Version struct {
	Record
	ValidFrom time.Time
	ValidTo   *time.Time
}

// Sink stores records and checkpoints. Implementations are safe for concurrent use by
// several NangoSyncs.
type Sink interface {
	// Checkpoint answers the checkpoint stored with the last committed page of key, with
	// its owner, or the zero Checkpoint when there is none. It claims nothing: callers
	// check the owner with Claimable.
	Checkpoint(ctx context.Context, key Key) (Checkpoint, error)

	// WritePage upserts the page's records and stores its checkpoint, in one transaction:
	// the cursor becomes page.Checkpoint and the page's result is added to the stored
	// counts. An empty page.Checkpoint leaves the stored cursor and counts as they are.
	// page.Owner claims the data set if no one owns it; if another does, the page is
	// refused with a *ConflictError and nothing is written. An error does not prove
	// that nothing was written (a commit can succeed while its answer is lost): either
	// the whole page or none of it is stored, and Checkpoint tells which.
	WritePage(ctx context.Context, key Key, page Page) (WriteResult, error)

	// DeleteCheckpoint forgets the checkpoint of key, its counts and its owner, so that
	// the next read starts over and anyone may claim the data set. The rows stay. When
	// another than owner owns the data set, it fails with a *ConflictError and deletes
	// nothing.
	DeleteCheckpoint(ctx context.Context, key Key, owner Owner) error

	// ResetCheckpoint forgets the cursor and counts of key but keeps its owner, so that
	// the next read starts over while the data set stays owner's: a resync. When no one
	// owns the data set, owner claims it (the zero Owner claims nothing). The rows stay.
	// When another than owner owns the data set, it fails with a *ConflictError and
	// changes nothing.
	ResetCheckpoint(ctx context.Context, key Key, owner Owner) error

	// DeleteRows removes every row of key, its quarantined records and its checkpoint.
	// When another than owner owns the data set, it fails with a *ConflictError and
	// deletes nothing. A data set without a checkpoint is no one's (its owner left it with
	// DeleteCheckpoint, or it was never written): DeleteRows deletes nothing of it and
	// answers nil, since no owner can be told from its rows.
	DeleteRows(ctx context.Context, key Key, owner Owner) error

	// Close releases the sink's connections.
	Close() error
}
