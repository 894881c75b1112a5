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

	apimeta "k8s.io/apimachinery/pkg/api/meta"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// reflectNangoAuth shows failing credentials of the connection, reported by Nango's auth
// webhook, as the NangoConnectionAuthorized condition, with a Warning event the first time
// each failure is seen. It is not a failure of the copy: Ready is left as the sync says.
// The condition goes away when the connection is re-authorized (the receiver removes the
// annotation).
func (r *NangoSyncReconciler) reflectNangoAuth(nsync, before *syncv1alpha1.NangoSync) {
	value, ok := nsync.Annotations[syncv1alpha1.NangoAuthFailureAnnotation]
	if !ok {
		apimeta.RemoveStatusCondition(&nsync.Status.Conditions, syncv1alpha1.NangoConnectionAuthorizedCondition)
		return
	}
	var failure syncv1alpha1.NangoAuthFailure
	if err := json.Unmarshal([]byte(value), &failure); err != nil {
		failure = syncv1alpha1.NangoAuthFailure{Description: "the annotation " + syncv1alpha1.NangoAuthFailureAnnotation + " is not valid JSON"}
	}
	message := fmt.Sprintf("Nango reports that the credentials of connection %q fail (%s at %s, %s): %s. "+
		"Nango syncs no new records for it until the end user reconnects; the records copied so far stay",
		nsync.Spec.ConnectionID, failure.Operation, failure.FailedAt, failure.Type, failure.Description)
	r.reflectReported(nsync, before, syncv1alpha1.NangoConnectionAuthorizedCondition,
		reasonOr(failure.Type, syncv1alpha1.AuthFailedReason), syncv1alpha1.AuthFailedReason, message)
}
