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

	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/sinks"
)

// sinkError marks a failure of the sink, as opposed to one of Nango.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// sinkFor returns the open sink of a NangoSync, reading the Secrets its spec names, and
// notes its name in status.
func (r *NangoSyncReconciler) sinkFor(ctx context.Context, nsync *syncv1alpha1.NangoSync) (sink.Sink, error) {
	if err := r.prepareSQLitePath(nsync); err != nil {
		return nil, err
	}
	target, err := sinks.Resolve(ctx, nsync.Spec.Sink, func(ctx context.Context, ref syncv1alpha1.SecretKeyReference) (string, error) {
		return r.readSecretKey(ctx, nsync, ref)
	})
	if err != nil {
		return nil, err
	}
	snk, err := r.Sinks.Get(ctx, client.ObjectKeyFromObject(nsync), target)
	if err != nil {
		return nil, &sinkError{err}
	}
	nsync.Status.Sink = target.Name
	return snk, nil
}
