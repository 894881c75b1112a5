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

// Package cloudevents is what every event sink (http, kafka) says about a record version
// alike: the CloudEvents type, id and source of its event, and its data, the record as
// Nango's API answers it. A consumer moving from one event sink to another sees the same
// events.
package cloudevents

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// The CloudEvents types.
const (
	// TypeAdded, TypeUpdated and TypeDeleted carry a record version, by Nango's last_action.
	TypeAdded   = "dev.nango.record.added"
	TypeUpdated = "dev.nango.record.updated"
	TypeDeleted = "dev.nango.record.deleted"
	// TypeQuarantined carries a record no store can hold (see sink.Quarantined): its quoted
	// id, why, and its metadata.
	TypeQuarantined = "dev.nango.record.quarantined"
	// TypeDataSetDeleted asks the consumer to remove every record of the data set: the
	// NangoSync was deleted, or moved, with deletionPolicy Delete.
	TypeDataSetDeleted = "dev.nango.dataset.deleted"
)

// Metadata is Nango's _nango_metadata of a record, as events carry it.
type Metadata struct {
	FirstSeenAt    time.Time  `json:"first_seen_at"`
	LastModifiedAt time.Time  `json:"last_modified_at"`
	LastAction     string     `json:"last_action"`
	DeletedAt      *time.Time `json:"deleted_at"`
	Pruned         bool       `json:"pruned"`
	Cursor         string     `json:"cursor"`
}

func metadataOf(r sink.Record) Metadata {
	return Metadata{FirstSeenAt: r.FirstSeenAt, LastModifiedAt: r.LastModifiedAt, LastAction: string(r.Action),
		DeletedAt: r.DeletedAt, Pruned: r.Pruned, Cursor: r.Cursor}
}

// Source answers the event source of a data set: /nango/<integration>/<connection>/<model>/<variant>,
// each part percent-encoded.
func Source(key sink.Key) string {
	return "/nango/" + url.PathEscape(key.ProviderConfigKey) + "/" + url.PathEscape(key.ConnectionID) + "/" +
		url.PathEscape(key.Model) + "/" + url.PathEscape(key.Variant)
}

// Type answers the event type of a record version, by its action.
func Type(r sink.Record) string {
	switch r.Action {
	case sink.ActionAdded:
		return TypeAdded
	case sink.ActionDeleted:
		return TypeDeleted
	}
	return TypeUpdated
}

// Time answers an event's time attribute: the version's last_modified_at.
func Time(at time.Time) string {
	return at.UTC().Format(time.RFC3339Nano)
}

// EventID answers the id of the event of one record version: the same on every delivery,
// different for every version (a version is its Nango cursor and last_modified_at).
func EventID(key sink.Key, r sink.Record) string {
	h := sha256.New()
	for _, s := range []string{key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant, r.ID, string(r.Action),
		r.Cursor, r.LastModifiedAt.UTC().Format(time.RFC3339Nano)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// DataSetDeletedID answers the id of the event that asks to remove a data set at at.
func DataSetDeletedID(key sink.Key, at time.Time) string {
	sum := sha256.Sum256([]byte(key.String() + "\x00deleted\x00" + at.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(sum[:16])
}

// Data is the data of a record version's event: the record as Nango's API answers it, the
// record's fields with _nango_metadata beside them; a pruned record has only its id.
func Data(r sink.Record) json.RawMessage {
	meta, _ := json.Marshal(metadataOf(r))
	fields := bytes.TrimSpace(r.Payload)
	if len(fields) < 2 || fields[0] != '{' || fields[len(fields)-1] != '}' {
		// A pruned record, or a payload that is not an object: no fields to merge into.
		id, _ := json.Marshal(r.ID)
		data := fmt.Appendf(nil, `{"id":%s`, id)
		if len(fields) > 0 {
			data = fmt.Appendf(data, `,"payload":%s`, fields)
		}
		return fmt.Appendf(data, `,"_nango_metadata":%s}`, meta)
	}
	inner := bytes.TrimSpace(fields[1 : len(fields)-1])
	data := make([]byte, 0, len(fields)+len(meta)+20)
	data = append(data, '{')
	if len(inner) > 0 {
		data = append(data, inner...)
		data = append(data, ',')
	}
	data = append(data, `"_nango_metadata":`...)
	data = append(data, meta...)
	return append(data, '}')
}

// QuarantinedData is the data of the event of a record no store can hold: its quoted id,
// why, and its metadata.
func QuarantinedData(q sink.Quarantined) json.RawMessage {
	data, _ := json.Marshal(struct {
		QuotedID string   `json:"quoted_id"`
		Reason   string   `json:"reason"`
		Metadata Metadata `json:"_nango_metadata"`
	}{q.QuotedID(), q.Reason, metadataOf(q.Record)})
	return data
}

// DecodeRecord turns the data of a record version's event, and its subject (the record's
// id), back into the version: what a consumer of the events does.
func DecodeRecord(subject string, data json.RawMessage) (sink.Record, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return sink.Record{}, fmt.Errorf("data of record %q: %w", subject, err)
	}
	var meta Metadata
	if err := json.Unmarshal(fields["_nango_metadata"], &meta); err != nil {
		return sink.Record{}, fmt.Errorf("_nango_metadata of record %q: %w", subject, err)
	}
	delete(fields, "_nango_metadata")
	r := sink.Record{ID: subject, Action: sink.Action(meta.LastAction), FirstSeenAt: meta.FirstSeenAt,
		LastModifiedAt: meta.LastModifiedAt, DeletedAt: meta.DeletedAt, Pruned: meta.Pruned, Cursor: meta.Cursor}
	if !meta.Pruned {
		payload, err := json.Marshal(fields)
		if err != nil {
			return sink.Record{}, fmt.Errorf("fields of record %q: %w", subject, err)
		}
		r.Payload = payload
	}
	return r, nil
}
