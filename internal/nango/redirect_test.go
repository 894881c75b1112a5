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
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

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
