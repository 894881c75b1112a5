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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of a Client.
const (
	defaultRequestTimeout = 30 * time.Second
	// defaultMaxResponseBytes bounds one answer. A page of the default 1,000 records is
	// about a megabyte; one of large records (60 KiB each in a probe) reached 60 MiB, and
	// the reconciler holds an answer, its converted records and up to two batches read
	// ahead, which at 64 MiB an answer crashed a pod of 256 MiB. At 16 MiB the worst case
	// stays near 100 MiB, and a larger answer makes the reconciler halve its page size.
	defaultMaxResponseBytes   = 16 << 20
	defaultMaxRateLimitWait   = 30 * time.Second
	defaultRateLimitRetries   = 5
	userAgent                 = "nango-operator"
	maxErrorBodyBytes         = 64 << 10
	invalidCursorProbeTimeout = 10 * time.Second
)

// Client talks to one Nango server with one secret key. It is safe for
// concurrent use; build one per (server, key) and share it.
type Client struct {
	base             *url.URL
	secretKey        string
	httpClient       *http.Client
	limiter          *Limiter
	requestTimeout   time.Duration
	maxResponseBytes int64
	maxRateLimitWait time.Duration
	rateLimitRetries int
	onRateLimitWait  func(method, path string, waited time.Duration)
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (its Timeout, if any, also applies).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.httpClient = h } }

// WithLimiterRegistry makes the client use the registry's limiter for its
// server and secret key, shared with every other client of both. Without it a
// client gets a limiter of its own with Nango's default budget.
func WithLimiterRegistry(r *LimiterRegistry) Option {
	return func(c *Client) { c.limiter = r.For(c.base.String(), c.secretKey) }
}

// WithRequestTimeout bounds each HTTP exchange (not the wait for the rate
// limiter, which the caller's context and WithMaxRateLimitWait bound).
func WithRequestTimeout(d time.Duration) Option { return func(c *Client) { c.requestTimeout = d } }

// WithMaxResponseBytes bounds the size of an answer body.
func WithMaxResponseBytes(n int64) Option { return func(c *Client) { c.maxResponseBytes = n } }

// WithMaxRateLimitWait bounds how long one call waits for the rate limit
// (the limiter's slot or a 429's Retry-After). Beyond it the call returns a
// KindRateLimited error carrying RetryAfter, so a controller can requeue
// instead of holding a worker.
func WithMaxRateLimitWait(d time.Duration) Option { return func(c *Client) { c.maxRateLimitWait = d } }

// WithRateLimitWaitObserver calls observe each time a request waited for the rate limit
// (the limiter's budget, or a pause after a 429) before it was sent, with the request's
// method and path and how long it waited: for metrics, without this package knowing them.
func WithRateLimitWaitObserver(observe func(method, path string, waited time.Duration)) Option {
	return func(c *Client) { c.onRateLimitWait = observe }
}

// WithRateLimitRetries sets how many 429s one call waits out before it
// returns KindRateLimited.
func WithRateLimitRetries(n int) Option { return func(c *Client) { c.rateLimitRetries = n } }

// ParseBaseURL reads the URL of a Nango server: absolute, http or https, with a host and
// maybe a path (a self-hosted server behind a prefix). Its error reads after the name of
// what held the URL, for example `--nango-url "x" must be …`.
func ParseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q must be an absolute http or https URL, such as https://api.nango.dev", raw)
	}
	return u, nil
}

// NewClient returns a client for the Nango server at baseURL (for example
// https://api.nango.dev) using an environment's secret key.
func NewClient(baseURL, secretKey string, opts ...Option) (*Client, error) {
	u, err := ParseBaseURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("nango: base URL %w", err)
	}
	if secretKey == "" {
		return nil, errors.New("nango: secret key is empty")
	}
	c := &Client{
		base:             u,
		secretKey:        secretKey,
		httpClient:       &http.Client{},
		requestTimeout:   defaultRequestTimeout,
		maxResponseBytes: defaultMaxResponseBytes,
		maxRateLimitWait: defaultMaxRateLimitWait,
		rateLimitRetries: defaultRateLimitRetries,
	}
	for _, o := range opts {
		o(c)
	}
	c.httpClient = withoutRedirects(c.httpClient)
	if c.limiter == nil {
		c.limiter = newLimiter(LimiterConfig{})
	}
	return c, nil
}

// withoutRedirects is a copy of h that follows no redirect. net/http keeps the
// Authorization header on a redirect to the same host on another port (so from https to
// http), and a redirect that sends the secret key anywhere is one too many: the client
// answers a redirect with an error that says where it pointed instead. h itself, shared
// with others, is left as it is.
func withoutRedirects(h *http.Client) *http.Client {
	own := *h
	own.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &own
}

// request is one API call.
type request struct {
	op     string
	method string
	path   string
	query  url.Values
	header http.Header
	body   []byte
}

// do sends a request through the rate limiter, waiting out 429s, and returns
// the body of a 2xx answer or an *Error.
func (c *Client) do(ctx context.Context, r request) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		status, header, body, err := c.attempt(ctx, r)
		if err != nil {
			return nil, err
		}
		if status >= 200 && status < 300 {
			return body, nil
		}
		if status >= 300 && status < 400 {
			return nil, redirectError(r.op, status, header)
		}
		e := errorFromResponse(r.op, status, body, c.secretKey)
		if status == http.StatusTooManyRequests {
			e.RetryAfter = retryAfter(header, time.Now(), c.limiter.window)
			// The limiter has paused every caller of this key for the wait;
			// going round again waits it out.
			if attempt < c.rateLimitRetries && (c.maxRateLimitWait <= 0 || e.RetryAfter <= c.maxRateLimitWait) {
				continue
			}
		}
		return nil, e
	}
}

// redirectError is the error of a redirect the client did not follow. It names where
// the redirect pointed (scheme, host and path only: no user info, query or fragment,
// which a server that saw the key could fill with it), so that a person can correct the
// Nango URL. It is not terminal: a load balancer may redirect for a while.
func redirectError(op string, status int, header http.Header) *Error {
	where := "nowhere (no Location)"
	if loc, err := url.Parse(header.Get("Location")); err == nil && loc.Host != "" {
		where = (&url.URL{Scheme: loc.Scheme, Host: loc.Host, Path: loc.Path}).String()
	} else if err == nil && loc.Path != "" {
		where = "path " + (&url.URL{Path: loc.Path}).String() + " of the same host"
	}
	return &Error{Kind: KindInvalidResponse, Op: op, Status: status, Message: sanitize(fmt.Sprintf(
		"Nango's URL redirects to %s; the operator follows no redirect with the secret key: "+
			"set the Nango URL to the address Nango answers at", where), maxMessageBytes)}
}

// attempt makes one exchange: limiter slot, request, bounded body.
func (c *Client) attempt(ctx context.Context, r request) (int, http.Header, []byte, error) {
	t, err := c.limiter.acquire(ctx, c.maxRateLimitWait)
	if err != nil {
		var tooLong waitTooLong
		if errors.As(err, &tooLong) {
			return 0, nil, nil, &Error{Kind: KindRateLimited, Op: r.op, Message: "client-side rate limit for this secret key", RetryAfter: tooLong.wait}
		}
		return 0, nil, nil, fmt.Errorf("nango: %s: %w", r.op, err)
	}
	o := outcome{}
	defer func() { c.limiter.done(t, o) }()
	if t.waited > 0 && c.onRateLimitWait != nil {
		c.onRateLimitWait(r.method, r.path, t.waited)
	}

	actx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	req, err := c.newRequest(actx, r)
	if err != nil {
		return 0, nil, nil, &Error{Kind: KindInvalidRequest, Op: r.op, Err: err}
	}
	o.sent = true
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, c.networkError(ctx, r.op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	o.responded, o.status, o.header = true, resp.StatusCode, resp.Header

	limit := c.maxResponseBytes
	if resp.StatusCode >= 300 {
		limit = min(limit, maxErrorBodyBytes)
	}
	body, err := readBody(resp.Body, resp.ContentLength, limit+1)
	if err != nil {
		return 0, nil, nil, c.networkError(ctx, r.op, err)
	}
	if int64(len(body)) > limit {
		if resp.StatusCode >= 300 {
			body = body[:limit]
		} else {
			return 0, nil, nil, &Error{Kind: KindResponseTooLarge, Op: r.op, Status: resp.StatusCode,
				Message: fmt.Sprintf("answer larger than %d bytes; ask for smaller pages", limit)}
		}
	}
	return resp.StatusCode, resp.Header, body, nil
}

// readBody reads r to its end, but no more than maxBytes. A page is about a megabyte:
// when the answer says how long it is, the buffer is sized for it at once instead of
// growing (and copying) as io.ReadAll does; maxBytes also bounds what a wrong
// Content-Length can make it allocate.
func readBody(r io.Reader, contentLength, maxBytes int64) ([]byte, error) {
	var buf bytes.Buffer
	if contentLength > 0 {
		buf.Grow(int(min(contentLength, maxBytes)) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(r, maxBytes))
	return buf.Bytes(), err
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + r.path
	u.RawQuery = r.query.Encode()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+c.secretKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// networkError wraps a transport failure. A cancelled or expired caller
// context is returned as such (errors.Is(err, context.Canceled) holds), the
// client's own request timeout is KindNetwork.
func (c *Client) networkError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("nango: %s: %w", op, ctxErr)
	}
	msg := "no answer from Nango"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("no answer from Nango within %s", c.requestTimeout)
	}
	return &Error{Kind: KindNetwork, Op: op, Message: msg, Err: stripURL(err)}
}

// stripURL drops the *url.Error wrapper, whose text repeats the URL; the
// URL holds no secret, but the message is long enough without it.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
