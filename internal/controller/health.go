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
	"slices"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
)

// DefaultNangoHealthInterval is how often Nango is asked how the syncs of each integration
// run: the default spec.interval.
const DefaultNangoHealthInterval = 5 * time.Minute

// Nango's run states (GET /sync/status) that mean its sync is not producing records: the
// latest job failed or was cancelled, or the schedule is paused or stopped.
const (
	nangoStatusError   = "ERROR"
	nangoStatusPaused  = "PAUSED"
	nangoStatusStopped = "STOPPED"
	nangoStatusSuccess = "SUCCESS"
	nangoStatusRunning = "RUNNING"
)

// nangoHealth asks Nango how its own syncs run, without waiting for webhooks: Nango sends a
// failed run's webhook at most three times and drops it while its circuit breaker is open.
// Once per period and per integration (one Nango environment's secret key and one provider
// config key), never per NangoSync, it calls GET /sync/status without a connection, which
// answers for every connection of the integration: Nango's rate limit is per account. Each
// NangoSync that names a spec.syncName gets the verdict on its connection as the
// NangoRunFailureAnnotation, the one the webhook receiver writes, so the NangoRunSucceeded
// condition has one source of truth whichever of the two saw the failure first. For the
// integrations whose NangoSyncs hold a credentials failure it also lists the connections,
// once per period (see checkCredentials).
type nangoHealth struct {
	r      *NangoSyncReconciler
	period time.Duration
}

// NeedLeaderElection: one replica asks Nango.
func (h *nangoHealth) NeedLeaderElection() bool { return true }

// Start asks Nango once per period until ctx ends.
func (h *nangoHealth) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("nango-health")
	ticker := time.NewTicker(h.period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			h.check(log.IntoContext(ctx, logger))
		}
	}
}

// integration is one Nango integration as this operator reaches it.
type integration struct {
	baseURL, secretKey, providerConfigKey string
}

// integrationSyncs are the NangoSyncs of one integration the health check asks Nango about.
type integrationSyncs struct {
	// runs name a spec.syncName: GET /sync/status says how their runs go.
	runs []*syncv1alpha1.NangoSync
	// authFailed hold the NangoAuthFailureAnnotation: GET /connections says whether their
	// connection's credentials still fail.
	authFailed []*syncv1alpha1.NangoSync
}

// check asks Nango about every integration that NangoSyncs with a spec.syncName, or with
// failing credentials recorded, use, at most one request of each kind per integration,
// and records the verdict on those NangoSyncs.
func (h *nangoHealth) check(ctx context.Context) {
	logger := log.FromContext(ctx)
	var list syncv1alpha1.NangoSyncList
	if err := h.r.List(ctx, &list); err != nil {
		logger.Error(err, "list NangoSyncs to ask Nango about their runs")
		return
	}
	groups := map[integration]*integrationSyncs{}
	for i := range list.Items {
		nsync := &list.Items[i]
		_, authFailed := nsync.Annotations[syncv1alpha1.NangoAuthFailureAnnotation]
		if (nsync.Spec.SyncName == "" && !authFailed) || nsync.Spec.Suspend || !nsync.DeletionTimestamp.IsZero() {
			continue
		}
		// A NangoSync whose URL or Secret is wrong already says so in Ready.
		baseURL, err := h.r.nangoURL(nsync)
		if err != nil {
			continue
		}
		secretKey, err := h.r.readSecretKey(ctx, nsync, h.r.nangoSecretRef(nsync))
		if err != nil {
			continue
		}
		key := integration{baseURL: baseURL, secretKey: secretKey, providerConfigKey: nsync.Spec.ProviderConfigKey}
		group := groups[key]
		if group == nil {
			group = &integrationSyncs{}
			groups[key] = group
		}
		if nsync.Spec.SyncName != "" {
			group.runs = append(group.runs, nsync)
		}
		if authFailed {
			group.authFailed = append(group.authFailed, nsync)
		}
	}
	for key, syncs := range groups {
		h.checkIntegration(ctx, key, syncs)
	}
}

// checkIntegration asks Nango about one integration and records what it says on syncs.
func (h *nangoHealth) checkIntegration(ctx context.Context, key integration, syncs *integrationSyncs) {
	logger := log.FromContext(ctx).WithValues("nangoURL", key.baseURL, "providerConfigKey", key.providerConfigKey)
	c, err := h.r.Nango.For(key.baseURL, key.secretKey)
	if err != nil {
		logger.Error(err, "build the Nango client")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.period)
	defer cancel()
	if len(syncs.runs) > 0 {
		h.checkRuns(ctx, logger, c, key, syncs.runs)
	}
	if len(syncs.authFailed) > 0 {
		h.checkCredentials(ctx, logger, c, key, syncs.authFailed)
	}
}

// checkRuns asks Nango how the syncs of one integration run, in one request, and records
// the verdict on syncs.
func (h *nangoHealth) checkRuns(ctx context.Context, logger logr.Logger, c *nango.Client, key integration,
	syncs []*syncv1alpha1.NangoSync) {
	statuses, err := c.SyncStatus(ctx, nango.SyncStatusRequest{ProviderConfigKey: key.providerConfigKey})
	if err != nil {
		// Nango itself failing shows on Ready at the next sync; nothing is known of its runs.
		logger.Info("could not ask Nango how its syncs run", "error", err.Error())
		return
	}
	for _, nsync := range syncs {
		if err := h.record(ctx, logger, nsync, findStatus(statuses, nsync)); err != nil {
			logger.Info("could not record Nango's run status", "nangosync", client.ObjectKeyFromObject(nsync), "error", err.Error())
		}
	}
}

// findStatus finds the entry of a NangoSync's connection, sync and variant; nil if none.
func findStatus(statuses []nango.SyncStatus, nsync *syncv1alpha1.NangoSync) *nango.SyncStatus {
	variant := syncv1alpha1.VariantOrBase(nsync.DataSet().Variant)
	i := slices.IndexFunc(statuses, func(s nango.SyncStatus) bool {
		return s.ConnectionID == nsync.Spec.ConnectionID && s.Name == nsync.Spec.SyncName &&
			syncv1alpha1.VariantOrBase(s.Variant) == variant
	})
	if i < 0 {
		return nil
	}
	return &statuses[i]
}

// record turns Nango's status of a NangoSync's run into its failure annotation: set while
// the run is failing, paused or stopped; removed once a run succeeded after the failure the
// annotation holds. A failure a webhook reported keeps its richer words until then. A sync
// Nango does not list is left alone.
//
// nsync comes from the cache, and the webhook receiver writes the same annotation: the
// patch carries nsync's resourceVersion, so one written meanwhile (a newer failure) is not
// overwritten. On a conflict the NangoSync is read again from the API server and the
// verdict made anew.
func (h *nangoHealth) record(ctx context.Context, logger logr.Logger, nsync *syncv1alpha1.NangoSync, st *nango.SyncStatus) error {
	if st == nil {
		return nil
	}
	nsync = nsync.DeepCopy()
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			if err := h.r.apiReader().Get(ctx, client.ObjectKeyFromObject(nsync), nsync); err != nil {
				return fmt.Errorf("read the NangoSync again: %w", err)
			}
		}
		first = false
		return h.patchRunFailure(ctx, logger, nsync, st)
	})
	return client.IgnoreNotFound(err)
}

// patchRunFailure patches nsync's failure annotation as Nango's status st says, unless
// nsync changed since it was read.
func (h *nangoHealth) patchRunFailure(ctx context.Context, logger logr.Logger, nsync *syncv1alpha1.NangoSync, st *nango.SyncStatus) error {
	value, annotated := nsync.Annotations[syncv1alpha1.NangoRunFailureAnnotation]
	var current syncv1alpha1.NangoRunFailure
	if annotated {
		_ = json.Unmarshal([]byte(value), &current) // unreadable: treated as a webhook's
	}
	fromStatus := isStatusFailure(current.Type)

	var want *syncv1alpha1.NangoRunFailure
	switch st.Status {
	case nangoStatusError, nangoStatusPaused, nangoStatusStopped:
		if annotated && (!fromStatus || current.Type == st.Status) {
			return nil
		}
		want = statusFailure(nsync, st)
	case nangoStatusSuccess:
		if !annotated || (!fromStatus && !succeededSince(st, current)) {
			return nil
		}
	case nangoStatusRunning:
		// A run in progress proves nothing about the failed one; a paused or stopped
		// schedule runs again.
		if !annotated || !fromStatus || current.Type == nangoStatusError {
			return nil
		}
	default:
		return nil
	}

	patch := client.MergeFromWithOptions(nsync.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if want == nil {
		delete(nsync.Annotations, syncv1alpha1.NangoRunFailureAnnotation)
	} else {
		b, err := json.Marshal(want)
		if err != nil {
			return fmt.Errorf("encode the run failure: %w", err)
		}
		if nsync.Annotations == nil {
			nsync.Annotations = map[string]string{}
		}
		nsync.Annotations[syncv1alpha1.NangoRunFailureAnnotation] = string(b)
	}
	logger.V(1).Info("Nango's run status changed", "nangosync", client.ObjectKeyFromObject(nsync), "status", st.Status)
	if err := h.r.Patch(ctx, nsync, patch); err != nil {
		return fmt.Errorf("patch the annotation %s: %w", syncv1alpha1.NangoRunFailureAnnotation, err)
	}
	return nil
}

// isStatusFailure tells a failure recorded from GET /sync/status from one a webhook reported:
// its type is one of Nango's run states rather than an error type.
func isStatusFailure(failureType string) bool {
	return failureType == nangoStatusError || failureType == nangoStatusPaused || failureType == nangoStatusStopped
}

// succeededSince reports whether Nango's latest run finished after the failure f.
func succeededSince(st *nango.SyncStatus, f syncv1alpha1.NangoRunFailure) bool {
	failedAt, err := time.Parse(time.RFC3339Nano, f.FailedAt)
	return err != nil || (st.FinishedAt != nil && st.FinishedAt.After(failedAt))
}

// statusFailure describes a failing, paused or stopped sync in words a person can act on.
func statusFailure(nsync *syncv1alpha1.NangoSync, st *nango.SyncStatus) *syncv1alpha1.NangoRunFailure {
	at := time.Now().UTC()
	if st.FinishedAt != nil {
		at = st.FinishedAt.UTC()
	}
	var why string
	switch st.Status {
	case nangoStatusError:
		why = fmt.Sprintf("its latest run (%s) failed or was cancelled; see the sync's logs in Nango", st.LatestExecutionStatus)
	case nangoStatusPaused:
		why = "its schedule is paused in Nango; resume it there"
	default:
		why = "its schedule is stopped in Nango; start it there"
	}
	return &syncv1alpha1.NangoRunFailure{
		Type: st.Status,
		Description: fmt.Sprintf("GET /sync/status reports %s for sync %q of connection %q: %s",
			st.Status, nsync.Spec.SyncName, nsync.Spec.ConnectionID, why),
		SyncName: nsync.Spec.SyncName,
		FailedAt: at.Format(time.RFC3339Nano),
	}
}
