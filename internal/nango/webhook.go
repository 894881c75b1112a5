package nango

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// Webhook signature headers Nango sends on every webhook.
const (
	HeaderWebhookHMAC   = "X-Nango-Hmac-Sha256"
	HeaderWebhookLegacy = "X-Nango-Signature"
)

// WebhookSignatures are both signatures of a webhook body, lowercase hex.
type WebhookSignatures struct {
	// HMAC is HMAC-SHA256(key = signing key, message = body): use this one.
	HMAC string
	// Legacy is SHA-256(signing key + body); it is open to length
	// extension, so accept it only when a user opts in.
	Legacy string
}

// ComputeWebhookSignatures signs a raw webhook body with a signing key.
func ComputeWebhookSignatures(signingKey string, body []byte) WebhookSignatures {
	mac := hmac.New(sha256.New, []byte(signingKey))
	_, _ = mac.Write(body)
	h := sha256.New()
	_, _ = h.Write([]byte(signingKey))
	_, _ = h.Write(body)
	return WebhookSignatures{HMAC: hex.EncodeToString(mac.Sum(nil)), Legacy: hex.EncodeToString(h.Sum(nil))}
}

// VerifyWebhookHMAC reports whether signature (the X-Nango-Hmac-Sha256
// value) matches body under any of the keys (during a rotation a receiver
// holds the old and the new key). It compares in constant time.
func VerifyWebhookHMAC(body []byte, signature string, keys ...string) bool {
	return verify(signature, keys, func(k string) string { return ComputeWebhookSignatures(k, body).HMAC })
}

// VerifyWebhookLegacy is VerifyWebhookHMAC for the legacy X-Nango-Signature.
func VerifyWebhookLegacy(body []byte, signature string, keys ...string) bool {
	return verify(signature, keys, func(k string) string { return ComputeWebhookSignatures(k, body).Legacy })
}

func verify(signature string, keys []string, sign func(string) string) bool {
	got := []byte(strings.ToLower(strings.TrimSpace(signature)))
	ok := false
	for _, k := range keys {
		if k == "" {
			continue
		}
		if subtle.ConstantTimeCompare(got, []byte(sign(k))) == 1 {
			ok = true
		}
	}
	return ok
}
