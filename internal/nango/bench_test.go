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
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/testutil/records"
)

const benchPageSize = 1000

// benchSim is an emulator holding n records of about 1 KiB, and its secret key.
func benchSim(b *testing.B, n int) (*nangosim.Sim, string) {
	b.Helper()
	sim := nangosim.New(nangosim.Options{})
	if err := sim.CreateConnection(contacts.ConnectionRef, "hubspot"); err != nil {
		b.Fatal(err)
	}
	batch := make([]json.RawMessage, 0, benchPageSize)
	for start := 0; start < n; start += benchPageSize {
		batch = batch[:0]
		for i := start; i < min(n, start+benchPageSize); i++ {
			batch = append(batch, json.RawMessage(records.JSON(i, 0, 1024)))
		}
		if _, err := sim.UpsertRecords(contacts, batch); err != nil {
			b.Fatal(err)
		}
	}
	env, _ := sim.Environment("")
	return sim, env.SecretKey
}

// reportPerRecord reports the time a record took and the records a second.
func reportPerRecord(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkListRecords pages through an in-process emulator over HTTP (loopback), pages of
// 1000 records of about 1 KiB, starting again from the beginning when the model is
// exhausted. One iteration is one page; ns/record is what a fetch-only sync pays per
// record, the emulator's share (about 0.5 µs a record) included.
func BenchmarkListRecords(b *testing.B) {
	sim, key := benchSim(b, 20*benchPageSize)
	srv := httptest.NewServer(sim.Handler())
	b.Cleanup(srv.Close)
	// A limiter that never waits: the benchmark measures CPU, not Nango's budget.
	c, err := nango.NewClient(srv.URL, key,
		nango.WithLimiterRegistry(nango.NewLimiterRegistry(nango.LimiterConfig{Limit: 1 << 30, Window: time.Second})))
	if err != nil {
		b.Fatal(err)
	}
	req := listReq()
	req.Limit = benchPageSize
	ctx := context.Background()

	b.ReportAllocs()
	b.ResetTimer()
	got := 0
	for range b.N {
		page, err := c.ListRecords(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if len(page.Records) != benchPageSize {
			b.Fatalf("page of %d records, want %d", len(page.Records), benchPageSize)
		}
		got += len(page.Records)
		req.Cursor = page.NextCursor
	}
	b.StopTimer()
	reportPerRecord(b, got)
}

// BenchmarkDecodePage decodes one emulator answer of 1000 records of about 1 KiB: the
// client's own CPU per page, without HTTP or the emulator. The reference is the
// encoding/json decoder that decodePage replaced.
func BenchmarkDecodePage(b *testing.B) {
	sim, key := benchSim(b, benchPageSize)
	r := httptest.NewRequest(http.MethodGet, "/records?model=Contact&limit=1000", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	r.Header.Set("Connection-Id", contacts.ConnectionID)
	r.Header.Set("Provider-Config-Key", contacts.ProviderConfigKey)
	w := httptest.NewRecorder()
	sim.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatal(w.Code, w.Body.String())
	}
	body := w.Body.Bytes()
	for _, bc := range []struct {
		name   string
		decode func([]byte) (*nango.RecordsPage, error)
	}{{"decodePage", nango.DecodePage}, {"reference", referenceDecodePage}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for range b.N {
				page, err := bc.decode(body)
				if err != nil || len(page.Records) != benchPageSize {
					b.Fatalf("%v", err)
				}
			}
			reportPerRecord(b, b.N*benchPageSize)
		})
	}
}
