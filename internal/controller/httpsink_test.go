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
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/checkpoints"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink/httpsinktest"
)

// httpReceivers are the endpoints of the tests' http sinks, by the name of the Secret that
// holds their URL.
var httpReceivers sync.Map

// httpSinkSpec is an http sink posting to an endpoint of the test's own, with its URL and
// signing key in a new Secret. The table is not used: an endpoint has none.
func httpSinkSpec(string) syncv1alpha1.SinkSpec {
	GinkgoHelper()
	signingKey := []byte(uniqueName("key") + "-0123456789abcdef0123456789")
	rx := httpsinktest.New(signingKey)
	server := httptest.NewServer(rx)
	DeferCleanup(server.Close)
	secretName := uniqueName("endpoint")
	Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: syncNamespace, Name: secretName},
		StringData: map[string]string{"url": server.URL + "/nango?token=t0ken", "signingKey": string(signingKey)},
	})).To(Succeed())
	httpReceivers.Store(secretName, rx)
	return syncv1alpha1.SinkSpec{HTTP: &syncv1alpha1.HTTPSink{
		URLSecretRef:        syncv1alpha1.SecretKeyReference{Name: secretName, Key: "url"},
		SigningKeySecretRef: syncv1alpha1.SecretKeyReference{Name: secretName, Key: "signingKey"},
	}}
}

// httpReceiver answers the endpoint of an http sink spec made by httpSinkSpec.
func httpReceiver(spec syncv1alpha1.SinkSpec) *httpsinktest.Receiver {
	rx, ok := httpReceivers.Load(spec.HTTP.URLSecretRef.Name)
	Expect(ok).To(BeTrue(), "no endpoint for Secret %s", spec.HTTP.URLSecretRef.Name)
	return rx.(*httpsinktest.Receiver)
}

// httpRows reads back what an endpoint applied, as rows.
type httpRows struct {
	sink.Sink
	*httpsinktest.Receiver
}

func openHTTPSink(spec syncv1alpha1.SinkSpec) (rowReader, error) {
	secret := &corev1.Secret{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: syncNamespace, Name: spec.HTTP.URLSecretRef.Name}, secret)).To(Succeed())
	snk, err := httpsink.Open(httpsink.Options{URL: string(secret.Data["url"]), SigningKey: secret.Data["signingKey"],
		Checkpoints: checkpoints.ConfigMaps{Client: k8sClient, Reader: k8sClient, Namespace: syncNamespace, Place: "test"}})
	if err != nil {
		return nil, err
	}
	return httpRows{Sink: snk, Receiver: httpReceiver(spec)}, nil
}

var _ = Describe("NangoSync with an http sink", func() {
	It("stalls on a 4xx with the endpoint's answer, retries 5xx and 429, and keeps its checkpoint in a ConfigMap", func() {
		d := newDataSet(uniqueName("http"), "Contact")
		Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
		d.upsert(ids("rec", 0, 30), 1)
		spec := httpSinkSpec("")
		rx := httpReceiver(spec)
		rx.SetFault(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			http.Error(w, `{"error":"unknown model Contact"}`, http.StatusUnprocessableEntity)
			return true
		})
		nsync := newNangoSyncFor(d, spec)
		create(nsync)

		By("showing the endpoint's status and answer, and not the URL's token, in a Stalled condition")
		expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.SinkRefusedReason)
		Expect(readyMessage(nsync)).To(And(ContainSubstring("422"), ContainSubstring("unknown model Contact")))
		Expect(readyMessage(nsync)).NotTo(ContainSubstring("t0ken"))
		Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(BeTrue())
		Expect(nsync.Status.Cursor).To(BeEmpty())

		By("recovering through 500s and a 429 once the endpoint accepts batches")
		rx.SetFault(func(n int, w http.ResponseWriter, _ *http.Request) bool {
			switch n % 4 {
			case 1:
				http.Error(w, "busy", http.StatusInternalServerError)
				return true
			case 2:
				w.Header().Set("Retry-After", "0")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return true
			}
			return false
		})
		annotate(nsync, syncv1alpha1.RequestedAtAnnotation)
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		snk := openSink(spec)
		Eventually(func(g Gomega) { d.matches(g, snk) }).Should(Succeed())

		By("keeping the cursor in the operator's ConfigMap")
		var maps corev1.ConfigMapList
		Expect(k8sClient.List(ctx, &maps, client.InNamespace(syncNamespace), client.MatchingLabels{checkpoints.Label: "true"})).To(Succeed())
		var cursors []string
		for _, cm := range maps.Items {
			if cm.Annotations["sync.nango.dev/connection"] == d.ref.ConnectionID {
				cursors = append(cursors, cm.Data["cursor"])
			}
		}
		Expect(cursors).To(Equal([]string{nsync.Status.Cursor}))
	})

	It("is woken by its signing-key Secret: SecretNotFound until it exists, at once when it goes", func() {
		d := newDataSet(uniqueName("http"), "Contact")
		Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
		d.upsert(ids("rec", 0, 10), 1)
		spec := httpSinkSpec("")
		endpoint := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: syncNamespace, Name: spec.HTTP.URLSecretRef.Name}, endpoint)).To(Succeed())
		signingKey := string(endpoint.Data["signingKey"])
		signingSecret := uniqueName("signing")
		spec.HTTP.SigningKeySecretRef = syncv1alpha1.SecretKeyReference{Name: signingSecret, Key: "signingKey"}
		nsync := newNangoSyncFor(d, spec) // interval 1h: only a wake syncs it sooner
		create(nsync)
		expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.SecretNotFoundReason)
		Expect(readyMessage(nsync)).To(ContainSubstring("Secret sync/" + signingSecret + " not found"))
		Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(BeTrue())

		By("creating the signing-key Secret")
		createSecret(signingSecret, "signingKey", signingKey)
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		snk := openSink(spec)
		Eventually(func(g Gomega) { d.matches(g, snk) }).Should(Succeed())

		By("deleting it: the NangoSync says so at once, not an hour later")
		Expect(k8sClient.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: syncNamespace, Name: signingSecret}})).To(Succeed())
		Eventually(func(g Gomega) {
			ready := readyCondition(g, nsync)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal(syncv1alpha1.SecretNotFoundReason), "message: %s", ready.Message)
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("creating it again: new records arrive without a webhook")
		d.upsert(ids("rec", 10, 15), 1)
		createSecret(signingSecret, "signingKey", signingKey)
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		Eventually(func(g Gomega) { d.matches(g, snk) }).WithTimeout(30 * time.Second).Should(Succeed())
	})
})
