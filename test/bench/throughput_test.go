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
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/postgres"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
)

const mib = 1 << 20

// TestThroughput measures an initial sync of N records of about 1 KiB from the emulator into
// PostgreSQL and SQLite with the real manager, against its two limits measured in the same
// run: fetch-only (the Nango client pages through the emulator and discards) and sink-only
// (the sink ingests the same records from memory at its best batch size).
//
// Smoke (go test): 20,000 records, page size 1000. Full (NANGO_BENCH_FULL=1, make bench):
// NANGO_BENCH_RECORDS (default 1,000,000) records, page sizes 100, 1000 and 10000.
func TestThroughput(t *testing.T) {
	n, pageSizes := 20_000, []int{1000}
	if fullBench() {
		n, pageSizes = envInt(t, "NANGO_BENCH_RECORDS", 1_000_000), []int{100, 1000, 10000}
	}
	if only := os.Getenv("NANGO_BENCH_PAGE_SIZE"); only != "" {
		pageSizes = []int{envInt(t, "NANGO_BENCH_PAGE_SIZE", 0)}
	}
	const recordSize = 1024
	e := cluster(t)
	_, url := newSim(t, n, recordSize)
	pg := pgtest.StartServer(t)
	dbs := 0
	newPG := func() string {
		dbs++
		name := fmt.Sprintf("bench%d", dbs)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		must(t, pg.CreateDatabase(ctx, name))
		return pg.DSN(name)
	}
	report := &strings.Builder{}
	fmt.Fprintf(report, "%d records of ~%d B; page sizes %v\n\n", n, recordSize, pageSizes)

	// The two limits.
	fetch := map[int]time.Duration{}
	fmt.Fprintf(report, "| limit | page/batch size | time | records/s |\n|---|---|---|---|\n")
	for _, ps := range pageSizes {
		fetch[ps] = fetchOnly(t, url, ps, n)
		fmt.Fprintf(report, "| fetch-only | %d | %s | %.0f |\n", ps, fetch[ps].Round(time.Millisecond), rate(n, fetch[ps]))
	}
	kinds := []string{"postgres", "sqlite"}
	bestSink := map[string]time.Duration{}
	for _, kind := range kinds {
		for _, bs := range pageSizes {
			var s rowReader
			var err error
			if kind == "postgres" {
				s, err = postgres.Open(context.Background(), newPG(), postgres.Options{Table: "contacts"})
			} else {
				s, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sink.db"), sqlite.Options{Table: "contacts"})
			}
			must(t, err)
			d := sinkOnly(t, s, bs, n, recordSize)
			must(t, s.Close())
			if best, ok := bestSink[kind]; !ok || d < best {
				bestSink[kind] = d
			}
			fmt.Fprintf(report, "| sink-only %s | %d | %s | %.0f |\n", kind, bs, d.Round(time.Millisecond), rate(n, d))
		}
	}

	// The operator.
	fmt.Fprintf(report, "\n| sink | page size | operator time | records/s | slower limit | ratio | max RSS | RSS at 10%% / 50%% / 90%% |\n"+
		"|---|---|---|---|---|---|---|---|\n")
	var failures []string
	for _, kind := range kinds {
		for _, ps := range pageSizes {
			var spec syncv1alpha1.SinkSpec
			var pgURL, sqlitePath string
			if kind == "postgres" {
				pgURL = newPG()
				spec = postgresSinkSpec("contacts")
			} else {
				sqlitePath = filepath.Join(t.TempDir(), "operator.db")
				spec = sqliteSinkSpec(sqlitePath, "contacts")
			}
			run := operatorRun(t, e, url, spec, pgURL, ps, n)
			limit := max(fetch[ps], bestSink[kind])
			ratio := run.elapsed.Seconds() / limit.Seconds()
			fmt.Fprintf(report, "| %s | %d | %s | %.0f | %s | %.2f | %d MiB | %d / %d / %d MiB |\n",
				kind, ps, run.elapsed.Round(time.Millisecond), rate(n, run.elapsed), limit.Round(time.Millisecond), ratio,
				run.maxRSS/mib, run.rssAt[0]/mib, run.rssAt[1]/mib, run.rssAt[2]/mib)

			// The sink holds exactly the emulator's records (smoke sizes: full sizes would
			// read a GiB back).
			if !fullBench() {
				var s rowReader
				var err error
				if kind == "postgres" {
					s, err = postgres.Open(context.Background(), pgURL, postgres.Options{Table: "contacts"})
				} else {
					s, err = sqlite.Open(context.Background(), sqlitePath, sqlite.Options{Table: "contacts"})
				}
				must(t, err)
				if err := diffSink(s, generatedState(t, n, recordSize)); err != nil {
					t.Errorf("%s page size %d: %v", kind, ps, err)
				}
				must(t, s.Close())
			}
			maxRatio, maxRSS := 4.0, int64(300*mib) // smoke: loose, the run is short and the machine shared
			if fullBench() {
				maxRatio = 1.25
			}
			if ratio > maxRatio {
				failures = append(failures, fmt.Sprintf("%s page size %d: operator %.2f× the slower limit (target %.2f×)", kind, ps, ratio, maxRatio))
			}
			if run.maxRSS > maxRSS {
				failures = append(failures, fmt.Sprintf("%s page size %d: manager RSS reached %d MiB (bound %d MiB)", kind, ps, run.maxRSS/mib, maxRSS/mib))
			}
			if fullBench() && run.rssAt[2] > run.rssAt[0]*3/2+64*mib {
				failures = append(failures, fmt.Sprintf("%s page size %d: manager RSS grew with the data set: %d MiB at 10%%, %d MiB at 90%%",
					kind, ps, run.rssAt[0]/mib, run.rssAt[2]/mib))
			}
		}
	}
	t.Log("\n" + report.String())
	if out := os.Getenv("NANGO_BENCH_OUT"); out != "" {
		must(t, os.WriteFile(out, []byte(report.String()), 0o600))
	}
	for _, f := range failures {
		t.Error(f)
	}
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// generatedState is what the sink holds after syncing newSim's records.
func generatedState(t *testing.T, n, size int) map[string]state {
	t.Helper()
	want := make(map[string]state, n)
	for i := range n {
		h, err := hashPayload(recordJSON(i, 0, size))
		must(t, err)
		want[recordID(i)] = state{hash: h}
	}
	return want
}

// fetchOnly pages through the emulator with the Nango client and discards the records.
func fetchOnly(t *testing.T, url string, pageSize, n int) time.Duration {
	t.Helper()
	c := newNangoClient(t, url)
	start := time.Now()
	cursor, got := "", 0
	for {
		page, err := c.ListRecords(context.Background(), nango.ListRecordsRequest{
			ConnectionID: benchConn, ProviderConfigKey: benchPCK, Model: benchModel, Cursor: cursor, Limit: pageSize})
		must(t, err)
		got += len(page.Records)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	d := time.Since(start)
	if got != n {
		t.Fatalf("fetch-only read %d records, want %d", got, n)
	}
	return d
}

// sinkOnly writes n records in pages of batch with sink.WritePage and answers the time
// spent inside WritePage (building the pages is not counted).
func sinkOnly(t *testing.T, s sink.Sink, batch, n, size int) time.Duration {
	t.Helper()
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	var spent time.Duration
	records := make([]sink.Record, 0, batch)
	for start := 0; start < n; start += batch {
		records = records[:0]
		for i := start; i < min(n, start+batch); i++ {
			at := base.Add(time.Duration(i) * time.Microsecond)
			records = append(records, sink.Record{
				ID: recordID(i), Payload: recordJSON(i, 0, size), Action: sink.ActionAdded,
				FirstSeenAt: at, LastModifiedAt: at, Cursor: fmt.Sprint("cursor-", i),
			})
		}
		began := time.Now()
		if _, err := s.WritePage(context.Background(), benchKey,
			sink.Page{Records: records, Checkpoint: fmt.Sprint("cursor-", start+len(records)-1)}); err != nil {
			t.Fatal(err)
		}
		spent += time.Since(began)
	}
	return spent
}

// operatorResult is one sync by the manager binary.
type operatorResult struct {
	elapsed time.Duration
	maxRSS  int64
	rssAt   [3]int64 // at 10%, 50% and 90% of the records written
}

type sample struct {
	at    time.Time
	value int64
}

// operatorRun starts a manager, creates one NangoSync and waits until it is Ready with
// every record written, sampling the manager's RSS every 100 ms.
func operatorRun(t *testing.T, e *env, url string, spec syncv1alpha1.SinkSpec, pgURL string, pageSize, n int) operatorResult {
	t.Helper()
	namespace := e.newNamespace(t, benchSecretKey, pgURL)
	args := []string{"--nango-rate-limit", "1000000000", "--max-concurrent-reconciles", "4"}
	args = append(args, strings.Fields(os.Getenv("NANGO_BENCH_MANAGER_ARGS"))...)
	pprofAddr := freeAddr(t)
	profileDir := os.Getenv("NANGO_BENCH_PROFILE_DIR")
	if profileDir != "" {
		args = append(args, "--pprof-bind-address", pprofAddr)
	}
	m := e.startManager(t, args...)
	defer m.stop()
	m.waitReady(t)

	var mu sync.Mutex
	var rss []sample
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		ticker := time.NewTicker(100 * time.Millisecond)
		defer ticker.Stop()
		for {
			if v, err := rssBytes(m.cmd.Process.Pid); err == nil {
				mu.Lock()
				rss = append(rss, sample{time.Now(), v})
				mu.Unlock()
			}
			select {
			case <-stopSampling:
				return
			case <-ticker.C:
			}
		}
	}()

	ns := nangoSync(namespace, "bench", url, int32(pageSize), spec)
	ns.Spec.Interval = &metav1.Duration{Duration: time.Hour}
	start := time.Now()
	must(t, e.k8s.Create(context.Background(), ns))
	if profileDir != "" {
		kind := "sqlite"
		if spec.Postgres != nil {
			kind = "postgres"
		}
		profiled := profileManager(t, pprofAddr, filepath.Join(profileDir, fmt.Sprintf("%s-%d.pprof", kind, pageSize)))
		defer func() { <-profiled }()
	}
	var progress []sample
	eventually(t, time.Duration(n/500)*time.Second+2*time.Minute, 100*time.Millisecond, func() error {
		got, err := e.getSync(namespace, "bench")
		if err != nil {
			return err
		}
		total := totalRecords(got)
		progress = append(progress, sample{time.Now(), total})
		status, reason := readyReason(got)
		if status == metav1.ConditionTrue && total == int64(n) {
			return nil
		}
		return fmt.Errorf("Ready=%s (%s), %d of %d records", status, reason, total, n)
	})
	res := operatorResult{elapsed: time.Since(start)}
	close(stopSampling)
	<-sampled

	mu.Lock()
	defer mu.Unlock()
	for _, s := range rss {
		res.maxRSS = max(res.maxRSS, s.value)
	}
	for i, f := range []float64{0.1, 0.5, 0.9} {
		k := sort.Search(len(progress), func(j int) bool { return float64(progress[j].value) >= f*float64(n) })
		at := progress[min(k, len(progress)-1)].at
		for _, s := range rss {
			if !s.at.After(at) {
				res.rssAt[i] = s.value
			}
		}
	}
	return res
}

// profileManager records a CPU profile of the manager through its pprof endpoint while the
// sync runs, for NANGO_BENCH_PROFILE_SECONDS (default 10) seconds, into path; the channel
// closes when it is written. Inspect it with go tool pprof -top <manager binary> path.
func profileManager(t *testing.T, addr, path string) <-chan struct{} {
	t.Helper()
	seconds := envInt(t, "NANGO_BENCH_PROFILE_SECONDS", 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds))
		if err != nil {
			t.Logf("profile the manager: %v", err)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		profile, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(path, profile, 0o644)
		}
		if err != nil {
			t.Logf("profile the manager: %v", err)
			return
		}
		t.Logf("CPU profile of the manager (%d s): %s", seconds, path)
	}()
	return done
}
