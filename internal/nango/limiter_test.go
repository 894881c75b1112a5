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
	"sync"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// runCallers makes one ListRecords call from each of n goroutines, each with
// its own client built from one registry, and returns the errors and the
// wall time.
func runCallers(t testing.TB, url, key string, reg *nango.LimiterRegistry, n int) ([]error, time.Duration) {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		c, err := nango.NewClient(url, key, nango.WithLimiterRegistry(reg), nango.WithRateLimitRetries(10))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req := listReq()
			req.Limit = 10
			_, errs[i] = c.ListRecords(context.Background(), req)
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return errs, time.Since(t0)
}

// idealDuration is the least time n requests need under a budget of limit
// per window: the last batch can start only after ceil(n/limit)-1 windows.
func idealDuration(n, limit int, window time.Duration) time.Duration {
	batches := (n + limit - 1) / limit
	return time.Duration(batches-1) * window
}

// TestSharedLimiter: 200 concurrent callers against an account limited to
// 50 requests per 2-second window. Every request succeeds, none is refused
// with a 429, and the budget is respected (it cannot finish before 6 s).
func TestSharedLimiter(t *testing.T) {
	const callers, limit, window = 200, 50, 2 * time.Second
	sim, srv, key := startSim(t, nangosim.Options{RateLimit: nangosim.RateLimit{Limit: limit, Window: window}}, 20)
	reg := nango.NewLimiterRegistry(nango.LimiterConfig{Limit: limit, Window: window})
	errs, took := runCallers(t, srv.URL, key, reg, callers)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	st := sim.Stats()
	if st.RecordsRequests != callers {
		t.Errorf("%d requests reached Nango, want %d", st.RecordsRequests, callers)
	}
	if st.RateLimited != 0 {
		t.Errorf("%d requests were refused with 429", st.RateLimited)
	}
	if ideal := idealDuration(callers, limit, window); took < ideal {
		t.Errorf("finished in %s, faster than the budget allows (%s)", took, ideal)
	}
	t.Logf("%d callers in %s (ideal %s)", callers, took, idealDuration(callers, limit, window))
}

// TestLimiterWaitsOut429s: the client believes in a budget twice the real
// one. The 429s it then meets are waited out (Retry-After) and every request
// still succeeds; the limiter also learns the real limit from the headers.
func TestLimiterWaitsOut429s(t *testing.T) {
	const callers, limit, window = 40, 10, time.Second
	sim, srv, key := startSim(t, nangosim.Options{RateLimit: nangosim.RateLimit{Limit: limit, Window: window}}, 5)
	reg := nango.NewLimiterRegistry(nango.LimiterConfig{Limit: 2 * limit, Window: window})
	errs, _ := runCallers(t, srv.URL, key, reg, callers)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	st := sim.Stats()
	if st.RecordsRequests != callers {
		t.Errorf("%d served requests, want %d", st.RecordsRequests, callers)
	}
	t.Logf("%d 429s waited out", st.RateLimited)
}

// BenchmarkSharedLimiter measures 200 callers sharing one key against an
// account limited to 50 requests per 2 s, against the ideal 6 s. Run with
// -benchtime=1x (each iteration takes about 6 s).
func BenchmarkSharedLimiter(b *testing.B) {
	const callers, limit, window = 200, 50, 2 * time.Second
	ideal := idealDuration(callers, limit, window)
	var total time.Duration
	var refused int64
	for range b.N {
		sim, srv, key := startSim(b, nangosim.Options{RateLimit: nangosim.RateLimit{Limit: limit, Window: window}}, 20)
		reg := nango.NewLimiterRegistry(nango.LimiterConfig{Limit: limit, Window: window})
		errs, took := runCallers(b, srv.URL, key, reg, callers)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		total += took
		refused += sim.Stats().RateLimited
		srv.Close()
	}
	mean := total / time.Duration(b.N)
	b.ReportMetric(mean.Seconds(), "s/run")
	b.ReportMetric(ideal.Seconds(), "ideal-s")
	b.ReportMetric(100*(mean.Seconds()/ideal.Seconds()-1), "%over-ideal")
	b.ReportMetric(float64(refused)/float64(b.N), "429s/run")
}
