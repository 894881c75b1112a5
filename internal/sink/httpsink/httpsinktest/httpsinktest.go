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

// Package httpsinktest is the user's endpoint for tests of the http sink: it checks
// signatures the way the README tells users to, keeps every event it accepted, folds them
// into rows as an application would (the newest version of each record wins, a pruned
// version keeps the fields, a batch seen before by its Idempotency-Key is not applied
// again), and answers what a test's fault says.
package httpsinktest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/cloudevents"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink"
)

// Verify is the README's Go verification snippet: keep the two the same. It reports
// whether header (Nango-Operator-Signature) signs body under key, made within tolerance.
func Verify(key, body []byte, header string, tolerance time.Duration) bool {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		name, value, _ := strings.Cut(part, "=")
		switch name {
		case "t":
			ts = value
		case "v1":
			sig = value
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > tolerance {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want, err := hex.DecodeString(sig)
	return err == nil && hmac.Equal(mac.Sum(nil), want)
}

// Event is an event as the receiver decodes it.
type Event struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Subject     string          `json:"subject"`
	Source      string          `json:"source"`
	SpecVersion string          `json:"specversion"`
	Integration string          `json:"nangointegration"`
	Connection  string          `json:"nangoconnection"`
	Model       string          `json:"nangomodel"`
	Variant     string          `json:"nangovariant"`
	Data        json.RawMessage `json:"data"`
}

// Key answers the data set of the event.
func (e Event) Key() sink.Key {
	return sink.Key{ProviderConfigKey: e.Integration, ConnectionID: e.Connection, Model: e.Model, Variant: e.Variant}
}

// Record decodes the record version an event carries.
func (e Event) Record() (sink.Record, error) {
	r, err := cloudevents.DecodeRecord(e.Subject, e.Data)
	if err != nil {
		return sink.Record{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	return r, nil
}

// Request is one POST the receiver answered.
type Request struct {
	Header http.Header
	Events []Event
}

// Fault answers the nth request (from 1) instead of the receiver when it returns true.
type Fault func(n int, w http.ResponseWriter, r *http.Request) bool

// Receiver is the endpoint. Its zero value is not usable: use New.
type Receiver struct {
	signingKey []byte

	mu       sync.Mutex
	fault    Fault
	requests []Request
	applied  map[string]bool // idempotency keys of the batches applied
	accepted map[sink.Key][]Event
	rows     map[sink.Key]map[string]sink.Record
}

// New answers a receiver that accepts bodies signed with signingKey.
func New(signingKey []byte) *Receiver {
	return &Receiver{signingKey: signingKey, applied: map[string]bool{}, accepted: map[sink.Key][]Event{},
		rows: map[sink.Key]map[string]sink.Record{}}
}

// SetFault makes fault answer the requests from now on; nil answers them all.
func (rx *Receiver) SetFault(fault Fault) {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	rx.fault = fault
}

// ServeHTTP checks the request, lets the fault answer, and applies the batch.
func (rx *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !Verify(rx.signingKey, body, r.Header.Get(httpsink.HeaderSignature), 5*time.Minute) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Type") != httpsink.ContentType {
		http.Error(w, "not a CloudEvents batch", http.StatusUnsupportedMediaType)
		return
	}
	var events []Event
	if err := json.Unmarshal(body, &events); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rx.mu.Lock()
	defer rx.mu.Unlock()
	rx.requests = append(rx.requests, Request{Header: r.Header.Clone(), Events: events})
	if rx.fault != nil && rx.fault(len(rx.requests), w, r) {
		return
	}
	if err := rx.applyLocked(r.Header.Get(httpsink.HeaderIdempotencyKey), events); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rx *Receiver) applyLocked(idempotencyKey string, events []Event) error {
	for _, e := range events {
		rx.accepted[e.Key()] = append(rx.accepted[e.Key()], e)
	}
	if rx.applied[idempotencyKey] {
		return nil // delivered again after a lost answer: applied already
	}
	rx.applied[idempotencyKey] = true
	for _, e := range events {
		switch e.Type {
		case httpsink.TypeDataSetDeleted:
			delete(rx.rows, e.Key())
			continue
		case httpsink.TypeQuarantined:
			continue
		}
		r, err := e.Record()
		if err != nil {
			return err
		}
		rows := rx.rows[e.Key()]
		if rows == nil {
			rows = map[string]sink.Record{}
			rx.rows[e.Key()] = rows
		}
		Apply(rows, r)
	}
	return nil
}

// Apply folds a record version into rows as an application does: a version older than the
// one held is skipped, a pruned version keeps the fields held.
func Apply(rows map[string]sink.Record, r sink.Record) {
	stored, ok := rows[r.ID]
	if ok && r.LastModifiedAt.Before(stored.LastModifiedAt) {
		return
	}
	if r.Pruned && ok {
		r.Payload = stored.Payload
	}
	rows[r.ID] = r
}

// Requests answers every request answered so far.
func (rx *Receiver) Requests() []Request {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return slices.Clone(rx.requests)
}

// Delivered answers the events of key accepted so far, in order, redeliveries included.
func (rx *Receiver) Delivered(_ context.Context, key sink.Key) ([]Event, error) {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return slices.Clone(rx.accepted[key]), nil
}

// ReadRows answers the rows the applied events of key left, ordered by id.
func (rx *Receiver) ReadRows(_ context.Context, key sink.Key) ([]sink.Record, error) {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	rows := make([]sink.Record, 0, len(rx.rows[key]))
	for _, r := range rx.rows[key] {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b sink.Record) int { return strings.Compare(a.ID, b.ID) })
	return rows, nil
}
