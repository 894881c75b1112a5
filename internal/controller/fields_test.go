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
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink/fields"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
	"github.com/nango-operator/nango-operator/internal/testutil/sqlitedump"
)

// personalRecord is a contact whose personal fields all hold values unique to id and
// version, so that finding one in a dump names the field and record it came from.
func personalRecord(id string, version int) (record json.RawMessage, excluded, hashed []string) {
	v := func(field string) string { return fmt.Sprintf("%s-%s-v%d", field, id[:min(len(id), 12)], version) }
	excluded = []string{v("ssn"), v("street"), v("note")}
	hashed = []string{v("email") + "@example.com", v("phone-home"), v("phone-work")}
	record = json.RawMessage(fmt.Sprintf(`{"id":%q,"name":"Contact %d","ssn":%q,"address":{"street":%q,"city":"London"},`+
		`"notes":[{"text":%q}],"email":%q,"phones":[{"number":%q},{"number":%q}],"version":%d}`,
		id, version, excluded[0], excluded[1], excluded[2], hashed[0], hashed[1], hashed[2], version))
	return record, excluded, hashed
}

// dumpOf answers the whole database of an SQLite or PostgreSQL sink spec as text.
func dumpOf(spec syncv1alpha1.SinkSpec) string {
	GinkgoHelper()
	if spec.SQLite != nil {
		dump, err := sqlitedump.Dump(ctx, spec.SQLite.Path)
		Expect(err).NotTo(HaveOccurred())
		return dump
	}
	return pgtest.Dump(GinkgoTB(), postgresURL(spec))
}

var _ = Describe("Fields that never reach the sink", func() {
	DescribeTable("a dump of the whole database after syncs holds no excluded or hashed value, records, quarantine and checkpoints alike",
		func(sinkSpec func(table string) syncv1alpha1.SinkSpec) {
			d := newDataSet(uniqueName("pii"), "Contact")
			Expect(sim.CreateConnection(d.ref.ConnectionRef, "hubspot")).To(Succeed())
			const hmacKey = "an HMAC key of at least 32 bytes, for tests"
			keySecret := uniqueName("pii-key")
			createSecret(keySecret, "hmacKey", hmacKey)
			spec := sinkSpec("contacts")
			spec.History = true // the history table is searched too
			spec.Fields = &syncv1alpha1.FieldRules{
				Exclude:          []syncv1alpha1.FieldPath{"ssn", "address.street", "notes"},
				Hash:             []syncv1alpha1.FieldPath{"email", "phones.number"},
				HashKeySecretRef: &syncv1alpha1.SecretKeyReference{Name: keySecret, Key: "hmacKey"},
			}
			var excluded, hashed []string
			current := map[string][]string{} // the hashed values of each record's last version
			upsert := func(version int, ids ...string) {
				GinkgoHelper()
				records := make([]json.RawMessage, len(ids))
				for i, id := range ids {
					var e, h []string
					records[i], e, h = personalRecord(id, version)
					excluded, hashed = append(excluded, e...), append(hashed, h...)
					current[id] = h
				}
				_, err := sim.UpsertRecords(d.ref, records)
				Expect(err).NotTo(HaveOccurred())
			}
			// The last id is longer than any sink stores as an id: it goes to the quarantine.
			tooLong := strings.Repeat("q", 2000)
			upsert(1, "rec-1", "rec-2", "rec-3", tooLong)
			nsync := newNangoSyncFor(d, spec)
			nsync.Spec.PageSize = 2 // several pages, several checkpoints
			create(nsync)
			expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
			Expect(nsync.Status.Records.Total).To(Equal(int64(3)))

			By("syncing newer versions")
			upsert(2, "rec-1", tooLong)
			annotate(nsync, syncv1alpha1.RequestedAtAnnotation)
			Eventually(func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
				g.Expect(nsync.Status.Records.Updated).To(Equal(int64(1)))
			}).Should(Succeed())

			dump := dumpOf(spec)
			Expect(dump).To(ContainSubstring("nango_sync_checkpoints"))
			Expect(dump).To(ContainSubstring("nango_sync_quarantine"))
			Expect(dump).To(ContainSubstring(tooLong[:256]), "the quarantined record is in the dump")
			for _, value := range append(excluded, hashed...) {
				Expect(dump).NotTo(ContainSubstring(value))
			}
			for id, values := range current {
				for _, value := range values {
					Expect(dump).To(ContainSubstring(fields.Token([]byte(hmacKey), value)),
						"the hashed values of the last version of %.20s are in the dump as their tokens", id)
				}
			}
			_, _, first := personalRecord("rec-1", 1)
			Expect(dump).To(ContainSubstring(fields.Token([]byte(hmacKey), first[0])), "the history keeps the first version, hashed")
			Expect(dump).To(ContainSubstring("London"), "what no rule names is kept")
		},
		Entry("SQLite", sqliteSinkSpec),
		Entry("PostgreSQL", postgresSinkSpec),
	)
})
