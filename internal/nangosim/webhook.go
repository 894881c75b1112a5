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
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Webhook signature headers, both sent on every webhook.
const (
	HeaderHMACSignature   = "X-Nango-Hmac-Sha256"
	HeaderLegacySignature = "X-Nango-Signature"
)

// SignWebhookBody computes both signatures of a webhook body: the HMAC-SHA256
// (key = signing key) and the legacy SHA-256 of signing key + body, each as
// lowercase hex.
func SignWebhookBody(signingKey string, body []byte) (hmacHex, legacyHex string) {
	mac := hmac.New(sha256.New, []byte(signingKey))
	_, _ = mac.Write(body)
	h := sha256.New()
	_, _ = h.Write([]byte(signingKey))
	_, _ = h.Write(body)
	return hex.EncodeToString(mac.Sum(nil)), hex.EncodeToString(h.Sum(nil))
}

// StableJSON encodes v as Nango's stable stringify does: compact, object
// keys sorted at every level, and no HTML escaping. Numbers keep their
// literal form.
func StableJSON(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Maps encode with sorted keys, which is the point of the round trip.
	if err := enc.Encode(generic); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// SyncWebhook describes a successful-sync webhook for one model.
type SyncWebhook struct {
	ModelRef
	SyncName string `json:"sync_name"`
	// SyncType is INITIAL, INCREMENTAL (default) or WEBHOOK.
	SyncType string `json:"sync_type,omitempty"`
	// Results overrides the counts; by default the changes made to the model
	// since its last sync webhook are reported (and then reset).
	Results *Results `json:"results,omitempty"`
	// ModifiedAfter overrides the reported time; by default the time of the
	// first change since the model's last sync webhook.
	ModifiedAfter time.Time `json:"modified_after,omitzero"`
}

// Delivery reports a webhook delivery.
type Delivery struct {
	Body       []byte // the exact bytes sent
	Attempts   int
	StatusCode int // of the last attempt; 0 if none answered
}

// SendSyncWebhook sends a sync-success webhook for one model to the
// environment's webhook URL, retrying like Nango (network errors and 5xx
// only, at most three attempts).
func (s *Sim) SendSyncWebhook(ctx context.Context, wh SyncWebhook) (Delivery, error) {
	if wh.SyncType == "" {
		wh.SyncType = "INCREMENTAL"
	}
	var (
		results  Results
		modified time.Time
	)
	now := s.now()
	err := s.withModel(wh.ModelRef, func(m *modelStore) {
		results, modified = m.pending, time.UnixMicro(m.pendingSince)
		if m.pending == (Results{}) {
			modified = now
		}
		m.pending, m.pendingSince = Results{}, 0
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("sync webhook %s: %w", wh.ModelRef, err)
	}
	if wh.Results != nil {
		results = *wh.Results
	}
	if !wh.ModifiedAfter.IsZero() {
		modified = wh.ModifiedAfter
	}
	variant := wh.Variant
	if variant == "" {
		variant = baseVariant
	}
	payload := map[string]any{
		"from":              "nango",
		"type":              "sync",
		"connectionId":      wh.ConnectionID,
		"providerConfigKey": wh.ProviderConfigKey,
		"syncName":          wh.SyncName,
		"syncVariant":       variant,
		"model":             wh.Model,
		"syncType":          wh.SyncType,
		"success":           true,
		"responseResults":   results,
		"modifiedAfter":     isoMillis(modified),
		"queryTimeStamp":    isoMillis(now),
		"checkpoints":       map[string]any{"from": map[string]any{}, "to": map[string]any{}},
	}
	s.recordLatest(wh, results)
	return s.SendWebhook(ctx, wh.Environment, payload)
}

func (s *Sim) recordLatest(wh SyncWebhook, res Results) {
	s.mu.Lock()
	defer s.mu.Unlock()
	integ, conn, err := s.lookupLocked(wh.ConnectionRef)
	if err != nil {
		return
	}
	for _, spec := range integ.syncs {
		if spec.Name == wh.SyncName && syncKey(spec.Name, spec.Variant) == syncKey(wh.SyncName, wh.Variant) {
			st := s.syncStateLocked(conn, spec)
			st.latest[wh.Model] = res
			st.finishedAt = s.now()
		}
	}
}

func isoMillis(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// SendWebhook posts any payload (auth, forward, unknown types ...) to an
// environment's webhook URL, encoded and signed as Nango does.
func (s *Sim) SendWebhook(ctx context.Context, environment string, payload any) (Delivery, error) {
	env, ok := s.Environment(environment)
	if !ok {
		return Delivery{}, fmt.Errorf("send webhook: unknown environment %q", envName(environment))
	}
	if env.WebhookURL == "" {
		return Delivery{}, fmt.Errorf("send webhook: environment %q has no webhook URL", env.Name)
	}
	body, err := StableJSON(payload)
	if err != nil {
		return Delivery{}, fmt.Errorf("send webhook: encode: %w", err)
	}
	hmacSig, legacySig := SignWebhookBody(env.SigningKey, body)
	d := Delivery{Body: body}
	for attempt := 0; ; attempt++ {
		d.Attempts++
		s.counter.webhooks.Add(1)
		status, err := s.postWebhook(ctx, env.WebhookURL, body, hmacSig, legacySig)
		d.StatusCode = status
		retryable := err != nil || status >= 500
		if !retryable {
			return d, nil
		}
		if attempt >= len(s.webhookWaits) {
			if err == nil {
				err = fmt.Errorf("status %d", status)
			}
			return d, fmt.Errorf("send webhook: gave up after %d attempts: %w", d.Attempts, err)
		}
		t := time.NewTimer(s.webhookWaits[attempt])
		select {
		case <-ctx.Done():
			t.Stop()
			return d, fmt.Errorf("send webhook: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func (s *Sim) postWebhook(ctx context.Context, url string, body []byte, hmacSig, legacySig string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.webhookTTL)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nango-sim")
	req.Header.Set(HeaderHMACSignature, hmacSig)
	req.Header.Set(HeaderLegacySignature, legacySig)
	resp, err := s.httpClient.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return 0, ctx.Err()
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
