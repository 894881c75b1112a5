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
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nango"
)

func answering(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func emptyPage(w http.ResponseWriter) {
	_, _ = w.Write([]byte(`{"records":[],"next_cursor":null}`))
}

// TestHuge429IsBoundedAndStaysWithItsHost (issue 14, item 14): a 429 asking for a wait of a
// century is capped at five minutes, and pauses only the clients of the same host and key:
// another host, with the same key, is not held back.
func TestHuge429IsBoundedAndStaysWithItsHost(t *testing.T) {
	const key = "11111111-1111-4111-8111-111111111111"
	reg := nango.NewLimiterRegistry(nango.LimiterConfig{})
	hostile := answering(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3153600000")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	healthy := answering(t, func(w http.ResponseWriter, _ *http.Request) { emptyPage(w) })

	_, err := newClient(t, hostile, key, nango.WithLimiterRegistry(reg)).ListRecords(context.Background(), listReq())
	if e := wantKind(t, err, nango.KindRateLimited); e.RetryAfter != 5*time.Minute {
		t.Errorf("Retry-After of a century: wait %s, want the 5m cap", e.RetryAfter)
	}
	_, err = newClient(t, hostile, key, nango.WithLimiterRegistry(reg)).ListRecords(context.Background(), listReq())
	if e := wantKind(t, err, nango.KindRateLimited); e.RetryAfter > 5*time.Minute {
		t.Errorf("the paused limiter asks for %s", e.RetryAfter)
	}
	if _, err = newClient(t, healthy, key, nango.WithLimiterRegistry(reg)).ListRecords(context.Background(), listReq()); err != nil {
		t.Fatalf("a 429 of another host paused this one: %v", err)
	}
}

// TestLimiterFollowsRemaining: a server whose answers say X-RateLimit-Remaining: 99999999
// (and no X-RateLimit-Limit) is read at full speed, even by a second sync that starts
// right after a first one spent the operator's guessed budget (200 a minute): the
// limiter follows the answers, not its guess.
func TestLimiterFollowsRemaining(t *testing.T) {
	srv := answering(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-RateLimit-Remaining", "99999999")
		w.Header().Set("X-RateLimit-Reset", "9999999999")
		emptyPage(w)
	})
	reg := nango.NewLimiterRegistry(nango.LimiterConfig{})
	for sync := range 2 {
		c := newClient(t, srv, "k", nango.WithLimiterRegistry(reg), nango.WithMaxRateLimitWait(time.Second))
		for i := range 300 {
			if _, err := c.ListRecords(context.Background(), listReq()); err != nil {
				t.Fatalf("sync %d, request %d: %v", sync, i, err)
			}
		}
	}
}

// TestLimiterFollowsReset: once an answer says when the server's window ends, a spent
// budget waits for that moment, not for the operator's guessed window.
func TestLimiterFollowsReset(t *testing.T) {
	reset := time.Now().Add(1500 * time.Millisecond)
	srv := answering(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "5")
		remaining := "0"
		if time.Now().After(reset) {
			remaining = "4"
		}
		w.Header().Set("X-RateLimit-Remaining", remaining)
		// Unix seconds, rounded up as Nango rounds them.
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Add(time.Second-time.Nanosecond).Unix(), 10))
		emptyPage(w)
	})
	reg := nango.NewLimiterRegistry(nango.LimiterConfig{Limit: 5, Window: time.Hour})
	c := newClient(t, srv, "k", nango.WithLimiterRegistry(reg), nango.WithMaxRateLimitWait(5*time.Second))
	start := time.Now()
	for i := range 2 {
		if _, err := c.ListRecords(context.Background(), listReq()); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("took %s: waited for the guessed window, not X-RateLimit-Reset", d)
	}
}

// TestRateLimitWaitsAreObserved: a request that waits out a 429's Retry-After is reported
// to the observer with its method, path and the time it waited; one that waits for
// nothing is not.
func TestRateLimitWaitsAreObserved(t *testing.T) {
	answered := 0
	srv := answering(t, func(w http.ResponseWriter, _ *http.Request) {
		answered++
		if answered == 2 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		emptyPage(w)
	})
	type wait struct {
		method, path string
		waited       time.Duration
	}
	var waits []wait
	c := newClient(t, srv, "k", nango.WithRateLimitWaitObserver(func(method, path string, waited time.Duration) {
		waits = append(waits, wait{method, path, waited})
	}))
	if _, err := c.ListRecords(context.Background(), listReq()); err != nil {
		t.Fatalf("first request: %v", err)
	}
	if len(waits) != 0 {
		t.Fatalf("a request with budget left reported waits %+v", waits)
	}
	if _, err := c.ListRecords(context.Background(), listReq()); err != nil {
		t.Fatalf("request after a 429: %v", err)
	}
	if len(waits) != 1 || waits[0].method != http.MethodGet || waits[0].path != "/records" ||
		waits[0].waited < 900*time.Millisecond || waits[0].waited > 5*time.Second {
		t.Fatalf("waits after a 429 with Retry-After: 1 = %+v, want one GET /records of about a second", waits)
	}
}
