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

package nango_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/nango-operator/nango-operator/internal/nango"
)

// referenceDecodePage is decodePage as it was with encoding/json: the oracle that the
// faster decoder must agree with, answer for answer (error messages aside).
func referenceDecodePage(body []byte) (*nango.RecordsPage, error) {
	var wp struct {
		Records    []json.RawMessage `json:"records"`
		NextCursor *string           `json:"next_cursor"`
	}
	if err := json.Unmarshal(body, &wp); err != nil {
		return nil, fmt.Errorf("decode page: %w", err)
	}
	if wp.Records == nil {
		return nil, errors.New(`decode page: no "records" array`)
	}
	page := &nango.RecordsPage{Records: make([]nango.Record, 0, len(wp.Records))}
	if wp.NextCursor != nil {
		page.NextCursor = *wp.NextCursor
	}
	for i, raw := range wp.Records {
		rec, err := referenceDecodeRecord(raw)
		if err != nil {
			return nil, fmt.Errorf("decode page: record %d: %w", i, err)
		}
		page.Records = append(page.Records, rec)
	}
	return page, nil
}

func referenceDecodeRecord(raw json.RawMessage) (nango.Record, error) {
	if !gjson.ParseBytes(raw).IsObject() {
		return nango.Record{}, errors.New("not a JSON object")
	}
	members := gjson.GetManyBytes(raw, "id", nango.MetadataField)
	id, err := referenceRecordID(json.RawMessage(members[0].Raw))
	if err != nil {
		return nango.Record{}, err
	}
	if !members[1].IsObject() {
		return nango.Record{}, errors.New("no _nango_metadata")
	}
	var wm struct {
		FirstSeenAt    string  `json:"first_seen_at"`
		LastModifiedAt string  `json:"last_modified_at"`
		LastAction     string  `json:"last_action"`
		DeletedAt      *string `json:"deleted_at"`
		PrunedAt       *string `json:"pruned_at"`
		Cursor         string  `json:"cursor"`
	}
	if err := json.Unmarshal([]byte(members[1].Raw), &wm); err != nil {
		return nango.Record{}, err
	}
	md := nango.RecordMetadata{LastAction: nango.Action(wm.LastAction), Cursor: wm.Cursor}
	if md.FirstSeenAt, err = nango.ParseTimestamp(wm.FirstSeenAt); err != nil {
		return nango.Record{}, err
	}
	if md.LastModifiedAt, err = nango.ParseTimestamp(wm.LastModifiedAt); err != nil {
		return nango.Record{}, err
	}
	for _, f := range []struct {
		in  *string
		out **time.Time
	}{{wm.DeletedAt, &md.DeletedAt}, {wm.PrunedAt, &md.PrunedAt}} {
		if f.in != nil {
			t, err := nango.ParseTimestamp(*f.in)
			if err != nil {
				return nango.Record{}, err
			}
			*f.out = &t
		}
	}
	return nango.Record{ID: id, Fields: raw, Metadata: md}, nil
}

func referenceRecordID(raw json.RawMessage) (string, error) {
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
	return "", errors.New("id neither a string nor a number")
}

// sameDecoding fails unless DecodePage and the reference agree on body: both fail, or
// both return the same page.
func sameDecoding(t *testing.T, body []byte) {
	t.Helper()
	got, gotErr := nango.DecodePage(body)
	want, wantErr := referenceDecodePage(body)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q:\n got error %v\nwant error %v", snip(body), gotErr, wantErr)
	}
	if gotErr != nil {
		if !strings.HasPrefix(gotErr.Error(), "decode page: ") {
			t.Fatalf("%q: error %q lacks its context", snip(body), gotErr)
		}
		return
	}
	if !reflect.DeepEqual(nango.WithoutPayloadSpans(got), want) {
		t.Fatalf("%q:\n got %+v\nwant %+v", snip(body), got, want)
	}
	for _, r := range got.Records {
		samePayload(t, r)
	}
}

// samePayload fails unless r.Payload() is valid JSON holding the members of r.Fields, in
// order and as written, but for the first named "_nango_metadata".
func samePayload(t *testing.T, r nango.Record) {
	t.Helper()
	payload := r.Payload()
	if !json.Valid(payload) {
		t.Fatalf("record %q: payload %q is not valid JSON", r.ID, payload)
	}
	var want []string
	cut := false
	gjson.ParseBytes(r.Fields).ForEach(func(key, value gjson.Result) bool {
		if !cut && key.Str == nango.MetadataField {
			cut = true
		} else {
			want = append(want, key.Raw+":"+value.Raw)
		}
		return true
	})
	var got []string
	gjson.ParseBytes(payload).ForEach(func(key, value gjson.Result) bool {
		got = append(got, key.Raw+":"+value.Raw)
		return true
	})
	if !cut || !reflect.DeepEqual(got, want) {
		t.Fatalf("record %q: payload of %q:\n got members %q\nwant %q", r.ID, r.Fields, got, want)
	}
}

// TestPayloadCutsMetadataOnly: Payload cuts Nango's metadata out of a record, with one
// comma, and keeps every other byte.
func TestPayloadCutsMetadataOnly(t *testing.T) {
	const meta = `{"first_seen_at":"2026-04-14T18:46:03.097459+00:00","last_modified_at":"2026-04-14T18:46:03.097459+00:00","cursor":"x"}`
	for _, tc := range []struct{ record, want string }{
		{`{"id":"1","big":12345678901234567890,"n":null,"_nango_metadata":` + meta + `}`,
			`{"id":"1","big":12345678901234567890,"n":null}`}, // metadata last, as Nango sends it
		{`{ "_nango_metadata" : ` + meta + ` , "id":"1", "name":"Zoë \"quoted\"" }`,
			`{ "id":"1", "name":"Zoë \"quoted\"" }`}, // first, with spaces
		{`{"id":"1" , "_nango_metadata":` + meta + ` ,"x":[1,{"b":"}"}]}`,
			`{"id":"1" ,"x":[1,{"b":"}"}]}`}, // between two members
		{`{"id":"1","nested":{"_nango_metadata":true},"_nango_metadata":` + meta + `}`,
			`{"id":"1","nested":{"_nango_metadata":true}}`}, // a nested member of that name is the record's own
		{`{"id":"1","_nango_metadata":` + meta + `,"_nango_metadata":5}`,
			`{"id":"1","_nango_metadata":5}`}, // only the first is Nango's, as for the decoder
	} {
		p, err := nango.DecodePage([]byte(`{"records":[` + tc.record + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(p.Records[0].Payload()); got != tc.want {
			t.Errorf("payload of %s\n got %s\nwant %s", tc.record, got, tc.want)
		}
	}
}

func snip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

const goodMeta = `"_nango_metadata":{"first_seen_at":"2026-04-14T18:46:03.097459+00:00",` +
	`"last_modified_at":"2026-04-14T18:46:03.097459+00:00","last_action":"ADDED","deleted_at":null,"pruned_at":null,"cursor":"Yw=="}`

// rec is a record with the given members before a good _nango_metadata.
func rec(members string) string {
	if members == "" {
		return "{" + goodMeta + "}"
	}
	return "{" + members + "," + goodMeta + "}"
}

// page is an answer holding the given records.
func page(records ...string) string {
	return `{"records":[` + strings.Join(records, ",") + `],"next_cursor":"Yw=="}`
}

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

// decodeCorpus holds answers in every corner the decoder has: valid and invalid JSON,
// odd shapes, duplicate and case-folded names, escapes, nesting.
func decodeCorpus() []string {
	meta := func(members string) string { return `{"records":[{"id":"a","_nango_metadata":{` + members + `}}]}` }
	ts := `"2026-04-14T18:46:03.097459+00:00"`
	base := `"first_seen_at":` + ts + `,"last_modified_at":` + ts
	return []string{
		// Shapes of the page.
		`{"records":[],"next_cursor":null}`, `{"next_cursor":"abc","records":[]}`, `{"records":[]}`,
		" \n\t{ \"records\" : [ ] , \"next_cursor\" : \"x\" } \r\n", `{}`, `null`, ` null `, `[]`, `[{"records":[]}]`,
		`"records"`, `1`, `true`, `false`, `{"records":null}`, `{"records":{}}`, `{"records":"x"}`, `{"records":1}`,
		`{"records":[1]}`, `{"records":[null]}`, `{"records":["records"]}`, `{"records":[[]]}`, `{"records":[true]}`,
		`{"records":[],"next_cursor":5}`, `{"records":[],"next_cursor":{}}`, `{"records":[],"next_cursor":""}`,
		`{"records":[],"next_cursor":"a\u00e9\\u00e9\n"}`, `{"records":[],"next_cursor":"\ud800"}`,
		`{"records":[],"next_cursor":"` + "\xff\xfe" + `"}`, `{"records":[],"next_cursor":"\\ud800x"}`,
		// encoding/json's struct semantics: names ignore case, the last duplicate wins.
		`{"RECORDS":[],"Next_Cursor":"c"}`, `{"records":[],"next_cursor":"a","next_cursor":null}`,
		`{"records":[1],"records":[]}`, `{"records":[],"records":null}`, `{"records":[],"records":5}`,
		`{"records":5,"records":[]}`, `{"rec\u006frds":[],"next_\u0063ursor":"e"}`, `{"recordſ":[]}`,
		`{"records":[],"next_cursor":5,"next_cursor":"a"}`, `{"records":[],"other":{"records":5},"x":[1,{"a":"]"}]}`,
		// Records.
		page(rec(`"id":"a"`)), page(rec(`"id":7`)), page(rec(`"id":-1.5e3`)), page(rec(`"id":12345678901234567890123`)),
		page(rec(`"id":null`)), page(rec("")), page(rec(`"id":true`)), page(rec(`"id":{}`)), page(rec(`"id":[]`)),
		page(rec(`"id":"a\u00e9\"b\\"`)), page(rec(`"id":"` + "\xff" + `"`)), page(rec(`"id":"a","id":"b"`)),
		page(rec(`"ID":"x"`)), page(rec(`"\u0069d":"esc"`)), page(rec(`"id":""`)),
		page(rec(`"nested":{"id":"inner"},"id":"outer"`)), page(rec(`"id":"a","score":1e400,"n":-0,"f":0.5E+3,"z":null`)),
		page(rec(`"id":"a","s":"records ] } [ { \" \\\\\" \\\\","_":"_nango_metadata"`)),
		page(rec(`"id":"a","arr":[[1,[2,[3]]],{"a":[{}]},"x"],"o":{"p":{"q":{}}}`)),
		page(rec(`"id" : "sp" , "k" : [ 1 , 2 ] `)), page(rec(`"id":"a"`), rec(`"id":"b"`), `5`),
		page(rec(`"id":"a"`), `{"id":"b"}`), page(`{"id":"a","_nango_metadata":null}`),
		page(`{"id":"a","_nango_metadata":[]}`), page(`{"id":"a","_nango_metadata":"x"}`),
		page(`{"id":"a","_NANGO_METADATA":{}}`), page(`{"id":"a","_nango_metad\u0061ta":` + goodMeta[len(`"_nango_metadata":`):] + `}`),
		page(`{"id":"a",` + goodMeta + `,"_nango_metadata":5}`), page(`{"id":"a","_nango_metadata":5,` + goodMeta + `}`),
		page(`{ "id":"a" , ` + strings.ReplaceAll(goodMeta, ",", " ,\n ") + ` }`),
		// Metadata as encoding/json reads it into a struct.
		meta(base), meta(base + `,"cursor":5`), meta(base + `,"CURSOR":"up"`), meta(base + `,"cursor":"a","Cursor":"b"`),
		meta(base + `,"deleted_at":` + ts), meta(base + `,"deleted_at":5`), meta(base + `,"deleted_at":"soon"`),
		meta(base + `,"deleted_at":` + ts + `,"deleted_at":null`), meta(base + `,"pruned_at":` + ts + `,"last_action":"DELETED"`),
		meta(base + `,"last_action":null`), meta(base + `,"last_action":["x"]`), meta(base + `,"unknown":{"cursor":5}`),
		meta(`"first_seen_at":null,"last_modified_at":` + ts), meta(`"first_seen_at":` + ts), meta(``),
		meta(base + `,"first_seen_at":null`), meta(base + `,"first_\u0073een_at":"bad"`), meta(base + `,"cursor":"\u00e9\\n"`),
		meta(`"first_seen_at":"2026-04-14T18:46:03+00","last_modified_at":"2026-04-14 18:46:03.5+02:00"`),
		meta(base + `,"laſt_action":"S"`), meta(base + `,"cursor":"` + "\xc3" + `"`),
		// Invalid JSON.
		``, ` `, `{`, `{"records":[}`, `{"records":[]} x`, `{"records":[]}}`, `{"records":[],}`, `{"records":[1,]}`,
		`{"records":[01]}`, `{"records":[1.]}`, `{"records":[1e]}`, `{"records":[-]}`, `{"records":[+1]}`, `{"records":[.5]}`,
		`{"records":["a` + "\x01" + `"]}`, `{"records":["\x"]}`, `{"records":["\u12"]}`, `{"records":["abc]}`, `{"records":[NaN]}`,
		`{'records':[]}`, "\xef\xbb\xbf" + `{"records":[]}`, `{"records":[nul]}`, `{"records" []}`, `{"records":[] "next_cursor":null}`,
		`{records:[]}`, `{"records":[],"a":tru}`, `{"records":[],"a":"\`, `{"records":[{"a":1 "b":2}]}`,
		// Nesting: encoding/json allows 10000 levels; the page and its records array are two.
		`{"records":[],"x":` + nested(9999) + `}`, `{"records":[],"x":` + nested(10000) + `}`,
		`{"records":[` + nested(9998) + `]}`, `{"records":[` + nested(9999) + `]}`, `{"records":[{"a":` + nested(9997) + `}]}`,
		`{"records":[],"x":"` + strings.Repeat("[", 20000) + `"}`, `{"records":[],"x":` + nested(100000) + `}`,
		`{"records":[],"x":` + strings.Repeat("[", 100000) + `}`,
	}
}

// TestDecodePageMatchesEncodingJSON: the decoder accepts, rejects and reads every corner
// of the corpus as the encoding/json decoder it replaced did.
func TestDecodePageMatchesEncodingJSON(t *testing.T) {
	for _, body := range decodeCorpus() {
		sameDecoding(t, []byte(body))
	}
}

func FuzzDecodePage(f *testing.F) {
	for _, body := range decodeCorpus() {
		// The deep nesting cases would make the fuzzer spend its time minimising them.
		if len(body) < 1<<10 {
			f.Add([]byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) { sameDecoding(t, body) })
}

func TestDecodePageErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"records":[}`, "decode page: invalid character '}' looking for beginning of value"},
		{``, "decode page: unexpected end of JSON input"},
		{`{"records":[]} x`, "decode page: invalid character 'x' after top-level value"},
		{`{"records":[],"x":` + nested(10000) + `}`, "decode page: invalid character '[' exceeded max depth"},
		{`[]`, "decode page: answer is an array, not a JSON object"},
		{`"records"`, "decode page: answer is a string, not a JSON object"},
		{`{}`, `decode page: no "records" array`},
		{`null`, `decode page: no "records" array`},
		{`{"records":null}`, `decode page: no "records" array`},
		{`{"records":{}}`, `decode page: "records" is an object, not an array`},
		{`{"records":[],"next_cursor":5}`, `decode page: "next_cursor" is a number, not a string`},
		{page(rec(`"id":"a"`), `["records"]`), `decode page: record 1: record ["records"] is not a JSON object`},
		{page(rec(`"x":1`)), `decode page: record 0: record has no "id"`},
		{page(rec(`"id":true`)), `decode page: record 0: record id true is neither a string nor a number`},
		{page(`{"id":"a"}`), `decode page: record 0: record "a" has no _nango_metadata`},
		{page(`{"id":7,"_nango_metadata":{"cursor":5}}`), `decode page: record 0: record "7": decode _nango_metadata: cursor is a number, not a string`},
		{page(`{"id":"a","_nango_metadata":{}}`), `decode page: record 0: record "a": first_seen_at: not a timestamp: ""`},
	} {
		_, err := nango.DecodePage([]byte(tc.body))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%.60q:\n got %v\nwant %s", tc.body, err, tc.want)
		}
	}
}

// TestDecodePageSharesBody: records are slices of the answer, capped so that appending
// to one cannot overwrite the next.
func TestDecodePageSharesBody(t *testing.T) {
	body := []byte(page(rec(`"id":"a","s":"records [ ] {"`), rec(`"id":"b"`)))
	p, err := nango.DecodePage(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 2 || p.Records[0].ID != "a" || p.Records[1].ID != "b" || p.NextCursor != "Yw==" {
		t.Fatalf("%+v", p)
	}
	first, second := p.Records[0].Fields, string(p.Records[1].Fields)
	if cap(first) != len(first) || !strings.HasPrefix(string(first), `{"id":"a","s":"records [ ] {"`) || !strings.HasSuffix(string(first), `}}`) {
		t.Fatalf("fields %s (cap %d)", first, cap(first))
	}
	_ = append(first, ",garbage"...)
	if string(p.Records[1].Fields) != second || !json.Valid(body) {
		t.Fatal("appending to a record's fields overwrote the answer")
	}
}
