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
	"io"
	"net/http"
	"time"
)

// The control API mirrors the Go methods as JSON over HTTP under /_sim/, so
// the demo and other processes can drive the emulator. It has no
// authentication: never expose an emulator beyond a test network.
//
//	GET  /_sim/environments             list environments (with their keys)
//	POST /_sim/environments             Environment
//	POST /_sim/connections              NewConnection (no webhook)
//	POST /_sim/connections/connect      NewConnection, then its creation webhook
//	POST /_sim/connections/tags         {ConnectionRef, "tags": {...}}
//	POST /_sim/connections/delete       ConnectionRef
//	PUT  /_sim/webhook-settings         {"environment", WebhookSettings}
//	POST /_sim/syncs                    SyncSpec
//	POST /_sim/syncs/run                SyncRun (a sync's schedule and latest job on one connection)
//	POST /_sim/records/upsert           {ModelRef, "records": [...]}
//	POST /_sim/records/delete           {ModelRef, "ids": [...]}
//	POST /_sim/records/prune            {ModelRef, "ids": [...]} or {ModelRef, "until_cursor"}
//	POST /_sim/records/hard-delete      {ModelRef, "ids": [...]}
//	POST /_sim/records/seed             {ModelRef, SeedOptions}
//	POST /_sim/webhooks/sync            SyncWebhook
//	POST /_sim/webhooks/auth            AuthWebhook
//	PUT  /_sim/faults                   Faults
//	PUT  /_sim/rate-limit               {"limit": n, "window": "2s"}
//	GET  /_sim/stats                    Stats
//	GET  /_sim/triggers                 [Trigger]
func (s *Sim) registerControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/environments", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.RLock()
		out := make([]Environment, 0, len(s.envs))
		for _, e := range s.envs {
			out = append(out, e.Environment)
		}
		s.mu.RUnlock()
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /_sim/environments", control(func(e Environment) (any, error) { return s.AddEnvironment(e) }))
	mux.HandleFunc("POST /_sim/connections", control(func(in NewConnection) (any, error) {
		return ok(s.CreateConnectionWith(in))
	}))
	mux.HandleFunc("POST /_sim/connections/connect", func(w http.ResponseWriter, r *http.Request) {
		var in NewConnection
		if decodeControl(w, r, &in) {
			d, err := s.ConnectConnection(r.Context(), in)
			writeDelivery(w, d, err)
		}
	})
	mux.HandleFunc("POST /_sim/connections/tags", control(func(in struct {
		ConnectionRef
		Tags map[string]string `json:"tags"`
	}) (any, error) {
		return ok(s.SetConnectionTags(in.ConnectionRef, in.Tags))
	}))
	mux.HandleFunc("POST /_sim/connections/delete", control(func(in ConnectionRef) (any, error) {
		return ok(s.DeleteConnection(in))
	}))
	mux.HandleFunc("PUT /_sim/webhook-settings", control(func(in struct {
		Environment string `json:"environment"`
		WebhookSettings
	}) (any, error) {
		return ok(s.SetWebhookSettings(in.Environment, in.WebhookSettings))
	}))
	mux.HandleFunc("POST /_sim/webhooks/auth", func(w http.ResponseWriter, r *http.Request) {
		var in AuthWebhook
		if decodeControl(w, r, &in) {
			d, err := s.SendAuthWebhook(r.Context(), in)
			writeDelivery(w, d, err)
		}
	})
	mux.HandleFunc("POST /_sim/syncs", control(func(in SyncSpec) (any, error) { return ok(s.CreateSync(in)) }))
	mux.HandleFunc("POST /_sim/syncs/run", control(func(in SyncRun) (any, error) { return ok(s.SetSyncRun(in)) }))
	mux.HandleFunc("POST /_sim/records/upsert", control(func(in struct {
		ModelRef
		Records []json.RawMessage `json:"records"`
	}) (any, error) {
		return s.UpsertRecords(in.ModelRef, in.Records)
	}))
	mux.HandleFunc("POST /_sim/records/delete", control(func(in idsRequest) (any, error) {
		n, err := s.DeleteRecords(in.ModelRef, in.IDs)
		return count(n), err
	}))
	mux.HandleFunc("POST /_sim/records/prune", control(func(in idsRequest) (any, error) {
		if in.UntilCursor != "" {
			n, err := s.PruneUntilCursor(in.ModelRef, in.UntilCursor)
			return count(n), err
		}
		n, err := s.PruneRecords(in.ModelRef, in.IDs)
		return count(n), err
	}))
	mux.HandleFunc("POST /_sim/records/hard-delete", control(func(in idsRequest) (any, error) {
		n, err := s.HardDeleteRecords(in.ModelRef, in.IDs)
		return count(n), err
	}))
	mux.HandleFunc("POST /_sim/records/seed", control(func(in struct {
		ModelRef
		SeedOptions
	}) (any, error) {
		return s.SeedRecords(in.ModelRef, in.SeedOptions)
	}))
	mux.HandleFunc("POST /_sim/webhooks/sync", func(w http.ResponseWriter, r *http.Request) {
		var in SyncWebhook
		if !decodeControl(w, r, &in) {
			return
		}
		d, err := s.SendSyncWebhook(r.Context(), in)
		writeDelivery(w, d, err)
	})
	mux.HandleFunc("PUT /_sim/faults", control(func(in Faults) (any, error) { s.SetFaults(in); return ok(nil) }))
	mux.HandleFunc("PUT /_sim/rate-limit", control(func(in struct {
		Limit  int      `json:"limit"`
		Window Duration `json:"window"`
	}) (any, error) {
		s.SetRateLimit(RateLimit{Limit: in.Limit, Window: in.Window.D()})
		return ok(nil)
	}))
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	mux.HandleFunc("GET /_sim/triggers", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Triggers()) })
}

// writeDelivery answers a control call that sent a webhook.
func writeDelivery(w http.ResponseWriter, d Delivery, err error) {
	out := map[string]any{"attempts": d.Attempts, "status_code": d.StatusCode, "body": string(d.Body)}
	if err != nil {
		out["error"] = err.Error()
		writeJSON(w, http.StatusBadGateway, out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type idsRequest struct {
	ModelRef
	IDs         []string `json:"ids"`
	UntilCursor string   `json:"until_cursor,omitempty"`
}

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func count(n int) any { return map[string]int{"count": n} }

func ok(err error) (any, error) { return map[string]bool{"ok": err == nil}, err }

// control adapts a Go control method to a JSON endpoint.
func control[T any](f func(T) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in T
		if !decodeControl(w, r, &in) {
			return
		}
		out, err := f(in)
		if err != nil {
			writeError(w, http.StatusBadRequest, errorBody{Code: "invalid_request", Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 512<<20))
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, errorBody{Code: codeInvalidBody, Message: "control request body: " + err.Error()})
		return false
	}
	return true
}
