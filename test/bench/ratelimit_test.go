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

package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// TestSharedRateLimit creates S NangoSyncs of one Nango secret key at once against an
// emulator that allows L requests per window W (the manager's --nango-rate-limit and
// --nango-rate-window set to match), each with records for 3 pages, and checks that no
// record is lost (every connection's row count in the SQLite sink equals its emulator
// model), that every NangoSync ends Ready with no RateLimited condition left, and how much
// of the budget was used while work remained: requests served per window ÷ L, over every
// window but the last, with the emulator's fixed windows replayed from the request times
// seen by a wrapping handler.
//
// Smoke (go test): 50 NangoSyncs, 50 requests per 1 s. Full (NANGO_BENCH_FULL=1): 500
// NangoSyncs, 20 requests per 6 s (Nango's 200 a minute, scaled); fails under 85 % used.
// NANGO_RATE_SYNCS, NANGO_RATE_LIMIT and NANGO_RATE_WINDOW_SECONDS override.
func TestSharedRateLimit(t *testing.T) {
	syncs, limit, windowSeconds := 50, 50, 1
	if fullBench() {
		syncs, limit, windowSeconds = 500, 20, 6
	}
	syncs = envInt(t, "NANGO_RATE_SYNCS", syncs)
	limit = envInt(t, "NANGO_RATE_LIMIT", limit)
	windowSeconds = envInt(t, "NANGO_RATE_WINDOW_SECONDS", windowSeconds)
	window := time.Duration(windowSeconds) * time.Second
	const pageSize, records = 5, 12 // 3 pages: 5, 5, 2

	e := cluster(t)
	// A secret key of its own: one Nango account, one budget, shared by every NangoSync here.
	const secretKey = "0b7e3c55-2f4a-4c1d-9e8f-5a6b7c8d9e0f"
	sim := nangosim.New(nangosim.Options{SecretKey: secretKey,
		RateLimit: nangosim.RateLimit{Limit: limit, Window: window}})
	for s := range syncs {
		ref := nangosim.ModelRef{ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: benchPCK,
			ConnectionID: "conn-" + strconv.Itoa(s)}, Model: benchModel}
		must(t, sim.CreateConnection(ref.ConnectionRef, "hubspot"))
		_, err := sim.SeedRecords(ref, nangosim.SeedOptions{Count: records})
		must(t, err)
	}
	log := &requestLog{}
	srv := httptest.NewServer(log.wrap(sim.Handler()))
	t.Cleanup(srv.Close)

	namespace := e.newNamespace(t, secretKey, "")
	dbPath := filepath.Join(t.TempDir(), "ratelimit.db")
	snk := sqliteSinkSpec(dbPath, fleetTable)
	all := make([]*syncv1alpha1.NangoSync, 0, syncs)
	for s := range syncs {
		all = append(all, fleetSync(namespace, "conn-"+strconv.Itoa(s), srv.URL, "conn-"+strconv.Itoa(s), benchModel,
			pageSize, time.Hour, snk))
	}

	m := e.startManager(t, "--nango-rate-limit", strconv.Itoa(limit), "--nango-rate-window", window.String(),
		"--allowed-nango-urls", srv.URL,
		"--max-concurrent-reconciles", "16")
	m.waitReady(t)
	e.deleteSyncsOnCleanup(t, namespace)

	start := time.Now()
	e.createSyncs(t, all, 8)
	needed := syncs * ((records + pageSize - 1) / pageSize)
	// The last window opens with its first request: the work cannot end sooner.
	minTime := time.Duration((needed+limit-1)/limit-1) * window
	final := e.waitAllReady(t, m, namespace, syncs, 2*minTime+2*time.Minute, 100*time.Millisecond)
	elapsed := time.Since(start)

	db := openSinkReader(t, dbPath)
	rows, err := rowsByConnection(db)
	must(t, err)
	var lost []string
	for s := range syncs {
		conn := "conn-" + strconv.Itoa(s)
		want := sim.RecordCount(nangosim.ModelRef{ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: benchPCK,
			ConnectionID: conn}, Model: benchModel})
		if rows[conn] != want {
			lost = append(lost, fmt.Sprintf("%s: %d rows, want %d", conn, rows[conn], want))
		}
	}

	windows := log.windows(window)
	served, used, minUsed := 0, 0.0, 1.0
	for i, w := range windows {
		served += w.served
		if i == len(windows)-1 {
			break // the last window is where the work ran out
		}
		share := float64(w.served) / float64(limit)
		used += share
		minUsed = min(minUsed, share)
	}
	busyWindows := max(1, len(windows)-1)
	used /= float64(busyWindows)
	stats := sim.Stats()
	perWindow := make([]string, 0, len(windows))
	for _, w := range windows {
		perWindow = append(perWindow, strconv.Itoa(w.served))
	}
	t.Logf("shared rate limit: %d NangoSyncs × %d records (page size %d) of one secret key, %d requests per %s, --max-concurrent-reconciles 16",
		syncs, records, pageSize, limit, window)
	t.Logf("served per window: %s", strings.Join(perWindow, " "))
	t.Logf("| NangoSyncs | limit | all Ready after | lower bound | requests served | 429s sent | windows | budget used while work remained (mean / min) | rows lost |")
	t.Logf("| %d | %d per %s | %s | %s | %d | %d | %d | %.1f %% / %.1f %% | %d |", syncs, limit, window,
		elapsed.Round(time.Millisecond), minTime, served, stats.RateLimited, len(windows), 100*used, 100*minUsed, len(lost))

	if len(lost) > 0 {
		t.Errorf("%d connections differ, first: %v", len(lost), lost[:min(5, len(lost))])
	}
	if final.rateLimited > 0 {
		t.Errorf("%d NangoSyncs still show a RateLimited condition", final.rateLimited)
	}
	if after, err := e.census(namespace); err != nil || after.rateLimited > 0 || after.ready != syncs {
		t.Errorf("at the end: %+v, %v", after, err)
	}
	want := 0.5 // smoke: loose for a busy machine
	if fullBench() {
		want = 0.85
	}
	if len(windows) > 1 && used < want {
		t.Errorf("%.1f %% of the budget used while work remained, want ≥ %.0f %%", 100*used, 100*want)
	}
}

// requestLog records when each public request of the emulator came and whether it was
// served (not answered 429).
type requestLog struct {
	mu   sync.Mutex
	reqs []loggedRequest
}

type loggedRequest struct {
	at     time.Time
	served bool
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (l *requestLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			next.ServeHTTP(w, r)
			return
		}
		at := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		l.mu.Lock()
		l.reqs = append(l.reqs, loggedRequest{at: at, served: rec.status != http.StatusTooManyRequests})
		l.mu.Unlock()
	})
}

// loggedWindow is one of the emulator's fixed windows, replayed.
type loggedWindow struct {
	start          time.Time
	served, denied int
}

// windows replays the emulator's fixed windows: one opens with the first request after the
// previous one ended.
func (l *requestLog) windows(length time.Duration) []loggedWindow {
	l.mu.Lock()
	reqs := append([]loggedRequest(nil), l.reqs...)
	l.mu.Unlock()
	// Handlers finish out of order; arrival order is what the emulator's windows see.
	slices.SortStableFunc(reqs, func(a, b loggedRequest) int { return a.at.Compare(b.at) })
	var out []loggedWindow
	for _, r := range reqs {
		if len(out) == 0 || !r.at.Before(out[len(out)-1].start.Add(length)) {
			out = append(out, loggedWindow{start: r.at})
		}
		if r.served {
			out[len(out)-1].served++
		} else {
			out[len(out)-1].denied++
		}
	}
	return out
}
