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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// These tests run the real kubectl binary (from KUBEBUILDER_ASSETS, built into ./bin by
// make) against the envtest API server, to show what a user sees.
var _ = Describe("kubectl", func() {
	kubectl := runKubectl

	It("prints the NangoSync columns with the Ready reason (a suspended one reads Suspended), and the newest record's age and the status message in -o wide", func() {
		nsync := &syncv1alpha1.NangoSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "acme-hubspot-contacts"},
			Spec: syncv1alpha1.NangoSyncSpec{
				ConnectionID:      "acme-corp",
				ProviderConfigKey: "hubspot",
				Model:             "Contact",
				Sink: syncv1alpha1.SinkSpec{Postgres: &syncv1alpha1.PostgresSink{
					URLSecretRef: syncv1alpha1.SecretKeyReference{Name: "pg", Key: "url"},
					Table:        "hubspot_contacts",
				}},
			},
		}
		Expect(k8sClient.Create(ctx, nsync)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, nsync)).To(Succeed()) })

		// Write the status a synced NangoSync has, as the controller will.
		nsync.Status = syncv1alpha1.NangoSyncStatus{
			ObservedGeneration: nsync.Generation,
			Sink:               "postgres/hubspot_contacts",
			LastChangeTime:     &metav1.Time{Time: time.Now()},
			NewestRecordTime:   &metav1.Time{Time: time.Now().Add(-3 * time.Hour)},
			Records:            syncv1alpha1.RecordCounts{Added: 40, Updated: 1, Deleted: 1, Total: 42},
			Conditions: []metav1.Condition{{
				Type:               syncv1alpha1.ReadyCondition,
				Status:             metav1.ConditionTrue,
				Reason:             syncv1alpha1.SyncedReason,
				Message:            "Synced 42 records",
				LastTransitionTime: metav1.Now(),
			}},
		}
		Expect(k8sClient.Status().Update(ctx, nsync)).To(Succeed())

		By("showing a suspended NangoSync as such without -o wide")
		suspended := nsync.DeepCopy()
		suspended.ObjectMeta = metav1.ObjectMeta{Namespace: "default", Name: "acme-hubspot-deals"}
		suspended.Spec.Model = "Deal"
		suspended.Spec.Suspend = true
		suspended.Status = syncv1alpha1.NangoSyncStatus{}
		Expect(k8sClient.Create(ctx, suspended)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, suspended)).To(Succeed()) })
		suspended.Status = syncv1alpha1.NangoSyncStatus{
			ObservedGeneration: suspended.Generation,
			Sink:               "postgres/hubspot_deals",
			Conditions: []metav1.Condition{{
				Type:               syncv1alpha1.ReadyCondition,
				Status:             metav1.ConditionFalse,
				Reason:             syncv1alpha1.SuspendedReason,
				Message:            "Suspended by spec.suspend: nothing is read or written until it is false; the cursor stays where it is",
				LastTransitionTime: metav1.Now(),
			}},
		}
		Expect(k8sClient.Status().Update(ctx, suspended)).To(Succeed())

		out := kubectl("get", "nangosyncs", "--namespace", "default")
		Expect(out).To(MatchRegexp(`(?m)^NAME\s+CONNECTION\s+INTEGRATION\s+MODEL\s+SINK\s+RECORDS\s+LAST CHANGE\s+READY\s+REASON\s+AGE\s*$`))
		Expect(out).To(MatchRegexp(`(?m)^acme-hubspot-contacts\s+acme-corp\s+hubspot\s+Contact\s+postgres/hubspot_contacts\s+42\s+\d+s\s+True\s+Synced\s+\d+s\s*$`))
		Expect(out).To(MatchRegexp(`(?m)^acme-hubspot-deals\s+acme-corp\s+hubspot\s+Deal\s+postgres/hubspot_deals\s.*\sFalse\s+Suspended\s+\d+s\s*$`))

		wide := kubectl("get", "nangosyncs", "--namespace", "default", "-o", "wide")
		Expect(wide).To(MatchRegexp(`(?m)^NAME\s+CONNECTION\s+INTEGRATION\s+MODEL\s+SINK\s+RECORDS\s+LAST CHANGE\s+NEWEST RECORD\s+READY\s+REASON\s+STATUS\s+AGE\s*$`))
		Expect(wide).To(MatchRegexp(`(?m)^acme-hubspot-contacts\s.*\s42\s+\d+s\s+3h\s+True\s+Synced\s+Synced 42 records\s+\d+s\s*$`))
		Expect(wide).To(MatchRegexp(`(?m)^acme-hubspot-deals\s.*\sFalse\s+Suspended\s+Suspended by spec.suspend: nothing is read or written until it is false; the cursor stays where it is\s+\d+s\s*$`))

		By("finding it by its short name and its categories")
		for _, resource := range []string{"nsync", "nango", "all"} {
			Expect(kubectl("get", resource, "--namespace", "default", "-o", "name")).
				To(ContainSubstring("nangosync.sync.nango.dev/acme-hubspot-contacts"), "kubectl get %s", resource)
		}
	})

	It("explains the sink from the API's Go comments", func() {
		out := kubectl("explain", "nangosync.spec.sink")
		Expect(out).To(ContainSubstring("sink is where the records are written. Exactly one of its kinds is set."))
		Expect(out).To(ContainSubstring("postgres\t<Object>"))
		Expect(out).To(ContainSubstring("sqlite\t<Object>"))
	})

	It("explains a NangoSyncSet's gone-connection policy and template from the API's Go comments", func() {
		// kubectl wraps descriptions to its width: compare the words.
		words := func(s string) string { return strings.Join(strings.Fields(s), " ") }

		policy := kubectl("explain", "nangosyncset.spec.goneConnectionPolicy")
		Expect(policy).To(MatchRegexp(`(?m)^FIELD:\s+goneConnectionPolicy <string>`))
		Expect(words(policy)).To(ContainSubstring("goneConnectionPolicy says what happens to the NangoSyncs of a " +
			"connection that Nango no longer has, or that the selector no longer matches: Delete removes them " +
			"(their own deletionPolicy then keeps or removes their rows), Keep leaves them and releases them from the set."))
		Expect(words(policy)).To(ContainSubstring("an error, a rate limit or a listing cut short never deletes anything."))
		Expect(words(policy)).To(ContainSubstring(`ENUM: Delete Keep`))

		template := kubectl("explain", "nangosyncset.spec.template")
		Expect(template).To(MatchRegexp(`(?m)^FIELD:\s+template <Object>`))
		Expect(words(template)).To(ContainSubstring("template is what every generated NangoSync gets besides its identity " +
			"(connection, integration, model, variant): labels, annotations and the spec fields. The set owns these " +
			"fields: a change here reaches every generated NangoSync, and a hand edit of one of them on a NangoSync is put back."))
		Expect(template).To(MatchRegexp(`(?m)^\s+metadata\s+<Object>`))
		Expect(template).To(MatchRegexp(`(?m)^\s+spec\s+<Object> -required-`))
		Expect(words(template)).To(ContainSubstring("see `kubectl explain nangosync.spec` for each of them."))
	})
})
