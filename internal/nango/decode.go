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
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// decodePage parses a GET /records answer, keeping every record's bytes.
//
// The answer is validated once, then gjson walks it: decoding it with encoding/json
// (validate, copy every record into a json.RawMessage, then decode each record's metadata)
// was most of a fetch-only sync's CPU (docs/benchmarks.md, "Client page decoding").
// Members are read as encoding/json read them into a struct before: the page's and the
// metadata's names match ignoring case and the last of duplicates wins; a record's "id"
// and "_nango_metadata" are the first members of exactly that name.
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
		case !metadata.Exists() && key.Str == metadataField:
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

// wireMetadata is "_nango_metadata" as written, before its timestamps are parsed.
type wireMetadata struct {
	FirstSeenAt    string
	LastModifiedAt string
	LastAction     string
	DeletedAt      *string
	PrunedAt       *string
	Cursor         string
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
	if md.FirstSeenAt, err = parseTimestamp(w.FirstSeenAt); err != nil {
		return md, fmt.Errorf("first_seen_at: %w", err)
	}
	if md.LastModifiedAt, err = parseTimestamp(w.LastModifiedAt); err != nil {
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
	t, err := parseTimestamp(*s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// parseTimestamp parses a Nango (Postgres to_json) timestamp such as
// "2026-04-14T18:46:03.097459+00:00", with any fraction length, or none,
// and an offset with or without minutes.
func parseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z07", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp: %q", s)
}
