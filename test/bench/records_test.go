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

package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/testutil/records"
)

const (
	benchSecretKey = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	benchPCK       = "hubspot"
	benchConn      = "acme"
	benchModel     = "Contact"
)

var benchModelRef = nangosim.ModelRef{
	ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: benchPCK, ConnectionID: benchConn},
	Model:         benchModel,
}

// newSim builds an emulator with the bench connection and n records of about size bytes,
// served over HTTP.
func newSim(t *testing.T, n, size int) (*nangosim.Sim, string) {
	t.Helper()
	sim := nangosim.New(nangosim.Options{SecretKey: benchSecretKey})
	must(t, sim.CreateConnection(benchModelRef.ConnectionRef, "hubspot"))
	const batch = 5000
	recs := make([]json.RawMessage, 0, batch)
	for start := 0; start < n; start += batch {
		recs = recs[:0]
		for i := start; i < min(n, start+batch); i++ {
			recs = append(recs, records.JSON(i, 0, size))
		}
		if _, err := sim.UpsertRecords(benchModelRef, recs); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// newNangoClient is a client of the emulator with a limiter that lets everything through.
func newNangoClient(t *testing.T, url string) *nango.Client {
	t.Helper()
	c, err := nango.NewClient(url, benchSecretKey,
		nango.WithLimiterRegistry(nango.NewLimiterRegistry(nango.LimiterConfig{Limit: 1 << 30, Window: time.Second})))
	must(t, err)
	return c
}

// hashPayload is the SHA-256 of a payload in canonical form (object keys sorted, no
// spaces, numbers as written, without _nango_metadata), so that PostgreSQL's jsonb,
// SQLite's text and the emulator's bytes compare equal when their JSON is.
func hashPayload(raw []byte) ([32]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return [32]byte{}, err
	}
	delete(fields, "_nango_metadata")
	canon := make(map[string]any, len(fields))
	for k, v := range fields {
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		var x any
		if err := d.Decode(&x); err != nil {
			return [32]byte{}, err
		}
		canon[k] = x
	}
	b, err := json.Marshal(canon)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// state is what one record should look like in the sink.
type state struct {
	hash    [32]byte
	deleted bool
}

// emulatorState pages through the emulator from an empty cursor and answers every record
// (with its hash unless pruned), failing on a record seen twice, and the last cursor.
func emulatorState(t *testing.T, c *nango.Client, pageSize int) (map[string]state, map[string]bool, string) {
	t.Helper()
	got := map[string]state{}
	pruned := map[string]bool{}
	cursor, last := "", ""
	for {
		page, err := c.ListRecords(context.Background(), nango.ListRecordsRequest{
			ConnectionID: benchConn, ProviderConfigKey: benchPCK, Model: benchModel, Cursor: cursor, Limit: pageSize})
		must(t, err)
		for _, r := range page.Records {
			if _, dup := got[r.ID]; dup {
				t.Fatalf("the emulator answered record %s twice", r.ID)
			}
			s := state{deleted: r.Deleted()}
			if r.Pruned() {
				pruned[r.ID] = true
			} else {
				h, err := hashPayload(r.Fields)
				must(t, err)
				s.hash = h
			}
			got[r.ID] = s
			last = r.Metadata.Cursor
		}
		if page.NextCursor == "" {
			return got, pruned, last
		}
		cursor = page.NextCursor
	}
}

// rowReader is what both sinks offer to read a key's rows back.
type rowReader interface {
	sink.Sink
	ReadRows(ctx context.Context, key sink.Key) ([]sink.Record, error)
}

// benchKey is the sink key of the bench NangoSync.
var benchKey = sink.Key{ProviderConfigKey: benchPCK, ConnectionID: benchConn, Model: benchModel, Variant: "base"}

// diffSink compares the sink's rows with want and describes the first differences.
func diffSink(s interface {
	ReadRows(ctx context.Context, key sink.Key) ([]sink.Record, error)
}, want map[string]state) error {
	rows, err := s.ReadRows(context.Background(), benchKey)
	if err != nil {
		return err
	}
	var problems []string
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		seen[r.ID] = true
		w, ok := want[r.ID]
		if !ok {
			problems = append(problems, "unexpected row "+r.ID)
			continue
		}
		if (r.DeletedAt != nil) != w.deleted {
			problems = append(problems, fmt.Sprintf("row %s: deleted=%v, want %v", r.ID, r.DeletedAt != nil, w.deleted))
		}
		if len(r.Payload) == 0 {
			problems = append(problems, fmt.Sprintf("row %s has no payload", r.ID))
			continue
		}
		h, err := hashPayload(r.Payload)
		if err != nil {
			return fmt.Errorf("row %s: %w", r.ID, err)
		}
		if h != w.hash {
			problems = append(problems, fmt.Sprintf("row %s: payload differs", r.ID))
		}
	}
	for id := range want {
		if !seen[id] {
			problems = append(problems, "missing row "+id)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d differences (%d rows, want %d), first: %v", len(problems), len(rows), len(want),
			problems[:min(len(problems), 5)])
	}
	return nil
}

// nangoSync is the bench NangoSync against the emulator at url.
func nangoSync(namespace, name, url string, pageSize int32, snk syncv1alpha1.SinkSpec) *syncv1alpha1.NangoSync {
	return &syncv1alpha1.NangoSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: syncv1alpha1.NangoSyncSpec{
			ConnectionID:      benchConn,
			ProviderConfigKey: benchPCK,
			Model:             benchModel,
			Nango:             &syncv1alpha1.NangoEndpoint{URL: url},
			Sink:              snk,
			PageSize:          pageSize,
			Interval:          &metav1.Duration{Duration: 10 * time.Second},
		},
	}
}

func postgresSinkSpec(table string) syncv1alpha1.SinkSpec {
	return syncv1alpha1.SinkSpec{Postgres: &syncv1alpha1.PostgresSink{
		URLSecretRef: syncv1alpha1.SecretKeyReference{Name: "pg", Key: "url"}, Table: table}}
}

func sqliteSinkSpec(path, table string) syncv1alpha1.SinkSpec {
	return syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{Path: path, Table: table}}
}

// getSync reads a NangoSync.
func (e *env) getSync(namespace, name string) (*syncv1alpha1.NangoSync, error) {
	ns := &syncv1alpha1.NangoSync{}
	err := e.k8s.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: name}, ns)
	return ns, err
}

func totalRecords(ns *syncv1alpha1.NangoSync) int64 {
	return ns.Status.Records.Total
}

func readyReason(ns *syncv1alpha1.NangoSync) (metav1.ConditionStatus, string) {
	for _, c := range ns.Status.Conditions {
		if c.Type == syncv1alpha1.ReadyCondition {
			return c.Status, c.Reason
		}
	}
	return metav1.ConditionUnknown, ""
}
