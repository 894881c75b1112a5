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
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink/httpsinktest"
	"github.com/nango-operator/nango-operator/internal/sink/kafkasink"
	"github.com/nango-operator/nango-operator/internal/sink/postgres"
	"github.com/nango-operator/nango-operator/internal/sink/sinks"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
	"github.com/nango-operator/nango-operator/internal/testutil/records"
)

const mib = 1 << 20

// TestThroughput measures an initial sync of N records from the emulator into PostgreSQL and
// SQLite with the real manager, against its limits measured in the same run: fetch-only (the
// Nango client pages through the emulator and discards), sink-only (the sink's WritePage
// ingests the same records from memory at each batch size) and, for PostgreSQL, the COPY
// limit (the same rows COPYed in binary into an empty table of the sink's shape: what
// PostgreSQL itself can take). It measures all of them NANGO_BENCH_RUNS times, one round
// after another, and judges the median of each round's ratio: a round's limits and operator
// runs are minutes apart, not the hour a whole run can take on a shared machine. The ratio is
// operator / max(fetch-only, COPY limit) for PostgreSQL, operator / max(fetch-only, best
// sink-only) for SQLite.
//
// Smoke (go test): 20,000 records of 1 KiB, page size 1000, one round. Full
// (NANGO_BENCH_FULL=1, make bench): NANGO_BENCH_RECORDS (default 1,000,000) records of
// about 1 KiB and of about 340 bytes, page sizes 100, 1000 and 10000, three rounds. To look
// at one case: NANGO_BENCH_PAGE_SIZE (one page size), NANGO_BENCH_BATCH_SIZES (sink-only
// batch sizes, comma-separated; the page sizes by default), NANGO_BENCH_SINKS
// (postgres,sqlite), NANGO_BENCH_RECORD_SIZES (the records' target sizes in bytes,
// comma-separated: 1024,300), NANGO_BENCH_LIMITS_ONLY=1 (the limits alone, without the API
// server and the manager: the operator's rows then read 0 s).
func TestThroughput(t *testing.T) {
	n, pageSizes, rounds, recordSizes := 20_000, []int{1000}, 1, []int{1024}
	if fullBench() {
		n, pageSizes, rounds, recordSizes = envInt(t, "NANGO_BENCH_RECORDS", 1_000_000), []int{100, 1000, 10000}, 3, []int{1024, 300}
	}
	if only := os.Getenv("NANGO_BENCH_PAGE_SIZE"); only != "" {
		pageSizes = []int{envInt(t, "NANGO_BENCH_PAGE_SIZE", 0)}
	}
	rounds = envInt(t, "NANGO_BENCH_RUNS", rounds)
	batchSizes := envInts(t, "NANGO_BENCH_BATCH_SIZES", pageSizes)
	recordSizes = envInts(t, "NANGO_BENCH_RECORD_SIZES", recordSizes)
	// NANGO_BENCH_LIMITS_ONLY=1 measures the limits alone: no API server, no manager.
	limitsOnly := os.Getenv("NANGO_BENCH_LIMITS_ONLY") == "1"
	var e *env
	if !limitsOnly {
		e = cluster(t)
	}
	pg := pgtest.StartServer(t)

	report := &strings.Builder{}
	var failures []string
	for _, size := range recordSizes {
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
			b := &throughputBench{t: t, e: e, n: n, recordSize: size, pg: pg, sinks: sinkKinds()}
			_, b.url = newSim(t, n, size) // dropped when the subtest ends: 1,000,000 records take a GiB
			results := make([]throughputRound, 0, rounds)
			for round := range rounds {
				t.Logf("records of %d B: round %d of %d", size, round+1, rounds)
				results = append(results, b.round(pageSizes, batchSizes))
			}
			failures = append(failures, b.report(report, results, pageSizes, batchSizes)...)
		})
	}
	t.Log("\n" + report.String())
	if out := os.Getenv("NANGO_BENCH_OUT"); out != "" {
		must(t, os.WriteFile(out, []byte(report.String()), 0o600))
	}
	for _, f := range failures {
		t.Error(f)
	}
}

// envInts reads a comma-separated list of integers from the environment, def when unset.
func envInts(t *testing.T, name string, def []int) []int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want positive integers, comma-separated", name, v)
		}
		out = append(out, n)
	}
	return out
}

// report writes the tables of one record size's rounds and answers the failures: a median
// ratio over its bound, or the manager's memory over its bounds.
func (b *throughputBench) report(report *strings.Builder, results []throughputRound, pageSizes, batchSizes []int) []string {
	n := b.n
	fmt.Fprintf(report, "%d records of ~%d B (record %d B); page sizes %v; %d rounds: medians, and each round's value in brackets\n\n",
		n, b.recordSize, len(records.JSON(n/2, 0, b.recordSize)), pageSizes, len(results))
	fmt.Fprintf(report, "| limit | page/batch size | time | records/s |\n|---|---|---|---|\n")
	for _, ps := range pageSizes {
		times := each(results, func(r throughputRound) time.Duration { return r.fetch[ps] })
		fmt.Fprintf(report, "| fetch-only | %d | %s | %.0f |\n", ps, durations(times), rate(n, median(times)))
	}
	if b.measuresCopy() {
		times := each(results, func(r throughputRound) time.Duration { return r.copy })
		fmt.Fprintf(report, "| COPY limit postgres | %d | %s | %.0f |\n", copyBatch, durations(times), rate(n, median(times)))
	}
	for _, kind := range b.sinks {
		for _, bs := range batchSizes {
			times := each(results, func(r throughputRound) time.Duration { return r.sink[kind][bs] })
			fmt.Fprintf(report, "| sink-only (WritePage) %s | %d | %s | %.0f |\n", kind, bs, durations(times), rate(n, median(times)))
		}
	}

	fmt.Fprintf(report, "\n| sink | page size | operator time | records/s | limit: max(fetch-only, COPY) for postgres, max(fetch-only, best WritePage) for sqlite | ratio | ratio to max(fetch-only, best WritePage) | max RSS | RSS at 10%% / 50%% / 90%% | CPU cores used: manager / machine / stolen |\n"+
		"|---|---|---|---|---|---|---|---|---|---|\n")
	var failures []string
	for _, kind := range b.sinks {
		for _, ps := range pageSizes {
			times := each(results, func(r throughputRound) time.Duration { return r.operator[kind][ps].elapsed })
			limits := each(results, func(r throughputRound) time.Duration { return r.limit(kind, ps) })
			ratios := each(results, func(r throughputRound) float64 {
				return r.operator[kind][ps].elapsed.Seconds() / r.limit(kind, ps).Seconds()
			})
			sinkRatios := each(results, func(r throughputRound) float64 {
				return r.operator[kind][ps].elapsed.Seconds() / r.slowerLimit(kind, ps).Seconds()
			})
			var maxRSS int64
			for _, r := range results {
				maxRSS = max(maxRSS, r.operator[kind][ps].maxRSS)
			}
			last := results[len(results)-1].operator[kind][ps]
			cores := func(cpu float64) float64 { return cpu / last.elapsed.Seconds() }
			fmt.Fprintf(report, "| %s | %d | %s | %.0f | %s | %s | %s | %d MiB | %d / %d / %d MiB | %.2f / %.2f / %.2f |\n",
				kind, ps, durations(times), rate(n, median(times)), durations(limits), ratioList(ratios), ratioList(sinkRatios),
				maxRSS/mib, last.rssAt[0]/mib, last.rssAt[1]/mib, last.rssAt[2]/mib,
				cores(last.managerCPU), cores(last.machineCPU), cores(last.stolenCPU))

			if ratio, bound := median(ratios), maxRatio(kind, ps); bound > 0 && ratio > bound {
				failures = append(failures, fmt.Sprintf("%d B records, %s page size %d: operator %.2f× its limit (median of %d; bound %.2f×)",
					b.recordSize, kind, ps, ratio, len(ratios), bound))
			}
			if rssBound := int64(300 * mib); maxRSS > rssBound {
				failures = append(failures, fmt.Sprintf("%d B records, %s page size %d: manager RSS reached %d MiB (bound %d MiB)",
					b.recordSize, kind, ps, maxRSS/mib, rssBound/mib))
			}
			for _, r := range results {
				if at := r.operator[kind][ps].rssAt; fullBench() && at[2] > at[0]*3/2+64*mib {
					failures = append(failures, fmt.Sprintf("%d B records, %s page size %d: manager RSS grew with the data set: %d MiB at 10%%, %d MiB at 90%%",
						b.recordSize, kind, ps, at[0]/mib, at[2]/mib))
				}
			}
		}
	}
	report.WriteString("\n")
	return failures
}

// maxRatio is the bound on the median ratio of kind at pageSize, 0 for none. Smoke runs
// are short and the machine shared, so their bound is loose (the operator's start and
// first reconcile weigh on 20,000 records). In full runs, PostgreSQL is held to 1.5× its
// COPY limit at page sizes 1000 and 10000 (page size 100 is reported only), SQLite to
// 1.25× its WritePage limit.
func maxRatio(kind string, pageSize int) float64 {
	switch {
	case !fullBench() && kind == "postgres":
		return 10
	case !fullBench():
		return 4
	case kind == "postgres" && pageSize < 1000:
		return 0
	case kind == "postgres":
		return 1.5
	default:
		return 1.25
	}
}

// sinkKinds are the sinks measured: postgres, sqlite, kafka and http, or those
// NANGO_BENCH_SINKS lists (comma-separated).
func sinkKinds() []string {
	if only := os.Getenv("NANGO_BENCH_SINKS"); only != "" {
		return strings.Split(only, ",")
	}
	return []string{"postgres", "sqlite", "kafka", "http"}
}

// throughputBench is what every round of TestThroughput shares: the API server, the
// emulator seeded with n records, and the PostgreSQL server.
type throughputBench struct {
	t             *testing.T
	e             *env
	url           string
	pg            *pgtest.Server
	n, recordSize int
	databases     int
	sinks         []string
}

// throughputRound is one measure of the limits and of the operator, by sink kind and page
// (or batch) size.
type throughputRound struct {
	fetch    map[int]time.Duration
	copy     time.Duration // the COPY limit, when postgres is measured
	sink     map[string]map[int]time.Duration
	operator map[string]map[int]operatorResult
}

// limit is what the operator's time into kind at pageSize is held to: the larger of
// fetch-only and the COPY limit for postgres, slowerLimit for the others.
func (r throughputRound) limit(kind string, pageSize int) time.Duration {
	if kind == "postgres" {
		return max(r.fetch[pageSize], r.copy)
	}
	return r.slowerLimit(kind, pageSize)
}

// measuresCopy tells whether the rounds measure the COPY limit: when they measure postgres.
func (b *throughputBench) measuresCopy() bool {
	return slices.Contains(b.sinks, "postgres")
}

// slowerLimit is the larger of fetch-only at pageSize and the best sink-only time of kind.
func (r throughputRound) slowerLimit(kind string, pageSize int) time.Duration {
	best := time.Duration(0)
	for _, d := range r.sink[kind] {
		if best == 0 || d < best {
			best = d
		}
	}
	return max(r.fetch[pageSize], best)
}

// round measures fetch-only at each page size, sink-only of both sinks at each batch size,
// then the operator into both sinks at each page size, each into a sink of its own that is
// dropped afterwards (a million records take a GiB).
func (b *throughputBench) round(pageSizes, batchSizes []int) throughputRound {
	t := b.t
	r := throughputRound{fetch: map[int]time.Duration{}, sink: map[string]map[int]time.Duration{},
		operator: map[string]map[int]operatorResult{}}
	for _, ps := range pageSizes {
		r.fetch[ps] = fetchOnly(t, b.url, ps, b.n)
	}
	if b.measuresCopy() {
		target := b.newSink("postgres")
		must(t, target.open().Close()) // creates the tables
		r.copy = copyLimit(t, target.pgURL, target.spec.Postgres.Table, b.url, b.n)
		target.drop()
	}
	for _, kind := range b.sinks {
		r.sink[kind] = map[int]time.Duration{}
		for _, bs := range batchSizes {
			target := b.newSink(kind)
			s := target.open()
			r.sink[kind][bs] = sinkOnly(t, s, b.url, bs, b.n)
			must(t, s.Close())
			target.drop()
		}
	}
	for _, kind := range b.sinks {
		r.operator[kind] = map[int]operatorResult{}
		for _, ps := range pageSizes {
			if b.e == nil {
				r.operator[kind][ps] = operatorResult{elapsed: time.Nanosecond} // limits only
				continue
			}
			target := b.newSink(kind)
			r.operator[kind][ps] = operatorRun(t, b.e, b.url, target, ps, b.n)
			// The sink holds exactly the emulator's records (smoke sizes: full sizes would
			// read a GiB back).
			if !fullBench() {
				s := target.open()
				if err := diffSink(s, generatedState(t, b.n, b.recordSize)); err != nil {
					t.Errorf("%s page size %d: %v", kind, ps, err)
				}
				must(t, s.Close())
			}
			target.drop()
		}
	}
	return r
}

// benchTarget is an empty sink of one kind: its spec, the Secrets it names besides the
// Nango one (name → data), and how the test opens it as its own reader and writer.
type benchTarget struct {
	spec    syncv1alpha1.SinkSpec
	pgURL   string
	secrets map[string]map[string]string
	open    func() rowReader
	drop    func()
}

// newSink makes an empty sink of kind. The event sinks' limits are measured with the
// sink's own WritePage in the test process: Kafka's producer (with its transactions) into
// a kfake cluster of the sink's own, and HTTP's POSTs to the test's endpoint with the
// checkpoints in memory instead of ConfigMaps.
func (b *throughputBench) newSink(kind string) benchTarget {
	t := b.t
	switch kind {
	case "sqlite":
		dir, err := os.MkdirTemp(t.TempDir(), "sqlite")
		must(t, err)
		spec := sqliteSinkSpec(filepath.Join(dir, "sink.db"), "contacts")
		return benchTarget{spec: spec, drop: func() { must(t, os.RemoveAll(dir)) }, open: func() rowReader {
			s, err := sqlite.Open(context.Background(), spec.SQLite.Path, sqlite.Options{Table: spec.SQLite.Table})
			must(t, err)
			return s
		}}
	case "kafka":
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		must(t, err)
		brokers := cluster.ListenAddrs()
		spec := syncv1alpha1.SinkSpec{Kafka: &syncv1alpha1.KafkaSink{Brokers: brokers, Topic: "bench.{model}"}}
		return benchTarget{spec: spec, drop: cluster.Close, open: func() rowReader {
			s, err := kafkasink.Open(kafkasink.Options{Brokers: brokers, Topic: "bench.{model}"})
			must(t, err)
			return kafkaBenchSink{s}
		}}
	case "http":
		rx := httpsinktest.New([]byte(benchSigningKey))
		srv := httptest.NewServer(rx)
		endpoint := srv.URL + "/hooks/nango"
		spec := syncv1alpha1.SinkSpec{HTTP: &syncv1alpha1.HTTPSink{
			URLSecretRef:        syncv1alpha1.SecretKeyReference{Name: "endpoint", Key: "url"},
			SigningKeySecretRef: syncv1alpha1.SecretKeyReference{Name: "endpoint", Key: "signingKey"}}}
		return benchTarget{spec: spec, drop: srv.Close,
			secrets: map[string]map[string]string{"endpoint": {"url": endpoint, "signingKey": benchSigningKey}},
			open: func() rowReader {
				s, err := httpsink.Open(httpsink.Options{URL: endpoint, SigningKey: []byte(benchSigningKey),
					Checkpoints: &memoryCheckpoints{}})
				must(t, err)
				return httpBenchSink{Sink: s, rx: rx}
			}}
	}
	b.databases++
	name := fmt.Sprintf("bench%d_%d", b.recordSize, b.databases)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, b.pg.CreateDatabase(ctx, name))
	pgURL := b.pg.DSN(name)
	return benchTarget{spec: postgresSinkSpec("contacts"), pgURL: pgURL,
		open: func() rowReader {
			s, err := postgres.Open(context.Background(), pgURL, postgres.Options{Table: "contacts"})
			must(t, err)
			return s
		},
		drop: func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			must(t, b.pg.DropDatabase(ctx, name))
		}}
}

// benchSigningKey signs the http sink's batches in the benchmarks.
const benchSigningKey = "0123456789abcdef0123456789abcdef"

// kafkaBenchSink is a kafka sink that reads its rows back as a read_committed consumer.
type kafkaBenchSink struct{ *kafkasink.Sink }

func (k kafkaBenchSink) ReadRows(ctx context.Context, key sink.Key) ([]sink.Record, error) {
	return kafkaReader(k).ReadRows(ctx, key)
}

// httpBenchSink is an http sink with the rows its endpoint made.
type httpBenchSink struct {
	*httpsink.Sink
	rx *httpsinktest.Receiver
}

func (h httpBenchSink) ReadRows(ctx context.Context, key sink.Key) ([]sink.Record, error) {
	return h.rx.ReadRows(ctx, key)
}

// memoryCheckpoints keeps an http sink's checkpoints in memory: the POST-only limit.
type memoryCheckpoints struct {
	mu   sync.Mutex
	kept map[sink.Key]sink.Checkpoint
}

func (m *memoryCheckpoints) Load(_ context.Context, key sink.Key) (sink.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.kept[key], nil
}

func (m *memoryCheckpoints) Save(_ context.Context, key sink.Key, c sink.Checkpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kept == nil {
		m.kept = map[sink.Key]sink.Checkpoint{}
	}
	m.kept[key] = c
	return nil
}

func (m *memoryCheckpoints) Delete(_ context.Context, key sink.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.kept, key)
	return nil
}

// each is f of every round.
func each[T any](rounds []throughputRound, f func(throughputRound) T) []T {
	out := make([]T, len(rounds))
	for i, r := range rounds {
		out[i] = f(r)
	}
	return out
}

// median is the middle value (the upper one of an even count).
func median[T time.Duration | float64](values []T) T {
	sorted := append([]T(nil), values...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[len(sorted)/2]
}

// durations prints the median, then each round's value when there are several.
func durations(values []time.Duration) string {
	return medianAndRounds(values,
		func(v time.Duration) string { return v.Round(time.Millisecond).String() },
		func(v time.Duration) string { return v.Round(10 * time.Millisecond).String() })
}

// ratioList prints the median ratio in bold, then each round's when there are several.
func ratioList(values []float64) string {
	return medianAndRounds(values,
		func(v float64) string { return fmt.Sprintf("**%.2f**", v) },
		func(v float64) string { return fmt.Sprintf("%.2f", v) })
}

// medianAndRounds prints the median of values, then every value in brackets when there are
// several.
func medianAndRounds[T time.Duration | float64](values []T, formatMedian, formatRound func(T) string) string {
	out := formatMedian(median(values))
	if len(values) > 1 {
		each := make([]string, len(values))
		for i, v := range values {
			each[i] = formatRound(v)
		}
		out += " (" + strings.Join(each, ", ") + ")"
	}
	return out
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// generatedState is what the sink holds after syncing newSim's records.
func generatedState(t *testing.T, n, size int) map[string]state {
	t.Helper()
	want := make(map[string]state, n)
	for i := range n {
		h, err := hashPayload(records.JSON(i, 0, size))
		must(t, err)
		want[records.ID(i)] = state{hash: h}
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

// sinkOnly writes the emulator's n records with sink.WritePage in pages of batch records,
// and answers the time spent inside WritePage. The pages are the records a sync writes,
// converted as a sync converts them (ids, payloads, Nango's cursors and times): they are
// read from the emulator before each write, which is not counted.
func sinkOnly(t *testing.T, s sink.Sink, url string, batch, n int) time.Duration {
	t.Helper()
	spent, written := writeFrom(t, s, url, "", batch)
	if written != n {
		t.Fatalf("sink-only wrote %d records, want %d", written, n)
	}
	return spent
}

// operatorResult is one sync by the manager binary.
type operatorResult struct {
	elapsed time.Duration
	maxRSS  int64
	rssAt   [3]int64 // at 10%, 50% and 90% of the records written
	// CPU time used meanwhile, in seconds: by the manager, by the whole machine (the
	// emulator, the API server and PostgreSQL too), and stolen from it by other guests.
	managerCPU, machineCPU, stolenCPU float64
}

type sample struct {
	at    time.Time
	value int64
}

// operatorRun starts a manager, creates one NangoSync and waits until it is Ready with
// every record written, sampling the manager's RSS every 100 ms.
func operatorRun(t *testing.T, e *env, url string, target benchTarget, pageSize, n int) operatorResult {
	t.Helper()
	spec := target.spec
	namespace := e.newNamespace(t, benchSecretKey, target.pgURL)
	for name, data := range target.secrets {
		must(t, e.k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			StringData: data}))
	}
	kind := sinks.DisplayName(spec)
	kind = kind[:strings.IndexByte(kind, '/')]
	args := []string{"--nango-rate-limit", "1000000000", "--max-concurrent-reconciles", "4", "--allowed-nango-urls", url}
	args = append(args, strings.Fields(os.Getenv("NANGO_BENCH_MANAGER_ARGS"))...)
	pprofAddr := freeAddr(t)
	profileDir := os.Getenv("NANGO_BENCH_PROFILE_DIR")
	if profileDir != "" {
		args = append(args, "--pprof-bind-address", pprofAddr)
	}
	m := e.startManagerWithEnv(t, strings.Fields(os.Getenv("NANGO_BENCH_MANAGER_ENV")), args...)
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
	cpuBefore, err := cpuSeconds(m.cmd.Process.Pid)
	must(t, err)
	busyBefore, stealBefore, err := machineCPU()
	must(t, err)
	start := time.Now()
	must(t, e.k8s.Create(context.Background(), ns))
	if profileDir != "" {
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
	if dir := os.Getenv("NANGO_BENCH_LOG_DIR"); dir != "" {
		// The first line is when the NangoSync was created, to read the log's times against.
		path := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.log", kind, pageSize, start.UnixMilli()))
		must(t, os.WriteFile(path, fmt.Appendf(nil, "created %s\n%s", start.Format(time.RFC3339Nano), m.output), 0o644))
	}
	cpuAfter, err := cpuSeconds(m.cmd.Process.Pid)
	must(t, err)
	busyAfter, stealAfter, err := machineCPU()
	must(t, err)
	res.managerCPU, res.machineCPU, res.stolenCPU = cpuAfter-cpuBefore, busyAfter-busyBefore, stealAfter-stealBefore
	close(stopSampling)
	<-sampled
	// Deleted while its manager runs, so that its finalizer goes before its sink is dropped.
	must(t, e.k8s.Delete(context.Background(), ns))
	eventually(t, time.Minute, 100*time.Millisecond, func() error {
		if _, err := e.getSync(namespace, "bench"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("NangoSync not deleted yet: %v", err)
		}
		return nil
	})

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

// profileManager records a profile of the manager through its pprof endpoint while the
// sync runs, for NANGO_BENCH_PROFILE_SECONDS (default 10) seconds, into path; the channel
// closes when it is written. NANGO_BENCH_PROFILE names the profile: "profile" (CPU, the
// default), "trace" (an execution trace) or "allocs". Inspect it with go tool pprof -top
// <manager binary> path, or go tool trace path.
func profileManager(t *testing.T, addr, path string) <-chan struct{} {
	t.Helper()
	seconds := envInt(t, "NANGO_BENCH_PROFILE_SECONDS", 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		kind := cmp.Or(os.Getenv("NANGO_BENCH_PROFILE"), "profile")
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, seconds))
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
