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
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

func TestNormalizePayload(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":"\u0000"}`, `{"a":"\ufffd"}`},
		{`{"a":"\\\u0000"}`, `{"a":"\\\ufffd"}`}, // an escaped backslash, then the escape
		{`{"a":"\\u0000"}`, `{"a":"\\u0000"}`},   // the text \u0000
		{`{"a":"\ud800"}`, `{"a":"\ufffd"}`},
		{`{"a":"\ud800\u0041"}`, `{"a":"\ufffd\u0041"}`},
		{`{"a":"\uDBFF\uDFFF"}`, `{"a":"\uDBFF\uDFFF"}`},
		{`{"a":"\udfff\ud800"}`, `{"a":"\ufffd\ufffd"}`},
		{"{\"a\":\"\xff\xfe\"}", "{\"a\":\"\uFFFD\uFFFD\"}"},
		{`{"a":"\n\"\/\u00e9"}`, `{"a":"\n\"\/\u00e9"}`},
	} {
		if got := string(normalizePayload([]byte(c.in))); got != c.want {
			t.Errorf("normalizePayload(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzNormalizePayload checks that any valid JSON comes out valid, as UTF-8, free of NUL,
// and unchanged by a second pass.
func FuzzNormalizePayload(f *testing.F) {
	for _, seed := range []string{`{"a":"\u0000\ud800\udc00\\u0000"}`, `{"a\\":[1e999999,"\"1e999999"]}`, `["\\\"",1e-99999]`, "{\"\xff\":[\"\\uD800\"]}", `{"a":1}`, `"\\\\\u0000"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !gjson.ValidBytes(in) {
			return
		}
		out := normalizePayload(bytes.Clone(in))
		if !utf8.Valid(out) || !gjson.ValidBytes(out) {
			t.Fatalf("normalizePayload(%q) = %q: not valid UTF-8 JSON", in, out)
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(out))
		d.UseNumber() // numbers beyond float64 are valid JSON
		if err := d.Decode(&v); err != nil {
			t.Fatalf("normalizePayload(%q) = %q: %v", in, out, err)
		}
		if holdsNUL(v) {
			t.Fatalf("normalizePayload(%q) = %q still holds a NUL", in, out)
		}
		// The walk that skips strings finds a number out of range exactly when one is there.
		if found, want := numberOutOfRange(out) != "", anyNumber(v, func(n json.Number) bool {
			return !numericFits([]byte(n))
		}); found != want {
			t.Fatalf("numberOutOfRange(%q) = %q, want one: %t", out, numberOutOfRange(out), want)
		}
		if again := normalizePayload(bytes.Clone(out)); !bytes.Equal(again, out) {
			t.Fatalf("normalizePayload is not idempotent: %q, then %q", out, again)
		}
	})
}

// holdsNUL tells whether a decoded JSON value has a NUL in a string or key.
func holdsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case []any:
		return slices.ContainsFunc(v, holdsNUL)
	case map[string]any:
		for k, e := range v {
			if strings.IndexByte(k, 0) >= 0 || holdsNUL(e) {
				return true
			}
		}
	}
	return false
}

// BenchmarkPreparePage measures what preparing a page costs a record of about 1 KiB.
func BenchmarkPreparePage(b *testing.B) {
	payload := []byte(`{"id":"12345","name":"Ada Lovelace","email":"ada@example.com","score":1234.5,` +
		`"tags":["a","b","c"],"address":{"street":"12 Example Road","city":"London","zip":"N1 9GU"},` +
		`"notes":"` + strings.Repeat("lorem ipsum dolor sit amet, ", 30) + `","escaped":"line\nbreak \u00e9"}`)
	records := make([]Record, 1000)
	for i := range records {
		records[i] = Record{ID: strconv.Itoa(i), Payload: payload, Action: ActionAdded}
	}
	key := Key{ProviderConfigKey: "p", ConnectionID: "c", Model: "M", Variant: "base"}
	b.SetBytes(int64(len(payload) * len(records)))
	for b.Loop() {
		if _, err := PreparePage(key, records); err != nil {
			b.Fatal(err)
		}
	}
}

// anyNumber tells whether a decoded JSON value holds a number for which f is true.
func anyNumber(v any, f func(json.Number) bool) bool {
	switch v := v.(type) {
	case json.Number:
		return f(v)
	case []any:
		return slices.ContainsFunc(v, func(e any) bool { return anyNumber(e, f) })
	case map[string]any:
		for _, e := range v {
			if anyNumber(e, f) {
				return true
			}
		}
	}
	return false
}

// TestPrepareAheadChangesNothing checks that records prepared ahead (sink.Prepare) make
// the same page as records that are not, quarantine included, and that a pruned version
// that takes an earlier version's payload is judged on that payload.
func TestPrepareAheadChangesNothing(t *testing.T) {
	key := Key{ProviderConfigKey: "p", ConnectionID: "c", Model: "m", Variant: "base"}
	at := time.Date(2026, 4, 14, 18, 46, 3, 123456789, time.FixedZone("x", 3600))
	records := []Record{
		{ID: "a", Payload: []byte(`{"n":1,"s":"\u0000"}`), Action: ActionAdded, FirstSeenAt: at, LastModifiedAt: at, Cursor: "1"},
		{ID: "nul\x00", Payload: []byte(`{"n":2}`), Action: ActionAdded, FirstSeenAt: at, LastModifiedAt: at, Cursor: "2"},
		{ID: "big", Payload: []byte(`{"n":1e999999999999}`), Action: ActionAdded, FirstSeenAt: at, LastModifiedAt: at, Cursor: "3"},
		{ID: "big", Pruned: true, Action: ActionUpdated, FirstSeenAt: at, LastModifiedAt: at.Add(time.Second), Cursor: "4"},
		{ID: "d", Action: ActionDeleted, FirstSeenAt: at, LastModifiedAt: at, Cursor: "5"},
	}
	want, err := PreparePage(key, slices.Clone(records))
	if err != nil {
		t.Fatal(err)
	}
	ahead := slices.Clone(records)
	Prepare(ahead)
	got, err := PreparePage(key, ahead)
	if err != nil {
		t.Fatal(err)
	}
	strip := func(p PreparedPage) PreparedPage { // the bookkeeping fields aside
		for i := range p.Records {
			p.Records[i].prepared, p.Records[i].unstorable = false, ""
		}
		for i := range p.Quarantined {
			p.Quarantined[i].prepared, p.Quarantined[i].unstorable = false, ""
		}
		return p
	}
	if g, w := strip(got), strip(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("prepared ahead:\n%+v\nwant\n%+v", g, w)
	}
	if len(want.Quarantined) != 2 || want.Quarantined[1].ID != "big" {
		t.Fatalf("quarantined = %+v, want nul\\x00 and big (its pruned version keeps the payload)", want.Quarantined)
	}

	bad := []Record{{ID: "x", Payload: []byte(`{`), Action: ActionAdded, FirstSeenAt: at, LastModifiedAt: at}}
	Prepare(bad)
	if _, err := PreparePage(key, bad); err == nil {
		t.Fatal("a payload that is not JSON was accepted after Prepare")
	}
}
