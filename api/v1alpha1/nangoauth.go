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

package v1alpha1

// NangoAuthFailureAnnotation is written by the webhook receiver on the NangoSyncs of a
// connection when Nango reports that the connection's credentials fail (an auth webhook
// with success false: a failed token refresh or reconnection), and removed when a later
// auth webhook says the connection was created or re-authorized, or when the operator's
// health check finds the connection listed by Nango without an auth error (an auth webhook
// carries no time, so a replayed one may set it again). Its value is a
// NangoAuthFailure as compact JSON. The controller shows it as the
// NangoConnectionAuthorized condition: a problem of the connection at Nango, not of the copy.
const NangoAuthFailureAnnotation = "sync.nango.dev/nango-auth-failure"

// NangoConnectionAuthorizedCondition is False while Nango reports that the connection's
// credentials fail (from its auth webhook): Nango cannot sync new records for it until the
// end user reconnects. Its reason is Nango's error type.
const NangoConnectionAuthorizedCondition = "NangoConnectionAuthorized"

// AuthFailedReason: Nango reported that a connection's credentials fail, with an error
// type that is not a valid condition reason.
const AuthFailedReason = "AuthFailed"

// NangoAuthFailure is the value of the NangoAuthFailureAnnotation: why Nango says the
// connection's credentials fail, as its auth webhook said.
// +kubebuilder:object:generate=false
type NangoAuthFailure struct {
	// Operation is Nango's operation: "refresh" or "override".
	Operation string `json:"operation"`
	// Type is Nango's error type, for example "refresh_token_external_error".
	Type string `json:"type"`
	// Description is Nango's description of the error, cut to 1024 bytes.
	Description string `json:"description"`
	// FailedAt is when the webhook arrived, RFC 3339 (to the nanosecond).
	FailedAt string `json:"failedAt"`
}
