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

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/postgres"
	"github.com/nango-operator/nango-operator/internal/sink/sinktest"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
)

// openHistory opens the sink of spec, with its history, for the test to read.
func openHistory(spec syncv1alpha1.SinkSpec) sinktest.HistorySink {
	GinkgoHelper()
	var (
		snk sinktest.HistorySink
		err error
	)
	switch {
	case spec.SQLite != nil:
		snk, err = sqlite.Open(ctx, spec.SQLite.Path, sqlite.Options{Table: spec.SQLite.Table, History: true})
	case spec.Postgres != nil:
		snk, err = postgres.Open(ctx, postgresURL(spec), postgres.Options{Table: spec.Postgres.Table, History: true})
	}
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(snk.Close)
	return snk
}

// postgresURL reads the URL of a PostgreSQL sink spec from its Secret.
func postgresURL(spec syncv1alpha1.SinkSpec) string {
	GinkgoHelper()
	secret := &corev1.Secret{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: syncNamespace, Name: spec.Postgres.URLSecretRef.Name}, secret)).To(Succeed())
	return string(secret.Data["url"])
}

// expectContiguous fails unless versions, all of one record, follow each other without gap
// or overlap, the last one current.
func expectContiguous(versions []sink.Version) {
	GinkgoHelper()
	for i, v := range versions {
		Expect(v.ValidFrom).To(BeTemporally("==", v.LastModifiedAt))
		if i == len(versions)-1 {
			Expect(v.ValidTo).To(BeNil(), "the last version of %q is current", v.ID)
			continue
		}
		Expect(v.ValidTo).NotTo(BeNil(), "version %d of %q is closed", i, v.ID)
		Expect(*v.ValidTo).To(BeTemporally("==", versions[i+1].ValidFrom), "version %d of %q ends where the next begins", i, v.ID)
	}
}

// byID groups versions by record id, in order.
func byID(versions []sink.Version) map[string][]sink.Version {
	out := map[string][]sink.Version{}
	for _, v := range versions {
		out[v.ID] = append(out[v.ID], v)
	}
	return out
}

var _ = Describe("History", func() {
	DescribeTable("5 versions of a record seen across syncs are 5 history rows with contiguous validity, crashes after a commit adding none",
		func(sinkSpec func(table string) syncv1alpha1.SinkSpec) {
			d := newDataSet(uniqueName("history"), "Contact")
			Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
			d.upsert(ids("rec", 0, 10), 1)
			spec := sinkSpec("contacts")
			spec.History = true
			nsync := newNangoSyncFor(d, spec)
			nsync.Spec.PageSize = 4

			By("crashing right after the sink committed the first page of the first sync")
			faults.arm(d.key(), 1, nil)
			create(nsync)
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
			for version := 2; version <= 5; version++ {
				By(fmt.Sprintf("syncing version %d of rec-000000 and rec-000001", version))
				d.upsert(ids("rec", 0, 2), version)
				if version == 3 {
					faults.arm(d.key(), 1, nil) // crash between the commit and the status patch again
				}
				annotate(nsync, syncv1alpha1.RequestedAtAnnotation)
				Eventually(func(g Gomega) {
					g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
					g.Expect(nsync.Status.Records.Updated).To(Equal(int64(2 * (version - 1))))
				}).Should(Succeed())
			}
			Eventually(func(g Gomega) { d.matches(g, openSink(spec)) }).Should(Succeed())

			versions, err := openHistory(spec).History(ctx, d.key())
			Expect(err).NotTo(HaveOccurred())
			records := byID(versions)
			Expect(records).To(HaveLen(10))
			for id, vs := range records {
				if id == "rec-000000" || id == "rec-000001" {
					Expect(vs).To(HaveLen(5), "versions of %s", id)
				} else {
					Expect(vs).To(HaveLen(1), "versions of %s", id)
				}
				expectContiguous(vs)
				Expect(sameJSON(vs[len(vs)-1].Payload, d.payload[id])).To(BeTrue(), "current payload of %s", id)
			}
			Expect(versions).To(HaveLen(18))
		},
		Entry("SQLite", sqliteSinkSpec),
		Entry("PostgreSQL", postgresSinkSpec),
	)

	It("turning history on keeps the cursor and the rows, and starts the history with them", func() {
		d, nsync := syncedNangoSync(sqliteSinkSpec("contacts"))
		cursor := nsync.Status.Cursor
		patch := client.MergeFrom(nsync.DeepCopy())
		nsync.Spec.Sink.History = true
		Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
		d.upsert(ids("rec", 0, 1), 2)
		annotate(nsync, syncv1alpha1.RequestedAtAnnotation)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
			g.Expect(nsync.Status.Records.Updated).To(Equal(int64(1)))
		}).Should(Succeed())
		Expect(nsync.Status.Cursor).NotTo(Equal(cursor))
		Expect(nsync.Status.Records.Added).To(Equal(int64(len(d.payload))), "nothing was read again")
		Expect(eventReasonsNow(nsync)).NotTo(ContainElement("SinkChanged"))

		versions, err := openHistory(nsync.Spec.Sink).History(ctx, d.key())
		Expect(err).NotTo(HaveOccurred())
		Expect(versions).To(HaveLen(len(d.payload) + 1))
		expectContiguous(byID(versions)["rec-000000"])
	})
})

// eventReasonsNow lists the reasons of the events about a NangoSync, once.
func eventReasonsNow(nsync *syncv1alpha1.NangoSync) []string {
	GinkgoHelper()
	var reasons []string
	Eventually(func(g Gomega) { reasons = eventReasons(g, nsync) }).Should(Succeed())
	return reasons
}
