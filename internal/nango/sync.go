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

package nango

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// SyncRef names a sync, optionally with a variant.
type SyncRef struct {
	Name    string
	Variant string // "" or syncv1alpha1.BaseVariant for the base variant
}

// MarshalJSON sends a bare name for the base variant, as Nango's SDK does.
func (s SyncRef) MarshalJSON() ([]byte, error) {
	if syncv1alpha1.VariantOrBase(s.Variant) == syncv1alpha1.BaseVariant {
		return json.Marshal(s.Name)
	}
	return json.Marshal(struct {
		Name    string `json:"name"`
		Variant string `json:"variant"`
	}{s.Name, s.Variant})
}

// TriggerSyncRequest asks Nango to run syncs now.
type TriggerSyncRequest struct {
	ProviderConfigKey string
	// ConnectionID may be empty to trigger every connection of the integration.
	ConnectionID string
	Syncs        []SyncRef
	// Reset clears Nango's own sync state (its checkpoints) and runs a full
	// sync: what a user-requested full resync needs.
	Reset bool
	// EmptyCache also deletes the records Nango holds (rarely wanted).
	EmptyCache bool
}

// TriggerSync calls POST /sync/trigger.
func (c *Client) TriggerSync(ctx context.Context, req TriggerSyncRequest) error {
	op := "trigger syncs for " + req.ProviderConfigKey + "/" + req.ConnectionID
	if req.ProviderConfigKey == "" || len(req.Syncs) == 0 {
		return &Error{Kind: KindInvalidRequest, Op: op, Message: "provider config key and at least one sync are required"}
	}
	body, err := json.Marshal(map[string]any{
		"syncs":               req.Syncs,
		"provider_config_key": req.ProviderConfigKey,
		"connection_id":       req.ConnectionID,
		"opts":                map[string]bool{"reset": req.Reset, "emptyCache": req.EmptyCache},
	})
	if err != nil {
		return &Error{Kind: KindInvalidRequest, Op: op, Err: err}
	}
	if req.ConnectionID == "" {
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		delete(m, "connection_id")
		body, _ = json.Marshal(m)
	}
	resp, err := c.do(ctx, request{op: op, method: http.MethodPost, path: "/sync/trigger", body: body})
	if err != nil {
		return err
	}
	var out struct {
		Success *bool `json:"success"`
	}
	if err := json.Unmarshal(resp, &out); err != nil || out.Success == nil || !*out.Success {
		if err == nil {
			err = errors.New(`answer lacks "success": true`)
		}
		return &Error{Kind: KindInvalidResponse, Op: op, Status: http.StatusOK, Err: err}
	}
	return nil
}

// SyncStatusRequest asks for the state of syncs.
type SyncStatusRequest struct {
	ProviderConfigKey string
	ConnectionID      string
	// Syncs to report; empty means all ("*").
	Syncs []string
}

// SyncStatus is one sync's state on one connection.
type SyncStatus struct {
	ID           string `json:"id"`
	ConnectionID string `json:"connection_id"`
	Name         string `json:"name"`
	Variant      string `json:"variant"`
	Type         string `json:"type"`
	Status       string `json:"status"` // RUNNING, PAUSED, STOPPED, SUCCESS, ERROR
	// LatestExecutionStatus is the latest job's own status (RUNNING, SUCCESS, STOPPED for
	// failed or cancelled); empty when no job ran.
	LatestExecutionStatus string                      `json:"latestExecutionStatus"`
	FinishedAt            *time.Time                  `json:"finishedAt"`
	NextScheduledSyncAt   *time.Time                  `json:"nextScheduledSyncAt"`
	Frequency             string                      `json:"frequency"`
	LatestResult          map[string]SyncModelResults `json:"latestResult"`
	RecordCount           map[string]int64            `json:"recordCount"`
}

// SyncModelResults counts one model's changes in a sync run.
type SyncModelResults struct {
	Added   int64 `json:"added"`
	Updated int64 `json:"updated"`
	Deleted int64 `json:"deleted"`
}

// SyncStatus calls GET /sync/status.
func (c *Client) SyncStatus(ctx context.Context, req SyncStatusRequest) ([]SyncStatus, error) {
	op := "sync status for " + req.ProviderConfigKey + "/" + req.ConnectionID
	if req.ProviderConfigKey == "" {
		return nil, &Error{Kind: KindInvalidRequest, Op: op, Message: "provider config key is required"}
	}
	syncs := "*"
	if len(req.Syncs) > 0 {
		syncs = strings.Join(req.Syncs, ",")
	}
	q := url.Values{"provider_config_key": {req.ProviderConfigKey}, "syncs": {syncs}}
	if req.ConnectionID != "" {
		q.Set("connection_id", req.ConnectionID)
	}
	resp, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/sync/status", query: q})
	if err != nil {
		return nil, err
	}
	var out struct {
		Syncs []SyncStatus `json:"syncs"`
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		return nil, &Error{Kind: KindInvalidResponse, Op: op, Status: http.StatusOK, Err: fmt.Errorf("decode sync status: %w", err)}
	}
	return out.Syncs, nil
}
