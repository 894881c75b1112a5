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
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// secretNamesIndex indexes NangoSyncs by the names of the Secrets they read, so that a
// changed Secret wakes exactly the NangoSyncs that use it.
const secretNamesIndex = ".spec.secretNames"

// secretError says a Secret or one of its keys is missing. The message names both and
// never holds a value.
type secretError struct {
	namespace, name, key string
	missingKey           bool
}

func (e *secretError) Error() string {
	if e.missingKey {
		return fmt.Sprintf("Secret %s/%s has no key %q", e.namespace, e.name, e.key)
	}
	return fmt.Sprintf("Secret %s/%s not found", e.namespace, e.name)
}

// readSecretKey reads one key of a Secret in the NangoSync's own namespace; Secrets of
// other namespaces are never read.
func (r *NangoSyncReconciler) readSecretKey(ctx context.Context, nsync *syncv1alpha1.NangoSync,
	ref syncv1alpha1.SecretKeyReference) (string, error) {
	key := client.ObjectKey{Namespace: nsync.Namespace, Name: ref.Name}
	if err := r.checkSecretOptIn(ctx, key, ref); err != nil {
		return "", err
	}
	data, err := r.Secrets.Data(ctx, key)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", &secretError{namespace: key.Namespace, name: key.Name, key: ref.Key}
		}
		return "", fmt.Errorf("read Secret %s: %w", key, err)
	}
	value, ok := data[ref.Key]
	if !ok || len(value) == 0 {
		return "", &secretError{namespace: key.Namespace, name: key.Name, key: ref.Key, missingKey: true}
	}
	return string(value), nil
}

// checkSecretOptIn refuses, when the operator requires it, a Secret that is not labelled
// for NangoSyncs. Only its metadata, from the manager's cache, is looked at.
func (r *NangoSyncReconciler) checkSecretOptIn(ctx context.Context, key client.ObjectKey, ref syncv1alpha1.SecretKeyReference) error {
	if !r.RequireSecretOptIn {
		return nil
	}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := r.Get(ctx, key, meta); err != nil {
		if apierrors.IsNotFound(err) {
			return &secretError{namespace: key.Namespace, name: key.Name, key: ref.Key}
		}
		return fmt.Errorf("look up Secret %s: %w", key, err)
	}
	if meta.Labels[syncv1alpha1.SecretOptInLabel] != "true" {
		return &policyError{reason: syncv1alpha1.SecretNotOptedInReason, message: fmt.Sprintf(
			"Secret %s is not labelled %s=true, which the operator requires before it reads a Secret for a NangoSync "+
				"(--require-secret-opt-in); its data was not read. Label it if it is meant for NangoSyncs",
			key, syncv1alpha1.SecretOptInLabel)}
	}
	return nil
}

// nangoSecretRef is the Secret holding the NangoSync's Nango secret key.
func (o Options) nangoSecretRef(nsync *syncv1alpha1.NangoSync) syncv1alpha1.SecretKeyReference {
	if nsync.Spec.Nango != nil && nsync.Spec.Nango.SecretRef != nil {
		return *nsync.Spec.Nango.SecretRef
	}
	return o.DefaultSecret
}

// secretNames lists the Secrets a NangoSync reads, each once: a change of any of them
// wakes it (a Secret created after the NangoSync, a rotated key), so every Secret the
// reconciler or the sink reads must be here.
func secretNames(nsync *syncv1alpha1.NangoSync, defaultSecret string) []string {
	names := []string{defaultSecret}
	if nsync.Spec.Nango != nil && nsync.Spec.Nango.SecretRef != nil {
		names[0] = nsync.Spec.Nango.SecretRef.Name
	}
	if nsync.Spec.Nango != nil && nsync.Spec.Nango.WebhookSigningKeyRef != nil {
		names = append(names, nsync.Spec.Nango.WebhookSigningKeyRef.Name)
	}
	names = append(names, sinkSecretNames(nsync.Spec.Sink)...)
	slices.Sort(names)
	return slices.Compact(names)
}

// sinkSecretNames lists the Secrets a sink spec names, as sinks.Resolve reads them.
func sinkSecretNames(spec syncv1alpha1.SinkSpec) []string {
	var names []string
	optional := func(ref *syncv1alpha1.SecretKeyReference) {
		if ref != nil {
			names = append(names, ref.Name)
		}
	}
	if pg := spec.Postgres; pg != nil {
		names = append(names, pg.URLSecretRef.Name)
	}
	if h := spec.HTTP; h != nil {
		names = append(names, h.URLSecretRef.Name, h.SigningKeySecretRef.Name)
		optional(h.CASecretRef)
	}
	if k := spec.Kafka; k != nil {
		if k.TLS != nil {
			optional(k.TLS.CASecretRef)
		}
		if k.SASL != nil {
			names = append(names, k.SASL.UsernameSecretRef.Name, k.SASL.PasswordSecretRef.Name)
		}
	}
	if f := spec.Fields; f != nil {
		optional(f.HashKeySecretRef)
	}
	return names
}

func indexSecretNames(ctx context.Context, indexer client.FieldIndexer, defaultSecret string) error {
	err := indexer.IndexField(ctx, &syncv1alpha1.NangoSync{}, secretNamesIndex, func(obj client.Object) []string {
		return secretNames(obj.(*syncv1alpha1.NangoSync), defaultSecret)
	})
	if err != nil {
		return fmt.Errorf("index NangoSyncs by Secret: %w", err)
	}
	return nil
}

// syncsUsingSecret maps a changed Secret to the NangoSyncs of its namespace that read it.
func (r *NangoSyncReconciler) syncsUsingSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var list syncv1alpha1.NangoSyncList
	// Matched on spec fields, which no write of the manager changes: no need to wait for
	// the cache to hold the reconciler's own pending status patches.
	if err := r.List(ctx, &list, client.InNamespace(secret.GetNamespace()),
		client.MatchingFields{secretNamesIndex: secret.GetName()}, client.DisableReadYourWritesConsistency); err != nil {
		log.FromContext(ctx).Error(err, "list NangoSyncs using a Secret", "secret", client.ObjectKeyFromObject(secret))
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for _, nsync := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&nsync)})
	}
	return requests
}
