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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// CacheScope is what the manager watches and reads.
type CacheScope struct {
	// Namespaces, when not empty, are the only namespaces the manager watches and reads
	// (NangoSyncs and Secrets alike), so that it needs rights in those namespaces only.
	Namespaces []string
	// Shard, when not nil, selects the NangoSyncs and NangoSyncSets this manager reconciles
	// by their labels: one of several managers, each owning those of its shard. A
	// NangoSyncSet's template must carry its shard's label too, so that the NangoSyncs it
	// keeps are in the same shard. Secrets are not filtered by it; only those some NangoSync
	// of the shard names wake anything.
	Shard labels.Selector
	// OwnSecret is the one Secret the manager reads outside Namespaces: the webhook
	// signing keys, in the operator's own namespace. When that namespace is not one of
	// Namespaces, the manager watches only this Secret there (a metadata.name field
	// selector, which RBAC allows with resourceNames).
	OwnSecret types.NamespacedName
}

// CacheOptions are the options of the manager's cache for this reconciler, in scope.
//
// The cache keeps only the metadata of Secrets, and of that metadata no annotation and no
// managedFields: kubectl's last-applied-configuration annotation of a client-side-applied
// Secret holds the Secret's data, and the manager needs neither to map a Secret to the
// NangoSyncs that read it.
func CacheOptions(scope CacheScope) cache.Options {
	secrets := cache.ByObject{Transform: stripSecretMetadata}
	opts := cache.Options{ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: secrets}}
	if len(scope.Namespaces) > 0 {
		opts.DefaultNamespaces = make(map[string]cache.Config, len(scope.Namespaces))
		secrets.Namespaces = make(map[string]cache.Config, len(scope.Namespaces)+1)
		for _, ns := range scope.Namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
			secrets.Namespaces[ns] = cache.Config{}
		}
		if own := scope.OwnSecret; own.Name != "" {
			if _, watched := secrets.Namespaces[own.Namespace]; !watched {
				secrets.Namespaces[own.Namespace] = cache.Config{
					FieldSelector: fields.OneTermEqualSelector("metadata.name", own.Name),
				}
			}
		}
		opts.ByObject[&corev1.Secret{}] = secrets
	}
	// NangoSyncs without managedFields: those a NangoSyncSet applies carry an entry per
	// field manager, which at 10,000 NangoSyncs is most of what the cache would hold, and
	// no reconciler reads them.
	nangoSyncs := cache.ByObject{Transform: stripManagedFields}
	if scope.Shard != nil && !scope.Shard.Empty() {
		nangoSyncs.Label = scope.Shard
		opts.ByObject[&syncv1alpha1.NangoSyncSet{}] = cache.ByObject{Label: scope.Shard}
	}
	opts.ByObject[&syncv1alpha1.NangoSync{}] = nangoSyncs
	return opts
}

// stripManagedFields drops an object's managedFields before the cache keeps it.
func stripManagedFields(in any) (any, error) {
	if obj, err := meta.Accessor(in); err == nil {
		obj.SetManagedFields(nil)
	}
	return in, nil
}

// stripSecretMetadata drops what the cache must not keep of a Secret: its annotations and
// managedFields. The cache receives Secrets as metadata only (the manager reads their data
// from the API server); a whole Secret is stripped alike and loses its data too.
func stripSecretMetadata(in any) (any, error) {
	if secret, ok := in.(*corev1.Secret); ok {
		secret.Data, secret.StringData = nil, nil
	}
	if obj, err := meta.Accessor(in); err == nil {
		obj.SetAnnotations(nil)
		obj.SetManagedFields(nil)
	}
	return in, nil
}
