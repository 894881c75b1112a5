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
	"encoding/json"
	"fmt"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/cloudevents"
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

// The CloudEvents types (see package cloudevents, which every event sink shares).
const (
	TypeAdded          = cloudevents.TypeAdded
	TypeUpdated        = cloudevents.TypeUpdated
	TypeDeleted        = cloudevents.TypeDeleted
	TypeQuarantined    = cloudevents.TypeQuarantined
	TypeDataSetDeleted = cloudevents.TypeDataSetDeleted
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

func newEvent(key sink.Key, typ, subject string, at time.Time, id string) event {
	return event{
		SpecVersion: "1.0", ID: id, Type: typ, Subject: subject, Time: cloudevents.Time(at),
		Source:      cloudevents.Source(key),
		Integration: key.ProviderConfigKey, Connection: key.ConnectionID, Model: key.Model, Variant: key.Variant,
	}
}

// EventID answers the id of the event of one record version (cloudevents.EventID).
func EventID(key sink.Key, r sink.Record) string {
	return cloudevents.EventID(key, r)
}

// recordEvent is the event of a record version, its data the record as Nango's API
// answers it (cloudevents.Data).
func recordEvent(key sink.Key, r sink.Record) event {
	e := newEvent(key, cloudevents.Type(r), r.ID, r.LastModifiedAt, EventID(key, r))
	e.DataContentType = "application/json"
	e.Data = cloudevents.Data(r)
	return e
}

// quarantinedEvent tells the endpoint of a record no store can hold.
func quarantinedEvent(key sink.Key, q sink.Quarantined) event {
	e := newEvent(key, TypeQuarantined, q.QuotedID(), q.LastModifiedAt, EventID(key, q.Record))
	e.DataContentType = "application/json"
	e.Data = cloudevents.QuarantinedData(q)
	return e
}

// dataSetDeleted asks the endpoint to remove the data set's records.
func dataSetDeleted(key sink.Key, at time.Time) event {
	return newEvent(key, TypeDataSetDeleted, "", at, cloudevents.DataSetDeletedID(key, at))
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
