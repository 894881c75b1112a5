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

package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/postgres"
	"github.com/nango-operator/nango-operator/internal/sink/sinks"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
)

// errCrash is what an armed fault hook returns: the reconcile ends there, as if the
// process died.
var errCrash = errors.New("injected crash")

// faultHook crashes the reconcile of one data set right after its sink committed a page
// and before the status patch that records its cursor, a given number of times: the case
// the sink's checkpoint is for. It wraps the sinks the reconciler opens.
type faultHook struct {
	mu        sync.Mutex
	key       sink.Key
	remaining int
	// onFire runs when the hook crashes a reconcile, before it returns.
	onFire func()
	// resetFailures is how many more ResetCheckpoint calls fail, by data set.
	resetFailures map[sink.Key]int
	// checkpointDeletes counts the DeleteCheckpoint calls of the sinks the reconciler uses.
	checkpointDeletes atomic.Int64
}

// failResetCheckpoint makes the next times ResetCheckpoint calls of key fail.
func (f *faultHook) failResetCheckpoint(key sink.Key, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.resetFailures == nil {
		f.resetFailures = map[sink.Key]int{}
	}
	f.resetFailures[key] = times
}

func (f *faultHook) resetFails(key sink.Key) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.resetFailures[key] == 0 {
		return false
	}
	f.resetFailures[key]--
	return true
}

func (f *faultHook) arm(key sink.Key, times int, onFire func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key, f.remaining, f.onFire = key, times, onFire
}

// fire reports whether a write of key that just committed crashes now.
func (f *faultHook) fire(key sink.Key) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.remaining == 0 || key != f.key {
		return false
	}
	f.remaining--
	if f.onFire != nil {
		f.onFire()
	}
	return true
}

// open is the reconciler's sinks.Opener: the sinks it opens crash when the hook fires.
func (f *faultHook) open(ctx context.Context, target sinks.Target) (sink.Sink, error) {
	snk, err := target.Open(ctx)
	if err != nil {
		return nil, err
	}
	return &crashAfterCommit{Sink: snk, hook: f}, nil
}

// crashAfterCommit is a sink whose writes end as a crash would once the hook fires: the
// page and its checkpoint are committed, the reconcile never learns it.
type crashAfterCommit struct {
	sink.Sink
	hook *faultHook
}

func (c *crashAfterCommit) WritePage(ctx context.Context, key sink.Key, page sink.Page) (sink.WriteResult, error) {
	result, err := c.Sink.WritePage(ctx, key, page)
	if err == nil && c.hook.fire(key) {
		return sink.WriteResult{}, errCrash
	}
	return result, err
}

func (c *crashAfterCommit) DeleteCheckpoint(ctx context.Context, key sink.Key, owner sink.Owner) error {
	c.hook.checkpointDeletes.Add(1)
	return c.Sink.DeleteCheckpoint(ctx, key, owner)
}

func (c *crashAfterCommit) ResetCheckpoint(ctx context.Context, key sink.Key, owner sink.Owner) error {
	if c.hook.resetFails(key) {
		return fmt.Errorf("reset checkpoint of %s: %w", key, sink.ErrUnavailable)
	}
	return c.Sink.ResetCheckpoint(ctx, key, owner)
}

// nangoRequest is one GET /records the emulator answered.
type nangoRequest struct {
	connectionID, model, cursor string
}

// requestLog records the GET /records requests sent to the emulator, and counts its
// GET /sync/status and GET /connections requests by integration.
type requestLog struct {
	mu          sync.Mutex
	requests    []nangoRequest
	syncStatus  map[string]int
	connections map[string]int
}

func (l *requestLog) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sync/status" {
			l.mu.Lock()
			if l.syncStatus == nil {
				l.syncStatus = map[string]int{}
			}
			l.syncStatus[r.URL.Query().Get("provider_config_key")]++
			l.mu.Unlock()
		}
		if r.URL.Path == "/connections" {
			l.mu.Lock()
			if l.connections == nil {
				l.connections = map[string]int{}
			}
			l.connections[r.URL.Query().Get("integrationId")]++
			l.mu.Unlock()
		}
		if strings.HasPrefix(r.URL.Path, "/records") {
			l.mu.Lock()
			l.requests = append(l.requests, nangoRequest{
				connectionID: r.Header.Get("Connection-Id"),
				model:        r.URL.Query().Get("model"),
				cursor:       r.URL.Query().Get("cursor"),
			})
			l.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// since answers the requests for a connection from position from of the log on.
func (l *requestLog) since(from int, connectionID string) []nangoRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []nangoRequest
	for _, r := range l.requests[from:] {
		if r.connectionID == connectionID {
			out = append(out, r)
		}
	}
	return out
}

// syncStatusRequests answers how many GET /sync/status requests named an integration.
func (l *requestLog) syncStatusRequests(providerConfigKey string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.syncStatus[providerConfigKey]
}

// connectionListings answers how many GET /connections requests named only an integration.
func (l *requestLog) connectionListings(providerConfigKey string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.connections[providerConfigKey]
}

func (l *requestLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.requests)
}

// uniqueName makes names that no other test uses.
func uniqueName(prefix string) string {
	return prefix + "-" + rand.String(6)
}

// sqliteSinkSpec is an SQLite sink in a file of the test's own.
func sqliteSinkSpec(table string) syncv1alpha1.SinkSpec {
	path := filepath.Join(GinkgoT().TempDir(), "nango.db")
	return syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{Path: path, Table: table}}
}

// postgresSinkSpec is a PostgreSQL sink in a database of the test's own on the shared
// server, with its URL in a new Secret.
func postgresSinkSpec(table string) syncv1alpha1.SinkSpec {
	return postgresSinkSpecFor(pgtest.NewDatabase(GinkgoTB()), table)
}

// postgresSinkSpecFor is a PostgreSQL sink at dsn, with its URL in a new Secret.
func postgresSinkSpecFor(dsn, table string) syncv1alpha1.SinkSpec {
	secretName := uniqueName("pg")
	Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: syncNamespace, Name: secretName},
		StringData: map[string]string{"url": dsn},
	})).To(Succeed())
	return syncv1alpha1.SinkSpec{Postgres: &syncv1alpha1.PostgresSink{
		URLSecretRef: syncv1alpha1.SecretKeyReference{Name: secretName, Key: "url"},
		Table:        table,
	}}
}

// rowReader is a sink the test reads rows back from.
type rowReader interface {
	sink.Sink
	ReadRows(ctx context.Context, key sink.Key) ([]sink.Record, error)
}

// openSink opens the sink of spec for the test to read, apart from the reconciler's own.
func openSink(spec syncv1alpha1.SinkSpec) rowReader {
	GinkgoHelper()
	var (
		snk rowReader
		err error
	)
	switch {
	case spec.SQLite != nil:
		snk, err = sqlite.Open(ctx, spec.SQLite.Path, sqlite.Options{Table: spec.SQLite.Table})
	case spec.Postgres != nil:
		secret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: syncNamespace, Name: spec.Postgres.URLSecretRef.Name}, secret)).To(Succeed())
		snk, err = postgres.Open(ctx, string(secret.Data["url"]), postgres.Options{Table: spec.Postgres.Table})
	case spec.HTTP != nil:
		snk, err = openHTTPSink(spec)
	}
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(snk.Close)
	return snk
}

// dataSet is what a sink must hold for one NangoSync: the test's own account of the
// records it gave the emulator, kept apart from the emulator so that a bug there cannot
// hide one here.
type dataSet struct {
	ref     nangosim.ModelRef
	payload map[string]json.RawMessage
	deleted map[string]bool
}

func newDataSet(connectionID, model string) *dataSet {
	return &dataSet{
		ref: nangosim.ModelRef{
			ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: connectionID},
			Model:         model,
		},
		payload: map[string]json.RawMessage{},
		deleted: map[string]bool{},
	}
}

// record is a payload with the values that catch lossy copies: a number past float64's
// precision, a null, nesting and non-ASCII text.
func record(id string, version int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(
		`{"id":%q,"name":"Zoë %s v%d","version":%d,"big":12345678901234567890,"nullable":null,"nested":{"tags":["a","b"],"at":"2026-01-01"}}`,
		id, id, version, version))
}

// upsert adds or changes records in the emulator and in the expected state.
func (d *dataSet) upsert(ids []string, version int) {
	GinkgoHelper()
	records := make([]json.RawMessage, len(ids))
	for i, id := range ids {
		records[i] = record(id, version)
		d.payload[id] = records[i]
		d.deleted[id] = false
	}
	_, err := sim.UpsertRecords(d.ref, records)
	Expect(err).NotTo(HaveOccurred())
}

// delete deletes records at the source; the sink keeps them, marked deleted.
func (d *dataSet) delete(ids []string) {
	GinkgoHelper()
	_, err := sim.DeleteRecords(d.ref, ids)
	Expect(err).NotTo(HaveOccurred())
	for _, id := range ids {
		d.deleted[id] = true
	}
}

// prune empties records' payload in the emulator; the sink keeps what it had.
func (d *dataSet) prune(ids []string) {
	GinkgoHelper()
	_, err := sim.PruneRecords(d.ref, ids)
	Expect(err).NotTo(HaveOccurred())
}

func (d *dataSet) key() sink.Key {
	return sink.Key{ProviderConfigKey: d.ref.ProviderConfigKey, ConnectionID: d.ref.ConnectionID, Model: d.ref.Model, Variant: "base"}
}

// matches fails unless the sink holds exactly the expected rows: the same ids, payloads
// and deleted flags.
func (d *dataSet) matches(g Gomega, snk rowReader) {
	rows, err := snk.ReadRows(ctx, d.key())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rows).To(HaveLen(len(d.payload)), "rows of %s", d.key())
	for _, row := range rows {
		want, ok := d.payload[row.ID]
		g.Expect(ok).To(BeTrue(), "unexpected row %q in %s", row.ID, d.key())
		g.Expect(sameJSON(row.Payload, want)).To(BeTrue(), "payload of %q: got %s, want %s", row.ID, row.Payload, want)
		g.Expect(row.DeletedAt != nil).To(Equal(d.deleted[row.ID]), "deleted flag of %q", row.ID)
	}
}

// sameJSON compares two JSON documents by value, keeping numbers exact.
func sameJSON(a, b json.RawMessage) bool {
	decode := func(raw json.RawMessage) any {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return err.Error()
		}
		return v
	}
	return equality.Semantic.DeepEqual(decode(a), decode(b))
}

// ids makes n record ids.
func ids(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%06d", prefix, from+i)
	}
	return out
}

// newNangoSyncFor is a NangoSync of one data set, in the namespace the reconciler watches.
func newNangoSyncFor(d *dataSet, sinkSpec syncv1alpha1.SinkSpec) *syncv1alpha1.NangoSync {
	return &syncv1alpha1.NangoSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: syncNamespace, Name: uniqueName(strings.ToLower(d.ref.Model))},
		Spec: syncv1alpha1.NangoSyncSpec{
			ConnectionID:      d.ref.ConnectionID,
			ProviderConfigKey: d.ref.ProviderConfigKey,
			Model:             d.ref.Model,
			Sink:              sinkSpec,
			Interval:          &metav1.Duration{Duration: time.Hour},
			PageSize:          1000,
		},
	}
}

// contactsIntoSQLite gives a new connection n Contact records in the emulator, and answers
// their data set, an SQLite sink of the test's own, and a NangoSync (not created yet) that
// copies one into the other.
func contactsIntoSQLite(connectionPrefix string, n int) (*dataSet, rowReader, *syncv1alpha1.NangoSync) {
	GinkgoHelper()
	d := newDataSet(uniqueName(connectionPrefix), "Contact")
	Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
	d.upsert(ids("rec", 0, n), 1)
	spec := sqliteSinkSpec("contacts")
	return d, openSink(spec), newNangoSyncFor(d, spec)
}

// create creates a NangoSync and deletes it after the test.
func create(nsync *syncv1alpha1.NangoSync) {
	GinkgoHelper()
	Expect(k8sClient.Create(ctx, nsync)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, nsync))).To(Succeed())
		// The finalizer cleans the sink first: wait, so that the sink outlives it.
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), &syncv1alpha1.NangoSync{})
		}).WithTimeout(30 * time.Second).Should(Satisfy(apierrors.IsNotFound))
	})
}

// readyCondition answers the NangoSync's Ready condition, or nil.
func readyCondition(g Gomega, nsync *syncv1alpha1.NangoSync) *metav1.Condition {
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
	return apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.ReadyCondition)
}

// expectReason waits until the NangoSync's Ready condition has status and reason.
func expectReason(nsync *syncv1alpha1.NangoSync, status metav1.ConditionStatus, reason string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		ready := readyCondition(g, nsync)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(reason), "message: %s", ready.Message)
		g.Expect(ready.Status).To(Equal(status))
	}).WithTimeout(60 * time.Second).Should(Succeed())
}

// annotate sets an annotation to a new value, with a merge patch.
func annotate(nsync *syncv1alpha1.NangoSync, key string) string {
	GinkgoHelper()
	value := time.Now().Format(time.RFC3339Nano)
	patch := client.RawPatch(types.MergePatchType,
		[]byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)))
	Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
	return value
}

// runKubectl runs the real kubectl binary as a cluster administrator and answers its output.
func runKubectl(args ...string) string {
	GinkgoHelper()
	admin, err := testEnv.AddUser(envtest.User{Name: "kubectl-admin", Groups: []string{"system:masters"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	k, err := admin.Kubectl()
	Expect(err).NotTo(HaveOccurred())
	stdout, stderr, err := k.Run(args...)
	errText, _ := io.ReadAll(stderr)
	Expect(err).NotTo(HaveOccurred(), "kubectl %v: %s", args, errText)
	out, err := io.ReadAll(stdout)
	Expect(err).NotTo(HaveOccurred())
	return string(out)
}

// conditionTrue tells whether a condition of the NangoSync (as last read) is True.
func conditionTrue(nsync *syncv1alpha1.NangoSync, conditionType string) bool {
	return apimeta.IsStatusConditionTrue(nsync.Status.Conditions, conditionType)
}

// apimetaReady tells whether the NangoSync (as last read) is Ready.
func apimetaReady(nsync *syncv1alpha1.NangoSync) bool {
	return conditionTrue(nsync, syncv1alpha1.ReadyCondition)
}

// readyMessage is the message of the NangoSync's Ready condition (as last read).
func readyMessage(nsync *syncv1alpha1.NangoSync) string {
	if c := apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.ReadyCondition); c != nil {
		return c.Message
	}
	return ""
}

// createSecret creates a Secret with one key in the namespace the reconciler watches.
func createSecret(name, key, value string) {
	GinkgoHelper()
	Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: syncNamespace, Name: name},
		StringData: map[string]string{key: value},
	})).To(Succeed())
}

// updateSecret sets one key of a Secret.
func updateSecret(name, key, value string) {
	GinkgoHelper()
	secret := &corev1.Secret{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: syncNamespace, Name: name}, secret)).To(Succeed())
	secret.Data[key] = []byte(value)
	Expect(k8sClient.Update(ctx, secret)).To(Succeed())
}

// sinkPage is a page of no records that moves the checkpoint of the data set that nsync
// owns to cursor.
func sinkPage(nsync *syncv1alpha1.NangoSync, cursor string) sink.Page {
	return sink.Page{Checkpoint: cursor, Owner: owner(nsync)}
}

// nangosimFaults429 answers every request with a 429 and Retry-After: 1.
func nangosimFaults429() nangosim.Faults {
	return nangosim.Faults{RateLimitRate: 1, RetryAfter: nangosim.Duration(time.Second)}
}

// noFaults turns fault injection off.
func noFaults() nangosim.Faults {
	return nangosim.Faults{}
}

// seedOptions seeds n synthetic records.
func seedOptions(n int) nangosim.SeedOptions {
	return nangosim.SeedOptions{Count: n}
}

// syncedNangoSync creates a NangoSync over 1,500 records and waits for its first sync.
func syncedNangoSync(spec syncv1alpha1.SinkSpec) (*dataSet, *syncv1alpha1.NangoSync) {
	GinkgoHelper()
	return syncedNangoSyncWith(spec, nil)
}

// syncedNangoSyncWith is syncedNangoSync with a change to the NangoSync before it is created.
func syncedNangoSyncWith(spec syncv1alpha1.SinkSpec, mutate func(*syncv1alpha1.NangoSync)) (*dataSet, *syncv1alpha1.NangoSync) {
	GinkgoHelper()
	d := newDataSet(uniqueName("umbrella"), "Contact")
	Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
	d.upsert(ids("rec", 0, 1500), 1)
	nsync := newNangoSyncFor(d, spec)
	if mutate != nil {
		mutate(nsync)
	}
	create(nsync)
	expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
	return d, nsync
}

// eventReasons lists the reasons of the events about a NangoSync.
func eventReasons(g Gomega, nsync *syncv1alpha1.NangoSync) []string {
	var events eventsv1.EventList
	g.Expect(k8sClient.List(ctx, &events, client.InNamespace(nsync.Namespace))).To(Succeed())
	var reasons []string
	for _, e := range events.Items {
		if e.Regarding.Name == nsync.Name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

// lastSuccess answers the reconciler's nango_operator_sync_last_success_timestamp_seconds
// of nsync, and whether it has one.
func lastSuccess(g Gomega, nsync *syncv1alpha1.NangoSync) (time.Time, bool) {
	families, err := reconcilerMetrics.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, family := range families {
		if family.GetName() != "nango_operator_sync_last_success_timestamp_seconds" {
			continue
		}
		for _, m := range family.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == nsync.Namespace && labels["name"] == nsync.Name {
				return time.Unix(0, int64(m.GetGauge().GetValue()*float64(time.Second))), true
			}
		}
	}
	return time.Time{}, false
}

// otherNangoAnswers makes the allowed second Nango URL, otherNango, answer with h until
// the test ends.
func otherNangoAnswers(h http.HandlerFunc) {
	var handler http.Handler = h
	otherNangoHandler.Store(&handler)
	DeferCleanup(func() { otherNangoHandler.Store(nil) })
}

// countingReader counts the full reads of Secrets it passes on.
type countingReader struct {
	client.Reader
	secrets atomic.Int32
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok {
		c.secrets.Add(1)
	}
	return c.Reader.Get(ctx, key, obj, opts...)
}

// execSQL runs statements, in order, in the database of dsn.
func execSQL(dsn string, statements ...string) {
	GinkgoHelper()
	conn, err := pgx.Connect(ctx, dsn)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close(ctx) }()
	for _, statement := range statements {
		_, err := conn.Exec(ctx, statement)
		Expect(err).NotTo(HaveOccurred(), statement)
	}
}
