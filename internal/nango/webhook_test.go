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

package nango_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// Webhook bodies as Nango sends them (docs/nango-api.md, "Webhooks Nango sends"): compact, keys sorted.
const (
	syncSuccessBody = `{"checkpoints":{"from":{},"to":{}},"connectionId":"acme","from":"nango","model":"Contact",` +
		`"modifiedAfter":"2026-05-01T10:00:00.000Z","providerConfigKey":"hubspot","queryTimeStamp":"2026-05-01T10:00:01.000Z",` +
		`"responseResults":{"added":1,"deleted":0,"updated":0},"success":true,"syncName":"contacts","syncType":"INCREMENTAL",` +
		`"syncVariant":"eu","type":"sync"}`
	syncFailureBody = `{"connectionId":"acme","error":{"description":"TypeError","type":"script_error"},` +
		`"failedAt":"2026-05-01T10:00:05.000Z","from":"nango","model":"Contact, Deal,,Contact","providerConfigKey":"hubspot",` +
		`"startedAt":"2026-05-01T10:00:00.000Z","success":false,"syncName":"contacts","type":"sync"}`
	authBody = `{"authMode":"OAUTH2","connectionId":"acme","endUser":{"endUserEmail":"a@b.c","endUserId":"u1",` +
		`"organizationId":"o1","tags":{}},"environment":"prod","from":"nango","operation":"creation","provider":"hubspot",` +
		`"providerConfigKey":"hubspot","success":true,"tags":{"end_user_id":"u1"},"type":"auth"}`
	authFailureBody = `{"authMode":"OAUTH2","connectionId":"acme","environment":"prod",` +
		`"error":{"description":"refresh token expired","type":"refresh_token_external_error"},"from":"nango",` +
		`"operation":"refresh","provider":"hubspot","providerConfigKey":"hubspot","success":false,"tags":{},"type":"auth"}`
)

func TestParseWebhookReadsSyncAndAuthBodies(t *testing.T) {
	yes, no, email := true, false, "a@b.c"
	tests := []struct {
		name string
		body string
		want nango.Webhook
	}{
		{"sync success", syncSuccessBody, nango.Webhook{Type: "sync", ProviderConfigKey: "hubspot", ConnectionID: "acme",
			Sync: &nango.SyncWebhook{ConnectionID: "acme", ProviderConfigKey: "hubspot", SyncName: "contacts",
				SyncVariant: "eu", Model: "Contact", Success: &yes, QueryTimeStamp: "2026-05-01T10:00:01.000Z"}}},
		{"sync failure", syncFailureBody, nango.Webhook{Type: "sync", ProviderConfigKey: "hubspot", ConnectionID: "acme",
			Sync: &nango.SyncWebhook{ConnectionID: "acme", ProviderConfigKey: "hubspot", SyncName: "contacts",
				Model: "Contact, Deal,,Contact", Success: &no, FailedAt: "2026-05-01T10:00:05.000Z",
				Error: &nango.WebhookError{Type: "script_error", Description: "TypeError"}}}},
		{"auth creation", authBody, nango.Webhook{Type: "auth", ProviderConfigKey: "hubspot", ConnectionID: "acme",
			Auth: &nango.AuthWebhook{ConnectionID: "acme", ProviderConfigKey: "hubspot", AuthMode: "OAUTH2",
				Provider: "hubspot", Environment: "prod", Operation: "creation", Success: &yes,
				Tags: map[string]string{"end_user_id": "u1"},
				EndUser: &nango.WebhookEndUser{EndUserID: "u1", EndUserEmail: &email, OrganizationID: "o1",
					Tags: map[string]string{}}}}},
		{"auth refresh failure", authFailureBody, nango.Webhook{Type: "auth", ProviderConfigKey: "hubspot", ConnectionID: "acme",
			Auth: &nango.AuthWebhook{ConnectionID: "acme", ProviderConfigKey: "hubspot", AuthMode: "OAUTH2",
				Provider: "hubspot", Environment: "prod", Operation: "refresh", Success: &no, Tags: map[string]string{},
				Error: &nango.WebhookError{Type: "refresh_token_external_error", Description: "refresh token expired"}}}},
		// A type the operator does not know is read for its connection only, whatever else it holds.
		{"another type", `{"type":"forward","connectionId":"acme","providerConfigKey":"hubspot","payload":[1,"x"],"success":"yes"}`,
			nango.Webhook{Type: "forward", ProviderConfigKey: "hubspot", ConnectionID: "acme"}},
		{"no type", `{}`, nango.Webhook{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nango.ParseWebhook([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseWebhook\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseWebhookRefusesWhatNangoDoesNotSend(t *testing.T) {
	for _, body := range []string{
		``, `null`, `[]`, `"sync"`, `{`, `{"type":7}`,
		`{"type":"sync","success":"true"}`,
		`{"type":"auth","tags":["a"]}`,
	} {
		if _, err := nango.ParseWebhook([]byte(body)); err == nil {
			t.Errorf("ParseWebhook(%q) accepted it", body)
		}
	}
}

func TestSyncWebhookModelsAndVariant(t *testing.T) {
	success, _ := nango.ParseWebhook([]byte(syncSuccessBody))
	failure, _ := nango.ParseWebhook([]byte(syncFailureBody))
	if got := success.Sync.Models(64); !reflect.DeepEqual(got, []string{"Contact"}) || !success.Sync.Succeeded() || success.Sync.Failed() {
		t.Errorf("success: models %q, succeeded %v, failed %v", got, success.Sync.Succeeded(), success.Sync.Failed())
	}
	if got := failure.Sync.Models(64); !reflect.DeepEqual(got, []string{"Contact", "Deal"}) || !failure.Sync.Failed() {
		t.Errorf("failure: models %q, failed %v", got, failure.Sync.Failed())
	}
	if got := failure.Sync.Models(1); !reflect.DeepEqual(got, []string{"Contact"}) {
		t.Errorf("failure: models at most 1: %q", got)
	}
	if success.Sync.Variant() != "eu" || failure.Sync.Variant() != "base" {
		t.Errorf("variants %q and %q, want eu and base", success.Sync.Variant(), failure.Sync.Variant())
	}
	neither := nango.SyncWebhook{Model: "Contact"}
	if neither.Succeeded() || neither.Failed() {
		t.Error("a sync webhook without success is a success or a failure")
	}
}

func TestWebhookSignaturesVerify(t *testing.T) {
	const key, rotated = "6f1c2b9e-0d4a-4c5e-9b7a-1e2f3a4b5c6d", "a8e7d6c5-b4a3-4921-8f0e-d1c2b3a4f5e6"
	body := []byte(syncSuccessBody)
	hmacHex, legacyHex := nangosim.SignWebhookBody(key, body)
	both := http.Header{}
	both.Set(nango.HeaderWebhookHMAC, " "+strings.ToUpper(hmacHex)+"\n")
	both.Set(nango.HeaderWebhookLegacy, "0000")
	legacyOnly := http.Header{}
	legacyOnly.Set(nango.HeaderWebhookLegacy, legacyHex)

	tests := []struct {
		name        string
		header      http.Header
		allowLegacy bool
		keys        []string
		want        bool
	}{
		{"HMAC, one of two keys", both, false, []string{rotated, key}, true},
		{"HMAC decides over a wrong legacy signature", both, true, []string{key}, true},
		{"HMAC, other key", both, false, []string{rotated}, false},
		{"no keys", both, false, nil, false},
		{"empty key", both, false, []string{""}, false},
		{"legacy, allowed", legacyOnly, true, []string{key}, true},
		{"legacy, not allowed", legacyOnly, false, []string{key}, false},
		{"nothing", http.Header{}, true, []string{key}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := nango.WebhookSignaturesOf(tt.header, tt.allowLegacy)
			if got := sigs.Verify(body, tt.keys...); got != tt.want {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
	if !nango.WebhookSignaturesOf(http.Header{}, true).Empty() || nango.WebhookSignaturesOf(legacyOnly, true).Empty() {
		t.Error("Empty")
	}
}

// FuzzParseWebhook reads arbitrary bodies with arbitrary signatures. Nothing may panic; a
// body is read exactly when it is a JSON object whose known fields have Nango's types; a
// signature verifies exactly when it is the body's signature with the key (computed
// independently by the emulator), in any case and with surrounding space. The receiver's
// FuzzReceive runs the same through the whole request path.
//
// Briefly: go test ./internal/nango -run '^$' -fuzz FuzzParseWebhook -fuzztime 10s
func FuzzParseWebhook(f *testing.F) {
	const key = "6f1c2b9e-0d4a-4c5e-9b7a-1e2f3a4b5c6d"
	seeds := []string{
		syncSuccessBody, syncFailureBody, authBody, authFailureBody,
		`{"type":"sync","model":",, ,","success":false}`, `{"type":"sync","success":true}`,
		`{"type":"sync","success":"true"}`, `{"type":"auth","endUser":null}`, `{"type":7}`,
		`{}`, `null`, `[]`, `"sync"`, `{`, ``, " \n{}",
	}
	for _, body := range seeds {
		hmacHex, legacyHex := nangosim.SignWebhookBody(key, []byte(body))
		f.Add([]byte(body), hmacHex, false)
		f.Add([]byte(body), strings.ToUpper(hmacHex), false)
		f.Add([]byte(body), legacyHex, true)
		f.Add([]byte(body), "", false)
	}

	f.Fuzz(func(t *testing.T, body []byte, signature string, legacy bool) {
		wh, err := nango.ParseWebhook(body)
		isObject := json.Valid(body) && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{"))
		if err == nil && !isObject {
			t.Fatalf("read a body that is not a JSON object")
		}
		if err == nil && wh.Sync != nil {
			models := wh.Sync.Models(64)
			if len(models) > 64 || (wh.Sync.Succeeded() && len(models) != 1) {
				t.Fatalf("models %q", models)
			}
			for _, model := range models {
				if !wh.Sync.Succeeded() && (model == "" || model != strings.TrimSpace(model)) {
					t.Fatalf("model %q of a failed run is empty or not trimmed", model)
				}
			}
		}

		header, name := http.Header{}, nango.HeaderWebhookHMAC
		if legacy {
			name = nango.HeaderWebhookLegacy
		}
		header[name] = []string{signature}
		hmacHex, legacyHex := nangosim.SignWebhookBody(key, body)
		want := hmacHex
		if legacy {
			want = legacyHex
		}
		right := strings.EqualFold(strings.TrimSpace(signature), want)
		if got := nango.WebhookSignaturesOf(header, true).Verify(body, "other-key", key); got != right {
			t.Fatalf("Verify = %v for signature %q, want %v", got, signature, right)
		}
	})
}
