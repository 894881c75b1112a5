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
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/secretcache"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/sinks"
)

// Options tune the reconciler. Zero values take the defaults below.
type Options struct {
	// DefaultNangoURL is the Nango API for NangoSyncs without spec.nango.url.
	DefaultNangoURL string
	// AllowedNangoURLs are the Nango API URLs, besides DefaultNangoURL, that NangoSyncs may
	// name in spec.nango.url, as absolute http or https URLs; a URL below an allowed path
	// is allowed. A NangoSync's secret key goes to its Nango URL, so only the cluster admin
	// says where.
	AllowedNangoURLs []string
	// RequireSecretOptIn reads only Secrets labelled SecretOptInLabel=true for NangoSyncs;
	// any other is refused with reason SecretNotOptedIn, its data not read.
	RequireSecretOptIn bool
	// SQLiteRoot, when set, is the directory under which SQLite sinks live: the files of
	// namespace ns under SQLiteRoot/ns/, so that no team can aim at another team's file.
	// Empty allows any path.
	SQLiteRoot string
	// DefaultSecret names the Secret (in each NangoSync's namespace) and key holding the
	// Nango secret key for NangoSyncs without spec.nango.secretRef.
	DefaultSecret syncv1alpha1.SecretKeyReference
	// MaxRecordsPerReconcile and MaxTimePerReconcile bound one reconcile, so that one huge
	// sync does not starve the others: past either, the sync saves its progress and goes
	// to the back of the queue.
	MaxRecordsPerReconcile int
	MaxTimePerReconcile    time.Duration
	// ReconcileTimeout bounds one reconcile, whatever Nango or the sink do: a dependency
	// that accepts connections and never answers cannot hold a worker for good. It must be
	// longer than MaxTimePerReconcile, which ends reading well before.
	ReconcileTimeout time.Duration
	// MaxConcurrentReconciles is how many NangoSyncs sync at once.
	MaxConcurrentReconciles int
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff of failed syncs.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// RetentionRiskShare is the share of Nango's 30-day retention window after which a
	// NangoSync that does not sync gets the RetentionRisk condition (retention.go).
	RetentionRiskShare float64
	// NangoHealthInterval is how often Nango is asked, once per integration, how the syncs
	// that NangoSyncs name in spec.syncName run (health.go).
	NangoHealthInterval time.Duration
}

// The defaults of Options, and of the manager's flags.
const (
	// DefaultMaxRecordsPerReconcile is large enough that ending a reconcile (a status
	// patch, and a first page read with nothing to overlap it) costs little even at pages
	// of 10,000 records, and small enough that a huge sync shows its progress in status every
	// few seconds. Wakes do not wait for it: a sync hands its worker over as soon as another
	// is asked to sync now.
	DefaultMaxRecordsPerReconcile = 100000
	DefaultMaxTimePerReconcile    = 10 * time.Second
	DefaultRetryBaseDelay         = time.Second
	DefaultRetryMaxDelay          = 5 * time.Minute
	// DefaultReconcileTimeout leaves a reconcile its 10-second budget, a rate limit's
	// window and the last writes, and still frees a stuck worker within minutes.
	DefaultReconcileTimeout = 2 * time.Minute
)

// intervalJitter spreads the syncs of NangoSyncs created together over 5% of their
// interval, so they do not all hit Nango in the same second forever.
const intervalJitter = 0.05

// NangoSyncReconciler copies the records of each NangoSync from Nango to its sink.
type NangoSyncReconciler struct {
	client.Client
	// Secrets answers the data of the Secrets NangoSyncs name, each read once per change
	// (the manager caches only the metadata of Secrets).
	Secrets *secretcache.Cache
	// APIReader reads objects the manager does not cache: the checkpoint ConfigMaps of
	// http sinks, read once per sync (watching every ConfigMap would cost far more).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Nango builds Nango clients, sharing one rate limiter per secret key.
	Nango *NangoClients
	// Sinks opens sinks and shares them between NangoSyncs that write to the same place.
	Sinks *sinks.Pool
	Options
	// Registerer registers the reconciler's metrics; nil registers none.
	Registerer prometheus.Registerer

	// State of the running reconciler: metrics and allowedNangoURLs come from
	// SetupWithManager, the rest works from its zero value.
	metrics          *metrics
	allowedNangoURLs nangoURLs
	// wakes knows which NangoSyncs wait to sync now and which wakes were served in-process.
	wakes wakes
}

// The permissions the manager needs; `make manifests` writes them to config/rbac/role.yaml.
// +kubebuilder:rbac:groups=sync.nango.dev,resources=nangosyncs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=sync.nango.dev,resources=nangosyncs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sync.nango.dev,resources=nangosyncs/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one NangoSync's sink up to date with Nango, one budget of pages at a
// time, and patches its status once at the end.
func (r *NangoSyncReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	logger := log.FromContext(ctx)

	// The read comes from the cache, which must already hold this reconciler's own last
	// status patch: a sync that carries on right after its previous reconcile would
	// otherwise see the status from before it, and handle a resync twice. The manager's
	// client waits for that (ClientOptions); nothing here needs a read from the API server.
	nsync := &syncv1alpha1.NangoSync{}
	if err := r.Get(ctx, req.NamespacedName, nsync); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	if !nsync.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, nsync)
	}
	if !controllerutil.ContainsFinalizer(nsync, syncv1alpha1.NangoSyncFinalizer) {
		patch := client.MergeFrom(nsync.DeepCopy())
		controllerutil.AddFinalizer(nsync, syncv1alpha1.NangoSyncFinalizer)
		if err := r.Patch(ctx, nsync, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
	}

	// One status patch per reconcile, and none when nothing changed.
	before := nsync.DeepCopy()
	defer func() {
		if wait := r.reflectRetention(nsync, before, time.Now()); wait > 0 && retErr == nil &&
			(result.RequeueAfter <= 0 || result.RequeueAfter > wait) {
			result.RequeueAfter = wait // a suspended NangoSync is not requeued otherwise
		}
		if err := r.patchStatus(ctx, before, nsync); err != nil {
			retErr = errors.Join(retErr, err)
		}
		r.metrics.observe(nsync)
	}()

	if nsync.Spec.Suspend {
		logger.V(1).Info("suspended: not syncing")
		markSuspended(nsync)
		return ctrl.Result{}, nil
	}

	requested := nsync.Annotations[syncv1alpha1.RequestedAtAnnotation]
	turn, echo := r.wakes.begin(req.NamespacedName, requested)
	if echo && nsync.Generation == nsync.Status.ObservedGeneration && !resyncRequested(nsync) {
		// The annotation's event, for a webhook whose in-process wake a complete sync has
		// served since, and nothing else new: Nango has nothing new for it.
		logger.V(1).Info("the requested sync was already served in-process", "requestedAt", requested)
		nsync.Status.LastHandledRequestedAt = requested
		r.reflectNangoRun(nsync, before) // the same patch may have cleared a failed run
		r.reflectNangoAuth(nsync, before)
		return afterInterval(nsync), nil
	}
	progress, syncErr := r.sync(ctx, nsync)
	result, err := r.conclude(ctx, nsync, before, progress, syncErr)
	if syncErr == nil && progress.complete {
		if served, ok := r.wakes.end(turn); ok {
			nsync.Status.LastHandledRequestedAt = served
		}
	}
	return result, err
}

// afterInterval requeues a NangoSync for its next sync by interval, jittered, below
// anything a person or a webhook asks for.
func afterInterval(nsync *syncv1alpha1.NangoSync) ctrl.Result {
	return ctrl.Result{RequeueAfter: wait.Jitter(interval(nsync), intervalJitter), Priority: ptr.To(handler.LowPriority)}
}

// progress is what one reconcile did.
type progress struct {
	written  sink.WriteResult
	complete bool // read to the end of Nango's records
}

// sync runs the steps of one reconcile: resolve the Nango client and the sink, act on the
// resync annotation, find the cursor, then copy pages.
func (r *NangoSyncReconciler) sync(ctx context.Context, nsync *syncv1alpha1.NangoSync) (progress, error) {
	nangoClient, err := r.nangoClient(ctx, nsync)
	if err != nil {
		return progress{}, err
	}
	r.leavePreviousSink(ctx, nsync)
	snk, err := r.sinkFor(ctx, nsync)
	if err != nil {
		return progress{}, err
	}
	key := sink.Key(nsync.DataSet())

	if err := r.handleResync(ctx, nsync, nangoClient, snk, key); err != nil {
		return progress{}, err
	}
	cursor, err := r.startCursor(ctx, nsync, snk, key)
	if err != nil {
		return progress{}, err
	}
	return r.copyPages(ctx, nsync, nangoClient, snk, key, cursor)
}

// handleResync forgets the cursor, in the sink and in status, when the resync annotation
// has a value not handled yet, and asks Nango for a full resync when spec.syncName is set.
func (r *NangoSyncReconciler) handleResync(ctx context.Context, nsync *syncv1alpha1.NangoSync,
	nangoClient *nango.Client, snk sink.Sink, key sink.Key) error {
	if !resyncRequested(nsync) {
		return nil
	}
	requested := nsync.Annotations[syncv1alpha1.ResyncAnnotation]
	// The checkpoint goes first: forgetting it twice is harmless, while a failure after
	// Nango's reset would ask Nango for another reset on every retry.
	// A data set of another NangoSync is refused here (Conflict), before Nango is asked
	// to reset a sync that the owner reads too. The reset keeps the data set this
	// NangoSync's: until its next page, no other NangoSync may claim it.
	if err := snk.ResetCheckpoint(ctx, key, owner(nsync)); err != nil {
		return &sinkError{fmt.Errorf("forget the checkpoint of %s: %w", key, err)}
	}
	if nsync.Spec.SyncName != "" {
		if err := nangoClient.TriggerSync(ctx, nango.TriggerSyncRequest{
			ProviderConfigKey: nsync.Spec.ProviderConfigKey,
			ConnectionID:      nsync.Spec.ConnectionID,
			Syncs:             []nango.SyncRef{{Name: nsync.Spec.SyncName, Variant: key.Variant}},
			Reset:             true,
		}); err != nil {
			return fmt.Errorf("ask Nango to resync %s: %w", nsync.Spec.SyncName, err)
		}
	}
	nsync.Status.Cursor = ""
	nsync.Status.Records = syncv1alpha1.RecordCounts{}
	nsync.Status.LastHandledResyncAt = requested
	r.Recorder.Eventf(nsync, nil, corev1.EventTypeNormal, "Resync", "Resync",
		"Forgot the cursor (resync requested at %q); reading every record again", requested)
	return nil
}

// resyncRequested reports whether the resync annotation has a value not handled yet.
func resyncRequested(nsync *syncv1alpha1.NangoSync) bool {
	requested, ok := nsync.Annotations[syncv1alpha1.ResyncAnnotation]
	return ok && requested != nsync.Status.LastHandledResyncAt
}

// startCursor answers where reading starts. The sink's checkpoint is written in the same
// transaction as the records, so it is the truth about what the sink holds: its cursor and
// counts win over status.cursor and status.records, which lag them after a crash between
// the sink commit and the status patch.
func (r *NangoSyncReconciler) startCursor(ctx context.Context, nsync *syncv1alpha1.NangoSync,
	snk sink.Sink, key sink.Key) (string, error) {
	checkpoint, err := snk.Checkpoint(ctx, key)
	if err != nil {
		return "", &sinkError{fmt.Errorf("read the checkpoint of %s: %w", key, err)}
	}
	// Another NangoSync's cursor and counts are not this one's: they stay out of status.
	if err := sink.Claimable(key, checkpoint.Owner, owner(nsync)); err != nil {
		return "", &sinkError{fmt.Errorf("%s: %w", nsync.Status.Sink, err)}
	}
	if checkpoint.Cursor == "" && nsync.Status.Cursor != "" {
		// The sink holds nothing for this sync (a new table, or its checkpoint was
		// removed by hand): reading on from status.cursor would leave the records before
		// it out of the sink.
		r.Recorder.Eventf(nsync, nil, corev1.EventTypeWarning, "CheckpointMissing", "Sync",
			"The sink has no checkpoint for this sync although status.cursor is set; reading every record again into %s",
			nsync.Status.Sink)
	}
	nsync.Status.Cursor = checkpoint.Cursor
	nsync.Status.Records = recordCounts(checkpoint.Written)
	return checkpoint.Cursor, nil
}

// conclude turns the outcome of a sync into conditions, events and the next requeue.
func (r *NangoSyncReconciler) conclude(ctx context.Context, nsync, before *syncv1alpha1.NangoSync,
	p progress, err error) (ctrl.Result, error) {
	nsync.Status.ObservedGeneration = nsync.Generation
	r.reflectNangoRun(nsync, before)
	r.reflectNangoAuth(nsync, before)
	if requested, ok := nsync.Annotations[syncv1alpha1.RequestedAtAnnotation]; ok {
		nsync.Status.LastHandledRequestedAt = requested
	}

	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return ctrl.Result{}, err // the manager is stopping
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
			// The reconcile timed out; what failed may only say it was cancelled.
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		f := classify(err)
		r.markFailed(nsync, before, f)
		r.metrics.failed(f.reason)
		log.FromContext(ctx).Info("sync failed", "reason", f.reason, "error", err.Error())
		if f.retryAfter > 0 {
			return ctrl.Result{RequeueAfter: f.retryAfter}, nil
		}
		// Returning the error requeues with the workqueue's exponential backoff.
		return ctrl.Result{}, err
	}

	if !p.complete {
		setCondition(nsync, syncv1alpha1.ReconcilingCondition, metav1.ConditionTrue, syncv1alpha1.ProgressingReason,
			fmt.Sprintf("Wrote %d records so far; more pages remain", total(nsync.Status.Records)))
		apimeta.RemoveStatusCondition(&nsync.Status.Conditions, syncv1alpha1.StalledCondition)
		// Back of the queue at once, behind the other NangoSyncs and below anything a
		// person or a webhook asks for.
		return ctrl.Result{RequeueAfter: time.Millisecond, Priority: ptr.To(handler.LowPriority)}, nil
	}

	r.markSynced(nsync, before, p.written)
	r.metrics.synced(client.ObjectKeyFromObject(nsync))
	return afterInterval(nsync), nil
}

// markSynced sets the conditions of a sync that read to the end, with an event for the
// first sync and for a recovery. The time of the last change moves only when the sync
// wrote records: a sync that found nothing new leaves the status as it was, and costs the
// API server no write.
func (r *NangoSyncReconciler) markSynced(nsync, before *syncv1alpha1.NangoSync, written sink.WriteResult) {
	if written != (sink.WriteResult{}) || nsync.Status.LastChangeTime == nil {
		now := metav1.Now()
		nsync.Status.LastChangeTime = &now
	}
	wasReady := apimeta.FindStatusCondition(before.Status.Conditions, syncv1alpha1.ReadyCondition)
	message := fmt.Sprintf("Synced %d records", total(nsync.Status.Records))
	setCondition(nsync, syncv1alpha1.ReadyCondition, metav1.ConditionTrue, syncv1alpha1.SyncedReason, message)
	apimeta.RemoveStatusCondition(&nsync.Status.Conditions, syncv1alpha1.ReconcilingCondition)
	apimeta.RemoveStatusCondition(&nsync.Status.Conditions, syncv1alpha1.StalledCondition)

	switch {
	case wasReady == nil || before.Status.LastChangeTime == nil:
		r.Recorder.Eventf(nsync, nil, corev1.EventTypeNormal, "FirstSync", "Sync",
			"First sync complete: %d records written to %s", total(nsync.Status.Records), nsync.Status.Sink)
	case wasReady.Status != metav1.ConditionTrue:
		r.Recorder.Eventf(nsync, nil, corev1.EventTypeNormal, "Recovered", "Sync",
			"Synced again after %s: %s", wasReady.Reason, message)
	}
}

// markSuspended says that a suspended NangoSync is not synced, and that its spec was seen:
// tools that wait for observedGeneration to catch up (kstatus) must not wait forever.
func markSuspended(nsync *syncv1alpha1.NangoSync) {
	nsync.Status.ObservedGeneration = nsync.Generation
	setCondition(nsync, syncv1alpha1.ReadyCondition, metav1.ConditionFalse, syncv1alpha1.SuspendedReason,
		"Suspended by spec.suspend: nothing is read or written until it is false; the cursor stays where it is")
	apimeta.RemoveStatusCondition(&nsync.Status.Conditions, syncv1alpha1.ReconcilingCondition)
	apimeta.RemoveStatusCondition(&nsync.Status.Conditions, syncv1alpha1.StalledCondition)
}

// markFailed sets the conditions of a failed sync, with a Warning event when the reason
// changes (not on every retry).
func (r *NangoSyncReconciler) markFailed(nsync, before *syncv1alpha1.NangoSync, f failure) {
	setCondition(nsync, syncv1alpha1.ReadyCondition, metav1.ConditionFalse, f.reason, f.message)
	if f.stalled {
		setCondition(nsync, syncv1alpha1.StalledCondition, metav1.ConditionTrue, f.reason, f.message)
		apimeta.RemoveStatusCondition(&nsync.Status.Conditions, syncv1alpha1.ReconcilingCondition)
	} else {
		setCondition(nsync, syncv1alpha1.ReconcilingCondition, metav1.ConditionTrue, f.reason,
			"Retrying with backoff: "+f.message)
		apimeta.RemoveStatusCondition(&nsync.Status.Conditions, syncv1alpha1.StalledCondition)
	}
	previous := apimeta.FindStatusCondition(before.Status.Conditions, syncv1alpha1.ReadyCondition)
	if previous == nil || previous.Reason != f.reason {
		r.Recorder.Eventf(nsync, nil, corev1.EventTypeWarning, f.reason, "Sync", "%s", f.message)
	}
}

// statusPatchTimeout bounds the status patch that ends a reconcile. It runs even when the
// reconcile's own context has timed out: the status must say so.
const statusPatchTimeout = 10 * time.Second

// patchStatus writes the status when it changed, as a merge patch of the status subresource.
func (r *NangoSyncReconciler) patchStatus(ctx context.Context, before, after *syncv1alpha1.NangoSync) error {
	if equality.Semantic.DeepEqual(before.Status, after.Status) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusPatchTimeout)
	defer cancel()
	if err := r.Status().Patch(ctx, after, client.MergeFrom(before)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patch status: %w", err)
	}
	return nil
}

// finalize cleans the sink of a deleted NangoSync (its checkpoint, and its rows with
// deletionPolicy Delete), then lets it go.
func (r *NangoSyncReconciler) finalize(ctx context.Context, nsync *syncv1alpha1.NangoSync) error {
	if !controllerutil.ContainsFinalizer(nsync, syncv1alpha1.NangoSyncFinalizer) {
		return nil
	}
	if err := r.cleanSink(ctx, nsync); err != nil {
		var missing *secretError
		var refused *policyError
		if !errors.As(err, &missing) && !errors.As(err, &refused) {
			r.Recorder.Eventf(nsync, nil, corev1.EventTypeWarning, syncv1alpha1.SinkUnavailableReason, "Delete",
				"Cannot clean the sink before deletion, will retry: %s", err.Error())
			return err
		}
		// Without its Secret, or outside what the policy allows, the sink cannot be reached,
		// and that will not change for a NangoSync being deleted: let it go rather than
		// block the deletion forever.
		r.Recorder.Eventf(nsync, nil, corev1.EventTypeWarning, classify(err).reason, "Delete",
			"Deleted without cleaning the sink: %s", err.Error())
	}
	patch := client.MergeFrom(nsync.DeepCopy())
	controllerutil.RemoveFinalizer(nsync, syncv1alpha1.NangoSyncFinalizer)
	if err := r.Patch(ctx, nsync, patch); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("remove finalizer: %w", err))
	}
	r.forget(client.ObjectKeyFromObject(nsync))
	return nil
}

// forget drops what the reconciler keeps for a NangoSync that is gone: its metrics, its
// in-process wakes, and its use of a sink, which closes if nobody else uses it.
func (r *NangoSyncReconciler) forget(key types.NamespacedName) {
	r.metrics.forget(key)
	r.wakes.forget(key)
	r.Sinks.Release(key)
}

// cleanSink leaves the sinks of a NangoSync being deleted: the previous one if spec.sink
// moved and it was not left yet, then the current one.
func (r *NangoSyncReconciler) cleanSink(ctx context.Context, nsync *syncv1alpha1.NangoSync) error {
	if previous := nsync.Status.WrittenSink; previous != nil && !samePlace(*previous, nsync.Spec.Sink) {
		if err := r.leaveSinkAt(ctx, nsync, *previous); err != nil {
			return err
		}
	}
	snk, err := r.sinkFor(ctx, nsync)
	if err != nil {
		return err
	}
	return leave(ctx, nsync, snk)
}

// ClientOptions are the options the manager's client must have for this reconciler: a
// read from the cache waits until the cache holds every write the client made before it
// (controller-runtime's read-your-writes consistency), so that a reconcile that follows
// its own status patch sees it. Without them the reconciler reads stale status.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{EnableReadYourWritesConsistency: ptr.To(true)}}
}

// SetupWithManager registers the reconciler: it watches NangoSyncs and the Secrets they
// name (metadata only), and indexes NangoSyncs by those Secrets.
func (r *NangoSyncReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Options = r.withDefaults()
	allowed, err := parseNangoURLs(append([]string{r.DefaultNangoURL}, r.AllowedNangoURLs...))
	if err != nil {
		return err
	}
	r.allowedNangoURLs = allowed
	r.Recorder = boundedRecorder{r.Recorder}
	m, err := newMetrics(r.Registerer)
	if err != nil {
		return err
	}
	r.metrics = m
	r.Nango.instrument(m.instrument, m.rateLimitWaited)
	if err := indexSecretNames(context.Background(), mgr.GetFieldIndexer(), r.DefaultSecret.Name); err != nil {
		return err
	}
	if err := mgr.Add(&nangoHealth{r: r, period: r.NangoHealthInterval}); err != nil {
		return fmt.Errorf("add the Nango health check: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&syncv1alpha1.NangoSync{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.syncsUsingSecret),
			builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		WithOptions(controller.Options{
			NewQueue:                r.newQueue(mgr.GetLogger()),
			ReconciliationTimeout:   r.ReconcileTimeout,
			MaxConcurrentReconciles: r.MaxConcurrentReconciles,
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](
				r.RetryBaseDelay, r.RetryMaxDelay),
		}).
		Named("nangosync").
		Complete(r)
}

func (o Options) withDefaults() Options {
	if o.MaxRecordsPerReconcile <= 0 {
		o.MaxRecordsPerReconcile = DefaultMaxRecordsPerReconcile
	}
	if o.MaxTimePerReconcile <= 0 {
		o.MaxTimePerReconcile = DefaultMaxTimePerReconcile
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 1
	}
	if o.ReconcileTimeout <= 0 {
		o.ReconcileTimeout = DefaultReconcileTimeout
	}
	if o.RetryBaseDelay <= 0 {
		o.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if o.RetentionRiskShare <= 0 || o.RetentionRiskShare > 1 {
		o.RetentionRiskShare = DefaultRetentionRiskShare
	}
	if o.NangoHealthInterval <= 0 {
		o.NangoHealthInterval = DefaultNangoHealthInterval
	}
	return o
}
