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
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// Webhook types the receiver tells apart. Nango may add types at any time; they are
// acknowledged and ignored.
const (
	typeSync = "sync"
	typeAuth = "auth"
)

// Limits on what a failed run writes into the failure annotation, so that a long stack
// trace from a sync script cannot bloat the NangoSync.
const (
	maxNameBytes        = 128
	maxDescriptionBytes = 1024
	// maxModelsPerRun bounds the models of one failed run the receiver looks up.
	maxModelsPerRun = 64
)

// webhook is the part of a Nango webhook the receiver acts on.
type webhook struct {
	// Type is "sync", "auth", or another type the receiver ignores.
	Type string
	// Sync is set for sync webhooks.
	Sync *syncRun
	// ProviderConfigKey and ConnectionID name the connection, for every type that has one.
	ProviderConfigKey string
	ConnectionID      string
}

// syncRun is the body of a sync webhook, success or failure, as Nango sends it.
type syncRun struct {
	ConnectionID      string `json:"connectionId"`
	ProviderConfigKey string `json:"providerConfigKey"`
	SyncName          string `json:"syncName"`
	SyncVariant       string `json:"syncVariant"`
	// Model is one model for a successful run, the run's models joined by commas for a
	// failed one.
	Model string `json:"model"`
	// Success is nil when Nango left it out: such a webhook is acknowledged and ignored.
	Success  *bool      `json:"success"`
	Error    *syncError `json:"error"`
	FailedAt string     `json:"failedAt"`
}

// syncError is why Nango's own sync run failed.
type syncError struct {
	Type        string `json:"type"`
	Description string `json:"description"`
}

// envelope holds the fields every webhook type shares.
type envelope struct {
	Type              string `json:"type"`
	ConnectionID      string `json:"connectionId"`
	ProviderConfigKey string `json:"providerConfigKey"`
}

// parseWebhook reads a webhook body. The body must be a JSON object; fields of other webhook
// types than sync are not looked at, so that a new type with fields of its own is never
// refused as malformed.
func parseWebhook(body []byte) (webhook, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return webhook{}, fmt.Errorf("decode webhook: %w", err)
	}
	// Only null gets here without being an object: it decodes into a struct without error.
	if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return webhook{}, errors.New("decode webhook: the body is not a JSON object")
	}
	wh := webhook{Type: env.Type, ProviderConfigKey: env.ProviderConfigKey, ConnectionID: env.ConnectionID}
	if env.Type != typeSync {
		return wh, nil
	}
	run := &syncRun{}
	if err := json.Unmarshal(body, run); err != nil {
		return webhook{}, fmt.Errorf("decode sync webhook: %w", err)
	}
	wh.Sync = run
	return wh, nil
}

// variant is the sync's variant, the base variant when Nango left it out.
func (r *syncRun) variant() string { return syncv1alpha1.VariantOrBase(r.SyncVariant) }

// succeeded and failed tell the two kinds of sync webhook apart; a webhook without
// success is neither.
func (r *syncRun) succeeded() bool { return r.Success != nil && *r.Success }
func (r *syncRun) failed() bool    { return r.Success != nil && !*r.Success }

// models lists the models the run concerns: one for a successful run, each of the
// comma-joined ones (at most maxModelsPerRun, each once) for a failed run.
func (r *syncRun) models() []string {
	if r.succeeded() {
		return []string{r.Model}
	}
	var models []string
	for model := range strings.SplitSeq(r.Model, ",") {
		model = strings.TrimSpace(model)
		if model == "" || slices.Contains(models, model) {
			continue
		}
		models = append(models, model)
		if len(models) == maxModelsPerRun {
			break
		}
	}
	return models
}

// runFailure turns a failed run into its annotation value.
func (r *syncRun) runFailure(arrived time.Time) syncv1alpha1.NangoRunFailure {
	f := syncv1alpha1.NangoRunFailure{Type: "unknown", SyncName: truncate(r.SyncName, maxNameBytes), FailedAt: arrived.UTC().Format(time.RFC3339)}
	if r.Error != nil {
		if r.Error.Type != "" {
			f.Type = truncate(r.Error.Type, maxNameBytes)
		}
		f.Description = truncate(r.Error.Description, maxDescriptionBytes)
	}
	if t, err := time.Parse(time.RFC3339Nano, r.FailedAt); err == nil {
		f.FailedAt = t.UTC().Format(time.RFC3339Nano)
	}
	return f
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
