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
	"os"
	"strings"
	"testing"
	"time"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/postgres"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
)

// TestHistoryThroughput measures an initial sync of N records of about 1 KiB into a table
// with spec.sink.history against the same sync into today's table (no history), in the
// same run and round after round: the sink alone (sink-only: the emulator's records
// written from memory at the page size, as TestThroughput's limit) and the operator (the
// manager binary, end to end). It judges the median of each round's operator ratio.
//
// Smoke (go test): 20,000 records, page size 1000, one round. Full (NANGO_BENCH_FULL=1,
// make bench): NANGO_BENCH_RECORDS (default 1,000,000) records, three rounds, target
// under 1.3×. NANGO_BENCH_SINKS and NANGO_BENCH_RUNS as in TestThroughput;
// NANGO_BENCH_MEASURES=sink-only measures the sinks alone (no API server needed).
func TestHistoryThroughput(t *testing.T) {
	n, rounds, maxRatio := 20_000, 1, 3.0 // smoke: loose, the run is short and the machine shared
	if fullBench() {
		n, rounds, maxRatio = envInt(t, "NANGO_BENCH_RECORDS", 1_000_000), 3, 1.3
	}
	rounds = envInt(t, "NANGO_BENCH_RUNS", rounds)
	const recordSize, pageSize = 1024, 1000
	operator := os.Getenv("NANGO_BENCH_MEASURES") != "sink-only"
	var tables []string // history is kept by the table sinks only
	for _, kind := range sinkKinds() {
		if kind == "postgres" || kind == "sqlite" {
			tables = append(tables, kind)
		}
	}
	b := &throughputBench{t: t, n: n, recordSize: recordSize, pg: pgtest.StartServer(t), sinks: tables}
	_, b.url = newSim(t, n, recordSize)

	type measure struct{ sinkOnly, operator [2][]time.Duration } // [0] today's table, [1] with history
	results := map[string]*measure{}
	for round := range rounds {
		t.Logf("round %d of %d", round+1, rounds)
		for _, kind := range b.sinks {
			if results[kind] == nil {
				results[kind] = &measure{}
			}
			m := results[kind]
			for mode, history := range []bool{false, true} {
				target := b.newSink(kind)
				target.spec.History = history
				s := openHistorySink(t, target.spec, target.pgURL)
				m.sinkOnly[mode] = append(m.sinkOnly[mode], sinkOnly(t, s, b.url, pageSize, n))
				must(t, s.Close())
				target.drop()

				if !operator {
					continue
				}
				if b.e == nil {
					b.e = cluster(t)
				}
				target = b.newSink(kind)
				target.spec.History = history
				m.operator[mode] = append(m.operator[mode], operatorRun(t, b.e, b.url, target, pageSize, n).elapsed)
				if history && !fullBench() {
					expectFullHistory(t, target.spec, target.pgURL, n)
				}
				target.drop()
			}
		}
	}

	report := &strings.Builder{}
	fmt.Fprintf(report, "%d records of ~%d B, page size %d, %d rounds: medians, and each round's value in brackets\n\n",
		n, recordSize, pageSize, rounds)
	fmt.Fprintf(report, "| sink | measure | today's table | with history | ratio: median (rounds) |\n|---|---|---|---|---|\n")
	var failures []string
	for _, kind := range b.sinks {
		m := results[kind]
		for _, row := range []struct {
			name  string
			times [2][]time.Duration
		}{{"sink-only", m.sinkOnly}, {"operator", m.operator}} {
			if len(row.times[0]) == 0 {
				continue
			}
			ratios := make([]float64, rounds)
			for i := range ratios {
				ratios[i] = row.times[1][i].Seconds() / row.times[0][i].Seconds()
			}
			fmt.Fprintf(report, "| %s | %s | %s | %s | %s |\n", kind, row.name,
				durations(row.times[0]), durations(row.times[1]), ratioList(ratios))
			if ratio := median(ratios); row.name == "operator" && ratio > maxRatio {
				failures = append(failures, fmt.Sprintf("%s: the operator's sync with history took %.2f× today's (median of %d; target %.2f×)",
					kind, ratio, len(ratios), maxRatio))
			}
		}
	}
	t.Log("\n" + report.String())
	if out := os.Getenv("NANGO_BENCH_HISTORY_OUT"); out != "" {
		must(t, os.WriteFile(out, []byte(report.String()), 0o600))
	}
	for _, f := range failures {
		t.Error(f)
	}
}

// historySink is a sink the benchmark writes and reads the history of.
type historySink interface {
	sink.Sink
	History(ctx context.Context, key sink.Key) ([]sink.Version, error)
}

// openHistorySink opens the sink of spec (and pgURL), with a history when spec asks for one.
func openHistorySink(t *testing.T, spec syncv1alpha1.SinkSpec, pgURL string) historySink {
	t.Helper()
	var (
		s   historySink
		err error
	)
	if spec.Postgres != nil {
		s, err = postgres.Open(context.Background(), pgURL, postgres.Options{Table: spec.Postgres.Table, History: spec.History})
	} else {
		s, err = sqlite.Open(context.Background(), spec.SQLite.Path, sqlite.Options{Table: spec.SQLite.Table, History: spec.History})
	}
	must(t, err)
	return s
}

// expectFullHistory fails unless the history holds one current version of each of the n records.
func expectFullHistory(t *testing.T, spec syncv1alpha1.SinkSpec, pgURL string, n int) {
	t.Helper()
	s := openHistorySink(t, spec, pgURL)
	defer func() { must(t, s.Close()) }()
	versions, err := s.History(context.Background(), benchKey)
	must(t, err)
	if len(versions) != n {
		t.Errorf("history holds %d versions, want %d", len(versions), n)
	}
	for _, v := range versions {
		if v.ValidTo != nil {
			t.Fatalf("version %q of %q is closed after an initial sync", v.Cursor, v.ID)
		}
	}
}
