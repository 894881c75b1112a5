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
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// setFixture is an integration of the test's own in the emulator, with connections and
// records, and the NangoSyncSet over it.
type setFixture struct {
	integration string
	models      []string
	connections []string
	data        map[string]*dataSet // by connection/model
	set         *syncv1alpha1.NangoSyncSet
}

// newSetFixture makes n connections of a new integration, each with records of every
// model, tagged plan=pro.
func newSetFixture(n int, models ...string) *setFixture {
	GinkgoHelper()
	f := &setFixture{integration: uniqueName("crm"), models: models, data: map[string]*dataSet{}}
	for range n {
		f.connect(map[string]string{"plan": "pro"})
	}
	return f
}

// connect creates a connection with records of every model (no webhook).
func (f *setFixture) connect(tags map[string]string) string {
	GinkgoHelper()
	id := uniqueName("conn")
	Expect(sim.CreateConnectionWith(nangosim.NewConnection{
		ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: f.integration, ConnectionID: id},
		Provider:      "hubspot", Tags: tags,
	})).To(Succeed())
	for _, model := range f.models {
		d := newDataSet(id, model)
		d.ref.ProviderConfigKey = f.integration
		d.upsert(ids("rec", 0, 3), 1)
		f.data[id+"/"+model] = d
	}
	f.connections = append(f.connections, id)
	return id
}

// newSet is a NangoSyncSet over the fixture's integration, selecting plan=pro.
func (f *setFixture) newSet(sinkSpec syncv1alpha1.SinkSpec) *syncv1alpha1.NangoSyncSet {
	models := make([]syncv1alpha1.SyncSetModel, 0, len(f.models))
	for _, m := range f.models {
		models = append(models, syncv1alpha1.SyncSetModel{Model: m})
	}
	f.set = &syncv1alpha1.NangoSyncSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: syncNamespace, Name: uniqueName("set")},
		Spec: syncv1alpha1.NangoSyncSetSpec{
			ProviderConfigKey: f.integration,
			Selector:          &syncv1alpha1.ConnectionSelector{Tags: map[string]string{"plan": "pro"}},
			Models:            models,
			DiscoveryInterval: &metav1.Duration{Duration: time.Hour},
			Template: syncv1alpha1.NangoSyncTemplate{
				Metadata: syncv1alpha1.NangoSyncTemplateMetadata{Labels: map[string]string{"team": "crm"}},
				Spec: syncv1alpha1.NangoSyncTemplateSpec{
					Sink:     sinkSpec,
					Interval: &metav1.Duration{Duration: time.Hour},
				},
			},
		},
	}
	return f.set
}

// createSet creates the set; after the test it goes with its NangoSyncs (envtest runs no
// garbage collector, so the test deletes them as the collector would).
func createSet(set *syncv1alpha1.NangoSyncSet) {
	GinkgoHelper()
	Expect(k8sClient.Create(ctx, set)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, set))).To(Succeed())
		Expect(k8sClient.DeleteAllOf(ctx, &syncv1alpha1.NangoSync{}, client.InNamespace(syncNamespace),
			client.MatchingLabels{syncv1alpha1.SyncSetLabel: set.Name})).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(setChildren(g, set)).To(BeEmpty())
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})
}

// setChildren lists the NangoSyncs labelled with the set's name.
func setChildren(g Gomega, set *syncv1alpha1.NangoSyncSet) []syncv1alpha1.NangoSync {
	var list syncv1alpha1.NangoSyncList
	g.Expect(k8sClient.List(ctx, &list, client.InNamespace(set.Namespace),
		client.MatchingLabels{syncv1alpha1.SyncSetLabel: set.Name})).To(Succeed())
	return list.Items
}

// expectSetReason waits until the set's Ready condition has status and reason.
func expectSetReason(set *syncv1alpha1.NangoSyncSet, status metav1.ConditionStatus, reason string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), set)).To(Succeed())
		ready := apimeta.FindStatusCondition(set.Status.Conditions, syncv1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(reason), "message: %s", ready.Message)
		g.Expect(ready.Status).To(Equal(status))
		g.Expect(ready.ObservedGeneration).To(Equal(set.Generation))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// expectAllReady waits until the set has exactly want NangoSyncs, every one Ready, and
// says so in its status.
func expectAllReady(set *syncv1alpha1.NangoSyncSet, want int) []syncv1alpha1.NangoSync {
	GinkgoHelper()
	return expectAllReadyWithin(set, want, 60*time.Second)
}

// expectAllReadyWithin is expectAllReady with a timeout of its own.
func expectAllReadyWithin(set *syncv1alpha1.NangoSyncSet, want int, timeout time.Duration) []syncv1alpha1.NangoSync {
	GinkgoHelper()
	var children []syncv1alpha1.NangoSync
	Eventually(func(g Gomega) {
		children = setChildren(g, set)
		g.Expect(children).To(HaveLen(want))
		for i := range children {
			g.Expect(apimetaReady(&children[i])).To(BeTrue(), "NangoSync %s: %s", children[i].Name, readyMessage(&children[i]))
		}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), set)).To(Succeed())
		g.Expect(set.Status.Syncs).To(BeEquivalentTo(want))
		g.Expect(set.Status.ReadySyncs).To(BeEquivalentTo(want))
	}).WithTimeout(timeout).Should(Succeed())
	return children
}

// updateSet changes the set's spec, retrying on conflicts with the reconciler's status patches.
func updateSet(set *syncv1alpha1.NangoSyncSet, mutate func(*syncv1alpha1.NangoSyncSet)) {
	GinkgoHelper()
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(set), set); err != nil {
			return err
		}
		mutate(set)
		return k8sClient.Update(ctx, set)
	}).Should(Succeed())
}

// wakeSet asks the set to discover now, as the webhook receiver does.
func wakeSet(set *syncv1alpha1.NangoSyncSet) string {
	GinkgoHelper()
	value := time.Now().Format(time.RFC3339Nano)
	patch := client.RawPatch(types.MergePatchType,
		[]byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, syncv1alpha1.RequestedAtAnnotation, value)))
	Expect(k8sClient.Patch(ctx, set, patch)).To(Succeed())
	return value
}

// expectHandled waits until the set acted on the wake value.
func expectHandled(set *syncv1alpha1.NangoSyncSet, value string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), set)).To(Succeed())
		g.Expect(set.Status.LastHandledRequestedAt).To(Equal(value))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

var _ = Describe("NangoSyncSet reconciler", func() {
	It("keeps one NangoSync per selected connection and model, filled from Nango into one shared table, in line with the template", func() {
		f := newSetFixture(3, "Contact", "Deal")
		unselected := f.connect(map[string]string{"plan": "free"})
		spec := postgresSinkSpec("crm_records")
		set := f.newSet(spec)
		createSet(set)

		By("generating 3 connections × 2 models, all Ready, with the records of each in the shared table")
		children := expectAllReady(set, 6)
		expectSetReason(set, metav1.ConditionTrue, syncv1alpha1.DiscoveredReason)
		Expect(set.Status.Connections).To(BeEquivalentTo(3))
		Expect(set.Status.LastDiscoveryTime).NotTo(BeNil())
		snk := openSink(spec)
		for _, child := range children {
			Expect(child.Spec.ConnectionID).NotTo(Equal(unselected))
			Expect(child.Name).To(Equal(SyncName(set.Name, f.integration, child.Spec.ConnectionID, child.Spec.Model, "")))
			Expect(len(child.Name)).To(BeNumerically("<=", 63))
			Expect(child.Annotations).To(HaveKeyWithValue(syncv1alpha1.ConnectionIDAnnotation, child.Spec.ConnectionID))
			Expect(child.Labels).To(HaveKeyWithValue("team", "crm"))
			ref := metav1.GetControllerOf(&child)
			Expect(ref).NotTo(BeNil())
			Expect(ref.UID).To(Equal(set.UID))
			Expect(*ref.BlockOwnerDeletion).To(BeTrue())
			Expect(child.Spec.Interval.Duration).To(Equal(time.Hour))
			d := f.data[child.Spec.ConnectionID+"/"+child.Spec.Model]
			Eventually(func(g Gomega) { d.matches(g, snk) }).Should(Succeed())
		}

		By("taking back a templated field changed by hand, and recreating a NangoSync deleted by hand")
		edited := children[0].DeepCopy()
		Expect(k8sClient.Patch(ctx, edited, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"interval":"3h"}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(edited), edited)).To(Succeed())
			g.Expect(edited.Spec.Interval.Duration).To(Equal(time.Hour))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		gone := children[1]
		Expect(k8sClient.Delete(ctx, &gone)).To(Succeed())
		Eventually(func(g Gomega) {
			again := &syncv1alpha1.NangoSync{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&gone), again)).To(Succeed())
			g.Expect(again.UID).NotTo(Equal(gone.UID))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("carrying a template change (interval, sink, a label) to every NangoSync")
		moved := postgresSinkSpec("crm_records_v2")
		updateSet(set, func(s *syncv1alpha1.NangoSyncSet) {
			s.Spec.Template.Spec.Interval = &metav1.Duration{Duration: 2 * time.Hour}
			s.Spec.Template.Spec.Sink = moved
			s.Spec.Template.Metadata.Labels = map[string]string{"tier": "gold"}
		})
		Eventually(func(g Gomega) {
			for _, child := range setChildren(g, set) {
				g.Expect(child.Spec.Interval.Duration).To(Equal(2*time.Hour), child.Name)
				g.Expect(child.Spec.Sink.Postgres.Table).To(Equal("crm_records_v2"), child.Name)
				g.Expect(child.Spec.Sink.Postgres.URLSecretRef).To(Equal(moved.Postgres.URLSecretRef), child.Name)
				g.Expect(child.Labels).To(HaveKeyWithValue("tier", "gold"))
				g.Expect(child.Labels).NotTo(HaveKey("team"), "a label the template dropped goes")
			}
		}).WithTimeout(30 * time.Second).Should(Succeed())
		expectAllReady(set, 6)
		movedSink := openSink(moved)
		for _, d := range f.data {
			if d.ref.ConnectionID != unselected {
				Eventually(func(g Gomega) { d.matches(g, movedSink) }).Should(Succeed())
			}
		}

		By("changing nothing of its NangoSyncs when a discovery finds nothing new")
		// What the set writes is each child's spec, labels and owner: their generation,
		// labels and owner references must stay. (Not the resourceVersion: the children's
		// own reconciler may write their status meanwhile.)
		type written struct {
			generation int64
			labels     map[string]string
			owners     []metav1.OwnerReference
		}
		before := map[string]written{}
		Eventually(func(g Gomega) {
			for _, child := range setChildren(g, set) {
				g.Expect(child.Status.ObservedGeneration).To(Equal(child.Generation), child.Name)
				g.Expect(apimetaReady(&child)).To(BeTrue(), child.Name)
				before[child.Name] = written{child.Generation, child.Labels, child.OwnerReferences}
			}
		}).WithTimeout(30 * time.Second).Should(Succeed())
		expectHandled(set, wakeSet(set))
		Consistently(func(g Gomega) {
			for _, child := range setChildren(g, set) {
				g.Expect(written{child.Generation, child.Labels, child.OwnerReferences}).To(Equal(before[child.Name]), child.Name)
			}
		}).WithTimeout(2 * time.Second).Should(Succeed())

		By("showing it in kubectl get")
		out := runKubectl("get", "nangosyncsets", "-n", syncNamespace, set.Name)
		Expect(out).To(ContainSubstring("INTEGRATION"))
		Expect(out).To(MatchRegexp(`(?m)^NAME\s+INTEGRATION\s+CONNECTIONS\s+SYNCS\s+READY\s+LAST DISCOVERY\s+AGE$`))
		Expect(out).To(MatchRegexp(`%s\s+%s\s+3\s+6\s+6/6\s`, set.Name, f.integration))
	})

	It("keeps 200 connections × 2 models: 400 NangoSyncs, all Ready, every connection's records in one shared PostgreSQL table", func() {
		f := newSetFixture(200, "Contact", "Deal")
		spec := postgresSinkSpec("crm_records")
		set := f.newSet(spec)
		start := time.Now()
		createSet(set)

		// 70 s measured with the machine's load average at 20 (other engineers' builds and tests).
		children := expectAllReadyWithin(set, 400, 3*time.Minute)
		AddReportEntry("200 connections × 2 models: set created → 400 NangoSyncs Ready", time.Since(start).Round(time.Millisecond).String())
		GinkgoWriter.Printf("200 connections × 2 models: 400 NangoSyncs Ready in %s\n", time.Since(start).Round(time.Millisecond))
		Expect(set.Status.Connections).To(BeEquivalentTo(200))
		Expect(set.Status.Ready).To(Equal("400/400"))
		names := map[string]bool{}
		for _, child := range children {
			names[child.Name] = true
			Expect(child.Spec.Sink.Postgres.Table).To(Equal("crm_records"))
			Expect(child.Spec.Sink.Postgres.URLSecretRef).To(Equal(spec.Postgres.URLSecretRef))
		}
		Expect(names).To(HaveLen(400), "every NangoSync has its own name")

		By("comparing every connection's rows, one by one, with what the emulator serves")
		snk := openSink(spec)
		Expect(f.data).To(HaveLen(400))
		for _, d := range f.data {
			Eventually(func(g Gomega) { d.matches(g, snk) }).Should(Succeed())
		}
		secret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: syncNamespace, Name: spec.Postgres.URLSecretRef.Name}, secret)).To(Succeed())
		conn, err := pgx.Connect(ctx, string(secret.Data["url"]))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(conn.Close, context.WithoutCancel(ctx))
		var rows, dataSets int
		Expect(conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT (connection_id, model)) FROM crm_records`).Scan(&rows, &dataSets)).To(Succeed())
		Expect(dataSets).To(Equal(400), "one table holds the records of every connection and model")
		Expect(rows).To(Equal(400*3), "and nothing else")
	})

	It("lets nothing go while discovery fails, says why, and lets go once a discovery completes", func() {
		f := newSetFixture(1, "Contact", "Deal")
		set := f.newSet(sqliteSinkSpec("records"))
		createSet(set)
		original := expectAllReady(set, 2)

		By("dropping a model from the set while Nango answers 500")
		sim.SetFaults(nangosim.Faults{ServerErrorRate: 1})
		DeferCleanup(sim.SetFaults, noFaults())
		updateSet(set, func(s *syncv1alpha1.NangoSyncSet) { s.Spec.Models = s.Spec.Models[:1] })
		expectSetReason(set, metav1.ConditionFalse, syncv1alpha1.NangoUnavailableReason)
		ready := apimeta.FindStatusCondition(set.Status.Conditions, syncv1alpha1.ReadyCondition)
		Expect(ready.Message).To(HavePrefix("Discovery failed"))
		Expect(ready.Message).To(ContainSubstring("Nothing was deleted"))
		children := setChildren(Default, set)
		Expect(children).To(HaveLen(2))
		for _, child := range children {
			Expect(child.DeletionTimestamp).To(BeNil(), "NangoSync %s of the dropped model goes only after a complete discovery", child.Name)
			Expect(child.UID).To(BeElementOf(original[0].UID, original[1].UID))
		}

		By("letting the dropped model's NangoSync go once Nango answers")
		sim.SetFaults(noFaults())
		expectHandled(set, wakeSet(set))
		left := expectAllReady(set, 1)
		Expect(left[0].Spec.Model).To(Equal("Contact"))
		expectSetReason(set, metav1.ConditionTrue, syncv1alpha1.DiscoveredReason)
	})

	It("stalls with InvalidSpec when the API server refuses the NangoSyncs its template makes", func() {
		f := newSetFixture(1, "Contact")
		set := f.newSet(sqliteSinkSpec("records"))
		// Annotations of more than 256 KiB in all: the API server refuses them on a
		// NangoSync, while the set (whose size limit is that of etcd) holds them. A CEL rule
		// summing the sizes of unbounded values would cost more than the API server allows.
		set.Spec.Template.Metadata.Annotations = map[string]string{
			"example.com/runbook": strings.Repeat("r", 200<<10), "example.com/notes": strings.Repeat("n", 100<<10)}
		createSet(set)
		expectSetReason(set, metav1.ConditionFalse, syncv1alpha1.InvalidSpecReason)
		Expect(apimeta.IsStatusConditionTrue(set.Status.Conditions, syncv1alpha1.StalledCondition)).To(BeTrue())
		ready := apimeta.FindStatusCondition(set.Status.Conditions, syncv1alpha1.ReadyCondition)
		Expect(ready.Message).To(ContainSubstring("metadata.annotations"))
		Expect(ready.Message).To(ContainSubstring("spec.template"))
		Expect(ready.Message).NotTo(ContainSubstring("rrrrrrrr"), "no annotation value in the condition")
		Expect(setChildren(Default, set)).To(BeEmpty())

		By("recovering once the template is fixed")
		updateSet(set, func(s *syncv1alpha1.NangoSyncSet) {
			s.Spec.Template.Metadata.Annotations = map[string]string{"example.com/runbook": "https://runbooks.example.com/crm"}
		})
		expectAllReady(set, 1)
		expectSetReason(set, metav1.ConditionTrue, syncv1alpha1.DiscoveredReason)
	})

	It("is woken by its Nango Secret: out of SecretNotFound once it exists, and lists again when it changes", func() {
		f := newSetFixture(1, "Contact")
		set := f.newSet(sqliteSinkSpec("contacts"))
		secretName := uniqueName("set-nango-key")
		set.Spec.Template.Spec.Nango = &syncv1alpha1.NangoEndpoint{
			SecretRef: &syncv1alpha1.SecretKeyReference{Name: secretName, Key: "secretKey"}}
		createSet(set)
		expectSetReason(set, metav1.ConditionFalse, syncv1alpha1.SecretNotFoundReason)
		Expect(apimeta.IsStatusConditionTrue(set.Status.Conditions, syncv1alpha1.StalledCondition)).To(BeTrue())
		Expect(setChildren(Default, set)).To(BeEmpty())

		By("creating the Secret")
		createSecret(secretName, "secretKey", simSecretKey())
		expectAllReady(set, 1)
		expectSetReason(set, metav1.ConditionTrue, syncv1alpha1.DiscoveredReason)

		By("changing the Secret, as a rotation to another environment's key would: listed again, an hour early")
		f.connect(map[string]string{"plan": "pro"}) // no webhook
		updateSecret(secretName, "rotatedAt", time.Now().Format(time.RFC3339Nano))
		expectAllReadyWithin(set, 2, 30*time.Second)
	})

	It("discovers a new connection as soon as it is woken, and its NangoSyncs fill from Nango", func() {
		f := newSetFixture(1, "Contact")
		spec := sqliteSinkSpec("contacts")
		set := f.newSet(spec)
		createSet(set)
		expectAllReady(set, 1)

		conn := f.connect(map[string]string{"plan": "pro"})
		expectHandled(set, wakeSet(set))
		children := expectAllReady(set, 2)
		snk := openSink(spec)
		for _, child := range children {
			d := f.data[child.Spec.ConnectionID+"/Contact"]
			Eventually(func(g Gomega) { d.matches(g, snk) }).Should(Succeed())
		}
		Expect(set.Status.Connections).To(BeEquivalentTo(2))
		Expect(children).To(ContainElement(HaveField("Spec.ConnectionID", conn)))
	})

	It("deletes nothing on a failed, rate-limited, cut-short or empty listing; deletes a gone connection's NangoSyncs and rows, and only those", func() {
		f := newSetFixture(3, "Contact")
		spec := postgresSinkSpec("contacts")
		set := f.newSet(spec)
		set.Spec.Template.Spec.DeletionPolicy = syncv1alpha1.DeletionPolicyDelete
		// Through a proxy of the emulator, so that the listing can be made to lie.
		var listing atomic.Value // func(w, r) bool: true when it answered
		listing.Store(func(http.ResponseWriter, *http.Request) bool { return false })
		simHandler := sim.Handler()
		otherNangoAnswers(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/connections" && listing.Load().(func(http.ResponseWriter, *http.Request) bool)(w, r) {
				return
			}
			simHandler.ServeHTTP(w, r)
		})
		set.Spec.Template.Spec.Nango = &syncv1alpha1.NangoEndpoint{URL: otherNango.URL}
		createSet(set)
		original := expectAllReady(set, 3)
		snk := openSink(spec)
		for _, d := range f.data {
			Eventually(func(g Gomega) { d.matches(g, snk) }).Should(Succeed())
		}
		intact := func() {
			GinkgoHelper()
			children := setChildren(Default, set)
			Expect(children).To(HaveLen(3))
			for i := range children {
				Expect(children[i].UID).To(Equal(original[i].UID))
				Expect(children[i].DeletionTimestamp).To(BeNil())
			}
		}

		for _, fault := range []struct {
			name   string
			faults nangosim.Faults
			reason string
		}{
			{"500s", nangosim.Faults{ServerErrorRate: 1}, syncv1alpha1.NangoUnavailableReason},
			{"a 429 storm", nangosimFaults429(), syncv1alpha1.RateLimitedReason},
		} {
			By("keeping every NangoSync through " + fault.name)
			sim.SetFaults(fault.faults)
			wakeSet(set)
			expectSetReason(set, metav1.ConditionFalse, fault.reason)
			Expect(apimeta.IsStatusConditionTrue(set.Status.Conditions, syncv1alpha1.ReconcilingCondition)).To(BeTrue())
			intact()
			sim.SetFaults(noFaults())
			expectHandled(set, wakeSet(set))
			expectSetReason(set, metav1.ConditionTrue, syncv1alpha1.DiscoveredReason)
			intact()
		}

		By("keeping every NangoSync when the listing never answers (the reconcile times out)")
		listing.Store(func(w http.ResponseWriter, r *http.Request) bool {
			<-r.Context().Done()
			return true
		})
		wakeSet(set)
		expectSetReason(set, metav1.ConditionFalse, syncv1alpha1.NangoUnavailableReason)
		intact()
		listing.Store(func(http.ResponseWriter, *http.Request) bool { return false })
		expectHandled(set, wakeSet(set))
		expectSetReason(set, metav1.ConditionTrue, syncv1alpha1.DiscoveredReason)

		By("keeping every NangoSync when a page is cut short: the targeted checks find the rest")
		sim.SetFaults(nangosim.Faults{ConnectionsPageCut: 1})
		expectHandled(set, wakeSet(set))
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), set)).To(Succeed())
			g.Expect(set.Status.Connections).To(BeEquivalentTo(3))
		}).Should(Succeed())
		expectSetReason(set, metav1.ConditionTrue, syncv1alpha1.DiscoveredReason)
		intact()
		sim.SetFaults(noFaults())

		By("keeping every NangoSync when the listing comes back empty and the targeted checks fail")
		listing.Store(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Query().Get("connectionId") != "" {
				w.WriteHeader(http.StatusBadGateway)
				return true
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"connections":[]}`))
			return true
		})
		wakeSet(set)
		expectSetReason(set, metav1.ConditionFalse, syncv1alpha1.NangoUnavailableReason)
		intact()

		By("keeping every NangoSync when the listing comes back empty and the targeted checks find them")
		listing.Store(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Query().Get("connectionId") != "" {
				return false
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"connections":[]}`))
			return true
		})
		expectHandled(set, wakeSet(set))
		expectSetReason(set, metav1.ConditionTrue, syncv1alpha1.DiscoveredReason)
		intact()
		listing.Store(func(http.ResponseWriter, *http.Request) bool { return false })

		By("deleting the NangoSyncs and rows of a connection Nango deleted, and no other rows")
		goneConn := f.connections[0]
		Expect(sim.DeleteConnection(nangosim.ConnectionRef{ProviderConfigKey: f.integration, ConnectionID: goneConn})).To(Succeed())
		expectHandled(set, wakeSet(set))
		expectAllReady(set, 2)
		Expect(set.Status.Connections).To(BeEquivalentTo(2))
		Eventually(func(g Gomega) {
			rows, err := snk.ReadRows(ctx, f.data[goneConn+"/Contact"].key())
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(rows).To(BeEmpty())
		}).WithTimeout(30 * time.Second).Should(Succeed())
		for _, conn := range f.connections[1:] {
			f.data[conn+"/Contact"].matches(Default, snk)
		}
	})

	It("releases the NangoSyncs of a connection no longer selected under goneConnectionPolicy Keep", func() {
		f := newSetFixture(2, "Contact")
		set := f.newSet(sqliteSinkSpec("contacts"))
		set.Spec.GoneConnectionPolicy = syncv1alpha1.GoneConnectionKeep
		createSet(set)
		children := expectAllReady(set, 2)

		retagged := f.connections[0]
		Expect(sim.SetConnectionTags(nangosim.ConnectionRef{ProviderConfigKey: f.integration, ConnectionID: retagged},
			map[string]string{"plan": "free"})).To(Succeed())
		expectHandled(set, wakeSet(set))
		expectAllReady(set, 1)
		var released *syncv1alpha1.NangoSync
		for i := range children {
			if children[i].Spec.ConnectionID == retagged {
				released = &children[i]
			}
		}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(released), released)).To(Succeed())
		Expect(released.DeletionTimestamp).To(BeNil())
		Expect(metav1.GetControllerOf(released)).To(BeNil())
		Expect(released.Labels).NotTo(HaveKey(syncv1alpha1.SyncSetLabel))
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, released))).To(Succeed()) })
	})

	It("shows failing credentials of a connection, reported by Nango's auth webhook, on its NangoSyncs without failing the copy", func() {
		f := newSetFixture(1, "Contact")
		set := f.newSet(sqliteSinkSpec("contacts"))
		createSet(set)
		child := expectAllReady(set, 1)[0]

		failure := `{"operation":"refresh","type":"refresh_token_external_error","description":"invalid_grant","failedAt":"2026-12-02T10:00:00Z"}`
		Expect(k8sClient.Patch(ctx, &child, client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(
			`{"metadata":{"annotations":{%q:%q}}}`, syncv1alpha1.NangoAuthFailureAnnotation, failure))))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&child), &child)).To(Succeed())
			auth := apimeta.FindStatusCondition(child.Status.Conditions, syncv1alpha1.NangoConnectionAuthorizedCondition)
			g.Expect(auth).NotTo(BeNil())
			g.Expect(auth.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(auth.Reason).To(Equal("refresh_token_external_error"))
			g.Expect(auth.Message).To(ContainSubstring("invalid_grant"))
		}).Should(Succeed())
		Expect(apimetaReady(&child)).To(BeTrue(), "the copy itself is still in sync")
		Eventually(func(g Gomega) []string { return eventReasons(g, &child) }).Should(ContainElement(syncv1alpha1.AuthFailedReason))

		By("clearing the condition once the connection is re-authorized (the receiver removes the annotation)")
		Expect(k8sClient.Patch(ctx, &child, client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(
			`{"metadata":{"annotations":{%q:null}}}`, syncv1alpha1.NangoAuthFailureAnnotation))))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&child), &child)).To(Succeed())
			g.Expect(apimeta.FindStatusCondition(child.Status.Conditions, syncv1alpha1.NangoConnectionAuthorizedCondition)).To(BeNil())
		}).Should(Succeed())
	})

	It("refuses an invalid NangoSyncSet at apply time, and a change of its integration", func() {
		valid := func() *syncv1alpha1.NangoSyncSet {
			return &syncv1alpha1.NangoSyncSet{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: uniqueName("set")},
				Spec: syncv1alpha1.NangoSyncSetSpec{
					ProviderConfigKey: "hubspot",
					Models:            []syncv1alpha1.SyncSetModel{{Model: "Contact"}},
					Template: syncv1alpha1.NangoSyncTemplate{Spec: syncv1alpha1.NangoSyncTemplateSpec{
						Sink: syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{Path: "/data/a.db", Table: "contacts"}},
					}},
				},
			}
		}
		for _, tc := range []struct {
			name   string
			mutate func(*syncv1alpha1.NangoSyncSet)
			says   string
		}{
			{"no models", func(s *syncv1alpha1.NangoSyncSet) { s.Spec.Models = nil }, "spec.models"},
			{"a model twice", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.Models = append(s.Spec.Models, syncv1alpha1.SyncSetModel{Model: "Contact", Variant: "base"})
			}, "Duplicate value"},
			{"a bad model name", func(s *syncv1alpha1.NangoSyncSet) { s.Spec.Models[0].Model = "contact" }, "spec.models[0].model"},
			{"an upper-case tag key", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.Selector = &syncv1alpha1.ConnectionSelector{Tags: map[string]string{"Plan": "pro"}}
			}, "Nango lowercases tag keys"},
			{"an empty tag value", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.Selector = &syncv1alpha1.ConnectionSelector{Tags: map[string]string{"plan": ""}}
			}, "1 to 255 characters"},
			{"two sinks", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.Template.Spec.Sink.Postgres = &syncv1alpha1.PostgresSink{Table: "t", URLSecretRef: syncv1alpha1.SecretKeyReference{Name: "pg", Key: "url"}}
			}, "exactly one sink kind"},
			{"a short interval", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.DiscoveryInterval = &metav1.Duration{Duration: time.Second}
			}, "discoveryInterval must be at least 10s"},
			{"an operator label", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.Template.Metadata.Labels = map[string]string{syncv1alpha1.SyncSetLabel: "x"}
			}, "set by the operator"},
			{"a label value of 64 characters", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.Template.Metadata.Labels = map[string]string{"team": strings.Repeat("c", 64)}
			}, "label values have at most 63 characters"},
			{"a label key with a space", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.Template.Metadata.Labels = map[string]string{"my team": "crm"}
			}, "label keys are qualified names"},
			{"a label key of 64 characters", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.Template.Metadata.Labels = map[string]string{strings.Repeat("k", 64): "crm"}
			}, "label keys are qualified names"},
			{"a label key with an upper-case prefix", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.Template.Metadata.Labels = map[string]string{"Example.com/team": "crm"}
			}, "label keys are qualified names"},
			{"a label key with an empty name", func(s *syncv1alpha1.NangoSyncSet) {
				s.Spec.Template.Metadata.Labels = map[string]string{"example.com/": "crm"}
			}, "label keys are qualified names"},
			{"a long name", func(s *syncv1alpha1.NangoSyncSet) { s.Name = strings.Repeat("s", 64) }, "at most 63 characters"},
			{"an unknown policy", func(s *syncv1alpha1.NangoSyncSet) { s.Spec.GoneConnectionPolicy = "Orphan" }, "goneConnectionPolicy"},
		} {
			s := valid()
			tc.mutate(s)
			err := k8sClient.Create(ctx, s)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: %v", tc.name, err)
			Expect(err.Error()).To(ContainSubstring(tc.says), tc.name)
		}

		s := valid()
		// Every form of label Kubernetes takes is taken.
		s.Spec.Template.Metadata.Labels = map[string]string{"app.kubernetes.io/part-of": "crm", "empty": "",
			strings.Repeat("k", 63): strings.Repeat("v", 63), strings.Repeat("p", 253) + "/" + strings.Repeat("n", 63): "A_b.c-1"}
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, s)).To(Succeed()) })
		Expect(s.Spec.Models[0].Variant).To(Equal("base"))
		Expect(s.Spec.GoneConnectionPolicy).To(Equal(syncv1alpha1.GoneConnectionDelete))
		s.Spec.ProviderConfigKey = "salesforce"
		err := k8sClient.Update(ctx, s)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("providerConfigKey is immutable"))
	})
})

var _ = Describe("SyncName", func() {
	It("is DNS-safe, at most 63 characters, and tells apart ids that read alike", func() {
		long := strings.Repeat("Ä.b/", 64)
		for _, id := range []string{"acme-corp", long, "ACME_corp", "acme corp", "----", "é"} {
			name := SyncName("my-set", "hubspot", id, "Contact", "")
			Expect(len(name)).To(BeNumerically("<=", 63), name)
			Expect(name).To(MatchRegexp(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`))
		}
		Expect(SyncName("s", "hubspot", "acme corp", "Contact", "")).NotTo(Equal(SyncName("s", "hubspot", "acme-corp", "Contact", "")))
		Expect(SyncName("s", "hubspot", "acme", "Contact", "")).To(Equal(SyncName("s", "hubspot", "acme", "Contact", "base")))
		Expect(SyncName("s", "hubspot", "acme", "Contact", "eu")).NotTo(Equal(SyncName("s", "hubspot", "acme", "Contact", "")))
	})
})
