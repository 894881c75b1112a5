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

package sinktest

import (
	"context"
	"fmt"
	"testing"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// BenchPageSize is the number of records in each page BenchmarkWritePage writes.
const BenchPageSize = 1000

// BenchmarkWritePage measures writing pages of BenchPageSize records, as a first full sync
// does: alternately a page of new records and a page of newer versions of the previous
// page's records, each with a realistic payload of about 300 bytes. It reports records/s.
func BenchmarkWritePage(b *testing.B, s sink.Sink) {
	// Cancellable, as the reconciler's context is.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := key("bench")
	pages := 0
	b.ResetTimer()
	for b.Loop() {
		// Page p holds records of the batch p/2: new ones when p is even, updated otherwise.
		batch, action := pages/2, added
		if pages%2 == 1 {
			action = updated
		}
		if _, err := s.WritePage(ctx, k, benchPage(batch, pages, action)); err != nil {
			b.Fatal(err)
		}
		pages++
	}
	b.ReportMetric(float64(pages*BenchPageSize)/b.Elapsed().Seconds(), "records/s")
}

func benchPage(batch, version int, action sink.Action) sink.Page {
	records := make([]sink.Record, BenchPageSize)
	for i := range records {
		id := fmt.Sprintf("contact-%d-%04d", batch, i)
		records[i] = record(id, action, version, fmt.Sprintf(
			`{"id":%q,"email":"%s@example.com","firstName":"Ada","lastName":"Lovelace","company":"Analytical Engines Ltd",`+
				`"phone":"+44 20 7946 0%03d","lifecycleStage":"customer","score":%d,"tags":["vip","emea"],`+
				`"address":{"street":"12 St James's Square","city":"London","postcode":"SW1Y 4JH"},"version":%d}`,
			id, id, i%1000, i*version, version))
	}
	return sink.Page{Records: records, Checkpoint: fmt.Sprint("bench-", version)}
}
