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
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/nango-operator/nango-operator/internal/nango"
)

// cursorAt is a cursor of Nango's form at ts.
func cursorAt(ts string) string {
	return base64.StdEncoding.EncodeToString([]byte(ts + "||15ccc805-64d5-4940-a7e0-45fc704997a1"))
}

// pageServer answers every GET /records with records and next_cursor.
func pageServer(t *testing.T, records int, next string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		recs := make([]any, records)
		for i := range recs {
			recs[i] = map[string]any{"id": "r", "_nango_metadata": map[string]any{
				"first_seen_at": "2026-04-14T18:46:03+00:00", "last_modified_at": "2026-04-14T18:46:03+00:00",
				"last_action": "ADDED", "deleted_at": nil, "pruned_at": nil, "cursor": next}}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"records": recs, "next_cursor": next})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCursorThatDoesNotAdvance (issue 14, items 10 and 12): a next_cursor equal to the
// request's cursor, an empty page that carries a cursor, and a next_cursor longer than the
// 1,000 characters Nango accepts back would each make a reader loop forever (or store a
// cursor the API server refuses): ListRecords returns KindInvalidCursor for them, which is
// terminal.
func TestCursorThatDoesNotAdvance(t *testing.T) {
	at := cursorAt("2026-04-14T18:46:03.097459+00:00")
	for name, tc := range map[string]struct {
		records     int
		next, after string
	}{
		"same cursor":             {records: 3, next: at, after: at},
		"empty page with cursor":  {records: 0, next: at},
		"empty page, cursor sent": {records: 0, next: at + "x", after: at},
		"cursor too long":         {records: 3, next: strings.Repeat("A", 1001)},
	} {
		req := listReq()
		req.Cursor = tc.after
		_, err := newClient(t, pageServer(t, tc.records, tc.next), "k").ListRecords(context.Background(), req)
		if e := wantKind(t, err, nango.KindInvalidCursor); !nango.IsTerminal(err) || len(e.Error()) > 600 {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A cursor of exactly 1,000 characters that advances is fine.
	req := listReq()
	req.Cursor = at
	if _, err := newClient(t, pageServer(t, 1, strings.Repeat("A", 1000)), "k").ListRecords(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

// TestCursorGoingBackwardsIsLogged: a next_cursor before the request's cursor is served
// (Nango may have reset the sync's records) but leaves a warning in the caller's log.
func TestCursorGoingBackwardsIsLogged(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{})
	ctx := logr.NewContext(context.Background(), log)
	req := listReq()
	req.Cursor = cursorAt("2026-04-14T18:46:03.097459+00:00")
	earlier := cursorAt("2026-04-13T18:46:03.097459+00:00")
	page, err := newClient(t, pageServer(t, 1, earlier), "k").ListRecords(ctx, req)
	if err != nil || page.NextCursor != earlier {
		t.Fatalf("%v %+v", err, page)
	}
	later := cursorAt("2026-04-15T18:46:03.097459+00:00")
	if _, err = newClient(t, pageServer(t, 1, later), "k").ListRecords(ctx, req); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 1 || !strings.Contains(lines[0], "backwards") || !strings.Contains(lines[0], "2026-04-13") {
		t.Fatalf("want one warning about the cursor going backwards, got %q", lines)
	}
}
