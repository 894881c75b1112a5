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
	"maps"
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

// syncState is a sync's schedule and latest job on one connection.
type syncState struct {
	id string
	// schedule is STARTED, PAUSED or STOPPED; job is the latest job's status, RUNNING,
	// SUCCESS or STOPPED (failed or cancelled), or "" before any job.
	schedule, job string
	finishedAt    time.Time
	latest        map[string]Results
}

// status combines the latest job and the schedule as Nango's GET /sync/status does
// (docs/nango-api.md): RUNNING while a job runs; else PAUSED for a paused schedule; for a
// started schedule ERROR when the job is STOPPED, else the job's status, SUCCESS before
// any job; STOPPED for any other schedule state.
func (st *syncState) status() string {
	switch {
	case st.job == JobRunning:
		return JobRunning
	case st.schedule == SchedulePaused:
		return SchedulePaused
	case st.schedule == ScheduleStarted && st.job == JobStopped:
		return "ERROR"
	case st.schedule == ScheduleStarted && st.job == "":
		return JobSuccess
	case st.schedule == ScheduleStarted:
		return st.job
	}
	return ScheduleStopped
}

// The states of a sync's schedule and of its jobs.
const (
	ScheduleStarted = "STARTED"
	SchedulePaused  = "PAUSED"
	ScheduleStopped = "STOPPED"
	JobRunning      = "RUNNING"
	JobSuccess      = "SUCCESS"
	JobStopped      = "STOPPED" // failed or cancelled
)

// SyncRun sets a sync's schedule and latest job on one connection, as Nango's scheduler
// and runners would.
type SyncRun struct {
	ConnectionRef
	// Sync names the sync, Variant its variant ("" or "base" for the base).
	Sync    string `json:"sync"`
	Variant string `json:"variant,omitempty"`
	// Schedule is STARTED (when empty), PAUSED or STOPPED.
	Schedule string `json:"schedule,omitempty"`
	// Job is the latest job's status: RUNNING, SUCCESS, STOPPED (failed or cancelled), or
	// empty for none. A job that is not RUNNING finished now.
	Job string `json:"job,omitempty"`
	// Results are the latest job's counts by model.
	Results map[string]Results `json:"results,omitempty"`
}

// SetSyncRun sets the schedule and latest job of a declared sync on one connection.
func (s *Sim) SetSyncRun(run SyncRun) error {
	if run.Schedule == "" {
		run.Schedule = ScheduleStarted
	}
	if !slices.Contains([]string{ScheduleStarted, SchedulePaused, ScheduleStopped}, run.Schedule) ||
		!slices.Contains([]string{"", JobRunning, JobSuccess, JobStopped}, run.Job) {
		return fmt.Errorf("set sync run %s: schedule %q or job %q is not a state Nango has", run.Sync, run.Schedule, run.Job)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	integ, conn, err := s.lookupLocked(run.ConnectionRef)
	if err != nil {
		return fmt.Errorf("set sync run %s: %w", run.Sync, err)
	}
	i := slices.IndexFunc(integ.syncs, func(spec SyncSpec) bool {
		return syncKey(spec.Name, spec.Variant) == syncKey(run.Sync, run.Variant)
	})
	if i < 0 {
		return fmt.Errorf("set sync run: integration %s has no sync %q", run.ProviderConfigKey, syncKey(run.Sync, run.Variant))
	}
	st := s.syncStateLocked(conn, integ.syncs[i])
	st.schedule, st.job, st.finishedAt = run.Schedule, run.Job, time.Time{}
	if run.Job != "" && run.Job != JobRunning {
		st.finishedAt = s.now()
	}
	st.latest = map[string]Results{}
	maps.Copy(st.latest, run.Results)
	return nil
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
		writeError(w, http.StatusBadRequest, errorBody{Code: codeInvalidBody, Message: "Body must be JSON"})
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
			st.job, st.finishedAt = JobSuccess, now
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
		st = &syncState{id: s.NewUUID(), schedule: ScheduleStarted, latest: map[string]Results{}}
		conn.syncs[key] = st
	}
	return st
}

// syncStatus is one element of GET /sync/status's "syncs".
type syncStatus struct {
	ID                    string             `json:"id"`
	ConnectionID          string             `json:"connection_id"`
	Name                  string             `json:"name"`
	Variant               string             `json:"variant"`
	Type                  string             `json:"type"`
	Status                string             `json:"status"`
	FinishedAt            *string            `json:"finishedAt,omitempty"`
	NextScheduledSyncAt   *string            `json:"nextScheduledSyncAt"`
	Frequency             *string            `json:"frequency"`
	LatestResult          map[string]Results `json:"latestResult,omitempty"`
	LatestExecutionStatus string             `json:"latestExecutionStatus,omitempty"`
	RecordCount           map[string]int     `json:"recordCount"`
	Checkpoint            map[string]any     `json:"checkpoint"`
}

// syncStatusParams are the parameters GET /sync/status's strict schema knows.
var syncStatusParams = []string{paramSyncs, paramProviderConfigKey, "connection_id"}

const paramSyncs, paramProviderConfigKey = "syncs", "provider_config_key"

func (s *Sim) handleSyncStatus(w http.ResponseWriter, r *http.Request, env *environment) {
	s.counter.syncStatus.Add(1)
	p := &queryParser{values: r.URL.Query()}
	syncs, hasSyncs := p.single(paramSyncs)
	pck, hasPCK := p.single(paramProviderConfigKey)
	connID, _ := p.single("connection_id")
	if !hasSyncs && len(r.URL.Query()[paramSyncs]) < 2 {
		p.issues = append(p.issues, requiredIssue(paramSyncs))
	}
	if !hasPCK && len(r.URL.Query()[paramProviderConfigKey]) < 2 {
		p.issues = append(p.issues, requiredIssue(paramProviderConfigKey))
	}
	var unknown []string
	for name := range r.URL.Query() {
		if !slices.Contains(syncStatusParams, name) {
			unknown = append(unknown, name)
		}
	}
	p.unrecognized(unknown)
	if len(p.issues) > 0 {
		writeError(w, http.StatusBadRequest, errorBody{Code: codeInvalidQuery, Errors: p.issues})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	integ := env.integrations[pck]
	if integ == nil {
		writeJSON(w, http.StatusOK, map[string]any{"syncs": []syncStatus{}})
		return
	}
	conns, ok := integ.connectionsNamed(connID)
	if !ok {
		// 400, not 404 (docs/nango-api.md, GET /sync/status).
		writeError(w, http.StatusBadRequest, errorBody{Code: codeInvalidBody, Message: "Connection not found"})
		return
	}
	// A bare name is the base variant, name::variant another; split on "," untrimmed.
	names := strings.Split(syncs, ",")
	out := []syncStatus{}
	for _, conn := range conns {
		for _, spec := range integ.syncs {
			if syncs != "*" && !slices.Contains(names, syncKey(spec.Name, spec.Variant)) {
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
	typ := "INITIAL"
	if st.job != "" {
		typ = "INCREMENTAL"
	}
	out := syncStatus{
		ID: st.id, ConnectionID: conn.id, Name: spec.Name, Variant: variant, Type: typ,
		Status: st.status(), Frequency: nullable(spec.Frequency), RecordCount: map[string]int{},
		LatestExecutionStatus: st.job,
	}
	if !st.finishedAt.IsZero() && st.job != JobRunning {
		f := st.finishedAt.UTC().Format("2006-01-02T15:04:05.000Z")
		out.FinishedAt = &f
	}
	if st.schedule == ScheduleStarted {
		next := s.now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
		out.NextScheduledSyncAt = &next
	}
	if st.job != "" {
		out.LatestResult = map[string]Results{}
	}
	for _, model := range spec.Models {
		if m := conn.models[storedModelName(model, spec.Variant)]; m != nil {
			out.RecordCount[model] = len(m.index)
		} else {
			out.RecordCount[model] = 0
		}
		if out.LatestResult != nil {
			out.LatestResult[model] = st.latest[model]
		}
	}
	return out
}
