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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Scopes the sync endpoints need (an emulator choice: the contract only
// names the records scope).
const (
	SyncWriteScope = "environment:syncs:write"
	SyncReadScope  = "environment:syncs:read"
)

// SyncSpec declares a sync of an integration.
type SyncSpec struct {
	Environment       string   `json:"environment,omitempty"`
	ProviderConfigKey string   `json:"provider_config_key"`
	Name              string   `json:"name"`
	Variant           string   `json:"variant,omitempty"` // "" means base
	Models            []string `json:"models,omitempty"`
	Frequency         string   `json:"frequency,omitempty"` // e.g. "every 1h"
}

// syncState is a sync's status on one connection.
type syncState struct {
	id         string
	status     string
	finishedAt time.Time
	latest     map[string]Results
}

// Trigger records one accepted POST /sync/trigger.
type Trigger struct {
	Environment       string    `json:"environment"`
	ProviderConfigKey string    `json:"provider_config_key"`
	ConnectionID      string    `json:"connection_id,omitempty"`
	Syncs             []string  `json:"syncs"` // "name" or "name::variant"
	Reset             bool      `json:"reset"`
	EmptyCache        bool      `json:"empty_cache"`
	At                time.Time `json:"at"`
}

func syncKey(name, variant string) string {
	if variant == "" || variant == baseVariant {
		return name
	}
	return name + "::" + variant
}

// CreateSync declares a sync on an integration; the integration must exist
// (create a connection first).
func (s *Sim) CreateSync(spec SyncSpec) error {
	if spec.Name == "" {
		return fmt.Errorf("create sync: name is required")
	}
	if spec.Frequency == "" {
		spec.Frequency = "every 1h"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok := s.envs[envName(spec.Environment)]
	if !ok {
		return fmt.Errorf("create sync %s: unknown environment %q", spec.Name, envName(spec.Environment))
	}
	integ := env.integrations[spec.ProviderConfigKey]
	if integ == nil {
		return fmt.Errorf("create sync %s: unknown integration %q", spec.Name, spec.ProviderConfigKey)
	}
	integ.syncs = append(integ.syncs, spec)
	return nil
}

// Triggers returns every accepted sync trigger, oldest first.
func (s *Sim) Triggers() []Trigger {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.triggers)
}

// triggerBody is POST /sync/trigger's body.
type triggerBody struct {
	Syncs             []json.RawMessage `json:"syncs"`
	ProviderConfigKey string            `json:"provider_config_key"`
	ConnectionID      string            `json:"connection_id"`
	Opts              struct {
		Reset      bool `json:"reset"`
		EmptyCache bool `json:"emptyCache"`
	} `json:"opts"`
}

func (s *Sim) handleSyncTrigger(w http.ResponseWriter, r *http.Request, env *environment) {
	var body triggerBody
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil && len(raw) > 0 {
		err = json.Unmarshal(raw, &body)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, errorBody{Code: "invalid_body", Message: "Body must be JSON"})
		return
	}
	if body.ProviderConfigKey == "" {
		writeError(w, http.StatusBadRequest, errorBody{Code: "missing_provider_config_key", Message: "Missing provider_config_key"})
		return
	}
	var wanted []string
	for _, raw := range body.Syncs {
		var name string
		if json.Unmarshal(raw, &name) == nil {
			wanted = append(wanted, syncKey(name, ""))
			continue
		}
		var obj struct{ Name, Variant string }
		if json.Unmarshal(raw, &obj) == nil && obj.Name != "" {
			wanted = append(wanted, syncKey(obj.Name, obj.Variant))
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	integ := env.integrations[body.ProviderConfigKey]
	if integ == nil {
		writeError(w, http.StatusBadRequest, errorBody{Code: "unknown_provider_config", Message: "Unknown provider config key"})
		return
	}
	conns, ok := integ.connectionsNamed(body.ConnectionID)
	if !ok {
		writeError(w, http.StatusNotFound, errorBody{Code: codeUnknownConnection, Message: "Connection not found"})
		return
	}
	var matched []SyncSpec
	for _, spec := range integ.syncs {
		if slices.Contains(wanted, syncKey(spec.Name, spec.Variant)) {
			matched = append(matched, spec)
		}
	}
	if len(wanted) == 0 || len(matched) != len(wanted) {
		writeError(w, http.StatusBadRequest, errorBody{Code: "no_syncs_found", Message: "No syncs found given the inputs"})
		return
	}
	now := s.now()
	for _, conn := range conns {
		for _, spec := range matched {
			st := s.syncStateLocked(conn, spec)
			st.status, st.finishedAt = "SUCCESS", now
		}
	}
	s.triggers = append(s.triggers, Trigger{
		Environment: env.Name, ProviderConfigKey: body.ProviderConfigKey, ConnectionID: body.ConnectionID,
		Syncs: wanted, Reset: body.Opts.Reset, EmptyCache: body.Opts.EmptyCache, At: now,
	})
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

func (s *Sim) syncStateLocked(conn *connection, spec SyncSpec) *syncState {
	key := syncKey(spec.Name, spec.Variant)
	st := conn.syncs[key]
	if st == nil {
		st = &syncState{id: s.NewUUID(), status: "SUCCESS", latest: map[string]Results{}}
		conn.syncs[key] = st
	}
	return st
}

// syncStatus is one element of GET /sync/status's "syncs".
type syncStatus struct {
	ID                  string             `json:"id"`
	ConnectionID        string             `json:"connection_id"`
	Name                string             `json:"name"`
	Variant             string             `json:"variant"`
	Type                string             `json:"type"`
	Status              string             `json:"status"`
	FinishedAt          *string            `json:"finishedAt"`
	NextScheduledSyncAt *string            `json:"nextScheduledSyncAt"`
	Frequency           string             `json:"frequency"`
	LatestResult        map[string]Results `json:"latestResult"`
	RecordCount         map[string]int     `json:"recordCount"`
}

func (s *Sim) handleSyncStatus(w http.ResponseWriter, r *http.Request, env *environment) {
	qv := r.URL.Query()
	pck, connID, syncs := qv.Get("provider_config_key"), qv.Get("connection_id"), qv.Get("syncs")
	var issues []issue
	if pck == "" {
		issues = append(issues, requiredIssue("provider_config_key"))
	}
	if syncs == "" {
		issues = append(issues, requiredIssue("syncs"))
	}
	if len(issues) > 0 {
		writeError(w, http.StatusBadRequest, errorBody{Code: codeInvalidQuery, Errors: issues})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	integ := env.integrations[pck]
	if integ == nil {
		writeError(w, http.StatusBadRequest, errorBody{Code: "unknown_provider_config", Message: "Unknown provider config key"})
		return
	}
	conns, ok := integ.connectionsNamed(connID)
	if !ok {
		writeError(w, http.StatusNotFound, errorBody{Code: codeUnknownConnection, Message: "Connection not found"})
		return
	}
	names := strings.Split(syncs, ",")
	out := []syncStatus{}
	for _, conn := range conns {
		for _, spec := range integ.syncs {
			if syncs != "*" && !slices.Contains(names, spec.Name) {
				continue
			}
			out = append(out, s.statusOfLocked(conn, spec))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"syncs": out})
}

// connectionsNamed answers the connection connID of the integration, or every one of them
// by id when connID is empty; false when there is no such connection.
func (integ *integration) connectionsNamed(connID string) ([]*connection, bool) {
	if connID != "" {
		conn := integ.connections[connID]
		return []*connection{conn}, conn != nil
	}
	conns := make([]*connection, 0, len(integ.connections))
	for _, c := range integ.connections {
		conns = append(conns, c)
	}
	slices.SortFunc(conns, func(a, b *connection) int { return strings.Compare(a.id, b.id) })
	return conns, true
}

func (s *Sim) statusOfLocked(conn *connection, spec SyncSpec) syncStatus {
	st := s.syncStateLocked(conn, spec)
	variant := spec.Variant
	if variant == "" {
		variant = baseVariant
	}
	out := syncStatus{
		ID: st.id, ConnectionID: conn.id, Name: spec.Name, Variant: variant, Type: "INCREMENTAL",
		Status: st.status, Frequency: spec.Frequency, LatestResult: map[string]Results{}, RecordCount: map[string]int{},
	}
	if !st.finishedAt.IsZero() {
		f := st.finishedAt.UTC().Format(time.RFC3339Nano)
		out.FinishedAt = &f
	}
	for _, model := range spec.Models {
		if m := conn.models[storedModelName(model, spec.Variant)]; m != nil {
			out.RecordCount[model] = len(m.index)
		} else {
			out.RecordCount[model] = 0
		}
		out.LatestResult[model] = st.latest[model]
	}
	return out
}
