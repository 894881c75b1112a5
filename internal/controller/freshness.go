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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
)

// noteNewestRecord moves status.newestRecordTime to the newest last_modified_at among
// records the sink just committed. It rides on the status patch the write already needs:
// an idle NangoSync still costs the API server nothing.
func noteNewestRecord(nsync *syncv1alpha1.NangoSync, records []sink.Record) {
	var newest metav1.Time
	for i := range records {
		if t := records[i].LastModifiedAt; t.After(newest.Time) {
			newest = metav1.NewTime(t)
		}
	}
	if newest.IsZero() {
		return
	}
	if current := nsync.Status.NewestRecordTime; current == nil || newest.After(current.Time) {
		nsync.Status.NewestRecordTime = &newest
	}
}
