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

package controller

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
)

// Issue 14, item 11: three pages of 1,000 records of 60 KiB, as in the probe that raised
// the heap by 252 MiB against the chart's 256 MiB limit when the client accepted answers
// of 64 MiB.
const (
	bigRecords     = 3000
	bigRecordBytes = 60 << 10
	// chartMemoryLimit is the chart's resources.limits.memory, which it passes to the
	// manager as GOMEMLIMIT.
	chartMemoryLimit = 256 << 20
	// maxLiveHeapGrowth bounds what copying the big pages adds to the live heap. With the
	// 16 MiB answer cap and batches of at most 16 MiB, a sync holds an answer, its
	// converted records, a page read ahead and a batch being written: 81 MiB when this
	// test was written. With a 64 MiB cap the same sync held 159 MiB, and the test fails.
	maxLiveHeapGrowth = 120 << 20
)

// bigRecordsNango serves n records of recordBytes each through GET /records, honouring
// limit and cursor. It streams every answer, so that it holds no page in memory.
type bigRecordsNango struct {
	n, recordBytes int

	mu     sync.Mutex
	limits []int // of every request, in order
}

func (b *bigRecordsNango) stamp(i int) string {
	return time.Date(2026, 4, 14, 18, 46, 3, 0, time.UTC).Add(time.Duration(i) * time.Millisecond).
		Format("2006-01-02T15:04:05.000000+00:00")
}

func (b *bigRecordsNango) cursor(i int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s||00000000-0000-4000-8000-%012d", b.stamp(i), i)))
}

func (b *bigRecordsNango) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	b.mu.Lock()
	b.limits = append(b.limits, limit)
	b.mu.Unlock()
	from := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		_, id, err := nango.DecodeCursor(c)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		last, _ := strconv.Atoi(id[len(id)-12:])
		from = last + 1
	}
	to := min(b.n, from+limit)
	padding := strings.Repeat("x", b.recordBytes)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"records":[`))
	for i := from; i < to; i++ {
		if i > from {
			_, _ = w.Write([]byte(","))
		}
		_, _ = fmt.Fprintf(w, `{"id":"rec-%05d","blob":"%s","_nango_metadata":{"first_seen_at":"%s","last_modified_at":"%s",`+
			`"last_action":"ADDED","deleted_at":null,"pruned_at":null,"cursor":"%s"}}`, i, padding, b.stamp(i), b.stamp(i), b.cursor(i))
	}
	next := "null"
	if to < b.n {
		next = strconv.Quote(b.cursor(to - 1))
	}
	_, _ = w.Write([]byte(`],"next_cursor":` + next + `}`))
}

// peakLiveHeap samples the live heap (as of the last garbage collection) until stop is
// closed, and answers the largest value seen.
func peakLiveHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		sample := []runtimemetrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			runtimemetrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// TestLargePagesStayWithinTheChartMemoryLimit copies 3 pages of 1,000 records of 60 KiB
// into SQLite under the chart's GOMEMLIMIT, and holds the growth of the live heap to
// maxLiveHeapGrowth: the answer cap (16 MiB) refuses the 60 MiB pages, and the reader
// halves its page size until an answer fits. Raising the client's cap back to 64 MiB
// (defaultMaxResponseBytes) makes it fail.
func TestLargePagesStayWithinTheChartMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(chartMemoryLimit))

	nangoServer := &bigRecordsNango{n: bigRecords, recordBytes: bigRecordBytes}
	server := httptest.NewServer(nangoServer)
	defer server.Close()
	client, err := nango.NewClient(server.URL, "3f1c8a52-0a4b-4c61-9d7e-5b2a7c9e1f00")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	snk, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "big.db"), sqlite.Options{Table: "contacts"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = snk.Close() }()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &NangoSyncReconciler{metrics: m, Options: Options{MaxRecordsPerReconcile: 10 * bigRecords, MaxTimePerReconcile: 10 * time.Minute}}
	nsync := &syncv1alpha1.NangoSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: "crm", Name: "big", UID: "3f1c0e4a-0000-4000-8000-0000000000bb"},
		Spec: syncv1alpha1.NangoSyncSpec{ProviderConfigKey: "hubspot", ConnectionID: "acme", Model: "Contact", PageSize: 1000,
			Sink: syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{Path: "big.db", Table: "contacts"}}},
	}

	runtime.GC()
	before := peakLiveHeap(closed())
	baseline := <-before
	stop := make(chan struct{})
	peak := peakLiveHeap(stop)
	p, err := r.copyPages(ctx, nsync, client, snk, sink.Key(nsync.DataSet()), "")
	close(stop)
	growth := int64(<-peak) - int64(baseline)
	if err != nil {
		t.Fatalf("copy the big pages: %v", err)
	}
	if !p.complete || p.written.Added != bigRecords {
		t.Fatalf("copied %+v (complete %v), want %d records added to the end", p.written, p.complete, bigRecords)
	}
	nangoServer.mu.Lock()
	t.Logf("live heap grew by %d MiB over %d MiB; requests with limits %v", growth>>20, baseline>>20, nangoServer.limits)
	nangoServer.mu.Unlock()
	if growth > maxLiveHeapGrowth {
		t.Fatalf("the live heap grew by %d MiB copying pages of 60 MiB, more than %d MiB: under the chart's %d MiB limit the pod would run out of memory",
			growth>>20, maxLiveHeapGrowth>>20, chartMemoryLimit>>20)
	}
}

// closed answers a closed channel.
func closed() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
