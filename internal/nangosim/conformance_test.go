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

package nangosim_test

// One test per row of the tables in docs/nango-api.md for the parts the
// emulator serves, run against the emulator through the client (and by hand
// where the client would never send such a request).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// --- query parameters ------------------------------------------------------

func TestParamModel(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	for _, tc := range []struct {
		query string
		ok    bool
	}{
		{"", false},                                   // required
		{"model=contact", false},                      // must start upper-case
		{"model=C", false},                            // at least two characters
		{"model=Co_n-t4ct", true},                     // letters, digits, _ and -
		{"model=Con.tact", false},                     // no dots
		{"model=C" + strings.Repeat("a", 254), true},  // 255 characters
		{"model=C" + strings.Repeat("a", 255), false}, // 256 characters
		{"model=Contact&model=Contact", false},        // not an array
	} {
		status, _, body := h.raw("GET", "/records?"+tc.query, nil, "")
		if tc.ok != (status == http.StatusOK) {
			t.Errorf("%.40s: status %d: %s", tc.query, status, body)
			continue
		}
		if !tc.ok {
			code, paths, _ := errorCode(t, body)
			if status != 400 || code != "invalid_query_params" || !slices.Contains(paths, "[model]") {
				t.Errorf("%.40s: got %d %s %v", tc.query, status, code, paths)
			}
		}
	}
	// Through the client: a bad model is our bug, with Nango's issue attached.
	req := h.req()
	req.Model = "contact"
	_, err := h.client.ListRecords(context.Background(), req)
	var e *nango.Error
	if !asError(err, &e) || e.Kind != nango.KindInvalidRequest || e.Code != "invalid_query_params" || len(e.Issues) != 1 {
		t.Fatalf("bad model: %v", err)
	}
}

func TestParamVariant(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	h.upsert(h.ref, `{"id":"base-1"}`)
	v2 := h.ref
	v2.Variant = "v2"
	h.upsert(v2, `{"id":"v2-1"}`)

	for _, tc := range []struct {
		variant string
		want    []string
	}{{"", []string{"base-1"}}, {"base", []string{"base-1"}}, {"v2", []string{"v2-1"}}, {"other", nil}} {
		req := h.req()
		req.Variant = tc.variant
		if got := ids(h.list(req).Records); !slices.Equal(got, tc.want) && (len(got) != 0 || tc.want != nil) {
			t.Errorf("variant %q: got %v, want %v", tc.variant, got, tc.want)
		}
	}
	status, _, body := h.raw("GET", "/records?model=Contact&variant=a+b", nil, "")
	if code, paths, _ := errorCode(t, body); status != 400 || code != "invalid_query_params" || paths[0] != "[variant]" {
		t.Fatalf("bad variant: %d %s", status, body)
	}
}

func TestParamModifiedAfter(t *testing.T) {
	clock := &fakeClock{t: epoch}
	h := newHarness(t, nangosim.Options{Now: clock.Now})
	h.upsert(h.ref, `{"id":"old"}`)
	clock.Set(epoch.Add(time.Hour)) // 19:46:03.097459
	h.upsert(h.ref, `{"id":"new"}`)

	// Inclusive, with millisecond precision: .097Z keeps a record at .097459.
	req := h.req()
	req.ModifiedAfter = epoch.Add(time.Hour).Truncate(time.Millisecond)
	if got := ids(h.list(req).Records); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("modified_after inclusive: got %v", got)
	}
	req.ModifiedAfter = epoch.Add(time.Hour + time.Millisecond)
	if got := h.list(req).Records; len(got) != 0 {
		t.Fatalf("modified_after after the last record: got %v", ids(got))
	}

	// Older than 365 days: 400 "must be within the last 12 months".
	req.ModifiedAfter = epoch.Add(-366 * 24 * time.Hour)
	_, err := h.client.ListRecords(context.Background(), req)
	var e *nango.Error
	if !asError(err, &e) || e.Kind != nango.KindInvalidRequest || len(e.Issues) != 1 || e.Issues[0].Message != "must be within the last 12 months" {
		t.Fatalf("365-day rule: %v", err)
	}

	for _, tc := range []struct {
		query string
		want  int // status
		ids   []string
	}{
		{"modified_after=2026-04-14T19:46:03Z", 200, []string{"new"}},
		{"modified_after=2026-04-14T19:46:03.097Z", 200, []string{"new"}},
		{"modified_after=2026-04-14T19:46:03%2B00:00", 400, nil}, // offsets are refused: Z is the safe form
		{"modified_after=yesterday", 400, nil},
		// delta is the deprecated alias and wins when both are sent.
		{"delta=2026-04-14T18:00:00Z&modified_after=2026-04-14T19:46:04Z", 200, []string{"old", "new"}},
		{"delta=2026-04-14T19:46:04Z&modified_after=2026-04-14T18:00:00Z", 200, nil},
	} {
		status, _, body := h.raw("GET", "/records?model=Contact&"+tc.query, nil, "")
		if status != tc.want {
			t.Errorf("%s: status %d: %s", tc.query, status, body)
			continue
		}
		if status == 200 {
			if got := idsOf(t, body); !slices.Equal(got, tc.ids) && (len(got) != 0 || tc.ids != nil) {
				t.Errorf("%s: got %v, want %v", tc.query, got, tc.ids)
			}
		}
	}
}

func TestParamLimit(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	h.seed(150)
	page := h.list(h.req())
	if len(page.Records) != 100 || page.NextCursor == "" {
		t.Fatalf("default limit: %d records, next %q", len(page.Records), page.NextCursor)
	}
	for _, tc := range []struct {
		limit string
		want  int // status
		n     int
	}{
		{"1", 200, 1}, {"10000", 200, 150}, {"0", 400, 0}, {"10001", 400, 0}, {"-1", 400, 0},
		{"abc", 400, 0}, {"", 400, 0},
		// Number("1.5") is 1.5: Nango fetches round(2.5)=3 rows, drops one.
		{"1.5", 200, 2},
	} {
		status, _, body := h.raw("GET", "/records?model=Contact&limit="+tc.limit, nil, "")
		if status != tc.want {
			t.Errorf("limit=%s: status %d: %s", tc.limit, status, body)
			continue
		}
		if status == 200 && len(idsOf(t, body)) != tc.n {
			t.Errorf("limit=%s: %d records, want %d", tc.limit, len(idsOf(t, body)), tc.n)
		}
		if status == 400 {
			if code, paths, _ := errorCode(t, body); code != "invalid_query_params" || paths[0] != "[limit]" {
				t.Errorf("limit=%s: %s", tc.limit, body)
			}
		}
	}
}

func TestParamCursorBounds(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	for _, q := range []string{"cursor=", "cursor=" + strings.Repeat("A", 1001)} {
		status, _, body := h.raw("GET", "/records?model=Contact&"+q, nil, "")
		if code, paths, _ := errorCode(t, body); status != 400 || code != "invalid_query_params" || paths[0] != "[cursor]" {
			t.Errorf("%.20s: %d %s", q, status, body)
		}
	}
}

func TestParamIDs(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	h.seed(20)
	req := h.req()
	req.IDs = []string{"rec-7", "rec-3", "missing", "rec-3"}
	got := ids(h.list(req).Records)
	slices.Sort(got)
	if !slices.Equal(got, []string{"rec-3", "rec-7"}) {
		t.Fatalf("ids: got %v", got)
	}
	many := "/records?model=Contact" + strings.Repeat("&ids=x", 101)
	if status, _, body := h.raw("GET", many, nil, ""); status != 400 || !strings.Contains(body, `"path":["ids"]`) {
		t.Fatalf("101 ids: %d %s", status, body)
	}
	if status, _, body := h.raw("GET", "/records?model=Contact&ids="+strings.Repeat("x", 257), nil, ""); status != 400 {
		t.Fatalf("long id: %d %s", status, body)
	}
	if status, _, body := h.raw("GET", "/records?model=Contact&ids=rec-1", nil, ""); status != 200 || !slices.Equal(idsOf(t, body), []string{"rec-1"}) {
		t.Fatalf("single id: %d %s", status, body)
	}
}

func TestParamUnknownIsRejected(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	status, _, body := h.raw("GET", "/records?model=Contact&cusor=abc", nil, "")
	code, _, issueCodes := errorCode(t, body)
	if status != 400 || code != "invalid_query_params" || !slices.Equal(issueCodes, []string{"unrecognized_keys"}) {
		t.Fatalf("unknown param: %d %s", status, body)
	}
}

// --- filters ---------------------------------------------------------------

func TestFilterTable(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	h.upsert(h.ref, `{"id":"added"}`, `{"id":"updated","v":1}`, `{"id":"deleted"}`)
	h.upsert(h.ref, `{"id":"updated","v":2}`)
	if _, err := h.sim.DeleteRecords(h.ref, []string{"deleted"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"", []string{"added", "updated", "deleted"}},
		{"added", []string{"added"}},
		{"ADDED", []string{"added"}},
		{"updated", []string{"updated"}},
		{"deleted", []string{"deleted"}},
		{"added,updated", []string{"added", "updated"}},
		{"updated,deleted", []string{"updated"}}, // deleted rows are NOT returned
		{"added,deleted", []string{"added"}},
		{"Added", nil}, // not one of the accepted spellings: 400
	} {
		req := h.req()
		req.Filter = tc.filter
		page, err := h.client.ListRecords(context.Background(), req)
		if tc.want == nil {
			if e := (*nango.Error)(nil); !errors.As(err, &e) || e.Kind != nango.KindInvalidRequest {
				t.Errorf("filter %q: want invalid request, got %v", tc.filter, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("filter %q: %v", tc.filter, err)
		}
		got := ids(page.Records)
		slices.Sort(got)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("filter %q: got %v, want %v", tc.filter, got, want)
		}
	}
}

// --- headers and errors ----------------------------------------------------

func TestErrorTable(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	h.upsert(h.ref, `{"id":"1"}`)
	unknownKey := "00000000-0000-4000-8000-000000000000"
	for _, tc := range []struct {
		name   string
		query  string
		header map[string]string
		status int
		body   string // exact, when set
		code   string
	}{
		{name: "missing Connection-Id", header: map[string]string{"Connection-Id": ""}, status: 400, code: "invalid_headers"},
		{name: "missing Provider-Config-Key", header: map[string]string{"Provider-Config-Key": ""}, status: 400, code: "invalid_headers"},
		{name: "bad Connection-Id", header: map[string]string{"Connection-Id": "a<b>"}, status: 400, code: "invalid_headers"},
		{name: "unknown connection", header: map[string]string{"Connection-Id": "nobody"}, status: 400,
			body: `{"error":{"code":"unknown_connection","message":"Provided ConnectionId and ProviderConfigKey does not match a valid connection"}}`},
		{name: "unknown integration", header: map[string]string{"Provider-Config-Key": "salesforce"}, status: 400, code: "unknown_connection"},
		{name: "unknown model", query: "model=Company", status: 200, body: `{"records":[],"next_cursor":null}`},
		{name: "malformed cursor", query: "model=Contact&cursor=bm90LWEtY3Vyc29y", status: 500,
			body: `{"error":{"code":"server_error","message":"Failed to fetch records"}}`},
		{name: "malformed cursor, unknown model", query: "model=Company&cursor=xyz", status: 500, code: "server_error"},
		{name: "no key", header: map[string]string{"Authorization": ""}, status: 401, code: "missing_auth_header"},
		{name: "not bearer", header: map[string]string{"Authorization": "Token " + unknownKey}, status: 401, code: "malformed_auth_header"},
		{name: "not a uuid", header: map[string]string{"Authorization": "Bearer sk-123"}, status: 401, code: "invalid_secret_key_format"},
		{name: "unknown key", header: map[string]string{"Authorization": "Bearer " + unknownKey}, status: 401, code: "unknown_account"},
		{name: "content type", header: map[string]string{"Content-Type": "text/plain"}, status: 415, code: "invalid_content_type"},
		{name: "json content type", header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, status: 200},
		{name: "node sdk headers", header: map[string]string{"Nango-Is-Sync": "false", "Nango-Is-Script": "false", "Nango-Is-Dry-Run": "false"}, status: 200},
	} {
		q := tc.query
		if q == "" {
			q = "model=Contact"
		}
		status, _, body := h.raw("GET", "/records?"+q, tc.header, "")
		if status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, status, tc.status, body)
			continue
		}
		if tc.body != "" {
			mustJSONEqual(t, body, tc.body)
		}
		if tc.code != "" {
			if code, _, _ := errorCode(t, body); code != tc.code {
				t.Errorf("%s: code %q, want %q", tc.name, code, tc.code)
			}
		}
		if strings.Contains(body, h.env.SecretKey) || strings.Contains(body, unknownKey) {
			t.Errorf("%s: answer echoes a key", tc.name)
		}
	}
	// 401 bodies carry an empty payload object.
	_, _, body := h.raw("GET", "/records?model=Contact", map[string]string{"Authorization": ""}, "")
	if !strings.Contains(body, `"payload":{}`) {
		t.Errorf("401 body lacks payload: %s", body)
	}
	// The trailing-slash route (used by the Node SDK) is the same endpoint.
	if status, _, body := h.raw("GET", "/records/?model=Contact", nil, ""); status != 200 || !slices.Equal(idsOf(t, body), []string{"1"}) {
		t.Errorf("/records/: %d %s", status, body)
	}
}

func TestErrorKindsThroughClient(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	ctx := context.Background()

	req := h.req()
	req.ConnectionID = "nobody"
	_, err := h.client.ListRecords(ctx, req)
	if e := mustKind(t, err, nango.KindUnknownConnection); e.Status != 400 || e.Code != "unknown_connection" || e.Message == "" {
		t.Errorf("unknown connection: %+v", e)
	}

	req = h.req()
	req.Model = "Company"
	if page := h.list(req); len(page.Records) != 0 || page.NextCursor != "" {
		t.Errorf("unknown model: %+v", page)
	}

	bad, _ := nango.NewClient(h.srv.URL, "00000000-0000-4000-8000-000000000000")
	_, err = bad.ListRecords(ctx, h.req())
	if e := mustKind(t, err, nango.KindUnauthorized); e.Code != "unknown_account" || strings.Contains(err.Error(), "00000000-0000-4000") {
		t.Errorf("unknown key: %v", err)
	}

	if err := h.sim.SetScopes("", []string{"environment:syncs:read"}); err != nil {
		t.Fatal(err)
	}
	_, err = h.client.ListRecords(ctx, h.req())
	if e := mustKind(t, err, nango.KindForbidden); e.Status != 403 || e.Message != "Insufficient scope. Required: environment:records:read" {
		t.Errorf("forbidden: %+v", e)
	}
}

func TestErrorRateLimited(t *testing.T) {
	h := newHarness(t, nangosim.Options{Now: time.Now, RateLimit: nangosim.RateLimit{Limit: 2, Window: 30 * time.Second}})
	for i := 0; i < 2; i++ {
		status, hdr, body := h.raw("GET", "/records?model=Contact", nil, "")
		if status != 200 || hdr.Get("X-RateLimit-Limit") != "2" || hdr.Get("X-RateLimit-Remaining") != fmt.Sprint(1-i) || hdr.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("request %d: %d %v %s", i, status, hdr, body)
		}
	}
	status, hdr, body := h.raw("GET", "/records/?model=Contact", nil, "")
	if status != 429 {
		t.Fatalf("third request: %d %s", status, body)
	}
	mustJSONEqual(t, body, `{"error":{"code":"too_many_request","method":"GET","path":"/records/"}}`)
	if ra := hdr.Get("Retry-After"); ra != "30" && ra != "29" {
		t.Errorf("Retry-After %q", ra)
	}
	// Errors of authenticated requests carry the headers too.
	if _, hdr, _ := h.raw("GET", "/records?model=Contact", map[string]string{"Connection-Id": ""}, ""); hdr.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("400 without rate limit headers: %v", hdr)
	}
	// The client (with a 1 s bound on waiting) reports the wait.
	c, _ := nango.NewClient(h.srv.URL, h.env.SecretKey, nango.WithMaxRateLimitWait(time.Second))
	_, err := c.ListRecords(context.Background(), h.req())
	if e := mustKind(t, err, nango.KindRateLimited); e.RetryAfter < 29*time.Second || e.Code != "too_many_request" {
		t.Errorf("rate limited: %+v", e)
	}
	if nango.IsTerminal(err) {
		t.Error("rate limit is terminal")
	}
}

// --- records, metadata and cursors ----------------------------------------

func TestCursorOrderAndFormat(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	// One batch shares a timestamp: its records are ordered by internal UUID.
	h.seed(50)
	recs, pages := h.listAll(withLimit(h.req(), 7))
	if len(recs) != 50 || pages != 8 {
		t.Fatalf("got %d records in %d pages", len(recs), pages)
	}
	pattern := regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?\+00:00)\|\|([0-9a-f-]{36})$`)
	type key struct {
		ts time.Time
		id string
	}
	var prev key
	for i, r := range recs {
		raw, err := base64.StdEncoding.DecodeString(r.Metadata.Cursor)
		if err != nil {
			t.Fatalf("cursor %d is not standard base64: %v", i, err)
		}
		m := pattern.FindStringSubmatch(string(raw))
		if m == nil {
			t.Fatalf("cursor %d decodes to %q", i, raw)
		}
		var md struct {
			LastModifiedAt string `json:"last_modified_at"`
		}
		if err := json.Unmarshal(metadataOf(t, r), &md); err != nil || md.LastModifiedAt != m[1] {
			t.Fatalf("cursor %d timestamp %q != last_modified_at %q", i, m[1], md.LastModifiedAt)
		}
		k := key{r.Metadata.LastModifiedAt, m[3]}
		if i > 0 && (k.ts.Before(prev.ts) || k.ts.Equal(prev.ts) && k.id <= prev.id) {
			t.Fatalf("record %d out of order: %v after %v", i, k, prev)
		}
		prev = k
	}
	// next_cursor is the last record's cursor, and it is exclusive.
	page := h.list(withLimit(h.req(), 10))
	if page.NextCursor != page.Records[9].Metadata.Cursor {
		t.Fatal("next_cursor is not the last record's cursor")
	}
	req := withLimit(h.req(), 1)
	req.Cursor = page.Records[4].Metadata.Cursor
	if got := h.list(req).Records[0].ID; got != page.Records[5].ID {
		t.Fatalf("cursor not exclusive: got %s, want %s", got, page.Records[5].ID)
	}
	// The last page has next_cursor null; so does an answer past the end.
	req = withLimit(h.req(), 50)
	if p := h.list(req); p.NextCursor != "" {
		t.Fatal("next_cursor set on the last page")
	}
	status, _, body := h.raw("GET", "/records?model=Contact&cursor="+url.QueryEscape(recs[49].Metadata.Cursor), nil, "")
	if status != 200 {
		t.Fatal(status)
	}
	mustJSONEqual(t, body, `{"records":[],"next_cursor":null}`)
}

func TestMetadataRules(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 4, 14, 18, 46, 3, 0, time.UTC)}
	h := newHarness(t, nangosim.Options{Now: clock.Now})
	h.upsert(h.ref, `{"id":"a","n":1}`, `{"id":"b","n":1}`)
	clock.Set(clock.t.Add(1500 * time.Microsecond))
	res := h.upsert(h.ref, `{"id":"a","n":2}`, `{"id":"b","n":1}`) // b unchanged
	if res != (nangosim.Results{Updated: 1}) {
		t.Fatalf("upsert results %+v", res)
	}
	if _, err := h.sim.DeleteRecords(h.ref, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	recs, _ := h.listAll(h.req())
	byID := map[string]nango.Record{}
	for _, r := range recs {
		byID[r.ID] = r
	}
	a, b := byID["a"], byID["b"]
	if a.Metadata.LastAction != nango.ActionUpdated || !a.Metadata.LastModifiedAt.After(a.Metadata.FirstSeenAt) || a.Deleted() {
		t.Errorf("a: %+v", a.Metadata)
	}
	if b.Metadata.LastAction != nango.ActionDeleted || b.Metadata.DeletedAt == nil || !b.Metadata.DeletedAt.Equal(b.Metadata.LastModifiedAt) {
		t.Errorf("b: %+v", b.Metadata)
	}
	if !strings.Contains(string(b.Fields), `"n":1`) {
		t.Errorf("deleted record lost its payload: %s", b.Fields)
	}
	// Timestamps: Postgres style, trailing zeros of the fraction trimmed.
	md := string(metadataOf(t, a))
	if !strings.Contains(md, `"first_seen_at":"2026-04-14T18:46:03+00:00"`) || !strings.Contains(md, `"last_modified_at":"2026-04-14T18:46:03.0015+00:00"`) {
		t.Errorf("timestamps: %s", md)
	}
	// A deleted record that comes back is ADDED again.
	h.upsert(h.ref, `{"id":"b","n":3}`)
	req := h.req()
	req.IDs = []string{"b"}
	if r := h.list(req).Records[0]; r.Metadata.LastAction != nango.ActionAdded || r.Deleted() || !r.Metadata.FirstSeenAt.Equal(r.Metadata.LastModifiedAt) {
		t.Errorf("undeleted b: %+v", r.Metadata)
	}
	// Records hard-deleted by retention simply vanish.
	if n, _ := h.sim.HardDeleteRecords(h.ref, []string{"a"}); n != 1 {
		t.Fatal("hard delete")
	}
	if recs, _ := h.listAll(h.req()); !slices.Equal(ids(recs), []string{"b"}) {
		t.Errorf("after hard delete: %v", ids(recs))
	}
}

func TestRecordSeenTwiceWhileUpdated(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	h.upsert(h.ref, `{"id":"a"}`, `{"id":"b"}`, `{"id":"c"}`)
	first := h.list(withLimit(h.req(), 2))
	h.upsert(h.ref, fmt.Sprintf(`{"id":%q,"v":2}`, first.Records[0].ID))
	req := withLimit(h.req(), 10)
	req.Cursor = first.NextCursor
	rest := h.list(req)
	if len(rest.Records) != 2 || rest.Records[1].ID != first.Records[0].ID {
		t.Fatalf("updated record not seen again: %v then %v", ids(first.Records), ids(rest.Records))
	}
}

func TestFieldsKeptRaw(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	h.upsert(h.ref, `{"name":"Ada","id":42,"big":12345678901234567890123,"f":1.10,"nil":null,"nested":{"z":[1,{"y":null}]},"html":"<a&b>"}`)
	r := h.list(h.req()).Records[0]
	if r.ID != "42" {
		t.Fatalf("id %q", r.ID)
	}
	want := `{"name":"Ada","id":"42","big":12345678901234567890123,"f":1.10,"nil":null,"nested":{"z":[1,{"y":null}]},"html":"<a&b>","_nango_metadata":`
	if !strings.HasPrefix(string(r.Fields), want) {
		t.Fatalf("fields\n got %s\nwant prefix %s", r.Fields, want)
	}
}

func TestShortPages(t *testing.T) {
	h := newHarness(t, nangosim.Options{MaxPageBytes: 1200})
	h.seed(30)
	page := h.list(withLimit(h.req(), 25))
	if len(page.Records) >= 25 || len(page.Records) == 0 || page.NextCursor == "" {
		t.Fatalf("want a short page with next_cursor: %d records, next %q", len(page.Records), page.NextCursor)
	}
	recs, pages := h.listAll(withLimit(h.req(), 25))
	if len(recs) != 30 || pages < 3 {
		t.Fatalf("paging over short pages: %d records in %d pages", len(recs), pages)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.ID] {
			t.Fatalf("duplicate %s", r.ID)
		}
		seen[r.ID] = true
	}
	// A budget-truncated page sets next_cursor even when nothing follows; the
	// next page is then empty with next_cursor null.
	h.sim.SetMaxPageBytes(1)
	req := withLimit(h.req(), 5)
	req.Cursor = recs[28].Metadata.Cursor
	last := h.list(req)
	if len(last.Records) != 1 || last.NextCursor == "" {
		t.Fatalf("truncated last page: %d records, next %q", len(last.Records), last.NextCursor)
	}
	req.Cursor = last.NextCursor
	if end := h.list(req); len(end.Records) != 0 || end.NextCursor != "" {
		t.Fatalf("after the end: %+v", end)
	}
}

func TestPrunedRecords(t *testing.T) {
	clock := &fakeClock{t: epoch}
	h := newHarness(t, nangosim.Options{Now: clock.Now})
	h.upsert(h.ref, `{"id":"a","email":"a@x"}`, `{"id":"b","email":"b@x"}`)
	before := h.list(h.req()).Records
	clock.Set(epoch.Add(24 * time.Hour))
	if n, err := h.sim.PruneUntilCursor(h.ref, before[0].Metadata.Cursor); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	after := h.list(h.req()).Records
	p := after[0]
	if !p.Pruned() || p.ID != before[0].ID || !p.Metadata.LastModifiedAt.Equal(before[0].Metadata.LastModifiedAt) || p.Metadata.Cursor != before[0].Metadata.Cursor {
		t.Fatalf("pruned record: %+v", p.Metadata)
	}
	if !p.Metadata.PrunedAt.Equal(epoch.Add(24 * time.Hour)) {
		t.Errorf("pruned_at %v", p.Metadata.PrunedAt)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(p.Fields, &fields); err != nil {
		t.Fatal(err)
	}
	if len(fields) != 2 || fields["id"] == nil || fields["_nango_metadata"] == nil {
		t.Fatalf("pruned record has a payload: %s", p.Fields)
	}
	if after[1].Pruned() || !strings.Contains(string(after[1].Fields), `"email"`) {
		t.Fatalf("unpruned record changed: %s", after[1].Fields)
	}
	// Re-reading from an old cursor still returns the pruned record.
	if n, _ := h.sim.PruneRecords(h.ref, []string{before[1].ID}); n != 1 {
		t.Fatal("prune by id")
	}
	req := h.req()
	req.Cursor = before[0].Metadata.Cursor
	if r := h.list(req).Records; len(r) != 1 || !r[0].Pruned() {
		t.Fatalf("from old cursor: %+v", r)
	}
}

func TestInvalidCursorThroughClient(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	h.seed(3)
	before := h.sim.Stats().RecordsRequests
	req := h.req()
	req.Cursor = base64.StdEncoding.EncodeToString([]byte("not-a-cursor"))
	_, err := h.client.ListRecords(context.Background(), req)
	if e := mustKind(t, err, nango.KindInvalidCursor); e.Status != 500 || e.Code != "server_error" {
		t.Fatalf("malformed cursor: %+v", e)
	}
	if n := h.sim.Stats().RecordsRequests - before; n != 1 {
		t.Errorf("malformed cursor cost %d requests, want 1 (no loop)", n)
	}
	if !nango.IsTerminal(err) {
		t.Error("invalid cursor must be terminal")
	}
}

// --- webhooks --------------------------------------------------------------

func TestSyncWebhookSignatures(t *testing.T) {
	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 10)
	fail := make(chan int, 10)
	receiver := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		b := readAll(t, r)
		got <- delivery{r.Header.Clone(), b}
		select {
		case status := <-fail:
			w.WriteHeader(status)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	h := newHarness(t, nangosim.Options{WebhookURL: receiver.URL, WebhookRetryWaits: []time.Duration{time.Millisecond, time.Millisecond}})
	h.upsert(h.ref, `{"id":"1"}`, `{"id":"2"}`)
	h.upsert(h.ref, `{"id":"1","x":"<&>"}`)

	d, err := h.sim.SendSyncWebhook(context.Background(), nangosim.SyncWebhook{ModelRef: h.ref, SyncName: "contacts"})
	if err != nil || d.Attempts != 1 {
		t.Fatalf("send: %v %+v", err, d)
	}
	dl := <-got
	body := string(dl.body)
	want := `{"checkpoints":{"from":{},"to":{}},"connectionId":"acme-corp","from":"nango","model":"Contact",` +
		`"modifiedAfter":"2026-04-14T18:46:03.097Z","providerConfigKey":"hubspot","queryTimeStamp":"2026-04-14T18:46:03.097Z",` +
		`"responseResults":{"added":2,"deleted":0,"updated":1},"success":true,"syncName":"contacts","syncType":"INCREMENTAL",` +
		`"syncVariant":"base","type":"sync"}`
	if body != want {
		t.Fatalf("webhook body\n got %s\nwant %s", body, want)
	}
	key := h.env.SigningKey
	// The emulator signs as Nango does (computed here on their own), and the operator's
	// reader verifies its headers, also with a rotated-out key beside the current one.
	if dl.header.Get(nango.HeaderWebhookHMAC) != hmacHex(key, dl.body) || dl.header.Get(nango.HeaderWebhookLegacy) != sha256Hex(key+body) {
		t.Fatal("signatures are not HMAC-SHA256 / SHA-256(key+body)")
	}
	sigs := nango.WebhookSignaturesOf(dl.header, false)
	if !sigs.Verify(dl.body, "old-key", key) || sigs.Verify(dl.body, "old-key") {
		t.Fatal("the HMAC signature does not verify with exactly the signing key")
	}
	legacy := nango.WebhookSignatures{Legacy: strings.ToUpper(dl.header.Get(nango.HeaderWebhookLegacy))}
	if !legacy.Verify(dl.body, key) {
		t.Fatal("the legacy signature does not verify")
	}
	if strings.Contains(body, key) {
		t.Fatal("body contains the signing key")
	}

	// Counts reset after a webhook; 5xx is retried, 4xx (429 included) is not.
	fail <- 503
	d, err = h.sim.SendSyncWebhook(context.Background(), nangosim.SyncWebhook{ModelRef: h.ref, SyncName: "contacts"})
	if err != nil || d.Attempts != 2 || d.StatusCode != 200 || !strings.Contains(string(d.Body), `"responseResults":{"added":0,"deleted":0,"updated":0}`) {
		t.Fatalf("retry on 503: %v %+v %s", err, d, d.Body)
	}
	<-got
	<-got
	fail <- 429
	if d, err := h.sim.SendWebhook(context.Background(), "", map[string]any{"type": "auth", "from": "nango"}); err != nil || d.Attempts != 1 || d.StatusCode != 429 {
		t.Fatalf("429 must be final: %v %+v", err, d)
	}
	<-got
	for range 3 {
		fail <- 500
	}
	if d, err := h.sim.SendWebhook(context.Background(), "", map[string]any{"type": "unknown-type"}); err == nil || d.Attempts != 3 {
		t.Fatalf("at most 3 attempts: %v %+v", err, d)
	}
}

// --- sync control ----------------------------------------------------------

func TestSyncTriggerAndStatus(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	ctx := context.Background()
	if err := h.sim.CreateSync(nangosim.SyncSpec{ProviderConfigKey: "hubspot", Name: "contacts", Models: []string{"Contact"}}); err != nil {
		t.Fatal(err)
	}
	h.seed(5)
	err := h.client.TriggerSync(ctx, nango.TriggerSyncRequest{ProviderConfigKey: "hubspot", ConnectionID: "acme-corp", Syncs: []nango.SyncRef{{Name: "contacts"}}, Reset: true})
	if err != nil {
		t.Fatal(err)
	}
	tr := h.sim.Triggers()
	if len(tr) != 1 || !tr[0].Reset || tr[0].ConnectionID != "acme-corp" || !slices.Equal(tr[0].Syncs, []string{"contacts"}) {
		t.Fatalf("triggers: %+v", tr)
	}
	st, err := h.client.SyncStatus(ctx, nango.SyncStatusRequest{ProviderConfigKey: "hubspot", ConnectionID: "acme-corp", Syncs: []string{"contacts"}})
	if err != nil || len(st) != 1 || st[0].Status != "SUCCESS" || st[0].RecordCount["Contact"] != 5 || st[0].FinishedAt == nil || st[0].Variant != "base" {
		t.Fatalf("status: %v %+v", err, st)
	}
	for _, tc := range []struct {
		req  nango.TriggerSyncRequest
		kind nango.Kind
		code string
	}{
		{nango.TriggerSyncRequest{ProviderConfigKey: "nope", Syncs: []nango.SyncRef{{Name: "contacts"}}}, nango.KindUnknownConnection, "unknown_provider_config"},
		{nango.TriggerSyncRequest{ProviderConfigKey: "hubspot", ConnectionID: "nobody", Syncs: []nango.SyncRef{{Name: "contacts"}}}, nango.KindUnknownConnection, "unknown_connection"},
		{nango.TriggerSyncRequest{ProviderConfigKey: "hubspot", Syncs: []nango.SyncRef{{Name: "deals"}}}, nango.KindInvalidRequest, "no_syncs_found"},
	} {
		err := h.client.TriggerSync(ctx, tc.req)
		if e := mustKind(t, err, tc.kind); e.Code != tc.code {
			t.Errorf("%+v: code %q", tc.req, e.Code)
		}
	}
	status, _, body := h.raw("POST", "/sync/trigger", map[string]string{"Content-Type": "application/json"}, `{"syncs":["contacts"]}`)
	if code, _, _ := errorCode(t, body); status != 400 || code != "missing_provider_config_key" {
		t.Errorf("missing key: %d %s", status, body)
	}
	status, _, body = h.raw("POST", "/sync/trigger", map[string]string{"Content-Type": "application/json"}, `{"syncs":["contacts"],"provider_config_key":"hubspot","connection_id":"nobody"}`)
	if status != 404 {
		t.Errorf("unknown connection: %d %s", status, body)
	}
}

// --- control API over HTTP -------------------------------------------------

func TestControlHTTP(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	post := func(path, body string) string {
		t.Helper()
		status, _, out := h.raw("POST", path, nil, body)
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, out)
		}
		return out
	}
	post("/_sim/connections", `{"provider_config_key":"github","connection_id":"octo"}`)
	ref := `"provider_config_key":"github","connection_id":"octo","model":"Issue"`
	post("/_sim/records/upsert", `{`+ref+`,"records":[{"id":"1","title":"a"},{"id":"2"}]}`)
	post("/_sim/records/seed", `{`+ref+`,"count":10,"id_prefix":"s-"}`)
	if out := post("/_sim/records/delete", `{`+ref+`,"ids":["1"]}`); !strings.Contains(out, `"count":1`) {
		t.Fatal(out)
	}
	post("/_sim/records/prune", `{`+ref+`,"ids":["2"]}`)
	req := nango.ListRecordsRequest{ConnectionID: "octo", ProviderConfigKey: "github", Model: "Issue"}
	recs, _ := h.listAll(req)
	if len(recs) != 12 || !recs[len(recs)-1].Deleted() {
		t.Fatalf("control-made records: %v", ids(recs))
	}
	if status, _, out := h.raw("PUT", "/_sim/faults", nil, `{"server_error_rate":1,"count":1}`); status != 200 {
		t.Fatal(out)
	}
	_, err := h.client.ListRecords(context.Background(), req)
	_ = mustKind(t, err, nango.KindServerError) // the injected fault
	if _, err := h.client.ListRecords(context.Background(), req); err != nil {
		t.Fatalf("fault did not clear after count: %v", err)
	}
	status, _, out := h.raw("GET", "/_sim/stats", nil, "")
	if status != 200 || !strings.Contains(out, `"injected_faults":1`) {
		t.Fatalf("stats: %s", out)
	}
}

// TestSyncStatusWithoutConnection follows docs/nango-api.md, GET /sync/status: without
// connection_id it answers for every connection of the integration, run states combine the
// schedule and the latest job, an unknown connection is a 400 and an unknown integration an
// empty list.
func TestSyncStatusWithoutConnection(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	ctx := context.Background()
	other := nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "globex"}
	if err := h.sim.CreateConnection(other, "hubspot"); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []nangosim.SyncSpec{
		{ProviderConfigKey: "hubspot", Name: "contacts", Models: []string{"Contact"}},
		{ProviderConfigKey: "hubspot", Name: "contacts", Variant: "eu", Models: []string{"Contact"}},
	} {
		if err := h.sim.CreateSync(spec); err != nil {
			t.Fatal(err)
		}
	}
	h.seed(3)
	status := func(req nango.SyncStatusRequest) map[string]nango.SyncStatus {
		t.Helper()
		st, err := h.client.SyncStatus(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]nango.SyncStatus{}
		for _, s := range st {
			out[s.ConnectionID+"/"+s.Name+"::"+s.Variant] = s
		}
		return out
	}

	all := status(nango.SyncStatusRequest{ProviderConfigKey: "hubspot"})
	if len(all) != 4 {
		t.Fatalf("every sync of every connection: %d %v", len(all), all)
	}
	fresh := all["acme-corp/contacts::base"]
	if fresh.Status != "SUCCESS" || fresh.FinishedAt != nil || fresh.LatestExecutionStatus != "" ||
		fresh.LatestResult != nil || fresh.NextScheduledSyncAt == nil || fresh.RecordCount["Contact"] != 3 || fresh.Type != "INITIAL" {
		t.Fatalf("a started sync before any job: %+v", fresh)
	}
	if only := status(nango.SyncStatusRequest{ProviderConfigKey: "hubspot", Syncs: []string{"contacts::eu"}}); len(only) != 2 ||
		only["globex/contacts::eu"].Variant != "eu" {
		t.Fatalf("name::variant names the variant only: %v", only)
	}

	if err := h.sim.SetSyncRun(nangosim.SyncRun{ConnectionRef: other, Sync: "deals"}); err == nil {
		t.Error("a run of an undeclared sync was accepted")
	}

	if st := status(nango.SyncStatusRequest{ProviderConfigKey: "salesforce"}); len(st) != 0 {
		t.Errorf("unknown integration: %v", st)
	}
	code, _, body := h.raw("GET", "/sync/status?syncs=*&provider_config_key=hubspot&connection_id=nobody", nil, "")
	if c, _, _ := errorCode(t, body); code != 400 || c != "invalid_body" || !strings.Contains(body, `"Connection not found"`) {
		t.Errorf("unknown connection: %d %s", code, body)
	}
	code, _, body = h.raw("GET", "/sync/status?syncs=a&syncs=b&provider_config_key=hubspot", nil, "")
	if c, _, _ := errorCode(t, body); code != 400 || c != "invalid_query_params" {
		t.Errorf("repeated syncs: %d %s", code, body)
	}
	code, _, body = h.raw("GET", "/sync/status?syncs=*&provider_config_key=hubspot&model=Contact", nil, "")
	if c, _, issues := errorCode(t, body); code != 400 || c != "invalid_query_params" || !slices.Contains(issues, "unrecognized_keys") {
		t.Errorf("unknown parameter: %d %s", code, body)
	}
	if n := h.sim.Stats().SyncStatusRequests; n != 6 {
		t.Errorf("sync status requests counted: %d", n)
	}
}

// TestSyncStatusRunStates sets a sync's schedule and latest job on one connection and reads
// GET /sync/status's combined status, as docs/nango-api.md says Nango computes it.
func TestSyncStatusRunStates(t *testing.T) {
	h := newHarness(t, nangosim.Options{})
	ctx := context.Background()
	other := nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "globex"}
	if err := h.sim.CreateConnection(other, "hubspot"); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.CreateSync(nangosim.SyncSpec{ProviderConfigKey: "hubspot", Name: "contacts", Models: []string{"Contact"}}); err != nil {
		t.Fatal(err)
	}
	h.seed(1)
	status := func() map[string]nango.SyncStatus {
		t.Helper()
		st, err := h.client.SyncStatus(ctx, nango.SyncStatusRequest{ProviderConfigKey: "hubspot"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]nango.SyncStatus{}
		for _, s := range st {
			out[s.ConnectionID+"/"+s.Name+"::"+s.Variant] = s
		}
		return out
	}
	for _, tc := range []struct {
		run                       nangosim.SyncRun
		status, execution         string
		finished, nextScheduledAt bool
	}{
		{nangosim.SyncRun{Job: nangosim.JobStopped}, "ERROR", "STOPPED", true, true},
		{nangosim.SyncRun{Job: nangosim.JobRunning}, "RUNNING", "RUNNING", false, true},
		{nangosim.SyncRun{Schedule: nangosim.SchedulePaused, Job: nangosim.JobSuccess}, "PAUSED", "SUCCESS", true, false},
		{nangosim.SyncRun{Schedule: nangosim.ScheduleStopped, Job: nangosim.JobStopped}, "STOPPED", "STOPPED", true, false},
		{nangosim.SyncRun{Job: nangosim.JobSuccess, Results: map[string]nangosim.Results{"Contact": {Added: 2}}}, "SUCCESS", "SUCCESS", true, true},
	} {
		run := tc.run
		run.ConnectionRef, run.Sync = other, "contacts"
		if err := h.sim.SetSyncRun(run); err != nil {
			t.Fatal(err)
		}
		got := status()
		st := got["globex/contacts::base"]
		if st.Status != tc.status || st.LatestExecutionStatus != tc.execution || (st.FinishedAt != nil) != tc.finished ||
			(st.NextScheduledSyncAt != nil) != tc.nextScheduledAt {
			t.Errorf("%+v: %+v", tc.run, st)
		}
		if got["acme-corp/contacts::base"].Status != "SUCCESS" {
			t.Errorf("%+v changed another connection: %+v", tc.run, got["acme-corp/contacts::base"])
		}
	}
	if st := status()["globex/contacts::base"]; st.LatestResult["Contact"].Added != 2 {
		t.Errorf("latestResult: %+v", st.LatestResult)
	}
}
