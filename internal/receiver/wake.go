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

package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// Waking goes through the API server, as Flux's receivers do: a merge patch of the
// sync.nango.dev/requested-at annotation, which the leader's controller watches. Any
// replica can write it, so a webhook answered by a follower wakes the sync on the leader.
// On the leader itself, Options.WakeInProcess also hands the wake to the controller at
// once, without waiting for the patch and its watch event.

// wakeAttempts and wakeRetryWait bound the retries of a patch the API server refused for a
// passing reason. Waking is a hint: after the last attempt the interval takes over.
const (
	wakeAttempts  = 3
	wakeRetryWait = 200 * time.Millisecond
	patchTimeout  = 10 * time.Second
)

// wakeWork is what the webhooks for one NangoSync ask for, merged.
type wakeWork struct {
	// since is the arrival of the earliest webhook merged in, for the wake latency.
	since time.Time
	// requestedAt is the arrival of the latest successful run merged in: the value of the
	// requested-at annotation, and of the in-process wake that went before it.
	requestedAt time.Time
	// wake: a successful run asked for a sync.
	wake bool
	// failure is the latest failed run, nil when none came or a success came after it.
	failure *syncv1alpha1.NangoRunFailure
	// clearFailure: a successful run came after any failure, so the annotation goes.
	clearFailure bool
	// authFailure is the latest failure of the connection's credentials, nil when none came
	// or the connection was re-authorized after it; clearAuthFailure: it was.
	authFailure      *syncv1alpha1.NangoAuthFailure
	clearAuthFailure bool
	// inProcess is the requested-at value last handed over in-process for this work.
	inProcess string
	// runAt is the time of the newest run whose state (failure, or clearing) is merged in,
	// zero when none: the value of NangoRunAtAnnotation.
	runAt time.Time
}

// carriesState reports whether work writes run or auth state, not just a wake.
func (w *wakeWork) carriesState() bool {
	return w.failure != nil || w.clearFailure || !w.runAt.IsZero() || w.authFailure != nil || w.clearAuthFailure
}

// dropRunState forgets the run state of work (a failure, its clearing, the run's time):
// the object already holds a run at least as new.
func (w *wakeWork) dropRunState() {
	w.failure, w.clearFailure, w.runAt = nil, false, time.Time{}
}

func (w *wakeWork) empty() bool {
	return !w.wake && w.failure == nil && !w.clearFailure && w.authFailure == nil && !w.clearAuthFailure
}

// mergeSuccess adds a successful run that arrived at arrived.
// clear says whether it also clears a failed run: it is newer and of the NangoSync's own
// environment.
func (w *wakeWork) mergeSuccess(arrived time.Time, clear bool, at time.Time) {
	w.noteArrival(arrived)
	if arrived.After(w.requestedAt) {
		w.requestedAt = arrived
	}
	w.wake = true
	if clear {
		w.failure, w.clearFailure = nil, true
		w.noteRun(at)
	}
}

// mergeFailure adds a failed run that failed at at.
func (w *wakeWork) mergeFailure(arrived time.Time, f syncv1alpha1.NangoRunFailure, at time.Time) {
	w.noteArrival(arrived)
	w.failure = &f
	w.noteRun(at)
}

func (w *wakeWork) noteRun(at time.Time) {
	if at.After(w.runAt) {
		w.runAt = at
	}
}

func (w *wakeWork) noteArrival(arrived time.Time) {
	if w.since.IsZero() || arrived.Before(w.since) {
		w.since = arrived
	}
}

// waker writes wakes to NangoSyncs with a few workers and a bounded queue. Webhooks for a
// NangoSync coalesce: while its wake waits in the queue or is being written, later webhooks
// merge into the work it will write next, so each NangoSync has at most one patch in
// flight and a burst costs at most one patch more, which starts after the burst's last
// webhook. When the queue is full a new wake is dropped and counted.
type waker struct {
	client client.Client
	// kind and object name what is woken: NangoSyncs, or NangoSyncSets.
	kind    string
	object  func(types.NamespacedName) client.Object
	workers int
	queue   chan types.NamespacedName
	metrics *metrics
	log     logr.Logger
	now     func() time.Time

	// minInterval is the least time between two patches, or two in-process wakes, of one
	// object; 0 for none.
	minInterval time.Duration
	// wakeInProcess, when set, is handed the requested-at value of a patch before it is
	// written, unless that value went in-process already: the controller of this replica
	// counts on seeing every value in-process before its annotation event, to know the
	// event for a repeat of a sync it served (see the controller's wakes).
	wakeInProcess func(types.NamespacedName, string)
	// reader, when set, reads a NangoSync from the API server before a patch that writes run
	// or auth state (see writeState); nil writes every patch unlocked.
	reader client.Reader

	mu sync.Mutex
	// pending holds the work of every NangoSync that is queued or being written.
	pending map[types.NamespacedName]*wakeWork
	// recent holds when each object was last woken, and its latest run written.
	recent map[types.NamespacedName]*wakeHistory
}

// wakeHistory is what the waker remembers of one object, in this process only: after a
// restart, or on another replica, a replayed webhook can act once more.
type wakeHistory struct {
	written, inProcess, lastRun time.Time
}

// maxRecent bounds the histories kept; beyond it those untouched for an hour go.
const maxRecent = 1 << 16

// inProcess sets the function that hands requested-at values to the controller of this
// replica; nil for none.
func (w *waker) inProcess(wake func(types.NamespacedName, string)) *waker {
	w.wakeInProcess = wake
	return w
}

// locking has patches that write run or auth state read the object through reader first
// and carry its resourceVersion.
func (w *waker) locking(reader client.Reader) *waker {
	w.reader = reader
	return w
}

// throttled sets the least time between two wakes of one object.
func (w *waker) throttled(minInterval time.Duration) *waker {
	w.minInterval = minInterval
	return w
}

// historyLocked answers the history of key, making room when there are too many.
func (w *waker) historyLocked(key types.NamespacedName) *wakeHistory {
	h, ok := w.recent[key]
	if ok {
		return h
	}
	if len(w.recent) >= maxRecent {
		cutoff := w.now().Add(-time.Hour)
		for k, old := range w.recent {
			if old.written.Before(cutoff) && old.inProcess.Before(cutoff) {
				delete(w.recent, k)
			}
		}
	}
	h = &wakeHistory{}
	w.recent[key] = h
	return h
}

// newerRun reports whether a run at at is newer than the last one written for key, and
// if so remembers it. stored is the last run the NangoSync itself says was written
// (storedRun): what a receiver restarted since, or another replica, wrote.
func (w *waker) newerRun(key types.NamespacedName, at, stored time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.historyLocked(key)
	if stored.After(h.lastRun) {
		h.lastRun = stored
	}
	if !at.After(h.lastRun) {
		return false
	}
	h.lastRun = at
	return true
}

// inProcessDue reports whether key may be woken in-process now, and if so remembers it.
// A wake skipped here is not lost: the annotation patch that follows carries it.
func (w *waker) inProcessDue(key types.NamespacedName) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.historyLocked(key)
	now := w.now()
	if w.minInterval > 0 && now.Sub(h.inProcess) < w.minInterval {
		return false
	}
	h.inProcess = now
	return true
}

// handedOver notes that the requested-at value of key's pending work went in-process.
func (w *waker) handedOver(key types.NamespacedName, value string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if work, ok := w.pending[key]; ok && requestedAtValue(work.requestedAt) == value {
		work.inProcess = value
	}
}

// patchWait answers how long key's next patch must wait for minInterval.
func (w *waker) patchWait(key types.NamespacedName) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.minInterval <= 0 {
		return 0
	}
	return w.minInterval - w.now().Sub(w.historyLocked(key).written)
}

// noteWritten remembers that a patch of key started now.
func (w *waker) noteWritten(key types.NamespacedName, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.historyLocked(key).written = at
}

// requeue queues key again after its wait; its work stays pending meanwhile, so webhooks
// merge into it. With the queue full the work is dropped and counted.
func (w *waker) requeue(key types.NamespacedName) {
	select {
	case w.queue <- key:
	default:
		w.mu.Lock()
		delete(w.pending, key)
		w.mu.Unlock()
		w.metrics.wakesDropped.Inc()
	}
}

// storedRun is the time of the last run whose state was written onto nsync: its
// NangoRunAtAnnotation, or the failedAt of the failure it holds (written before that
// annotation existed, or by the health check), whichever is later; zero when neither.
func storedRun(nsync *syncv1alpha1.NangoSync) time.Time {
	return storedRunOf(nsync.Annotations)
}

// storedRunOf is storedRun of an object's annotations.
func storedRunOf(annotations map[string]string) time.Time {
	var at time.Time
	if t, err := time.Parse(time.RFC3339Nano, annotations[syncv1alpha1.NangoRunAtAnnotation]); err == nil {
		at = t
	}
	var failure syncv1alpha1.NangoRunFailure
	if value, ok := annotations[syncv1alpha1.NangoRunFailureAnnotation]; ok && json.Unmarshal([]byte(value), &failure) == nil {
		if t, err := time.Parse(time.RFC3339Nano, failure.FailedAt); err == nil && t.After(at) {
			at = t
		}
	}
	return at
}

// runTime reads an RFC 3339 time a webhook gives for its run, else arrived.
func runTime(value string, arrived time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
		return t
	}
	return arrived
}

func newWaker(c client.Client, workers, queueSize int, m *metrics, log logr.Logger) *waker {
	return &waker{
		client: c,
		kind:   "NangoSync",
		object: func(key types.NamespacedName) client.Object {
			return &syncv1alpha1.NangoSync{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		},
		workers: workers,
		queue:   make(chan types.NamespacedName, queueSize),
		metrics: m,
		log:     log,
		now:     time.Now,
		pending: map[types.NamespacedName]*wakeWork{},
		recent:  map[types.NamespacedName]*wakeHistory{},
	}
}

// add merges work for one NangoSync, queueing it if it is not queued or being written.
// When the queue is full the work is dropped and counted: the NangoSync syncs at its
// interval.
func (w *waker) add(key types.NamespacedName, merge func(*wakeWork)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if work, ok := w.pending[key]; ok {
		merge(work)
		return
	}
	work := &wakeWork{}
	merge(work)
	select {
	case w.queue <- key:
		w.pending[key] = work
	default:
		w.metrics.wakesDropped.Inc()
	}
}

// take hands a worker the work merged so far for key, or reports that none is left, in
// which case key is no longer pending.
func (w *waker) take(key types.NamespacedName) (wakeWork, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	work, ok := w.pending[key]
	if !ok || work.empty() {
		delete(w.pending, key)
		return wakeWork{}, false
	}
	taken := *work
	*work = wakeWork{}
	return taken, true
}

// run writes wakes until ctx ends. Wakes left in the queue then are dropped: the next
// interval syncs those NangoSyncs.
func (w *waker) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range w.workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case key := <-w.queue:
					w.drain(ctx, key)
				}
			}
		})
	}
	wg.Wait()
}

// drain writes the work of key, then the work that arrived meanwhile, until none is left.
func (w *waker) drain(ctx context.Context, key types.NamespacedName) {
	for ctx.Err() == nil {
		if wait := w.patchWait(key); wait > 0 {
			// Too soon after the last patch: write what is pending, and all that merges
			// into it meanwhile, once the interval is over, without holding a worker.
			time.AfterFunc(wait, func() { w.requeue(key) })
			return
		}
		work, ok := w.take(key)
		if !ok {
			return
		}
		if value := requestedAtValue(work.requestedAt); work.wake && w.wakeInProcess != nil && value != work.inProcess {
			// The webhooks merged into this patch came while in-process wakes were held back.
			w.wakeInProcess(key, value)
		}
		w.noteWritten(key, w.now())
		if err := w.write(ctx, key, work); err != nil {
			w.log.Error(err, "could not wake; the interval takes over", "kind", w.kind, "object", key)
			continue
		}
		w.metrics.wakeSeconds.Observe(w.now().Sub(work.since).Seconds())
		w.log.V(1).Info("woke", "kind", w.kind, "object", key, "wake", work.wake, "runFailed", work.failure != nil)
	}
}

// write merge-patches the annotations of work onto the object, retrying a few times.
// An object deleted meanwhile needs no wake.
func (w *waker) write(ctx context.Context, key types.NamespacedName, work wakeWork) error {
	for attempt := 1; ; attempt++ {
		err := w.writeOnce(ctx, key, work)
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if attempt == wakeAttempts || ctx.Err() != nil {
			return fmt.Errorf("patch the annotations of %s %s: %w", w.kind, key, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wakeRetryWait * time.Duration(attempt)):
		}
	}
}

// writeOnce writes work: a wake alone as a plain merge patch, since a newer requested-at
// value only wakes once more; run or auth state under an optimistic lock (writeState).
func (w *waker) writeOnce(ctx context.Context, key types.NamespacedName, work wakeWork) error {
	if w.reader == nil || !work.carriesState() {
		return w.patch(ctx, w.object(key), work, "")
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return w.writeState(ctx, key, work) })
}

// writeState reads the object from the API server and patches work onto the version it
// read. The webhook's run state goes only when the object holds no run at least as new:
// between the webhook's arrival and this patch another replica, or the health check, may
// have written a newer run, which a patch without resourceVersion would overwrite.
func (w *waker) writeState(ctx context.Context, key types.NamespacedName, work wakeWork) error {
	getCtx, cancel := context.WithTimeout(ctx, patchTimeout)
	defer cancel()
	obj := w.object(key)
	if err := w.reader.Get(getCtx, key, obj); err != nil {
		return err
	}
	if !work.runAt.IsZero() && !storedRunOf(obj.GetAnnotations()).Before(work.runAt) {
		w.log.V(1).Info("kept a newer run written meanwhile", "kind", w.kind, "object", key)
		work.dropRunState()
		if work.empty() {
			return nil
		}
	}
	return w.patch(ctx, obj, work, obj.GetResourceVersion())
}

// patch merge-patches the annotations of work onto obj; a resourceVersion, when given,
// makes the API server refuse it with a conflict if obj changed since.
func (w *waker) patch(ctx context.Context, obj client.Object, work wakeWork, resourceVersion string) error {
	patch, err := annotationPatch(work, resourceVersion)
	if err != nil {
		return err
	}
	patchCtx, cancel := context.WithTimeout(ctx, patchTimeout)
	defer cancel()
	return w.client.Patch(patchCtx, obj, client.RawPatch(types.MergePatchType, patch))
}

// annotationPatch is the JSON merge patch of work: a new requested-at value to wake, the
// failure annotation set or removed, and the resourceVersion it applies to when one is
// given. Every wake gets a new value (the arrival of its latest
// webhook, to the nanosecond), so that the controller's annotation predicate sees a change.
func annotationPatch(work wakeWork, resourceVersion string) ([]byte, error) {
	annotations := map[string]any{}
	if work.wake {
		annotations[syncv1alpha1.RequestedAtAnnotation] = requestedAtValue(work.requestedAt)
	}
	if !work.runAt.IsZero() {
		annotations[syncv1alpha1.NangoRunAtAnnotation] = work.runAt.UTC().Format(time.RFC3339Nano)
	}
	switch {
	case work.failure != nil:
		value, err := json.Marshal(work.failure)
		if err != nil {
			return nil, fmt.Errorf("encode the run failure: %w", err)
		}
		annotations[syncv1alpha1.NangoRunFailureAnnotation] = string(value)
	case work.clearFailure:
		annotations[syncv1alpha1.NangoRunFailureAnnotation] = nil // null removes it
	}
	switch {
	case work.authFailure != nil:
		value, err := json.Marshal(work.authFailure)
		if err != nil {
			return nil, fmt.Errorf("encode the auth failure: %w", err)
		}
		annotations[syncv1alpha1.NangoAuthFailureAnnotation] = string(value)
	case work.clearAuthFailure:
		annotations[syncv1alpha1.NangoAuthFailureAnnotation] = nil
	}
	metadata := map[string]any{"annotations": annotations}
	if resourceVersion != "" {
		metadata["resourceVersion"] = resourceVersion
	}
	patch, err := json.Marshal(map[string]any{"metadata": metadata})
	if err != nil {
		return nil, fmt.Errorf("encode the wake patch: %w", err)
	}
	return patch, nil
}

// requestedAtValue is how the requested-at annotation writes a webhook's arrival.
func requestedAtValue(arrived time.Time) string {
	return arrived.UTC().Format(time.RFC3339Nano)
}

// queued answers how many NangoSyncs wait for a wake or are being woken.
func (w *waker) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}
