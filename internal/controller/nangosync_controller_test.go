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
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/secretcache"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
	"github.com/nango-operator/nango-operator/internal/truncate"
)

var _ = Describe("NangoSync reconciler", func() {
	DescribeTable("copies several data sets into one shared table, then follows updates, deletes, undeletes and prunes",
		func(sinkSpec func(table string) syncv1alpha1.SinkSpec) {
			const total = 25000
			spec := sinkSpec("shared_records")
			connections := []string{uniqueName("acme"), uniqueName("globex")}
			models := []string{"Contact", "Company", "Deal"}

			By("giving the emulator 25,000 records across 2 connections and 3 models")
			sets := make([]*dataSet, 0, len(connections)*len(models))
			for _, conn := range connections {
				Expect(sim.CreateConnection(newDataSet(conn, "").ref.ConnectionRef, "hubspot")).To(Succeed())
				for _, model := range models {
					sets = append(sets, newDataSet(conn, model))
				}
			}
			for i, d := range sets {
				n := total / len(sets)
				if i == 0 {
					n += total % len(sets)
				}
				d.upsert(ids("rec", 0, n), 1)
			}

			By("syncing each data set with a NangoSync of its own, all into one table")
			syncs := make([]*syncv1alpha1.NangoSync, len(sets))
			for i, d := range sets {
				syncs[i] = newNangoSyncFor(d, spec)
				create(syncs[i])
			}
			snk := openSink(spec)
			for i, d := range sets {
				expectReason(syncs[i], metav1.ConditionTrue, syncv1alpha1.SyncedReason)
				Expect(syncs[i].Status.Records.Total).To(Equal(int64(len(d.payload))))
				Expect(syncs[i].Status.Cursor).NotTo(BeEmpty())
				Eventually(func(g Gomega) { d.matches(g, snk) }).Should(Succeed())
			}

			By("updating, deleting, undeleting and pruning records at the source, then asking for a sync")
			for _, d := range sets {
				d.upsert(ids("rec", 0, 50), 2)   // updated
				d.delete(ids("rec", 100, 30))    // deleted
				d.upsert(ids("rec", 100, 10), 3) // deleted, then back: ADDED again
				d.prune(ids("rec", 200, 20))     // pruned: the sink keeps their fields
				d.upsert(ids("new", 0, 5), 1)    // added
			}
			for _, nsync := range syncs {
				annotate(nsync, syncv1alpha1.RequestedAtAnnotation)
			}
			for _, d := range sets {
				Eventually(func(g Gomega) { d.matches(g, snk) }).WithTimeout(60 * time.Second).Should(Succeed())
			}

			By("reading everything again on resync, pruned records included, without blanking a field")
			value := annotate(syncs[0], syncv1alpha1.ResyncAnnotation)
			Eventually(func(g Gomega) {
				g.Expect(readyCondition(g, syncs[0])).NotTo(BeNil())
				g.Expect(syncs[0].Status.LastHandledResyncAt).To(Equal(value))
				g.Expect(syncs[0].Status.Records.Total).To(BeNumerically(">=", len(sets[0].payload)))
				g.Expect(apimetaReady(syncs[0])).To(BeTrue())
			}).WithTimeout(60 * time.Second).Should(Succeed())
			Eventually(func(g Gomega) { sets[0].matches(g, snk) }).Should(Succeed())
		},
		Entry("SQLite", sqliteSinkSpec),
		Entry("PostgreSQL", postgresSinkSpec),
		Entry("HTTP", httpSinkSpec),
	)

	It("syncs at once on an in-process wake, and reads Nango once for it and its annotation", func() {
		d, snk, nsync := contactsIntoSQLite("hooli", 10)
		create(nsync)
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		key := client.ObjectKeyFromObject(nsync)

		By("syncing new records on the in-process wake alone, before any annotation")
		d.upsert(ids("new", 0, 5), 1)
		logPosition := nangoRequests.len()
		requestedAt := time.Now().UTC().Format(time.RFC3339Nano)
		theReconciler.WakeInProcess(key, requestedAt)
		Eventually(func(g Gomega) { d.matches(g, snk) }).WithTimeout(10 * time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key, nsync)).To(Succeed())
			g.Expect(nsync.Status.LastHandledRequestedAt).To(Equal(requestedAt))
			g.Expect(nsync.Status.Records.Total).To(Equal(int64(15)))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		Expect(theReconciler.wakes.echoPending(key)).To(BeTrue(), "the annotation is still to come")

		By("skipping the sync that the same request's annotation asks for")
		patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`,
			syncv1alpha1.RequestedAtAnnotation, requestedAt))
		Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
		Eventually(func() bool { return theReconciler.wakes.echoPending(key) }).WithTimeout(10 * time.Second).Should(BeFalse())
		Expect(nangoRequests.since(logPosition, d.ref.ConnectionID)).To(HaveLen(1))

		By("syncing again for a later request from another replica")
		d.upsert(ids("later", 0, 1), 1)
		annotate(nsync, syncv1alpha1.RequestedAtAnnotation)
		Eventually(func(g Gomega) { d.matches(g, snk) }).WithTimeout(10 * time.Second).Should(Succeed())
		Expect(nangoRequests.since(logPosition, d.ref.ConnectionID)).To(HaveLen(2))

		By("syncing when the served request's annotation comes with a spec change")
		requestedAt = time.Now().UTC().Format(time.RFC3339Nano)
		theReconciler.WakeInProcess(key, requestedAt)
		Eventually(func() bool { return theReconciler.wakes.echoPending(key) }).WithTimeout(10 * time.Second).Should(BeTrue())
		Expect(nangoRequests.since(logPosition, d.ref.ConnectionID)).To(HaveLen(3))
		patch = client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}},"spec":{"pageSize":500}}`,
			syncv1alpha1.RequestedAtAnnotation, requestedAt))
		Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key, nsync)).To(Succeed())
			g.Expect(nsync.Status.ObservedGeneration).To(Equal(nsync.Generation))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		Expect(nangoRequests.since(logPosition, d.ref.ConnectionID)).To(HaveLen(4))
	})

	It("resumes from the sink's checkpoint after a crash between the sink commit and the status patch", func() {
		d, snk, nsync := contactsIntoSQLite("initech", 3000)

		By("crashing once, right after the sink committed the first page")
		crashedAt := make(chan int, 1)
		faults.arm(d.key(), 1, func() { crashedAt <- nangoRequests.len() })
		create(nsync)
		var logPosition int
		Eventually(crashedAt).WithTimeout(30 * time.Second).Should(Receive(&logPosition))
		checkpoint, err := snk.Checkpoint(ctx, d.key())
		Expect(err).NotTo(HaveOccurred())
		Expect(checkpoint.Cursor).NotTo(BeEmpty(), "the sink committed the first page and its checkpoint")
		Expect(checkpoint.Written.Added).To(BeNumerically(">", 0), "the sink counted the first page")

		By("reading on from the sink's checkpoint, not from the older status.cursor")
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		Expect(nsync.Status.Records).To(Equal(syncv1alpha1.RecordCounts{Added: 3000, Total: 3000}),
			"status.records counts the page whose status patch the crash lost, once")
		Eventually(func(g Gomega) { d.matches(g, snk) }).Should(Succeed())
		requests := nangoRequests.since(logPosition, d.ref.ConnectionID)
		cursors := make([]string, len(requests))
		for i, r := range requests {
			cursors[i] = r.cursor
		}
		Expect(cursors).NotTo(ContainElement(""), "a request after the crash started over: the first page was read twice")
		Expect(cursors).To(ContainElement(checkpoint.Cursor))
	})

	Describe("failures show as conditions, back off, and recover once fixed, the cursor untouched", func() {
		synced := syncedNangoSyncWith
		// expectFailure asks for a sync and waits for the failure, the cursor where it was.
		expectFailure := func(nsync *syncv1alpha1.NangoSync, reason string, stalled bool) {
			GinkgoHelper()
			cursor := nsync.Status.Cursor
			annotate(nsync, syncv1alpha1.RequestedAtAnnotation)
			expectReason(nsync, metav1.ConditionFalse, reason)
			Expect(nsync.Status.Cursor).To(Equal(cursor))
			Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(Equal(stalled))
			out := runKubectl("get", "nangosyncs", "--namespace", syncNamespace, nsync.Name, "-o", "wide")
			Expect(out).To(MatchRegexp(`(?m)^%s\s.*\sFalse\s+%s\s`, nsync.Name, reason))
		}

		It("SecretNotFound until the Nango Secret exists", func() {
			secretName := uniqueName("nango-key")
			d := newDataSet(uniqueName("umbrella"), "Contact")
			Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
			d.upsert(ids("rec", 0, 10), 1)
			nsync := newNangoSyncFor(d, sqliteSinkSpec("contacts"))
			nsync.Spec.Nango = &syncv1alpha1.NangoEndpoint{SecretRef: &syncv1alpha1.SecretKeyReference{Name: secretName, Key: "secretKey"}}
			create(nsync)
			expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.SecretNotFoundReason)
			Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(BeTrue())
			Expect(readyMessage(nsync)).To(ContainSubstring("Secret sync/" + secretName + " not found"))
			Expect(nsync.Status.Cursor).To(BeEmpty())

			createSecret(secretName, "secretKey", simSecretKey())
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
			Expect(nsync.Status.Records.Total).To(Equal(int64(10)))
		})

		It("Unauthorized while the Secret holds a wrong key, without printing it", func() {
			secretName := uniqueName("nango-key")
			createSecret(secretName, "secretKey", simSecretKey())
			_, nsync := synced(sqliteSinkSpec("contacts"), func(n *syncv1alpha1.NangoSync) {
				n.Spec.Nango = &syncv1alpha1.NangoEndpoint{SecretRef: &syncv1alpha1.SecretKeyReference{Name: secretName, Key: "secretKey"}}
			})
			const wrongKey = "3f1c8a52-0a4b-4c61-9d7e-5b2a7c9e1f00"
			updateSecret(secretName, "secretKey", wrongKey)
			expectFailure(nsync, syncv1alpha1.UnauthorizedReason, true)
			Expect(readyMessage(nsync)).NotTo(ContainSubstring(wrongKey))

			updateSecret(secretName, "secretKey", simSecretKey())
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		})

		It("UnknownConnection until the connection exists in Nango", func() {
			d := newDataSet(uniqueName("soylent"), "Contact")
			nsync := newNangoSyncFor(d, sqliteSinkSpec("contacts"))
			create(nsync)
			expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.UnknownConnectionReason)
			Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(BeTrue())

			By("backing off: a hot loop would ask Nango hundreds of times in three seconds")
			from := nangoRequests.len()
			Consistently(func() int { return len(nangoRequests.since(from, d.ref.ConnectionID)) }).
				WithTimeout(3 * time.Second).Should(BeNumerically("<", 15))

			By("recovering on its own, by backoff, once the connection is created")
			Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
			d.upsert(ids("rec", 0, 10), 1)
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		})

		It("SinkUnavailable while PostgreSQL is down", func() {
			server := pgtest.StartServer(GinkgoTB())
			Expect(server.CreateDatabase(ctx, "sink")).To(Succeed())
			spec := postgresSinkSpecFor(server.DSN("sink"), "contacts")
			d, nsync := synced(spec, nil)

			Expect(server.Stop(ctx)).To(Succeed())
			d.upsert(ids("late", 0, 20), 1)
			expectFailure(nsync, syncv1alpha1.SinkUnavailableReason, false)

			Expect(server.Start(ctx)).To(Succeed())
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
			Eventually(func(g Gomega) { d.matches(g, openSink(spec)) }).Should(Succeed())
		})

		It("NangoURLNotAllowed, Stalled, for a Nango URL the admin did not allow, without reading its Secret or calling it", func() {
			var calls atomic.Int32
			elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				calls.Add(1)
				w.WriteHeader(http.StatusOK)
			}))
			DeferCleanup(elsewhere.Close)
			nsync := newNangoSyncFor(newDataSet(uniqueName("exfil"), "Contact"), sqliteSinkSpec("contacts"))
			nsync.Spec.Nango = &syncv1alpha1.NangoEndpoint{URL: elsewhere.URL,
				// A Secret that does not exist: SecretNotFound would mean it was looked up.
				SecretRef: &syncv1alpha1.SecretKeyReference{Name: uniqueName("db-admin"), Key: "password"}}
			create(nsync)
			expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.NangoURLNotAllowedReason)
			Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(BeTrue())
			Expect(readyMessage(nsync)).To(ContainSubstring("--allowed-nango-urls"))
			Expect(calls.Load()).To(BeZero())

			By("syncing once spec.nango.url names an allowed Nango")
			patch := client.MergeFrom(nsync.DeepCopy())
			nsync.Spec.Nango = nil
			Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
			expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.UnknownConnectionReason)
			Expect(calls.Load()).To(BeZero())
		})

		It("SinkRefused, Stalled, while the PostgreSQL role lacks a privilege, until it is granted", func() {
			dsn := pgtest.NewDatabase(GinkgoTB())
			By("letting a DBA create the tables and give the operator's role SELECT alone")
			openSink(postgresSinkSpecFor(dsn, "contacts"))
			role := strings.ReplaceAll(uniqueName("reader"), "-", "_")
			execSQL(dsn, "CREATE ROLE "+role+" LOGIN",
				"GRANT SELECT ON contacts, nango_sync_checkpoints, nango_sync_layout TO "+role)
			roleDSN, err := url.Parse(dsn)
			Expect(err).NotTo(HaveOccurred())
			roleDSN.User = url.User(role)

			d := newDataSet(uniqueName("hooli"), "Contact")
			Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
			d.upsert(ids("rec", 0, 10), 1)
			nsync := newNangoSyncFor(d, postgresSinkSpecFor(roleDSN.String(), "contacts"))
			create(nsync)
			expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.SinkRefusedReason)
			Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(BeTrue())
			Expect(readyMessage(nsync)).To(ContainSubstring("permission denied"))
			Expect(readyMessage(nsync)).To(ContainSubstring("Grant"))
			Expect(nsync.Status.Cursor).To(BeEmpty())

			execSQL(dsn, "GRANT INSERT, UPDATE, DELETE ON contacts, nango_sync_checkpoints TO "+role)
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
			Expect(nsync.Status.Records.Total).To(Equal(int64(10)))
		})

		It("SinkRefused, Stalled, while the table has another shape than the operator's, until the spec names a new one", func() {
			dsn := pgtest.NewDatabase(GinkgoTB())
			execSQL(dsn, "CREATE TABLE contacts (id text PRIMARY KEY, name text)")
			d := newDataSet(uniqueName("initech"), "Contact")
			Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
			d.upsert(ids("rec", 0, 10), 1)
			nsync := newNangoSyncFor(d, postgresSinkSpecFor(dsn, "contacts"))
			create(nsync)
			expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.SinkRefusedReason)
			Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(BeTrue())
			Expect(readyMessage(nsync)).To(ContainSubstring("another shape"))
			Expect(readyMessage(nsync)).To(ContainSubstring("spec.sink.postgres.table"))

			patch := client.MergeFrom(nsync.DeepCopy())
			nsync.Spec.Sink.Postgres.Table = "nango_contacts"
			Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
			Expect(nsync.Status.Records.Total).To(Equal(int64(10)))
		})

		It("InvalidCursor while Nango fails on the stored cursor, until a resync", func() {
			spec := sqliteSinkSpec("contacts")
			d, nsync := synced(spec, nil)
			By("corrupting the checkpoint in the sink")
			_, err := openSink(spec).WritePage(ctx, d.key(), sinkPage(nsync, "bm90IGEgY3Vyc29y"))
			Expect(err).NotTo(HaveOccurred())
			cursorBefore := nsync.Status.Cursor
			annotate(nsync, syncv1alpha1.RequestedAtAnnotation)
			expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.InvalidCursorReason)
			Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(BeTrue())
			Expect(readyMessage(nsync)).To(ContainSubstring(syncv1alpha1.ResyncAnnotation))
			Expect(cursorBefore).NotTo(BeEmpty())

			annotate(nsync, syncv1alpha1.ResyncAnnotation)
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
			Eventually(func(g Gomega) { d.matches(g, openSink(spec)) }).Should(Succeed())
		})

		It("NangoUnavailable, within the reconcile timeout, while Nango accepts requests and never answers", func() {
			otherNangoAnswers(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
			nsync := newNangoSyncFor(newDataSet(uniqueName("silent"), "Contact"), sqliteSinkSpec("contacts"))
			nsync.Spec.Nango = &syncv1alpha1.NangoEndpoint{URL: otherNango.URL}
			create(nsync)
			Eventually(func(g Gomega) {
				g.Expect(readyCondition(g, nsync)).To(HaveField("Reason", syncv1alpha1.NangoUnavailableReason))
			}).WithTimeout(2 * reconcileTimeout).Should(Succeed())
			Expect(readyMessage(nsync)).To(ContainSubstring("deadline"))
		})

		It("RateLimited through a storm of 429s", func() {
			_, nsync := synced(sqliteSinkSpec("contacts"), nil)
			sim.SetFaults(nangosimFaults429())
			DeferCleanup(sim.SetFaults, noFaults())
			expectFailure(nsync, syncv1alpha1.RateLimitedReason, false)

			sim.SetFaults(noFaults())
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		})
	})

	It("asks Nango for one reset per resync, however often resetting the checkpoint fails", func() {
		syncName := uniqueName("contacts")
		d, nsync := syncedNangoSyncWith(sqliteSinkSpec("contacts"), func(n *syncv1alpha1.NangoSync) { n.Spec.SyncName = syncName })
		Expect(sim.CreateSync(nangosim.SyncSpec{ProviderConfigKey: d.ref.ProviderConfigKey, Name: syncName, Models: []string{"Contact"}})).To(Succeed())
		triggersOf := func() (n int) {
			for _, t := range sim.Triggers() {
				if t.ConnectionID == d.ref.ConnectionID && t.Reset {
					n++
				}
			}
			return n
		}
		faults.failResetCheckpoint(d.key(), 3)
		requested := annotate(nsync, syncv1alpha1.ResyncAnnotation)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
			g.Expect(nsync.Status.LastHandledResyncAt).To(Equal(requested))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		Expect(triggersOf()).To(Equal(1), "resets Nango was asked for")
	})

	It("keeps its data set through a resync: while the reset sync cannot read Nango, a second NangoSync of it stalls with Conflict", func() {
		spec := sqliteSinkSpec("contacts")
		d, first := syncedNangoSync(spec)
		sim.SetFaults(nangosimFaults429())
		DeferCleanup(sim.SetFaults, noFaults())
		requested := annotate(first, syncv1alpha1.ResyncAnnotation)
		snk := openSink(spec)
		Eventually(func(g Gomega) {
			checkpoint, err := snk.Checkpoint(ctx, d.key())
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(checkpoint.Cursor).To(BeEmpty(), "the resync has not forgotten the cursor yet")
			g.Expect(checkpoint.Owner.UID).To(Equal(string(first.UID)), "the resync gave the data set away")
		}).Should(Succeed())

		second := newNangoSyncFor(d, spec)
		create(second)
		expectReason(second, metav1.ConditionFalse, syncv1alpha1.ConflictReason)
		Expect(readyMessage(second)).To(ContainSubstring(string(first.UID)))

		sim.SetFaults(noFaults())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(first), first)).To(Succeed())
			g.Expect(first.Status.LastHandledResyncAt).To(Equal(requested))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		expectReason(first, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		Eventually(func(g Gomega) { d.matches(g, snk) }).Should(Succeed())
	})

	It("writes the rest of a page when a sink quarantines a record, and says so in a Warning event", func() {
		d := newDataSet(uniqueName("quarantine"), "Contact")
		Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
		d.upsert(ids("rec", 0, 10), 1)
		d.upsert([]string{strings.Repeat("x", 2000)}, 1) // longer than any sink stores as an id
		nsync := newNangoSyncFor(d, sqliteSinkSpec("contacts"))
		create(nsync)
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		Expect(nsync.Status.Records.Total).To(Equal(int64(10)))
		Eventually(func(g Gomega) []string { return eventReasons(g, nsync) }).Should(ContainElement("RecordsQuarantined"))
	})

	It("reads only Secrets labelled for NangoSyncs when the operator requires the opt-in", func() {
		reads := &countingReader{Reader: k8sClient}
		strict := &NangoSyncReconciler{Client: theReconciler.Client, Secrets: secretcache.New(theReconciler.Client, reads),
			Options: Options{RequireSecretOptIn: true}}
		name := uniqueName("db-admin")
		createSecret(name, "password", "s3cret")
		nsync := &syncv1alpha1.NangoSync{ObjectMeta: metav1.ObjectMeta{Namespace: syncNamespace, Name: "any"}}
		ref := syncv1alpha1.SecretKeyReference{Name: name, Key: "password"}

		Eventually(func(g Gomega) {
			_, err := strict.readSecretKey(ctx, nsync, ref)
			var refused *policyError
			g.Expect(errors.As(err, &refused)).To(BeTrue(), "got %v", err)
			g.Expect(classify(err).reason).To(Equal(syncv1alpha1.SecretNotOptedInReason))
			g.Expect(classify(err).stalled).To(BeTrue())
			g.Expect(err.Error()).To(ContainSubstring(syncv1alpha1.SecretOptInLabel))
		}).Should(Succeed())
		Expect(reads.secrets.Load()).To(BeZero(), "the data of a Secret not opted in was read")

		secret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: syncNamespace, Name: name}, secret)).To(Succeed())
		secret.Labels = map[string]string{syncv1alpha1.SecretOptInLabel: "true"}
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		Eventually(func() (string, error) { return strict.readSecretKey(ctx, nsync, ref) }).Should(Equal("s3cret"))
	})

	It("shows a suspended NangoSync as Ready=False, reason Suspended, with its generation observed, and resumes it", func() {
		d, nsync := syncedNangoSync(sqliteSinkSpec("contacts"))
		patch := client.MergeFrom(nsync.DeepCopy())
		nsync.Spec.Suspend = true
		Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
		expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.SuspendedReason)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
			g.Expect(nsync.Status.ObservedGeneration).To(Equal(nsync.Generation))
		}).Should(Succeed())
		Expect(readyMessage(nsync)).To(ContainSubstring("spec.suspend"))
		Expect(conditionTrue(nsync, syncv1alpha1.ReconcilingCondition)).To(BeFalse())
		Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(BeFalse())
		out := runKubectl("get", "nangosyncs", "--namespace", syncNamespace, nsync.Name, "-o", "wide")
		Expect(out).To(MatchRegexp(`(?m)^%s\s.*\sFalse\s+%s\s`, nsync.Name, syncv1alpha1.SuspendedReason))

		By("reading nothing from Nango while suspended, even when asked to sync now")
		d.upsert(ids("late", 0, 5), 1)
		from := nangoRequests.len()
		annotate(nsync, syncv1alpha1.RequestedAtAnnotation)
		Consistently(func() int { return len(nangoRequests.since(from, d.ref.ConnectionID)) }).
			WithTimeout(time.Second).Should(BeZero())

		patch = client.MergeFrom(nsync.DeepCopy())
		nsync.Spec.Suspend = false
		Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		Eventually(func(g Gomega) { d.matches(g, openSink(nsync.Spec.Sink)) }).Should(Succeed())
	})

	It("keeps condition messages and event notes within what the API server accepts when Nango answers with a huge error", func() {
		huge := strings.Repeat("é", 20000) + strings.Repeat("x", 20000) // 40,000 characters, 60,000 bytes
		otherNangoAnswers(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "invalid_request", "message": huge}})
		})
		nsync := newNangoSyncFor(newDataSet(uniqueName("hugeerror"), "Contact"), sqliteSinkSpec("contacts"))
		nsync.Spec.Nango = &syncv1alpha1.NangoEndpoint{URL: otherNango.URL}
		create(nsync)
		expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.InvalidRequestReason)
		Expect(len(readyMessage(nsync))).To(BeNumerically("<=", maxConditionMessage))
		Expect(utf8.ValidString(readyMessage(nsync))).To(BeTrue())
		Expect(readyMessage(nsync)).To(ContainSubstring("é"+truncate.Ellipsis), "the Nango client keeps a few hundred bytes of Nango's message")
		Eventually(func(g Gomega) []string { return eventReasons(g, nsync) }).
			Should(ContainElement(syncv1alpha1.InvalidRequestReason), "the Warning event was refused by the API server")
	})

	It("shows a failed Nango run reported by webhook as a condition and a Warning event", func() {
		_, nsync := syncedNangoSync(sqliteSinkSpec("contacts"))
		failure := `{"type":"script_error","description":"HubSpot answered 502","syncName":"contacts","failedAt":"2026-11-26T10:00:00Z"}`
		patch := client.MergeFrom(nsync.DeepCopy())
		nsync.Annotations = map[string]string{syncv1alpha1.NangoRunFailureAnnotation: failure}
		Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())

		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
			run := apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.NangoRunSucceededCondition)
			g.Expect(run).NotTo(BeNil())
			g.Expect(run.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(run.Reason).To(Equal("script_error"))
			g.Expect(run.Message).To(ContainSubstring("HubSpot answered 502"))
		}).Should(Succeed())
		Expect(conditionTrue(nsync, syncv1alpha1.ReadyCondition)).To(BeTrue(), "the copy itself is still in sync")
		Eventually(func(g Gomega) {
			g.Expect(eventReasons(g, nsync)).To(ContainElement(syncv1alpha1.SyncFailedReason))
		}).Should(Succeed())

		By("setting the condition True once the annotation is gone (a later run succeeded)")
		patch = client.MergeFrom(nsync.DeepCopy())
		delete(nsync.Annotations, syncv1alpha1.NangoRunFailureAnnotation)
		Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
			run := apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.NangoRunSucceededCondition)
			g.Expect(run).NotTo(BeNil())
			g.Expect(run.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(run.Reason).To(Equal(syncv1alpha1.NoFailureReportedReason))
		}).Should(Succeed())
	})

	DescribeTable("cleans the sink on deletion as deletionPolicy says",
		func(policy string, rowsLeft int) {
			spec := sqliteSinkSpec("contacts")
			d, nsync := syncedNangoSync(spec)
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
			Expect(nsync.Finalizers).To(ContainElement(syncv1alpha1.NangoSyncFinalizer))
			Eventually(func(g Gomega) {
				synced, ok := lastSuccess(g, nsync)
				g.Expect(ok).To(BeTrue(), "no last-success metric for a synced NangoSync")
				g.Expect(synced).To(BeTemporally("~", time.Now(), time.Minute))
			}).Should(Succeed())
			patch := client.MergeFrom(nsync.DeepCopy())
			nsync.Spec.DeletionPolicy = policy
			Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())

			Expect(k8sClient.Delete(ctx, nsync)).To(Succeed())
			Eventually(func() error {
				return k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)
			}).WithTimeout(30 * time.Second).Should(Satisfy(apierrors.IsNotFound))

			snk := openSink(spec)
			rows, err := snk.ReadRows(ctx, d.key())
			Expect(err).NotTo(HaveOccurred())
			Expect(rows).To(HaveLen(rowsLeft))
			checkpoint, err := snk.Checkpoint(ctx, d.key())
			Expect(err).NotTo(HaveOccurred())
			Expect(checkpoint).To(BeZero(), "the checkpoint outlived its NangoSync")
			Eventually(func(g Gomega) {
				_, ok := lastSuccess(g, nsync)
				g.Expect(ok).To(BeFalse(), "the metric outlived its NangoSync")
			}).Should(Succeed())
		},
		Entry("Retain keeps the rows", syncv1alpha1.DeletionPolicyRetain, 1500),
		Entry("Delete removes them", syncv1alpha1.DeletionPolicyDelete, 0),
	)

	DescribeTable("gives a data set in a table one owner: a second NangoSync of it stalls with reason Conflict, and its deletion touches nothing",
		func(sinkSpec func(table string) syncv1alpha1.SinkSpec, policy string) {
			spec := sinkSpec("contacts")
			d, first := syncedNangoSync(spec)
			snk := openSink(spec)
			owned, err := snk.Checkpoint(ctx, d.key())
			Expect(err).NotTo(HaveOccurred())
			Expect(owned.Owner.UID).To(Equal(string(first.UID)))
			Expect(owned.Owner.Name).To(Equal(first.Namespace + "/" + first.Name))

			By("stalling a second NangoSync of the same data set and table, naming the owner, its status without the owner's cursor")
			second := newNangoSyncFor(d, spec)
			second.Spec.DeletionPolicy = policy
			create(second)
			expectReason(second, metav1.ConditionFalse, syncv1alpha1.ConflictReason)
			Expect(conditionTrue(second, syncv1alpha1.StalledCondition)).To(BeTrue())
			Expect(readyMessage(second)).To(ContainSubstring(first.Namespace + "/" + first.Name))
			Expect(readyMessage(second)).To(ContainSubstring(string(first.UID)))
			Expect(second.Status.Cursor).To(BeEmpty())
			Expect(second.Status.Records).To(BeZero())
			Eventually(func(g Gomega) []string { return eventReasons(g, second) }).
				Should(ContainElement(syncv1alpha1.ConflictReason))

			By("deleting the second NangoSync without touching the owner's rows or checkpoint")
			Expect(k8sClient.Delete(ctx, second)).To(Succeed())
			Eventually(func() error {
				return k8sClient.Get(ctx, client.ObjectKeyFromObject(second), second)
			}).WithTimeout(30 * time.Second).Should(Satisfy(apierrors.IsNotFound))
			checkpoint, err := snk.Checkpoint(ctx, d.key())
			Expect(err).NotTo(HaveOccurred())
			Expect(checkpoint).To(Equal(owned))
			Eventually(func(g Gomega) { d.matches(g, snk) }).Should(Succeed())

			By("syncing the owner on as before")
			d.upsert(ids("new", 0, 5), 1)
			annotate(first, syncv1alpha1.RequestedAtAnnotation)
			Eventually(func(g Gomega) { d.matches(g, snk) }).WithTimeout(30 * time.Second).Should(Succeed())
			expectReason(first, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		},
		Entry("SQLite, Retain", sqliteSinkSpec, syncv1alpha1.DeletionPolicyRetain),
		Entry("SQLite, Delete", sqliteSinkSpec, syncv1alpha1.DeletionPolicyDelete),
		Entry("PostgreSQL, Retain", postgresSinkSpec, syncv1alpha1.DeletionPolicyRetain),
		Entry("PostgreSQL, Delete", postgresSinkSpec, syncv1alpha1.DeletionPolicyDelete),
	)

	DescribeTable("leaves the previous sink as deletion would when spec.sink changes",
		func(policy string, rowsLeft int) {
			oldSpec := sqliteSinkSpec("contacts")
			d, nsync := syncedNangoSyncWith(oldSpec, func(n *syncv1alpha1.NangoSync) { n.Spec.DeletionPolicy = policy })
			Expect(nsync.Status.Records.Total).To(BeNumerically(">", 0))

			newSpec := postgresSinkSpec("contacts")
			patch := client.MergeFrom(nsync.DeepCopy())
			nsync.Spec.Sink = newSpec
			Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
			Eventually(func(g Gomega) { d.matches(g, openSink(newSpec)) }).Should(Succeed())
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)

			old := openSink(oldSpec)
			Eventually(func(g Gomega) {
				checkpoint, err := old.Checkpoint(ctx, d.key())
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(checkpoint).To(BeZero(), "the checkpoint stayed in the previous sink")
			}).Should(Succeed())
			rows, err := old.ReadRows(ctx, d.key())
			Expect(err).NotTo(HaveOccurred())
			if rowsLeft < 0 {
				Expect(rows).To(HaveLen(len(d.payload)))
			} else {
				Expect(rows).To(HaveLen(rowsLeft))
			}
			Eventually(func(g Gomega) []string { return eventReasons(g, nsync) }).Should(ContainElement("SinkChanged"))
		},
		Entry("Retain keeps the rows", syncv1alpha1.DeletionPolicyRetain, -1),
		Entry("Delete removes them", syncv1alpha1.DeletionPolicyDelete, 0),
	)

	It("waits to clean an unreachable sink before deletion, with a Warning event, until a person removes the finalizer", func() {
		server := pgtest.StartServer(GinkgoTB())
		Expect(server.CreateDatabase(ctx, "sink")).To(Succeed())
		_, nsync := syncedNangoSync(postgresSinkSpecFor(server.DSN("sink"), "contacts"))
		Expect(server.Stop(ctx)).To(Succeed())

		Expect(k8sClient.Delete(ctx, nsync)).To(Succeed())
		Eventually(func(g Gomega) []string { return eventReasons(g, nsync) }).
			Should(ContainElement(syncv1alpha1.SinkUnavailableReason))
		By("retrying the cleanup, and keeping the NangoSync while it fails")
		attempts := faults.checkpointDeletes.Load()
		Eventually(faults.checkpointDeletes.Load).WithTimeout(10 * time.Second).Should(BeNumerically(">=", attempts+2))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed(),
			"deleted without cleaning a sink that may come back")

		By("letting it go once a person removes the finalizer, as the README says")
		runKubectl("patch", "nangosync", nsync.Name, "--namespace", syncNamespace, "--type", "json",
			"-p", `[{"op":"remove","path":"/metadata/finalizers"}]`)
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)
		}).WithTimeout(10 * time.Second).Should(Satisfy(apierrors.IsNotFound))
	})

	It("lets small syncs finish while a huge one is still reading", func() {
		big := newDataSet(uniqueName("megacorp"), "Contact")
		Expect(sim.CreateConnection(big.ref.ConnectionRef, "hubspot")).To(Succeed())
		_, err := sim.SeedRecords(big.ref, seedOptions(200000))
		Expect(err).NotTo(HaveOccurred())
		bigSync := newNangoSyncFor(big, sqliteSinkSpec("contacts"))
		bigSync.Spec.PageSize = 500

		smallSpec := sqliteSinkSpec("contacts")
		smalls := make([]*syncv1alpha1.NangoSync, 0, 50)
		for range 50 {
			d := newDataSet(uniqueName("smallco"), "Contact")
			Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
			d.upsert(ids("rec", 0, 100), 1)
			smalls = append(smalls, newNangoSyncFor(d, smallSpec))
		}

		create(bigSync)
		for _, s := range smalls {
			create(s)
		}
		for _, s := range smalls {
			expectReason(s, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(bigSync), bigSync)).To(Succeed())
		Expect(conditionTrue(bigSync, syncv1alpha1.ReadyCondition)).To(BeFalse(),
			"the big sync finished before the small ones: fairness was not tested")
		Expect(conditionTrue(bigSync, syncv1alpha1.ReconcilingCondition)).To(BeTrue())

		expectReason(bigSync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		Expect(bigSync.Status.Records.Total).To(Equal(int64(200000)))
	})
})
