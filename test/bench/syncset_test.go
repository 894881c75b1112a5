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
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/controller"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/receiver"
)

// TestSyncSetConnectLatency measures, for connections created one after another in the
// emulator, the time from Nango's auth webhook (creation) to the connection's NangoSync
// existing, and to its first record being in the sink. The manager runs the NangoSyncSet
// and NangoSync controllers and the webhook receiver; the set's discovery interval and the
// NangoSyncs' interval are an hour, so only the webhook makes either happen.
//
// Smoke (go test): 20 connections. Full (NANGO_BENCH_FULL=1): 200 connections; fails over
// the target "within a second" (p99 of webhook → NangoSync created under 1 s).
// NANGO_SET_CONNECTIONS overrides the count.
func TestSyncSetConnectLatency(t *testing.T) {
	connections := 20
	if fullBench() {
		connections = 200
	}
	connections = envInt(t, "NANGO_SET_CONNECTIONS", connections)

	e := cluster(t)
	sim := nangosim.New(nangosim.Options{
		SecretKey:         benchSecretKey,
		WebhookRetryWaits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
		WebhookTimeout:    10 * time.Second,
	})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	simEnv, _ := sim.Environment("")

	namespace := e.newNamespace(t, benchSecretKey, "")
	ctx := context.Background()
	must(t, e.k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "nango-webhook"},
		StringData: map[string]string{"current": simEnv.SigningKey},
	}))
	receiverAddr := freeAddr(t)
	m := e.startManager(t, "--nango-url", srv.URL, "--nango-rate-limit", "1000000000",
		"--webhook-bind-address", receiverAddr,
		"--webhook-signing-secret", "nango-webhook",
		"--webhook-signing-secret-namespace", namespace)
	m.waitReady(t)
	e.deleteSyncsOnCleanup(t, namespace)
	must(t, sim.SetWebhookURL("", "http://"+receiverAddr+receiver.Path))

	dbPath := filepath.Join(t.TempDir(), "set.db")
	set := &syncv1alpha1.NangoSyncSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "crm"},
		Spec: syncv1alpha1.NangoSyncSetSpec{
			ProviderConfigKey: benchPCK,
			Models:            []syncv1alpha1.SyncSetModel{{Model: benchModel}},
			DiscoveryInterval: &metav1.Duration{Duration: time.Hour},
			Template: syncv1alpha1.NangoSyncTemplate{Spec: syncv1alpha1.NangoSyncTemplateSpec{
				Sink:     sqliteSinkSpec(dbPath, fleetTable),
				Interval: &metav1.Duration{Duration: time.Hour},
			}},
		},
	}
	must(t, e.k8s.Create(ctx, set))
	// Registered after deleteSyncsOnCleanup, so it runs first: a set left alive would
	// bring back the NangoSyncs being deleted.
	t.Cleanup(func() { _ = e.k8s.Delete(context.Background(), set) })
	eventually(t, time.Minute, 10*time.Millisecond, func() error {
		if err := e.k8s.Get(ctx, client.ObjectKeyFromObject(set), set); err != nil {
			return err
		}
		if !apimeta.IsStatusConditionTrue(set.Status.Conditions, syncv1alpha1.ReadyCondition) {
			return fmt.Errorf("the NangoSyncSet is not Ready: %+v", set.Status.Conditions)
		}
		return nil
	})

	db := openSinkReader(t, dbPath)
	has := `SELECT count(*) FROM "` + fleetTable + `" WHERE connection_id = ? AND id = 'first'`
	created := make([]time.Duration, 0, connections)
	filled := make([]time.Duration, 0, connections)
	for i := range connections {
		conn := "customer-" + strconv.Itoa(i)
		ref := nangosim.ConnectionRef{ProviderConfigKey: benchPCK, ConnectionID: conn}
		must(t, sim.CreateConnectionWith(nangosim.NewConnection{ConnectionRef: ref, Provider: "hubspot"}))
		_, err := sim.UpsertRecords(nangosim.ModelRef{ConnectionRef: ref, Model: benchModel},
			[]json.RawMessage{json.RawMessage(`{"id":"first"}`)})
		must(t, err)
		sent := time.Now()
		d, err := sim.SendAuthWebhook(ctx, nangosim.AuthWebhook{ConnectionRef: ref, Operation: nangosim.AuthCreation, Success: true})
		must(t, err)
		if d.StatusCode != http.StatusAccepted {
			t.Fatalf("auth webhook %d answered %d", i, d.StatusCode)
		}
		name := controller.SyncName(set.Name, benchPCK, conn, benchModel, "")
		eventually(t, 30*time.Second, 2*time.Millisecond, func() error {
			return e.k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &metav1.PartialObjectMetadata{
				TypeMeta: metav1.TypeMeta{APIVersion: syncv1alpha1.GroupVersion.String(), Kind: "NangoSync"}})
		})
		created = append(created, time.Since(sent))
		eventually(t, 30*time.Second, 2*time.Millisecond, func() error {
			var n int
			if err := db.QueryRow(has, conn).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("the record of %s is not in the sink", conn)
			}
			return nil
		})
		filled = append(filled, time.Since(sent))
	}
	// Every connection's NangoSync is Ready, not only there with a record: Ready is
	// patched after the sink committed, so it may trail the record by a moment.
	eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		census, err := e.census(namespace)
		if err != nil {
			return err
		}
		if census.total != connections || census.ready != connections {
			return fmt.Errorf("%d NangoSyncs, %d Ready, for %d connections; first not Ready: %s",
				census.total, census.ready, connections, census.notReady)
		}
		return nil
	})

	slices.Sort(created)
	slices.Sort(filled)
	t.Logf("new connection → NangoSync: %d connections, one model, interval and discovery interval 1h", connections)
	t.Logf("| connections | created p50 | created p99 | created max | in the sink p50 | in the sink p99 | in the sink max |")
	t.Logf("| %d | %s | %s | %s | %s | %s | %s |", connections,
		percentile(created, 50).Round(time.Millisecond), percentile(created, 99).Round(time.Millisecond),
		created[len(created)-1].Round(time.Millisecond),
		percentile(filled, 50).Round(time.Millisecond), percentile(filled, 99).Round(time.Millisecond),
		filled[len(filled)-1].Round(time.Millisecond))
	limit := 5 * time.Second // smoke: catches waking that degrades to the discovery interval
	if fullBench() {
		limit = time.Second
	}
	if p99 := percentile(created, 99); p99 > limit {
		t.Errorf("webhook → NangoSync created p99 %s: want under %s", p99, limit)
	}
}
