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
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// Scopes that let a secret key list connections: either one will do (docs/nango-api.md,
// "Listing connections").
const (
	ConnectionsListScope            = "environment:connections:list"
	ConnectionsListCredentialsScope = "environment:connections:list_credentials"
)

// EndUser is the end user a connection was made for, as a connect session knows them.
type EndUser struct {
	ID                      string            `json:"id"`
	DisplayName             string            `json:"display_name,omitempty"`
	Email                   string            `json:"email,omitempty"`
	Tags                    map[string]string `json:"tags,omitempty"`
	OrganizationID          string            `json:"organization_id,omitempty"`
	OrganizationDisplayName string            `json:"organization_display_name,omitempty"`
}

// NewConnection describes a connection to create.
type NewConnection struct {
	ConnectionRef
	// Provider is informational ("hubspot", ...); it may be empty.
	Provider string `json:"provider,omitempty"`
	// AuthMode is what auth webhooks report; OAUTH2 when empty.
	AuthMode string `json:"auth_mode,omitempty"`
	// Tags are stored over the tags built from EndUser, as an import
	// (POST /connections) does.
	Tags map[string]string `json:"tags,omitempty"`
	// EndUser, when set, is the end user of a connect session.
	EndUser *EndUser `json:"end_user,omitempty"`
}

// CreateConnection adds a connection, creating its integration if needed.
// provider is informational ("hubspot", ...); it may be empty.
func (s *Sim) CreateConnection(ref ConnectionRef, provider string) error {
	return s.CreateConnectionWith(NewConnection{ConnectionRef: ref, Provider: provider})
}

// CreateConnectionWith adds a connection with tags and an end user. Tags follow
// Nango's rules (at most 10 keys, keys lowercased, values 1..255 characters).
// It sends no webhook: ConnectConnection does.
func (s *Sim) CreateConnectionWith(nc NewConnection) error {
	ref := nc.ConnectionRef
	if ref.ProviderConfigKey == "" || ref.ConnectionID == "" {
		return errors.New("provider config key and connection id are required")
	}
	tags, err := connectionTags(nc.EndUser, nc.Tags)
	if err != nil {
		return fmt.Errorf("create connection %s: %w", ref, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok := s.envs[envName(ref.Environment)]
	if !ok {
		return fmt.Errorf("create connection %s: unknown environment", ref)
	}
	integ := env.integrations[ref.ProviderConfigKey]
	if integ == nil {
		integ = &integration{key: ref.ProviderConfigKey, provider: nc.Provider, connections: map[string]*connection{}}
		env.integrations[ref.ProviderConfigKey] = integ
	}
	if _, dup := integ.connections[ref.ConnectionID]; dup {
		return fmt.Errorf("create connection %s: already exists", ref)
	}
	s.connSeq++
	authMode := nc.AuthMode
	if authMode == "" {
		authMode = "OAUTH2"
	}
	var endUser *EndUser
	if nc.EndUser != nil {
		eu := *nc.EndUser
		eu.Tags = maps.Clone(eu.Tags)
		endUser = &eu
	}
	integ.connections[ref.ConnectionID] = &connection{
		id:       ref.ConnectionID,
		seq:      s.connSeq,
		created:  s.nowMicro(),
		authMode: authMode,
		tags:     tags,
		endUser:  endUser,
		models:   map[string]*modelStore{},
		syncs:    map[string]*syncState{},
	}
	return nil
}

// SetConnectionTags replaces a connection's tags whole, as
// PATCH /connections/:connectionId does: the new tags are those built from the
// end user, overlaid with tags.
func (s *Sim) SetConnectionTags(ref ConnectionRef, tags map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, conn, err := s.lookupLocked(ref)
	if err != nil {
		return fmt.Errorf("set tags: %w", err)
	}
	merged, err := connectionTags(conn.endUser, tags)
	if err != nil {
		return fmt.Errorf("set tags %s: %w", ref, err)
	}
	conn.tags = merged
	conn.updated = s.nowMicro()
	return nil
}

// DeleteConnection removes a connection and its records. Nango sends no
// webhook for it.
func (s *Sim) DeleteConnection(ref ConnectionRef) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	integ, _, err := s.lookupLocked(ref)
	if err != nil {
		return fmt.Errorf("delete connection: %w", err)
	}
	delete(integ.connections, ref.ConnectionID)
	return nil
}

var tagKeyPattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_\-./]*$`)

// connectionTags builds a connection's tags: those generated from the end user,
// then tags over them, keys lowercased, checked with Nango's tag rules.
func connectionTags(eu *EndUser, tags map[string]string) (map[string]string, error) {
	out := map[string]string{}
	if eu != nil {
		for k, v := range map[string]string{
			"end_user_id": eu.ID, "end_user_email": eu.Email, "end_user_display_name": eu.DisplayName,
			"organization_id": eu.OrganizationID, "organization_display_name": eu.OrganizationDisplayName,
		} {
			if v != "" {
				out[k] = v
			}
		}
		for k, v := range eu.Tags {
			out[strings.ToLower(k)] = v
		}
	}
	seen := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		lk := strings.ToLower(k)
		if seen[lk] {
			return nil, fmt.Errorf("duplicate tag key after case normalization: %q", lk)
		}
		seen[lk] = true
		if problem := tagProblem(k, tags[k]); problem != "" {
			return nil, errors.New(problem)
		}
		out[lk] = tags[k]
	}
	if len(out) > maxTags {
		return nil, fmt.Errorf("at most %d tags", maxTags)
	}
	return out, nil
}

const (
	maxTags = 10
	// tooManyTags is Nango's message, capital letter included.
	tooManyTags = "Tags cannot contain more than 10 keys"
)

// tagProblem checks one tag against Nango's schema
// (packages/shared/lib/services/tags/schema.ts:3-64).
func tagProblem(key, value string) string {
	switch {
	case len(key) > 64 || !tagKeyPattern.MatchString(key):
		return fmt.Sprintf("invalid tag key %q: a letter, then letters, digits, _ - . or /, at most 64 characters", key)
	case value == "" || len(value) > 255:
		return fmt.Sprintf("invalid value of tag %q: 1 to 255 characters", key)
	}
	return ""
}

// connectionsQuery is a validated GET /connections query.
type connectionsQuery struct {
	connectionID, search, endUserID, endUserOrgID string
	integrationIDs                                []string // nil: any integration
	tags                                          map[string]string
	limit, page                                   float64
}

// connectionsParams are the schema's keys in its order, which is also the order
// issues are reported in.
var connectionsParams = []string{"connectionId", "search", "endUserId", "endUserOrganizationId", "integrationId", "tags", "limit", "page"}

// qsValue is one top-level query key as qs parses it: a string, a list of
// strings (the key repeated), an array (key[] or key[n]) or an object (key[k]).
type qsValue struct {
	strings []string
	array   bool
	object  map[string][]string // key[k]=v; nested brackets keep their rest in the key
}

func (v qsValue) received() string {
	switch {
	case v.object != nil:
		return "object"
	case v.array || len(v.strings) > 1:
		return "array"
	}
	return "string"
}

// parseQS groups url.Values (whose keys are already percent-decoded, so
// tags%5Bk%5D is tags[k]) the way qs.parse(str, {arrayLimit: 100}) would.
func parseQS(values map[string][]string) map[string]*qsValue {
	out := map[string]*qsValue{}
	get := func(k string) *qsValue {
		if out[k] == nil {
			out[k] = &qsValue{}
		}
		return out[k]
	}
	for key, vs := range values {
		base, rest, bracket := strings.Cut(key, "[")
		if !bracket || base == "" || !strings.Contains(rest, "]") {
			get(key).strings = append(get(key).strings, vs...)
			continue
		}
		inner, after, _ := strings.Cut(rest, "]")
		v := get(base)
		if inner == "" || (isIndex(inner) && after == "") {
			v.array = true
			v.strings = append(v.strings, vs...)
			continue
		}
		if v.object == nil {
			v.object = map[string][]string{}
		}
		v.object[inner+after] = append(v.object[inner+after], vs...)
	}
	return out
}

// isIndex reports whether qs reads k as an array index (digits, at most arrayLimit).
func isIndex(k string) bool {
	if k == "" || len(k) > 3 {
		return false
	}
	n := 0
	for _, c := range k {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 100
}

// parseConnectionsQuery applies Nango's strict schema for GET /connections
// (packages/server/lib/controllers/connection/getConnections.ts:12-23).
func parseConnectionsQuery(values map[string][]string) (connectionsQuery, []issue) {
	p := &queryParser{}
	qs := parseQS(values)
	q := connectionsQuery{limit: 10000}
	str := func(name string, maxLen int) string {
		v := qs[name]
		if v == nil {
			return ""
		}
		if got := v.received(); got != "string" {
			p.bad("invalid_type", "Invalid input: expected string, received "+got, name)
			return ""
		}
		s := v.strings[0]
		switch {
		case s == "":
			p.bad("too_small", "Too small: expected string to have >=1 characters", name)
		case maxLen > 0 && len(s) > maxLen:
			p.bad("too_big", fmt.Sprintf("Too big: expected string to have <=%d characters", maxLen), name)
		default:
			return s
		}
		return ""
	}
	num := func(name string, minimum, maximum float64) (float64, bool) {
		v := qs[name]
		if v == nil {
			return 0, false
		}
		// z.coerce.number() is Number(value); an array of strings becomes
		// their comma join first, as JavaScript does.
		n := jsNumber(strings.Join(v.strings, ","))
		if v.object != nil {
			n = jsNumber("x")
		}
		switch {
		case n != n: // NaN
			p.bad("invalid_type", "Invalid input: expected number, received NaN", name)
		case n < minimum:
			p.bad("too_small", fmt.Sprintf("Too small: expected number to be >=%g", minimum), name)
		case maximum > 0 && n > maximum:
			p.bad("too_big", fmt.Sprintf("Too big: expected number to be <=%g", maximum), name)
		default:
			return n, true
		}
		return 0, false
	}
	q.connectionID = str("connectionId", 255)
	q.search = str("search", 255)
	q.endUserID = str("endUserId", 255)
	q.endUserOrgID = str("endUserOrganizationId", 255)
	if ids := str("integrationId", 0); ids != "" {
		q.integrationIDs = []string{}
		for part := range strings.SplitSeq(ids, ",") {
			q.integrationIDs = append(q.integrationIDs, strings.TrimSpace(part))
		}
	}
	q.tags = p.tagFilter(qs["tags"])
	if n, ok := num("limit", 1, 2000); ok {
		q.limit = n
	}
	if n, ok := num("page", 0, 0); ok {
		q.page = n
	}
	var unknown []string
	for name := range qs {
		if !slices.Contains(connectionsParams, name) {
			unknown = append(unknown, name)
		}
	}
	p.unrecognized(unknown)
	return q, p.issues
}

// tagFilter validates tags[key]=value pairs with the connection tag schema.
func (p *queryParser) tagFilter(v *qsValue) map[string]string {
	if v == nil {
		return nil
	}
	if v.object == nil {
		p.bad("invalid_type", "Invalid input: expected record, received "+v.received(), "tags")
		return nil
	}
	tags := map[string]string{}
	ok := true
	lowered := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(v.object)) {
		vs := v.object[k]
		switch {
		case strings.ContainsAny(k, "[]"):
			p.bad("invalid_type", "Invalid input: expected string, received object", "tags", k)
		case len(vs) > 1:
			p.bad("invalid_type", "Invalid input: expected string, received array", "tags", k)
		case len(k) > 64 || !tagKeyPattern.MatchString(k):
			p.bad("invalid_key", "Invalid key in record", "tags", k)
		case vs[0] == "":
			p.bad("too_small", "Too small: expected string to have >=1 characters", "tags", k)
		case len(vs[0]) > 255:
			p.bad("too_big", "Too big: expected string to have <=255 characters", "tags", k)
		default:
			lk := strings.ToLower(k)
			if lowered[lk] {
				p.bad("custom", fmt.Sprintf("Duplicate tag key after case normalization: %q", lk), "tags")
			}
			lowered[lk] = true
			tags[lk] = vs[0]
			continue
		}
		ok = false
	}
	if len(v.object) > maxTags {
		p.bad("custom", tooManyTags, "tags")
		ok = false
	}
	if !ok {
		return nil
	}
	return tags
}

// connectionOut is one connection of a GET /connections answer
// (packages/server/lib/formatters/connection.ts:67-89).
type connectionOut struct {
	ID                int64             `json:"id"`
	ConnectionID      string            `json:"connection_id"`
	ProviderConfigKey string            `json:"provider_config_key"`
	Provider          string            `json:"provider"`
	Errors            []connectionError `json:"errors"`
	EndUser           *endUserOut       `json:"end_user"`
	Tags              map[string]string `json:"tags"`
	Metadata          map[string]any    `json:"metadata"`
	Created           string            `json:"created"`
}

type connectionError struct {
	Type  string `json:"type"`
	LogID string `json:"log_id"`
}

type endUserOut struct {
	ID           string            `json:"id"`
	DisplayName  *string           `json:"display_name"`
	Email        *string           `json:"email"`
	Tags         map[string]string `json:"tags"`
	Organization *organizationOut  `json:"organization"`
}

type organizationOut struct {
	ID          string  `json:"id"`
	DisplayName *string `json:"display_name"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// listed is a connection with its integration, for filtering and ordering.
type listed struct {
	integ *integration
	conn  *connection
}

// handleConnections serves GET /connections and the deprecated GET /connection,
// one handler as in Nango.
func (s *Sim) handleConnections(w http.ResponseWriter, r *http.Request, env *environment) {
	s.counter.connections.Add(1)
	q, issues := parseConnectionsQuery(r.URL.Query())
	if len(issues) > 0 {
		writeError(w, http.StatusBadRequest, errorBody{Code: codeInvalidQuery, Errors: issues})
		return
	}
	s.mu.RLock()
	var all []listed
	for _, integ := range env.integrations {
		if q.integrationIDs != nil && !slices.Contains(q.integrationIDs, integ.key) {
			continue
		}
		for _, conn := range integ.connections {
			if q.matches(conn) {
				all = append(all, listed{integ, conn})
			}
		}
	}
	// created_at DESC, id DESC (connection.service.ts:1253-1256).
	slices.SortFunc(all, func(a, b listed) int {
		return cmp.Or(cmp.Compare(b.conn.created, a.conn.created), cmp.Compare(b.conn.seq, a.conn.seq))
	})
	// knex truncates both numbers: limit=2.5&page=1.5 is LIMIT 2 OFFSET 3.
	limit, offset := int(q.limit), int(q.page*q.limit)
	if cut := s.faults.connectionsPageCut(); cut > 0 && cut < limit {
		s.counter.faults.Add(1)
		limit = cut
	}
	page := []listed{}
	if offset < len(all) {
		page = all[offset:min(len(all), offset+limit)]
	}
	out := make([]connectionOut, 0, len(page))
	for _, l := range page {
		out = append(out, l.out())
	}
	s.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{"connections": out})
}

func (q connectionsQuery) matches(c *connection) bool {
	eu := c.endUser
	if eu == nil {
		eu = &EndUser{}
	}
	switch {
	case q.connectionID != "" && c.id != q.connectionID,
		q.endUserID != "" && (c.endUser == nil || eu.ID != q.endUserID),
		q.endUserOrgID != "" && (c.endUser == nil || eu.OrganizationID != q.endUserOrgID):
		return false
	case q.search != "" && !ilike(c.id, q.search) && !ilike(eu.DisplayName, q.search) && !ilike(eu.Email, q.search):
		return false
	}
	for k, v := range q.tags {
		if c.tags[k] != v {
			return false
		}
	}
	return true
}

func (l listed) out() connectionOut {
	c := l.conn
	o := connectionOut{
		ID: c.seq, ConnectionID: c.id, ProviderConfigKey: l.integ.key, Provider: l.integ.provider,
		Errors: []connectionError{}, Tags: maps.Clone(c.tags), Created: string(appendPGTime(nil, c.created)),
	}
	if o.Tags == nil {
		o.Tags = map[string]string{}
	}
	if c.authErrorLog != "" {
		o.Errors = append(o.Errors, connectionError{Type: "auth", LogID: c.authErrorLog})
	}
	if eu := c.endUser; eu != nil {
		o.EndUser = &endUserOut{ID: eu.ID, DisplayName: nullable(eu.DisplayName), Email: nullable(eu.Email), Tags: maps.Clone(eu.Tags)}
		if eu.OrganizationID != "" {
			o.EndUser.Organization = &organizationOut{ID: eu.OrganizationID, DisplayName: nullable(eu.OrganizationDisplayName)}
		}
	}
	return o
}

// ilike is Postgres's s ILIKE '%pattern%' with the pattern unescaped, as Nango
// builds it: % and _ in pattern are wildcards.
func ilike(s, pattern string) bool {
	return likeMatch([]rune(strings.ToLower(s)), []rune("%"+strings.ToLower(pattern)+"%"))
}

func likeMatch(s, p []rune) bool {
	for len(p) > 0 {
		switch p[0] {
		case '%':
			for len(p) > 1 && p[1] == '%' {
				p = p[1:]
			}
			for i := 0; i <= len(s); i++ {
				if likeMatch(s[i:], p[1:]) {
					return true
				}
			}
			return false
		case '_':
			if len(s) == 0 {
				return false
			}
		case '\\':
			if len(p) > 1 {
				p = p[1:]
			}
			fallthrough
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
		}
		s, p = s[1:], p[1:]
	}
	return len(s) == 0
}
