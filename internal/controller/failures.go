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

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/sink"
)

// failure is a failed sync as a person should see it.
type failure struct {
	// reason is the condition reason, one of the API's *Reason constants.
	reason string
	// message says what happened and what to fix.
	message string
	// stalled is true when retrying cannot help until a person changes something. The
	// sync is still retried with backoff, so that a fix outside Kubernetes (a connection
	// created in Nango) is picked up on its own.
	stalled bool
	// retryAfter, when set, is when to try again instead of the exponential backoff.
	retryAfter time.Duration
}

// minRateLimitWait keeps a Retry-After of 0 from turning into a hot loop.
const minRateLimitWait = time.Second

// classify turns an error of a sync into a failure.
func classify(err error) failure {
	var missing *secretError
	if errors.As(err, &missing) {
		return failure{reason: syncv1alpha1.SecretNotFoundReason, stalled: true, message: fmt.Sprintf(
			"%s: create it in the NangoSync's namespace with the key %q", err.Error(), missing.key)}
	}
	var refused *policyError
	if errors.As(err, &refused) {
		return failure{reason: refused.reason, message: refused.message, stalled: true}
	}
	var conflict *sink.ConflictError
	if errors.As(err, &conflict) {
		return conflictFailure(err, conflict.Owner)
	}
	var sinkErr *sinkError
	if errors.As(err, &sinkErr) {
		return sinkFailure(err)
	}
	var nangoErr *nango.Error
	if !errors.As(err, &nangoErr) && errors.Is(err, context.DeadlineExceeded) {
		// The reconcile's own deadline ran out while Nango was being asked.
		return failure{reason: syncv1alpha1.NangoUnavailableReason,
			message: "Nango did not answer within the reconcile timeout, retrying with backoff: " + err.Error()}
	}
	if !errors.As(err, &nangoErr) {
		return failure{reason: syncv1alpha1.ReconcileFailedReason, message: err.Error()}
	}
	f := nangoFailure(nangoErr.Kind, err)
	// The kinds a retry cannot fix until a person changes something: nango knows which.
	f.stalled = nango.IsTerminal(err)
	return f
}

// sinkFailure is the failure of a sink error: Stalled when the sink refused the operator
// and says what to change, retried with backoff otherwise.
func sinkFailure(err error) failure {
	if fix, refused := sink.Refusal(err); refused {
		return failure{reason: syncv1alpha1.SinkRefusedReason, stalled: true, message: fmt.Sprintf(
			"The sink refused the operator, the cursor stays where it is: %s. %s", err.Error(), fix)}
	}
	return failure{reason: syncv1alpha1.SinkUnavailableReason,
		message: "Cannot write to the sink, the cursor stays where it is: " + err.Error()}
}

// conflictFailure is the failure of a NangoSync whose data set, in its sink's table,
// another NangoSync owns. It stalls: only a person can settle who writes there.
func conflictFailure(err error, owner sink.Owner) failure {
	return failure{reason: syncv1alpha1.ConflictReason, stalled: true, message: fmt.Sprintf(
		"%s; this NangoSync writes nothing there and its cursor stays where it is. "+
			"Point spec.sink at another table, or delete one of the two NangoSyncs; "+
			"if %s no longer exists, delete the row of its data set from %s",
		err.Error(), owner.Name, sink.CheckpointTable)}
}

// nangoFailure is the reason and message of a Nango error of kind.
func nangoFailure(kind nango.Kind, err error) failure {
	switch kind {
	case nango.KindUnauthorized, nango.KindForbidden:
		return failure{reason: syncv1alpha1.UnauthorizedReason, message: fmt.Sprintf(
			"Nango refused the secret key: %s. Put the secret key of the connection's Nango environment in the Secret named by spec.nango.secretRef",
			err.Error())}
	case nango.KindUnknownConnection:
		return failure{reason: syncv1alpha1.UnknownConnectionReason, message: fmt.Sprintf(
			"%s. Check spec.connectionId and spec.providerConfigKey against the Nango dashboard", err.Error())}
	case nango.KindInvalidCursor:
		return failure{reason: syncv1alpha1.InvalidCursorReason, message: fmt.Sprintf(
			"%s. Set the annotation %s to a new value to read every record again",
			err.Error(), syncv1alpha1.ResyncAnnotation)}
	case nango.KindInvalidRequest:
		return failure{reason: syncv1alpha1.InvalidRequestReason, message: fmt.Sprintf(
			"%s. Check spec.model, spec.variant and spec.modifiedAfter (at most 365 days ago)", err.Error())}
	case nango.KindRateLimited:
		return failure{reason: syncv1alpha1.RateLimitedReason, retryAfter: max(nango.RetryAfter(err), minRateLimitWait),
			message: "The Nango account's rate limit is spent; waiting for its window to reset: " + err.Error()}
	default:
		return failure{reason: syncv1alpha1.NangoUnavailableReason,
			message: "Nango did not answer as expected, retrying with backoff: " + err.Error()}
	}
}
