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
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// Nango's retention (docs/nango-api.md): a record's payload is emptied 30 days after its
// last update, and every record of a sync is deleted after 60 days without a run. A copy
// that stops syncing for longer than the first window may only ever get the records
// changed meanwhile without their fields.
const (
	nangoPruneAfter  = 30 * 24 * time.Hour
	nangoDeleteAfter = 60 * 24 * time.Hour
)

// DefaultRetentionRiskShare is the share of Nango's 30-day window after which a NangoSync
// that does not sync gets RetentionRisk: half of it leaves two weeks to act.
const DefaultRetentionRiskShare = 0.5

// reflectRetention sets RetentionRisk=True, with a Warning event when it turns so, on a
// NangoSync that has not been Ready (suspended or failing) for longer than
// RetentionRiskShare of Nango's 30-day window, and removes it otherwise. It answers how
// long until it must look again (0: no need).
func (r *NangoSyncReconciler) reflectRetention(nsync, before *syncv1alpha1.NangoSync, now time.Time) time.Duration {
	ready := apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.ReadyCondition)
	if ready == nil || ready.Status == metav1.ConditionTrue {
		apimeta.RemoveStatusCondition(&nsync.Status.Conditions, syncv1alpha1.RetentionRiskCondition)
		return 0
	}
	since := ready.LastTransitionTime.Time
	if since.IsZero() {
		since = now // the condition was set just now
	}
	threshold := time.Duration(r.RetentionRiskShare * float64(nangoPruneAfter))
	if wait := since.Add(threshold).Sub(now); wait > 0 {
		apimeta.RemoveStatusCondition(&nsync.Status.Conditions, syncv1alpha1.RetentionRiskCondition)
		return wait
	}
	reason, what, todo := syncv1alpha1.FailingTooLongReason, "failing ("+ready.Reason+")", "fix what the Ready condition says"
	if ready.Reason == syncv1alpha1.SuspendedReason {
		reason, what, todo = syncv1alpha1.SuspendedTooLongReason, "suspended", "set spec.suspend to false"
	}
	message := fmt.Sprintf("Not synced since %s, %s for %d days: Nango empties the fields of records not updated for 30 days "+
		"(records changed since then lose them from %s) and deletes a sync's records after 60 days without a run (%s). "+
		"Sync it before then: %s",
		since.UTC().Format(time.RFC3339), what, int(now.Sub(since).Hours()/24),
		since.Add(nangoPruneAfter).UTC().Format(time.DateOnly), since.Add(nangoDeleteAfter).UTC().Format(time.DateOnly), todo)
	setCondition(nsync, syncv1alpha1.RetentionRiskCondition, metav1.ConditionTrue, reason, message)
	if previous := apimeta.FindStatusCondition(before.Status.Conditions, syncv1alpha1.RetentionRiskCondition); previous == nil {
		r.Recorder.Eventf(nsync, nil, corev1.EventTypeWarning, reason, "Retention", "%s", message)
	}
	return 0
}
