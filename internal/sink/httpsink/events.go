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

package httpsink

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

// ContentType is the media type of every body: a JSON array of CloudEvents.
const ContentType = "application/cloudevents-batch+json"

// The headers of every POST. The data set's parts and the cursors are percent-encoded.
const (
	// HeaderIdempotencyKey is the same on every delivery of a batch.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">" (Sign).
	HeaderSignature   = "Nango-Operator-Signature"
	HeaderIntegration = "Nango-Operator-Integration"
	HeaderConnection  = "Nango-Operator-Connection"
	HeaderModel       = "Nango-Operator-Model"
	HeaderVariant     = "Nango-Operator-Variant"
	// HeaderCursorFrom and HeaderCursorTo are the Nango cursors before and after the page
	// the batch belongs to.
	HeaderCursorFrom = "Nango-Operator-Cursor-From"
	HeaderCursorTo   = "Nango-Operator-Cursor-To"
	// HeaderBatchPart is "<n>/<of>" when a page is posted in several batches.
	HeaderBatchPart = "Nango-Operator-Batch-Part"
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
	// TypeDataSetDeleted asks the endpoint to remove every record of the data set: the
	// NangoSync was deleted, or moved, with deletionPolicy Delete.
	TypeDataSetDeleted = "dev.nango.dataset.deleted"
)

// event is one CloudEvent of a batch (structured mode, JSON).
type event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Integration     string          `json:"nangointegration"`
	Connection      string          `json:"nangoconnection"`
	Model           string          `json:"nangomodel"`
	Variant         string          `json:"nangovariant"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// metadata is Nango's _nango_metadata of a record, as events carry it.
type metadata struct {
	FirstSeenAt    time.Time  `json:"first_seen_at"`
	LastModifiedAt time.Time  `json:"last_modified_at"`
	LastAction     string     `json:"last_action"`
	DeletedAt      *time.Time `json:"deleted_at"`
	Pruned         bool       `json:"pruned"`
	Cursor         string     `json:"cursor"`
}

func newEvent(key sink.Key, typ, subject string, at time.Time, id string) event {
	return event{
		SpecVersion: "1.0", ID: id, Type: typ, Subject: subject, Time: at.UTC().Format(time.RFC3339Nano),
		Source: "/nango/" + url.PathEscape(key.ProviderConfigKey) + "/" + url.PathEscape(key.ConnectionID) + "/" +
			url.PathEscape(key.Model) + "/" + url.PathEscape(key.Variant),
		Integration: key.ProviderConfigKey, Connection: key.ConnectionID, Model: key.Model, Variant: key.Variant,
	}
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

// recordEvent is the event of a record version: its data is the record as Nango's API
// answers it, the record's fields with _nango_metadata beside them; a pruned record has
// only its id.
func recordEvent(key sink.Key, r sink.Record) event {
	typ := TypeUpdated
	switch r.Action {
	case sink.ActionAdded:
		typ = TypeAdded
	case sink.ActionDeleted:
		typ = TypeDeleted
	}
	e := newEvent(key, typ, r.ID, r.LastModifiedAt, EventID(key, r))
	e.DataContentType = "application/json"
	e.Data = recordData(r)
	return e
}

func recordData(r sink.Record) json.RawMessage {
	meta, _ := json.Marshal(metadata{FirstSeenAt: r.FirstSeenAt, LastModifiedAt: r.LastModifiedAt,
		LastAction: string(r.Action), DeletedAt: r.DeletedAt, Pruned: r.Pruned, Cursor: r.Cursor})
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

// quarantinedEvent tells the endpoint of a record no store can hold.
func quarantinedEvent(key sink.Key, q sink.Quarantined) event {
	e := newEvent(key, TypeQuarantined, q.QuotedID(), q.LastModifiedAt, EventID(key, q.Record))
	e.DataContentType = "application/json"
	e.Data, _ = json.Marshal(struct {
		QuotedID string   `json:"quoted_id"`
		Reason   string   `json:"reason"`
		Metadata metadata `json:"_nango_metadata"`
	}{q.QuotedID(), q.Reason, metadata{FirstSeenAt: q.FirstSeenAt, LastModifiedAt: q.LastModifiedAt,
		LastAction: string(q.Action), DeletedAt: q.DeletedAt, Pruned: q.Pruned, Cursor: q.Cursor}})
	return e
}

// dataSetDeleted asks the endpoint to remove the data set's records.
func dataSetDeleted(key sink.Key, at time.Time) event {
	sum := sha256.Sum256([]byte(key.String() + "\x00deleted\x00" + at.UTC().Format(time.RFC3339Nano)))
	return newEvent(key, TypeDataSetDeleted, "", at, hex.EncodeToString(sum[:16]))
}

func encodeBatch(events []event) ([]byte, error) {
	body, err := json.Marshal(events)
	if err != nil {
		return nil, fmt.Errorf("encode a batch of events: %w", err)
	}
	return body, nil
}

// splitBatches encodes events into JSON arrays of at most maxBytes each, in order; an
// event larger than maxBytes goes in an array of its own.
func splitBatches(events []event, maxBytes int) ([][]byte, error) {
	if len(events) == 0 {
		return nil, nil // an empty page moves only the checkpoint: nothing to tell the endpoint
	}
	var bodies [][]byte
	current := []byte{'['}
	for _, e := range events {
		encoded, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode the event of record %q: %w", e.Subject, err)
		}
		if len(current) > 1 && len(current)+1+len(encoded)+1 > maxBytes {
			bodies = append(bodies, append(current, ']'))
			current = []byte{'['}
		}
		if len(current) > 1 {
			current = append(current, ',')
		}
		current = append(current, encoded...)
	}
	return append(bodies, append(current, ']')), nil
}
