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
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
)

// An auth webhook carries no time of its own, so one replayed after the end user
// reconnected writes the NangoAuthFailureAnnotation again, and no later webhook removes it.
// The health check confirms such failures with Nango: once per period, for each integration
// whose NangoSyncs hold the annotation, one listing of its connections (GET /connections,
// which lists each connection's active errors); the annotation goes from the NangoSyncs of
// every listed connection without an auth error.

// connectionAuthErrorType is the type GET /connections gives a connection's active error of
// its credentials.
const connectionAuthErrorType = "auth"

// checkCredentials lists the connections of one integration and clears the auth failure of
// syncs whose connection Nango lists without an auth error. A connection not listed is left
// alone: a listing is no proof that a connection is gone (see nango.Client.AllConnections).
func (h *nangoHealth) checkCredentials(ctx context.Context, logger logr.Logger, c *nango.Client, key integration,
	syncs []*syncv1alpha1.NangoSync) {
	listedAt := time.Now()
	conns, err := c.AllConnections(ctx, nango.ListConnectionsRequest{IntegrationIDs: []string{key.providerConfigKey}})
	if err != nil {
		logger.Info("could not ask Nango whether connections' credentials fail", "error", err.Error())
		return
	}
	authorized := map[string]bool{}
	for _, conn := range conns {
		if conn.ProviderConfigKey == key.providerConfigKey {
			authorized[conn.ConnectionID] = !hasAuthError(conn)
		}
	}
	for _, nsync := range syncs {
		if !authorized[nsync.Spec.ConnectionID] {
			continue
		}
		if err := h.clearAuthFailure(ctx, logger, nsync, listedAt); err != nil {
			logger.Info("could not clear a credentials failure Nango no longer reports",
				"nangosync", client.ObjectKeyFromObject(nsync), "error", err.Error())
		}
	}
}

func hasAuthError(conn nango.Connection) bool {
	for _, e := range conn.Errors {
		if e.Type == connectionAuthErrorType {
			return true
		}
	}
	return false
}

// clearAuthFailure removes nsync's NangoAuthFailureAnnotation, if it holds one recorded
// before listedAt: a failure written after the listing started is newer than what the
// listing says. As in record, the patch carries nsync's resourceVersion, and on a conflict
// the NangoSync is read again from the API server and the decision made anew.
func (h *nangoHealth) clearAuthFailure(ctx context.Context, logger logr.Logger, nsync *syncv1alpha1.NangoSync,
	listedAt time.Time) error {
	nsync = nsync.DeepCopy()
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			if err := h.r.apiReader().Get(ctx, client.ObjectKeyFromObject(nsync), nsync); err != nil {
				return fmt.Errorf("read the NangoSync again: %w", err)
			}
		}
		first = false
		value, ok := nsync.Annotations[syncv1alpha1.NangoAuthFailureAnnotation]
		if !ok || !authFailedBefore(value, listedAt) {
			return nil
		}
		patch := client.MergeFromWithOptions(nsync.DeepCopy(), client.MergeFromWithOptimisticLock{})
		delete(nsync.Annotations, syncv1alpha1.NangoAuthFailureAnnotation)
		logger.V(1).Info("Nango lists the connection without an auth error: clearing its credentials failure",
			"nangosync", client.ObjectKeyFromObject(nsync))
		if err := h.r.Patch(ctx, nsync, patch); err != nil {
			return fmt.Errorf("patch the annotation %s: %w", syncv1alpha1.NangoAuthFailureAnnotation, err)
		}
		return nil
	})
	return client.IgnoreNotFound(err)
}

// authFailedBefore reports whether the auth failure value was recorded before t. One
// without a readable time is taken as old.
func authFailedBefore(value string, t time.Time) bool {
	var failure syncv1alpha1.NangoAuthFailure
	if json.Unmarshal([]byte(value), &failure) != nil {
		return true
	}
	failedAt, err := time.Parse(time.RFC3339Nano, failure.FailedAt)
	return err != nil || failedAt.Before(t)
}
