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
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/truncate"
)

// SyncSetFieldManager is the field manager of the fields a NangoSyncSet owns on the
// NangoSyncs it generates (server-side apply).
const SyncSetFieldManager = "nango-operator-syncset"

// templateHashAnnotation records the template a generated NangoSync was last applied
// from, so that a template change (a label removed, say) reaches it even when what it
// holds still looks right.
const templateHashAnnotation = "sync.nango.dev/template-hash"

// defaultDiscoveryInterval applies when the API server did not default it.
const defaultDiscoveryInterval = 5 * time.Minute

// DefaultMaxGoneChecksPerReconcile bounds the targeted checks (one Nango request each) of
// one reconcile of a set, so that a listing that lost many connections at once costs
// Nango's rate limit a bounded share; the rest are checked by the next reconciles.
const DefaultMaxGoneChecksPerReconcile = 50

// NangoSyncSetReconciler keeps, for each NangoSyncSet, a NangoSync per selected
// connection and model. It only generates NangoSyncs: every copy is made by the NangoSync
// reconciler.
type NangoSyncSetReconciler struct {
	client.Client
	Recorder events.EventRecorder
	// Syncs is the NangoSync reconciler. A set lists connections with the Nango client
	// its generated NangoSyncs use: the same Secret, URL policy and rate limiter.
	Syncs *NangoSyncReconciler
	// MaxConcurrentReconciles is how many sets reconcile at once.
	MaxConcurrentReconciles int
	// MaxGoneChecksPerReconcile bounds the targeted checks of one reconcile.
	MaxGoneChecksPerReconcile int

	discoveries discoveries
}

// The permissions of the set reconciler; `make manifests` writes them to config/rbac/role.yaml.
// +kubebuilder:rbac:groups=sync.nango.dev,resources=nangosyncsets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=sync.nango.dev,resources=nangosyncsets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sync.nango.dev,resources=nangosyncsets/finalizers,verbs=update
// +kubebuilder:rbac:groups=sync.nango.dev,resources=nangosyncs,verbs=create;delete

// discovery is what the last complete listing of a set's connections found. It lives in
// memory: a restarted manager lists again before it deletes anything.
type discovery struct {
	generation int64
	at         time.Time
	// secretVersion is the resourceVersion of the Nango Secret when the listing began
	// ("" when it did not exist): a changed Secret may hold the key of another Nango
	// environment, whose connections are other ones.
	secretVersion string
	connections   []string // selected connection ids, sorted
	// unlisted are connections that have NangoSyncs but were not in the listing, waiting
	// for their targeted check.
	unlisted []string
}

type discoveries struct {
	mu sync.Mutex
	m  map[types.UID]*discovery
}

func (d *discoveries) get(uid types.UID) *discovery {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[uid]
}

func (d *discoveries) put(uid types.UID, disc *discovery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[types.UID]*discovery{}
	}
	d.m[uid] = disc
}

func (d *discoveries) forget(uid types.UID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, uid)
}

// Reconcile lists the set's connections when a discovery is due, brings its NangoSyncs in
// line with them and with the template, and patches its status once at the end.
func (r *NangoSyncSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	set := &syncv1alpha1.NangoSyncSet{}
	if err := r.Get(ctx, req.NamespacedName, set); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !set.DeletionTimestamp.IsZero() {
		// The generated NangoSyncs carry the set's owner reference: the garbage collector
		// deletes them, and each one's deletionPolicy applies to its rows.
		r.discoveries.forget(set.UID)
		return ctrl.Result{}, nil
	}
	before := set.DeepCopy()
	defer func() {
		if equality.Semantic.DeepEqual(before.Status, set.Status) {
			return
		}
		// Also after the reconcile's deadline: a timed-out discovery must still say so.
		patchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusPatchTimeout)
		defer cancel()
		if err := r.Status().Patch(patchCtx, set, client.MergeFrom(before)); client.IgnoreNotFound(err) != nil {
			retErr = errors.Join(retErr, fmt.Errorf("patch the status of NangoSyncSet %s: %w", req.NamespacedName, err))
		}
	}()
	set.Status.ObservedGeneration = set.Generation

	children, err := r.children(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	if set.Spec.Suspend {
		r.count(set, children, len(children))
		setSetCondition(set, syncv1alpha1.ReadyCondition, metav1.ConditionFalse, syncv1alpha1.SuspendedReason,
			"Suspended by spec.suspend: no NangoSync is created, changed or deleted; the existing ones keep syncing")
		apimeta.RemoveStatusCondition(&set.Status.Conditions, syncv1alpha1.ReconcilingCondition)
		apimeta.RemoveStatusCondition(&set.Status.Conditions, syncv1alpha1.StalledCondition)
		return ctrl.Result{}, nil
	}
	return r.reconcileSet(ctx, set, children)
}

// reconcileSet runs the steps: discover when due, apply the desired NangoSyncs, settle
// those whose connection was not listed, then report.
func (r *NangoSyncSetReconciler) reconcileSet(ctx context.Context, set *syncv1alpha1.NangoSyncSet,
	children []syncv1alpha1.NangoSync) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var nangoClient *nango.Client
	clientFor := func() (*nango.Client, error) {
		if nangoClient != nil {
			return nangoClient, nil
		}
		c, err := r.Syncs.nangoClient(ctx, probeSync(set))
		nangoClient = c
		return c, err
	}

	secretVersion, err := r.nangoSecretVersion(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	disc := r.discoveries.get(set.UID)
	var failed, discoveryFailed error
	if r.discoveryDue(set, disc, secretVersion) {
		fresh, err := r.discover(ctx, set, children, clientFor)
		if err != nil {
			discoveryFailed = err
			logger.Info("discovery failed; nothing is deleted", "error", err.Error())
		} else {
			changed := disc == nil || !slices.Equal(disc.connections, fresh.connections)
			fresh.secretVersion = secretVersion
			disc = fresh
			r.discoveries.put(set.UID, disc)
			if changed || set.Status.LastDiscoveryTime == nil {
				set.Status.LastDiscoveryTime = &metav1.Time{Time: disc.at}
			}
			set.Status.Connections = int32(len(disc.connections))
			if requested, ok := set.Annotations[syncv1alpha1.RequestedAtAnnotation]; ok {
				set.Status.LastHandledRequestedAt = requested
			}
		}
	}

	// The NangoSyncs of the last complete discovery are created and kept in line with the
	// template even while a discovery fails; nothing is let go unless every step before
	// succeeded, this discovery included.
	owned, removed := len(children), 0
	if disc != nil {
		created, err := r.applyDesired(ctx, set, children, disc.connections)
		owned += created
		failed = err
		if failed == nil && discoveryFailed == nil {
			removed, failed = r.letGo(ctx, set, unwanted(set, children, disc.connections), "its model is no longer in spec.models")
		}
		if failed == nil && discoveryFailed == nil {
			var n int
			n, failed = r.settleUnlisted(ctx, set, children, disc, clientFor)
			removed += n
		}
	}
	r.count(set, children, owned-removed)
	return r.conclude(ctx, set, disc, outcome{discoveryFailed: discoveryFailed, failed: failed, removed: removed})
}

// outcome is what a reconcile of a set ran into: a failed discovery, a failure of a later
// step, and how many NangoSyncs it let go before either.
type outcome struct {
	discoveryFailed error
	failed          error
	removed         int
}

func (o outcome) err() error { return errors.Join(o.discoveryFailed, o.failed) }

// message says what failed and what was deleted meanwhile.
func (o outcome) message(f failure) string {
	kept := "Nothing was deleted; the NangoSyncs already generated keep syncing"
	if o.removed > 0 {
		kept = fmt.Sprintf("%d NangoSyncs no longer wanted were let go before the failure; the others keep syncing", o.removed)
	}
	if o.discoveryFailed != nil {
		return "Discovery failed: " + f.message + ". " + kept +
			" (a NangoSync is let go only after a complete discovery, and for a gone connection only once Nango confirms it)"
	}
	return f.message + ". " + kept
}

// discoveryDue reports whether the set's connections must be listed now: never listed by
// this manager, a new spec, a changed Nango Secret, an interval gone by, or a wake
// (webhook or person) not handled.
func (r *NangoSyncSetReconciler) discoveryDue(set *syncv1alpha1.NangoSyncSet, disc *discovery, secretVersion string) bool {
	if disc == nil || disc.generation != set.Generation || disc.secretVersion != secretVersion ||
		time.Since(disc.at) >= discoveryInterval(set) {
		return true
	}
	requested, ok := set.Annotations[syncv1alpha1.RequestedAtAnnotation]
	return ok && requested != set.Status.LastHandledRequestedAt
}

func discoveryInterval(set *syncv1alpha1.NangoSyncSet) time.Duration {
	if set.Spec.DiscoveryInterval == nil || set.Spec.DiscoveryInterval.Duration <= 0 {
		return defaultDiscoveryInterval
	}
	return set.Spec.DiscoveryInterval.Duration
}

// discover lists every selected connection of the integration, through every page. Any
// failed page fails the discovery: a partial listing is never taken for the truth.
func (r *NangoSyncSetReconciler) discover(ctx context.Context, set *syncv1alpha1.NangoSyncSet,
	children []syncv1alpha1.NangoSync, clientFor func() (*nango.Client, error)) (*discovery, error) {
	c, err := clientFor()
	if err != nil {
		return nil, err
	}
	conns, err := c.AllConnections(ctx, selection(set, ""))
	if err != nil {
		return nil, fmt.Errorf("list the connections of %s: %w", set.Spec.ProviderConfigKey, err)
	}
	disc := &discovery{generation: set.Generation, at: time.Now()}
	for _, conn := range conns {
		// Nango's integrationId filter matches exactly, but keep only what was asked for.
		if conn.ProviderConfigKey == set.Spec.ProviderConfigKey {
			disc.connections = append(disc.connections, conn.ConnectionID)
		}
	}
	slices.Sort(disc.connections)
	disc.connections = slices.Compact(disc.connections)
	for _, child := range children {
		id := child.Spec.ConnectionID
		if !child.DeletionTimestamp.IsZero() {
			continue // already going
		}
		if _, listed := slices.BinarySearch(disc.connections, id); !listed && !slices.Contains(disc.unlisted, id) {
			disc.unlisted = append(disc.unlisted, id)
		}
	}
	return disc, nil
}

// selection is the listing request of a set's selector, for every connection or one.
func selection(set *syncv1alpha1.NangoSyncSet, connectionID string) nango.ListConnectionsRequest {
	req := nango.ListConnectionsRequest{IntegrationIDs: []string{set.Spec.ProviderConfigKey}, ConnectionID: connectionID}
	if sel := set.Spec.Selector; sel != nil {
		req.Tags = sel.Tags
		req.EndUserOrganizationID = sel.EndUserOrganizationID
	}
	if connectionID != "" {
		req.Limit = nango.MaxConnectionsPageSize
	}
	return req
}

// probeSync is a NangoSync as the set's template makes them, for what a NangoSync
// resolves from its spec: the Nango URL (under the admin's policy) and secret key.
func probeSync(set *syncv1alpha1.NangoSyncSet) *syncv1alpha1.NangoSync {
	return &syncv1alpha1.NangoSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: set.Namespace, Name: set.Name},
		Spec:       syncv1alpha1.NangoSyncSpec{ProviderConfigKey: set.Spec.ProviderConfigKey, Nango: set.Spec.Template.Spec.Nango},
	}
}

// nangoSecretVersion is the resourceVersion of the Secret holding the set's Nango secret
// key, from the manager's metadata cache: "" when there is no such Secret.
func (r *NangoSyncSetReconciler) nangoSecretVersion(ctx context.Context, set *syncv1alpha1.NangoSyncSet) (string, error) {
	key := client.ObjectKey{Namespace: set.Namespace, Name: setNangoSecretName(set, r.Syncs.DefaultSecret.Name)}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := r.Get(ctx, key, meta); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("look up Secret %s: %w", key, err)
	}
	return meta.ResourceVersion, nil
}

// setNangoSecretName is the Secret a set lists connections with: the template's, else
// the operator's default.
func setNangoSecretName(set *syncv1alpha1.NangoSyncSet, defaultSecret string) string {
	if n := set.Spec.Template.Spec.Nango; n != nil && n.SecretRef != nil {
		return n.SecretRef.Name
	}
	return defaultSecret
}

// setNangoSecretIndex indexes NangoSyncSets by the name of their Nango Secret, so that a
// changed Secret wakes exactly the sets that list connections with it.
const setNangoSecretIndex = ".spec.template.spec.nango.secretRef.name"

// setsUsingSecret maps a changed Secret to the sets of its namespace that list
// connections with it: one stalled on SecretNotFound recovers at once, and one whose key
// changed lists again.
func (r *NangoSyncSetReconciler) setsUsingSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var list syncv1alpha1.NangoSyncSetList
	if err := r.List(ctx, &list, client.InNamespace(secret.GetNamespace()),
		client.MatchingFields{setNangoSecretIndex: secret.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		log.FromContext(ctx).Error(err, "list NangoSyncSets using a Secret", "secret", client.ObjectKeyFromObject(secret))
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return requests
}

// children lists the NangoSyncs the set controls.
func (r *NangoSyncSetReconciler) children(ctx context.Context, set *syncv1alpha1.NangoSyncSet) ([]syncv1alpha1.NangoSync, error) {
	var list syncv1alpha1.NangoSyncList
	// The cache's own objects, not copies: a set may own thousands, and a reconcile only
	// reads them (letGo copies the one it changes).
	if err := r.List(ctx, &list, client.InNamespace(set.Namespace),
		client.MatchingLabels{syncv1alpha1.SyncSetLabel: set.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list the NangoSyncs of NangoSyncSet %s: %w", set.Name, err)
	}
	owned := list.Items[:0]
	for _, child := range list.Items {
		if ref := metav1.GetControllerOf(&child); ref != nil && ref.UID == set.UID {
			owned = append(owned, child)
		}
	}
	return owned, nil
}

// applyDesired creates the missing NangoSyncs and puts the template back on those that
// differ from it, by server-side apply. It answers how many it created.
func (r *NangoSyncSetReconciler) applyDesired(ctx context.Context, set *syncv1alpha1.NangoSyncSet,
	children []syncv1alpha1.NangoSync, connections []string) (int, error) {
	existing := make(map[string]*syncv1alpha1.NangoSync, len(children))
	for i := range children {
		existing[children[i].Name] = &children[i]
	}
	hash := templateHash(set)
	type pending struct {
		want       *syncv1alpha1.NangoSync
		controlled bool
	}
	var todo []pending
	for _, conn := range connections {
		for _, m := range set.Spec.Models {
			want := desiredSync(set, conn, m, hash)
			have, ok := existing[want.Name]
			if !ok || !inLine(have, want) {
				todo = append(todo, pending{want, ok})
			}
		}
	}
	// A new set over thousands of connections applies thousands of NangoSyncs: a few at a
	// time, as each is one round trip to the API server.
	var (
		mu      sync.Mutex
		created int
		errs    []error
		g       errgroup.Group
	)
	g.SetLimit(applyConcurrency)
	for _, p := range todo {
		g.Go(func() error {
			err := r.apply(ctx, p.want, p.controlled)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case !p.controlled:
				created++
			}
			return nil
		})
	}
	_ = g.Wait()
	if len(errs) > 0 {
		return created, fmt.Errorf("apply %d NangoSyncs (first: %w)", len(errs), errs[0])
	}
	return created, nil
}

// applyConcurrency is how many NangoSyncs one reconcile of a set applies at once.
const applyConcurrency = 8

// apply server-side applies a desired NangoSync with the set's field manager, taking
// back any field a person changed by hand. A NangoSync of that name that the set does not
// control is left alone: creating over it would take someone else's object.
func (r *NangoSyncSetReconciler) apply(ctx context.Context, want *syncv1alpha1.NangoSync, controlled bool) error {
	if !controlled {
		other := &syncv1alpha1.NangoSync{}
		err := r.Get(ctx, client.ObjectKeyFromObject(want), other)
		if err == nil && !sameDataSet(other, want) {
			return fmt.Errorf("NangoSync %s already exists for another data set (%s); rename or delete it", want.Name, other.DataSet())
		}
		if ref := metav1.GetControllerOf(other); err == nil && ref != nil && ref.UID != want.OwnerReferences[0].UID {
			return fmt.Errorf("NangoSync %s already exists, controlled by %s %s", want.Name, ref.Kind, ref.Name)
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("read NangoSync %s: %w", want.Name, err)
		}
	}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(want)
	if err != nil {
		return fmt.Errorf("encode NangoSync %s: %w", want.Name, err)
	}
	delete(raw, "status")
	unstructured.RemoveNestedField(raw, "metadata", "creationTimestamp")
	// false is left out of the encoding, but the set owns suspend either way.
	if err := unstructured.SetNestedField(raw, want.Spec.Suspend, "spec", "suspend"); err != nil {
		return fmt.Errorf("encode NangoSync %s: %w", want.Name, err)
	}
	u := &unstructured.Unstructured{Object: raw}
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(SyncSetFieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply NangoSync %s: %w", want.Name, err)
	}
	return nil
}

func sameDataSet(a, b *syncv1alpha1.NangoSync) bool { return a.DataSet() == b.DataSet() }

// inLine reports whether a generated NangoSync holds what the set applies to it: the
// spec fields the set sets, the template's labels and annotations, the template hash.
// Fields the set leaves unset are not its to judge (an apply could not clear them). It runs
// for every NangoSync of a set on each of its reconciles, so it compares typed fields.
func inLine(have, want *syncv1alpha1.NangoSync) bool {
	h, w := &have.Spec, &want.Spec
	unsetOr := func(set bool, equal bool) bool { return !set || equal }
	return h.ConnectionID == w.ConnectionID && h.ProviderConfigKey == w.ProviderConfigKey &&
		h.Model == w.Model && h.Variant == w.Variant && h.Suspend == w.Suspend &&
		unsetOr(w.SyncName != "", h.SyncName == w.SyncName) &&
		unsetOr(w.PageSize != 0, h.PageSize == w.PageSize) &&
		unsetOr(w.DeletionPolicy != "", h.DeletionPolicy == w.DeletionPolicy) &&
		unsetOr(w.Interval != nil, h.Interval != nil && h.Interval.Duration == w.Interval.Duration) &&
		unsetOr(w.ModifiedAfter != nil, h.ModifiedAfter != nil && h.ModifiedAfter.Equal(w.ModifiedAfter)) &&
		unsetOr(w.Nango != nil, equality.Semantic.DeepEqual(h.Nango, w.Nango)) &&
		equality.Semantic.DeepEqual(h.Sink, w.Sink) &&
		subset(want.Labels, have.Labels) && subset(want.Annotations, have.Annotations)
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// desiredSync is the NangoSync the set wants for one connection and model.
func desiredSync(set *syncv1alpha1.NangoSyncSet, connectionID string, m syncv1alpha1.SyncSetModel, hash string) *syncv1alpha1.NangoSync {
	tmpl := set.Spec.Template
	labels := maps.Clone(tmpl.Metadata.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[syncv1alpha1.SyncSetLabel] = set.Name
	annotations := maps.Clone(tmpl.Metadata.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[syncv1alpha1.ConnectionIDAnnotation] = connectionID
	annotations[templateHashAnnotation] = hash
	spec := tmpl.Spec.DeepCopy()
	return &syncv1alpha1.NangoSync{
		TypeMeta: metav1.TypeMeta{APIVersion: syncv1alpha1.GroupVersion.String(), Kind: "NangoSync"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        SyncName(set.Name, set.Spec.ProviderConfigKey, connectionID, m.Model, m.Variant),
			Namespace:   set.Namespace,
			Labels:      labels,
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: syncv1alpha1.GroupVersion.String(), Kind: "NangoSyncSet", Name: set.Name, UID: set.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: syncv1alpha1.NangoSyncSpec{
			ConnectionID:      connectionID,
			ProviderConfigKey: set.Spec.ProviderConfigKey,
			Model:             m.Model,
			Variant:           syncv1alpha1.VariantOrBase(m.Variant),
			SyncName:          m.SyncName,
			Nango:             spec.Nango,
			Sink:              spec.Sink,
			Interval:          spec.Interval,
			PageSize:          spec.PageSize,
			ModifiedAfter:     spec.ModifiedAfter,
			Suspend:           spec.Suspend,
			DeletionPolicy:    spec.DeletionPolicy,
		},
	}
}

// templateHash identifies the template and models a NangoSync was applied from.
func templateHash(set *syncv1alpha1.NangoSyncSet) string {
	b, _ := json.Marshal(struct {
		T syncv1alpha1.NangoSyncTemplate
		M []syncv1alpha1.SyncSetModel
	}{set.Spec.Template, set.Spec.Models})
	sum := sha256.Sum256(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:10]))
}

// SyncName is the name of the NangoSync a set generates for one connection and model: a
// readable prefix (set, connection, model), cut to fit, and a hash of the whole identity,
// so that two connection ids that read alike (Nango allows 255 characters of almost
// anything) never share a name. It fits the 63 characters of a label value.
func SyncName(setName, providerConfigKey, connectionID, model, variant string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{setName, providerConfigKey, connectionID, model,
		syncv1alpha1.VariantOrBase(variant)}, "\x00")))
	hash := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])[:10])
	prefix := dnsLabel(setName + "-" + connectionID + "-" + model)
	const maxPrefix = 63 - 1 - 10
	if len(prefix) > maxPrefix {
		prefix = strings.TrimRight(prefix[:maxPrefix], "-")
	}
	if prefix == "" {
		return "s-" + hash
	}
	return prefix + "-" + hash
}

// dnsLabel lowercases s and keeps only letters and digits, runs of anything else becoming
// one dash, with no dash at either end.
func dnsLabel(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
			dash = false
			continue
		}
		dash = true
	}
	return b.String()
}

// settleUnlisted applies the gone-connection policy to the NangoSyncs of connections the
// listing lacked, but only for those a targeted check confirms Nango no longer has (or no
// longer selects): a listing can miss a connection (one deleted while paging shifts the
// pages, a proxy cuts an answer short), a targeted check cannot. A failed check keeps
// everything. It answers how many NangoSyncs the set gave up.
func (r *NangoSyncSetReconciler) settleUnlisted(ctx context.Context, set *syncv1alpha1.NangoSyncSet,
	children []syncv1alpha1.NangoSync, disc *discovery, clientFor func() (*nango.Client, error)) (int, error) {
	if len(disc.unlisted) == 0 {
		return 0, nil
	}
	c, err := clientFor()
	if err != nil {
		return 0, err
	}
	limit := r.MaxGoneChecksPerReconcile
	if limit <= 0 {
		limit = DefaultMaxGoneChecksPerReconcile
	}
	removed := 0
	for len(disc.unlisted) > 0 && limit > 0 {
		limit--
		id := disc.unlisted[0]
		conns, err := c.ListConnections(ctx, selection(set, id))
		if err != nil {
			return removed, fmt.Errorf("check connection %q, which the listing lacked (nothing deleted): %w", id, err)
		}
		if slices.ContainsFunc(conns, func(conn nango.Connection) bool {
			return conn.ConnectionID == id && conn.ProviderConfigKey == set.Spec.ProviderConfigKey
		}) {
			// Still there: the listing was incomplete. Its NangoSyncs stay, and it counts.
			log.FromContext(ctx).Info("a connection missing from the listing is still selected; keeping its NangoSyncs", "connection", id)
			disc.connections = append(disc.connections, id)
			slices.Sort(disc.connections)
		} else {
			n, err := r.letGo(ctx, set, ofConnection(children, id), fmt.Sprintf(
				"a complete listing lacked connection %q and Nango confirmed it is gone or no longer selected", id))
			removed += n
			if err != nil {
				return removed, err
			}
		}
		disc.unlisted = disc.unlisted[1:]
	}
	set.Status.Connections = int32(len(disc.connections))
	return removed, nil
}

// letGo applies the gone-connection policy to NangoSyncs the set no longer wants: delete
// them, or release them (no owner reference, no set label) to live on their own. It
// answers how many it let go.
func (r *NangoSyncSetReconciler) letGo(ctx context.Context, set *syncv1alpha1.NangoSyncSet,
	children []*syncv1alpha1.NangoSync, why string) (int, error) {
	n := 0
	for _, child := range children {
		if !child.DeletionTimestamp.IsZero() {
			continue
		}
		if set.Spec.GoneConnectionPolicy == syncv1alpha1.GoneConnectionKeep {
			patch := client.MergeFrom(child)
			child = child.DeepCopy() // the cache's object must not change
			delete(child.Labels, syncv1alpha1.SyncSetLabel)
			child.OwnerReferences = slices.DeleteFunc(child.OwnerReferences, func(ref metav1.OwnerReference) bool {
				return ref.UID == set.UID
			})
			if err := r.Patch(ctx, child, patch); client.IgnoreNotFound(err) != nil {
				return n, fmt.Errorf("release NangoSync %s: %w", child.Name, err)
			}
			r.Recorder.Eventf(set, child, corev1.EventTypeNormal, "Released", "Release",
				"Released NangoSync %s (goneConnectionPolicy Keep): %s", child.Name, why)
		} else {
			if err := r.Delete(ctx, child, client.Preconditions{UID: &child.UID}); client.IgnoreNotFound(err) != nil {
				return n, fmt.Errorf("delete NangoSync %s: %w", child.Name, err)
			}
			r.Recorder.Eventf(set, child, corev1.EventTypeNormal, "Deleted", "Delete",
				"Deleted NangoSync %s (its deletionPolicy %s applies to its rows): %s", child.Name, child.Spec.DeletionPolicy, why)
		}
		n++
	}
	return n, nil
}

// unwanted are the NangoSyncs of listed connections whose model and variant the set no
// longer lists.
func unwanted(set *syncv1alpha1.NangoSyncSet, children []syncv1alpha1.NangoSync, connections []string) []*syncv1alpha1.NangoSync {
	var out []*syncv1alpha1.NangoSync
	for i := range children {
		child := &children[i]
		if _, listed := slices.BinarySearch(connections, child.Spec.ConnectionID); !listed {
			continue // a gone connection's NangoSyncs wait for their targeted check
		}
		if !slices.ContainsFunc(set.Spec.Models, func(m syncv1alpha1.SyncSetModel) bool {
			return m.Model == child.Spec.Model && syncv1alpha1.VariantOrBase(m.Variant) == syncv1alpha1.VariantOrBase(child.Spec.Variant)
		}) {
			out = append(out, child)
		}
	}
	return out
}

// ofConnection are the NangoSyncs of one connection.
func ofConnection(children []syncv1alpha1.NangoSync, connectionID string) []*syncv1alpha1.NangoSync {
	var out []*syncv1alpha1.NangoSync
	for i := range children {
		if children[i].Spec.ConnectionID == connectionID {
			out = append(out, &children[i])
		}
	}
	return out
}

// count sets how many NangoSyncs the set owns (those listed, plus those it created and
// minus those it let go in this reconcile) and how many of them are Ready.
func (r *NangoSyncSetReconciler) count(set *syncv1alpha1.NangoSyncSet, children []syncv1alpha1.NangoSync, owned int) {
	ready := 0
	for i := range children {
		if children[i].DeletionTimestamp.IsZero() &&
			apimeta.IsStatusConditionTrue(children[i].Status.Conditions, syncv1alpha1.ReadyCondition) {
			ready++
		}
	}
	ready = min(ready, owned)
	set.Status.Syncs = int32(owned)
	set.Status.ReadySyncs = int32(ready)
	set.Status.Ready = fmt.Sprintf("%d/%d", ready, owned)
}

// conclude sets the conditions and the next requeue: the next discovery, sooner while
// connections wait for their targeted check, with backoff after a failure.
func (r *NangoSyncSetReconciler) conclude(ctx context.Context, set *syncv1alpha1.NangoSyncSet,
	disc *discovery, o outcome) (ctrl.Result, error) {
	if failed := o.err(); failed != nil {
		if errors.Is(failed, context.Canceled) && ctx.Err() != nil {
			return ctrl.Result{}, failed
		}
		// A failed discovery comes first: it is what the condition is about.
		f := classifySet(cmp.Or(o.discoveryFailed, o.failed))
		setSetCondition(set, syncv1alpha1.ReadyCondition, metav1.ConditionFalse, f.reason, o.message(f))
		if f.stalled {
			setSetCondition(set, syncv1alpha1.StalledCondition, metav1.ConditionTrue, f.reason, f.message)
			apimeta.RemoveStatusCondition(&set.Status.Conditions, syncv1alpha1.ReconcilingCondition)
		} else {
			setSetCondition(set, syncv1alpha1.ReconcilingCondition, metav1.ConditionTrue, f.reason,
				"Retrying with backoff: "+f.message)
			apimeta.RemoveStatusCondition(&set.Status.Conditions, syncv1alpha1.StalledCondition)
		}
		if f.retryAfter > 0 {
			return ctrl.Result{RequeueAfter: f.retryAfter}, nil
		}
		return ctrl.Result{}, failed // the workqueue's exponential backoff
	}
	setSetCondition(set, syncv1alpha1.ReadyCondition, metav1.ConditionTrue, syncv1alpha1.DiscoveredReason, fmt.Sprintf(
		"Every selected connection of %s has its NangoSyncs (%d models each)", set.Spec.ProviderConfigKey, len(set.Spec.Models)))
	apimeta.RemoveStatusCondition(&set.Status.Conditions, syncv1alpha1.ReconcilingCondition)
	apimeta.RemoveStatusCondition(&set.Status.Conditions, syncv1alpha1.StalledCondition)
	if len(disc.unlisted) > 0 {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	next := discoveryInterval(set) - time.Since(disc.at)
	return ctrl.Result{RequeueAfter: wait.Jitter(max(next, time.Millisecond), intervalJitter), Priority: ptr.To(handler.LowPriority)}, nil
}

// classifySet is classify, and InvalidSpec when the API server refuses a NangoSync the
// set generates: only a change of the set's spec helps.
func classifySet(err error) failure {
	if apierrors.IsInvalid(err) {
		return failure{reason: syncv1alpha1.InvalidSpecReason, stalled: true, message: fmt.Sprintf(
			"The API server refuses the NangoSyncs this set generates: %s. Change spec.template or spec.models so that they are valid", err.Error())}
	}
	return classify(err)
}

func setSetCondition(set *syncv1alpha1.NangoSyncSet, conditionType string, status metav1.ConditionStatus, reason, message string) {
	apimeta.SetStatusCondition(&set.Status.Conditions, metav1.Condition{
		Type: conditionType, Status: status, Reason: reason,
		Message: truncate.String(message, maxConditionMessage), ObservedGeneration: set.Generation,
	})
}

// SetupWithManager registers the reconciler. It watches NangoSyncSets (spec and
// annotations: a wake is a new requested-at value), the NangoSyncs they control (what
// the set owns of them, and whether they are Ready) and the Secrets holding their Nango
// secret keys (metadata only).
func (r *NangoSyncSetReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Syncs == nil {
		return errors.New("the NangoSyncSet reconciler needs the NangoSync reconciler")
	}
	if r.MaxConcurrentReconciles <= 0 {
		r.MaxConcurrentReconciles = 1
	}
	r.Recorder = boundedRecorder{r.Recorder}
	// The NangoSyncSet informer starts with the manager's cache, not when this controller
	// starts: the manager's readiness (the caches synced) then covers it, and a fresh API
	// server's watch cache for the kind (which answers "retry in a second" until it is
	// ready) does not hold up the NangoSync controller's start as well.
	if _, err := mgr.GetCache().GetInformer(context.Background(), &syncv1alpha1.NangoSyncSet{}); err != nil {
		return fmt.Errorf("watch NangoSyncSets: %w", err)
	}
	opts := r.Syncs.withDefaults()
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &syncv1alpha1.NangoSyncSet{}, setNangoSecretIndex,
		func(obj client.Object) []string {
			return []string{setNangoSecretName(obj.(*syncv1alpha1.NangoSyncSet), opts.DefaultSecret.Name)}
		})
	if err != nil {
		return fmt.Errorf("index NangoSyncSets by Secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&syncv1alpha1.NangoSyncSet{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&syncv1alpha1.NangoSync{}, builder.WithPredicates(childChanged{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.setsUsingSecret),
			builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: r.MaxConcurrentReconciles,
			ReconciliationTimeout:   opts.ReconcileTimeout,
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](
				opts.RetryBaseDelay, opts.RetryMaxDelay),
		}).
		Named("nangosyncset").
		Complete(r)
}

// childChanged passes the events of a generated NangoSync that its set acts on: created
// or deleted, a spec, label or owner change, a Ready change. Its own syncs (status
// patches) and wakes (the requested-at annotation) pass only when Ready changes.
type childChanged struct {
	predicate.Funcs
}

func (childChanged) Update(e event.UpdateEvent) bool {
	oldSync, ok1 := e.ObjectOld.(*syncv1alpha1.NangoSync)
	newSync, ok2 := e.ObjectNew.(*syncv1alpha1.NangoSync)
	if !ok1 || !ok2 {
		return true
	}
	return oldSync.Generation != newSync.Generation ||
		!maps.Equal(oldSync.Labels, newSync.Labels) ||
		!maps.Equal(templated(oldSync.Annotations), templated(newSync.Annotations)) ||
		!equality.Semantic.DeepEqual(oldSync.OwnerReferences, newSync.OwnerReferences) ||
		!newSync.DeletionTimestamp.IsZero() ||
		apimeta.IsStatusConditionTrue(oldSync.Status.Conditions, syncv1alpha1.ReadyCondition) !=
			apimeta.IsStatusConditionTrue(newSync.Status.Conditions, syncv1alpha1.ReadyCondition)
}

// templated drops the operator's own annotations, which change with every wake.
func templated(annotations map[string]string) map[string]string {
	out := maps.Clone(annotations)
	maps.DeleteFunc(out, func(k, _ string) bool {
		return strings.HasPrefix(k, "sync.nango.dev/") && k != syncv1alpha1.ConnectionIDAnnotation && k != templateHashAnnotation
	})
	return out
}
