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
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
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
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/receiver"
	"github.com/nango-operator/nango-operator/internal/secretcache"
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

// metricsLeakCycles is how many NangoSyncs the envtest leak spec creates and deletes, one
// after the other, through the API server.
const metricsLeakCycles = 300

var _ = Describe("metrics of NangoSyncs that come and go", func() {
	It("leave no series behind after many create/delete cycles through the API server", func() {
		prefix := uniqueName("leak")
		// Half suspended, half failing (no Secret of their key): neither asks Nango, so a
		// cycle costs API server round trips only, and both paths of the reconciler run.
		d := newDataSet(prefix, "Contact")
		spec := newNangoSyncFor(d, sqliteSinkSpec("contacts")).Spec
		spec.Nango = &syncv1alpha1.NangoEndpoint{SecretRef: &syncv1alpha1.SecretKeyReference{Name: prefix, Key: "secretKey"}}
		leftIn := func(g Gomega) []string {
			var left []string
			for series := range scrape(g) {
				if strings.Contains(series, `name="`+prefix+"-") {
					left = append(left, series)
				}
			}
			return left
		}
		for i := range metricsLeakCycles {
			nsync := &syncv1alpha1.NangoSync{ObjectMeta: metav1.ObjectMeta{Namespace: syncNamespace,
				Name: fmt.Sprintf("%s-%d", prefix, i)}, Spec: *spec.DeepCopy()}
			nsync.Spec.Suspend = i%2 == 0
			Expect(k8sClient.Create(ctx, nsync)).To(Succeed())
			// Every other one is deleted as soon as its series exist, the others at once,
			// racing their first reconcile.
			if i%4 < 2 {
				Eventually(func(g Gomega) map[string]float64 { return seriesOf(scrape(g), nsync) }).
					ShouldNot(BeEmpty(), "cycle %d", i)
			}
			Expect(k8sClient.Delete(ctx, nsync)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			list := &syncv1alpha1.NangoSyncList{}
			g.Expect(k8sClient.List(ctx, list, client.InNamespace(syncNamespace))).To(Succeed())
			for _, item := range list.Items {
				g.Expect(item.Name).NotTo(HavePrefix(prefix+"-"), "a NangoSync of the cycles is still there")
			}
		}).WithTimeout(2 * time.Minute).Should(Succeed())
		Eventually(leftIn).WithTimeout(10*time.Second).Should(BeEmpty(), "series of deleted NangoSyncs")
		Consistently(leftIn).WithTimeout(2*time.Second).Should(BeEmpty(), "series came back after the NangoSyncs went")
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

// fleetSeriesBound is the most series each fleet-wide family can have (a histogram's
// buckets, +Inf, _sum and _count each count), whatever the number of NangoSyncs:
// docs/benchmarks.md, "Metrics at 10,000 NangoSyncs".
var fleetSeriesBound = map[string]int{
	// 4 actions × 4 sink kinds.
	"nango_operator_records_written_total": 4 * 4,
	// 4 sink kinds × 2 outcomes × (12 buckets + 3).
	"nango_operator_sink_write_duration_seconds": 4 * 2 * 15,
	// One per failure reason.
	"nango_operator_sync_failures_total": len(everyFailureReason),
	// 6 endpoints (4 the client sends to, GET and POST other) × the 12 answers Nango gives.
	"nango_operator_nango_requests_total": 6 * len(nangoStatusCodes),
	// 6 endpoints × (11 buckets + 3).
	"nango_operator_nango_request_duration_seconds": 6 * 14,
	"nango_operator_rate_limit_wait_seconds":        6 * 14,
	// 6 types (sync, auth, forward, async_action, other, unknown) × 11 results.
	"nango_operator_webhooks_total": 6 * 11,
	// 13 buckets + 3.
	"nango_operator_webhook_wake_seconds":        16,
	"nango_operator_webhook_wakes_dropped_total": 1,
}

// perSyncFamilies are the families with series per NangoSync.
var perSyncFamilies = []string{"nango_operator_sync_condition", "nango_operator_sync_last_success_timestamp_seconds",
	"nango_operator_sync_interval_seconds", "nango_operator_sync_lag_seconds",
	"nango_operator_sync_newest_record_timestamp_seconds"}

// seriesByFamily counts the samples of a text-format scrape by metric family: a
// histogram's _bucket, _sum and _count samples are its family's.
func seriesByFamily(t *testing.T, body []byte) map[string]int {
	t.Helper()
	histograms := map[string]bool{}
	counts := map[string]int{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if fields := strings.Fields(line); len(fields) == 4 && fields[1] == "TYPE" && fields[3] == "histogram" {
			histograms[fields[2]] = true
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base := strings.TrimSuffix(name, suffix); base != name && histograms[base] {
				name = base
			}
		}
		counts[name]++
	}
	return counts
}

// scrapeRegistry reads a registry's /metrics as Prometheus does: the text format, gzipped.
// It answers the uncompressed body, the bytes sent and the time the scrape took.
func scrapeRegistry(t *testing.T, url string) (body []byte, sent int, took time.Duration) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	start := time.Now()
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	compressed, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	took = time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("the scrape was not gzipped: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	reader, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		t.Fatal(err)
	}
	if body, err = io.ReadAll(reader); err != nil {
		t.Fatal(err)
	}
	return body, len(compressed), took
}

// TestMetricsCardinalityAt10000 measures the series of 10,000 NangoSyncs and their scrape
// (docs/benchmarks.md, "Metrics at 10,000 NangoSyncs"): every NangoSync as a healthy one
// with spec.syncName is (Ready, and NangoRunSucceeded from Nango's /sync/status), every
// fleet-wide family of the reconciler and the webhook receiver at its worst case.
func TestMetricsCardinalityAt10000(t *testing.T) {
	registry := prometheus.NewRegistry()
	m, err := newMetrics(registry)
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().Build()
	webhooks, err := receiver.New(receiver.Options{Client: c, Secrets: secretcache.New(c, c), Registerer: registry})
	if err != nil {
		t.Fatal(err)
	}
	// Webhooks refused before they are verified: the receiver's counter gets series too.
	for _, req := range []*http.Request{httptest.NewRequest(http.MethodGet, receiver.Path, nil),
		httptest.NewRequest(http.MethodPost, "/elsewhere", nil),
		httptest.NewRequest(http.MethodPost, receiver.Path, strings.NewReader(`{"type":"sync"}`))} {
		webhooks.ServeHTTP(httptest.NewRecorder(), req)
	}
	fillFleetSeries(t, m)

	const syncs, perSyncSeries = 10000, 6
	now := time.Now()
	for i := range syncs {
		// Times of their own, as a fleet's are: the scrape compresses as a real one does.
		created, newest := metav1.NewTime(now.Add(-time.Duration(i)*37*time.Second)), metav1.NewTime(now.Add(-time.Duration(i)*13*time.Second))
		nsync := &syncv1alpha1.NangoSync{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("team-%d", i%50),
			Name: fmt.Sprintf("acme-%05d-hubspot-contacts", i), CreationTimestamp: created}}
		nsync.Spec.SyncName = "contacts"
		nsync.Status.NewestRecordTime = &newest
		nsync.Status.Conditions = []metav1.Condition{
			{Type: syncv1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: syncv1alpha1.SyncedReason},
			{Type: syncv1alpha1.ReconcilingCondition, Status: metav1.ConditionFalse, Reason: syncv1alpha1.SyncedReason},
			{Type: syncv1alpha1.StalledCondition, Status: metav1.ConditionFalse, Reason: syncv1alpha1.SyncedReason},
			{Type: syncv1alpha1.NangoRunSucceededCondition, Status: metav1.ConditionTrue,
				Reason: syncv1alpha1.NoFailureReportedReason},
		}
		m.observe(nsync)
	}
	if n := testutil.CollectAndCount(m); n != perSyncSeries*syncs {
		t.Fatalf("%d per-NangoSync series for %d NangoSyncs, want %d each", n, syncs, perSyncSeries)
	}
	worst, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	worst.observe(fullyConditioned("team-0", "acme-hubspot-contacts"))
	if n := testutil.CollectAndCount(worst); n != 8 {
		t.Fatalf("%d series for a NangoSync with every condition, want 8", n)
	}

	server := httptest.NewServer(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	defer server.Close()
	var body []byte
	for run := range 3 {
		var sent int
		var took time.Duration
		body, sent, took = scrapeRegistry(t, server.URL)
		t.Logf("scrape %d: %d bytes of text, %d bytes gzipped, in %s", run+1, len(body), sent, took)
	}
	counts := seriesByFamily(t, body)
	perSync := 0
	for _, family := range perSyncFamilies {
		perSync += counts[family]
	}
	if perSync != perSyncSeries*syncs {
		t.Errorf("the scrape has %d per-NangoSync series, want %d", perSync, perSyncSeries*syncs)
	}
	fleet := 0
	for _, family := range slices.Sorted(maps.Keys(counts)) {
		n := counts[family]
		switch bound, ok := fleetSeriesBound[family]; {
		case slices.Contains(perSyncFamilies, family):
		case !ok:
			t.Errorf("%s has %d series and no bound", family, n)
		case n > bound:
			t.Errorf("%s has %d series, more than its bound %d", family, n, bound)
		default:
			fleet += n
			t.Logf("%s: %d series (bound %d)", family, n, bound)
		}
	}
	for family := range fleetSeriesBound {
		if counts[family] == 0 {
			t.Errorf("%s has no series: the worst case was not filled", family)
		}
	}
	bound := 0
	for _, n := range fleetSeriesBound {
		bound += n
	}
	t.Logf("%d NangoSyncs: %d per-NangoSync series (%d each), %d fleet-wide (bound %d), %d in all",
		syncs, perSync, perSyncSeries, fleet, bound, perSync+fleet)
}
