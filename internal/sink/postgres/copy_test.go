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

package postgres

import (
	"io"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/testutil/records"
)

// benchRecords are n prepared records of about 1 KiB, as a sync writes them.
func benchRecords(tb testing.TB, n int) []sink.Record {
	at := time.Date(2026, 4, 14, 18, 46, 3, 0, time.UTC)
	recs := make([]sink.Record, n)
	for i := range recs {
		recs[i] = sink.Record{ID: records.ID(i), Payload: records.JSON(i, 0, 1024), Action: sink.ActionAdded,
			FirstSeenAt: at, LastModifiedAt: at, Cursor: "MjAyNi0wNC0xNFQxODo0NjowMy4wMDBafHwwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDE="}
	}
	prepared, err := sink.PreparePage(sink.Key{ProviderConfigKey: "p", ConnectionID: "c", Model: "m", Variant: "base"}, recs)
	if err != nil {
		tb.Fatal(err)
	}
	return prepared.Records
}

// BenchmarkCopyRows measures encoding a page of 1,000 records of 1 KiB in the binary COPY
// format, read as pgconn reads it.
func BenchmarkCopyRows(b *testing.B) {
	recs := benchRecords(b, 1000)
	key := &sink.Key{ProviderConfigKey: "hubspot", ConnectionID: "acme", Model: "Contact", Variant: "base"}
	buf := make([]byte, 65536)
	b.ReportAllocs()
	for b.Loop() {
		r := newCopyRows(key, recs)
		for {
			if _, err := r.Read(buf); err == io.EOF {
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

// BenchmarkPreparePage measures what every sink does to a page of 1,000 records of 1 KiB
// before writing it (validation, normalisation, one version per id).
func BenchmarkPreparePage(b *testing.B) {
	recs := benchRecords(b, 1000)
	key := sink.Key{ProviderConfigKey: "hubspot", ConnectionID: "acme", Model: "Contact", Variant: "base"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sink.PreparePage(key, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
