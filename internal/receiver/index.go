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
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
)

// Field indexes on NangoSyncs, so that a webhook finds the NangoSyncs it concerns in the
// manager's cache (which every replica runs) without listing every NangoSync.
const (
	// modelIndex holds the DataSet of a NangoSync as a string: a sync webhook names one data
	// set. The parts may hold slashes, so two data sets can share a key; lookups compare the
	// data sets themselves too.
	modelIndex = ".spec.nangoDataSet"
	// connectionIndex holds "<providerConfigKey>/<connectionId>": the NangoSyncs whose
	// signing keys may verify a webhook of another type (auth, …) for the connection.
	connectionIndex = ".spec.nangoConnection"
)

func connectionKey(providerConfigKey, connectionID string) string {
	return providerConfigKey + "/" + connectionID
}

// IndexNangoSyncs registers the receiver's field indexes on NangoSyncs. Call it before the
// manager starts.
func IndexNangoSyncs(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &syncv1alpha1.NangoSync{}, modelIndex, indexDataSet); err != nil {
		return fmt.Errorf("index NangoSyncs by data set: %w", err)
	}
	if err := indexer.IndexField(ctx, &syncv1alpha1.NangoSync{}, connectionIndex, indexConnection); err != nil {
		return fmt.Errorf("index NangoSyncs by connection: %w", err)
	}
	return nil
}

func indexDataSet(obj client.Object) []string {
	nsync := obj.(*syncv1alpha1.NangoSync)
	return []string{nsync.DataSet().String()}
}

func indexConnection(obj client.Object) []string {
	nsync := obj.(*syncv1alpha1.NangoSync)
	return []string{connectionKey(nsync.Spec.ProviderConfigKey, nsync.Spec.ConnectionID)}
}

// candidates are the NangoSyncs a webhook names, before anything is verified: for a sync
// webhook those of its data sets, for another type those of its connection.
func candidates(ctx context.Context, reader client.Reader, wh nango.Webhook) ([]syncv1alpha1.NangoSync, error) {
	if wh.ProviderConfigKey == "" || wh.ConnectionID == "" {
		return nil, nil
	}
	if wh.Sync == nil {
		return list(ctx, reader, connectionIndex, connectionKey(wh.ProviderConfigKey, wh.ConnectionID),
			func(*syncv1alpha1.NangoSync) bool { return true })
	}
	var found []syncv1alpha1.NangoSync
	for _, model := range wh.Sync.Models(maxModelsPerRun) {
		set := syncv1alpha1.NewDataSet(wh.ProviderConfigKey, wh.ConnectionID, model, wh.Sync.SyncVariant)
		matches, err := list(ctx, reader, modelIndex, set.String(),
			func(nsync *syncv1alpha1.NangoSync) bool { return nsync.DataSet() == set })
		if err != nil {
			return nil, err
		}
		found = append(found, matches...)
	}
	return found, nil
}

// list reads the NangoSyncs under one index key and keeps those exact accepts.
func list(ctx context.Context, reader client.Reader, index, key string,
	exact func(*syncv1alpha1.NangoSync) bool) ([]syncv1alpha1.NangoSync, error) {
	var syncs syncv1alpha1.NangoSyncList
	// The receiver only reads what it lists, so the cache's objects need no copy. It matches
	// on spec fields no write of the manager changes, so it need not wait until the cache
	// holds the manager's own pending writes (the reconciler's status patches).
	if err := reader.List(ctx, &syncs, client.MatchingFields{index: key}, client.UnsafeDisableDeepCopy,
		client.DisableReadYourWritesConsistency); err != nil {
		return nil, fmt.Errorf("list NangoSyncs by %s: %w", index, err)
	}
	kept := syncs.Items[:0]
	for i := range syncs.Items {
		if exact(&syncs.Items[i]) {
			kept = append(kept, syncs.Items[i])
		}
	}
	return kept, nil
}
