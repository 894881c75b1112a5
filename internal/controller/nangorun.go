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
	"encoding/json"
	"fmt"
	"regexp"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// conditionReason is what the API server accepts as a condition reason.
var conditionReason = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)

// reflectNangoRun shows a failed Nango sync run, reported by webhook or GET /sync/status,
// as the NangoRunSucceeded condition, False, with a Warning event the first time each
// failure is seen. Without a failure (a later run succeeded, and the receiver or the
// health check removed the annotation) it is True with reason NoFailureReported, for a
// NangoSync whose runs the operator asks Nango about (spec.syncName) or that had the
// condition already; a NangoSync nothing is known of has none.
func (r *NangoSyncReconciler) reflectNangoRun(nsync, before *syncv1alpha1.NangoSync) {
	value, ok := nsync.Annotations[syncv1alpha1.NangoRunFailureAnnotation]
	if !ok {
		had := apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.NangoRunSucceededCondition) != nil
		switch {
		case nsync.Spec.SyncName != "":
			setCondition(nsync, syncv1alpha1.NangoRunSucceededCondition, metav1.ConditionTrue, syncv1alpha1.NoFailureReportedReason,
				fmt.Sprintf("Nango reports no failed, paused or stopped run of sync %q for this connection", nsync.Spec.SyncName))
		case had:
			setCondition(nsync, syncv1alpha1.NangoRunSucceededCondition, metav1.ConditionTrue, syncv1alpha1.NoFailureReportedReason,
				"Nango reported a run that succeeded after the last failure")
		}
		return
	}
	var failure syncv1alpha1.NangoRunFailure
	if err := json.Unmarshal([]byte(value), &failure); err != nil {
		failure = syncv1alpha1.NangoRunFailure{Description: "the annotation " + syncv1alpha1.NangoRunFailureAnnotation + " is not valid JSON"}
	}
	message := fmt.Sprintf("Nango's sync run %q failed at %s (%s): %s. Records stop changing at the source until it runs again",
		failure.SyncName, failure.FailedAt, failure.Type, failure.Description)
	// Nango's error types (script_error, ...) are valid reasons as they are.
	r.reflectReported(nsync, before, syncv1alpha1.NangoRunSucceededCondition,
		reasonOr(failure.Type, syncv1alpha1.SyncFailedReason), syncv1alpha1.SyncFailedReason, message)
}

// reflectReported sets conditionType to False with reason and message, for a failure Nango
// reported (by webhook or its status), and records a Warning event with eventReason the
// first time each message is seen, not on every reconcile.
func (r *NangoSyncReconciler) reflectReported(nsync, before *syncv1alpha1.NangoSync, conditionType, reason, eventReason, message string) {
	setCondition(nsync, conditionType, metav1.ConditionFalse, reason, message)
	previous := apimeta.FindStatusCondition(before.Status.Conditions, conditionType)
	if previous == nil || previous.Message != message {
		r.Recorder.Eventf(nsync, nil, corev1.EventTypeWarning, eventReason, "Webhook", "%s", message)
	}
}

// reasonOr is reported when the API server accepts it as a condition reason, else fallback.
func reasonOr(reported, fallback string) string {
	if conditionReason.MatchString(reported) {
		return reported
	}
	return fallback
}
