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
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// TestRetentionClock: RetentionRisk turns True, with one Warning event, once a NangoSync has
// not been Ready for the configured share of Nango's 30-day window, and goes once it is.
func TestRetentionClock(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	recorder := events.NewFakeRecorder(10)
	r := &NangoSyncReconciler{Recorder: recorder, Options: Options{RetentionRiskShare: 0.5}.withDefaults()}
	notReady := func(reason string, since time.Duration) *syncv1alpha1.NangoSync {
		nsync := &syncv1alpha1.NangoSync{}
		nsync.Status.Conditions = []metav1.Condition{{Type: syncv1alpha1.ReadyCondition, Status: metav1.ConditionFalse,
			Reason: reason, LastTransitionTime: metav1.NewTime(now.Add(-since))}}
		return nsync
	}
	day := 24 * time.Hour

	nsync := notReady(syncv1alpha1.SuspendedReason, 10*day)
	if wait := r.reflectRetention(nsync, nsync.DeepCopy(), now); wait != 5*day {
		t.Errorf("suspended 10 days of 15: look again in %s, want 5 days", wait)
	}
	if apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.RetentionRiskCondition) != nil {
		t.Error("RetentionRisk before the share of the window passed")
	}

	for _, tc := range []struct{ ready, reason, says string }{
		{syncv1alpha1.SuspendedReason, syncv1alpha1.SuspendedTooLongReason, "set spec.suspend to false"},
		{syncv1alpha1.SinkUnavailableReason, syncv1alpha1.FailingTooLongReason, "failing (SinkUnavailable) for 16 days"},
	} {
		nsync := notReady(tc.ready, 16*day)
		before := nsync.DeepCopy()
		if wait := r.reflectRetention(nsync, before, now); wait != 0 {
			t.Errorf("%s: look again in %s", tc.ready, wait)
		}
		risk := apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.RetentionRiskCondition)
		if risk == nil || risk.Status != metav1.ConditionTrue || risk.Reason != tc.reason ||
			!strings.Contains(risk.Message, tc.says) || !strings.Contains(risk.Message, "2026-12-16") {
			t.Fatalf("%s: %+v", tc.ready, risk)
		}
		if event := <-recorder.Events; !strings.Contains(event, "Warning "+tc.reason) {
			t.Errorf("event: %s", event)
		}
		// Already at risk: no second event.
		r.reflectRetention(nsync, nsync.DeepCopy(), now.Add(time.Hour))
		select {
		case event := <-recorder.Events:
			t.Errorf("a second event: %s", event)
		default:
		}
	}

	nsync = notReady(syncv1alpha1.SuspendedReason, 20*day)
	r.reflectRetention(nsync, nsync.DeepCopy(), now)
	<-recorder.Events
	apimeta.SetStatusCondition(&nsync.Status.Conditions, metav1.Condition{Type: syncv1alpha1.ReadyCondition,
		Status: metav1.ConditionTrue, Reason: syncv1alpha1.SyncedReason})
	r.reflectRetention(nsync, nsync.DeepCopy(), now)
	if apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.RetentionRiskCondition) != nil {
		t.Error("RetentionRisk stayed after a sync")
	}
}
