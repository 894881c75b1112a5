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
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Scopes that let a secret key read one connection; the second also returns its
// credentials (../shared/nango-api-connections.md; routes.public.ts:313-314).
const (
	ConnectionsReadScope            = "environment:connections:read"
	ConnectionsReadCredentialsScope = "environment:connections:read_credentials"
)

// connectionIDPattern and providerConfigKeyPattern are Nango's connectionIdSchema and
// providerConfigKeySchema (packages/server/lib/helpers/validation.ts:55-79).
var (
	connectionIDPattern      = regexp.MustCompile(`^[a-zA-Z0-9,.;:=+~[\]|@${}"'\\/_ -]+$`)
	providerConfigKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9~:.@ _-]+$`)
)

// getConnectionParams are the keys of GET /connections/:connectionId's strict query
// (controllers/connection/connectionId/getConnection.ts).
var getConnectionParams = []string{"provider_config_key", "refresh_token", "force_refresh", "refresh_github_app_jwt_token"}

// stringbool is zod's z.stringbool(): these words, in any case.
var (
	stringboolTrue  = []string{"true", "1", "yes", "on", "y", "enabled"}
	stringboolFalse = []string{"false", "0", "no", "off", "n", "disabled"}
)

// connectionFullOut is the answer of GET /connections/:connectionId
// (formatters/connection.ts, formatConnectionFullToPublicApi).
type connectionFullOut struct {
	ID                 int64             `json:"id"`
	ConnectionID       string            `json:"connection_id"`
	ProviderConfigKey  string            `json:"provider_config_key"`
	Provider           string            `json:"provider"`
	Errors             []connectionError `json:"errors"`
	EndUser            *endUserOut       `json:"end_user"`
	Tags               map[string]string `json:"tags"`
	Metadata           map[string]any    `json:"metadata"`
	ConnectionConfig   map[string]any    `json:"connection_config"`
	WebhookURLOverride *string           `json:"webhook_url_override"`
	CreatedAt          string            `json:"created_at"`
	UpdatedAt          string            `json:"updated_at"`
	LastFetchedAt      *string           `json:"last_fetched_at"`
	Credentials        map[string]any    `json:"credentials"`
}

// handleConnection serves GET /connections/:connectionId and the deprecated
// GET /connection/:connectionId, one handler as in Nango. It checks the query, then
// the connection id, then the credential options against the key's scopes, then the
// integration, then the connection. Credentials are the emulator's stand-ins (no
// provider is called); a key without the read_credentials scope gets {}.
func (s *Sim) handleConnection(w http.ResponseWriter, r *http.Request, env *environment) {
	s.counter.connections.Add(1)
	p := &queryParser{}
	qs := parseQS(r.URL.Query())
	pck := ""
	switch v := qs["provider_config_key"]; {
	case v == nil:
		p.issues = append(p.issues, requiredIssue("provider_config_key"))
	case v.received() != "string":
		p.bad("invalid_type", "Invalid input: expected string, received "+v.received(), "provider_config_key")
	case len(v.strings[0]) > 255:
		p.bad("too_big", "Too big: expected string to have <=255 characters", "provider_config_key")
	case !providerConfigKeyPattern.MatchString(v.strings[0]):
		p.bad("invalid_format", "Invalid string: must match pattern "+providerConfigKeyPattern.String(), "provider_config_key")
	default:
		pck = v.strings[0]
	}
	flag := func(name string) bool {
		v := qs[name]
		if v == nil {
			return false
		}
		if v.received() != "string" {
			p.bad("invalid_type", "Invalid input: expected string, received "+v.received(), name)
			return false
		}
		word := strings.ToLower(v.strings[0])
		switch {
		case slices.Contains(stringboolTrue, word):
			return true
		case slices.Contains(stringboolFalse, word):
			return false
		}
		// UNVERIFIED: zod 4's wording of a stringbool that is neither.
		p.bad("invalid_value", `Invalid option: expected one of "`+strings.Join(append(slices.Clone(stringboolTrue), stringboolFalse...), `"|"`)+`"`, name)
		return false
	}
	refreshToken, forceRefresh, refreshJWT := flag("refresh_token"), flag("force_refresh"), flag("refresh_github_app_jwt_token")
	var unknown []string
	for name := range qs {
		if !slices.Contains(getConnectionParams, name) {
			unknown = append(unknown, name)
		}
	}
	p.unrecognized(unknown)
	if len(p.issues) > 0 {
		writeError(w, http.StatusBadRequest, errorBody{Code: codeInvalidQuery, Errors: p.issues})
		return
	}
	id := r.PathValue("connectionId")
	var idIssue string
	switch {
	case len(id) > 255:
		idIssue = "Too big: expected string to have <=255 characters"
	case !connectionIDPattern.MatchString(id):
		idIssue = "Invalid string: must match pattern " + connectionIDPattern.String()
	}
	if idIssue != "" {
		code := "invalid_format"
		if len(id) > 255 {
			code = "too_big"
		}
		writeError(w, http.StatusBadRequest, errorBody{Code: "invalid_uri_params",
			Errors: []issue{{Code: code, Message: idIssue, Path: []any{"connectionId"}}}})
		return
	}
	withCredentials := env.Scopes == nil || slices.Contains(env.Scopes, ConnectionsReadCredentialsScope)
	if !withCredentials && (refreshToken || forceRefresh || refreshJWT) {
		writeError(w, http.StatusForbidden, errorBody{Code: "forbidden",
			Message: "Credential and refresh options require the " + ConnectionsReadCredentialsScope + " scope"})
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	integ := env.integrations[pck]
	if integ == nil {
		writeError(w, http.StatusBadRequest, errorBody{Code: "unknown_provider_config", Message: "Provider does not exists"})
		return
	}
	conn := integ.connections[id]
	if conn == nil {
		writeError(w, http.StatusNotFound, errorBody{Code: "not_found", Message: "Failed to find connection"})
		return
	}
	if withCredentials {
		// Reading credentials goes through refreshOrTestCredentials, which stamps it.
		conn.fetched = s.nowMicro()
	}
	writeJSON(w, http.StatusOK, connectionFull(integ, conn, withCredentials, refreshToken))
}

func connectionFull(integ *integration, c *connection, withCredentials, refreshToken bool) connectionFullOut {
	l := listed{integ, c}.out()
	o := connectionFullOut{
		ID: l.ID, ConnectionID: l.ConnectionID, ProviderConfigKey: l.ProviderConfigKey, Provider: l.Provider,
		Errors: l.Errors, EndUser: l.EndUser, Tags: l.Tags, Metadata: l.Metadata,
		ConnectionConfig: map[string]any{}, CreatedAt: jsTimestamp(c.created), UpdatedAt: jsTimestamp(max(c.updated, c.created)),
		Credentials: map[string]any{},
	}
	if c.fetched != 0 {
		at := jsTimestamp(c.fetched)
		o.LastFetchedAt = &at
	}
	if withCredentials {
		o.Credentials = standInCredentials(c, refreshToken)
	}
	return o
}

// standInCredentials are credentials of the connection's auth mode, made up by the
// emulator (stable per connection): enough for a client to see their shape.
func standInCredentials(c *connection, refreshToken bool) map[string]any {
	token := fmt.Sprintf("sim-%s-%d", strings.ToLower(c.authMode), c.seq)
	switch c.authMode {
	case "OAUTH2":
		raw := map[string]any{"access_token": token, "token_type": "bearer"}
		creds := map[string]any{"type": c.authMode, "access_token": token, "raw": raw}
		if refreshToken {
			creds["refresh_token"] = token + "-refresh"
			raw = maps.Clone(raw)
			raw["refresh_token"] = token + "-refresh"
			creds["raw"] = raw
		}
		return creds
	case "API_KEY":
		return map[string]any{"type": c.authMode, "apiKey": token}
	default:
		return map[string]any{"type": c.authMode}
	}
}

// jsTimestamp is a Postgres timestamptz read into a JavaScript Date and written with
// toISOString, Z replaced by +00:00 (formatters/connection.ts, toApiTimestampWithTimezone):
// milliseconds, always UTC.
func jsTimestamp(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000") + "+00:00"
}
