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

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/checkpoints"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink"
	"github.com/nango-operator/nango-operator/internal/sink/sinks"
)

// sinkError marks a failure of the sink, as opposed to one of Nango.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// sinkFor returns the open sink of a NangoSync, reading the Secrets its spec names, and
// notes its name, and the place written to, in status.
func (r *NangoSyncReconciler) sinkFor(ctx context.Context, nsync *syncv1alpha1.NangoSync) (sink.Sink, error) {
	target, err := r.resolveSink(ctx, nsync, nsync.Spec.Sink)
	if err != nil {
		return nil, err
	}
	snk, err := r.Sinks.Get(ctx, client.ObjectKeyFromObject(nsync), target)
	if err != nil {
		return nil, &sinkError{err}
	}
	nsync.Status.Sink = target.Name
	if nsync.Status.WrittenSink == nil {
		nsync.Status.WrittenSink = nsync.Spec.Sink.DeepCopy()
	}
	return snk, nil
}

// resolveSink checks a sink spec of a NangoSync against the admin's policy and resolves
// it, reading the Secrets it names from the NangoSync's namespace.
func (r *NangoSyncReconciler) resolveSink(ctx context.Context, nsync *syncv1alpha1.NangoSync,
	spec syncv1alpha1.SinkSpec) (sinks.Target, error) {
	if err := r.prepareSQLitePath(nsync.Namespace, spec); err != nil {
		return sinks.Target{}, err
	}
	return sinks.Resolve(ctx, spec, sinks.Env{
		Namespace: nsync.Namespace,
		Secret: func(ctx context.Context, ref syncv1alpha1.SecretKeyReference) (string, error) {
			return r.readSecretKey(ctx, nsync, ref)
		},
		Checkpoints: func(place string) httpsink.Checkpoints {
			return checkpoints.ConfigMaps{Client: r.Client, Reader: r.apiReader(), Namespace: nsync.Namespace, Place: place}
		},
	})
}

// leavePreviousSink leaves the place status.writtenSink names, when spec.sink has moved
// elsewhere, as a deletion would, and starts the cursor over for the new place. A failure
// is reported by a Warning event and tried again on the next sync: it does not hold up
// the new sink.
func (r *NangoSyncReconciler) leavePreviousSink(ctx context.Context, nsync *syncv1alpha1.NangoSync) {
	previous := nsync.Status.WrittenSink
	if previous == nil || samePlace(*previous, nsync.Spec.Sink) {
		return
	}
	if err := r.leaveSinkAt(ctx, nsync, *previous); err != nil {
		r.Recorder.Eventf(nsync, nil, corev1.EventTypeWarning, "PreviousSinkNotCleaned", "Sync",
			"Cannot leave the previous sink %s, will try again on the next sync: %s", sinks.DisplayName(*previous), err.Error())
		return
	}
	r.Recorder.Eventf(nsync, nil, corev1.EventTypeNormal, "SinkChanged", "Sync",
		"Left %s as deletionPolicy %s says; reading every record again into %s",
		sinks.DisplayName(*previous), deletionPolicy(nsync), sinks.DisplayName(nsync.Spec.Sink))
	nsync.Status.WrittenSink = nil
	nsync.Status.Cursor = ""
	nsync.Status.Records = syncv1alpha1.RecordCounts{}
}

// leaveSinkAt opens the sink of spec apart from the pool, leaves it and closes it.
func (r *NangoSyncReconciler) leaveSinkAt(ctx context.Context, nsync *syncv1alpha1.NangoSync, spec syncv1alpha1.SinkSpec) error {
	target, err := r.resolveSink(ctx, nsync, spec)
	if err != nil {
		return err
	}
	snk, err := target.Open(ctx)
	if err != nil {
		return &sinkError{err}
	}
	defer func() { _ = snk.Close() }()
	return leave(ctx, nsync, snk)
}

// leave does to a sink what the NangoSync's deletionPolicy says when it stops writing
// there: remove its rows (Delete), or only its checkpoint (Retain). A data set that another
// NangoSync owns is not this one's to touch: leaving it is done.
func leave(ctx context.Context, nsync *syncv1alpha1.NangoSync, snk sink.Sink) error {
	key := sink.Key(nsync.DataSet())
	var err error
	if deletionPolicy(nsync) == syncv1alpha1.DeletionPolicyDelete {
		err = snk.DeleteRows(ctx, key, owner(nsync))
	} else {
		err = snk.DeleteCheckpoint(ctx, key, owner(nsync))
	}
	var conflict *sink.ConflictError
	if errors.As(err, &conflict) {
		log.FromContext(ctx).Info("left the sink untouched: another NangoSync owns the data set",
			"dataSet", key.String(), "owner", conflict.Owner.String())
		return nil
	}
	if err != nil {
		return &sinkError{fmt.Errorf("leave %s as deletionPolicy %s says: %w", key, deletionPolicy(nsync), err)}
	}
	return nil
}

// owner is the NangoSync as the owner of its data set in a sink.
func owner(nsync *syncv1alpha1.NangoSync) sink.Owner {
	return sink.Owner{UID: string(nsync.UID), Name: nsync.Namespace + "/" + nsync.Name}
}

// deletionPolicy is the NangoSync's deletionPolicy, Retain unless it says Delete.
func deletionPolicy(nsync *syncv1alpha1.NangoSync) string {
	if nsync.Spec.DeletionPolicy == syncv1alpha1.DeletionPolicyDelete {
		return syncv1alpha1.DeletionPolicyDelete
	}
	return syncv1alpha1.DeletionPolicyRetain
}

// samePlace tells whether two sink specs write to the same place: how deletes are
// written, whether versions are kept and which fields are redacted do not move the rows.
func samePlace(a, b syncv1alpha1.SinkSpec) bool {
	a.Deletes, b.Deletes = "", ""
	a.History, b.History = false, false
	a.Fields, b.Fields = nil, nil
	return equality.Semantic.DeepEqual(a, b)
}

// apiReader reads what the manager does not cache (the http sink's checkpoint
// ConfigMaps): the APIReader, or the client when none is set.
func (r *NangoSyncReconciler) apiReader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}
