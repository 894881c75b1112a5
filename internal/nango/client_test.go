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
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

var contacts = nangosim.ModelRef{
	ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "acme"},
	Model:         "Contact",
}

func listReq() nango.ListRecordsRequest {
	return nango.ListRecordsRequest{ConnectionID: "acme", ProviderConfigKey: "hubspot", Model: "Contact"}
}

// startSim runs an emulator with one connection and n records.
func startSim(t testing.TB, opts nangosim.Options, n int) (*nangosim.Sim, *httptest.Server, string) {
	t.Helper()
	sim := nangosim.New(opts)
	if err := sim.CreateConnection(contacts.ConnectionRef, "hubspot"); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		if _, err := sim.SeedRecords(contacts, nangosim.SeedOptions{Count: n}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	env, _ := sim.Environment("")
	return sim, srv, env.SecretKey
}

func newClient(t *testing.T, url, key string, opts ...nango.Option) *nango.Client {
	t.Helper()
	c, err := nango.NewClient(url, key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantKind(t *testing.T, err error, kind nango.Kind) *nango.Error {
	t.Helper()
	var e *nango.Error
	if !errors.As(err, &e) || e.Kind != kind {
		t.Fatalf("want %s, got %v", kind, err)
	}
	return e
}

func TestNewClientValidates(t *testing.T) {
	for _, u := range []string{"", "api.nango.dev", "ftp://x", "http://"} {
		if _, err := nango.NewClient(u, "k"); err == nil {
			t.Errorf("base URL %q accepted", u)
		}
	}
	if _, err := nango.NewClient("https://api.nango.dev", ""); err == nil {
		t.Error("empty key accepted")
	}
	c := newClient(t, "http://127.0.0.1:1", "k")
	_, err := c.ListRecords(context.Background(), nango.ListRecordsRequest{Model: "Contact"})
	_ = wantKind(t, err, nango.KindInvalidRequest) // the connection is missing
}

func TestListRecordsPagesEverything(t *testing.T) {
	_, srv, key := startSim(t, nangosim.Options{}, 2500)
	c := newClient(t, srv.URL+"/", key)
	req := listReq()
	req.Limit = 1000
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		page, err := c.ListRecords(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			if seen[r.ID] {
				t.Fatalf("duplicate %s", r.ID)
			}
			seen[r.ID] = true
			if r.Metadata.LastAction != nango.ActionAdded || r.Metadata.Cursor == "" || r.Metadata.LastModifiedAt.IsZero() {
				t.Fatalf("metadata %+v", r.Metadata)
			}
			// Big numbers survive: the raw bytes are kept.
			if !strings.Contains(string(r.Fields), `"score":12345678901234567890.5`) {
				t.Fatalf("fields %s", r.Fields)
			}
		}
		if page.NextCursor == "" {
			if pages != 2 {
				t.Errorf("%d pages", pages+1)
			}
			break
		}
		req.Cursor = page.NextCursor
	}
	if len(seen) != 2500 {
		t.Fatalf("%d records", len(seen))
	}
}

func TestTypedErrorsFromEmulator(t *testing.T) {
	sim, srv, key := startSim(t, nangosim.Options{}, 3)
	ctx := context.Background()
	c := newClient(t, srv.URL, key, nango.WithRateLimitRetries(0))

	for _, tc := range []struct {
		name   string
		client *nango.Client
		mutate func(*nango.ListRecordsRequest)
		kind   nango.Kind
		code   string
	}{
		{"unauthorized", newClient(t, srv.URL, "not-a-uuid"), nil, nango.KindUnauthorized, "invalid_secret_key_format"},
		{"unknown account", newClient(t, srv.URL, "11111111-1111-4111-8111-111111111111"), nil, nango.KindUnauthorized, "unknown_account"},
		{"unknown connection", c, func(r *nango.ListRecordsRequest) { r.ConnectionID = "other" }, nango.KindUnknownConnection, "unknown_connection"},
		{"invalid request", c, func(r *nango.ListRecordsRequest) { r.Filter = "everything" }, nango.KindInvalidRequest, "invalid_query_params"},
	} {
		req := listReq()
		if tc.mutate != nil {
			tc.mutate(&req)
		}
		_, err := tc.client.ListRecords(ctx, req)
		if e := wantKind(t, err, tc.kind); e.Code != tc.code {
			t.Errorf("%s: code %q", tc.name, e.Code)
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("%s: error contains the secret key", tc.name)
		}
	}

	sim.SetFaults(nangosim.Faults{ServerErrorRate: 1, ServerErrorStatus: 503, Count: 1})
	_, err := c.ListRecords(ctx, listReq())
	if e := wantKind(t, err, nango.KindServerError); e.Status != 503 || nango.IsTerminal(err) {
		t.Errorf("server error: %+v", e)
	}

	// net/http retries a GET once on a reused connection that closes
	// without an answer; drop every request to see the failure.
	sim.SetFaults(nangosim.Faults{DropRate: 1})
	_, err = c.ListRecords(ctx, listReq())
	if _ = wantKind(t, err, nango.KindNetwork); nango.IsTerminal(err) {
		t.Error("network error is terminal")
	}

	sim.SetFaults(nangosim.Faults{Latency: nangosim.Duration(2 * time.Second)})
	fast := newClient(t, srv.URL, key, nango.WithRequestTimeout(50*time.Millisecond))
	_, err = fast.ListRecords(ctx, listReq())
	if e := wantKind(t, err, nango.KindNetwork); !strings.Contains(e.Message, "within 50ms") {
		t.Errorf("timeout: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { cancel() }()
	_, err = c.ListRecords(cctx, listReq())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	sim.SetFaults(nangosim.Faults{})

	small := newClient(t, srv.URL, key, nango.WithMaxResponseBytes(100))
	_, err = small.ListRecords(ctx, listReq())
	_ = wantKind(t, err, nango.KindResponseTooLarge)

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	_, err = newClient(t, closed.URL, key).ListRecords(ctx, listReq())
	_ = wantKind(t, err, nango.KindNetwork)
}

// TestRetryAfterIsWaitedOut: a 429 with Retry-After: 1 is waited out and the
// call then succeeds; nothing is sent during the wait.
func TestRetryAfterIsWaitedOut(t *testing.T) {
	sim, srv, key := startSim(t, nangosim.Options{}, 3)
	sim.SetFaults(nangosim.Faults{RateLimitRate: 1, RetryAfter: nangosim.Duration(time.Second), Count: 1})
	c := newClient(t, srv.URL, key)
	start := time.Now()
	page, err := c.ListRecords(context.Background(), listReq())
	if err != nil || len(page.Records) != 3 {
		t.Fatalf("after 429: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("Retry-After not honoured: done in %s", d)
	}
	if st := sim.Stats(); st.Requests != 2 {
		t.Fatalf("%d requests, want 2", st.Requests)
	}

	// Retry-After beyond the client's bound: returned, with the wait.
	sim.SetFaults(nangosim.Faults{RateLimitRate: 1, RetryAfter: nangosim.Duration(90 * time.Second), Count: 1})
	c = newClient(t, srv.URL, key, nango.WithMaxRateLimitWait(time.Second))
	_, err = c.ListRecords(context.Background(), listReq())
	if e := wantKind(t, err, nango.KindRateLimited); e.RetryAfter != 90*time.Second || nango.RetryAfter(err) != 90*time.Second {
		t.Fatalf("long Retry-After: %+v", e)
	}
	// The limiter remembers the pause: the next call does not hit Nango.
	before := sim.Stats().Requests
	_, err = c.ListRecords(context.Background(), listReq())
	if _ = wantKind(t, err, nango.KindRateLimited); sim.Stats().Requests != before {
		t.Fatal("a paused key still sent a request")
	}
}

// TestInvalidCursorProbe: a well-formed cursor that keeps failing while
// requests without it succeed is an invalid cursor; if everything fails it
// is a server error.
func TestInvalidCursorProbe(t *testing.T) {
	var allFail atomic.Bool
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Query().Get("cursor") != "" || allFail.Load() {
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"error":{"code":"server_error","message":"Failed to fetch records"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"records":[],"next_cursor":null}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, "k")
	req := listReq()
	req.Cursor = base64.StdEncoding.EncodeToString([]byte("2026-04-14T18:46:03.097459+00:00||15ccc805-64d5-4940-a7e0-45fc704997a1"))
	_, err := c.ListRecords(context.Background(), req)
	_ = wantKind(t, err, nango.KindInvalidCursor)
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3 (try, retry, probe)", n)
	}
	allFail.Store(true)
	_, err = c.ListRecords(context.Background(), req)
	_ = wantKind(t, err, nango.KindServerError)
}

func TestDecodeCursor(t *testing.T) {
	c := base64.StdEncoding.EncodeToString([]byte("2026-04-14T18:46:03.0974+00:00||15ccc805-64d5-4940-a7e0-45fc704997a1"))
	ts, id, err := nango.DecodeCursor(c)
	if err != nil || id != "15ccc805-64d5-4940-a7e0-45fc704997a1" || ts.Nanosecond() != 97400000 {
		t.Fatalf("%v %s %v", ts, id, err)
	}
	for _, bad := range []string{"", "%%%", base64.StdEncoding.EncodeToString([]byte("a||b")), base64.StdEncoding.EncodeToString([]byte("2026-04-14T18:46:03Z||x||y"))} {
		if nango.WellFormedCursor(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDecodeKeepsNullsAndUnknownShapes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"next_cursor":null,"records":[{"id":7,"a":null,"b":1e400,"_nango_metadata":{"first_seen_at":"2026-04-14T18:46:03+00","last_modified_at":"2026-04-14T18:46:03.5+02:00","last_action":"UPDATED","deleted_at":null,"pruned_at":null,"cursor":"c"}}]}`))
	}))
	t.Cleanup(srv.Close)
	page, err := newClient(t, srv.URL, "k").ListRecords(context.Background(), listReq())
	if err != nil {
		t.Fatal(err)
	}
	r := page.Records[0]
	if r.ID != "7" || !strings.Contains(string(r.Fields), `"a":null,"b":1e400`) || r.Metadata.LastModifiedAt.UTC().Hour() != 16 {
		t.Fatalf("%+v %s", r, r.Fields)
	}
	var v map[string]json.RawMessage
	if json.Unmarshal(r.Fields, &v) != nil || string(v["b"]) != "1e400" {
		t.Fatal("raw fields not kept")
	}
}

func TestLimiterRegistrySharesPerKey(t *testing.T) {
	reg := nango.NewLimiterRegistry(nango.LimiterConfig{})
	a1, a2, b := reg.For("https://x", "a"), reg.For("https://x", "a"), reg.For("https://x", "b")
	if a1 != a2 || a1 == b || reg.For("https://y", "a") == a1 {
		t.Fatal("one limiter per server and key")
	}
}
