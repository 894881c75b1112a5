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

package nango

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Nango's default plan: 200 requests per account per 60-second window.
const (
	DefaultRateLimit  = 200
	DefaultRateWindow = time.Minute
)

// LimiterConfig is the request budget of one Nango account.
type LimiterConfig struct {
	// Limit is requests per Window. X-RateLimit-Limit overrides it once seen.
	Limit int
	// Window is the length of Nango's fixed window. It cannot be read from
	// headers; it only matters for throughput (a window set too long wastes
	// budget, one set too short costs a 429 that is then waited out).
	Window time.Duration
}

func (c LimiterConfig) withDefaults() LimiterConfig {
	if c.Limit <= 0 {
		c.Limit = DefaultRateLimit
	}
	if c.Window <= 0 {
		c.Window = DefaultRateWindow
	}
	return c
}

// maxRateLimitPause bounds every wait the rate limit imposes: a Retry-After, an
// X-RateLimit-Reset, and so the requeue of a rate-limited sync. Nango's windows last a
// minute; a server that asks for more (a century, in one probe) is wrong or hostile, and
// must not freeze every sync of its key for longer than this. Waiting too little costs a
// 429, which is waited out again.
const maxRateLimitPause = 5 * time.Minute

// LimiterRegistry hands out one Limiter per Nango server and secret key, so that every
// client (every sync) of one account shares one budget, and a server that answers 429
// pauses only its own clients, not those of another server given the same key. Keys are
// held only as SHA-256 hashes. The zero value is not usable; call
// NewLimiterRegistry.
type LimiterRegistry struct {
	cfg LimiterConfig
	now func() time.Time

	mu       sync.Mutex
	limiters map[string]*Limiter
}

// NewLimiterRegistry returns a registry whose limiters start from cfg
// (zero fields take Nango's defaults: 200 per minute).
func NewLimiterRegistry(cfg LimiterConfig) *LimiterRegistry {
	return &LimiterRegistry{cfg: cfg.withDefaults(), now: time.Now, limiters: map[string]*Limiter{}}
}

// For returns the limiter shared by every user of secretKey at the server baseURL.
func (r *LimiterRegistry) For(baseURL, secretKey string) *Limiter {
	sum := sha256.Sum256([]byte(baseURL + "\x00" + secretKey))
	id := hex.EncodeToString(sum[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.limiters[id]
	if l == nil {
		l = newLimiter(r.cfg)
		l.now = r.now
		r.limiters[id] = l
	}
	return l
}

// Limiter paces the requests of one Nango account.
//
// Nango counts requests in fixed windows that open with the first request
// after the previous window closed. A token bucket alone cannot respect that:
// a full bucket plus its refill admits up to twice the budget inside one
// window. So the limiter has two layers:
//
//   - a golang.org/x/time/rate token bucket (Limit per Window, burst Limit)
//     caps the average rate, whatever the headers say;
//   - a window gate admits at most Limit requests per window. A window's end
//     is bounded from above by the time of its first answer plus Window (the
//     server opened it no later than it answered), so the gate never reopens
//     before the server's window has closed. As soon as an answer carries
//     them, the gate follows the server (followLocked): X-RateLimit-Remaining
//     raises a guessed budget that is too small and lowers what is left when
//     another process uses the account, X-RateLimit-Reset says when the
//     window ends; a 429 closes it for its Retry-After. Every pause is capped at maxRateLimitPause. Requests
//     still in flight when a window opens are charged to it, since the
//     server may count them there.
//
// Waiters block on timers and a broadcast channel; nothing polls.
type Limiter struct {
	bucket *rate.Limiter
	now    func() time.Time

	mu          sync.Mutex
	limit       int
	window      time.Duration
	seq         uint64 // current window
	open        bool
	anchored    bool      // end is known
	end         time.Time // valid when anchored
	left        int       // admissions left in the current window
	used        int       // our requests the server may count in the current window
	inflight    map[uint64]int
	inflightAll int
	pausedUntil time.Time
	wake        chan struct{}
}

// newLimiter returns a limiter for one account; LimiterRegistry.For shares one per secret
// key.
func newLimiter(cfg LimiterConfig) *Limiter {
	cfg = cfg.withDefaults()
	return &Limiter{
		bucket:   rate.NewLimiter(perWindow(cfg.Limit, cfg.Window), cfg.Limit),
		now:      time.Now,
		limit:    cfg.Limit,
		window:   cfg.Window,
		inflight: map[uint64]int{},
		wake:     make(chan struct{}),
	}
}

func perWindow(limit int, window time.Duration) rate.Limit {
	return rate.Limit(float64(limit) / window.Seconds())
}

// minPause keeps a "Retry-After: 0" from turning into a busy loop.
const minPause = 50 * time.Millisecond

// ticket is an admitted request; it must be handed back with done.
type ticket struct {
	seq uint64
	// waited is how long acquire blocked before it admitted the request; 0 when a slot was free.
	waited time.Duration
}

// waitTooLong is returned by acquire when the next slot is further away than
// the caller is willing to wait.
type waitTooLong struct{ wait time.Duration }

func (w waitTooLong) Error() string {
	return "rate limit wait of " + w.wait.String() + " exceeds the maximum"
}

// acquire blocks until one request may be sent. maxWait > 0 bounds the wait:
// when the next slot is further away, acquire returns waitTooLong at once
// without consuming anything.
func (l *Limiter) acquire(ctx context.Context, maxWait time.Duration) (ticket, error) {
	start := l.now()
	blocked := false
	res := l.bucket.ReserveN(start, 1)
	if d := res.DelayFrom(start); d > 0 {
		if maxWait > 0 && d > maxWait {
			res.CancelAt(start)
			return ticket{}, waitTooLong{d}
		}
		if err := sleep(ctx, d, nil); err != nil {
			res.Cancel()
			return ticket{}, err
		}
		blocked = true
	}
	for {
		l.mu.Lock()
		now := l.now()
		if l.open && l.anchored && !now.Before(l.end) {
			l.open = false
		}
		var until time.Time // zero: wait for a broadcast
		switch {
		case now.Before(l.pausedUntil):
			until = l.pausedUntil
		case !l.open:
			l.seq++
			l.open, l.anchored = true, false
			l.used = l.inflightAll
			l.left = l.limit - l.used
			fallthrough
		default:
			if l.left > 0 {
				l.left--
				l.used++
				l.inflight[l.seq]++
				l.inflightAll++
				t := ticket{seq: l.seq}
				if blocked {
					t.waited = now.Sub(start)
				}
				l.mu.Unlock()
				return t, nil
			}
			if l.anchored {
				until = l.end
			}
		}
		wake := l.wake
		l.mu.Unlock()

		if maxWait > 0 {
			waited := now.Sub(start)
			switch {
			case !until.IsZero() && until.Sub(start) > maxWait:
				return ticket{}, waitTooLong{until.Sub(now)}
			case until.IsZero() && waited >= maxWait:
				return ticket{}, waitTooLong{l.window}
			case until.IsZero():
				until = start.Add(maxWait)
			}
		}
		var d time.Duration = -1
		if !until.IsZero() {
			d = until.Sub(now)
		}
		if err := sleep(ctx, d, wake); err != nil {
			return ticket{}, err
		}
		blocked = true
	}
}

// sleep waits for d (forever if d < 0), a broadcast on wake, or ctx.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
	case <-wake:
	}
	return nil
}

// outcome is what became of an admitted request.
type outcome struct {
	sent      bool // the request left the client
	responded bool // an HTTP answer came back
	status    int
	header    http.Header
}

// done returns a ticket and learns from the answer.
func (l *Limiter) done(t ticket, o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.inflight[t.seq]--; l.inflight[t.seq] <= 0 {
		delete(l.inflight, t.seq)
	}
	l.inflightAll--
	current := l.open && t.seq == l.seq
	defer l.broadcastLocked()

	if !o.sent {
		if current {
			l.left++
			l.used--
		}
		return
	}
	if current && !o.responded && !l.anchored && l.inflight[t.seq] == 0 {
		// Nothing of this window was answered; be safe and assume the server
		// saw the requests.
		l.anchored, l.end = true, now.Add(l.window)
	}
	if !o.responded {
		return
	}
	if lim, ok := headerInt(o.header, "X-RateLimit-Limit"); ok && lim > 0 && lim != l.limit {
		l.setLimitLocked(now, lim)
	}
	if current {
		if end := now.Add(l.window); !l.anchored || end.Before(l.end) {
			l.anchored, l.end = true, end
		}
		if rem, ok := headerInt(o.header, "X-RateLimit-Remaining"); ok && rem >= 0 {
			l.followLocked(now, o.header, rem, t.seq)
		}
	}
	if o.status == http.StatusTooManyRequests {
		pause := max(retryAfter(o.header, now, l.window), minPause)
		if until := now.Add(pause); until.After(l.pausedUntil) {
			l.pausedUntil = until
		}
		if l.open {
			l.anchored, l.end, l.left = true, l.pausedUntil, 0
		}
	}
}

// followLocked makes the current window follow an answer's X-RateLimit-Remaining and
// -Reset, from the first answer that carries them:
//
//   - the server counted this request and has rem left, so its limit is at least rem+1:
//     a guessed budget below that grows at once (what is left grows with it);
//   - when the server has counted more than this limiter sent, someone else uses the
//     account: what is left drops to rem less the requests still in flight, which the
//     server may not have counted yet. (Without that evidence Remaining only lags behind
//     what the limiter already knows: answers overtake each other.)
//   - X-RateLimit-Reset is when the server's window ends: an earlier end than the one
//     guessed from the first answer is followed, and when nothing is left a later one too,
//     up to maxRateLimitPause.
func (l *Limiter) followLocked(now time.Time, h http.Header, rem int, seq uint64) {
	if rem >= l.limit {
		l.left += rem + 1 - l.limit
		l.setLimitLocked(now, rem+1)
	}
	if l.limit-rem > l.used {
		l.left = max(0, min(l.left, rem-l.inflight[seq]))
	}
	reset, ok := headerInt(h, "X-RateLimit-Reset")
	if !ok {
		return
	}
	r := time.Unix(int64(reset), 0)
	switch {
	case r.Before(l.end) && r.After(now):
		l.end = r
	case rem == 0 && r.After(l.end.Add(time.Second)):
		l.end = minTime(r, now.Add(maxRateLimitPause))
	}
}

// setLimitLocked sets the budget per window, and the token bucket's rate and burst.
func (l *Limiter) setLimitLocked(now time.Time, limit int) {
	l.limit = limit
	l.bucket.SetLimitAt(now, perWindow(limit, l.window))
	l.bucket.SetBurstAt(now, limit)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (l *Limiter) broadcastLocked() {
	close(l.wake)
	l.wake = make(chan struct{})
}

// retryAfter reads how long a 429 asks to wait: Retry-After (seconds), else
// X-RateLimit-Reset, else a whole window; never more than maxRateLimitPause.
func retryAfter(h http.Header, now time.Time, window time.Duration) time.Duration {
	return min(askedWait(h, now, window), maxRateLimitPause)
}

func askedWait(h http.Header, now time.Time, window time.Duration) time.Duration {
	if s, ok := headerInt(h, "Retry-After"); ok && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if v := h.Get("Retry-After"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			return max(0, t.Sub(now))
		}
	}
	if reset, ok := headerInt(h, "X-RateLimit-Reset"); ok {
		if d := time.Unix(int64(reset), 0).Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return window
}

func headerInt(h http.Header, name string) (int, bool) {
	v := h.Get(name)
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}
