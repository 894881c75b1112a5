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
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Handler returns the emulator's HTTP handler: the public Nango API (GET
// /records and /records/, POST /sync/trigger, GET /sync/status, GET
// /connections and GET /connections/:connectionId, with their deprecated
// singular routes) and the
// control API under /_sim/. It works with httptest.NewServer.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /records", s.public(ReadScope, s.handleRecords))
	// The Node SDK calls /records/?model=... with a trailing slash.
	mux.Handle("GET /records/{$}", s.public(ReadScope, s.handleRecords))
	mux.Handle("POST /sync/trigger", s.public(SyncWriteScope, s.handleSyncTrigger))
	mux.Handle("GET /sync/status", s.public(SyncReadScope, s.handleSyncStatus))
	listConnections := s.public(ConnectionsListScope+" or "+ConnectionsListCredentialsScope, s.handleConnections)
	mux.Handle("GET /connections", listConnections)
	mux.Handle("GET /connection", listConnections) // deprecated, the same handler
	getConnection := s.public(ConnectionsReadScope+" or "+ConnectionsReadCredentialsScope, s.handleConnection)
	mux.Handle("GET /connections/{connectionId}", getConnection)
	mux.Handle("GET /connection/{connectionId}", getConnection) // deprecated, the same handler
	s.registerControl(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errorBody{Code: "not_found", Message: "Route not found: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

// errorBody is the "error" object of a Nango error answer.
type errorBody struct {
	Code    string  `json:"code"`
	Message string  `json:"message,omitempty"`
	Errors  []issue `json:"errors,omitempty"`
	Payload *struct {
	} `json:"payload,omitempty"`
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
}

func writeError(w http.ResponseWriter, status int, e errorBody) {
	writeJSON(w, status, map[string]errorBody{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"server_error","message":"encode answer"}}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

const (
	codeUnknownConnection = "unknown_connection"
	codeInvalidQuery      = "invalid_query_params"
	codeInvalidBody       = "invalid_body"
)

// requiredIssue is zod's issue for a missing required string.
func requiredIssue(name string) issue {
	return issue{Code: "invalid_type", Message: "Invalid input: expected string, received undefined", Path: []any{name}}
}

type authedHandler func(w http.ResponseWriter, r *http.Request, env *environment)

var uuidV4Pattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$`)

// public wraps a public route in Nango's middleware, in order: content type,
// secret key, account rate limit (whose headers every authenticated answer
// carries), scope, then injected faults. scope is one scope, or several joined
// by " or " of which the key needs one.
func (s *Sim) public(scope string, next authedHandler) http.Handler {
	accepted := strings.Split(scope, " or ")
	required := "Required: " + scope
	if len(accepted) > 1 {
		required = "Required one of: " + scope
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.counter.requests.Add(1)
		if d := s.faults.latency(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
			writeError(w, http.StatusUnsupportedMediaType, errorBody{Code: "invalid_content_type", Message: "Content-Type must be application/json"})
			return
		}
		env, status, code, msg := s.authenticate(r.Header.Get("Authorization"))
		if env == nil {
			writeError(w, status, errorBody{Code: code, Message: msg, Payload: &struct{}{}})
			return
		}
		if d, on := s.limits.take(env.Account, s.now()); on {
			d.writeHeaders(w.Header())
			if d.limited {
				s.counter.rateLimited.Add(1)
				writeError(w, http.StatusTooManyRequests, errorBody{Code: "too_many_request", Method: r.Method, Path: r.URL.Path})
				return
			}
		}
		if env.Scopes != nil && !slices.ContainsFunc(accepted, func(sc string) bool { return slices.Contains(env.Scopes, sc) }) {
			writeError(w, http.StatusForbidden, errorBody{Code: "forbidden", Message: "Insufficient scope. " + required})
			return
		}
		if s.injectFault(w, r) {
			return
		}
		next(w, r, env)
	})
}

// authenticate resolves the environment of a "Bearer <secret key>" header.
// Messages never echo the key.
func (s *Sim) authenticate(header string) (env *environment, status int, code, msg string) {
	if header == "" {
		return nil, http.StatusUnauthorized, "missing_auth_header", "Authentication failed. The request is missing the Authorization header."
	}
	key, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || key == "" || strings.ContainsAny(key, " \t") {
		return nil, http.StatusUnauthorized, "malformed_auth_header", "Authentication failed. The provided Authorization header is malformed."
	}
	if !uuidV4Pattern.MatchString(key) {
		return nil, http.StatusUnauthorized, "invalid_secret_key_format", "Authentication failed. The provided secret key is not a UUID v4."
	}
	s.mu.RLock()
	env = s.byKey[key]
	s.mu.RUnlock()
	if env == nil {
		return nil, http.StatusUnauthorized, "unknown_account", "Authentication failed. The provided secret key does not match any environment."
	}
	return env, 0, "", ""
}

func (s *Sim) injectFault(w http.ResponseWriter, r *http.Request) bool {
	kind, f := s.faults.draw()
	switch kind {
	case dropFault:
		s.counter.faults.Add(1)
		// The server closes the connection without writing an answer.
		panic(http.ErrAbortHandler)
	case rateLimitFault:
		s.counter.faults.Add(1)
		secs := ceilDiv(time.Duration(f.RetryAfter).Milliseconds(), 1000)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeError(w, http.StatusTooManyRequests, errorBody{Code: "too_many_request", Method: r.Method, Path: r.URL.Path})
		return true
	case serverErrorFault:
		s.counter.faults.Add(1)
		status := f.ServerErrorStatus
		if status == 0 {
			status = http.StatusInternalServerError
		}
		writeError(w, status, errorBody{Code: "server_error", Message: "Injected fault"})
		return true
	}
	return false
}

// handleRecords serves GET /records exactly as the contract describes.
func (s *Sim) handleRecords(w http.ResponseWriter, r *http.Request, env *environment) {
	s.counter.records.Add(1)
	q, issues := parseRecordsQuery(r.URL.Query(), s.now())
	if len(issues) > 0 {
		writeError(w, http.StatusBadRequest, errorBody{Code: codeInvalidQuery, Errors: issues})
		return
	}
	connID, pck, issues := parseConnectionHeaders(r.Header)
	if len(issues) > 0 {
		writeError(w, http.StatusBadRequest, errorBody{Code: "invalid_headers", Errors: issues})
		return
	}

	s.mu.RLock()
	var conn *connection
	if integ := env.integrations[pck]; integ != nil {
		conn = integ.connections[connID]
	}
	if conn == nil {
		s.mu.RUnlock()
		writeError(w, http.StatusBadRequest, errorBody{Code: codeUnknownConnection, Message: "Provided ConnectionId and ProviderConfigKey does not match a valid connection"})
		return
	}
	pq := pageQuery{modifiedAfter: q.modifiedAfter, filter: compileFilter(q.filter), ids: q.ids, limit: q.limit, maxBytes: s.maxPageBytes}
	if q.cursor != "" {
		c, ok := decodeCursor(q.cursor)
		if !ok {
			s.mu.RUnlock()
			writeError(w, http.StatusInternalServerError, errorBody{Code: "server_error", Message: "Failed to fetch records"})
			return
		}
		pq.cursor = &c
	}
	m := conn.models[q.storedModel()]
	if m == nil {
		s.mu.RUnlock()
		writeRaw(w, http.StatusOK, []byte(`{"records":[],"next_cursor":null}`))
		return
	}
	buf := s.getBuf()
	sel, hasNext := m.page(pq)
	if len(sel) == 0 {
		buf = append(buf, `{"records":[],"next_cursor":null}`...)
	} else {
		buf = m.appendPage(buf, sel, hasNext)
	}
	s.mu.RUnlock()
	writeRaw(w, http.StatusOK, buf)
	s.putBuf(buf)
}

func (s *Sim) getBuf() []byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 64<<10)
}

func (s *Sim) putBuf(b []byte) {
	if cap(b) > 16<<20 {
		return
	}
	s.bufs.Put(&b)
}

// parseConnectionHeaders validates Connection-Id and Provider-Config-Key.
func parseConnectionHeaders(h http.Header) (connID, providerConfigKey string, issues []issue) {
	check := func(name string, pattern *regexp.Regexp) string {
		v, ok := h[http.CanonicalHeaderKey(name)]
		switch {
		case !ok || len(v) == 0:
			issues = append(issues, requiredIssue(name))
		case len(v[0]) > 255:
			issues = append(issues, issue{Code: "too_big", Message: "Too big: expected string to have <=255 characters", Path: []any{name}})
		case !pattern.MatchString(v[0]):
			issues = append(issues, issue{Code: "invalid_format", Message: "Invalid string: must match pattern " + pattern.String(), Path: []any{name}})
		default:
			return v[0]
		}
		return ""
	}
	connID = check("connection-id", connectionIDRegexp)
	providerConfigKey = check("provider-config-key", providerKeyPattern)
	return connID, providerConfigKey, issues
}
