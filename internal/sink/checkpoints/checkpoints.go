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

// Package checkpoints keeps the checkpoints of sinks that cannot hold one themselves (an
// HTTP endpoint of the user's application): one ConfigMap per data set and place written
// to, in the NangoSync's namespace, owned by the operator.
//
// Such a checkpoint is written after the sink committed the records, never with them, so
// a crash in between delivers the last batch again: these sinks are at-least-once, and
// the batch carries the same idempotency key when delivered again.
package checkpoints

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// NamePrefix starts the name of every checkpoint ConfigMap.
const NamePrefix = "nango-sync-checkpoint-"

// Label marks the checkpoint ConfigMaps, for people and for cleaning up by hand.
const Label = "sync.nango.dev/checkpoint"

// fieldOwner is the server-side apply field manager of the checkpoints.
const fieldOwner = "nango-operator"

// The ConfigMap's data keys.
const (
	keyCursor  = "cursor"
	keyAdded   = "added"
	keyUpdated = "updated"
	keyDeleted = "deleted"
	// The owner of the data set (sink.Owner): the NangoSync's UID and namespace/name.
	keyOwnerUID  = "owner-uid"
	keyOwnerName = "owner-name"
)

// ConfigMaps keeps checkpoints as ConfigMaps of one namespace. Reads go to the API server,
// not to a cache: the operator watches no ConfigMaps, and a checkpoint is read once per
// sync.
type ConfigMaps struct {
	// Client writes the ConfigMaps; Reader reads them (the manager's API reader).
	Client    client.Client
	Reader    client.Reader
	Namespace string
	// Place names where the records go (a hash of it goes into the names), so that a
	// data set written to two places keeps two checkpoints.
	Place string
}

// Name answers the name of the ConfigMap that keeps the checkpoint of key.
func (c ConfigMaps) Name(key sink.Key) string {
	sum := sha256.Sum256([]byte(c.Place + "\x00" + key.ProviderConfigKey + "\x00" + key.ConnectionID + "\x00" +
		key.Model + "\x00" + key.Variant))
	return NamePrefix + hex.EncodeToString(sum[:12])
}

// Load answers the checkpoint of key, the zero Checkpoint when there is none.
func (c ConfigMaps) Load(ctx context.Context, key sink.Key) (sink.Checkpoint, error) {
	var cm corev1.ConfigMap
	err := c.Reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Name(key)}, &cm)
	if apierrors.IsNotFound(err) {
		return sink.Checkpoint{}, nil
	}
	if err != nil {
		return sink.Checkpoint{}, c.failed("read", key, err)
	}
	return parse(cm.Data)
}

// Save stores checkpoint as the one of key, in one server-side apply.
func (c ConfigMaps) Save(ctx context.Context, key sink.Key, checkpoint sink.Checkpoint) error {
	w := checkpoint.Written
	cm := corev1ac.ConfigMap(c.Name(key), c.Namespace).
		WithLabels(map[string]string{Label: "true", "app.kubernetes.io/managed-by": "nango-operator"}).
		WithAnnotations(map[string]string{
			"sync.nango.dev/integration": key.ProviderConfigKey, "sync.nango.dev/connection": key.ConnectionID,
			"sync.nango.dev/model": key.Model, "sync.nango.dev/variant": key.Variant,
		}).
		WithData(map[string]string{
			keyCursor: checkpoint.Cursor, keyAdded: strconv.FormatInt(w.Added, 10),
			keyUpdated: strconv.FormatInt(w.Updated, 10), keyDeleted: strconv.FormatInt(w.Deleted, 10),
			keyOwnerUID: checkpoint.Owner.UID, keyOwnerName: checkpoint.Owner.Name,
		})
	if err := c.Client.Apply(ctx, cm, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return c.failed("write", key, err)
	}
	return nil
}

// Delete forgets the checkpoint of key; none is no error.
func (c ConfigMaps) Delete(ctx context.Context, key sink.Key) error {
	cm := &corev1.ConfigMap{}
	cm.Namespace, cm.Name = c.Namespace, c.Name(key)
	if err := c.Client.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
		return c.failed("delete", key, err)
	}
	return nil
}

// failed says which checkpoint could not be read or written, and of what kind the
// failure is: a missing privilege stays until the operator's RBAC is fixed.
func (c ConfigMaps) failed(verb string, key sink.Key, err error) error {
	err = fmt.Errorf("%s the checkpoint of %s in ConfigMap %s/%s: %w", verb, key, c.Namespace, c.Name(key), err)
	switch {
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return sink.Refused(err, "grant the operator's service account get, patch and delete on configmaps in namespace "+c.Namespace)
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return err
	}
	return fmt.Errorf("%w: %w", sink.ErrUnavailable, err)
}

func parse(data map[string]string) (sink.Checkpoint, error) {
	checkpoint := sink.Checkpoint{Cursor: data[keyCursor],
		Owner: sink.Owner{UID: data[keyOwnerUID], Name: data[keyOwnerName]}}
	counts := []struct {
		key string
		to  *int64
	}{{keyAdded, &checkpoint.Written.Added}, {keyUpdated, &checkpoint.Written.Updated}, {keyDeleted, &checkpoint.Written.Deleted}}
	for _, count := range counts {
		value, ok := data[count.key]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return sink.Checkpoint{}, fmt.Errorf("checkpoint ConfigMap holds %s=%q, not a count: %w", count.key, value, err)
		}
		*count.to = n
	}
	return checkpoint, nil
}
