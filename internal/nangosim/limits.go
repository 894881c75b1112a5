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

package nangosim

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// rateLimiter keeps one fixed window per account, like the
// rate-limiter-flexible setup Nango uses: a window opens with the first
// request after the previous one expired, and rejected requests still count.
type rateLimiter struct {
	mu       sync.Mutex
	cfg      RateLimit
	accounts map[string]*window
}

type window struct {
	end   time.Time
	count int
}

// decision is the outcome of taking one request from an account's budget.
type decision struct {
	limited    bool
	limit      int
	remaining  int
	reset      time.Time
	retryAfter time.Duration
}

func (l *rateLimiter) init(rl RateLimit) {
	l.accounts = map[string]*window{}
	l.cfg = rl
}

func (l *rateLimiter) set(rl RateLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = rl
}

// take counts one request; ok is false when limiting is off.
func (l *rateLimiter) take(account string, now time.Time) (d decision, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.Limit <= 0 || l.cfg.Window <= 0 {
		return decision{}, false
	}
	w := l.accounts[account]
	if w == nil {
		w = &window{}
		l.accounts[account] = w
	}
	if !now.Before(w.end) {
		w.end, w.count = now.Add(l.cfg.Window), 0
	}
	w.count++
	d = decision{limit: l.cfg.Limit, remaining: max(0, l.cfg.Limit-w.count), reset: w.end, retryAfter: w.end.Sub(now)}
	d.limited = w.count > l.cfg.Limit
	return d, true
}

// writeHeaders sets X-RateLimit-* (Reset in whole Unix seconds, rounded up)
// and, on a 429, Retry-After in whole seconds rounded up.
func (d decision) writeHeaders(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(ceilDiv(d.reset.UnixMilli(), 1000), 10))
	if d.limited {
		h.Set("Retry-After", strconv.FormatInt(ceilDiv(d.retryAfter.Milliseconds(), 1000), 10))
	}
}

func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}

// Faults are failures injected into the public API (never into /_sim/).
// Each request draws once: it is dropped, rate limited or failed with the
// given shares (which should add up to at most 1).
type Faults struct {
	// ServerErrorRate is the share of requests answered ServerErrorStatus.
	ServerErrorRate float64 `json:"server_error_rate,omitempty"`
	// ServerErrorStatus defaults to 500.
	ServerErrorStatus int `json:"server_error_status,omitempty"`
	// RateLimitRate is the share of requests answered 429 with RetryAfter.
	RateLimitRate float64 `json:"rate_limit_rate,omitempty"`
	// RetryAfter is sent, in whole seconds, with injected 429s.
	RetryAfter Duration `json:"retry_after,omitempty"`
	// DropRate is the share of requests whose connection is closed without
	// an answer.
	DropRate float64 `json:"drop_rate,omitempty"`
	// Latency is added to every public request.
	Latency Duration `json:"latency,omitempty"`
	// Count, when positive, limits the injected faults to the next Count
	// (latency and ConnectionsPageCut excepted); the faults then clear themselves.
	Count int `json:"count,omitempty"`
	// ConnectionsPageCut, when positive, cuts every GET /connections answer to
	// at most this many connections: a listing that ends early, without an
	// error, as a lossy server or proxy would make it.
	ConnectionsPageCut int `json:"connections_page_cut,omitempty"`
}

type faultKind int

const (
	noFault faultKind = iota
	dropFault
	rateLimitFault
	serverErrorFault
)

type faultInjector struct {
	mu  sync.Mutex
	f   Faults
	rng func() float64
}

func (fi *faultInjector) set(f Faults) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.f = f
}

func (fi *faultInjector) connectionsPageCut() int {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return fi.f.ConnectionsPageCut
}

func (fi *faultInjector) latency() time.Duration {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return time.Duration(fi.f.Latency)
}

// draw decides the fault for one request.
func (fi *faultInjector) draw() (faultKind, Faults) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	f := fi.f
	if f.DropRate+f.RateLimitRate+f.ServerErrorRate <= 0 {
		return noFault, f
	}
	x := fi.rng()
	kind := noFault
	switch {
	case x < f.DropRate:
		kind = dropFault
	case x < f.DropRate+f.RateLimitRate:
		kind = rateLimitFault
	case x < f.DropRate+f.RateLimitRate+f.ServerErrorRate:
		kind = serverErrorFault
	}
	if kind != noFault && fi.f.Count > 0 {
		fi.f.Count--
		if fi.f.Count == 0 {
			fi.f = Faults{Latency: fi.f.Latency, ConnectionsPageCut: fi.f.ConnectionsPageCut}
		}
	}
	return kind, f
}

// Stats counts what the public API answered.
type Stats struct {
	// Requests is every public request received.
	Requests int64 `json:"requests"`
	// RecordsRequests is GET /records requests received.
	RecordsRequests int64 `json:"records_requests"`
	// ConnectionsRequests is GET /connections (and /connection) requests received.
	ConnectionsRequests int64 `json:"connections_requests"`
	// SyncStatusRequests is GET /sync/status requests received.
	SyncStatusRequests int64 `json:"sync_status_requests"`
	// RateLimited is 429s sent by the account rate limiter.
	RateLimited int64 `json:"rate_limited"`
	// InjectedFaults is faults injected (drops, 429s and 5xx together).
	InjectedFaults int64 `json:"injected_faults"`
	// WebhooksSent is webhook delivery attempts.
	WebhooksSent int64 `json:"webhooks_sent"`
}

type stats struct {
	requests, records, connections, syncStatus, rateLimited, faults, webhooks atomic.Int64
}

// Stats returns counters since the emulator started.
func (s *Sim) Stats() Stats {
	return Stats{
		Requests:            s.counter.requests.Load(),
		RecordsRequests:     s.counter.records.Load(),
		ConnectionsRequests: s.counter.connections.Load(),
		SyncStatusRequests:  s.counter.syncStatus.Load(),
		RateLimited:         s.counter.rateLimited.Load(),
		InjectedFaults:      s.counter.faults.Load(),
		WebhooksSent:        s.counter.webhooks.Load(),
	}
}

// Duration is a time.Duration that reads and writes JSON as "1.5s" (or a
// number of nanoseconds).
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if s, err := strconv.Unquote(string(b)); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return err
	}
	*d = Duration(n)
	return nil
}
