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
	"net/http"
	"strings"
	"testing"

	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// FuzzReceive sends arbitrary bodies with arbitrary signatures through the whole request
// path: reading, verification, parsing, matching. Nothing may panic; a webhook is accepted
// only with the signature of a known key; with the right signature, it is accepted exactly
// when Nango's wire format reads it. The wire format itself is fuzzed by nango's
// FuzzParseWebhook.
//
// Briefly: go test ./internal/receiver -run '^$' -fuzz FuzzReceive -fuzztime 10s
func FuzzReceive(f *testing.F) {
	failed := syncPayload("Contact,Deal", "", false)
	seeds := [][]byte{
		encode(f, syncPayload("Contact", "base", true)),
		encode(f, syncPayload("Contact", "", true)),
		encode(f, failed),
		authBody(f),
		[]byte(`{"type":"sync","model":",, ,","success":false}`),
		[]byte(`{"type":"sync","success":true}`),
		[]byte(`{"type":"sync","success":"true"}`),
		[]byte(`{"type":7}`),
		[]byte(`{}`), []byte(`null`), []byte(`[]`), []byte(`"sync"`), []byte(`{`), []byte(``), []byte(" \n{}"),
	}
	for _, body := range seeds {
		hmacHex, legacyHex := nangosim.SignWebhookBody(operatorKey, body)
		f.Add(body, hmacHex)
		f.Add(body, strings.ToUpper(hmacHex))
		f.Add(body, legacyHex)
		f.Add(body, "")
	}

	// No workers: wakes stay queued, so the fuzzer exercises only the request path. The
	// queue is small to keep memory flat; wakes past it are dropped.
	shared := newHarness(f, false, func(o *Options) { o.QueueSize = 8 }, fixtures()...)

	f.Fuzz(func(t *testing.T, body []byte, signature string) {
		h := *shared
		h.t = t // F's own methods may not be called inside the fuzz target
		header := http.Header{}
		header.Set(nango.HeaderWebhookHMAC, signature)
		code := h.post(http.MethodPost, Path, body, header).Code
		byOperator, _ := nangosim.SignWebhookBody(operatorKey, body)
		byTeam, _ := nangosim.SignWebhookBody(teamKey, body)
		given := strings.TrimSpace(signature)
		rightSignature := strings.EqualFold(given, byOperator) || strings.EqualFold(given, byTeam)
		switch code {
		case http.StatusAccepted, http.StatusBadRequest:
			if !rightSignature {
				t.Fatalf("answered %d to a body with a signature no known key made", code)
			}
		case http.StatusUnauthorized:
			if strings.EqualFold(given, byOperator) {
				t.Fatalf("refused a body signed with the operator's key")
			}
		default:
			t.Fatalf("unexpected status %d", code)
		}

		_, parseErr := nango.ParseWebhook(body)
		code = h.post(http.MethodPost, Path, body, signedWith(operatorKey, body)).Code
		switch {
		case parseErr == nil && code != http.StatusAccepted:
			t.Fatalf("answered %d to a well-formed body signed with the operator's key", code)
		case parseErr != nil && code != http.StatusBadRequest:
			t.Fatalf("answered %d to a malformed body signed with the operator's key (%v)", code, parseErr)
		}
	})
}
