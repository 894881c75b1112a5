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
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// scrape reads the reconciler's metrics as Prometheus does, over HTTP in the text format,
// and answers every sample by its series: name{label="value",...} with labels sorted.
func scrape(g Gomega) map[string]float64 {
	server := httptest.NewServer(promhttp.HandlerFor(reconcilerMetrics, promhttp.HandlerOpts{}))
	defer server.Close()
	resp, err := http.Get(server.URL)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]float64{}
	for name, family := range families {
		for _, m := range family.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			series := name + "{" + strings.Join(labels, ",") + "}"
			switch family.GetType() {
			case dto.MetricType_COUNTER:
				out[series] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[series] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count{"+strings.Join(labels, ",")+"}"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// syncSeries answers the series of one NangoSync in a scrape.
func seriesOf(scraped map[string]float64, nsync *syncv1alpha1.NangoSync) map[string]float64 {
	out := map[string]float64{}
	for series, v := range scraped {
		if strings.Contains(series, fmt.Sprintf(`name=%q`, nsync.Name)) &&
			strings.Contains(series, fmt.Sprintf(`namespace=%q`, nsync.Namespace)) {
			out[series] = v
		}
	}
	return out
}

// perSync names a per-NangoSync series of nsync.
func perSync(metric string, nsync *syncv1alpha1.NangoSync, extra ...string) string {
	labels := append([]string{fmt.Sprintf("name=%q", nsync.Name), fmt.Sprintf("namespace=%q", nsync.Namespace)}, extra...)
	sort.Strings(labels)
	return metric + "{" + strings.Join(labels, ",") + "}"
}

var _ = Describe("metrics", func() {
	It("follow a NangoSync through a failure, a sync and a recovery, and go with it", func() {
		secretName := uniqueName("nango-key")
		d := newDataSet(uniqueName("metrics"), "Contact")
		Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
		d.upsert(ids("rec", 0, 10), 1)
		nsync := newNangoSyncFor(d, sqliteSinkSpec("contacts"))
		nsync.Spec.Nango = &syncv1alpha1.NangoEndpoint{SecretRef: &syncv1alpha1.SecretKeyReference{Name: secretName, Key: "secretKey"}}
		before := scrape(Default)

		By("a NangoSync that never succeeded: Ready=False with its reason, last success at its creation")
		create(nsync)
		expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.SecretNotFoundReason)
		created := unixSeconds(nsync.CreationTimestamp.Time)
		Eventually(func(g Gomega) {
			s := scrape(g)
			mine := seriesOf(s, nsync)
			g.Expect(mine).To(HaveKeyWithValue(perSync("nango_operator_sync_condition", nsync,
				`reason="SecretNotFound"`, `status="False"`, `type="Ready"`), 1.0))
			g.Expect(mine).To(HaveKeyWithValue(perSync("nango_operator_sync_last_success_timestamp_seconds", nsync), created))
			g.Expect(mine).To(HaveKeyWithValue(perSync("nango_operator_sync_interval_seconds", nsync), 3600.0))
			g.Expect(mine).To(HaveKey(perSync("nango_operator_sync_lag_seconds", nsync)))
			g.Expect(mine[perSync("nango_operator_sync_lag_seconds", nsync)]).To(BeNumerically(">=", 0))
			g.Expect(mine).To(HaveLen(4), "one condition, last success, interval, lag")
			failures := `nango_operator_sync_failures_total{reason="SecretNotFound"}`
			g.Expect(s[failures]).To(BeNumerically(">", before[failures]))
		}).Should(Succeed())

		By("the recovery: Ready=True, last success now, the records and requests counted")
		createSecret(secretName, "secretKey", simSecretKey())
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		Eventually(func(g Gomega) {
			s := scrape(g)
			mine := seriesOf(s, nsync)
			g.Expect(mine).To(HaveKeyWithValue(perSync("nango_operator_sync_condition", nsync,
				`reason="Synced"`, `status="True"`, `type="Ready"`), 1.0))
			g.Expect(mine).NotTo(HaveKey(perSync("nango_operator_sync_condition", nsync,
				`reason="SecretNotFound"`, `status="False"`, `type="Ready"`)), "the previous reason's series stayed")
			g.Expect(mine[perSync("nango_operator_sync_last_success_timestamp_seconds", nsync)]).
				To(BeNumerically("~", unixSeconds(time.Now()), 60))
			g.Expect(mine[perSync("nango_operator_sync_lag_seconds", nsync)]).To(BeNumerically("<", 60))
			added := `nango_operator_records_written_total{action="added",sink="sqlite"}`
			g.Expect(s[added] - before[added]).To(BeNumerically(">=", 10))
			writes := `nango_operator_sink_write_duration_seconds_count{outcome="success",sink="sqlite"}`
			g.Expect(s[writes]).To(BeNumerically(">", before[writes]))
			records := `nango_operator_nango_requests_total{code="200",endpoint="GET /records"}`
			g.Expect(s[records]).To(BeNumerically(">", before[records]))
			g.Expect(s[`nango_operator_nango_request_duration_seconds_count{endpoint="GET /records"}`]).To(BeNumerically(">", 0))
			g.Expect(mine[perSync("nango_operator_sync_newest_record_timestamp_seconds", nsync)]).
				To(BeNumerically("~", unixSeconds(time.Now()), 120), "the records were modified at their upsert")
		}).Should(Succeed())

		By("a failure after a success keeps the time of the last success")
		synced := scrape(Default)[perSync("nango_operator_sync_last_success_timestamp_seconds", nsync)]
		updateSecret(secretName, "secretKey", "3f1c8a52-0a4b-4c61-9d7e-5b2a7c9e1f00")
		annotate(nsync, syncv1alpha1.RequestedAtAnnotation)
		expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.UnauthorizedReason)
		Eventually(func(g Gomega) {
			s := scrape(g)
			mine := seriesOf(s, nsync)
			g.Expect(mine).To(HaveKeyWithValue(perSync("nango_operator_sync_condition", nsync,
				`reason="Unauthorized"`, `status="False"`, `type="Ready"`), 1.0))
			g.Expect(mine).To(HaveKeyWithValue(perSync("nango_operator_sync_last_success_timestamp_seconds", nsync), synced))
			g.Expect(s[`nango_operator_nango_requests_total{code="401",endpoint="GET /records"}`]).To(BeNumerically(">", 0))
		}).Should(Succeed())

		By("a 429 from Nango: the requests after it wait, and the waits are counted")
		// Another NangoSync, since this one's key is refused before any 429.
		waits := `nango_operator_rate_limit_wait_seconds_count{endpoint="GET /records"}`
		waited := scrape(Default)[waits]
		sim.SetFaults(nangosim.Faults{RateLimitRate: 1, RetryAfter: nangosim.Duration(time.Second)})
		DeferCleanup(sim.SetFaults, noFaults())
		limited := newDataSet(uniqueName("limited"), "Contact")
		Expect(sim.CreateConnection(limited.ref.ConnectionRef, "hubspot")).To(Succeed())
		limited.upsert(ids("rec", 0, 3), 1)
		waiting := newNangoSyncFor(limited, sqliteSinkSpec("contacts"))
		create(waiting)
		Eventually(func(g Gomega) {
			g.Expect(scrape(g)[waits]).To(BeNumerically(">", waited))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		sim.SetFaults(noFaults())
		expectReason(waiting, metav1.ConditionTrue, syncv1alpha1.SyncedReason)

		By("no series once the NangoSync is gone")
		Expect(k8sClient.Delete(ctx, nsync)).To(Succeed())
		Eventually(func(g Gomega) map[string]float64 {
			return seriesOf(scrape(g), nsync)
		}).Should(BeEmpty())
		Expect(client.IgnoreNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync))).To(Succeed())
	})
})

// TestMetricsForgetEveryNangoSync creates and deletes 1,000 NangoSyncs' series: none is left.
func TestMetricsForgetEveryNangoSync(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		nsync := &syncv1alpha1.NangoSync{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("sync-%d", i),
			CreationTimestamp: metav1.Now()}}
		nsync.Status.Conditions = []metav1.Condition{{Type: syncv1alpha1.ReadyCondition, Status: metav1.ConditionFalse,
			Reason: syncv1alpha1.SecretNotFoundReason}}
		m.observe(nsync)
		m.synced(client.ObjectKeyFromObject(nsync))
		if n := testutil.CollectAndCount(m); n != 4 {
			t.Fatalf("cycle %d: %d series for one NangoSync, want 4", i, n)
		}
		m.forget(client.ObjectKeyFromObject(nsync))
	}
	if n := testutil.CollectAndCount(m); n != 0 {
		t.Fatalf("%d series left after 1,000 NangoSyncs came and went", n)
	}
}

// TestMetricsLag checks the lag is now minus the last success, also for a NangoSync that
// never succeeded (its creation, or its status' last change after a restart).
func TestMetricsLag(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	nsync := &syncv1alpha1.NangoSync{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a",
		CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))}}
	lastChange := metav1.NewTime(now.Add(-10 * time.Minute))
	nsync.Status.LastChangeTime = &lastChange
	m.observe(nsync)
	want := `
# HELP nango_operator_sync_lag_seconds Seconds since the sink last held every record Nango had for the NangoSync (now minus nango_operator_sync_last_success_timestamp_seconds): a bound on how stale the copy is. Alert when it exceeds a few intervals.
# TYPE nango_operator_sync_lag_seconds gauge
nango_operator_sync_lag_seconds{name="a",namespace="ns"} 600
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "nango_operator_sync_lag_seconds"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	m.synced(client.ObjectKeyFromObject(nsync))
	now = now.Add(30 * time.Second)
	if err := testutil.CollectAndCompare(m, strings.NewReader(strings.Replace(want, "} 600", "} 30", 1)),
		"nango_operator_sync_lag_seconds"); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsCardinalityAt10000 measures the per-NangoSync series of 10,000 NangoSyncs and
// their scrape (docs/benchmarks.md, "Metrics at 10,000 NangoSyncs").
func TestMetricsCardinalityAt10000(t *testing.T) {
	registry := prometheus.NewRegistry()
	m, err := newMetrics(registry)
	if err != nil {
		t.Fatal(err)
	}
	const syncs = 10000
	now := metav1.Now()
	for i := range syncs {
		nsync := &syncv1alpha1.NangoSync{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("team-%d", i%50),
			Name: fmt.Sprintf("acme-%05d-hubspot-contacts", i), CreationTimestamp: now}}
		nsync.Status.NewestRecordTime = &now
		nsync.Status.Conditions = []metav1.Condition{{Type: syncv1alpha1.ReadyCondition, Status: metav1.ConditionTrue,
			Reason: syncv1alpha1.SyncedReason}}
		m.observe(nsync)
	}
	if n := testutil.CollectAndCount(m); n != 5*syncs {
		t.Fatalf("%d per-NangoSync series for %d NangoSyncs, want 5 each", n, syncs)
	}
	server := httptest.NewServer(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	defer server.Close()
	start := time.Now()
	resp, err := http.Get(server.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d NangoSyncs: %d series, scrape of %d bytes in %s", syncs, 5*syncs, len(body), time.Since(start))
}
