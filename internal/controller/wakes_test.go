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
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// echoPending reports whether the next wake of key is expected to be the annotation event
// of a value already served in-process.
func (w *wakes) echoPending(key types.NamespacedName) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.served[key]
	return ok
}

func TestWakesSkipOnlyTheEchoOfAServedWake(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "contacts"}
	var w wakes
	served := func(turn wakeTurn) bool { _, ok := w.end(turn); return ok }

	// Nothing handed over: every reconcile syncs.
	if turn, echo := w.begin(key, "t0"); echo || served(turn) {
		t.Fatal("a NangoSync never woken in-process was served")
	}

	// A sync that started after the wake t1, and saw an older annotation, serves t1 once.
	w.deliver(key, "t1")
	turn, _ := w.begin(key, "t0")
	if got, ok := w.end(turn); !ok || got != "t1" {
		t.Fatalf("a complete sync did not serve the wake it started after: %q, %t", got, ok)
	}
	if _, echo := w.begin(key, "t0"); echo {
		t.Fatal("an older annotation was taken for the served wake")
	}
	if !w.echoPending(key) {
		t.Fatal("the served wake's annotation event is not expected")
	}
	if _, echo := w.begin(key, "t1"); !echo {
		t.Fatal("the annotation event of the served wake was not skipped")
	}
	if _, echo := w.begin(key, "t1"); echo {
		t.Fatal("a served wake was skipped twice: a later interval would not sync")
	}

	// A sync that already saw its wake in the annotation expects no event for it.
	w.deliver(key, "t2")
	if turn, _ := w.begin(key, "t2"); served(turn) {
		t.Fatal("a wake whose annotation the sync saw was kept as served")
	}

	// A wake that came during the sync is not served by it.
	w.deliver(key, "t3")
	turn, _ = w.begin(key, "t2")
	w.deliver(key, "t4")
	if served(turn) {
		t.Fatal("a sync served a wake that came after it started")
	}
	if _, echo := w.begin(key, "t3"); echo {
		t.Fatal("an unserved wake was skipped")
	}

	// A served wake followed by a new one: the old echo syncs again, the new wake counts.
	w.deliver(key, "t5")
	turn, _ = w.begin(key, "t4")
	served(turn)
	w.deliver(key, "t6")
	if w.echoPending(key) {
		t.Fatal("an echo is expected although a newer wake waits")
	}
	if _, echo := w.begin(key, "t5"); echo {
		t.Fatal("an echo was skipped although a newer wake waits")
	}

	turn, _ = w.begin(key, "t5")
	served(turn)
	w.forget(key)
	if w.echoPending(key) {
		t.Fatal("a deleted NangoSync's wakes were kept")
	}
	if turn, _ := w.begin(key, ""); turn.delivered != "" {
		t.Fatal("a deleted NangoSync's latest wake was kept")
	}
}

func TestWakeQueueCountsOnlyWakes(t *testing.T) {
	r := &NangoSyncReconciler{}
	q := r.newQueue(logr.Discard())("test",
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Hour, time.Hour))
	defer q.ShutDown()
	pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request])
	if !ok {
		t.Fatal("the queue is not a priority queue: handlers would lose priorities")
	}
	item := func(name string) reconcile.Request {
		return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}}
	}

	// Requeues, delayed adds and retries are not wakes.
	pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, item("budget-spent"))
	pq.AddWithOpts(priorityqueue.AddOpts{After: time.Hour}, item("interval"))
	q.AddAfter(item("later"), time.Hour)
	q.AddRateLimited(item("failed"))
	if r.wakes.claimYield() {
		t.Fatal("a requeue counted as a waiting wake")
	}

	// A webhook's or a person's change is added at the default priority.
	q.Add(item("woken"))
	pq.AddWithOpts(priorityqueue.AddOpts{}, item("created"))
	// Two wakes wait: two busy reconciles hand their workers over, a third carries on.
	for range 2 {
		if !r.wakes.claimYield() {
			t.Fatal("a busy reconcile did not make room for a waiting wake")
		}
	}
	if r.wakes.claimYield() {
		t.Fatal("more busy reconciles made room than wakes wait")
	}
	for range 3 { // the two wakes first, then the low-priority requeue
		got, _, _ := pq.GetWithPriority()
		q.Done(got)
	}
	if r.wakes.claimYield() {
		t.Fatal("wakes handed to workers still count as waiting")
	}
	q.Add(item("woken-again"))
	if !r.wakes.claimYield() {
		t.Fatal("served wakes still count as made room for")
	}
	got, _, _ := pq.GetWithPriority()
	q.Done(got)

	// An in-process wake is a wake; the annotation event that echoes it, once a complete
	// sync served it, is not.
	r.WakeInProcess(item("webhook").NamespacedName, "t1")
	if !r.wakes.claimYield() {
		t.Fatal("an in-process wake did not count as waiting")
	}
	got, _, _ = pq.GetWithPriority()
	q.Done(got)
	turn, _ := r.wakes.begin(got.NamespacedName, "")
	if _, ok := r.wakes.end(turn); !ok {
		t.Fatal("a complete sync did not serve the in-process wake")
	}
	q.Add(item("webhook"))
	if r.wakes.claimYield() {
		t.Fatal("the annotation event of a served wake made a busy sync hand its worker over")
	}
}
