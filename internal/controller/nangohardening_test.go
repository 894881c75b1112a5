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
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// Issue 14: a Nango server that misbehaves stops only the NangoSyncs that read from it,
// with a reason a person can act on.
var _ = Describe("NangoSync reconciler against a Nango that misbehaves", func() {
	It("is InvalidCursor, Stalled, after one request when Nango's next_cursor never advances (item 10)", func() {
		stuck := base64.StdEncoding.EncodeToString([]byte("2026-04-14T18:46:03.097459+00:00||15ccc805-64d5-4940-a7e0-45fc704997a1"))
		var requests atomic.Int32
		otherNangoAnswers(func(w http.ResponseWriter, _ *http.Request) {
			requests.Add(1)
			// An empty page that names a cursor, whatever the request's cursor was.
			_ = json.NewEncoder(w).Encode(map[string]any{"records": []any{}, "next_cursor": stuck})
		})
		nsync := newNangoSyncFor(newDataSet(uniqueName("stuckcursor"), "Contact"), sqliteSinkSpec("contacts"))
		nsync.Spec.Nango = &syncv1alpha1.NangoEndpoint{URL: otherNango.URL}
		create(nsync)
		expectReason(nsync, metav1.ConditionFalse, syncv1alpha1.InvalidCursorReason)
		Expect(conditionTrue(nsync, syncv1alpha1.StalledCondition)).To(BeTrue())
		Expect(readyMessage(nsync)).To(ContainSubstring(syncv1alpha1.ResyncAnnotation))
		Expect(requests.Load()).To(BeNumerically("<=", 3), "the reconciler kept asking for the same page")
		Expect(nsync.Status.Cursor).To(BeEmpty())
	})

	It("halves the page size while Nango's answers are larger than the client accepts, and still copies every record (item 11)", func() {
		var mu sync.Mutex
		var limits []int
		record := func(id string) map[string]any {
			return map[string]any{"id": id, "name": id, "_nango_metadata": map[string]any{
				"first_seen_at": "2026-04-14T18:46:03.097459+00:00", "last_modified_at": "2026-04-14T18:46:03.097459+00:00",
				"last_action": "ADDED", "deleted_at": nil, "pruned_at": nil,
				"cursor": base64.StdEncoding.EncodeToString([]byte("2026-04-14T18:46:03.097459+00:00||15ccc805-64d5-4940-a7e0-45fc70499" + id))}}
		}
		otherNangoAnswers(func(w http.ResponseWriter, r *http.Request) {
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			mu.Lock()
			limits = append(limits, limit)
			mu.Unlock()
			page := map[string]any{"records": []any{record("001"), record("002"), record("003")}, "next_cursor": nil}
			if limit > 200 {
				// Records of 100 KiB: a page of more than 200 would not fit 17 MiB.
				page["padding"] = strings.Repeat("x", 17<<20)
			}
			_ = json.NewEncoder(w).Encode(page)
		})
		nsync := newNangoSyncFor(newDataSet(uniqueName("bigpages"), "Contact"), sqliteSinkSpec("contacts"))
		nsync.Spec.Nango = &syncv1alpha1.NangoEndpoint{URL: otherNango.URL}
		create(nsync)
		expectReason(nsync, metav1.ConditionTrue, syncv1alpha1.SyncedReason)
		Expect(nsync.Status.Records.Added).To(BeEquivalentTo(3))
		mu.Lock()
		defer mu.Unlock()
		Expect(len(limits)).To(BeNumerically(">=", 4), "asked with limits %v", limits)
		Expect(limits[:4]).To(Equal([]int{1000, 500, 250, 125}))
	})
})
