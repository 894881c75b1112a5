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
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// TestScale runs connections × models NangoSyncs of 20 records each on one manager, all
// writing to one table of one SQLite file, and measures the time from the first create
// until all are Ready, the manager's max RSS, and the manager's API-server writes per idle
// sync per interval (rest_client_requests_total, POST/PUT/PATCH/DELETE) over whole
// intervals after all are Ready.
//
// Smoke (go test): 20 × 5 = 100 NangoSyncs, one 10 s interval measured. Full
// (NANGO_BENCH_FULL=1): 1,000 × 10 = 10,000 NangoSyncs, three intervals measured.
// NANGO_SCALE_CONNECTIONS, NANGO_SCALE_MODELS, NANGO_SCALE_INTERVALS and
// NANGO_SCALE_CONCURRENCY (--max-concurrent-reconciles, default 16) override.
func TestScale(t *testing.T) {
	conns, models, intervals := 20, 5, 1
	if fullBench() {
		conns, models, intervals = 1000, 10, 3
	}
	conns = envInt(t, "NANGO_SCALE_CONNECTIONS", conns)
	models = envInt(t, "NANGO_SCALE_MODELS", models)
	intervals = envInt(t, "NANGO_SCALE_INTERVALS", intervals)
	concurrency := envInt(t, "NANGO_SCALE_CONCURRENCY", 16)
	const records = 20
	const interval = 10 * time.Second // the minimum spec.interval
	n := conns * models

	e := cluster(t)
	sim := nangosim.New(nangosim.Options{SecretKey: benchSecretKey})
	for c := range conns {
		conn := nangosim.ConnectionRef{ProviderConfigKey: benchPCK, ConnectionID: "conn-" + strconv.Itoa(c)}
		must(t, sim.CreateConnection(conn, "hubspot"))
		for m := range models {
			_, err := sim.SeedRecords(nangosim.ModelRef{ConnectionRef: conn, Model: "Model" + strconv.Itoa(m)},
				nangosim.SeedOptions{Count: records})
			must(t, err)
		}
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)

	namespace := e.newNamespace(t, benchSecretKey, "")
	dbPath := filepath.Join(t.TempDir(), "scale.db")
	snk := sqliteSinkSpec(dbPath, fleetTable)
	syncs := make([]*syncv1alpha1.NangoSync, 0, n)
	for c := range conns {
		for m := range models {
			syncs = append(syncs, fleetSync(namespace, fmt.Sprintf("conn-%d-model%d", c, m), srv.URL,
				"conn-"+strconv.Itoa(c), "Model"+strconv.Itoa(m), 0, interval, snk))
		}
	}

	metricsAddr := freeAddr(t)
	m := e.startManager(t, "--nango-rate-limit", "1000000000", "--allowed-nango-urls", srv.URL,
		"--max-concurrent-reconciles", strconv.Itoa(concurrency),
		"--metrics-bind-address", metricsAddr, "--metrics-secure=false")
	m.waitReady(t)
	e.deleteSyncsOnCleanup(t, namespace)
	rss := sampleRSS(m.cmd.Process.Pid, 100*time.Millisecond)

	poll := 100 * time.Millisecond
	if n > 1000 {
		poll = time.Second
	}
	start := time.Now()
	e.createSyncs(t, syncs, 8)
	created := time.Since(start)
	e.waitAllReady(t, m, namespace, n, 10*time.Minute+time.Duration(n)*50*time.Millisecond, poll)
	allReady := time.Since(start)

	// Writes over whole intervals once all are Ready: each idle sync re-reads Nango once per
	// interval (plus up to 5 % jitter), finds nothing new and writes nothing.
	before, err := clientRequests(metricsAddr)
	must(t, err)
	nangoBefore := sim.Stats().RecordsRequests
	window := time.Duration(intervals) * interval
	windowStart := time.Now()
	deadline := windowStart.Add(window)
	// Poll the manager while the window passes, so that a crash fails the test at once.
	eventually(t, window+time.Minute, 200*time.Millisecond, func() error {
		select {
		case <-m.exited:
			t.Fatalf("the manager exited; its output:\n%s", m.output)
		default:
		}
		if time.Now().Before(deadline) {
			return fmt.Errorf("the measured window is not over")
		}
		return nil
	})
	measured := time.Since(windowStart)
	after, err := clientRequests(metricsAddr)
	must(t, err)
	nangoRuns := float64(sim.Stats().RecordsRequests - nangoBefore)
	final, err := e.census(namespace)
	must(t, err)
	maxRSS := rss.Max()

	perInterval := float64(n) * measured.Seconds() / interval.Seconds()
	w := writes(after) - writes(before)
	writesPerSyncInterval := w / perInterval
	runsPerSyncInterval := nangoRuns / perInterval
	writesPerRun := 0.0
	if nangoRuns > 0 {
		writesPerRun = w / nangoRuns
	}
	t.Logf("scale: %d NangoSyncs (%d connections × %d models, %d records each), --max-concurrent-reconciles %d, one SQLite file and table",
		n, conns, models, records, concurrency)
	t.Logf("| NangoSyncs | created in | all Ready after | max RSS | writes per idle sync per interval | syncs per sync per interval | writes per sync run | " +
		"write requests by method in the window |")
	t.Logf("| %d | %s | %s | %d MiB | %.3f | %.3f | %.3f | POST %.0f, PUT %.0f, PATCH %.0f, DELETE %.0f over %s (%d Ready at the end) |",
		n, created.Round(time.Millisecond), allReady.Round(time.Millisecond), maxRSS/mib,
		writesPerSyncInterval, runsPerSyncInterval, writesPerRun,
		after["POST"]-before["POST"], after["PUT"]-before["PUT"], after["PATCH"]-before["PATCH"],
		after["DELETE"]-before["DELETE"], measured.Round(time.Millisecond), final.ready)

	if final.ready != n {
		t.Errorf("%d of %d NangoSyncs Ready at the end, e.g. %s", final.ready, n, final.notReady)
	}
	if final.records != int64(n*records) {
		t.Errorf("status.records.total adds up to %d, want %d", final.records, n*records)
	}
	if maxRSS >= 300*mib {
		t.Errorf("max RSS %d MiB, want < 300 MiB", maxRSS/mib)
	}
	if w != 0 {
		t.Errorf("%.0f API-server writes (%.3f per idle sync per interval) while nothing changed, want none", w, writesPerSyncInterval)
	}
	if nangoRuns == 0 {
		t.Errorf("no sync ran in the %s window: the interval did not wake the syncs", measured)
	}
}
