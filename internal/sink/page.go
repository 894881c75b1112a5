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

package sink

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tidwall/gjson"
)

// PreparedPage is a page as a store keeps it: the records to store, those to quarantine,
// and what writing them counts.
type PreparedPage struct {
	// Records are stored, one version per id.
	Records []Record
	// Quarantined cannot be stored (see Quarantined), one version per id.
	Quarantined []Quarantined
	// Result counts Records by action, and Quarantined.
	Result WriteResult
}

// PreparePage validates a page's key and records and makes them what a store keeps, the
// same for every sink: times in UTC to the microsecond (Nango's precision), no payload for
// a pruned record, deleted_at for a DELETED one, payloads normalised (see the package
// documentation), one version per id (the newest, merged as if the versions were written
// one after the other), and the records whose id cannot be stored set apart for the
// quarantine. It fails, for the whole page, on a record Nango would never send: no id, an
// unknown action, a payload that is not JSON.
func PreparePage(key Key, records []Record) (PreparedPage, error) {
	if err := key.Validate(); err != nil {
		return PreparedPage{}, err
	}
	kept := make([]Record, 0, len(records))
	index := make(map[string]int, len(records))
	for _, r := range records {
		if !r.prepared {
			if err := validateRecord(r); err != nil {
				return PreparedPage{}, err
			}
			r = normalizeRecord(r)
		}
		i, seen := index[r.ID]
		if !seen {
			index[r.ID] = len(kept)
			kept = append(kept, r)
			continue
		}
		if r.LastModifiedAt.Before(kept[i].LastModifiedAt) {
			continue // an older version seen later in the page changes nothing
		}
		if r.Payload == nil && kept[i].Payload != nil {
			r.Payload = kept[i].Payload // as the store would: a version without fields keeps them
			r.prepared = false          // whether it can be stored depends on the payload: look again below
		}
		kept[i] = r
	}
	page := PreparedPage{Records: kept}
	for i, r := range kept {
		reason := r.unstorable
		if !r.prepared {
			reason = unstorable(r)
		}
		if reason != "" {
			if page.Quarantined == nil { // rare: copy only then
				page.Records = slices.Clone(kept[:i])
			}
			page.Quarantined = append(page.Quarantined, Quarantined{Record: r, Reason: reason})
		} else if page.Quarantined != nil {
			page.Records = append(page.Records, r)
		}
	}
	page.Result = countByAction(page.Records)
	page.Result.Quarantined = int64(len(page.Quarantined))
	return page, nil
}

// Prepare does ahead of time, in place, the work of PreparePage that concerns each record
// alone (validation, normalisation, whether it can be stored), so that PreparePage of
// these records later only merges their versions: a caller that reads pages ahead of
// writing them (the reconciler) does it while the previous page is written, off the
// writer's path. It stops at the first record PreparePage would refuse, leaving it and
// those after it as they were, for PreparePage to refuse with its own error.
func Prepare(records []Record) {
	for i := range records {
		if records[i].prepared {
			continue
		}
		if validateRecord(records[i]) != nil {
			return
		}
		r := normalizeRecord(records[i])
		r.unstorable, r.prepared = unstorable(r), true
		records[i] = r
	}
}

func validateRecord(r Record) error {
	if r.ID == "" {
		return errors.New("a record has no id")
	}
	switch r.Action {
	case ActionAdded, ActionUpdated, ActionDeleted:
	default:
		return fmt.Errorf("record %q has unknown action %q", r.ID, r.Action)
	}
	// gjson's validator is several times faster than encoding/json's, and this runs on
	// every record of every write. It recurses on nesting; the operator's payloads come
	// from answers the Nango client checked for depth.
	if len(r.Payload) > 0 && !gjson.ValidBytes(r.Payload) {
		return fmt.Errorf("record %q has a payload that is not valid JSON", r.ID)
	}
	return nil
}

func normalizeRecord(r Record) Record {
	r.FirstSeenAt = storedTime(r.FirstSeenAt)
	r.LastModifiedAt = storedTime(r.LastModifiedAt)
	switch {
	case r.DeletedAt != nil:
		deletedAt := storedTime(*r.DeletedAt)
		r.DeletedAt = &deletedAt
	case r.Action == ActionDeleted:
		// Nango always sets deleted_at with DELETED; should it not, the deletion is as
		// old as the version that reports it.
		deletedAt := r.LastModifiedAt
		r.DeletedAt = &deletedAt
	}
	if r.Pruned || len(r.Payload) == 0 {
		r.Payload = nil // no fields: the stored ones stay
	} else {
		r.Payload = normalizePayload(r.Payload)
	}
	return r
}

// storedTime is t as the store keeps it: UTC, truncated to the microsecond.
func storedTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// SplitDeleted separates the records deleted at the source from the others, for a sink
// that deletes hard.
func SplitDeleted(records []Record) (kept, deleted []Record) {
	for _, r := range records {
		if r.Action == ActionDeleted {
			deleted = append(deleted, r)
		} else {
			kept = append(kept, r)
		}
	}
	return kept, deleted
}

func countByAction(records []Record) WriteResult {
	var result WriteResult
	for _, r := range records {
		switch r.Action {
		case ActionAdded:
			result.Added++
		case ActionUpdated:
			result.Updated++
		case ActionDeleted:
			result.Deleted++
		}
	}
	return result
}

// Validate fails unless every field of the key is set.
func (k Key) Validate() error {
	if k.ProviderConfigKey == "" || k.ConnectionID == "" || k.Model == "" || k.Variant == "" {
		return fmt.Errorf("incomplete key %q: integration, connection, model and variant are all required", k.String())
	}
	return nil
}
