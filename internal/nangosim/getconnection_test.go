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

package nangosim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// sfFull is sf_1 of connectionsHarness as GET /connections/:connectionId answers it with
// every scope: the listing's fields, then connection_config, webhook_url_override,
// millisecond timestamps with +00:00, and (stand-in) credentials without the refresh token.
const sfFull = `{"id":7,"connection_id":"sf_1","provider_config_key":"salesforce","provider":"salesforce",
	"errors":[],"end_user":{"id":"u1","display_name":"Ada","email":"ada@example.com","tags":{"Team":"crm"},
	"organization":{"id":"org-1","display_name":null}},
	"tags":{"end_user_display_name":"Ada","end_user_email":"ada@example.com","end_user_id":"u1","organization_id":"org-1","plan":"pro","team":"crm"},
	"metadata":null,"connection_config":{},"webhook_url_override":null,
	"created_at":"2026-04-14T18:46:13.097+00:00","updated_at":"2026-04-14T18:46:13.097+00:00",
	"last_fetched_at":"2026-04-14T18:46:13.097+00:00",
	"credentials":{"type":"OAUTH2","access_token":"sim-oauth2-7","raw":{"access_token":"sim-oauth2-7","token_type":"bearer"}}}`

// TestGetConnection holds GET /connections/:connectionId (and the deprecated
// /connection/:connectionId) to Nango's controller: its answer, its strict query, its
// errors in Nango's order, and its scopes.
func TestGetConnection(t *testing.T) {
	h := connectionsHarness(t)
	for _, path := range []string{"/connections/sf_1", "/connection/sf_1"} {
		status, _, body := h.raw("GET", path+"?provider_config_key=salesforce", nil, "")
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		mustJSONEqual(t, body, sfFull)
	}
	status, _, body := h.raw("GET", "/connections/sf_1?provider_config_key=salesforce&refresh_token=TRUE&force_refresh=0", nil, "")
	if status != http.StatusOK {
		t.Fatalf("refresh_token=TRUE: %d %s", status, body)
	}
	mustJSONEqual(t, body, `{"id":7,"connection_id":"sf_1","provider_config_key":"salesforce","provider":"salesforce",
		"errors":[],"end_user":{"id":"u1","display_name":"Ada","email":"ada@example.com","tags":{"Team":"crm"},
		"organization":{"id":"org-1","display_name":null}},
		"tags":{"end_user_display_name":"Ada","end_user_email":"ada@example.com","end_user_id":"u1","organization_id":"org-1","plan":"pro","team":"crm"},
		"metadata":null,"connection_config":{},"webhook_url_override":null,
		"created_at":"2026-04-14T18:46:13.097+00:00","updated_at":"2026-04-14T18:46:13.097+00:00",
		"last_fetched_at":"2026-04-14T18:46:13.097+00:00",
		"credentials":{"type":"OAUTH2","access_token":"sim-oauth2-7","refresh_token":"sim-oauth2-7-refresh",
			"raw":{"access_token":"sim-oauth2-7","refresh_token":"sim-oauth2-7-refresh","token_type":"bearer"}}}`)

	// A tag change moves updated_at; an id with a slash, percent-encoded, is one id.
	h.clock.Set(epoch.Add(20 * time.Second))
	if err := h.sim.SetConnectionTags(nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "c1"}, map[string]string{"plan": "gold"}); err != nil {
		t.Fatal(err)
	}
	h.create(nangosim.NewConnection{ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "a/b c"}, AuthMode: "API_KEY"})
	_, _, body = h.raw("GET", "/connections/c1?provider_config_key=hubspot", nil, "")
	var times struct {
		CreatedAt string `json:"created_at"`
		UpdatedAt string `json:"updated_at"`
	}
	mustDecode(t, body, &times)
	if times.CreatedAt != "2026-04-14T18:46:05.097+00:00" || times.UpdatedAt != "2026-04-14T18:46:23.097+00:00" {
		t.Errorf("c1 times after a tag change: %+v", times)
	}
	status, _, body = h.raw("GET", "/connections/a%2Fb%20c?provider_config_key=hubspot", nil, "")
	if status != http.StatusOK {
		t.Fatalf("a/b c: %d %s", status, body)
	}
	var apiKey struct {
		ConnectionID string         `json:"connection_id"`
		Credentials  map[string]any `json:"credentials"`
	}
	mustDecode(t, body, &apiKey)
	if apiKey.ConnectionID != "a/b c" || apiKey.Credentials["type"] != "API_KEY" || apiKey.Credentials["apiKey"] == nil {
		t.Errorf("a/b c: %s", body)
	}

	for _, tc := range []struct {
		name, path string
		status     int
		want       string
	}{
		{"no provider_config_key", "/connections/sf_1", 400,
			`{"error":{"code":"invalid_query_params","errors":[{"code":"invalid_type","message":"Invalid input: expected string, received undefined","path":["provider_config_key"]}]}}`},
		{"an unknown parameter", "/connections/sf_1?provider_config_key=salesforce&integrationId=x", 400,
			`{"error":{"code":"invalid_query_params","errors":[{"code":"unrecognized_keys","message":"Unrecognized key: \"integrationId\"","path":[]}]}}`},
		{"a bad provider_config_key", "/connections/sf_1?provider_config_key=sales%2Fforce", 400,
			`{"error":{"code":"invalid_query_params","errors":[{"code":"invalid_format","message":"Invalid string: must match pattern ^[a-zA-Z0-9~:.@ _-]+$","path":["provider_config_key"]}]}}`},
		{"a bad connection id", "/connections/%3Cx%3E?provider_config_key=salesforce", 400,
			`{"error":{"code":"invalid_uri_params","errors":[{"code":"invalid_format","message":"Invalid string: must match pattern ^[a-zA-Z0-9,.;:=+~[\\]|@${}\"'\\\\/_ -]+$","path":["connectionId"]}]}}`},
		{"an unknown integration", "/connections/sf_1?provider_config_key=pipedrive", 400,
			`{"error":{"code":"unknown_provider_config","message":"Provider does not exists"}}`},
		{"a connection of another integration", "/connections/sf_1?provider_config_key=hubspot", 404,
			`{"error":{"code":"not_found","message":"Failed to find connection"}}`},
	} {
		status, _, body := h.raw("GET", tc.path, nil, "")
		if status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, status, tc.status, body)
		}
		mustJSONEqual(t, body, tc.want)
	}

	// A deleted connection is gone: 404, the positive evidence a NangoSyncSet needs.
	if err := h.sim.DeleteConnection(nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if status, _, body := h.raw("GET", "/connections/c1?provider_config_key=hubspot", nil, ""); status != http.StatusNotFound {
		t.Errorf("deleted: %d %s", status, body)
	}

	// Scopes: read gives no credentials, and refuses the credential options; a list
	// scope is not enough.
	if err := h.sim.SetScopes("", []string{nangosim.ConnectionsReadScope}); err != nil {
		t.Fatal(err)
	}
	_, _, body = h.raw("GET", "/connections/sf_1?provider_config_key=salesforce", nil, "")
	var noCreds struct {
		Credentials map[string]any `json:"credentials"`
	}
	mustDecode(t, body, &noCreds)
	if noCreds.Credentials == nil || len(noCreds.Credentials) != 0 {
		t.Errorf("credentials without the read_credentials scope: %s", body)
	}
	status, _, body = h.raw("GET", "/connections/sf_1?provider_config_key=salesforce&force_refresh=true", nil, "")
	if status != http.StatusForbidden {
		t.Errorf("force_refresh without read_credentials: %d", status)
	}
	mustJSONEqual(t, body, `{"error":{"code":"forbidden","message":"Credential and refresh options require the environment:connections:read_credentials scope"}}`)
	if err := h.sim.SetScopes("", []string{nangosim.ConnectionsListScope}); err != nil {
		t.Fatal(err)
	}
	status, _, body = h.raw("GET", "/connections/sf_1?provider_config_key=salesforce", nil, "")
	if status != http.StatusForbidden {
		t.Errorf("list scope only: %d", status)
	}
	mustJSONEqual(t, body, `{"error":{"code":"forbidden","message":"Insufficient scope. Required one of: environment:connections:read or environment:connections:read_credentials"}}`)
}

// nodeGetConnection calls the official client's getConnection and prints its answer.
const nodeGetConnection = `
const { Nango } = await import(process.env.NANGO_SDK_ENTRY);
const nango = new Nango({ secretKey: process.env.NANGO_SECRET_KEY, host: process.env.NANGO_HOST });
console.log(JSON.stringify(await nango.getConnection('salesforce', 'sf_1')));
try {
  await nango.getConnection('hubspot', 'sf_1');
  console.log('no error');
} catch (err) {
  console.log(JSON.stringify({ status: err.response?.status, data: err.response?.data }));
}
`

// TestNodeSDKGetConnection: the official @nangohq/node client's getConnection (which
// sends force_refresh, refresh_token and refresh_github_app_jwt_token as false) reads a
// connection from the emulator, and gets Nango's 404 for a missing one.
func TestNodeSDKGetConnection(t *testing.T) {
	h := connectionsHarness(t)
	lines := runNodeScript(t, h, nodeGetConnection)
	if len(lines) != 2 {
		t.Fatalf("node printed %q", lines)
	}
	mustJSONEqual(t, lines[0], sfFull)
	mustJSONEqual(t, lines[1], `{"status":404,"data":{"error":{"code":"not_found","message":"Failed to find connection"}}}`)
}
