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
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nango"
)

// TestAllConnectionsFailsWhenPagesRepeat: a server (or a proxy in front of Nango) that
// ignores `page` answers the first page again and again. Paging must stop with an error
// that says so, not loop until the deadline, and not return the first page as the whole.
func TestAllConnectionsFailsWhenPagesRepeat(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, `{"connections":[`+
			`{"id":2,"connection_id":"b","provider_config_key":"hubspot","provider":"hubspot","errors":[],"end_user":null,"tags":{},"metadata":null,"created":"2026-04-14T18:46:03.097459+00:00"},`+
			`{"id":1,"connection_id":"a","provider_config_key":"hubspot","provider":"hubspot","errors":[],"end_user":null,"tags":{},"metadata":null,"created":"2026-04-14T18:46:02.097459+00:00"}]}`)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, "key")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conns, err := c.AllConnections(ctx, nango.ListConnectionsRequest{IntegrationIDs: []string{"hubspot"}, Limit: 2})
	if conns != nil {
		t.Fatalf("a listing that never ends returned %d connections as complete", len(conns))
	}
	e := wantKind(t, err, nango.KindInvalidResponse)
	if !strings.Contains(err.Error(), "page 1") || !strings.Contains(e.Error(), "ignores the page parameter") {
		t.Fatalf("the error does not say which page repeated and why: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d requests, want 2: the second page repeating the first is enough evidence", n)
	}
}

// TestAllConnectionsKeepsOneRepeatedRow: a connection created while paging shifts the
// later pages by one, so a page starts with the last row of the one before. That is
// progress, not a loop: the listing completes with every connection once.
func TestAllConnectionsKeepsOneRepeatedRow(t *testing.T) {
	pages := [][]string{{"d", "c"}, {"c", "b"}, {"a"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := 0
		_, _ = fmt.Sscan(r.URL.Query().Get("page"), &page)
		rows := make([]string, 0, len(pages[page]))
		for _, id := range pages[page] {
			rows = append(rows, fmt.Sprintf(`{"id":1,"connection_id":%q,"provider_config_key":"hubspot","provider":"hubspot","errors":[],"end_user":null,"tags":{},"metadata":null,"created":"2026-04-14T18:46:03+00:00"}`, id))
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, `{"connections":[`+strings.Join(rows, ",")+`]}`)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, "key")
	conns, err := c.AllConnections(context.Background(), nango.ListConnectionsRequest{IntegrationIDs: []string{"hubspot"}, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(conns))
	for _, conn := range conns {
		ids = append(ids, conn.ConnectionID)
	}
	if strings.Join(ids, ",") != "d,c,b,a" {
		t.Fatalf("got %v, want d,c,b,a", ids)
	}
}
