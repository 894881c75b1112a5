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

package nango

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// Webhook signature headers Nango sends on every webhook.
const (
	HeaderWebhookHMAC   = "X-Nango-Hmac-Sha256"
	HeaderWebhookLegacy = "X-Nango-Signature"
)

// Webhook types Nango sends. It may add types at any time: a receiver acknowledges and
// ignores those it does not know.
const (
	WebhookTypeSync        = "sync"
	WebhookTypeAuth        = "auth"
	WebhookTypeForward     = "forward"
	WebhookTypeAsyncAction = "async_action"
)

// Operations of auth webhooks. Nango sends none when a connection is deleted.
const (
	// AuthCreation: a connection was created (or its creation failed).
	AuthCreation = "creation"
	// AuthOverride: an existing connection was re-authorized (or its reconnection failed).
	AuthOverride = "override"
	// AuthRefresh: refreshing or testing a connection's credentials failed.
	AuthRefresh = "refresh"
)

// Webhook is a Nango webhook as the operator reads it: the fields every type shares, and the
// body of the types it knows.
type Webhook struct {
	// Type is one of the WebhookType constants, or a type the operator does not know.
	Type string
	// ProviderConfigKey and ConnectionID name the connection, for every type that has one.
	ProviderConfigKey string
	ConnectionID      string
	// Sync is set for sync webhooks.
	Sync *SyncWebhook
	// Auth is set for auth webhooks.
	Auth *AuthWebhook
}

// SyncWebhook is the body of a sync webhook, success or failure, as Nango sends it.
type SyncWebhook struct {
	ConnectionID      string `json:"connectionId"`
	ProviderConfigKey string `json:"providerConfigKey"`
	SyncName          string `json:"syncName"`
	// SyncVariant is the sync's variant; Nango leaves it out of failures. Variant reads it.
	SyncVariant string `json:"syncVariant"`
	// Model is one model for a successful run, the run's models joined by commas for a
	// failed one; Models reads both.
	Model string `json:"model"`
	// Success is nil when Nango left it out: such a webhook is neither a success nor a failure.
	Success *bool `json:"success"`
	// Error and FailedAt are set for a failed run. FailedAt is RFC 3339 as Nango wrote it.
	Error    *WebhookError `json:"error"`
	FailedAt string        `json:"failedAt"`
	// QueryTimeStamp is when a successful run queried the provider (RFC 3339): how recent
	// the run is.
	QueryTimeStamp string `json:"queryTimeStamp"`
}

// AuthWebhook is the body of an auth webhook: a connection was created or re-authorized, or
// its creation or credentials refresh failed. Nango sends none when a connection is deleted.
type AuthWebhook struct {
	ConnectionID      string `json:"connectionId"`
	ProviderConfigKey string `json:"providerConfigKey"`
	// AuthMode is how the connection authenticates, for example "OAUTH2" or "API_KEY".
	AuthMode string `json:"authMode"`
	// Provider is the integration's provider, or "unknown".
	Provider string `json:"provider"`
	// Environment is the name of the Nango environment.
	Environment string `json:"environment"`
	// Operation is "creation", "override" (re-authorized) or "refresh" (failed refresh).
	Operation string `json:"operation"`
	// Success is nil when Nango left it out.
	Success *bool         `json:"success"`
	Error   *WebhookError `json:"error"`
	// Tags are the connection's tags; nil when the connection's creation failed.
	Tags map[string]string `json:"tags"`
	// EndUser is set when the connection came from a connect session.
	EndUser *WebhookEndUser `json:"endUser"`
}

// WebhookEndUser is the end user a connection was made for.
type WebhookEndUser struct {
	EndUserID string `json:"endUserId"`
	// EndUserEmail may be null or left out.
	EndUserEmail   *string           `json:"endUserEmail"`
	OrganizationID string            `json:"organizationId"`
	Tags           map[string]string `json:"tags"`
}

// WebhookError is why a run or an auth operation failed.
type WebhookError struct {
	Type        string `json:"type"`
	Description string `json:"description"`
}

// webhookEnvelope holds the fields every webhook type shares.
type webhookEnvelope struct {
	Type              string `json:"type"`
	ConnectionID      string `json:"connectionId"`
	ProviderConfigKey string `json:"providerConfigKey"`
}

// ParseWebhook reads a webhook body. The body must be a JSON object; fields of types other
// than sync and auth are not looked at, so that a new type with fields of its own is never
// refused as malformed.
func ParseWebhook(body []byte) (Webhook, error) {
	var env webhookEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Webhook{}, fmt.Errorf("decode webhook: %w", err)
	}
	// Only null gets here without being an object: it decodes into a struct without error.
	if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return Webhook{}, errors.New("decode webhook: the body is not a JSON object")
	}
	wh := Webhook{Type: env.Type, ProviderConfigKey: env.ProviderConfigKey, ConnectionID: env.ConnectionID}
	switch env.Type {
	case WebhookTypeSync:
		wh.Sync = &SyncWebhook{}
		if err := json.Unmarshal(body, wh.Sync); err != nil {
			return Webhook{}, fmt.Errorf("decode sync webhook: %w", err)
		}
	case WebhookTypeAuth:
		wh.Auth = &AuthWebhook{}
		if err := json.Unmarshal(body, wh.Auth); err != nil {
			return Webhook{}, fmt.Errorf("decode auth webhook: %w", err)
		}
	}
	return wh, nil
}

// Variant is the sync's variant, the base variant when Nango left it out.
func (s *SyncWebhook) Variant() string { return syncv1alpha1.VariantOrBase(s.SyncVariant) }

// Succeeded and Failed tell the two kinds of sync webhook apart; one without success is
// neither.
func (s *SyncWebhook) Succeeded() bool { return s.Success != nil && *s.Success }
func (s *SyncWebhook) Failed() bool    { return s.Success != nil && !*s.Success }

// Models lists the models the run concerns, at most limit of them: the one model of a
// successful run, each of the comma-joined ones of a failed run, once each. The limit
// bounds the work a body read before it is verified can ask for.
func (s *SyncWebhook) Models(limit int) []string {
	if s.Succeeded() {
		return []string{s.Model}
	}
	var models []string
	for model := range strings.SplitSeq(s.Model, ",") {
		if len(models) == limit {
			break
		}
		model = strings.TrimSpace(model)
		if model != "" && !slices.Contains(models, model) {
			models = append(models, model)
		}
	}
	return models
}

// WebhookSignatures are the signatures of a webhook body, as lowercase hex.
type WebhookSignatures struct {
	// HMAC is HMAC-SHA256(key = signing key, message = body): the one to check.
	HMAC string
	// Legacy is SHA-256(signing key + body). It is open to length extension, so it is read
	// from a request only when a user opts in, and checked only when no HMAC came along.
	Legacy string
}

// WebhookSignaturesOf reads the signatures of a request. Nango sends both; the legacy one
// is read only when allowLegacy is set and no HMAC signature came along, so that the HMAC
// signature decides whenever there is one.
func WebhookSignaturesOf(h http.Header, allowLegacy bool) WebhookSignatures {
	s := WebhookSignatures{HMAC: strings.TrimSpace(h.Get(HeaderWebhookHMAC))}
	if s.HMAC == "" && allowLegacy {
		s.Legacy = strings.TrimSpace(h.Get(HeaderWebhookLegacy))
	}
	return s
}

// Empty reports whether no signature came along.
func (s WebhookSignatures) Empty() bool { return s.HMAC == "" && s.Legacy == "" }

// Verify reports whether one of keys signed body (during a rotation a receiver holds the
// old key and the new): the HMAC signature when there is one, else the legacy one. Empty
// keys verify nothing. It compares in constant time, and every key, so that the time taken
// does not tell which key matched.
func (s WebhookSignatures) Verify(body []byte, keys ...string) bool {
	got, expected := s.HMAC, func(key string) string { return signWebhook(key, body).HMAC }
	if got == "" {
		got, expected = s.Legacy, func(key string) string { return signWebhook(key, body).Legacy }
	}
	if got == "" {
		return false
	}
	given := []byte(strings.ToLower(got))
	ok := false
	for _, key := range keys {
		if key != "" && subtle.ConstantTimeCompare(given, []byte(expected(key))) == 1 {
			ok = true
		}
	}
	return ok
}

// signWebhook computes both signatures of body with a signing key.
func signWebhook(signingKey string, body []byte) WebhookSignatures {
	mac := hmac.New(sha256.New, []byte(signingKey))
	_, _ = mac.Write(body)
	h := sha256.New()
	_, _ = h.Write([]byte(signingKey))
	_, _ = h.Write(body)
	return WebhookSignatures{HMAC: hex.EncodeToString(mac.Sum(nil)), Legacy: hex.EncodeToString(h.Sum(nil))}
}
