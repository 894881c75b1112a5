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
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
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

// wireMetadata is "_nango_metadata" as written, before its timestamps are parsed.
type wireMetadata struct {
	FirstSeenAt    string
	LastModifiedAt string
	LastAction     string
	DeletedAt      *string
	PrunedAt       *string
	Cursor         string
}

// MetadataField is the member of a record that holds Nango's metadata; every other member
// is the record's own.
const MetadataField = "_nango_metadata"

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
	if err == nil || req.Cursor == "" || !IsKind(err, KindServerError) {
		return page, err
	}
	if !WellFormedCursor(req.Cursor) {
		return nil, invalidCursor(err, "the cursor is not one Nango issues")
	}
	if page, err = c.listRecords(ctx, op, req); err == nil || !IsKind(err, KindServerError) {
		return page, err
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

// decodePage parses a GET /records answer, keeping every record's bytes.
//
// The answer is validated once, then gjson walks it: decoding it with encoding/json
// (validate, copy every record into a json.RawMessage, then decode each record's metadata)
// cost about 15 µs a record of 1 KiB, most of a fetch-only sync's CPU. Members are read
// as encoding/json read them into a struct before: the page's and the metadata's names
// match ignoring case and the last of duplicates wins; a record's "id" and
// "_nango_metadata" are the first members of exactly that name.
//
// The records' Fields are slices of body, not copies: body must not be modified or
// reused afterwards (the client reads a new buffer for every answer). Their capacity is
// their length, so appending to one copies it instead of overwriting the next record.
func decodePage(body []byte) (*RecordsPage, error) {
	page, err := decodeValidPage(body)
	if err != nil {
		return nil, fmt.Errorf("decode page: %w", err)
	}
	return page, nil
}

func decodeValidPage(body []byte) (*RecordsPage, error) {
	if err := validJSON(body); err != nil {
		return nil, err
	}
	// Parsed in place: gjson.ParseBytes would copy the whole answer into a string first.
	// body is never modified (see decodePage), and the strings a record keeps (its id and
	// cursor) are copied out of it, so that a record kept does not keep the whole page.
	answer := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if answer.Type == gjson.Null {
		return nil, errors.New(`no "records" array`)
	}
	if !answer.IsObject() {
		return nil, fmt.Errorf("answer is %s, not a JSON object", kindOf(answer))
	}
	page := &RecordsPage{}
	var records gjson.Result
	var err error
	answer.ForEach(func(key, value gjson.Result) bool {
		switch {
		case strings.EqualFold(key.Str, "records"):
			if !value.IsArray() && value.Type != gjson.Null {
				err = fmt.Errorf(`"records" is %s, not an array`, kindOf(value))
			}
			records = value
		case strings.EqualFold(key.Str, "next_cursor"):
			page.NextCursor = "" // null: no next page
			err = setString(&page.NextCursor, `"next_cursor"`, value)
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if !records.IsArray() {
		return nil, errors.New(`no "records" array`)
	}
	page.NextCursor = strings.Clone(page.NextCursor)
	page.Records = []Record{}
	records.ForEach(func(_, raw gjson.Result) bool {
		var rec Record
		if rec, err = decodeRecord(body, raw); err != nil {
			err = fmt.Errorf("record %d: %w", len(page.Records), err)
			return false
		}
		page.Records = append(page.Records, rec)
		return true
	})
	return page, err
}

// decodeRecord reads a record's id and metadata; only the small metadata object is
// decoded. Its Fields are its bytes in body.
func decodeRecord(body []byte, raw gjson.Result) (Record, error) {
	fields := bytesOf(body, raw)
	if !raw.IsObject() {
		return Record{}, fmt.Errorf("record %s is not a JSON object", snippet(fields))
	}
	var idValue, metadata gjson.Result
	var span [2]int
	// Offsets in fields: gjson's Index counts from the start of body, like raw's.
	previousEnd, cutToNext := -1, false
	raw.ForEach(func(key, value gjson.Result) bool {
		keyStart, valueEnd := key.Index-raw.Index, value.Index-raw.Index+len(value.Raw)
		if cutToNext {
			span[1], cutToNext = keyStart, false
		}
		switch {
		case !idValue.Exists() && key.Str == "id":
			idValue = value
		case !metadata.Exists() && key.Str == MetadataField:
			metadata = value
			if previousEnd >= 0 {
				span = [2]int{previousEnd, valueEnd} // with the comma before it
			} else {
				// The first member: up to the next one's name, with the comma after it.
				span, cutToNext = [2]int{keyStart, valueEnd}, true
			}
		}
		previousEnd = valueEnd
		return true
	})
	id, err := recordID(idValue)
	if err != nil {
		return Record{}, err
	}
	if !metadata.IsObject() {
		return Record{}, fmt.Errorf("record %q has no _nango_metadata", id)
	}
	var wm wireMetadata
	if err := wm.decode(metadata); err != nil {
		return Record{}, fmt.Errorf("record %q: decode _nango_metadata: %w", id, err)
	}
	md, err := wm.parse()
	if err != nil {
		return Record{}, fmt.Errorf("record %q: %w", id, err)
	}
	return Record{ID: id, Fields: fields, Metadata: md, metadataSpan: span}, nil
}

// bytesOf answers the bytes of v in body, where gjson found it: a slice, not a copy,
// with its capacity capped at its length. gjson's Index says where; 0 means unknown.
func bytesOf(body []byte, v gjson.Result) json.RawMessage {
	if end := v.Index + len(v.Raw); v.Index > 0 && end <= len(body) && string(body[v.Index:end]) == v.Raw {
		return body[v.Index:end:end]
	}
	return json.RawMessage(v.Raw)
}

// recordID reads "id", a string by contract; a number is kept literally.
func recordID(v gjson.Result) (string, error) {
	switch v.Type {
	case gjson.String:
		return strings.Clone(text(v)), nil
	case gjson.Number:
		return strings.Clone(v.Raw), nil
	case gjson.Null:
		return "", errors.New(`record has no "id"`)
	}
	return "", fmt.Errorf("record id %s is neither a string nor a number", snippet([]byte(v.Raw)))
}

// decode reads the metadata object as encoding/json would read it into w: names match
// ignoring case, the last of duplicates wins, other members are ignored, null leaves a
// string as it is.
func (w *wireMetadata) decode(metadata gjson.Result) error {
	var err error
	metadata.ForEach(func(key, value gjson.Result) bool {
		err = w.set(key.Str, value)
		return err == nil
	})
	return err
}

func (w *wireMetadata) set(key string, value gjson.Result) error {
	for _, f := range []struct {
		name string
		dst  *string
	}{{"first_seen_at", &w.FirstSeenAt}, {"last_modified_at", &w.LastModifiedAt},
		{"last_action", &w.LastAction}, {"cursor", &w.Cursor}} {
		if strings.EqualFold(key, f.name) {
			return setString(f.dst, f.name, value)
		}
	}
	for _, f := range []struct {
		name string
		dst  **string
	}{{"deleted_at", &w.DeletedAt}, {"pruned_at", &w.PrunedAt}} {
		if strings.EqualFold(key, f.name) {
			if value.Type == gjson.Null {
				*f.dst = nil
				return nil
			}
			var s string
			if err := setString(&s, f.name, value); err != nil {
				return err
			}
			*f.dst = &s
			return nil
		}
	}
	return nil
}

// setString decodes value, a string or null, into dst as encoding/json decodes it into a
// string: null (or no value) leaves dst as it is.
func setString(dst *string, name string, value gjson.Result) error {
	switch {
	case !value.Exists() || value.Type == gjson.Null:
		return nil
	case value.Type != gjson.String:
		return fmt.Errorf("%s is %s, not a string", name, kindOf(value))
	}
	*dst = text(value)
	return nil
}

// text answers a JSON string's value as encoding/json decodes it. A string without
// escapes, in valid UTF-8 (nearly all), is its bytes; the others go to encoding/json,
// which replaces invalid UTF-8 and lone surrogates as gjson does not.
func text(v gjson.Result) string {
	raw := v.Raw
	if !strings.Contains(raw, `\`) && utf8.ValidString(raw) {
		return raw[1 : len(raw)-1]
	}
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return v.Str // not reached: the answer was validated
	}
	return s
}

// kindOf names the kind of a JSON value, for error messages.
func kindOf(v gjson.Result) string {
	switch {
	case v.IsObject():
		return "an object"
	case v.IsArray():
		return "an array"
	case v.Type == gjson.String:
		return "a string"
	case v.IsBool():
		return "a boolean"
	case v.Type == gjson.Null:
		return "null"
	}
	return "a number"
}

func (w *wireMetadata) parse() (RecordMetadata, error) {
	var md RecordMetadata
	var err error
	if md.FirstSeenAt, err = ParseTimestamp(w.FirstSeenAt); err != nil {
		return md, fmt.Errorf("first_seen_at: %w", err)
	}
	if md.LastModifiedAt, err = ParseTimestamp(w.LastModifiedAt); err != nil {
		return md, fmt.Errorf("last_modified_at: %w", err)
	}
	if md.DeletedAt, err = parseOptionalTimestamp(w.DeletedAt); err != nil {
		return md, fmt.Errorf("deleted_at: %w", err)
	}
	if md.PrunedAt, err = parseOptionalTimestamp(w.PrunedAt); err != nil {
		return md, fmt.Errorf("pruned_at: %w", err)
	}
	md.LastAction = Action(strings.Clone(w.LastAction))
	md.Cursor = strings.Clone(w.Cursor)
	return md, nil
}

func parseOptionalTimestamp(s *string) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	t, err := ParseTimestamp(*s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// ParseTimestamp parses a Nango (Postgres to_json) timestamp such as
// "2026-04-14T18:46:03.097459+00:00", with any fraction length, or none,
// and an offset with or without minutes.
func ParseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z07", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp: %q", s)
}

var cursorUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// DecodeCursor splits a Nango cursor into the last_modified_at and internal
// id it encodes. Cursors are opaque to Nango's clients; the operator uses
// this only to tell a malformed cursor from a server failure and to show
// where a sync stands.
func DecodeCursor(cursor string) (lastModifiedAt time.Time, id string, err error) {
	raw, err := base64.StdEncoding.DecodeString(cursor)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(cursor, "=")); err != nil {
			return time.Time{}, "", errors.New("cursor is not base64")
		}
	}
	ts, id, ok := strings.Cut(string(raw), "||")
	if !ok || strings.Contains(id, "||") {
		return time.Time{}, "", errors.New(`cursor is not "<timestamp>||<id>"`)
	}
	if lastModifiedAt, err = ParseTimestamp(ts); err != nil {
		return time.Time{}, "", fmt.Errorf("cursor timestamp: %w", err)
	}
	if !cursorUUID.MatchString(id) {
		return time.Time{}, "", errors.New("cursor id is not a UUID")
	}
	return lastModifiedAt, id, nil
}

// WellFormedCursor reports whether a cursor has the form Nango issues.
func WellFormedCursor(cursor string) bool {
	_, _, err := DecodeCursor(cursor)
	return err == nil
}
