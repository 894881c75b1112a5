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
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// connectionsHarness holds, besides the harness's own acme-corp (hubspot, no
// tags), connections made one second apart: hubspot c0..c4 tagged by plan, one
// salesforce connection with an end user.
func connectionsHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, nangosim.Options{})
	for i := range 5 {
		h.clock.Set(epoch.Add(time.Duration(i+1) * time.Second))
		plan := "free"
		if i%2 == 0 {
			plan = "pro"
		}
		h.create(nangosim.NewConnection{
			ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: fmt.Sprintf("c%d", i)},
			Provider:      "hubspot",
			Tags:          map[string]string{"Plan": plan, "region": "eu"},
		})
	}
	h.clock.Set(epoch.Add(10 * time.Second))
	h.create(nangosim.NewConnection{
		ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "salesforce", ConnectionID: "sf_1"},
		Provider:      "salesforce",
		EndUser:       &nangosim.EndUser{ID: "u1", DisplayName: "Ada", Email: "ada@example.com", OrganizationID: "org-1", Tags: map[string]string{"Team": "crm"}},
		Tags:          map[string]string{"plan": "pro"},
	})
	return h
}

func (h *harness) create(nc nangosim.NewConnection) {
	h.t.Helper()
	if err := h.sim.CreateConnectionWith(nc); err != nil {
		h.t.Fatal(err)
	}
}

func connIDs(conns []nango.Connection) []string {
	out := make([]string, len(conns))
	for i, c := range conns {
		out[i] = c.ConnectionID
	}
	return out
}

func TestConnectionsFiltersAndOrder(t *testing.T) {
	h := connectionsHarness(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  nango.ListConnectionsRequest
		want []string
	}{
		{"all, newest first", nango.ListConnectionsRequest{}, []string{"sf_1", "c4", "c3", "c2", "c1", "c0", "acme-corp"}},
		{"one integration", nango.ListConnectionsRequest{IntegrationIDs: []string{"hubspot"}}, []string{"c4", "c3", "c2", "c1", "c0", "acme-corp"}},
		{"several integrations", nango.ListConnectionsRequest{IntegrationIDs: []string{"salesforce", "nope"}}, []string{"sf_1"}},
		{"a tag; keys are case-insensitive", nango.ListConnectionsRequest{Tags: map[string]string{"PLAN": "pro"}}, []string{"sf_1", "c4", "c2", "c0"}},
		{"every tag must match", nango.ListConnectionsRequest{Tags: map[string]string{"plan": "pro", "region": "eu"}}, []string{"c4", "c2", "c0"}},
		{"values are case-sensitive", nango.ListConnectionsRequest{Tags: map[string]string{"plan": "Pro"}}, []string{}},
		{"tags built from the end user", nango.ListConnectionsRequest{Tags: map[string]string{"end_user_id": "u1", "team": "crm"}}, []string{"sf_1"}},
		{"end user organization", nango.ListConnectionsRequest{EndUserOrganizationID: "org-1"}, []string{"sf_1"}},
		{"end user", nango.ListConnectionsRequest{EndUserID: "u2"}, []string{}},
		{"connection id", nango.ListConnectionsRequest{ConnectionID: "c3"}, []string{"c3"}},
		{"unknown integration is no error", nango.ListConnectionsRequest{IntegrationIDs: []string{"nope"}}, []string{}},
	} {
		got, err := h.client.ListConnections(ctx, tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(connIDs(got), tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, connIDs(got), tc.want)
		}
	}

	// Offset paging, page from 0, no total: a short page ends the listing.
	var paged []string
	for page := 0; ; page++ {
		got, err := h.client.ListConnections(ctx, nango.ListConnectionsRequest{Limit: 3, Page: page})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, connIDs(got)...)
		if len(got) < 3 {
			break
		}
	}
	all, err := h.client.AllConnections(ctx, nango.ListConnectionsRequest{Limit: 2})
	if err != nil || !slices.Equal(paged, connIDs(all)) || len(all) != 7 {
		t.Fatalf("paging: %v, AllConnections %v %v", paged, connIDs(all), err)
	}
	for _, tc := range []struct{ id, pck string }{{"c1", "hubspot"}, {"sf_1", "salesforce"}} {
		if ok, err := h.client.ConnectionExists(ctx, tc.pck, tc.id); !ok || err != nil {
			t.Errorf("%s/%s exists: %v %v", tc.pck, tc.id, ok, err)
		}
	}
	if ok, err := h.client.ConnectionExists(ctx, "salesforce", "c1"); ok || err != nil {
		t.Errorf("c1 is not a salesforce connection: %v %v", ok, err)
	}
	if err := h.sim.DeleteConnection(nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := h.client.ConnectionExists(ctx, "hubspot", "c1"); ok || err != nil {
		t.Errorf("a deleted connection is not listed: %v %v", ok, err)
	}

	// Tags changed at Nango: replaced whole, over those built from the end user.
	ref := nangosim.ConnectionRef{ProviderConfigKey: "salesforce", ConnectionID: "sf_1"}
	if err := h.sim.SetConnectionTags(ref, map[string]string{"tier": "gold"}); err != nil {
		t.Fatal(err)
	}
	got, err := h.client.ListConnections(ctx, nango.ListConnectionsRequest{IntegrationIDs: []string{"salesforce"}})
	if err != nil || len(got) != 1 || got[0].Tags["plan"] != "" || got[0].Tags["tier"] != "gold" || got[0].Tags["end_user_id"] != "u1" {
		t.Fatalf("tags after a patch: %+v %v", got, err)
	}
}

func TestConnectionsAnswerShape(t *testing.T) {
	h := connectionsHarness(t)
	for _, path := range []string{"/connections", "/connection"} {
		status, header, body := h.raw("GET", path+"?integrationId=salesforce", nil, "")
		if status != 200 || header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		mustJSONEqual(t, body, `{"connections":[{"id":7,"connection_id":"sf_1","provider_config_key":"salesforce","provider":"salesforce",
			"errors":[],"end_user":{"id":"u1","display_name":"Ada","email":"ada@example.com","tags":{"Team":"crm"},
			"organization":{"id":"org-1","display_name":null}},
			"tags":{"end_user_display_name":"Ada","end_user_email":"ada@example.com","end_user_id":"u1","organization_id":"org-1","plan":"pro","team":"crm"},
			"metadata":null,"created":"2026-04-14T18:46:13.097459+00:00"}]}`)
	}
	_, _, body := h.raw("GET", "/connections?connectionId=acme-corp", nil, "")
	mustJSONEqual(t, body, `{"connections":[{"id":1,"connection_id":"acme-corp","provider_config_key":"hubspot","provider":"hubspot",
		"errors":[],"end_user":null,"tags":{},"metadata":null,"created":"2026-04-14T18:46:03.097459+00:00"}]}`)

	// knex truncates: limit=2.5&page=1.5 is LIMIT 2 OFFSET 3. Omitted, the limit is 10,000.
	if got := listedIDs(t, h, "/connections?limit=2.5&page=1.5"); !slices.Equal(got, []string{"c2", "c1"}) {
		t.Errorf("limit=2.5&page=1.5: %v", got)
	}
	if got := listedIDs(t, h, "/connections?page=1"); len(got) != 0 {
		t.Errorf("page=1 without a limit is offset 10000: %v", got)
	}
	// search is ILIKE %s% on the id, the end user's name and email; % and _ are wildcards.
	for q, want := range map[string][]string{"C3": {"c3"}, "ADA": {"sf_1"}, "%25corp": {"acme-corp"}, "e_c": {"sf_1", "acme-corp"}, "zzz": {}} {
		if got := listedIDs(t, h, "/connections?search="+q); !slices.Equal(got, want) {
			t.Errorf("search=%s: %v, want %v", q, got, want)
		}
	}
	// Brackets may come percent-encoded, as URLSearchParams sends them.
	if got := listedIDs(t, h, "/connections?tags%5Bplan%5D=free"); !slices.Equal(got, []string{"c3", "c1"}) {
		t.Errorf("encoded brackets: %v", got)
	}
}

type webhookDelivery struct {
	header http.Header
	body   []byte
}

func mustDecode(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
}

func listedIDs(t *testing.T, h *harness, pathAndQuery string) []string {
	t.Helper()
	status, _, body := h.raw("GET", pathAndQuery, nil, "")
	if status != 200 {
		t.Fatalf("%s: %d %s", pathAndQuery, status, body)
	}
	var out struct {
		Connections []struct {
			ID string `json:"connection_id"`
		} `json:"connections"`
	}
	mustDecode(t, body, &out)
	ids := make([]string, 0, len(out.Connections))
	for _, c := range out.Connections {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestConnectionsQueryValidation(t *testing.T) {
	h := connectionsHarness(t)
	long := strings.Repeat("x", 256)
	for _, tc := range []struct {
		query  string
		paths  []string
		issues []string
	}{
		{"limit=0", []string{"[limit]"}, []string{"too_small"}},
		{"limit=", []string{"[limit]"}, []string{"too_small"}},
		{"limit=2001", []string{"[limit]"}, []string{"too_big"}},
		{"limit=ten", []string{"[limit]"}, []string{"invalid_type"}},
		{"limit=1&limit=2", []string{"[limit]"}, []string{"invalid_type"}},
		{"page=-1", []string{"[page]"}, []string{"too_small"}},
		{"connectionId=", []string{"[connectionId]"}, []string{"too_small"}},
		{"connectionId=" + long, []string{"[connectionId]"}, []string{"too_big"}},
		{"endUserOrganizationId=a&endUserOrganizationId=b", []string{"[endUserOrganizationId]"}, []string{"invalid_type"}},
		{"tags[k]=a&tags[k]=b", []string{"[tags k]"}, []string{"invalid_type"}},
		{"tags=foo", []string{"[tags]"}, []string{"invalid_type"}},
		{"tags[]=x", []string{"[tags]"}, []string{"invalid_type"}},
		{"tags[0]=x", []string{"[tags]"}, []string{"invalid_type"}},
		{"tags[1bad]=x", []string{"[tags 1bad]"}, []string{"invalid_key"}},
		{"tags[Dept]=a&tags[dept]=b", []string{"[tags]"}, []string{"custom"}},
		{"tags[k]=", []string{"[tags k]"}, []string{"too_small"}},
		{"tags.k=v", []string{"[]"}, []string{"unrecognized_keys"}},
		{"cursor=x&limit=0", []string{"[limit]", "[]"}, []string{"too_small", "unrecognized_keys"}},
	} {
		status, _, body := h.raw("GET", "/connections?"+tc.query, nil, "")
		code, paths, issues := errorCode(t, body)
		if status != 400 || code != "invalid_query_params" || !slices.Equal(paths, tc.paths) || !slices.Equal(issues, tc.issues) {
			t.Errorf("%s: %d %s", tc.query, status, body)
		}
	}
	tags := make([]string, 0, 11)
	for i := range 11 {
		tags = append(tags, fmt.Sprintf("tags[k%d]=v", i))
	}
	status, _, body := h.raw("GET", "/connections?"+strings.Join(tags, "&"), nil, "")
	if !strings.Contains(body, "Tags cannot contain more than 10 keys") || status != 400 {
		t.Errorf("11 tags: %d %s", status, body)
	}
	status, _, body = h.raw("GET", "/connections?tags[Dept]=a&tags[dept]=b", nil, "")
	if !strings.Contains(body, `Duplicate tag key after case normalization: \"dept\"`) || status != 400 {
		t.Errorf("duplicate keys: %d %s", status, body)
	}
	// Through the client, a refused query is an InvalidRequest error.
	_, err := h.client.ListConnections(context.Background(), nango.ListConnectionsRequest{Tags: map[string]string{"9x": "y"}})
	_ = mustKind(t, err, nango.KindInvalidRequest)
}

func TestConnectionsScopesAndFaults(t *testing.T) {
	h := connectionsHarness(t)
	ctx := context.Background()
	for _, scopes := range [][]string{{nangosim.ConnectionsListScope}, {nangosim.ConnectionsListCredentialsScope}} {
		if err := h.sim.SetScopes("", scopes); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.ListConnections(ctx, nango.ListConnectionsRequest{}); err != nil {
			t.Errorf("scope %v: %v", scopes, err)
		}
	}
	if err := h.sim.SetScopes("", []string{nangosim.ReadScope}); err != nil {
		t.Fatal(err)
	}
	status, _, body := h.raw("GET", "/connections", nil, "")
	mustJSONEqual(t, body, `{"error":{"code":"forbidden","message":"Insufficient scope. Required one of: environment:connections:list or environment:connections:list_credentials"}}`)
	if status != http.StatusForbidden {
		t.Fatalf("status %d", status)
	}
	if err := h.sim.SetScopes("", nil); err != nil {
		t.Fatal(err)
	}

	// A page cut short ends the listing early, without an error: only a
	// targeted check tells the missing connections are there.
	h.sim.SetFaults(nangosim.Faults{ConnectionsPageCut: 2})
	all, err := h.client.AllConnections(ctx, nango.ListConnectionsRequest{Limit: 5})
	if err != nil || len(all) != 2 {
		t.Fatalf("cut listing: %v %v", connIDs(all), err)
	}
	if ok, err := h.client.ConnectionExists(ctx, "hubspot", "acme-corp"); !ok || err != nil {
		t.Fatalf("targeted check during a cut: %v %v", ok, err)
	}
	h.sim.SetFaults(nangosim.Faults{ServerErrorRate: 1, Count: 1})
	if _, err := h.client.AllConnections(ctx, nango.ListConnectionsRequest{}); err == nil {
		t.Fatal("a failed page must fail the whole listing")
	} else {
		_ = mustKind(t, err, nango.KindServerError)
	}
	if st := h.sim.Stats(); st.ConnectionsRequests == 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestAuthWebhooks(t *testing.T) {
	got := make(chan webhookDelivery, 10)
	receiver := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		got <- webhookDelivery{r.Header.Clone(), readAll(t, r)}
	})
	h := newHarness(t, nangosim.Options{WebhookURL: receiver.URL})
	ctx := context.Background()
	ref := nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "new-co"}
	d, err := h.sim.ConnectConnection(ctx, nangosim.NewConnection{
		ConnectionRef: ref, Provider: "hubspot",
		EndUser: &nangosim.EndUser{ID: "u9", Email: "u9@example.com", OrganizationID: "o9"}, Tags: map[string]string{"plan": "pro"},
	})
	if err != nil || d.Attempts != 1 {
		t.Fatalf("connect: %v %+v", err, d)
	}
	dl := <-got
	want := `{"authMode":"OAUTH2","connectionId":"new-co","endUser":{"endUserEmail":"u9@example.com","endUserId":"u9","organizationId":"o9","tags":{}},` +
		`"environment":"dev","from":"nango","operation":"creation","provider":"hubspot","providerConfigKey":"hubspot","success":true,` +
		`"tags":{"end_user_email":"u9@example.com","end_user_id":"u9","organization_id":"o9","plan":"pro"},"type":"auth"}`
	if string(dl.body) != want {
		t.Fatalf("creation webhook\n got %s\nwant %s", dl.body, want)
	}
	wh, err := nango.ParseWebhook(dl.body)
	if err != nil || wh.Auth == nil || wh.Auth.Operation != "creation" || !nango.WebhookSignaturesOf(dl.header, false).Verify(dl.body, h.env.SigningKey) {
		t.Fatalf("the operator's parser and verifier: %+v %v", wh, err)
	}

	// A failed refresh: no end user, tags, an error; the connection lists an active auth error.
	if _, err := h.sim.SendAuthWebhook(ctx, nangosim.AuthWebhook{ConnectionRef: ref, Operation: nangosim.AuthRefresh,
		ErrorType: "refresh_token_external_error", ErrorDescription: "invalid_grant"}); err != nil {
		t.Fatal(err)
	}
	dl = <-got
	want = `{"authMode":"OAUTH2","connectionId":"new-co","environment":"dev","error":{"description":"invalid_grant","type":"refresh_token_external_error"},` +
		`"from":"nango","operation":"refresh","provider":"hubspot","providerConfigKey":"hubspot","success":false,` +
		`"tags":{"end_user_email":"u9@example.com","end_user_id":"u9","organization_id":"o9","plan":"pro"},"type":"auth"}`
	if string(dl.body) != want {
		t.Fatalf("refresh webhook\n got %s\nwant %s", dl.body, want)
	}
	conns, err := h.client.ListConnections(ctx, nango.ListConnectionsRequest{ConnectionID: "new-co"})
	if err != nil || len(conns) != 1 || len(conns[0].Errors) != 1 || conns[0].Errors[0].Type != "auth" {
		t.Fatalf("active auth error: %+v %v", conns, err)
	}
	if _, err := h.sim.SendAuthWebhook(ctx, nangosim.AuthWebhook{ConnectionRef: ref, Operation: nangosim.AuthRefresh, Success: true}); err == nil {
		t.Fatal("Nango sends nothing for a successful refresh")
	}

	// Gating: creation and refresh follow the environment's switches; override has none.
	if err := h.sim.SetWebhookSettings("", nangosim.WebhookSettings{}); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{nangosim.AuthCreation, nangosim.AuthRefresh} {
		if d, err := h.sim.SendAuthWebhook(ctx, nangosim.AuthWebhook{ConnectionRef: ref, Operation: op}); err != nil || d.Attempts != 0 {
			t.Fatalf("%s must be gated: %v %+v", op, err, d)
		}
	}
	if d, err := h.sim.SendAuthWebhook(ctx, nangosim.AuthWebhook{ConnectionRef: ref, Operation: nangosim.AuthOverride, Success: true}); err != nil || d.Attempts != 1 {
		t.Fatalf("override is never gated: %v %+v", err, d)
	}
	dl = <-got
	if !strings.Contains(string(dl.body), `"operation":"override"`) || !strings.Contains(string(dl.body), `"endUser":{`) {
		t.Fatalf("override: %s", dl.body)
	}
	conns, _ = h.client.ListConnections(ctx, nango.ListConnectionsRequest{ConnectionID: "new-co"})
	if len(conns) != 1 || len(conns[0].Errors) != 0 {
		t.Fatalf("a successful override clears the auth error: %+v", conns)
	}

}

// TestConnectionsControlHTTP: the control API connects (with the creation
// webhook) and deletes connections over HTTP; a deletion sends no webhook.
func TestConnectionsControlHTTP(t *testing.T) {
	got := make(chan webhookDelivery, 10)
	receiver := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		got <- webhookDelivery{r.Header.Clone(), readAll(t, r)}
	})
	h := newHarness(t, nangosim.Options{WebhookURL: receiver.URL})
	ctx := context.Background()
	status, _, body := h.raw("POST", "/_sim/connections/connect", nil, `{"provider_config_key":"hubspot","connection_id":"http-co","tags":{"plan":"free"}}`)
	if status != 200 || !strings.Contains(body, `"attempts":1`) {
		t.Fatalf("control connect: %d %s", status, body)
	}
	<-got
	status, _, body = h.raw("POST", "/_sim/connections/delete", nil, `{"provider_config_key":"hubspot","connection_id":"http-co"}`)
	if status != 200 {
		t.Fatalf("control delete: %d %s", status, body)
	}
	if ok, err := h.client.ConnectionExists(ctx, "hubspot", "http-co"); ok || err != nil {
		t.Fatalf("deleted over HTTP: %v %v", ok, err)
	}
	select {
	case dl := <-got:
		t.Fatalf("Nango sends no webhook for a deleted connection, got %s", dl.body)
	default:
	}
}

// nodeListConnections pages with the official client's listConnections and
// prints one JSON line per page: the connection ids.
const nodeListConnections = `
const { Nango } = await import(process.env.NANGO_SDK_ENTRY);
const nango = new Nango({ secretKey: process.env.NANGO_SECRET_KEY, host: process.env.NANGO_HOST });
for (let page = 0; page < 1000; page++) {
  const res = await nango.listConnections({ integrationId: 'hubspot', tags: { Plan: 'pro' }, limit: 2, page });
  console.log(JSON.stringify(res.connections.map((c) => c.connection_id)));
  if (res.connections.length < 2) break;
}
`

// TestNodeSDKListConnections: the official @nangohq/node client's
// listConnections (tags, integration, offset paging) gets from the emulator
// what the Go client gets.
func TestNodeSDKListConnections(t *testing.T) {
	h := connectionsHarness(t)
	lines := runNodeScript(t, h, nodeListConnections)
	fromNode := make([]string, 0, len(lines))
	for _, line := range lines {
		var page []string
		mustDecode(t, line, &page)
		fromNode = append(fromNode, page...)
	}
	fromGo, err := h.client.AllConnections(context.Background(), nango.ListConnectionsRequest{
		IntegrationIDs: []string{"hubspot"}, Tags: map[string]string{"Plan": "pro"}, Limit: 2,
	})
	if err != nil || !slices.Equal(fromNode, connIDs(fromGo)) || len(fromNode) != 3 {
		t.Fatalf("node %v, go %v (%v)", fromNode, connIDs(fromGo), err)
	}
}
