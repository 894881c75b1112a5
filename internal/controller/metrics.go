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
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
)

// endpointLabel names the Nango endpoint a request or a rate-limit wait was for.
const endpointLabel = "endpoint"

// labelNamespace and labelName identify a NangoSync in its series.
const labelNamespace, labelName = "namespace", "name"

// The per-NangoSync series. They are computed at scrape time from what the reconciler
// last saw of each NangoSync, so that a NangoSync that is gone has no series at all (its
// entry is dropped, nothing else to remember), and the lag is as old as the scrape.
var (
	conditionDesc = prometheus.NewDesc("nango_operator_sync_condition",
		"1 for the current status and reason of a NangoSync's condition (type Ready, NangoRunSucceeded, "+
			"NangoConnectionAuthorized, RetentionRisk), "+
			"one series per NangoSync and type, as Flux's gotk_reconcile_condition. "+
			`Alert on type="Ready",status="False" with a reason other than Suspended.`,
		[]string{labelNamespace, labelName, "type", "status", "reason"}, nil)
	lastSuccessDesc = prometheus.NewDesc("nango_operator_sync_last_success_timestamp_seconds",
		"When the NangoSync last read to the end of Nango's records and stored them, as Unix time; "+
			"its creation (or its status' last change) while this manager has seen no complete sync.",
		[]string{labelNamespace, labelName}, nil)
	intervalDesc = prometheus.NewDesc("nango_operator_sync_interval_seconds",
		"The NangoSync's spec.interval.", []string{labelNamespace, labelName}, nil)
	lagDesc = prometheus.NewDesc("nango_operator_sync_lag_seconds",
		"Seconds since the sink last held every record Nango had for the NangoSync (now minus "+
			"nango_operator_sync_last_success_timestamp_seconds): a bound on how stale the copy is. "+
			"Alert when it exceeds a few intervals.",
		[]string{labelNamespace, labelName}, nil)
	newestRecordDesc = prometheus.NewDesc("nango_operator_sync_newest_record_timestamp_seconds",
		"Nango's last_modified_at of the newest record the NangoSync wrote to its sink, as Unix time "+
			"(status.newestRecordTime): how fresh the copy's data is. No series before the first record.",
		[]string{labelNamespace, labelName}, nil)
)

// exportedConditions are the condition types with a series: Ready carries every failure
// reason, the others say what Ready cannot. Reconciling and Stalled repeat Ready's reason.
var exportedConditions = []string{
	syncv1alpha1.ReadyCondition, syncv1alpha1.NangoRunSucceededCondition, syncv1alpha1.NangoConnectionAuthorizedCondition,
	syncv1alpha1.RetentionRiskCondition,
}

// syncSeries is what the per-NangoSync series of one NangoSync show.
type syncSeries struct {
	conditions  [][3]string // type, status, reason
	lastSuccess time.Time
	interval    time.Duration
	// newestRecord is zero before the first record.
	newestRecord time.Time
}

// metrics are the reconciler's Prometheus metrics, beside controller-runtime's own.
type metrics struct {
	mu    sync.Mutex
	syncs map[types.NamespacedName]*syncSeries
	now   func() time.Time

	recordsWritten *prometheus.CounterVec
	sinkWrites     *prometheus.HistogramVec
	syncFailures   *prometheus.CounterVec
	nangoRequests  *prometheus.CounterVec
	nangoDurations *prometheus.HistogramVec
	rateLimitWaits *prometheus.HistogramVec
}

func newMetrics(registerer prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		syncs: map[types.NamespacedName]*syncSeries{},
		now:   time.Now,
		recordsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nango_operator_records_written_total",
			Help: "Records written to sinks, by action (added, updated, deleted, quarantined) and sink kind.",
		}, []string{"action", "sink"}),
		sinkWrites: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nango_operator_sink_write_duration_seconds",
			Help: "How long one batch write took (records and checkpoint: one transaction for postgres, sqlite " +
				"and kafka; the delivery, then the checkpoint, for http), by sink kind and outcome (success, error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"sink", "outcome"}),
		syncFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nango_operator_sync_failures_total",
			Help: "Reconciles that ended in a failure, by condition reason: RateLimited counts the syncs " +
				"that gave up waiting for the Nango account's rate limit, SinkUnavailable the unreachable sinks.",
		}, []string{"reason"}),
		nangoRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nango_operator_nango_requests_total",
			Help: `Requests sent to Nango, by endpoint ("GET /records", ...) and HTTP status code ` +
				`("error" when no answer came). code="429" counts rate-limited answers.`,
		}, []string{endpointLabel, "code"}),
		nangoDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nango_operator_nango_request_duration_seconds",
			Help:    "How long Nango took to answer a request (headers), by endpoint.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{endpointLabel}),
		rateLimitWaits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nango_operator_rate_limit_wait_seconds",
			Help: "How long a request to Nango waited for its account's rate limit (the budget of the " +
				"window, or the pause after a 429) before it was sent, by endpoint; only requests that " +
				"waited are counted. _count is the number of waits, _sum the seconds spent waiting.",
			Buckets: []float64{.01, .1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{endpointLabel}),
	}
	if registerer == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m, m.recordsWritten, m.sinkWrites, m.syncFailures,
		m.nangoRequests, m.nangoDurations, m.rateLimitWaits} {
		if err := registerer.Register(c); err != nil {
			return nil, fmt.Errorf("register NangoSync metrics: %w", err)
		}
	}
	return m, nil
}

// Describe implements prometheus.Collector for the per-NangoSync series.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{conditionDesc, lastSuccessDesc, intervalDesc, lagDesc, newestRecordDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector for the per-NangoSync series.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for key, s := range m.syncs {
		for _, c := range s.conditions {
			ch <- prometheus.MustNewConstMetric(conditionDesc, prometheus.GaugeValue, 1, key.Namespace, key.Name, c[0], c[1], c[2])
		}
		ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue, unixSeconds(s.lastSuccess),
			key.Namespace, key.Name)
		ch <- prometheus.MustNewConstMetric(intervalDesc, prometheus.GaugeValue, s.interval.Seconds(), key.Namespace, key.Name)
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, max(0, now.Sub(s.lastSuccess).Seconds()),
			key.Namespace, key.Name)
		if !s.newestRecord.IsZero() {
			ch <- prometheus.MustNewConstMetric(newestRecordDesc, prometheus.GaugeValue, unixSeconds(s.newestRecord),
				key.Namespace, key.Name)
		}
	}
}

// unixSeconds is t as Prometheus timestamps go: seconds since the Unix epoch.
func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / float64(time.Second) }

// observe records the state a reconcile left a NangoSync in. A NangoSync seen for the
// first time gets the time of its last change, else its creation, as its last success:
// staleness alerts then work for a NangoSync that never succeeded, or keeps failing after
// the manager restarted.
func (m *metrics) observe(nsync *syncv1alpha1.NangoSync) {
	key := types.NamespacedName{Namespace: nsync.Namespace, Name: nsync.Name}
	var conditions [][3]string
	for _, t := range exportedConditions {
		if c := apimeta.FindStatusCondition(nsync.Status.Conditions, t); c != nil {
			conditions = append(conditions, [3]string{t, string(c.Status), c.Reason})
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.syncs[key]
	if s == nil {
		s = &syncSeries{lastSuccess: nsync.CreationTimestamp.Time}
		if t := nsync.Status.LastChangeTime; t != nil && t.After(s.lastSuccess) {
			s.lastSuccess = t.Time
		}
		m.syncs[key] = s
	}
	s.conditions = conditions
	s.interval = interval(nsync)
	s.newestRecord = time.Time{}
	if t := nsync.Status.NewestRecordTime; t != nil {
		s.newestRecord = t.Time
	}
}

// synced records a complete sync of key now.
func (m *metrics) synced(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.syncs[key]; s != nil {
		s.lastSuccess = m.now()
	} else {
		m.syncs[key] = &syncSeries{lastSuccess: m.now()}
	}
}

// forget drops the series of a NangoSync that is gone.
func (m *metrics) forget(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.syncs, key)
}

// failed counts a reconcile that ended in a failure of reason.
func (m *metrics) failed(reason string) {
	m.syncFailures.WithLabelValues(reason).Inc()
}

// wrote counts one batch write to a sink of kind, and how long it took.
func (m *metrics) wrote(kind string, written sink.WriteResult, took time.Duration, err error) {
	outcome := "success"
	if err != nil {
		outcome = "error"
	}
	m.sinkWrites.WithLabelValues(kind, outcome).Observe(took.Seconds())
	for action, n := range map[string]int64{"added": written.Added, "updated": written.Updated,
		"deleted": written.Deleted, "quarantined": written.Quarantined} {
		if n > 0 {
			m.recordsWritten.WithLabelValues(action, kind).Add(float64(n))
		}
	}
}

// sinkKind names the kind of a sink spec, a bounded label value.
func sinkKind(spec syncv1alpha1.SinkSpec) string {
	switch {
	case spec.Postgres != nil:
		return "postgres"
	case spec.SQLite != nil:
		return "sqlite"
	case spec.HTTP != nil:
		return "http"
	case spec.Kafka != nil:
		return "kafka"
	}
	return "unknown"
}

// nangoEndpoints are the routes of Nango's API the operator calls, matched at the end of
// the request's path (a self-hosted Nango may sit below a prefix). Anything else is
// "other", so the endpoint label stays bounded whatever a request's path holds.
var nangoEndpoints = []string{"/records", "/sync/status", "/sync/trigger", "/connections", "/connection"}

// nangoEndpoint is the endpoint label of a request of method to path.
func nangoEndpoint(method, path string) string {
	for _, e := range nangoEndpoints {
		if strings.HasSuffix(path, e) {
			return method + " " + e
		}
	}
	return method + " other"
}

// rateLimitWaited counts a request that waited for its account's rate limit.
func (m *metrics) rateLimitWaited(method, path string, waited time.Duration) {
	m.rateLimitWaits.WithLabelValues(nangoEndpoint(method, path)).Observe(waited.Seconds())
}

// instrument wraps a transport to Nango so that every request is counted by endpoint and
// status code and timed, without the nango package knowing about metrics.
func (m *metrics) instrument(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		endpoint := nangoEndpoint(req.Method, req.URL.Path)
		start := time.Now()
		resp, err := next.RoundTrip(req)
		m.nangoDurations.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
		code := "error"
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		m.nangoRequests.WithLabelValues(endpoint, code).Inc()
		return resp, err
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
