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
	"context"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

var (
	hubspotSet = types.NamespacedName{Namespace: "crm", Name: "hubspot-pro"}
	otherSet   = types.NamespacedName{Namespace: "crm", Name: "salesforce"}
	teamSet    = types.NamespacedName{Namespace: "team", Name: "hubspot"}
)

func syncSet(key types.NamespacedName, integration string) *syncv1alpha1.NangoSyncSet {
	return &syncv1alpha1.NangoSyncSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Spec: syncv1alpha1.NangoSyncSetSpec{
			ProviderConfigKey: integration,
			Models:            []syncv1alpha1.SyncSetModel{{Model: "Contact"}},
		},
	}
}

// setFixtures: two sets of hubspot (one of them verifying with its own key) and one of
// salesforce, besides the usual objects.
func setFixtures() []client.Object {
	withKey := syncSet(teamSet, "hubspot")
	withKey.Spec.Template.Spec.Nango = &syncv1alpha1.NangoEndpoint{
		WebhookSigningKeyRef: &syncv1alpha1.SecretKeyReference{Name: "nango-signing", Key: "key"},
	}
	return append(fixtures(), syncSet(hubspotSet, "hubspot"), syncSet(otherSet, "salesforce"), withKey)
}

func authWebhook(t testing.TB, operation string, success bool) []byte {
	p := map[string]any{
		"from": "nango", "type": "auth", "connectionId": "new-customer", "providerConfigKey": "hubspot", "provider": "hubspot",
		"authMode": "OAUTH2", "environment": "prod", "operation": operation, "success": success, "tags": map[string]string{},
	}
	if !success {
		p["error"] = map[string]string{"type": "refresh_token_external_error", "description": "invalid_grant"}
	}
	return encode(t, p)
}

func (h *harness) setRequestedAt(key types.NamespacedName) string {
	h.t.Helper()
	set := &syncv1alpha1.NangoSyncSet{}
	if err := h.client.Get(context.Background(), key, set); err != nil {
		h.t.Fatalf("get NangoSyncSet %s: %v", key, err)
	}
	return set.Annotations[syncv1alpha1.RequestedAtAnnotation]
}

func TestNewConnectionWakesTheSetsOfItsIntegration(t *testing.T) {
	for _, operation := range []string{"creation", "override"} {
		t.Run(operation, func(t *testing.T) {
			g := NewWithT(t)
			h := newHarness(t, true, nil, setFixtures()...)
			g.Expect(h.webhook(operatorKey, authWebhook(t, operation, true))).To(Equal(http.StatusAccepted))
			g.Eventually(func() string { return h.setRequestedAt(hubspotSet) }).WithTimeout(5 * time.Second).ShouldNot(BeEmpty())
			g.Eventually(func() string { return h.setRequestedAt(teamSet) }).WithTimeout(5 * time.Second).ShouldNot(BeEmpty())
			g.Expect(h.setRequestedAt(otherSet)).To(BeEmpty(), "a set of another integration")
			g.Expect(h.count("auth", resultWake)).To(Equal(1.0))
		})
	}
}

func TestAuthFailuresWakeNoSet(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, nil, setFixtures()...)
	for _, operation := range []string{"creation", "override", "refresh"} {
		g.Expect(h.webhook(operatorKey, authWebhook(t, operation, false))).To(Equal(http.StatusAccepted))
	}
	g.Consistently(func() int { return h.calls.patchCount() }).WithTimeout(300 * time.Millisecond).Should(BeZero())
	g.Expect(h.count("auth", resultIgnored)).To(Equal(3.0))
}

func TestASetsOwnSigningKeyWakesOnlyThatSet(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, nil, setFixtures()...)
	g.Expect(h.webhook(teamKey, authWebhook(t, "creation", true))).To(Equal(http.StatusAccepted))
	g.Eventually(func() string { return h.setRequestedAt(teamSet) }).WithTimeout(5 * time.Second).ShouldNot(BeEmpty())
	g.Expect(h.setRequestedAt(hubspotSet)).To(BeEmpty(), "the set without a key of its own needs the operator's")
	g.Expect(h.webhook(strangerKey, authWebhook(t, "creation", true))).To(Equal(http.StatusUnauthorized))
}

// acmeRefreshFailed and acmeReconnected are auth webhooks about the connection the
// fixtures' NangoSyncs read.
func acmeRefreshFailed(t testing.TB) []byte {
	return encode(t, map[string]any{
		"from": "nango", "type": "auth", "connectionId": "acme", "providerConfigKey": "hubspot", "provider": "hubspot",
		"authMode": "OAUTH2", "environment": "prod", "operation": "refresh", "success": false, "tags": map[string]string{},
		"error": map[string]string{"type": "refresh_token_external_error", "description": "invalid_grant"},
	})
}

func acmeReconnected(t testing.TB) []byte {
	return encode(t, map[string]any{
		"from": "nango", "type": "auth", "connectionId": "acme", "providerConfigKey": "hubspot", "provider": "hubspot",
		"authMode": "OAUTH2", "environment": "prod", "operation": "override", "success": true, "tags": map[string]string{},
	})
}

// TestFailingCredentialsAreShownOnTheConnectionsNangoSyncs: those of the operator's
// environment; ownKey, which names its own signing key, reads the connection of another.
func TestFailingCredentialsAreShownOnTheConnectionsNangoSyncs(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, nil, setFixtures()...)
	g.Expect(h.webhook(operatorKey, acmeRefreshFailed(t))).To(Equal(http.StatusAccepted))
	g.Expect(h.count("auth", resultAuthFailed)).To(Equal(1.0))
	for _, key := range []types.NamespacedName{contacts, deals, variant} {
		g.Eventually(func() string { return h.annotations(key)[syncv1alpha1.NangoAuthFailureAnnotation] }).
			WithTimeout(5*time.Second).Should(And(ContainSubstring(`"type":"refresh_token_external_error"`),
			ContainSubstring(`"operation":"refresh"`), ContainSubstring(`"description":"invalid_grant"`)), key.String())
	}
	g.Expect(h.setRequestedAt(hubspotSet)).To(BeEmpty(), "a failure wakes no set")
	g.Expect(h.annotations(ownKey)).NotTo(HaveKey(syncv1alpha1.NangoAuthFailureAnnotation), "another environment's connection")

	// The end user reconnects: the failure goes, and the sets of the integration wake.
	g.Expect(h.webhook(operatorKey, acmeReconnected(t))).To(Equal(http.StatusAccepted))
	for _, key := range []types.NamespacedName{contacts, deals, variant} {
		g.Eventually(func() map[string]string { return h.annotations(key) }).
			WithTimeout(5*time.Second).ShouldNot(HaveKey(syncv1alpha1.NangoAuthFailureAnnotation), key.String())
	}
	g.Eventually(func() string { return h.setRequestedAt(hubspotSet) }).WithTimeout(5 * time.Second).ShouldNot(BeEmpty())
}

// TestOperatorKeyWritesNoAuthStateOnNangoSyncsWithTheirOwnKey: a NangoSync that names its
// own signing key reads a connection of another Nango environment: the operator's key
// neither writes a credentials failure onto it nor clears one; its own key does both.
func TestOperatorKeyWritesNoAuthStateOnNangoSyncsWithTheirOwnKey(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, func(o *Options) { o.MinWakeInterval = time.Millisecond }, setFixtures()...)
	g.Expect(h.webhook(operatorKey, acmeRefreshFailed(t))).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(contacts) }).Should(HaveKey(syncv1alpha1.NangoAuthFailureAnnotation))
	g.Consistently(func() map[string]string { return h.annotations(ownKey) }).WithTimeout(200*time.Millisecond).
		ShouldNot(HaveKey(syncv1alpha1.NangoAuthFailureAnnotation), "the operator's environment wrote a failure")

	g.Expect(h.webhook(teamKey, acmeRefreshFailed(t))).To(Equal(http.StatusAccepted)) // its own environment's
	g.Eventually(func() map[string]string { return h.annotations(ownKey) }).Should(HaveKey(syncv1alpha1.NangoAuthFailureAnnotation))
	g.Expect(h.webhook(operatorKey, acmeReconnected(t))).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(contacts) }).ShouldNot(HaveKey(syncv1alpha1.NangoAuthFailureAnnotation))
	g.Consistently(func() map[string]string { return h.annotations(ownKey) }).WithTimeout(200*time.Millisecond).
		Should(HaveKey(syncv1alpha1.NangoAuthFailureAnnotation), "the operator's environment cleared it")

	g.Expect(h.webhook(teamKey, acmeReconnected(t))).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(ownKey) }).ShouldNot(HaveKey(syncv1alpha1.NangoAuthFailureAnnotation))
}
