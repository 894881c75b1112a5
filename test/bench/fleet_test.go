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

// Helpers shared by the fleet benchmarks (TestScale, TestWakeLatency, TestSharedRateLimit):
// many NangoSyncs in one namespace, the manager's client metrics, an RSS sampler and a
// reader of the SQLite sink apart from the manager.

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	_ "modernc.org/sqlite" // the sink's driver, to read the sink apart from the manager
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// createSyncs creates the NangoSyncs with a few clients in parallel.
func (e *env) createSyncs(t *testing.T, syncs []*syncv1alpha1.NangoSync, workers int) {
	t.Helper()
	work := make(chan *syncv1alpha1.NangoSync)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ns := range work {
				if err := e.k8s.Create(context.Background(), ns); err != nil {
					errs <- fmt.Errorf("create %s: %w", ns.Name, err)
					for range work {
					}
					return
				}
			}
		})
	}
	for _, ns := range syncs {
		work <- ns
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// deleteSyncsOnCleanup deletes every NangoSync of namespace when the test ends and waits
// until they are gone, while the manager still runs (register it after startManager:
// cleanups run last first), so that their finalizers go and later tests' managers do not
// reconcile them against an emulator that is gone.
func (e *env) deleteSyncsOnCleanup(t *testing.T, namespace string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		// A delete-collection of 10,000 objects can outlast the API server's request
		// timeout part way through: ask again while some are not being deleted yet.
		eventually(t, 5*time.Minute, 200*time.Millisecond, func() error {
			var list metav1.PartialObjectMetadataList
			list.SetGroupVersionKind(syncv1alpha1.GroupVersion.WithKind("NangoSyncList"))
			if err := e.k8s.List(ctx, &list, client.InNamespace(namespace)); err != nil {
				return err
			}
			if len(list.Items) == 0 {
				return nil
			}
			if slices.ContainsFunc(list.Items, func(m metav1.PartialObjectMetadata) bool { return m.DeletionTimestamp == nil }) {
				if err := e.k8s.DeleteAllOf(ctx, &syncv1alpha1.NangoSync{}, client.InNamespace(namespace)); err != nil {
					return fmt.Errorf("delete the NangoSyncs of %s: %w", namespace, err)
				}
			}
			return fmt.Errorf("%d NangoSyncs of %s are not gone", len(list.Items), namespace)
		})
	})
}

// fleetState is a census of the NangoSyncs of a namespace.
type fleetState struct {
	total, ready int
	rateLimited  int // NangoSyncs with a condition of reason RateLimited
	records      int64
	notReady     string // one NangoSync that is not Ready, with its condition
}

func (e *env) census(namespace string) (fleetState, error) {
	var list syncv1alpha1.NangoSyncList
	if err := e.k8s.List(context.Background(), &list, client.InNamespace(namespace)); err != nil {
		return fleetState{}, err
	}
	var s fleetState
	for i := range list.Items {
		ns := &list.Items[i]
		s.total++
		s.records += ns.Status.Records.Total
		ready := apimeta.FindStatusCondition(ns.Status.Conditions, syncv1alpha1.ReadyCondition)
		if ready != nil && ready.Status == metav1.ConditionTrue {
			s.ready++
		} else if s.notReady == "" {
			s.notReady = ns.Name
			if ready != nil {
				s.notReady += fmt.Sprintf(" (Ready=%s %s: %s)", ready.Status, ready.Reason, ready.Message)
			}
		}
		for _, c := range ns.Status.Conditions {
			if c.Reason == syncv1alpha1.RateLimitedReason {
				s.rateLimited++
				break
			}
		}
	}
	return s, nil
}

// waitAllReady polls until n NangoSyncs of namespace are Ready, failing with the manager's
// output when it exits.
func (e *env) waitAllReady(t *testing.T, m *manager, namespace string, n int, timeout, poll time.Duration) fleetState {
	t.Helper()
	var last fleetState
	eventually(t, timeout, poll, func() error {
		select {
		case <-m.exited:
			return fmt.Errorf("the manager exited; its output:\n%s", m.output)
		default:
		}
		s, err := e.census(namespace)
		if err != nil {
			return err
		}
		last = s
		if s.total != n || s.ready != n {
			return fmt.Errorf("%d of %d NangoSyncs Ready (%d exist), e.g. %s", s.ready, n, s.total, s.notReady)
		}
		return nil
	})
	return last
}

// clientRequests reads the manager's API-server requests by method from
// rest_client_requests_total on its plain-HTTP metrics endpoint.
func clientRequests(metricsAddr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics answered %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "rest_client_requests_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		_, method, ok := strings.Cut(labels, `method="`)
		if !ok {
			continue
		}
		method, _, _ = strings.Cut(method, `"`)
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[method] += v
	}
	return out, sc.Err()
}

// writes is the number of write requests (POST, PUT, PATCH, DELETE) in a clientRequests answer.
func writes(requests map[string]float64) float64 {
	return requests["POST"] + requests["PUT"] + requests["PATCH"] + requests["DELETE"]
}

// rssSampler reads the manager's RSS every interval until stopped and keeps the maximum.
type rssSampler struct {
	mu   sync.Mutex
	max  int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pid int, interval time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			if rss, err := rssBytes(pid); err == nil {
				s.mu.Lock()
				s.max = max(s.max, rss)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-ticker.C:
			}
		}
	}()
	return s
}

// Max stops the sampler and answers the largest RSS seen.
func (s *rssSampler) Max() int64 {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// openSinkReader opens the SQLite sink read-only, apart from the manager.
func openSinkReader(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=query_only(1)")
	must(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// fleetTable is the records table of the fleet benchmarks' SQLite sink.
const fleetTable = "records"

// rowsByConnection counts the rows of the sink's fleetTable per connection.
func rowsByConnection(db *sql.DB) (map[string]int, error) {
	rows, err := db.Query(fmt.Sprintf(`SELECT connection_id, count(*) FROM %q GROUP BY connection_id`, fleetTable))
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	out := map[string]int{}
	for rows.Next() {
		var conn string
		var n int
		if err := rows.Scan(&conn, &n); err != nil {
			return nil, err
		}
		out[conn] = n
	}
	return out, rows.Err()
}

// fleetSync is a NangoSync of the fleet benchmarks: interval, page size and SQLite sink given.
func fleetSync(namespace, name, url, connection, model string, pageSize int32, interval time.Duration,
	snk syncv1alpha1.SinkSpec) *syncv1alpha1.NangoSync {
	return &syncv1alpha1.NangoSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: syncv1alpha1.NangoSyncSpec{
			ConnectionID:      connection,
			ProviderConfigKey: benchPCK,
			Model:             model,
			Nango:             &syncv1alpha1.NangoEndpoint{URL: url},
			Sink:              snk,
			PageSize:          pageSize,
			Interval:          &metav1.Duration{Duration: interval},
		},
	}
}
