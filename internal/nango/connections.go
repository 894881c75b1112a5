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
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Bounds of GET /connections' page size (docs/nango-api.md, "Listing connections").
const (
	MaxConnectionsPageSize     = 2000
	DefaultConnectionsPageSize = 1000
)

// ListConnectionsRequest selects connections. Every field set must match.
type ListConnectionsRequest struct {
	// IntegrationIDs are provider config keys; any of them matches.
	IntegrationIDs []string
	// ConnectionID matches one connection id exactly (it may exist under several integrations).
	ConnectionID string
	// EndUserID and EndUserOrganizationID match the connection's end user.
	EndUserID             string
	EndUserOrganizationID string
	// Tags must all be on the connection. Keys are case-insensitive (Nango
	// lowercases them), values exact.
	Tags map[string]string
	// Limit is the page size, 1..2000. ListConnections sends it as is (0 leaves
	// Nango's default of 10,000); AllConnections uses DefaultConnectionsPageSize for 0.
	Limit int
	// Page is zero-based; only ListConnections reads it.
	Page int
}

// Connection is a Nango connection as GET /connections lists it (no credentials).
type Connection struct {
	// ID is Nango's internal integer id.
	ID                int64  `json:"id"`
	ConnectionID      string `json:"connection_id"`
	ProviderConfigKey string `json:"provider_config_key"`
	Provider          string `json:"provider"`
	// Errors are the connection's active errors, each of type "auth" or "sync".
	Errors []ConnectionError `json:"errors"`
	// EndUser is nil when the connection was not made through a connect session.
	EndUser *ConnectionEndUser `json:"end_user"`
	Tags    map[string]string  `json:"tags"`
	Created time.Time          `json:"created"`
}

// ConnectionError is an active error of a connection.
type ConnectionError struct {
	Type  string `json:"type"`
	LogID string `json:"log_id"`
}

// ConnectionEndUser is the end user a connection was made for.
type ConnectionEndUser struct {
	ID           string                  `json:"id"`
	DisplayName  *string                 `json:"display_name"`
	Email        *string                 `json:"email"`
	Organization *ConnectionOrganization `json:"organization"`
}

// ConnectionOrganization is an end user's organization.
type ConnectionOrganization struct {
	ID string `json:"id"`
}

func (r ListConnectionsRequest) query() url.Values {
	q := url.Values{}
	if len(r.IntegrationIDs) > 0 {
		q.Set("integrationId", strings.Join(r.IntegrationIDs, ","))
	}
	for name, v := range map[string]string{"connectionId": r.ConnectionID, "endUserId": r.EndUserID, "endUserOrganizationId": r.EndUserOrganizationID} {
		if v != "" {
			q.Set(name, v)
		}
	}
	for k, v := range r.Tags {
		// qs bracket syntax; url.Values percent-encodes the brackets, as URLSearchParams does.
		q.Set("tags["+strings.ToLower(k)+"]", v)
	}
	if r.Limit > 0 {
		q.Set("limit", strconv.Itoa(r.Limit))
	}
	if r.Page > 0 {
		q.Set("page", strconv.Itoa(r.Page))
	}
	return q
}

func (r ListConnectionsRequest) op() string {
	return "list connections of " + strings.Join(r.IntegrationIDs, ",")
}

// ListConnections calls GET /connections for one page, newest connections first.
func (c *Client) ListConnections(ctx context.Context, req ListConnectionsRequest) ([]Connection, error) {
	op := req.op()
	if req.Limit < 0 || req.Limit > MaxConnectionsPageSize || req.Page < 0 {
		return nil, &Error{Kind: KindInvalidRequest, Op: op, Message: fmt.Sprintf("limit must be 0..%d and page at least 0", MaxConnectionsPageSize)}
	}
	body, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/connections", query: req.query()})
	if err != nil {
		return nil, err
	}
	var out struct {
		Connections *[]Connection `json:"connections"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Connections == nil {
		if err == nil {
			err = fmt.Errorf(`answer lacks "connections"`)
		}
		return nil, &Error{Kind: KindInvalidResponse, Op: op, Status: http.StatusOK, Err: err}
	}
	return *out.Connections, nil
}

// AllConnections pages through every connection req selects and returns each
// once. Nango pages by offset without a total: the listing ends at the first
// page shorter than the limit. A connection created meanwhile shifts later
// pages (a row comes twice: kept once), and one deleted meanwhile can make
// another one be skipped: a listing is evidence that a connection exists, never
// on its own that one is gone (see ConnectionExists). Any failed page fails the
// whole call: a partial listing is never returned as complete. A full page that
// brings no connection not seen before fails it too: the server ignores `page`
// (it answers the same page again), and paging on would never end.
func (c *Client) AllConnections(ctx context.Context, req ListConnectionsRequest) ([]Connection, error) {
	if req.Limit == 0 {
		req.Limit = DefaultConnectionsPageSize
	}
	type key struct{ pck, id string }
	seen := map[key]bool{}
	var all []Connection
	for req.Page = 0; ; req.Page++ {
		page, err := c.ListConnections(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("page %d: %w", req.Page, err)
		}
		fresh := 0
		for _, conn := range page {
			k := key{conn.ProviderConfigKey, conn.ConnectionID}
			if !seen[k] {
				seen[k] = true
				all = append(all, conn)
				fresh++
			}
		}
		if len(page) < req.Limit {
			return all, nil
		}
		if fresh == 0 {
			return nil, fmt.Errorf("page %d: %w", req.Page, &Error{Kind: KindInvalidResponse, Op: req.op(), Status: http.StatusOK,
				Message: fmt.Sprintf("a full page of %d connections, every one already listed on an earlier page: the server ignores the page parameter", len(page))})
		}
	}
}

// ConnectionExists asks Nango about one connection of one integration, by a
// listing filtered to it: the targeted check that confirms a connection is gone
// before anything is deleted for it. An error means nothing is known.
func (c *Client) ConnectionExists(ctx context.Context, providerConfigKey, connectionID string) (bool, error) {
	conns, err := c.ListConnections(ctx, ListConnectionsRequest{
		IntegrationIDs: []string{providerConfigKey}, ConnectionID: connectionID, Limit: MaxConnectionsPageSize,
	})
	if err != nil {
		return false, err
	}
	for _, conn := range conns {
		if conn.ProviderConfigKey == providerConfigKey && conn.ConnectionID == connectionID {
			return true, nil
		}
	}
	return false, nil
}
