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

package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// scrapeMetrics reads the manager's whole metrics endpoint: every sample by its series, as
// the text format writes it (labels sorted by name), with its value as text.
func scrapeMetrics(g Gomega, addr string) map[string]string {
	resp, err := http.Get("http://" + addr + "/metrics")
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	samples := map[string]string{}
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		at := strings.LastIndexByte(line, ' ')
		samples[line[:at]] = line[at+1:]
	}
	g.Expect(scanner.Err()).NotTo(HaveOccurred())
	return samples
}

// samplesOf answers the samples of one NangoSync's series in a scrape.
func samplesOf(samples map[string]string, nsync *syncv1alpha1.NangoSync) map[string]string {
	mine := map[string]string{}
	for series, value := range samples {
		if strings.Contains(series, fmt.Sprintf("name=%q,namespace=%q", nsync.Name, nsync.Namespace)) {
			mine[series] = value
		}
	}
	return mine
}

// readySeries names the Ready condition's series of a NangoSync with status and reason.
func readySeries(nsync *syncv1alpha1.NangoSync, status, reason string) string {
	return fmt.Sprintf(`nango_operator_sync_condition{name=%q,namespace=%q,reason=%q,status=%q,type="Ready"}`,
		nsync.Name, nsync.Namespace, reason, status)
}

// requestSync asks for a sync now, as a person would with kubectl annotate.
func requestSync(ctx SpecContext, nsync *syncv1alpha1.NangoSync) {
	GinkgoHelper()
	patch := client.MergeFrom(nsync.DeepCopy())
	if nsync.Annotations == nil {
		nsync.Annotations = map[string]string{}
	}
	nsync.Annotations[syncv1alpha1.RequestedAtAnnotation] = time.Now().UTC().Format(time.RFC3339Nano)
	Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
}

var _ = Describe("the manager's /metrics", func() {
	It("shows a NangoSync's Ready condition through a sync, a failure and a recovery, and nothing of it once deleted", func(ctx SpecContext) {
		e := startNangoEmulator()
		namespace := newWebhookNamespace(ctx, e)
		metricsAddr := freeAddr()
		m := startManager(append(receiverArgs(e, freeAddr(), namespace),
			"--metrics-bind-address", metricsAddr, "--metrics-secure=false")...)
		d := newContactsSync(ctx, e, namespace, "metrics")
		d.upsert("c1")
		sink := d.probe()
		const within = 60 * time.Second

		By("a sync: Ready=True Synced, one condition series, the records counted")
		d.waitReady(ctx)
		Eventually(func(g Gomega) {
			s := scrapeMetrics(g, metricsAddr)
			mine := samplesOf(s, d.nsync)
			g.Expect(mine).To(HaveKeyWithValue(readySeries(d.nsync, "True", syncv1alpha1.SyncedReason), "1"))
			g.Expect(mine).To(HaveKeyWithValue(fmt.Sprintf(`nango_operator_sync_interval_seconds{name=%q,namespace=%q}`,
				d.nsync.Name, namespace), "3600"))
			g.Expect(mine).To(HaveKey(fmt.Sprintf(`nango_operator_sync_lag_seconds{name=%q,namespace=%q}`, d.nsync.Name, namespace)))
			g.Expect(s).To(HaveKey(`nango_operator_records_written_total{action="added",sink="sqlite"}`))
			g.Expect(s).To(HaveKey(`nango_operator_nango_requests_total{code="200",endpoint="GET /records"}`))
		}).WithContext(ctx).WithTimeout(within).Should(Succeed(), "the manager's output:\n%s", m.output)

		By("a failure: Nango answers 500, Ready=False NangoUnavailable, and the Synced series goes")
		e.sim.SetFaults(nangosim.Faults{ServerErrorRate: 1})
		DeferCleanup(e.sim.SetFaults, nangosim.Faults{})
		requestSync(ctx, d.nsync)
		Eventually(func(g Gomega) {
			s := scrapeMetrics(g, metricsAddr)
			mine := samplesOf(s, d.nsync)
			g.Expect(mine).To(HaveKeyWithValue(readySeries(d.nsync, "False", syncv1alpha1.NangoUnavailableReason), "1"))
			g.Expect(mine).NotTo(HaveKey(readySeries(d.nsync, "True", syncv1alpha1.SyncedReason)))
			g.Expect(s).To(HaveKey(`nango_operator_nango_requests_total{code="500",endpoint="GET /records"}`))
			g.Expect(s).To(HaveKey(`nango_operator_sync_failures_total{reason="NangoUnavailable"}`))
		}).WithContext(ctx).WithTimeout(within).Should(Succeed(), "the manager's output:\n%s", m.output)

		By("a recovery: Nango answers again, Ready=True Synced, and the failure's series goes")
		e.sim.SetFaults(nangosim.Faults{})
		d.upsert("c2")
		requestSync(ctx, d.nsync)
		Eventually(func(g Gomega) {
			mine := samplesOf(scrapeMetrics(g, metricsAddr), d.nsync)
			g.Expect(mine).To(HaveKeyWithValue(readySeries(d.nsync, "True", syncv1alpha1.SyncedReason), "1"))
			g.Expect(mine).NotTo(HaveKey(readySeries(d.nsync, "False", syncv1alpha1.NangoUnavailableReason)))
		}).WithContext(ctx).WithTimeout(within).Should(Succeed(), "the manager's output:\n%s", m.output)
		Eventually(func() (bool, error) { return sink.has("metrics", "c2") }).WithTimeout(within).Should(BeTrue())

		By("deleting it: none of its series is left")
		Expect(k8sClient.Delete(ctx, d.nsync)).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(d.nsync), &syncv1alpha1.NangoSync{})
		}).WithContext(ctx).WithTimeout(within).Should(Satisfy(apierrors.IsNotFound))
		Eventually(func(g Gomega) map[string]string {
			return samplesOf(scrapeMetrics(g, metricsAddr), d.nsync)
		}).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeEmpty())
		Expect(m.exited).NotTo(BeClosed(), "the manager died; its output:\n%s", m.output)
	}, SpecTimeout(3*time.Minute))
})
