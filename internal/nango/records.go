package nango

import (
	"bytes"
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
	// Variant of the model; "" and "base" read the base model.
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
	// and "_nango_metadata": no field, number precision or null is lost.
	Fields json.RawMessage
	// Metadata is the parsed "_nango_metadata".
	Metadata RecordMetadata
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

type wireMetadata struct {
	FirstSeenAt    string  `json:"first_seen_at"`
	LastModifiedAt string  `json:"last_modified_at"`
	LastAction     string  `json:"last_action"`
	DeletedAt      *string `json:"deleted_at"`
	PrunedAt       *string `json:"pruned_at"`
	Cursor         string  `json:"cursor"`
}

// MetadataField is the member of a record that holds Nango's metadata; every other member
// is the record's own.
const MetadataField = "_nango_metadata"

type wirePage struct {
	Records    []json.RawMessage `json:"records"`
	NextCursor *string           `json:"next_cursor"`
}

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
func decodePage(body []byte) (*RecordsPage, error) {
	var wp wirePage
	if err := json.Unmarshal(body, &wp); err != nil {
		return nil, fmt.Errorf("decode page: %w", err)
	}
	if wp.Records == nil {
		return nil, errors.New(`decode page: no "records" array`)
	}
	page := &RecordsPage{Records: make([]Record, 0, len(wp.Records))}
	if wp.NextCursor != nil {
		page.NextCursor = *wp.NextCursor
	}
	for i, raw := range wp.Records {
		rec, err := decodeRecord(raw)
		if err != nil {
			return nil, fmt.Errorf("decode page: record %d: %w", i, err)
		}
		page.Records = append(page.Records, rec)
	}
	return page, nil
}

// decodeRecord reads a record's id and metadata. The page's JSON is already validated, so
// one scan finds the two members, and only the small metadata object is decoded: decoding
// the whole record again cost a fifth of a sync's CPU.
func decodeRecord(raw json.RawMessage) (Record, error) {
	if !gjson.ParseBytes(raw).IsObject() {
		return Record{}, fmt.Errorf("record %s is not a JSON object", snippet(raw))
	}
	members := gjson.GetManyBytes(raw, "id", MetadataField)
	id, err := recordID(json.RawMessage(members[0].Raw))
	if err != nil {
		return Record{}, err
	}
	if !members[1].IsObject() {
		return Record{}, fmt.Errorf("record %q has no _nango_metadata", id)
	}
	var wm wireMetadata
	if err := json.Unmarshal([]byte(members[1].Raw), &wm); err != nil {
		return Record{}, fmt.Errorf("record %q: decode _nango_metadata: %w", id, err)
	}
	md, err := wm.parse()
	if err != nil {
		return Record{}, fmt.Errorf("record %q: %w", id, err)
	}
	return Record{ID: id, Fields: raw, Metadata: md}, nil
}

// recordID reads "id", a string by contract; a number is kept literally.
func recordID(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", errors.New(`record has no "id"`)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("record id %s is neither a string nor a number", snippet(raw))
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
	md.LastAction = Action(w.LastAction)
	md.Cursor = w.Cursor
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
