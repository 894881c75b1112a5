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

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// WakeInProcess asks for a sync of the NangoSync key now, for a webhook that the receiver
// of this replica accepted and is about to record as requestedAt in the requested-at
// annotation. It does nothing unless the controller runs in this process, that is on the
// leader; there it saves the wake the API server round trip of the annotation patch and
// the watch event that follows it.
func (r *NangoSyncReconciler) WakeInProcess(key types.NamespacedName, requestedAt string) {
	q := r.queue.Load()
	if q == nil {
		return
	}
	r.inProcess.deliver(key, requestedAt)
	q.Add(reconcile.Request{NamespacedName: key})
}

// inProcessWakes remembers the wakes the receiver handed to the controller in-process, so
// that the annotation each of them is followed by does not cost Nango a second read. A
// value is served when a sync that started after its wake was handed over reads to the
// end; the one reconcile the annotation's watch event then causes finds it served and
// skips the sync. Values are compared for equality only, never as times.
type inProcessWakes struct {
	mu sync.Mutex
	// delivered is the value of the latest wake handed over, by NangoSync.
	delivered map[types.NamespacedName]string
	// served is a delivered value that a complete sync served before the sync could see it
	// in the annotation: its watch event is still to come.
	served map[types.NamespacedName]string
}

func (w *inProcessWakes) deliver(key types.NamespacedName, requestedAt string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.delivered == nil {
		w.delivered = map[types.NamespacedName]string{}
	}
	w.delivered[key] = requestedAt
	delete(w.served, key) // a new wake: the next sync is not an echo
}

// latest is the value of the latest wake handed over for key, "" if none.
func (w *inProcessWakes) latest(key types.NamespacedName) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.delivered[key]
}

// markServed notes that a sync of key, which started when delivered was the latest wake
// and saw requested in the annotation, read to the end. If the annotation did not carry
// delivered yet, its event is still to come and will find it served.
func (w *inProcessWakes) markServed(key types.NamespacedName, delivered, requested string) bool {
	if delivered == "" || delivered == requested {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.delivered[key] != delivered {
		return false // a newer wake came meanwhile: it needs a sync of its own
	}
	if w.served == nil {
		w.served = map[types.NamespacedName]string{}
	}
	w.served[key] = delivered
	return true
}

// takeServed reports whether requested, the annotation a reconcile of key sees, was
// already served in-process with no wake since; it answers true once per served value.
func (w *inProcessWakes) takeServed(key types.NamespacedName, requested string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	served, ok := w.served[key]
	if !ok || requested == "" || served != requested || w.delivered[key] != served {
		return false
	}
	delete(w.served, key)
	return true
}

// echoPending reports whether the next wake of key is expected to be the annotation event
// of a value already served, which needs no worker handed over.
func (w *inProcessWakes) echoPending(key types.NamespacedName) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.served[key]
	return ok
}

// forget drops what is known of a NangoSync that is gone.
func (w *inProcessWakes) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.delivered, key)
	delete(w.served, key)
}
