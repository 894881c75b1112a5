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

package nango

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// Action is a record's last_action.
type Action string

// Nango's record actions.
const (
	ActionAdded   Action = "ADDED"
	ActionUpdated Action = "UPDATED"
	ActionDeleted Action = "DELETED"
)

// Filter values for ListRecordsRequest.Filter. Nango combines them oddly:
// "updated,deleted" returns no deleted rows and "added,deleted" equals
// "added"; see the contract's filter table.
const (
	FilterAdded   = "added"
	FilterUpdated = "updated"
	FilterDeleted = "deleted"
)

// ListRecordsRequest asks for one page of a model's records.
type ListRecordsRequest struct {
	ConnectionID      string
	ProviderConfigKey string
	Model             string
	// Variant of the model; "" and syncv1alpha1.BaseVariant read the base model.
	Variant string
	// Cursor is exclusive: the page starts after it.
	Cursor string
	// ModifiedAfter, if set, keeps records modified at or after it
	// (millisecond precision; Nango refuses values older than 365 days).
	ModifiedAfter time.Time
	// Limit is 1..10000; 0 leaves Nango's default (100).
	Limit int
	// Filter is a comma list of added, updated, deleted.
	Filter string
	// IDs restricts the page to these record ids (at most 100).
	IDs []string
}

// RecordsPage is one page of records.
type RecordsPage struct {
	Records []Record
	// NextCursor is where the next page starts; "" when nothing follows.
	// A page may be shorter than the limit while NextCursor is set: keep
	// paging until it is empty.
	NextCursor string
}

// Record is one record as Nango returned it.
type Record struct {
	// ID is the record's id (Nango always sends it as a string).
	ID string
	// Fields is the whole record object exactly as received, including "id"
	// and "_nango_metadata": no field, number precision or null is lost. It
	// shares the page's answer buffer with the other records (read-only; its
	// capacity is its length, so append copies), and keeps that buffer alive.
	Fields json.RawMessage
	// Metadata is the parsed "_nango_metadata".
	Metadata RecordMetadata

	// metadataSpan is where the "_nango_metadata" member is in Fields, with one comma and
	// the spaces beside it: what Payload cuts out. Zero when there is nothing to cut.
	metadataSpan [2]int
}

// Payload is the record's own fields: Fields without its "_nango_metadata" member, every
// other byte as Nango sent it, so no number loses precision and no null is dropped. It is
// a copy, sized exactly: keeping it does not keep the page's answer alive.
func (r Record) Payload() json.RawMessage {
	start, end := r.metadataSpan[0], r.metadataSpan[1]
	payload := make(json.RawMessage, 0, len(r.Fields)-(end-start))
	payload = append(payload, r.Fields[:start]...)
	return append(payload, r.Fields[end:]...)
}

// Deleted reports whether Nango marked the record deleted.
func (r Record) Deleted() bool { return r.Metadata.DeletedAt != nil }

// Pruned reports whether Nango emptied the record's payload. A pruned
// record carries only its id and metadata; it must never overwrite data
// already held.
func (r Record) Pruned() bool { return r.Metadata.PrunedAt != nil }

// RecordMetadata is Nango's "_nango_metadata".
type RecordMetadata struct {
	FirstSeenAt    time.Time
	LastModifiedAt time.Time
	LastAction     Action
	DeletedAt      *time.Time
	PrunedAt       *time.Time
	// Cursor points just after this record.
	Cursor string
}

// metadataField is the member of a record that holds Nango's metadata; every other member
// is the record's own.
const metadataField = "_nango_metadata"

func (r ListRecordsRequest) key() string {
	return r.ProviderConfigKey + "/" + r.ConnectionID + "/" + r.Model
}

func (r ListRecordsRequest) validate() error {
	var missing []string
	for _, f := range [][2]string{{"connection id", r.ConnectionID}, {"provider config key", r.ProviderConfigKey}, {"model", r.Model}} {
		if f[1] == "" {
			missing = append(missing, f[0])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if r.Limit < 0 || r.Limit > 10000 {
		return fmt.Errorf("limit %d is outside 1..10000", r.Limit)
	}
	return nil
}

func (r ListRecordsRequest) query() url.Values {
	q := url.Values{"model": {r.Model}}
	if r.Variant != "" {
		q.Set("variant", r.Variant)
	}
	if !r.ModifiedAfter.IsZero() {
		// Nango's schema accepts only UTC ("Z") datetimes.
		q.Set("modified_after", r.ModifiedAfter.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	if r.Limit > 0 {
		q.Set("limit", strconv.Itoa(r.Limit))
	}
	if r.Filter != "" {
		q.Set("filter", r.Filter)
	}
	if r.Cursor != "" {
		q.Set("cursor", r.Cursor)
	}
	for _, id := range r.IDs {
		q.Add("ids", id)
	}
	return q
}

// ListRecords fetches one page of records.
//
// A malformed cursor makes Nango answer 500 server_error, which looks like
// any other server failure. The client tells them apart so that a controller
// neither loops forever on a bad cursor nor gives up on a flaky server: when
// a request with a cursor gets a 500, the client
//
//  1. returns KindInvalidCursor at once if the cursor is not of the form
//     Nango issues (base64 of "<timestamp>||<uuid>");
//  2. otherwise retries once, and if that also fails, asks for the first
//     record without a cursor: if that succeeds, the server is healthy and
//     the cursor is the problem (KindInvalidCursor); if it fails too, the
//     error is a KindServerError, to retry later.
func (c *Client) ListRecords(ctx context.Context, req ListRecordsRequest) (*RecordsPage, error) {
	op := "list records for " + req.key()
	if err := req.validate(); err != nil {
		return nil, &Error{Kind: KindInvalidRequest, Op: op, Message: err.Error()}
	}
	page, err := c.listRecords(ctx, op, req)
	if err == nil {
		return checkProgress(ctx, op, req, page)
	}
	if req.Cursor == "" || !isKind(err, KindServerError) {
		return page, err
	}
	if !wellFormedCursor(req.Cursor) {
		return nil, invalidCursor(err, "the cursor is not one Nango issues")
	}
	if page, err = c.listRecords(ctx, op, req); err == nil {
		return checkProgress(ctx, op, req, page)
	} else if !isKind(err, KindServerError) {
		return nil, err
	}
	probe := req
	probe.Cursor, probe.Limit, probe.Filter, probe.IDs, probe.ModifiedAfter = "", 1, "", nil, time.Time{}
	pctx, cancel := context.WithTimeout(ctx, invalidCursorProbeTimeout)
	defer cancel()
	if _, perr := c.listRecords(pctx, op+" (probe without cursor)", probe); perr == nil {
		return nil, invalidCursor(err, "requests without the cursor succeed")
	}
	return nil, err
}

// maxCursorLength is the longest cursor Nango accepts in a request (its query schema:
// 1..1000 characters). A longer next_cursor could never be sent back, and would not fit
// where the operator keeps its cursor either.
const maxCursorLength = 1000

// checkProgress refuses a page whose next_cursor would make a reader that follows it loop
// forever: the cursor it was asked with, a cursor on a page without records (Nango's
// next_cursor is the cursor of a page's last record), or one Nango itself would refuse.
// Each is KindInvalidCursor, which stops the reader and asks a person for a resync. A
// next_cursor before the request's cursor is served, since following it ends, but it is
// logged (in the caller's logger): Nango should never move back.
func checkProgress(ctx context.Context, op string, req ListRecordsRequest, page *RecordsPage) (*RecordsPage, error) {
	next := page.NextCursor
	var why string
	switch {
	case next == "":
		return page, nil
	case len(next) > maxCursorLength:
		why = fmt.Sprintf("Nango returned a next_cursor of %d characters, longer than the %d it accepts back", len(next), maxCursorLength)
	case next == req.Cursor:
		why = "Nango returned the request's own cursor as next_cursor: following it would read the same page forever"
	case len(page.Records) == 0:
		why = "Nango returned a page without records that names a next_cursor: following it may never end"
	default:
		warnIfBackwards(ctx, req.Cursor, next)
		return page, nil
	}
	return nil, &Error{Kind: KindInvalidCursor, Op: op, Status: http.StatusOK, Message: why}
}

// warnIfBackwards logs a next_cursor that points before the request's cursor.
func warnIfBackwards(ctx context.Context, cursor, next string) {
	if cursor == "" {
		return
	}
	fromAt, fromID, err1 := DecodeCursor(cursor)
	toAt, toID, err2 := DecodeCursor(next)
	if err1 != nil || err2 != nil {
		return
	}
	if toAt.Before(fromAt) || (toAt.Equal(fromAt) && strings.ToLower(toID) < strings.ToLower(fromID)) {
		logr.FromContextOrDiscard(ctx).Info("Nango's next cursor goes backwards, before the cursor it was asked with; records may be read again",
			"cursorAt", fromAt.UTC().Format(time.RFC3339Nano), "nextCursorAt", toAt.UTC().Format(time.RFC3339Nano))
	}
}

func invalidCursor(cause error, why string) error {
	var e *Error
	if !errors.As(cause, &e) {
		return cause
	}
	out := *e
	out.Kind = KindInvalidCursor
	out.Message = strings.TrimSpace(e.Message + " (" + why + ")")
	return &out
}

func (c *Client) listRecords(ctx context.Context, op string, req ListRecordsRequest) (*RecordsPage, error) {
	body, err := c.do(ctx, request{
		op:     op,
		method: http.MethodGet,
		path:   "/records",
		query:  req.query(),
		header: http.Header{
			"Connection-Id":       {req.ConnectionID},
			"Provider-Config-Key": {req.ProviderConfigKey},
		},
	})
	if err != nil {
		return nil, err
	}
	page, err := decodePage(body)
	if err != nil {
		return nil, &Error{Kind: KindInvalidResponse, Op: op, Status: http.StatusOK, Err: err}
	}
	return page, nil
}
