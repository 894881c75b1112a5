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
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/nango-operator/nango-operator/internal/nango"
)

// TestRedirectIsNotFollowed (issue 14, item 3): a Nango URL that answers with a redirect to
// the same host on another port (https → http in the probe) must not receive the secret
// key there. The client follows no redirect, with or without a shared HTTP client, and the
// error says where the redirect pointed, without the key or the target's query.
func TestRedirectIsNotFollowed(t *testing.T) {
	const key = "11111111-1111-4111-8111-111111111111"
	var leaked atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Authorization"), key) {
			leaked.Add(1)
		}
		_, _ = w.Write([]byte(`{"records":[],"next_cursor":null}`))
	}))
	t.Cleanup(target.Close)
	// The redirect names the key in its query, as a hostile server that saw it could.
	location := "http://user:pw@" + strings.TrimPrefix(target.URL, "http://") + "/elsewhere/records?token=" + key
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, location, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)

	shared := &http.Client{}
	for name, c := range map[string]*nango.Client{
		"own HTTP client":    newClient(t, redirector.URL, key),
		"shared HTTP client": newClient(t, redirector.URL, key, nango.WithHTTPClient(shared)),
	} {
		_, err := c.ListRecords(context.Background(), listReq())
		e := wantKind(t, err, nango.KindInvalidResponse)
		if e.Status != http.StatusTemporaryRedirect || nango.IsTerminal(err) {
			t.Errorf("%s: %+v", name, e)
		}
		msg := err.Error()
		if !strings.Contains(msg, strings.TrimPrefix(target.URL, "http://")+"/elsewhere/records") ||
			strings.Contains(msg, key) || strings.Contains(msg, "pw") {
			t.Errorf("%s: the error should name where the redirect pointed, without secrets: %s", name, msg)
		}
	}
	if n := leaked.Load(); n != 0 {
		t.Fatalf("the secret key reached the redirect's target %d times", n)
	}
	if shared.CheckRedirect != nil {
		t.Error("the shared HTTP client was changed")
	}
}

// TestErrorMessagesAreShortAndPrintable (issue 14, item 2): whatever error body an answer
// carries (up to the client's 64 KiB bound), the error holds a short, printable message:
// Nango's message and code and the issues of a 400 cut at a rune boundary, control
// characters replaced, and never the secret key a server echoes back.
func TestErrorMessagesAreShortAndPrintable(t *testing.T) {
	const key = "11111111-1111-4111-8111-111111111111"
	long := key + strings.Repeat("é\x1b[31m\n\u202e", 1500) + key
	bodies := map[string][]byte{
		"message": mustJSON(t, map[string]any{"error": map[string]any{"code": "server_error" + long, "message": long}}),
		"issues": mustJSON(t, map[string]any{"error": map[string]any{"code": "invalid_query_params", "errors": []any{
			map[string]any{"code": "custom", "message": long, "path": []any{long, 1}},
			map[string]any{"code": "custom", "message": long, "path": []any{"b"}},
		}}}),
		"string error": mustJSON(t, map[string]any{"error": long}),
		"not JSON":     append([]byte{0xff, 0xfe}, long...),
	}
	for name, body := range bodies {
		status := http.StatusInternalServerError
		if name == "issues" {
			status = http.StatusBadRequest
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}))
		t.Cleanup(srv.Close)
		_, err := newClient(t, srv.URL, key).ListRecords(context.Background(), listReq())
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		msg := err.Error()
		if len(msg) > 2000 {
			t.Errorf("%s: message of %d bytes", name, len(msg))
		}
		if !utf8.ValidString(msg) || strings.ContainsAny(msg, "\x1b\n\u202e") || strings.Contains(msg, key) {
			t.Errorf("%s: message not sanitised: %q", name, msg)
		}
		if !strings.Contains(msg, "é") {
			t.Errorf("%s: the message lost its text: %q", name, msg)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
