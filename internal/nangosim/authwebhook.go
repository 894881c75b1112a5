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

package nangosim

import (
	"cmp"
	"context"
	"fmt"
	"maps"
)

// Auth webhook operations (docs/nango-api.md, "Auth webhooks").
const (
	AuthCreation = "creation"
	AuthOverride = "override"
	AuthRefresh  = "refresh"
)

// WebhookSettings are an environment's webhook switches for auth events (Nango's
// _nango_external_webhooks flags). A new Nango environment has both on.
type WebhookSettings struct {
	// OnAuthCreation gates creation webhooks, successful or not.
	OnAuthCreation bool `json:"on_auth_creation"`
	// OnAuthRefreshError gates refresh-failure webhooks.
	OnAuthRefreshError bool `json:"on_auth_refresh_error"`
}

// SetWebhookSettings sets an environment's auth webhook switches. Override
// webhooks have no switch: Nango sends them whenever a URL is set.
func (s *Sim) SetWebhookSettings(envName string, ws WebhookSettings) error {
	return s.updateEnv(envName, func(e *environment) { e.webhooks = ws })
}

// AuthWebhook describes an auth webhook about an existing connection.
type AuthWebhook struct {
	ConnectionRef
	// Operation is AuthCreation, AuthOverride or AuthRefresh.
	Operation string `json:"operation"`
	// Success is false for failures; a refresh webhook is always a failure.
	Success bool `json:"success"`
	// ErrorType and ErrorDescription describe a failure.
	ErrorType        string `json:"error_type,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// ConnectConnection creates a connection as an auth flow or an import does,
// then sends its creation webhook when the environment's settings allow.
func (s *Sim) ConnectConnection(ctx context.Context, nc NewConnection) (Delivery, error) {
	if err := s.CreateConnectionWith(nc); err != nil {
		return Delivery{}, err
	}
	return s.SendAuthWebhook(ctx, AuthWebhook{ConnectionRef: nc.ConnectionRef, Operation: AuthCreation, Success: true})
}

// SendAuthWebhook sends an auth webhook about a stored connection, built from
// it as Nango builds it (packages/webhooks/lib/auth.ts:70-101) and signed as
// every webhook. A failed refresh also marks the connection with an active auth
// error, which GET /connections lists; a successful override clears it. When
// the environment has no webhook URL or its settings stop the webhook, nothing
// is sent and the Delivery has no attempts.
func (s *Sim) SendAuthWebhook(ctx context.Context, wh AuthWebhook) (Delivery, error) {
	payload, envName, send, err := s.authPayload(wh)
	if err != nil {
		return Delivery{}, fmt.Errorf("auth webhook %s: %w", wh.ConnectionRef, err)
	}
	if !send {
		return Delivery{}, nil
	}
	return s.SendWebhook(ctx, envName, payload)
}

// authBody is an auth webhook's body; StableJSON sorts its keys as Nango does.
type authBody struct {
	From              string            `json:"from"`
	Type              string            `json:"type"`
	ConnectionID      string            `json:"connectionId"`
	ProviderConfigKey string            `json:"providerConfigKey"`
	AuthMode          string            `json:"authMode"`
	Provider          string            `json:"provider"`
	Environment       string            `json:"environment"`
	Operation         string            `json:"operation"`
	Success           bool              `json:"success"`
	Error             *authError        `json:"error,omitempty"`
	Tags              map[string]string `json:"tags,omitzero"` // {} when the connection has none
	EndUser           *authEndUser      `json:"endUser,omitempty"`
}

type authError struct {
	Type        string `json:"type"`
	Description string `json:"description"`
}

type authEndUser struct {
	EndUserID      string            `json:"endUserId"`
	EndUserEmail   string            `json:"endUserEmail,omitempty"`
	OrganizationID string            `json:"organizationId,omitempty"`
	Tags           map[string]string `json:"tags"`
}

func (s *Sim) authPayload(wh AuthWebhook) (*authBody, string, bool, error) {
	switch wh.Operation {
	case AuthCreation, AuthOverride:
	case AuthRefresh:
		if wh.Success {
			return nil, "", false, fmt.Errorf("nango sends no webhook for a successful refresh")
		}
	default:
		return nil, "", false, fmt.Errorf("unknown operation %q", wh.Operation)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	integ, conn, err := s.lookupLocked(wh.ConnectionRef)
	if err != nil {
		return nil, "", false, err
	}
	env := s.envs[envName(wh.Environment)]
	switch {
	case wh.Operation == AuthRefresh:
		conn.authErrorLog = s.NewUUID()
	case wh.Operation == AuthOverride && wh.Success:
		conn.authErrorLog = ""
	}
	body := &authBody{
		From: "nango", Type: "auth", ConnectionID: conn.id, ProviderConfigKey: integ.key,
		AuthMode: conn.authMode, Provider: cmp.Or(integ.provider, "unknown"), Environment: env.Name,
		Operation: wh.Operation, Success: wh.Success,
	}
	if !wh.Success {
		body.Error = &authError{Type: wh.ErrorType, Description: wh.ErrorDescription}
	}
	// A failed creation sends a stand-in connection: no tags.
	if wh.Operation != AuthCreation || wh.Success {
		body.Tags = maps.Clone(conn.tags)
		if body.Tags == nil {
			body.Tags = map[string]string{}
		}
	}
	if eu := conn.endUser; eu != nil && wh.Success {
		body.EndUser = &authEndUser{EndUserID: eu.ID, EndUserEmail: eu.Email, OrganizationID: eu.OrganizationID, Tags: maps.Clone(eu.Tags)}
		if body.EndUser.Tags == nil {
			body.EndUser.Tags = map[string]string{}
		}
	}
	send := true
	switch wh.Operation {
	case AuthCreation:
		send = env.webhooks.OnAuthCreation
	case AuthRefresh:
		send = env.webhooks.OnAuthRefreshError
	}
	// Nothing is sent without a URL (webhooks/lib/utils.ts:156-192).
	return body, env.Name, send && env.WebhookURL != "", nil
}
