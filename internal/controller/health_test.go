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
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// droppingWebhookReceiver points the emulator's webhooks at an endpoint that answers each
// and does nothing with it, as a receiver that is down behind a load balancer, or a key
// rotation gone wrong, would; it answers how many webhooks came. Nango does not retry a
// 2xx, so each webhook is lost at once.
func droppingWebhookReceiver() func() int64 {
	var received atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	DeferCleanup(server.Close)
	Expect(sim.SetWebhookURL(nangosim.DefaultEnvironment, server.URL)).To(Succeed())
	DeferCleanup(sim.SetWebhookURL, nangosim.DefaultEnvironment, "")
	return received.Load
}

// sendRunFailureWebhook sends the webhook Nango sends when a sync's run fails.
func sendRunFailureWebhook(ref nangosim.ConnectionRef, syncName, model, errorType, description string) {
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	_, err := sim.SendWebhook(ctx, ref.Environment, map[string]any{
		"from": "nango", "type": "sync", "success": false,
		"connectionId": ref.ConnectionID, "providerConfigKey": ref.ProviderConfigKey, "syncName": syncName, "model": model,
		"error":     map[string]string{"type": errorType, "description": description},
		"startedAt": now, "failedAt": now,
	})
	Expect(err).NotTo(HaveOccurred())
}

// The suite runs no webhook receiver of the operator's: every webhook Nango sends is lost
// (those of the first spec go to droppingWebhookReceiver, which counts them), and what these
// tests see comes from GET /sync/status alone.
var _ = Describe("Nango's run health, without webhooks", func() {
	// nangoRun answers a NangoSync's NangoRunSucceeded condition, nil when it has none.
	nangoRun := func(g Gomega, nsync *syncv1alpha1.NangoSync) *metav1.Condition {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
		return apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.NangoRunSucceededCondition)
	}

	It("follows Nango's run status within two intervals while every webhook is lost, asking once per interval per integration", func() {
		webhooksLost := droppingWebhookReceiver()
		integrations := map[string][]string{uniqueName("hubspot"): {"c1", "c2", "c3"}, uniqueName("crm"): {"c4", "c5"}}
		syncs := map[string]*syncv1alpha1.NangoSync{}
		for pck, conns := range integrations {
			for _, conn := range conns {
				d := newDataSet(uniqueName(conn), "Contact")
				d.ref.ProviderConfigKey = pck
				Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
				d.upsert(ids("rec", 0, 3), 1)
				nsync := newNangoSyncFor(d, sqliteSinkSpec("contacts"))
				nsync.Spec.SyncName = "contacts"
				syncs[conn] = nsync
			}
			Expect(sim.CreateSync(nangosim.SyncSpec{ProviderConfigKey: pck, Name: "contacts", Models: []string{"Contact"}})).To(Succeed())
		}
		for _, nsync := range syncs {
			create(nsync)
		}
		for _, nsync := range syncs {
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		}

		By("one GET /sync/status per interval and integration, however many NangoSyncs it has")
		first, second := "", ""
		for pck, conns := range integrations {
			if len(conns) == 3 {
				first = pck
			} else {
				second = pck
			}
		}
		beforeFirst, beforeSecond := nangoRequests.syncStatusRequests(first), nangoRequests.syncStatusRequests(second)
		start := time.Now()
		Eventually(func() int { return nangoRequests.syncStatusRequests(first) - beforeFirst }).
			WithTimeout(20 * nangoHealthInterval).Should(BeNumerically(">=", 10))
		intervals := int(time.Since(start)/nangoHealthInterval) + 1
		asked := nangoRequests.syncStatusRequests(first) - beforeFirst
		Expect(asked).To(BeNumerically("<=", intervals), "3 NangoSyncs of one integration, %d requests in %d intervals", asked, intervals)
		Expect(nangoRequests.syncStatusRequests(second)-beforeSecond).To(BeNumerically("~", asked, 1),
			"every integration is asked at every interval")

		failing, bystander := syncs["c1"], syncs["c2"]
		ref := nangosim.ConnectionRef{ProviderConfigKey: failing.Spec.ProviderConfigKey, ConnectionID: failing.Spec.ConnectionID}

		By("NangoRunSucceeded=False while Nango's latest run failed, its webhook lost")
		lostBefore := webhooksLost()
		Expect(sim.SetSyncRun(nangosim.SyncRun{ConnectionRef: ref, Sync: "contacts", Job: nangosim.JobStopped})).To(Succeed())
		sendRunFailureWebhook(ref, "contacts", "Contact", "script_error", "HubSpot answered 502")
		Expect(webhooksLost()).To(Equal(lostBefore+1), "Nango sent the failure's webhook, and it was lost")
		Eventually(func(g Gomega) {
			run := nangoRun(g, failing)
			g.Expect(run).NotTo(BeNil())
			g.Expect(run.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(run.Reason).To(Equal("ERROR"))
			g.Expect(run.Message).To(ContainSubstring("failed or was cancelled"))
		}).WithTimeout(2 * nangoHealthInterval).Should(Succeed())
		Expect(conditionTrue(failing, syncv1alpha1.ReadyCondition)).To(BeTrue(), "the copy itself is in sync")
		Expect(nangoRun(Default, bystander)).To(HaveField("Status", metav1.ConditionTrue), "another connection's sync runs fine")
		Expect(nangoRun(Default, bystander)).To(HaveField("Reason", syncv1alpha1.NoFailureReportedReason))
		Eventually(func(g Gomega) { g.Expect(eventReasons(g, failing)).To(ContainElement(syncv1alpha1.SyncFailedReason)) }).Should(Succeed())

		By("then paused")
		Expect(sim.SetSyncRun(nangosim.SyncRun{ConnectionRef: ref, Sync: "contacts", Schedule: nangosim.SchedulePaused,
			Job: nangosim.JobStopped})).To(Succeed())
		Eventually(func(g Gomega) string {
			run := nangoRun(g, failing)
			g.Expect(run).NotTo(BeNil())
			return run.Reason
		}).WithTimeout(2 * nangoHealthInterval).Should(Equal("PAUSED"))

		By("True again once a run succeeds, its webhook lost too")
		Expect(sim.SetSyncRun(nangosim.SyncRun{ConnectionRef: ref, Sync: "contacts", Job: nangosim.JobSuccess})).To(Succeed())
		_, err := sim.SendSyncWebhook(ctx, nangosim.SyncWebhook{ModelRef: nangosim.ModelRef{ConnectionRef: ref, Model: "Contact"},
			SyncName: "contacts"})
		Expect(err).NotTo(HaveOccurred())
		Expect(webhooksLost()).To(Equal(lostBefore+2), "Nango sent the success's webhook, and it was lost")
		Eventually(func(g Gomega) {
			run := nangoRun(g, failing)
			g.Expect(run).NotTo(BeNil())
			g.Expect(run.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(run.Reason).To(Equal(syncv1alpha1.NoFailureReportedReason))
		}).WithTimeout(2 * nangoHealthInterval).Should(Succeed())
		Expect(failing.Annotations).NotTo(HaveKey(syncv1alpha1.NangoRunFailureAnnotation))
	})

	It("loses no failure the webhook receiver writes while the health check decides", func() {
		d := newDataSet(uniqueName("racing"), "Contact")
		d.ref.ProviderConfigKey = uniqueName("hubspot")
		nsync := newNangoSyncFor(d, sqliteSinkSpec("contacts"))
		nsync.Spec.SyncName = "contacts"
		failedAt := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
		nsync.Annotations = map[string]string{syncv1alpha1.NangoRunFailureAnnotation: `{"type":"ERROR","description":"GET /sync/status reports ERROR","syncName":"contacts","failedAt":"` + failedAt + `"}`}
		create(nsync)
		listed := nsync.DeepCopy() // what the health check listed

		By("the receiver writing a newer failure in the meantime")
		webhook := `{"type":"script_error","description":"HubSpot answered 502","syncName":"contacts","failedAt":"` +
			time.Now().UTC().Format(time.RFC3339Nano) + `"}`
		patch := client.MergeFrom(nsync.DeepCopy())
		nsync.Annotations[syncv1alpha1.NangoRunFailureAnnotation] = webhook
		Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())

		By("the health check then recording a success that finished before the webhook's failure")
		finished := time.Now().Add(-time.Minute)
		h := &nangoHealth{r: theReconciler, period: nangoHealthInterval}
		Expect(h.record(ctx, GinkgoLogr, listed, &nango.SyncStatus{ConnectionID: d.ref.ConnectionID, Name: "contacts",
			Status: nangoStatusSuccess, FinishedAt: &finished})).To(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
		Expect(nsync.Annotations).To(HaveKeyWithValue(syncv1alpha1.NangoRunFailureAnnotation, webhook),
			"the health check removed a failure it had not seen")
	})

	It("keeps a webhook's failure until Nango reports a run that succeeded after it", func() {
		d := newDataSet(uniqueName("hooked"), "Contact")
		d.ref.ProviderConfigKey = uniqueName("hubspot")
		Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
		Expect(sim.CreateSync(nangosim.SyncSpec{ProviderConfigKey: d.ref.ProviderConfigKey, Name: "contacts", Models: []string{"Contact"}})).To(Succeed())
		d.upsert(ids("rec", 0, 3), 1)
		nsync := newNangoSyncFor(d, sqliteSinkSpec("contacts"))
		nsync.Spec.SyncName = "contacts"
		failedAt := time.Now().UTC().Format(time.RFC3339Nano)
		nsync.Annotations = map[string]string{syncv1alpha1.NangoRunFailureAnnotation: `{"type":"script_error","description":"HubSpot answered 502","syncName":"contacts","failedAt":"` + failedAt + `"}`}
		Expect(sim.SetSyncRun(nangosim.SyncRun{ConnectionRef: d.ref.ConnectionRef, Sync: "contacts", Job: nangosim.JobStopped})).To(Succeed())
		create(nsync)
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		Consistently(func(g Gomega) string {
			run := nangoRun(g, nsync)
			g.Expect(run).NotTo(BeNil())
			return run.Reason
		}).WithTimeout(5*nangoHealthInterval).Should(Equal("script_error"), "Nango's own words stay while its run fails")

		Expect(sim.SetSyncRun(nangosim.SyncRun{ConnectionRef: d.ref.ConnectionRef, Sync: "contacts", Job: nangosim.JobSuccess})).To(Succeed())
		Eventually(func(g Gomega) string {
			run := nangoRun(g, nsync)
			g.Expect(run).NotTo(BeNil())
			return string(run.Status) + "/" + run.Reason
		}).Should(Equal("True/" + syncv1alpha1.NoFailureReportedReason))
	})

	It("clears a replayed credentials failure once Nango lists the connection without an auth error, listing once per interval", func() {
		pck := uniqueName("hubspot")
		replayed, failing := newDataSet(uniqueName("replayed"), "Contact"), newDataSet(uniqueName("failing"), "Contact")
		for _, d := range []*dataSet{replayed, failing} {
			d.ref.ProviderConfigKey = pck
			Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
		}
		_, err := sim.SendAuthWebhook(ctx, nangosim.AuthWebhook{ConnectionRef: failing.ref.ConnectionRef, Operation: nangosim.AuthRefresh,
			ErrorType: "refresh_token_external_error", ErrorDescription: "invalid_grant"})
		Expect(err).NotTo(HaveOccurred())
		// What the receiver writes for a refresh failure, replayed or not: the time is the
		// webhook's arrival, since its body carries none.
		authFailure := `{"operation":"refresh","type":"refresh_token_external_error","description":"invalid_grant","failedAt":"` +
			time.Now().UTC().Format(time.RFC3339Nano) + `"}`
		syncs := map[*dataSet]*syncv1alpha1.NangoSync{}
		for _, d := range []*dataSet{replayed, failing} {
			nsync := newNangoSyncFor(d, sqliteSinkSpec("contacts"))
			nsync.Annotations = map[string]string{syncv1alpha1.NangoAuthFailureAnnotation: authFailure}
			syncs[d] = nsync
		}
		before, start := nangoRequests.connectionListings(pck), time.Now()
		for _, nsync := range syncs {
			create(nsync)
		}
		annotations := func(nsync *syncv1alpha1.NangoSync) func(Gomega) map[string]string {
			return func(g Gomega) map[string]string {
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
				return nsync.Annotations
			}
		}

		By("the failure of a connection Nango lists without an auth error goes within a health interval or so")
		Eventually(annotations(syncs[replayed])).WithTimeout(5 * nangoHealthInterval).
			ShouldNot(HaveKey(syncv1alpha1.NangoAuthFailureAnnotation))
		Eventually(func(g Gomega) *metav1.Condition {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(syncs[replayed]), syncs[replayed])).To(Succeed())
			return apimeta.FindStatusCondition(syncs[replayed].Status.Conditions, syncv1alpha1.NangoConnectionAuthorizedCondition)
		}).Should(BeNil())

		By("the failure Nango still lists stays")
		Consistently(annotations(syncs[failing])).WithTimeout(5 * nangoHealthInterval).
			Should(HaveKeyWithValue(syncv1alpha1.NangoAuthFailureAnnotation, authFailure))

		By("one GET /connections per interval for the integration")
		intervals := int(time.Since(start)/nangoHealthInterval) + 1
		listings := nangoRequests.connectionListings(pck) - before
		Expect(listings).To(BeNumerically(">=", 2))
		Expect(listings).To(BeNumerically("<=", intervals), "%d listings in %d intervals", listings, intervals)

		By("the end user reconnects: the other failure goes too, and the listings stop")
		_, err = sim.SendAuthWebhook(ctx, nangosim.AuthWebhook{ConnectionRef: failing.ref.ConnectionRef, Operation: nangosim.AuthOverride, Success: true})
		Expect(err).NotTo(HaveOccurred())
		Eventually(annotations(syncs[failing])).WithTimeout(5 * nangoHealthInterval).
			ShouldNot(HaveKey(syncv1alpha1.NangoAuthFailureAnnotation))
		settled := nangoRequests.connectionListings(pck)
		Consistently(func() int { return nangoRequests.connectionListings(pck) }).WithTimeout(3*nangoHealthInterval).
			Should(BeNumerically("<=", settled+1), "listed with no credentials failure left to confirm")
	})
})
