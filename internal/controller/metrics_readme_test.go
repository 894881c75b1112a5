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
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/receiver"
	"github.com/nango-operator/nango-operator/internal/secretcache"
	"github.com/nango-operator/nango-operator/internal/sink"
)

// Every value a bounded label of the fleet-wide metrics can take, as the code makes them:
// fillFleetSeries writes one series for each, the worst case the README and
// docs/benchmarks.md count.
var (
	// everySinkSpec has one spec of each sink kind.
	everySinkSpec = []syncv1alpha1.SinkSpec{{Postgres: &syncv1alpha1.PostgresSink{}}, {SQLite: &syncv1alpha1.SQLiteSink{}},
		{HTTP: &syncv1alpha1.HTTPSink{}}, {Kafka: &syncv1alpha1.KafkaSink{}}}
	// everyFailureReason are the reasons classify and the reconciler's checks give a failure.
	everyFailureReason = []string{syncv1alpha1.SecretNotFoundReason, syncv1alpha1.UnauthorizedReason,
		syncv1alpha1.UnknownConnectionReason, syncv1alpha1.InvalidCursorReason, syncv1alpha1.RateLimitedReason,
		syncv1alpha1.NangoUnavailableReason, syncv1alpha1.SinkUnavailableReason, syncv1alpha1.SinkRefusedReason,
		syncv1alpha1.NangoURLNotAllowedReason, syncv1alpha1.SecretNotOptedInReason,
		syncv1alpha1.SinkPathNotAllowedReason, syncv1alpha1.ConflictReason, syncv1alpha1.InvalidRequestReason,
		syncv1alpha1.ReconcileFailedReason}
	// everyNangoRequest is each request the nango client sends (method, path below the
	// base URL), and one to a path it does not send to.
	everyNangoRequest = [][2]string{{http.MethodGet, "/records"}, {http.MethodGet, "/sync/status"},
		{http.MethodPost, "/sync/trigger"}, {http.MethodGet, "/connections"}, {http.MethodGet, "/somewhere/else"}}
	// nangoStatusCodes are the answers Nango documents, 0 for no answer: the code label is
	// bounded by what Nango answers, not by the code.
	nangoStatusCodes = []int{200, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504, 0}
)

// fillFleetSeries writes every series of the fleet-wide families of m, through the
// methods the reconciler calls.
func fillFleetSeries(t *testing.T, m *metrics) {
	t.Helper()
	for _, spec := range everySinkSpec {
		kind := sinkKind(spec)
		m.wrote(kind, sink.WriteResult{Added: 1, Updated: 1, Deleted: 1, Quarantined: 1}, time.Millisecond, nil)
		m.wrote(kind, sink.WriteResult{}, time.Second, errors.New("the sink refused"))
	}
	for _, reason := range everyFailureReason {
		m.failed(reason)
	}
	for _, code := range nangoStatusCodes {
		transport := m.instrument(roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if code == 0 {
				return nil, errors.New("connection refused")
			}
			return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
		}))
		for _, r := range everyNangoRequest {
			req, err := http.NewRequest(r[0], "https://nango.example/base"+r[1], nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := transport.RoundTrip(req)
			if err == nil {
				_ = resp.Body.Close()
			}
		}
	}
	for _, r := range everyNangoRequest {
		m.rateLimitWaited(r[0], "/base"+r[1], time.Second)
	}
}

// fullyConditioned is a NangoSync with every condition that has a series.
func fullyConditioned(namespace, name string) *syncv1alpha1.NangoSync {
	now := metav1.Now()
	nsync := &syncv1alpha1.NangoSync{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, CreationTimestamp: now}}
	nsync.Status.NewestRecordTime = &now
	for _, t := range exportedConditions {
		nsync.Status.Conditions = append(nsync.Status.Conditions,
			metav1.Condition{Type: t, Status: metav1.ConditionFalse, Reason: "Because"})
	}
	return nsync
}

// readmeMetricRows answers the rows of the README's metrics table by metric name: the
// labels cell and the whole row.
func readmeMetricRows(t *testing.T) map[string][2]string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][2]string{}
	for line := range strings.SplitSeq(string(readme), "\n") {
		if !strings.HasPrefix(line, "| `nango_operator_") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("README metrics row without labels: %s", line)
		}
		name := strings.TrimPrefix(strings.TrimSpace(cells[1]), "`")
		name = name[:strings.Index(name, "`")]
		rows[name] = [2]string{strings.TrimSpace(cells[2]), line}
	}
	return rows
}

// labelNames are the label names of a README labels cell: "a (`x`, `y`), b" is a and b.
func labelNames(cell string) []string {
	var names []string
	depth, word := 0, strings.Builder{}
	flush := func() {
		if w := strings.TrimSpace(word.String()); w != "" {
			names = append(names, w)
		}
		word.Reset()
	}
	for _, r := range cell {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case depth > 0:
		case r == ',':
			flush()
		default:
			word.WriteRune(r)
		}
	}
	flush()
	slices.Sort(names)
	return names
}

// documentedValueLabels are the labels whose every value the README's table names.
var documentedValueLabels = []string{"action", "sink", "outcome", "endpoint", "type"}

// TestREADMEMetricsTable checks the README's metrics table against the metrics the
// manager registers: a row for every family, with its labels, naming every value the code
// gives the labels with a small fixed set of values.
func TestREADMEMetricsTable(t *testing.T) {
	registry := prometheus.NewRegistry()
	m, err := newMetrics(registry)
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().Build()
	if _, err := receiver.New(receiver.Options{Client: c, Secrets: secretcache.New(c, c), Registerer: registry}); err != nil {
		t.Fatal(err)
	}
	fillFleetSeries(t, m)
	m.observe(fullyConditioned("ns", "a"))
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	rows := readmeMetricRows(t)
	for name := range exportedMetrics(t) {
		if _, ok := rows[name]; !ok {
			t.Errorf("README's metrics table has no row for %s", name)
		}
	}
	for _, family := range families {
		row, ok := rows[family.GetName()]
		if !ok {
			t.Errorf("README's metrics table has no row for %s", family.GetName())
			continue
		}
		values := map[string]map[string]bool{}
		for _, metric := range family.GetMetric() {
			for _, l := range metric.GetLabel() {
				if values[l.GetName()] == nil {
					values[l.GetName()] = map[string]bool{}
				}
				values[l.GetName()][l.GetValue()] = true
			}
		}
		names := make([]string, 0, len(values))
		for name := range values {
			names = append(names, name)
		}
		slices.Sort(names)
		if documented := labelNames(row[0]); !slices.Equal(documented, names) {
			t.Errorf("README documents the labels %q of %s, the code exports %q", documented, family.GetName(), names)
		}
		// A labels cell may name another metric whose values it shares: "endpoint (as
		// `nango_operator_nango_requests_total`)".
		documented := row[0]
		for _, other := range operatorMetric.FindAllString(row[0], -1) {
			documented += rows[other][0]
		}
		for _, label := range documentedValueLabels {
			for value := range values[label] {
				if !strings.Contains(documented, "`"+value+"`") {
					t.Errorf("README's row of %s does not name the %s value %s: %s", family.GetName(), label,
						strconv.Quote(value), row[1])
				}
			}
		}
	}
}
