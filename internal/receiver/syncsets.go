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
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/truncate"
)

// A new connection has no NangoSyncs yet: its auth webhook wakes the NangoSyncSets of its
// integration instead, which list the integration's connections at once and create the
// NangoSyncs of the new one. Nango sends no webhook when a connection is deleted, so only
// creations and re-authorizations wake sets.

// setIndex holds a NangoSyncSet's providerConfigKey: an auth webhook names one integration.
const setIndex = ".spec.providerConfigKey"

// IndexNangoSyncSets registers the receiver's field index on NangoSyncSets. Call it before
// the manager starts.
func IndexNangoSyncSets(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &syncv1alpha1.NangoSyncSet{}, setIndex, indexSetIntegration); err != nil {
		return fmt.Errorf("index NangoSyncSets by integration: %w", err)
	}
	return nil
}

func indexSetIntegration(obj client.Object) []string {
	return []string{obj.(*syncv1alpha1.NangoSyncSet).Spec.ProviderConfigKey}
}

// wakeTargets are what a verified webhook may wake.
type wakeTargets struct {
	syncs []types.NamespacedName
	sets  []types.NamespacedName
	// sameEnvironment holds the syncs the webhook's own Nango environment signed for: a
	// NangoSync's own signing key verified it, or the operator's key for a NangoSync that
	// names none. Only they take run state (failures, and their clearing) from it.
	sameEnvironment map[types.NamespacedName]bool
	// storedRun holds, for each sync, the last run written onto it (storedRun).
	storedRun map[types.NamespacedName]time.Time
}

// newSetWaker writes the wakes of NangoSyncSets: a new requested-at value, which the set
// controller acts on with a discovery.
func newSetWaker(c client.Client, workers, queueSize int, m *metrics, log logr.Logger) *waker {
	w := newWaker(c, workers, queueSize, m, log)
	w.kind = "NangoSyncSet"
	w.object = func(key types.NamespacedName) client.Object {
		return &syncv1alpha1.NangoSyncSet{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	}
	return w
}

// announcesConnection reports whether an auth webhook says a connection now exists with
// working credentials: a creation or a re-authorization that succeeded.
func announcesConnection(wh nango.Webhook) bool {
	a := wh.Auth
	return a != nil && a.Success != nil && *a.Success &&
		(a.Operation == nango.AuthCreation || a.Operation == nango.AuthOverride) && wh.ProviderConfigKey != ""
}

// verifiedSets are the NangoSyncSets of the integration a connection-announcing auth
// webhook names that it may wake: all of them when the operator's key verified it, else
// those whose template names a signing key that did.
func (r *Receiver) verifiedSets(ctx context.Context, sigs nango.WebhookSignatures, body []byte, byOperator bool,
	wh nango.Webhook) ([]types.NamespacedName, error) {
	if !announcesConnection(wh) {
		return nil, nil
	}
	var sets syncv1alpha1.NangoSyncSetList
	// Read only, and matched on a spec field no write of the manager changes (see list).
	if err := r.client.List(ctx, &sets, client.MatchingFields{setIndex: wh.ProviderConfigKey},
		client.UnsafeDisableDeepCopy, client.DisableReadYourWritesConsistency); err != nil {
		return nil, fmt.Errorf("list NangoSyncSets of %s: %w", wh.ProviderConfigKey, err)
	}
	var (
		woken []types.NamespacedName
		errs  []error
	)
	verdicts := map[keySource]bool{}
	for i := range sets.Items {
		set := &sets.Items[i]
		verified := byOperator
		if ref := templateSigningKey(set); ref != nil && !verified {
			source := keySource{secret: types.NamespacedName{Namespace: set.Namespace, Name: ref.Name}, key: ref.Key}
			var seen bool
			if verified, seen = verdicts[source]; !seen {
				var err error
				verified, err = r.keys.verify(ctx, source, sigs, body)
				if err != nil {
					errs = append(errs, err)
				}
				verdicts[source] = verified
			}
		}
		if verified {
			woken = append(woken, client.ObjectKeyFromObject(set))
		}
	}
	return woken, errors.Join(errs...)
}

func templateSigningKey(set *syncv1alpha1.NangoSyncSet) *syncv1alpha1.SecretKeyReference {
	if n := set.Spec.Template.Spec.Nango; n != nil {
		return n.WebhookSigningKeyRef
	}
	return nil
}

// actOnAuth acts on a verified auth webhook. A connection created or re-authorized wakes
// the NangoSyncSets of its integration and clears a failure of its credentials from its
// NangoSyncs; a failure (a refresh or reconnection that failed) is written on its
// NangoSyncs, which show it as a condition. Either way the copy goes on: Nango keeps
// serving the records it has.
//
// As with a run's state, the credentials' state is written only onto the NangoSyncs of
// the webhook's own environment: one that names its own signing key reads a connection of
// the same id in another Nango environment, whose credentials this webhook says nothing
// about. An auth body carries no time, so a replayed failure is written again; the health
// check clears it once Nango lists the connection without an auth error.
func (r *Receiver) actOnAuth(wh nango.Webhook, targets wakeTargets, arrived time.Time) answer {
	accepted := func(result string) answer { return answer{http.StatusAccepted, labelType(wh.Type), result, "accepted"} }
	auth := wh.Auth
	own := targets.ofSameEnvironment()
	switch {
	case auth.Success == nil:
		return accepted(resultIgnored)
	case *auth.Success:
		for _, key := range own {
			r.waker.add(key, func(work *wakeWork) { work.authFailure, work.clearAuthFailure = nil, true })
		}
		if len(targets.sets) == 0 {
			return accepted(resultIgnored)
		}
		for _, key := range targets.sets {
			r.setWaker.add(key, func(work *wakeWork) { work.mergeSuccess(arrived, true, time.Time{}) })
		}
		r.log.V(1).Info("waking NangoSyncSets for a new connection", "nangosyncsets", targets.sets,
			"providerConfigKey", wh.ProviderConfigKey, "connectionId", wh.ConnectionID, "operation", auth.Operation)
		return accepted(resultWake)
	case len(own) == 0:
		if len(targets.syncs) > 0 {
			r.log.V(1).Info("ignored a credentials failure of another environment", "nangosyncs", targets.syncs)
		}
		return accepted(resultIgnored)
	default:
		failure := authFailure(auth, arrived)
		for _, key := range own {
			r.waker.add(key, func(work *wakeWork) {
				work.noteArrival(arrived)
				work.authFailure, work.clearAuthFailure = &failure, false
			})
		}
		r.log.Info("Nango reports that a connection's credentials fail", "nangosyncs", own,
			"operation", auth.Operation, "errorType", failure.Type)
		return accepted(resultAuthFailed)
	}
}

// ofSameEnvironment are the syncs of the webhook's own Nango environment.
func (t wakeTargets) ofSameEnvironment() []types.NamespacedName {
	own := make([]types.NamespacedName, 0, len(t.syncs))
	for _, key := range t.syncs {
		if t.sameEnvironment[key] {
			own = append(own, key)
		}
	}
	return own
}

// authFailure turns a failed auth operation into its annotation value.
func authFailure(auth *nango.AuthWebhook, arrived time.Time) syncv1alpha1.NangoAuthFailure {
	f := syncv1alpha1.NangoAuthFailure{Operation: truncate.String(auth.Operation, maxNameBytes), Type: "unknown",
		FailedAt: arrived.UTC().Format(time.RFC3339Nano)}
	if auth.Error != nil {
		if auth.Error.Type != "" {
			f.Type = truncate.String(auth.Error.Type, maxNameBytes)
		}
		f.Description = truncate.String(auth.Error.Description, maxDescriptionBytes)
	}
	return f
}
