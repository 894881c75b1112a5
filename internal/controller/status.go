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
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/truncate"
)

// defaultInterval applies when the API server did not default spec.interval (objects
// built in Go and never sent to it).
const defaultInterval = 5 * time.Minute

// maxConditionMessage bounds a condition's message. The API server refuses messages over
// 32 KiB, and with them the whole status patch; a person reads the first lines anyway.
const maxConditionMessage = 2048

// setCondition sets a condition for the current generation; its transition time moves only
// when its status changes. A message longer than maxConditionMessage is cut.
func setCondition(nsync *syncv1alpha1.NangoSync, conditionType string, status metav1.ConditionStatus, reason, message string) {
	apimeta.SetStatusCondition(&nsync.Status.Conditions, metav1.Condition{
		Type:               conditionType,
		Status:             status,
		Reason:             reason,
		Message:            truncate.String(message, maxConditionMessage),
		ObservedGeneration: nsync.Generation,
	})
}

// interval is how long a synced NangoSync waits for its next sync.
func interval(nsync *syncv1alpha1.NangoSync) time.Duration {
	if nsync.Spec.Interval == nil || nsync.Spec.Interval.Duration <= 0 {
		return defaultInterval
	}
	return nsync.Spec.Interval.Duration
}

// recordCounts is the status form of the counts a sink keeps with its checkpoint.
func recordCounts(w sink.WriteResult) syncv1alpha1.RecordCounts {
	return syncv1alpha1.RecordCounts{Added: w.Added, Updated: w.Updated, Deleted: w.Deleted,
		Total: w.Added + w.Updated + w.Deleted}
}

// addCounts adds a write's result to the status counts.
func addCounts(c syncv1alpha1.RecordCounts, w sink.WriteResult) syncv1alpha1.RecordCounts {
	return recordCounts(sink.WriteResult{Added: c.Added, Updated: c.Updated, Deleted: c.Deleted}.Add(w))
}

// total is the number of records written, for messages.
func total(c syncv1alpha1.RecordCounts) int64 {
	return c.Added + c.Updated + c.Deleted
}
