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

package controller

import (
	"encoding/json"
	"fmt"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/sink"
)

// metadataField is the key of Nango's own metadata in a record; the sink keeps it in
// columns of their own, not in the payload.
const metadataField = "_nango_metadata"

// sinkRecords converts a page of Nango records for the sink.
func sinkRecords(records []nango.Record) ([]sink.Record, error) {
	out := make([]sink.Record, len(records))
	for i, rec := range records {
		payload, err := payloadOf(rec)
		if err != nil {
			return nil, fmt.Errorf("record %q: %w", rec.ID, err)
		}
		out[i] = sink.Record{
			ID:             rec.ID,
			Payload:        payload,
			Action:         sink.Action(rec.Metadata.LastAction),
			FirstSeenAt:    rec.Metadata.FirstSeenAt,
			LastModifiedAt: rec.Metadata.LastModifiedAt,
			DeletedAt:      rec.Metadata.DeletedAt,
			Pruned:         rec.Pruned(),
			Cursor:         rec.Metadata.Cursor,
		}
	}
	return out, nil
}

// payloadOf is a record's own fields, without Nango's metadata. Each value stays the raw
// JSON Nango sent, so no number loses precision and no null is dropped. A pruned record
// has no payload.
func payloadOf(rec nango.Record) (json.RawMessage, error) {
	if rec.Pruned() {
		return nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(rec.Fields, &fields); err != nil {
		return nil, fmt.Errorf("decode fields: %w", err)
	}
	delete(fields, metadataField)
	payload, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encode fields: %w", err)
	}
	return payload, nil
}
