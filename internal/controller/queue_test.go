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

func TestWakeQueueCountsOnlyWakes(t *testing.T) {
	r := &NangoSyncReconciler{}
	waiting := &r.waiting
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
	if waiting.claimYield() {
		t.Fatal("a requeue counted as a waiting wake")
	}

	// A webhook's or a person's change is added at the default priority.
	q.Add(item("woken"))
	pq.AddWithOpts(priorityqueue.AddOpts{}, item("created"))
	// Two wakes wait: two busy reconciles hand their workers over, a third carries on.
	for range 2 {
		if !waiting.claimYield() {
			t.Fatal("a busy reconcile did not make room for a waiting wake")
		}
	}
	if waiting.claimYield() {
		t.Fatal("more busy reconciles made room than wakes wait")
	}
	for range 3 { // the two wakes first, then the low-priority requeue
		got, _, _ := pq.GetWithPriority()
		q.Done(got)
	}
	if waiting.claimYield() {
		t.Fatal("wakes handed to workers still count as waiting")
	}
	q.Add(item("woken-again"))
	if !waiting.claimYield() {
		t.Fatal("served wakes still count as made room for")
	}
	got, _, _ := pq.GetWithPriority()
	q.Done(got)

	// An in-process wake is a wake; the annotation event that echoes it, once a complete
	// sync served it, is not.
	r.WakeInProcess(item("webhook").NamespacedName, "t1")
	if !waiting.claimYield() {
		t.Fatal("an in-process wake did not count as waiting")
	}
	got, _, _ = pq.GetWithPriority()
	q.Done(got)
	if !r.inProcess.markServed(got.NamespacedName, "t1", "") {
		t.Fatal("a complete sync did not serve the in-process wake")
	}
	q.Add(item("webhook"))
	if waiting.claimYield() {
		t.Fatal("the annotation event of a served wake made a busy sync hand its worker over")
	}
}
