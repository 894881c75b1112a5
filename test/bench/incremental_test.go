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
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
	"github.com/nango-operator/nango-operator/internal/testutil/records"
)

// TestIncrementalSync measures an incremental sync: U updates spread evenly over a table
// that already holds the emulator's N records of about 1 KiB. The test loads the table
// itself with WritePage (pages of 10,000, timed as "initial load"), updates every N/U-th
// record in the emulator and writes the updated records with WritePage in pages of 1000
// ("sink-only"), then updates them again and lets a fresh manager sync them with page
// size 1000 ("operator": from the NangoSync's creation to Ready with every update counted).
// At smoke sizes it checks the table against the emulator at the end.
//
// Smoke (go test): 20,000 records, 200 updates. Full (NANGO_BENCH_FULL=1, make bench):
// NANGO_BENCH_RECORDS (default 1,000,000) records, NANGO_BENCH_UPDATES (default 10,000)
// updates. NANGO_BENCH_SINKS (postgres,sqlite; postgres by default) chooses the sinks.
func TestIncrementalSync(t *testing.T) {
	n, updates := 20_000, 200
	if fullBench() {
		n, updates = envInt(t, "NANGO_BENCH_RECORDS", 1_000_000), envInt(t, "NANGO_BENCH_UPDATES", 10_000)
	}
	const recordSize, pageSize = 1024, 1000
	kinds := []string{"postgres"}
	if os.Getenv("NANGO_BENCH_SINKS") != "" {
		kinds = sinkKinds()
	}
	b := &throughputBench{t: t, e: cluster(t), n: n, recordSize: recordSize, pg: pgtest.StartServer(t), sinks: kinds}
	sim, url := newSim(t, n, recordSize)

	report := &strings.Builder{}
	fmt.Fprintf(report, "%d updates spread over %d records of ~%d B, page size %d\n\n"+
		"| sink | initial load (WritePage, pages of 10,000) | %d updates, sink-only (WritePage) | %d updates, operator (create → Ready) |\n|---|---|---|---|\n",
		updates, n, recordSize, pageSize, updates, updates)
	version := 0
	for _, kind := range kinds {
		target := b.newSink(kind)
		s := target.open()
		load, _ := writeFrom(t, s, url, "", 10_000)
		version++
		updateSpread(t, sim, n, updates, version, recordSize)
		incremental, written := writeFrom(t, s, url, mustCheckpoint(t, s), pageSize)
		if written != updates {
			t.Fatalf("%s: the incremental sync wrote %d records, want %d", kind, written, updates)
		}
		version++
		updateSpread(t, sim, n, updates, version, recordSize)
		op := operatorRun(t, b.e, url, target, pageSize, n+2*updates)
		fmt.Fprintf(report, "| %s | %s | %s | %s |\n", kind, load.Round(time.Millisecond),
			incremental.Round(time.Millisecond), op.elapsed.Round(time.Millisecond))
		if !fullBench() {
			want, _, _ := emulatorState(t, newNangoClient(t, url), pageSize)
			if err := diffSink(s, want); err != nil {
				t.Errorf("%s: %v", kind, err)
			}
		}
		must(t, s.Close())
		target.drop()
	}
	t.Log("\n" + report.String())
	if out := os.Getenv("NANGO_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		must(t, err)
		_, err = f.WriteString("\n" + report.String())
		must(t, err)
		must(t, f.Close())
	}
}

// updateSpread makes a new version of every (n/updates)-th record in the emulator.
func updateSpread(t *testing.T, sim *nangosim.Sim, n, updates, version, size int) {
	t.Helper()
	step := n / updates
	batch := make([]json.RawMessage, 0, 1000)
	for u := range updates {
		batch = append(batch, records.JSON(u*step, version, size))
		if len(batch) == cap(batch) || u == updates-1 {
			_, err := sim.UpsertRecords(benchModelRef, batch)
			must(t, err)
			batch = batch[:0]
		}
	}
}

// mustCheckpoint is the cursor of the bench key's checkpoint.
func mustCheckpoint(t *testing.T, s sink.Sink) string {
	t.Helper()
	c, err := s.Checkpoint(context.Background(), benchKey)
	must(t, err)
	return c.Cursor
}

// writeFrom reads the emulator's records after cursor in pages of pageSize and writes each
// with WritePage and the page's checkpoint, as a sync does with no owner (converted and
// prepared with sink.Prepare as the reconciler's page reader does, which is not counted);
// it answers the time spent inside WritePage and the records written.
func writeFrom(t *testing.T, s sink.Sink, url, cursor string, pageSize int) (time.Duration, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background()) // cancellable, as a reconcile's is
	defer cancel()
	var spent time.Duration
	written := 0
	eachPage(t, url, cursor, pageSize, func(records []sink.Record, checkpoint string) {
		sink.Prepare(records) // as the reconciler's page reader does, ahead of the writer
		began := time.Now()
		if _, err := s.WritePage(ctx, benchKey, sink.Page{Records: records, Checkpoint: checkpoint}); err != nil {
			t.Fatal(err)
		}
		spent += time.Since(began)
		written += len(records)
	})
	return spent, written
}

// eachPage reads the emulator's records after cursor in pages of pageSize, converts them
// as a sync does, and hands each page to f with the checkpoint a sync stores after it.
func eachPage(t *testing.T, url, cursor string, pageSize int, f func(page []sink.Record, checkpoint string)) {
	t.Helper()
	c := newNangoClient(t, url)
	for {
		page, err := c.ListRecords(context.Background(), nango.ListRecordsRequest{
			ConnectionID: benchConn, ProviderConfigKey: benchPCK, Model: benchModel, Cursor: cursor, Limit: pageSize})
		must(t, err)
		converted, err := sink.FromNango(page.Records)
		must(t, err)
		checkpoint := page.NextCursor
		if checkpoint == "" && len(converted) > 0 {
			checkpoint = converted[len(converted)-1].Cursor
		}
		f(converted, checkpoint)
		if page.NextCursor == "" {
			return
		}
		cursor = page.NextCursor
	}
}
