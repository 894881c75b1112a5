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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nango-operator/nango-operator/internal/nango"
)

// FromNango converts a page of Nango records into the records a sink stores: the record's
// own fields as its payload, Nango's metadata as the other columns.
func FromNango(records []nango.Record) ([]Record, error) {
	out := make([]Record, len(records))
	for i, rec := range records {
		payload, err := payloadOf(rec)
		if err != nil {
			return nil, fmt.Errorf("record %q: %w", rec.ID, err)
		}
		out[i] = Record{
			ID:             rec.ID,
			Payload:        payload,
			Action:         Action(rec.Metadata.LastAction),
			FirstSeenAt:    rec.Metadata.FirstSeenAt,
			LastModifiedAt: rec.Metadata.LastModifiedAt,
			DeletedAt:      rec.Metadata.DeletedAt,
			Pruned:         rec.Pruned(),
			Cursor:         rec.Metadata.Cursor,
		}
	}
	return out, nil
}

// payloadOf is a record's own fields, without Nango's metadata (nango.Record.Payload):
// nothing is decoded or re-encoded, and a page costs one pass over its bytes. A pruned
// record has no payload.
func payloadOf(rec nango.Record) (json.RawMessage, error) {
	if rec.Pruned() {
		return nil, nil
	}
	// The client has validated the page's JSON and that each record is an object; this
	// is the last line of defence before the sink, and costs one byte.
	if trimmed := bytes.TrimLeft(rec.Fields, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("the record is not a JSON object")
	}
	return rec.Payload(), nil
}
