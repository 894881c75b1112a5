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
	"sync/atomic"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// wakes is what the reconciler knows of wakes: requests to sync a NangoSync now, from a
// webhook, a person or a changed Secret, as opposed to the requeues of an interval, a spent
// budget or a retry. It serves two purposes.
//
// Handing workers over. The priority queue serves a wake before every requeue, but only
// once a worker is free, and a worker copying a big backlog is free only at the end of its
// budget. The queue notes which NangoSyncs wait at normal priority, and a busy sync asks
// claimYield after each page: while a wake waits, it ends its budget after the page in hand,
// so a wake waits for one page rather than for a whole budget.
//
// One sync per webhook. A webhook the receiver of this replica accepted reaches the
// controller twice: in-process at once (WakeInProcess), then as the watch event of the
// requested-at annotation the receiver patches. A reconcile calls begin before it syncs and
// end after a sync that read to the end; a wake such a sync served is remembered, and the
// reconcile the annotation's event causes finds it served (begin says it is an echo) and
// skips the sync: Nango has nothing new for it. Such echoes wait in the queue but no busy
// sync hands its worker over for them. Values are compared for equality only, never as times.
type wakes struct {
	// queue is the controller's queue once it runs (on the leader), for WakeInProcess.
	queue atomic.Pointer[wakeQueue]

	mu sync.Mutex
	// waiting are the NangoSyncs waiting in the queue to sync now.
	waiting map[reconcile.Request]struct{}
	// yielding is how many busy reconciles are handing their workers over to them.
	yielding int
	// delivered is the value of the latest in-process wake, by NangoSync.
	delivered map[types.NamespacedName]string
	// served is a delivered value that a complete sync served before the annotation
	// carried it: its watch event is still to come.
	served map[types.NamespacedName]string
}

// wakeTurn is what one reconcile knew of wakes when its sync began.
type wakeTurn struct {
	key types.NamespacedName
	// delivered is the latest in-process wake, requested the annotation the reconcile saw.
	delivered, requested string
}

// WakeInProcess asks for a sync of the NangoSync key now, for a webhook that the receiver
// of this replica accepted and is about to record as requestedAt in the requested-at
// annotation. It does nothing unless the controller runs in this process, that is on the
// leader; there it saves the wake the API server round trip of the annotation patch and
// the watch event that follows it.
func (r *NangoSyncReconciler) WakeInProcess(key types.NamespacedName, requestedAt string) {
	q := r.wakes.queue.Load()
	if q == nil {
		return
	}
	r.wakes.deliver(key, requestedAt)
	q.Add(reconcile.Request{NamespacedName: key})
}

func (w *wakes) deliver(key types.NamespacedName, requestedAt string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.delivered == nil {
		w.delivered = map[types.NamespacedName]string{}
	}
	w.delivered[key] = requestedAt
	delete(w.served, key) // a new wake: the next sync is not an echo
}

// begin is called by a reconcile of key that saw requested in the annotation, before it
// syncs. echo is true when requested was already served in-process with no wake since: the
// reconcile need not read Nango for it. It answers true once per served value.
func (w *wakes) begin(key types.NamespacedName, requested string) (turn wakeTurn, echo bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	turn = wakeTurn{key: key, delivered: w.delivered[key], requested: requested}
	served, ok := w.served[key]
	if !ok || requested == "" || served != requested || turn.delivered != served {
		return turn, false
	}
	delete(w.served, key)
	return turn, true
}

// end is called after the sync of turn read to the end. When it served an in-process wake
// the annotation did not carry yet, end remembers it for the annotation's event and answers
// its value, for status.lastHandledRequestedAt.
func (w *wakes) end(turn wakeTurn) (served string, ok bool) {
	if turn.delivered == "" || turn.delivered == turn.requested {
		return "", false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.delivered[turn.key] != turn.delivered {
		return "", false // a newer wake came meanwhile: it needs a sync of its own
	}
	if w.served == nil {
		w.served = map[types.NamespacedName]string{}
	}
	w.served[turn.key] = turn.delivered
	return turn.delivered, true
}

// noteWaiting notes items waiting in the queue to sync now, except echoes of served wakes.
func (w *wakes) noteWaiting(items ...reconcile.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting == nil {
		w.waiting = map[reconcile.Request]struct{}{}
	}
	for _, item := range items {
		if _, echo := w.served[item.NamespacedName]; !echo {
			w.waiting[item] = struct{}{}
		}
	}
}

// taken notes that a worker took item. A wake served is a yield no longer needed.
func (w *wakes) taken(item reconcile.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.waiting[item]; ok {
		delete(w.waiting, item)
		if w.yielding > 0 {
			w.yielding--
		}
	}
}

// claimYield reports whether the caller, a busy reconcile, should hand its worker over:
// true while more wakes wait than reconciles are already handing theirs over, so that one
// wake stops one busy sync, not all of them.
func (w *wakes) claimYield() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waiting) > w.yielding {
		w.yielding++
		return true
	}
	return false
}

// forget drops what is known of a NangoSync that is gone.
func (w *wakes) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.delivered, key)
	delete(w.served, key)
}

// wakeQueue is controller-runtime's priority queue, which notes in wakes which NangoSyncs
// wait in it to sync now: items due now at normal priority or above. Requeues after a
// budget or an interval come at low priority and are not counted; neither are retries
// after a failure.
type wakeQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	wakes *wakes
}

// newQueue returns the controller's queue constructor. The queue exists only once the
// controller runs, on the leader; it is kept in r.wakes for WakeInProcess.
func (r *NangoSyncReconciler) newQueue(logger logr.Logger) func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return func(name string, rateLimiter workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		q := &wakeQueue{
			PriorityQueue: priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) {
				o.Log = logger.WithValues("controller", name)
				o.RateLimiter = rateLimiter
			}),
			wakes: &r.wakes,
		}
		r.wakes.queue.Store(q)
		return q
	}
}

// Add adds item at the default priority: a wake.
func (q *wakeQueue) Add(item reconcile.Request) {
	q.wakes.noteWaiting(item)
	q.PriorityQueue.Add(item)
}

// AddWithOpts adds items; those due now at the default priority or above are wakes.
func (q *wakeQueue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	if o.After <= 0 && !o.RateLimited && (o.Priority == nil || *o.Priority >= 0) {
		q.wakes.noteWaiting(items...)
	}
	q.PriorityQueue.AddWithOpts(o, items...)
}

// GetWithPriority hands an item to a worker: it no longer waits.
func (q *wakeQueue) GetWithPriority() (reconcile.Request, int, bool) {
	item, priority, shutdown := q.PriorityQueue.GetWithPriority()
	q.wakes.taken(item)
	return item, priority, shutdown
}

// Get hands an item to a worker: it no longer waits.
func (q *wakeQueue) Get() (reconcile.Request, bool) {
	item, shutdown := q.PriorityQueue.Get()
	q.wakes.taken(item)
	return item, shutdown
}
