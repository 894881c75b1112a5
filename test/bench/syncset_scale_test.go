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
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// TestSyncSetScale creates one NangoSyncSet over connections × 2 models and measures the
// time from its creation until all its NangoSyncs are Ready, the requests to Nango's
// GET /connections, the manager's API-server writes over whole discovery intervals once all
// are Ready (nothing changes: the target is none), and the manager's max RSS.
//
// Smoke (go test): 50 connections (100 NangoSyncs), one 10 s discovery interval measured.
// Full (NANGO_BENCH_FULL=1): 5,000 connections (10,000 NangoSyncs), three intervals.
// NANGO_SET_SCALE_CONNECTIONS and NANGO_SET_SCALE_INTERVALS override.
func TestSyncSetScale(t *testing.T) {
	conns, intervals := 50, 1
	if fullBench() {
		conns, intervals = 5000, 3
	}
	conns = envInt(t, "NANGO_SET_SCALE_CONNECTIONS", conns)
	intervals = envInt(t, "NANGO_SET_SCALE_INTERVALS", intervals)
	models := []string{"Contact", "Deal"}
	const records = 5
	const interval = 10 * time.Second // the minimum discoveryInterval
	n := conns * len(models)

	e := cluster(t)
	sim := nangosim.New(nangosim.Options{SecretKey: benchSecretKey})
	for c := range conns {
		conn := nangosim.ConnectionRef{ProviderConfigKey: benchPCK, ConnectionID: "conn-" + strconv.Itoa(c)}
		must(t, sim.CreateConnectionWith(nangosim.NewConnection{ConnectionRef: conn, Provider: "hubspot",
			Tags: map[string]string{"plan": "pro"}}))
		for _, model := range models {
			_, err := sim.SeedRecords(nangosim.ModelRef{ConnectionRef: conn, Model: model}, nangosim.SeedOptions{Count: records})
			must(t, err)
		}
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)

	namespace := e.newNamespace(t, benchSecretKey, "")
	metricsAddr := freeAddr(t)
	m := e.startManager(t, "--nango-url", srv.URL, "--nango-rate-limit", "1000000000",
		"--max-concurrent-reconciles", "16",
		"--metrics-bind-address", metricsAddr, "--metrics-secure=false")
	m.waitReady(t)
	e.deleteSyncsOnCleanup(t, namespace)
	rss := sampleRSS(m.cmd.Process.Pid, 100*time.Millisecond)

	set := &syncv1alpha1.NangoSyncSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "crm"},
		Spec: syncv1alpha1.NangoSyncSetSpec{
			ProviderConfigKey: benchPCK,
			Selector:          &syncv1alpha1.ConnectionSelector{Tags: map[string]string{"plan": "pro"}},
			Models:            []syncv1alpha1.SyncSetModel{{Model: models[0]}, {Model: models[1]}},
			DiscoveryInterval: &metav1.Duration{Duration: interval},
			Template: syncv1alpha1.NangoSyncTemplate{Spec: syncv1alpha1.NangoSyncTemplateSpec{
				Sink:     sqliteSinkSpec(filepath.Join(t.TempDir(), "set.db"), fleetTable),
				Interval: &metav1.Duration{Duration: time.Hour},
			}},
		},
	}
	start := time.Now()
	must(t, e.k8s.Create(context.Background(), set))
	t.Cleanup(func() { _ = e.k8s.Delete(context.Background(), set) }) // before the NangoSyncs go
	poll := 100 * time.Millisecond
	if n > 1000 {
		poll = time.Second
	}
	e.waitAllReady(t, m, namespace, n, 10*time.Minute+time.Duration(n)*50*time.Millisecond, poll)
	allReady := time.Since(start)
	listingsToReady := sim.Stats().ConnectionsRequests
	// The set counts its Ready children after the last one turns Ready: that status write
	// belongs to getting Ready, not to the idle window measured next.
	eventually(t, time.Minute, poll, func() error {
		current := &syncv1alpha1.NangoSyncSet{}
		if err := e.k8s.Get(context.Background(), client.ObjectKeyFromObject(set), current); err != nil {
			return err
		}
		if current.Status.ReadySyncs != int32(n) || current.Status.Syncs != int32(n) {
			return fmt.Errorf("set status counts %d of %d NangoSyncs Ready, want %d of %d",
				current.Status.ReadySyncs, current.Status.Syncs, n, n)
		}
		return nil
	})

	// Whole discovery intervals once all are Ready: each discovery lists the connections,
	// finds the same ones and writes nothing.
	before, err := clientRequests(metricsAddr)
	must(t, err)
	listingsBefore := sim.Stats().ConnectionsRequests
	window := time.Duration(intervals) * interval
	deadline := time.Now().Add(window)
	windowStart := time.Now()
	eventually(t, window+time.Minute, 200*time.Millisecond, func() error {
		select {
		case <-m.exited:
			t.Fatalf("the manager exited; its output:\n%s", m.output)
		default:
		}
		if time.Now().Before(deadline) {
			return fmt.Errorf("the measured window is not over")
		}
		return nil
	})
	measured := time.Since(windowStart)
	after, err := clientRequests(metricsAddr)
	must(t, err)
	idleListings := sim.Stats().ConnectionsRequests - listingsBefore
	must(t, e.k8s.Get(context.Background(), client.ObjectKeyFromObject(set), set))
	maxRSS := rss.Max()
	w := writes(after) - writes(before)

	t.Logf("NangoSyncSet scale: %d connections × %d models = %d NangoSyncs (%d records each), one SQLite file and table",
		conns, len(models), n, records)
	t.Logf("| NangoSyncs | all Ready after | GET /connections until Ready | GET /connections while idle | API-server writes while idle | max RSS |")
	t.Logf("| %d | %s | %d | %d over %s | %.0f | %d MiB |", n, allReady.Round(time.Millisecond), listingsToReady,
		idleListings, measured.Round(time.Millisecond), w, maxRSS/mib)

	if set.Status.Syncs != int32(n) || set.Status.ReadySyncs != int32(n) || set.Status.Connections != int32(conns) {
		t.Errorf("set status: %d connections, %d NangoSyncs, %d Ready; want %d, %d, %d",
			set.Status.Connections, set.Status.Syncs, set.Status.ReadySyncs, conns, n, n)
	}
	if w != 0 {
		t.Errorf("%.0f API-server writes while nothing changed, want none", w)
	}
	if idleListings == 0 {
		t.Errorf("no discovery in the %s window", measured)
	}
	if maxRSS >= 400*mib {
		t.Errorf("max RSS %d MiB, want < 400 MiB", maxRSS/mib)
	}
}
