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

package httpsink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/checkpoints"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink/httpsinktest"
	"github.com/nango-operator/nango-operator/internal/sink/sinktest"
)

// kube is the API server of the package's tests, where checkpoints are kept.
var kube client.Client

func TestMain(m *testing.M) {
	// A missing API server is an error, never a skip: `make test` sets KUBEBUILDER_ASSETS.
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test`")
		os.Exit(1)
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the API server:", err)
		os.Exit(1)
	}
	kube, err = client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err == nil {
		err = kube.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sync"}})
	}
	code := 1
	if err == nil {
		code = m.Run()
	} else {
		fmt.Fprintln(os.Stderr, "prepare the API server:", err)
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop the API server:", err)
	}
	os.Exit(code)
}

// signingKey signs every batch of the tests.
var signingKey = []byte("0123456789abcdef0123456789abcdef")

// testSink is an HTTP sink with the receiver it posts to.
type testSink struct {
	*httpsink.Sink
	rx *httpsinktest.Receiver
}

func (s testSink) Delivered(ctx context.Context, key sink.Key) ([]sinktest.Event, error) {
	accepted, err := s.rx.Delivered(ctx, key)
	if err != nil {
		return nil, err
	}
	var events []sinktest.Event
	for _, e := range accepted {
		r, err := e.Record()
		if err != nil {
			return nil, err
		}
		events = append(events, sinktest.Event{ID: e.ID, Record: r})
	}
	return events, nil
}

// place names each test's checkpoints apart.
func store(t *testing.T) checkpoints.ConfigMaps {
	return checkpoints.ConfigMaps{Client: kube, Reader: kube, Namespace: "sync", Place: t.Name()}
}

// open opens a sink posting to rx with a token in its URL, on the checkpoints of t.
func open(t *testing.T, rx *httpsinktest.Receiver, opts httpsink.Options) testSink {
	t.Helper()
	server := httptest.NewServer(rx)
	t.Cleanup(server.Close)
	opts.URL = server.URL + "/hooks/nango?token=s3cret"
	opts.SigningKey = signingKey
	if opts.Checkpoints == nil {
		opts.Checkpoints = store(t)
	}
	s, err := httpsink.Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return testSink{Sink: s, rx: rx}
}

func TestConformance(t *testing.T) {
	rx := httpsinktest.New(signingKey)
	checkpointStore := store(t)
	sinktest.RunEvents(t, func(t *testing.T) sinktest.EventSink {
		return open(t, rx, httpsink.Options{Checkpoints: checkpointStore})
	})
}

var key = sink.Key{ProviderConfigKey: "github", ConnectionID: "acme/corp", Model: "Issue", Variant: "base"}

func records(n int) []sink.Record {
	epoch := time.Date(2026, 4, 14, 18, 46, 3, 0, time.UTC)
	out := make([]sink.Record, n)
	for i := range out {
		id := fmt.Sprintf("r%03d", i)
		out[i] = sink.Record{ID: id, Payload: json.RawMessage(fmt.Sprintf(`{"id":%q,"title":"issue %d"}`, id, i)),
			Action: sink.ActionAdded, FirstSeenAt: epoch, LastModifiedAt: epoch.Add(time.Duration(i) * time.Second),
			Cursor: "cursor-" + id}
	}
	return out
}

func cursor(t *testing.T, s testSink) string {
	t.Helper()
	c, err := s.Checkpoint(context.Background(), key)
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return c.Cursor
}

func TestServerErrorsAreRetriedWithOneIdempotencyKey(t *testing.T) {
	rx := httpsinktest.New(signingKey)
	rx.SetFault(func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n <= 2 {
			http.Error(w, "busy", http.StatusInternalServerError)
			return true
		}
		return false
	})
	s := open(t, rx, httpsink.Options{})
	if _, err := s.WritePage(context.Background(), key, sink.Page{Records: records(3), Checkpoint: "c3"}); err != nil {
		t.Fatalf("WritePage after two 500s: %v", err)
	}
	requests := rx.Requests()
	if len(requests) != 3 {
		t.Fatalf("%d requests, want 3", len(requests))
	}
	first := requests[0].Header.Get(httpsink.HeaderIdempotencyKey)
	for i, r := range requests {
		if got := r.Header.Get(httpsink.HeaderIdempotencyKey); got == "" || got != first {
			t.Fatalf("request %d has Idempotency-Key %q, the first had %q", i, got, first)
		}
	}
	h := requests[2].Header
	if h.Get(httpsink.HeaderConnection) != url.PathEscape(key.ConnectionID) || h.Get(httpsink.HeaderCursorTo) != "c3" ||
		h.Get(httpsink.HeaderCursorFrom) != "" || h.Get(httpsink.HeaderBatchPart) != "1/1" {
		t.Fatalf("headers %v do not name the data set and cursor range", h)
	}
	if got := cursor(t, s); got != "c3" {
		t.Fatalf("checkpoint %q, want c3", got)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	var limited time.Time
	rx := httpsinktest.New(signingKey)
	rx.SetFault(func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			limited = time.Now()
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return true
		}
		if since := time.Since(limited); since < time.Second {
			t.Errorf("retried %v after a 429 with Retry-After: 1", since)
		}
		return false
	})
	s := open(t, rx, httpsink.Options{})
	if _, err := s.WritePage(context.Background(), key, sink.Page{Records: records(1), Checkpoint: "c1"}); err != nil {
		t.Fatalf("WritePage after a 429: %v", err)
	}
	if got := len(rx.Requests()); got != 2 {
		t.Fatalf("%d requests, want 2", got)
	}
}

func TestUnavailableEndpointKeepsTheCursor(t *testing.T) {
	rx := httpsinktest.New(signingKey)
	rx.SetFault(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return true
	})
	s := open(t, rx, httpsink.Options{})
	_, err := s.WritePage(context.Background(), key, sink.Page{Records: records(2), Checkpoint: "c2"})
	if !sink.IsUnavailable(err) {
		t.Fatalf("WritePage against 503s: %v, want an unavailable sink", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the error shows the URL's token: %v", err)
	}
	if got := cursor(t, s); got != "" {
		t.Fatalf("checkpoint %q after a failed delivery, want none", got)
	}
}

func TestTimeoutIsUnavailable(t *testing.T) {
	rx := httpsinktest.New(signingKey)
	rx.SetFault(func(_ int, _ http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done() // never answers: the sink's timeout ends the request
		return true
	})
	s := open(t, rx, httpsink.Options{Timeout: 100 * time.Millisecond})
	_, err := s.WritePage(context.Background(), key, sink.Page{Records: records(1), Checkpoint: "c1"})
	if !sink.IsUnavailable(err) {
		t.Fatalf("WritePage against a silent endpoint: %v, want an unavailable sink", err)
	}
}

func TestClientErrorIsARefusal(t *testing.T) {
	rx := httpsinktest.New(signingKey)
	rx.SetFault(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, `{"error":"unknown field title"}`, http.StatusBadRequest)
		return true
	})
	s := open(t, rx, httpsink.Options{})
	_, err := s.WritePage(context.Background(), key, sink.Page{Records: records(1), Checkpoint: "c1"})
	if _, refused := sink.Refusal(err); !refused {
		t.Fatalf("WritePage answered 400: %v, want a refusal", err)
	}
	for _, want := range []string{"400", "unknown field title"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refusal %q does not say %q", err, want)
		}
	}
	if got := len(rx.Requests()); got != 1 {
		t.Fatalf("a 400 was retried: %d requests", got)
	}
	if got := cursor(t, s); got != "" {
		t.Fatalf("checkpoint %q after a refusal, want none", got)
	}
}

func TestLargePagesGoInOrderedParts(t *testing.T) {
	rx := httpsinktest.New(signingKey)
	s := open(t, rx, httpsink.Options{MaxBatchBytes: 2048})
	page := records(20)
	if _, err := s.WritePage(context.Background(), key, sink.Page{Records: page, Checkpoint: "c20"}); err != nil {
		t.Fatalf("WritePage: %v", err)
	}
	requests := rx.Requests()
	if len(requests) < 3 {
		t.Fatalf("%d requests for 20 records of ~400 bytes under 2048 bytes a batch", len(requests))
	}
	var ids []string
	keys := map[string]bool{}
	for i, r := range requests {
		if got, want := r.Header.Get(httpsink.HeaderBatchPart), fmt.Sprintf("%d/%d", i+1, len(requests)); got != want {
			t.Fatalf("request %d is part %q, want %q", i, got, want)
		}
		keys[r.Header.Get(httpsink.HeaderIdempotencyKey)] = true
		for _, e := range r.Events {
			ids = append(ids, e.Subject)
		}
	}
	if len(keys) != len(requests) {
		t.Fatalf("%d idempotency keys for %d parts", len(keys), len(requests))
	}
	for i, id := range ids {
		if id != page[i].ID {
			t.Fatalf("record %d delivered is %s, want %s", i, id, page[i].ID)
		}
	}
}

func TestDeleteRowsTellsTheEndpoint(t *testing.T) {
	rx := httpsinktest.New(signingKey)
	s := open(t, rx, httpsink.Options{})
	if _, err := s.WritePage(context.Background(), key, sink.Page{Records: records(1), Checkpoint: "c1"}); err != nil {
		t.Fatalf("WritePage: %v", err)
	}
	if err := s.DeleteRows(context.Background(), key, sink.Owner{}); err != nil {
		t.Fatalf("DeleteRows: %v", err)
	}
	requests := rx.Requests()
	last := requests[len(requests)-1].Events
	if len(last) != 1 || last[0].Type != httpsink.TypeDataSetDeleted || last[0].Key() != key {
		t.Fatalf("DeleteRows posted %+v, want one %s event of %s", last, httpsink.TypeDataSetDeleted, key)
	}
	if got := cursor(t, s); got != "" {
		t.Fatalf("checkpoint %q after DeleteRows, want none", got)
	}
}

func TestOpenRefusesABadURLWithoutShowingIt(t *testing.T) {
	_, err := httpsink.Open(httpsink.Options{URL: "ftp://user:s3cret@example.com", SigningKey: signingKey, Checkpoints: store(t)})
	if _, refused := sink.Refusal(err); !refused || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open with an ftp URL: %v, want a refusal that does not show the URL", err)
	}
}

// TestServerErrorBurstLosesNothing: a burst of 500s longer than one write's attempts fails
// the write as an unavailable sink with the cursor where it was; the next write (the
// controller's retry) delivers the batch with the same Idempotency-Key, and the endpoint
// ends with every record.
func TestServerErrorBurstLosesNothing(t *testing.T) {
	rx := httpsinktest.New(signingKey)
	rx.SetFault(func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n <= 5 {
			http.Error(w, "overloaded", http.StatusInternalServerError)
			return true
		}
		return false
	})
	s := open(t, rx, httpsink.Options{})
	page := sink.Page{Records: records(4), Checkpoint: "c4"}
	_, err := s.WritePage(context.Background(), key, page)
	if !sink.IsUnavailable(err) {
		t.Fatalf("WritePage during a burst of 500s: %v, want an unavailable sink", err)
	}
	if got := cursor(t, s); got != "" {
		t.Fatalf("checkpoint %q after a failed delivery, want none", got)
	}
	for {
		_, err := s.WritePage(context.Background(), key, page)
		if err == nil {
			break
		}
		if !sink.IsUnavailable(err) || len(rx.Requests()) > 10 {
			t.Fatalf("WritePage again: %v after %d requests", err, len(rx.Requests()))
		}
	}
	if got := cursor(t, s); got != "c4" {
		t.Fatalf("checkpoint %q after the burst, want c4", got)
	}
	keys := map[string]bool{}
	for _, r := range rx.Requests() {
		keys[r.Header.Get(httpsink.HeaderIdempotencyKey)] = true
	}
	if len(keys) != 1 {
		t.Fatalf("%d idempotency keys for one batch retried %d times", len(keys), len(rx.Requests()))
	}
	rows, err := rx.ReadRows(context.Background(), key)
	if err != nil || len(rows) != len(page.Records) {
		t.Fatalf("the endpoint holds %d rows (%v), want %d", len(rows), err, len(page.Records))
	}
}
