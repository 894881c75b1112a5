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

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// fakeClock is a settable clock; each reading advances it by step so that
// writes get distinct, predictable times.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var epoch = time.Date(2026, 4, 14, 18, 46, 3, 97459000, time.UTC)

type harness struct {
	t      *testing.T
	clock  *fakeClock
	sim    *nangosim.Sim
	srv    *httptest.Server
	client *nango.Client
	env    nangosim.Environment
	ref    nangosim.ModelRef
}

func newHarness(t *testing.T, opts nangosim.Options) *harness {
	t.Helper()
	clock := &fakeClock{t: epoch, step: 0}
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	sim := nangosim.New(opts)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	env, _ := sim.Environment("")
	client, err := nango.NewClient(srv.URL, env.SecretKey, nango.WithRequestTimeout(5*time.Second), nango.WithRateLimitRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	ref := nangosim.ModelRef{
		ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "acme-corp"},
		Model:         "Contact",
	}
	if err := sim.CreateConnection(ref.ConnectionRef, "hubspot"); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, clock: clock, sim: sim, srv: srv, client: client, env: env, ref: ref}
}

func (h *harness) upsert(ref nangosim.ModelRef, records ...string) nangosim.Results {
	h.t.Helper()
	raws := make([]json.RawMessage, len(records))
	for i, r := range records {
		raws[i] = json.RawMessage(r)
	}
	res, err := h.sim.UpsertRecords(ref, raws)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) seed(n int) {
	h.t.Helper()
	if _, err := h.sim.SeedRecords(h.ref, nangosim.SeedOptions{Count: n, BatchSize: 7}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) req() nango.ListRecordsRequest {
	return nango.ListRecordsRequest{ConnectionID: h.ref.ConnectionID, ProviderConfigKey: h.ref.ProviderConfigKey, Model: h.ref.Model}
}

func (h *harness) list(req nango.ListRecordsRequest) *nango.RecordsPage {
	h.t.Helper()
	page, err := h.client.ListRecords(context.Background(), req)
	if err != nil {
		h.t.Fatalf("ListRecords(%+v): %v", req, err)
	}
	return page
}

// listAll pages until next_cursor is empty and returns every record.
func (h *harness) listAll(req nango.ListRecordsRequest) (recs []nango.Record, pages int) {
	h.t.Helper()
	for {
		page := h.list(req)
		pages++
		recs = append(recs, page.Records...)
		if page.NextCursor == "" {
			return recs, pages
		}
		if pages > 100000 {
			h.t.Fatal("paging does not end")
		}
		req.Cursor = page.NextCursor
	}
}

// raw sends a request by hand, for what the client would never send.
func (h *harness) raw(method, pathAndQuery string, header map[string]string, body string) (int, http.Header, string) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+pathAndQuery, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	base := map[string]string{
		"Authorization":       "Bearer " + h.env.SecretKey,
		"Connection-Id":       h.ref.ConnectionID,
		"Provider-Config-Key": h.ref.ProviderConfigKey,
	}
	for k, v := range header {
		base[k] = v
	}
	for k, v := range base {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func ids(recs []nango.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func mustJSONEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("body\n got %s\nwant %s", gb, wb)
	}
}

// errorCode extracts error.code and the issue paths of an error answer.
func errorCode(t *testing.T, body string) (code string, paths []string, issueCodes []string) {
	t.Helper()
	var e struct {
		Error struct {
			Code   string `json:"code"`
			Errors []struct {
				Code string `json:"code"`
				Path []any  `json:"path"`
			} `json:"errors"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error answer is not JSON: %v: %s", err, body)
	}
	for _, is := range e.Error.Errors {
		paths = append(paths, fmt.Sprint(is.Path))
		issueCodes = append(issueCodes, is.Code)
	}
	return e.Error.Code, paths, issueCodes
}

func asError(err error, target **nango.Error) bool { return errors.As(err, target) }

func mustKind(t *testing.T, err error, kind nango.Kind) *nango.Error {
	t.Helper()
	var e *nango.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *nango.Error of kind %s, got %v", kind, err)
	}
	if e.Kind != kind {
		t.Fatalf("want kind %s, got %v", kind, err)
	}
	return e
}

func withLimit(req nango.ListRecordsRequest, n int) nango.ListRecordsRequest {
	req.Limit = n
	return req
}

func idsOf(t *testing.T, body string) []string {
	t.Helper()
	var page struct {
		Records []struct {
			ID string `json:"id"`
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatalf("not a page: %v: %s", err, body)
	}
	out := make([]string, 0, len(page.Records))
	for _, r := range page.Records {
		out = append(out, r.ID)
	}
	return out
}

func metadataOf(t *testing.T, r nango.Record) json.RawMessage {
	t.Helper()
	var fields struct {
		Metadata json.RawMessage `json:"_nango_metadata"`
	}
	if err := json.Unmarshal(r.Fields, &fields); err != nil {
		t.Fatal(err)
	}
	return fields.Metadata
}

func httptestServer(t *testing.T, f http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func readAll(t *testing.T, r *http.Request) []byte {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Error(err)
	}
	return b
}

func hmacHex(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
