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

// Package httpsink pushes a NangoSync's records to an HTTP endpoint of the user's
// application: each batch is one POST of a CloudEvents batch
// (application/cloudevents-batch+json), one event per record version, signed with
// HMAC-SHA256.
//
// The endpoint cannot hold the operator's checkpoint, so a Checkpoints store (the
// operator's ConfigMaps) keeps it, written after the endpoint accepted the batch. A crash
// in between delivers the batch again, with the same Idempotency-Key and the same event
// ids: delivery is at-least-once, and a receiver that remembers the keys (or the event ids)
// it has applied sees every version once. Batches of one data set are never delivered out
// of order: the next batch is sent only after the endpoint accepted the previous one.
//
// Answers: 2xx commits the batch; 408, 429 and 5xx (and a connection that fails or times
// out) mean the endpoint is unavailable for now: the batch is retried, honouring
// Retry-After, and the cursor does not move; any other answer is a refusal that stays
// until someone changes the endpoint or the spec, reported with its status and the start of
// its body.
package httpsink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// Checkpoints keeps the checkpoints the endpoint cannot hold.
type Checkpoints interface {
	// Load answers the checkpoint of key, the zero Checkpoint when there is none.
	Load(ctx context.Context, key sink.Key) (sink.Checkpoint, error)
	// Save stores the checkpoint of key.
	Save(ctx context.Context, key sink.Key, checkpoint sink.Checkpoint) error
	// Delete forgets the checkpoint of key.
	Delete(ctx context.Context, key sink.Key) error
}

// Defaults of Options.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultMaxBatchBytes = 1 << 20
	// maxRetryAfter bounds how long one write waits on the endpoint's Retry-After before
	// it gives the batch back to the controller's backoff.
	maxRetryAfter = 30 * time.Second
	// attempts is how often one write posts a batch before giving up for now.
	attempts = 3
	// firstBackoff is the wait after the first failed attempt; it doubles.
	firstBackoff = 250 * time.Millisecond
	// bodyQuote is how much of a refusing answer's body the error quotes.
	bodyQuote = 256
)

// Options configure a sink.
type Options struct {
	// URL is where batches are posted. It may carry a token: errors name only its host.
	URL string
	// SigningKey signs every body (HMAC-SHA256); required.
	SigningKey []byte
	// Timeout bounds each POST, answer included. DefaultTimeout when zero.
	Timeout time.Duration
	// MaxBatchBytes bounds a POST's body: a page larger than it goes in several POSTs, in
	// order. An event larger than it alone goes in a POST of its own. DefaultMaxBatchBytes
	// when zero.
	MaxBatchBytes int
	// CAPEM, when set, is trusted besides the system's roots to verify the endpoint.
	CAPEM []byte
	// Checkpoints keeps the checkpoints.
	Checkpoints Checkpoints
	// Transport overrides the HTTP transport (tests wrap it to inject faults); nil builds one.
	Transport http.RoundTripper
	// now answers the time signatures carry; time.Now when nil.
	now func() time.Time
}

// Sink posts batches to one endpoint.
type Sink struct {
	url    *url.URL
	host   string
	opts   Options
	client *http.Client
}

// Open checks opts and answers a sink. It sends nothing yet.
func Open(opts Options) (*Sink, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// The parse error would quote the URL, which may carry a token.
		return nil, sink.Refused(errors.New("the endpoint URL is not an absolute http or https URL"),
			"put an absolute https URL in the Secret that spec.sink.http.urlSecretRef names")
	}
	if len(opts.SigningKey) == 0 {
		return nil, sink.Refused(errors.New("the signing key is empty"),
			"put a random key of at least 32 bytes in the Secret that spec.sink.http.signingKeySecretRef names")
	}
	if opts.Checkpoints == nil {
		return nil, errors.New("http sink opened without a checkpoint store")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	transport := opts.Transport
	if transport == nil {
		t, err := newTransport(opts.CAPEM)
		if err != nil {
			return nil, err
		}
		transport = t
	}
	return &Sink{
		url: u, host: u.Host, opts: opts,
		client: &http.Client{
			Transport: transport,
			Timeout:   opts.Timeout,
			// A redirect would resend the records (and signature) elsewhere: refuse it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

func newTransport(caPEM []byte) (*http.Transport, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // the operator's environment does not choose where records go
	if len(caPEM) == 0 {
		return transport, nil
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, sink.Refused(errors.New("the CA Secret holds no PEM certificate"),
			"put the PEM-encoded CA certificate of the endpoint in the Secret that spec.sink.http.caSecretRef names")
	}
	transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return transport, nil
}

// Checkpoint answers the stored checkpoint of key.
func (s *Sink) Checkpoint(ctx context.Context, key sink.Key) (sink.Checkpoint, error) {
	return s.opts.Checkpoints.Load(ctx, key)
}

// DeleteCheckpoint forgets the checkpoint of key, and so its owner: the next read starts
// over and delivers every record again. It deletes nothing of a data set another owns
// (*sink.ConflictError).
func (s *Sink) DeleteCheckpoint(ctx context.Context, key sink.Key, owner sink.Owner) error {
	if _, err := s.checkOwner(ctx, key, owner); err != nil {
		return err
	}
	return s.opts.Checkpoints.Delete(ctx, key)
}

// ResetCheckpoint forgets the cursor and counts of key and keeps its owner, claiming the
// data set for owner if no one owns it: the next read starts over and delivers every
// record again. It changes nothing of a data set another owns (*sink.ConflictError).
func (s *Sink) ResetCheckpoint(ctx context.Context, key sink.Key, owner sink.Owner) error {
	if _, err := s.checkOwner(ctx, key, owner); err != nil {
		return err
	}
	return s.opts.Checkpoints.Save(ctx, key, sink.Checkpoint{Owner: owner})
}

// checkOwner fails with a *sink.ConflictError when another than owner owns the data set
// key, and answers whether the data set has a checkpoint. The checkpoint store is not
// transactional: two owners that claim one data set at the same moment can both deliver a
// page before the second is refused.
func (s *Sink) checkOwner(ctx context.Context, key sink.Key, owner sink.Owner) (bool, error) {
	stored, err := s.opts.Checkpoints.Load(ctx, key)
	if err != nil {
		return false, err
	}
	return stored != (sink.Checkpoint{}), sink.Claimable(key, stored.Owner, owner)
}

// DeleteRows cannot remove what the endpoint holds: it posts one event of type
// TypeDataSetDeleted, for the endpoint to remove the data set's records, and forgets the
// checkpoint once the endpoint accepted it. It posts nothing for a data set another owns
// (*sink.ConflictError), nor for one without a checkpoint (sink.Sink.DeleteRows).
func (s *Sink) DeleteRows(ctx context.Context, key sink.Key, owner sink.Owner) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if found, err := s.checkOwner(ctx, key, owner); err != nil || !found {
		return err // a data set without a checkpoint is no one's: nothing to delete
	}
	body, err := encodeBatch([]event{dataSetDeleted(key, s.opts.now())})
	if err != nil {
		return err
	}
	if err := s.deliver(ctx, key, batch{body: body, from: "", to: "", part: 1, parts: 1}); err != nil {
		return err
	}
	return s.opts.Checkpoints.Delete(ctx, key)
}

// Close releases idle connections.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// WritePage posts the page's records, in as many batches as MaxBatchBytes asks, in order,
// then stores the checkpoint. An error leaves the checkpoint where it was: the batches
// already accepted are delivered again, with the same idempotency keys.
func (s *Sink) WritePage(ctx context.Context, key sink.Key, page sink.Page) (sink.WriteResult, error) {
	prepared, err := sink.PreparePage(key, page.Records)
	if err != nil {
		return sink.WriteResult{}, err
	}
	previous, err := s.opts.Checkpoints.Load(ctx, key)
	if err != nil {
		return sink.WriteResult{}, err
	}
	if err := sink.Claimable(key, previous.Owner, page.Owner); err != nil {
		return sink.WriteResult{}, err
	}
	events := make([]event, 0, len(prepared.Records)+len(prepared.Quarantined))
	for _, r := range prepared.Records {
		events = append(events, recordEvent(key, r))
	}
	for _, q := range prepared.Quarantined {
		events = append(events, quarantinedEvent(key, q))
	}
	bodies, err := splitBatches(events, s.opts.MaxBatchBytes)
	if err != nil {
		return sink.WriteResult{}, err
	}
	for i, body := range bodies {
		b := batch{body: body, from: previous.Cursor, to: page.Checkpoint, part: i + 1, parts: len(bodies)}
		if err := s.deliver(ctx, key, b); err != nil {
			return sink.WriteResult{}, err
		}
	}
	if page.Checkpoint == "" {
		return prepared.Result, nil
	}
	next := sink.Checkpoint{Cursor: page.Checkpoint, Written: previous.Written.Add(prepared.Result), Owner: page.Owner}
	next.Written.Quarantined = 0
	if err := s.opts.Checkpoints.Save(ctx, key, next); err != nil {
		return sink.WriteResult{}, err
	}
	return prepared.Result, nil
}

// batch is one POST: its body and what its headers say.
type batch struct {
	body     []byte
	from, to string
	part     int
	parts    int
}

// idempotencyKey is the same for the same batch however often it is delivered: it hashes
// the data set, the cursor range, the batch's place in its page and its body.
func (b batch) idempotencyKey(key sink.Key) string {
	h := sha256.New()
	for _, s := range []string{key.ProviderConfigKey, key.ConnectionID, key.Model, key.Variant, b.from, b.to,
		strconv.Itoa(b.part), strconv.Itoa(b.parts)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(b.body)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// deliver posts one batch until the endpoint accepts it, refuses it, or attempts run out.
func (s *Sink) deliver(ctx context.Context, key sink.Key, b batch) error {
	idempotencyKey := b.idempotencyKey(key)
	wait := firstBackoff
	var err error
	for attempt := 1; ; attempt++ {
		var retryAfter time.Duration
		retryAfter, err = s.post(ctx, key, b, idempotencyKey)
		if err == nil || !sink.IsUnavailable(err) || attempt == attempts {
			return err
		}
		if retryAfter > 0 {
			if retryAfter > maxRetryAfter {
				return err // long waits belong to the controller's backoff, not to a reconcile
			}
			wait = retryAfter
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		wait *= 2
	}
}

// post sends one batch once and classifies the answer; for an unavailable endpoint it
// answers the Retry-After the endpoint asked for, if any.
func (s *Sink) post(ctx context.Context, key sink.Key, b batch, idempotencyKey string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url.String(), bytes.NewReader(b.body))
	if err != nil {
		return 0, fmt.Errorf("build the request to %s: %w", s.host, err)
	}
	h := req.Header
	h.Set("Content-Type", ContentType)
	h.Set(HeaderIdempotencyKey, idempotencyKey)
	h.Set(HeaderIntegration, url.PathEscape(key.ProviderConfigKey))
	h.Set(HeaderConnection, url.PathEscape(key.ConnectionID))
	h.Set(HeaderModel, url.PathEscape(key.Model))
	h.Set(HeaderVariant, url.PathEscape(key.Variant))
	h.Set(HeaderCursorFrom, url.PathEscape(b.from))
	h.Set(HeaderCursorTo, url.PathEscape(b.to))
	h.Set(HeaderBatchPart, fmt.Sprintf("%d/%d", b.part, b.parts))
	h.Set(HeaderSignature, Sign(s.opts.SigningKey, s.opts.now(), b.body))
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("post a batch of %s to %s: %w", key, s.host, ctx.Err())
		}
		// url.Error quotes the URL, which may carry a token: keep only what failed.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return 0, fmt.Errorf("%w: post a batch of %s to %s: %w", sink.ErrUnavailable, key, s.host, err)
	}
	defer func() { _ = resp.Body.Close() }()
	start, _ := io.ReadAll(io.LimitReader(resp.Body, bodyQuote))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // lets the connection be reused
	return classify(resp, start, fmt.Sprintf("a batch of %s to %s", key, s.host))
}

// classify turns an answer into nil (accepted), an unavailable error with the wait the
// endpoint asked for, or a refusal.
func classify(resp *http.Response, start []byte, what string) (time.Duration, error) {
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return 0, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return retryAfter(resp.Header.Get("Retry-After")),
			fmt.Errorf("%w: the endpoint answered %s for %s: %q", sink.ErrUnavailable, resp.Status, what, start)
	}
	err := fmt.Errorf("the endpoint answered %s for %s: %q", resp.Status, what, start)
	if code >= 300 && code < 400 {
		return 0, sink.Refused(err, "the endpoint redirects: put the URL it redirects to in the Secret that spec.sink.http.urlSecretRef names")
	}
	return 0, sink.Refused(err, "make the endpoint accept the batch (its answer is quoted), or point spec.sink.http at another endpoint")
}

// retryAfter parses a Retry-After header, seconds or an HTTP date; 0 when absent or bad.
func retryAfter(value string) time.Duration {
	if value == "" {
		return 0
	}
	if seconds, err := strconv.Atoi(value); err == nil && seconds >= 0 {
		return time.Duration(seconds) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(time.Until(at), 0)
	}
	return 0
}

// Sign answers the signature header of body sent at t: "t=<unix seconds>,v1=<hex of
// HMAC-SHA256(key, "<unix seconds>.<body>")>".
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}
