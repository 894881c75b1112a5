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
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// wakeQueue is controller-runtime's priority queue, which also tells which NangoSyncs wait
// in it at normal priority: the ones a webhook, a person or a changed Secret asked to sync
// now. Requeues after a budget or an interval come at low priority and are not counted;
// neither are retries after a failure.
//
// The priority queue alone serves a wake before every requeue, but only once a worker is
// free, and a worker copying a big backlog is free only at the end of its budget. With
// wakeQueue, such a sync ends its budget after the page in hand while a wake waits, so a
// wake waits for one page rather than for a whole budget.
type wakeQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	waiting *waitingWakes
	// echo tells the wakes that only repeat one already served in-process (see
	// inProcessWakes): they wait at normal priority, but no busy sync hands its worker
	// over for them.
	echo func(reconcile.Request) bool
}

// newQueue returns the controller's queue constructor. The queue notes waiting wakes in
// r.waiting, and is kept in r.queue for WakeInProcess: it exists only once the controller
// runs, on the leader.
func (r *NangoSyncReconciler) newQueue(logger logr.Logger) func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return func(name string, rateLimiter workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		q := &wakeQueue{
			PriorityQueue: priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) {
				o.Log = logger.WithValues("controller", name)
				o.RateLimiter = rateLimiter
			}),
			waiting: &r.waiting,
			echo:    func(item reconcile.Request) bool { return r.inProcess.echoPending(item.NamespacedName) },
		}
		r.queue.Store(q)
		return q
	}
}

// Add adds item at the default priority: a wake.
func (q *wakeQueue) Add(item reconcile.Request) {
	q.noteWakes(item)
	q.PriorityQueue.Add(item)
}

// AddWithOpts adds items; those due now at the default priority or above are wakes.
func (q *wakeQueue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	if o.After <= 0 && !o.RateLimited && (o.Priority == nil || *o.Priority >= 0) {
		q.noteWakes(items...)
	}
	q.PriorityQueue.AddWithOpts(o, items...)
}

func (q *wakeQueue) noteWakes(items ...reconcile.Request) {
	for _, item := range items {
		if !q.echo(item) {
			q.waiting.add(item)
		}
	}
}

// GetWithPriority hands an item to a worker: it no longer waits.
func (q *wakeQueue) GetWithPriority() (reconcile.Request, int, bool) {
	item, priority, shutdown := q.PriorityQueue.GetWithPriority()
	q.waiting.remove(item)
	return item, priority, shutdown
}

// Get hands an item to a worker: it no longer waits.
func (q *wakeQueue) Get() (reconcile.Request, bool) {
	item, shutdown := q.PriorityQueue.Get()
	q.waiting.remove(item)
	return item, shutdown
}

// waitingWakes is the set of NangoSyncs waiting in the queue to sync now, and how many
// busy reconciles are handing their workers over to them.
type waitingWakes struct {
	mu       sync.Mutex
	items    map[reconcile.Request]struct{}
	yielding int
}

func (w *waitingWakes) add(items ...reconcile.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.items == nil {
		w.items = map[reconcile.Request]struct{}{}
	}
	for _, item := range items {
		w.items[item] = struct{}{}
	}
}

// remove notes that a worker took item. A wake served is a yield no longer needed.
func (w *waitingWakes) remove(item reconcile.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.items[item]; ok {
		delete(w.items, item)
		if w.yielding > 0 {
			w.yielding--
		}
	}
}

// claimYield reports whether the caller, a busy reconcile, should hand its worker over:
// true while more wakes wait than reconciles are already handing theirs over, so that one
// wake stops one busy sync, not all of them.
func (w *waitingWakes) claimYield() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.items) > w.yielding {
		w.yielding++
		return true
	}
	return false
}
