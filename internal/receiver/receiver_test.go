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

package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/secretcache"
)

func TestAnswers(t *testing.T) {
	success := encode(t, syncPayload("Contact", "base", true))
	tests := []struct {
		name        string
		method      string
		path        string
		body        []byte
		header      http.Header
		status      int
		webhookType string
		result      string
	}{
		{"a verified sync webhook for a NangoSync", http.MethodPost, Path, success, signedWith(operatorKey, success),
			http.StatusAccepted, "sync", resultWake},
		{"a verified sync webhook no NangoSync matches", http.MethodPost, Path, encode(t, syncPayload("Ticket", "", true)),
			signedWith(operatorKey, encode(t, syncPayload("Ticket", "", true))), http.StatusAccepted, "sync", resultNoMatch},
		{"a verified auth webhook", http.MethodPost, Path, authBody(t), signedWith(operatorKey, authBody(t)),
			http.StatusAccepted, "auth", resultIgnored},
		{"a verified webhook of a type Nango may add", http.MethodPost, Path, []byte(`{"type":"brand_new","x":[1,2]}`),
			signedWith(operatorKey, []byte(`{"type":"brand_new","x":[1,2]}`)), http.StatusAccepted, "other", resultIgnored},
		{"a signature by an unknown key", http.MethodPost, Path, success, signedWith(strangerKey, success),
			http.StatusUnauthorized, typeUnknown, resultUnauthorized},
		{"a signature of another body", http.MethodPost, Path, success, signedWith(operatorKey, []byte(`{}`)),
			http.StatusUnauthorized, typeUnknown, resultUnauthorized},
		{"no signature", http.MethodPost, Path, success, http.Header{}, http.StatusUnauthorized, typeUnknown, resultUnauthorized},
		{"a legacy signature without the opt-in", http.MethodPost, Path, success, legacyOnly(operatorKey, success),
			http.StatusUnauthorized, typeUnknown, resultUnauthorized},
		{"verified malformed JSON", http.MethodPost, Path, []byte(`{"type":"sync",`), signedWith(operatorKey, []byte(`{"type":"sync",`)),
			http.StatusBadRequest, typeUnknown, resultMalformed},
		{"verified JSON that is not an object", http.MethodPost, Path, []byte(`null`), signedWith(operatorKey, []byte(`null`)),
			http.StatusBadRequest, typeUnknown, resultMalformed},
		{"verified sync webhook with fields of the wrong type", http.MethodPost, Path, []byte(`{"type":"sync","success":"yes"}`),
			signedWith(operatorKey, []byte(`{"type":"sync","success":"yes"}`)), http.StatusBadRequest, typeUnknown, resultMalformed},
		{"unverified malformed JSON", http.MethodPost, Path, []byte(`not json`), signedWith(strangerKey, []byte(`not json`)),
			http.StatusUnauthorized, typeUnknown, resultUnauthorized},
		{"a body over 1 MiB", http.MethodPost, Path, bytes.Repeat([]byte(" "), MaxBodyBytes+1), signedWith(operatorKey, success),
			http.StatusRequestEntityTooLarge, typeUnknown, resultTooLarge},
		{"GET", http.MethodGet, Path, nil, http.Header{}, http.StatusMethodNotAllowed, typeUnknown, resultWrongMethod},
		{"PUT", http.MethodPut, Path, success, signedWith(operatorKey, success), http.StatusMethodNotAllowed, typeUnknown, resultWrongMethod},
		{"another path", http.MethodPost, "/webhooks/other", success, signedWith(operatorKey, success),
			http.StatusNotFound, typeUnknown, resultNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, false, nil, fixtures()...)
			rec := h.post(tt.method, tt.path, tt.body, tt.header)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tt.status, rec.Body.String())
			}
			if got := h.count(tt.webhookType, tt.result); got != 1 {
				t.Errorf("nango_operator_webhooks_total{type=%q,result=%q} = %v, want 1", tt.webhookType, tt.result, got)
			}
			if tt.status == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q, want POST", rec.Header().Get("Allow"))
			}
			if tt.status != http.StatusAccepted && h.receiver.waker.queued() != 0 {
				t.Errorf("a refused request queued %d wakes", h.receiver.waker.queued())
			}
		})
	}
}

func authBody(t testing.TB) []byte {
	return encode(t, map[string]any{
		"from": "nango", "type": "auth", "connectionId": "acme", "providerConfigKey": "hubspot", "provider": "hubspot",
		"authMode": "OAUTH2", "environment": "prod", "operation": "creation", "success": true,
		"endUser": map[string]string{"endUserId": "u1", "organizationId": "o1"},
	})
}

func TestSuccessfulRunWakesExactlyTheMatchingNangoSyncs(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, nil, fixtures()...)

	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Contact", "base", true)))).To(Equal(http.StatusAccepted))

	// The operator's key verifies for every NangoSync, the one with a key of its own too.
	for _, key := range []types.NamespacedName{contacts, ownKey} {
		g.Eventually(func() map[string]string { return h.annotations(key) }).
			Should(HaveKeyWithValue(syncv1alpha1.RequestedAtAnnotation, Not(BeEmpty())), "%s was not woken", key)
		value := h.annotations(key)[syncv1alpha1.RequestedAtAnnotation]
		_, err := time.Parse(time.RFC3339Nano, value)
		g.Expect(err).NotTo(HaveOccurred(), "requested-at %q is not RFC 3339", value)
	}
	g.Consistently(h.calls.patchCount).WithTimeout(100 * time.Millisecond).Should(Equal(2))
	g.Expect(h.annotations(deals)).NotTo(HaveKey(syncv1alpha1.RequestedAtAnnotation), "another model was woken")
	g.Expect(h.annotations(variant)).NotTo(HaveKey(syncv1alpha1.RequestedAtAnnotation), "another variant was woken")
	g.Eventually(func() float64 { return h.metricValue("nango_operator_webhook_wake_seconds", nil) }).Should(Equal(2.0))

	By := "a webhook without syncVariant is for the base variant"
	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Deal", "", true)))).To(Equal(http.StatusAccepted), By)
	g.Eventually(func() map[string]string { return h.annotations(deals) }).Should(HaveKey(syncv1alpha1.RequestedAtAnnotation), By)

	By = "a variant's webhook wakes the variant"
	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Contact", "eu", true)))).To(Equal(http.StatusAccepted), By)
	g.Eventually(func() map[string]string { return h.annotations(variant) }).Should(HaveKey(syncv1alpha1.RequestedAtAnnotation), By)
}

func TestNangoSyncKeyWakesOnlyTheNangoSyncsItVerifies(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, nil, fixtures()...)
	body := encode(t, syncPayload("Contact", "base", true))

	g.Expect(h.webhook(teamKey, body)).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(ownKey) }).Should(HaveKey(syncv1alpha1.RequestedAtAnnotation))
	g.Consistently(h.calls.patchCount).WithTimeout(100 * time.Millisecond).Should(Equal(1))
	g.Expect(h.annotations(contacts)).NotTo(HaveKey(syncv1alpha1.RequestedAtAnnotation),
		"a NangoSync without the team's key was woken by a webhook only the team's key verifies")

	By := "the team's key verifies nothing of another connection"
	other := syncPayload("Contact", "base", true)
	other["connectionId"] = "globex"
	g.Expect(h.webhook(teamKey, encode(t, other))).To(Equal(http.StatusUnauthorized), By)

	By = "the team's key verifies an auth webhook of its connection"
	g.Expect(h.webhook(teamKey, authBody(t))).To(Equal(http.StatusAccepted), By)
	g.Expect(h.count("auth", resultIgnored)).To(Equal(1.0), By)
}

func TestOnlyNangoSyncKeysWithoutOperatorSecret(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, func(o *Options) { o.SigningSecret = types.NamespacedName{} }, fixtures()...)
	body := encode(t, syncPayload("Contact", "base", true))

	g.Expect(h.webhook(operatorKey, body)).To(Equal(http.StatusUnauthorized))
	g.Expect(h.webhook(teamKey, body)).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(ownKey) }).Should(HaveKey(syncv1alpha1.RequestedAtAnnotation))
}

func TestMissingOperatorSecretHoldsNoKeys(t *testing.T) {
	g := NewWithT(t)
	objs := fixtures()[1:] // no operator Secret
	h := newHarness(t, true, nil, objs...)
	body := encode(t, syncPayload("Contact", "base", true))

	g.Expect(h.webhook(operatorKey, body)).To(Equal(http.StatusUnauthorized))
	g.Expect(h.webhook(teamKey, body)).To(Equal(http.StatusAccepted))
}

func TestKeyRotation(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, nil, fixtures()...)
	ctx := context.Background()
	body := encode(t, syncPayload("Contact", "base", true))
	g.Expect(h.webhook(operatorKey, body)).To(Equal(http.StatusAccepted))

	By := "a key added to the Secret verifies at once: a miss reads the Secret again"
	s := secret(operatorSecret, map[string]string{"old": operatorKey, "new": operatorKeyNew})
	g.Expect(h.client.Update(ctx, s)).To(Succeed())
	h.clock.Step(DefaultKeyRefreshInterval)
	g.Expect(h.webhook(operatorKeyNew, body)).To(Equal(http.StatusAccepted), By)

	By = "during the rotation both keys verify"
	g.Expect(h.webhook(operatorKey, body)).To(Equal(http.StatusAccepted), By)
	g.Expect(h.webhook(operatorKeyNew, body)).To(Equal(http.StatusAccepted), By)

	By = "a key removed from the Secret stops verifying as soon as the Secret's change is seen"
	s = secret(operatorSecret, map[string]string{"new": operatorKeyNew})
	g.Expect(h.client.Update(ctx, s)).To(Succeed())
	g.Expect(h.webhook(operatorKey, body)).To(Equal(http.StatusUnauthorized), By)
	g.Expect(h.webhook(operatorKeyNew, body)).To(Equal(http.StatusAccepted), By)
}

func TestFloodOfBadSignaturesReadsEachSecretAtMostOncePerInterval(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, false, nil, fixtures()...)
	body := encode(t, syncPayload("Contact", "base", true))

	for range 200 {
		g.Expect(h.webhook(strangerKey, body)).To(Equal(http.StatusUnauthorized))
	}
	// The operator's Secret and the team's: each read once.
	g.Expect(h.calls.secretReadCount()).To(Equal(2))

	h.clock.Step(DefaultKeyRefreshInterval)
	for range 200 {
		g.Expect(h.webhook(strangerKey, body)).To(Equal(http.StatusUnauthorized))
	}
	g.Expect(h.calls.secretReadCount()).To(Equal(4))
	g.Expect(h.receiver.waker.queued()).To(BeZero())
}

func TestUnreadableKeysAnswer503SoNangoRetries(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, false, nil, fixtures()...)
	h.calls.set(func(a *apiCalls) { a.failSecretReads = true })
	body := encode(t, syncPayload("Contact", "base", true))

	g.Expect(h.webhook(operatorKey, body)).To(Equal(http.StatusServiceUnavailable))
	g.Expect(h.count(typeUnknown, resultUnavailable)).To(Equal(1.0))

	By := "once the Secret reads again, the webhook verifies"
	h.calls.set(func(a *apiCalls) { a.failSecretReads = false })
	h.clock.Step(DefaultKeyRefreshInterval)
	g.Expect(h.webhook(operatorKey, body)).To(Equal(http.StatusAccepted), By)
}

func TestUnreadableNangoSyncsAnswer503(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, false, nil, fixtures()...)
	h.calls.set(func(a *apiCalls) { a.failLists = true })

	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Contact", "base", true)))).To(Equal(http.StatusServiceUnavailable))
	By := "a webhook the operator's key verifies and that wakes nothing needs no NangoSync"
	g.Expect(h.webhook(operatorKey, []byte(`{"type":"brand_new","x":[1,2]}`))).To(Equal(http.StatusAccepted), By)
	By = "an auth webhook may concern the connection's NangoSyncs: Nango retries it"
	g.Expect(h.webhook(operatorKey, authBody(t))).To(Equal(http.StatusServiceUnavailable), By)
}

func TestLegacySignatureOptIn(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, func(o *Options) { o.AllowLegacySignature = true }, fixtures()...)
	body := encode(t, syncPayload("Contact", "base", true))

	g.Expect(h.post(http.MethodPost, Path, body, legacyOnly(operatorKey, body)).Code).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(contacts) }).Should(HaveKey(syncv1alpha1.RequestedAtAnnotation))
	g.Expect(h.post(http.MethodPost, Path, body, legacyOnly(strangerKey, body)).Code).To(Equal(http.StatusUnauthorized))

	By := "an HMAC signature, when sent, decides alone"
	header := legacyOnly(operatorKey, body)
	header.Set(nango.HeaderWebhookHMAC, strings.Repeat("0", 64))
	g.Expect(h.post(http.MethodPost, Path, body, header).Code).To(Equal(http.StatusUnauthorized), By)

	By = "header names and hex case do not matter"
	hmacHex, _ := nangosim.SignWebhookBody(operatorKey, body)
	req := http.Header{"x-nango-hmac-sha256": {strings.ToUpper(hmacHex)}}
	g.Expect(h.post(http.MethodPost, Path, body, req).Code).To(Equal(http.StatusAccepted), By)
}

func TestInProcessWakeGoesBeforeThePatchWithItsValue(t *testing.T) {
	g := NewWithT(t)
	var mu sync.Mutex
	inProcess := map[types.NamespacedName]string{}
	h := newHarness(t, true, func(o *Options) {
		o.WakeInProcess = func(key types.NamespacedName, requestedAt string) {
			mu.Lock()
			defer mu.Unlock()
			inProcess[key] = requestedAt
		}
	}, fixtures()...)
	woken := func() map[types.NamespacedName]string {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(inProcess)
	}

	By := "a failed run wakes nothing in-process"
	failed := syncPayload("Contact", "base", false)
	failed["error"] = map[string]string{"type": "script_error", "description": "d"}
	g.Expect(h.webhook(operatorKey, encode(t, failed))).To(Equal(http.StatusAccepted))
	g.Expect(woken()).To(BeEmpty(), By)

	By = "a successful run wakes its NangoSyncs in-process with the value their annotation gets"
	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Contact", "base", true)))).To(Equal(http.StatusAccepted))
	g.Expect(woken()).To(HaveLen(2), By) // before the 202, so before any patch
	for _, key := range []types.NamespacedName{contacts, ownKey} {
		g.Expect(woken()).To(HaveKeyWithValue(key, Not(BeEmpty())), By)
		// The failure's patch went first: this one waits for DefaultMinWakeInterval.
		g.Eventually(func() map[string]string { return h.annotations(key) }).WithTimeout(3*time.Second).
			Should(HaveKeyWithValue(syncv1alpha1.RequestedAtAnnotation, woken()[key]), By)
	}
}

func TestFailedRunIsAnnotatedAndWakesNothing(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, nil, fixtures()...)
	failed := syncPayload("Contact, Deal,Contact", "", false)
	long := strings.Repeat("é", 1000) // 2000 bytes
	failed["error"] = map[string]string{"type": "script_error", "description": long}

	g.Expect(h.webhook(operatorKey, encode(t, failed))).To(Equal(http.StatusAccepted))
	g.Expect(h.count("sync", resultRunFailed)).To(Equal(1.0))
	// ownKey names its own signing key: it belongs to another Nango environment, whose
	// failures the operator's key does not speak for (issue 14, item 15).
	g.Consistently(func() map[string]string { return h.annotations(ownKey) }).WithTimeout(100 * time.Millisecond).
		ShouldNot(HaveKey(syncv1alpha1.NangoRunFailureAnnotation))
	for _, key := range []types.NamespacedName{contacts, deals} {
		g.Eventually(func() map[string]string { return h.annotations(key) }).
			Should(HaveKey(syncv1alpha1.NangoRunFailureAnnotation), "%s was not told of the failed run", key)
		annotations := h.annotations(key)
		g.Expect(annotations).NotTo(HaveKey(syncv1alpha1.RequestedAtAnnotation), "a failed run woke %s", key)
		var f syncv1alpha1.NangoRunFailure
		g.Expect(json.Unmarshal([]byte(annotations[syncv1alpha1.NangoRunFailureAnnotation]), &f)).To(Succeed())
		g.Expect(f.Type).To(Equal("script_error"))
		g.Expect(f.SyncName).To(Equal("contacts"))
		g.Expect(f.FailedAt).To(Equal("2026-05-01T10:00:05Z"))
		g.Expect(len(f.Description)).To(BeNumerically("<=", maxDescriptionBytes))
		g.Expect(f.Description).To(HavePrefix("éé"))
		g.Expect(strings.ToValidUTF8(f.Description, "?")).To(Equal(f.Description))
	}
	g.Expect(h.annotations(variant)).NotTo(HaveKey(syncv1alpha1.NangoRunFailureAnnotation), "the eu variant did not fail")

	By := "a later successful run removes the failure and wakes the NangoSync"
	later := syncPayload("Contact", "base", true)
	later["queryTimeStamp"] = "2026-05-01T10:05:00.000Z"
	g.Expect(h.webhook(operatorKey, encode(t, later))).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(contacts) }).WithTimeout(3*time.Second).Should(And(
		HaveKey(syncv1alpha1.RequestedAtAnnotation), Not(HaveKey(syncv1alpha1.NangoRunFailureAnnotation))), By)
	g.Expect(h.annotations(deals)).To(HaveKey(syncv1alpha1.NangoRunFailureAnnotation), "Deal's run has not succeeded yet")
}

func TestSyncWebhookWithoutSuccessIsIgnored(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, false, nil, fixtures()...)
	payload := syncPayload("Contact", "base", true)
	delete(payload, "success")

	g.Expect(h.webhook(operatorKey, encode(t, payload))).To(Equal(http.StatusAccepted))
	g.Expect(h.count("sync", resultIgnored)).To(Equal(1.0))
	g.Expect(h.receiver.waker.queued()).To(BeZero())
}

func TestBurstCoalescesIntoOneMoreWake(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, nil, fixtures()...)
	hold := make(chan struct{})
	h.calls.set(func(a *apiCalls) { a.hold = hold })
	body := encode(t, syncPayload("Deal", "base", true))

	g.Expect(h.webhook(operatorKey, body)).To(Equal(http.StatusAccepted))
	g.Eventually(func() int { return len(h.calls.patchesOf(deals)) }).Should(Equal(1), "the first wake is not being written")
	for range 1000 {
		g.Expect(h.webhook(operatorKey, body)).To(Equal(http.StatusAccepted))
	}
	lastWebhook := time.Now()
	h.calls.set(func(a *apiCalls) { a.hold = nil })
	close(hold)

	g.Eventually(func() int { return len(h.calls.patchesOf(deals)) }).Should(Equal(2))
	g.Consistently(func() int { return len(h.calls.patchesOf(deals)) }).WithTimeout(200 * time.Millisecond).Should(Equal(2))
	g.Expect(h.calls.patchesOf(deals)[1].started).To(BeTemporally(">=", lastWebhook),
		"the last wake must start after the last webhook, or that webhook's records could be missed")
	g.Expect(h.count("sync", resultWake)).To(Equal(1001.0))
}

func TestFullQueueDropsWakesAndCountsThem(t *testing.T) {
	g := NewWithT(t)
	// Workers not started: the one-slot queue stays full.
	h := newHarness(t, false, func(o *Options) { o.QueueSize = 1 }, fixtures()...)

	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Deal", "base", true)))).To(Equal(http.StatusAccepted))
	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Deal", "base", true)))).To(Equal(http.StatusAccepted),
		"a NangoSync already queued takes more webhooks without a slot")
	g.Expect(h.metricValue("nango_operator_webhook_wakes_dropped_total", nil)).To(BeZero())

	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Contact", "eu", true)))).To(Equal(http.StatusAccepted),
		"a dropped wake is still a verified webhook")
	g.Expect(h.metricValue("nango_operator_webhook_wakes_dropped_total", nil)).To(Equal(1.0))
	g.Expect(h.receiver.waker.queued()).To(Equal(1))
}

func TestDeletedNangoSyncNeedsNoWake(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, nil, fixtures()...)
	err := h.receiver.waker.write(context.Background(), types.NamespacedName{Namespace: "crm", Name: "gone"}, wakeWork{wake: true})
	g.Expect(err).NotTo(HaveOccurred())
}

// TestEmulatorWebhookWakes sends webhooks the way Nango does, through the emulator, to the
// receiver served over HTTP.
func TestEmulatorWebhookWakes(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := newHarness(t, true, nil, fixtures()...)
	server := httptest.NewServer(NewHTTPServer(h.receiver).Handler)
	t.Cleanup(server.Close)

	sim := nangosim.New(nangosim.Options{SigningKey: operatorKey, WebhookURL: server.URL + Path})
	ref := nangosim.ModelRef{ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "acme"}, Model: "Contact"}
	g.Expect(sim.CreateConnection(ref.ConnectionRef, "hubspot")).To(Succeed())
	_, err := sim.UpsertRecords(ref, []json.RawMessage{json.RawMessage(`{"id":"1","name":"Ada"}`)})
	g.Expect(err).NotTo(HaveOccurred())

	delivery, err := sim.SendSyncWebhook(ctx, nangosim.SyncWebhook{ModelRef: ref, SyncName: "contacts"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(delivery.StatusCode).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(contacts) }).Should(HaveKey(syncv1alpha1.RequestedAtAnnotation))

	By := "a rotated emulator key verifies once the operator's Secret holds it"
	g.Expect(sim.SetSigningKey("", operatorKeyNew)).To(Succeed())
	delivery, err = sim.SendSyncWebhook(ctx, nangosim.SyncWebhook{ModelRef: ref, SyncName: "contacts"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(delivery.StatusCode).To(Equal(http.StatusUnauthorized), By)
	g.Expect(h.client.Update(ctx, secret(operatorSecret, map[string]string{"a": operatorKey, "b": operatorKeyNew}))).To(Succeed())
	h.clock.Step(DefaultKeyRefreshInterval)
	delivery, err = sim.SendSyncWebhook(ctx, nangosim.SyncWebhook{ModelRef: ref, SyncName: "contacts"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(delivery.StatusCode).To(Equal(http.StatusAccepted), By)
}

func TestHTTPServerHasTimeouts(t *testing.T) {
	s := NewHTTPServer(http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
		t.Fatalf("server without a timeout or header limit: %+v", s)
	}
}

func TestAnnotationPatch(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.UTC)
	patch, err := annotationPatch(wakeWork{wake: true, requestedAt: now, clearFailure: true}, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(patch)).To(MatchJSON(`{"metadata":{"annotations":{
		"sync.nango.dev/requested-at":"2026-05-01T10:00:00.123456789Z","sync.nango.dev/nango-run-failure":null}}}`))

	patch, err = annotationPatch(wakeWork{failure: &syncv1alpha1.NangoRunFailure{Type: "t", Description: "d", SyncName: "s", FailedAt: "f"}}, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(patch)).To(MatchJSON(`{"metadata":{"annotations":{
		"sync.nango.dev/nango-run-failure":"{\"type\":\"t\",\"description\":\"d\",\"syncName\":\"s\",\"failedAt\":\"f\"}"}}}`))
}

func TestSlashesInNamesDoNotMixDataSets(t *testing.T) {
	g := NewWithT(t)
	slashInIntegration := nangoSync(types.NamespacedName{Namespace: "crm", Name: "a-b"}, "Contact", "")
	slashInIntegration.Spec.ProviderConfigKey, slashInIntegration.Spec.ConnectionID = "a/b", "c"
	slashInConnection := nangoSync(types.NamespacedName{Namespace: "crm", Name: "b-c"}, "Contact", "")
	slashInConnection.Spec.ProviderConfigKey, slashInConnection.Spec.ConnectionID = "a", "b/c"
	h := newHarness(t, true, nil, secret(operatorSecret, map[string]string{"key": operatorKey}), slashInIntegration, slashInConnection)

	payload := syncPayload("Contact", "base", true)
	payload["providerConfigKey"], payload["connectionId"] = "a", "b/c"
	g.Expect(h.webhook(operatorKey, encode(t, payload))).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(client.ObjectKeyFromObject(slashInConnection)) }).
		Should(HaveKey(syncv1alpha1.RequestedAtAnnotation))
	g.Consistently(h.calls.patchCount).WithTimeout(100 * time.Millisecond).Should(Equal(1))
	g.Expect(h.annotations(client.ObjectKeyFromObject(slashInIntegration))).NotTo(HaveKey(syncv1alpha1.RequestedAtAnnotation))
}

func TestWakeRetriesAPassingPatchFailure(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, nil, fixtures()...)
	h.calls.set(func(a *apiCalls) { a.failPatches = wakeAttempts - 1 })

	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Deal", "base", true)))).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(deals) }).Should(HaveKey(syncv1alpha1.RequestedAtAnnotation))
	g.Expect(h.calls.patchesOf(deals)).To(HaveLen(wakeAttempts))

	By := "a wake that fails every attempt is given up, and the next one is written"
	h.calls.set(func(a *apiCalls) { a.failPatches = wakeAttempts })
	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Contact", "eu", true)))).To(Equal(http.StatusAccepted), By)
	g.Eventually(func() []patchRecord { return h.calls.patchesOf(variant) }).Should(HaveLen(wakeAttempts), By)
	g.Expect(h.annotations(variant)).NotTo(HaveKey(syncv1alpha1.RequestedAtAnnotation), By)
	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Contact", "eu", true)))).To(Equal(http.StatusAccepted), By)
	g.Eventually(func() map[string]string { return h.annotations(variant) }).Should(HaveKey(syncv1alpha1.RequestedAtAnnotation), By)
}

func TestOneRegistryTakesOneReceiver(t *testing.T) {
	h := newHarness(t, false, nil, fixtures()...)
	_, err := New(Options{Client: h.client, Secrets: secretcache.New(h.client, h.client), Registerer: h.registry})
	if err == nil {
		t.Fatal("a second receiver registered its metrics on the same registry")
	}
	if _, err := New(Options{}); err == nil {
		t.Fatal("a receiver without clients was built")
	}
}

func TestOwnNamespace(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "nango-system")
	if got := OwnNamespace(); got != "nango-system" {
		t.Fatalf("OwnNamespace() = %q with POD_NAMESPACE set, want nango-system", got)
	}
}
