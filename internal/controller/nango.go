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

package controller

import (
	"context"
	"fmt"
	"net/http"
	"time"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
)

// NangoClients builds Nango clients. Every client shares one HTTP connection pool, and
// every client of one Nango URL and secret key shares one rate limiter: all the syncs of a
// Nango account spend one budget.
type NangoClients struct {
	httpClient *http.Client
	limiters   *nango.LimiterRegistry
	// onRateLimitWait is told of every request that waited for its account's rate limit.
	onRateLimitWait func(method, path string, waited time.Duration)
}

// NewNangoClients returns a NangoClients that shares httpClient and limiters.
func NewNangoClients(httpClient *http.Client, limiters *nango.LimiterRegistry) *NangoClients {
	return &NangoClients{httpClient: httpClient, limiters: limiters}
}

// instrument wraps the transport of the shared HTTP client, for the reconciler's metrics
// of requests to Nango, and has every client report its rate-limit waits to
// onRateLimitWait. It runs once, while the manager is set up, before any request.
func (c *NangoClients) instrument(wrap func(http.RoundTripper) http.RoundTripper,
	onRateLimitWait func(method, path string, waited time.Duration)) {
	h := *c.httpClient
	h.Transport = wrap(h.Transport)
	c.httpClient = &h
	c.onRateLimitWait = onRateLimitWait
}

// For returns a client of the Nango API at baseURL that authenticates with secretKey.
func (c *NangoClients) For(baseURL, secretKey string) (*nango.Client, error) {
	opts := []nango.Option{nango.WithHTTPClient(c.httpClient), nango.WithLimiterRegistry(c.limiters)}
	if c.onRateLimitWait != nil {
		opts = append(opts, nango.WithRateLimitWaitObserver(c.onRateLimitWait))
	}
	return nango.NewClient(baseURL, secretKey, opts...)
}

// nangoURL is the Nango API URL of a NangoSync, when the admin's policy allows it. It is
// checked before the Secret is read: a secret key is never read for a URL it may not go to.
func (r *NangoSyncReconciler) nangoURL(nsync *syncv1alpha1.NangoSync) (string, error) {
	if nsync.Spec.Nango == nil || nsync.Spec.Nango.URL == "" {
		return r.DefaultNangoURL, nil
	}
	if u := nsync.Spec.Nango.URL; !r.allowedNangoURLs.allows(u) {
		return "", &policyError{reason: syncv1alpha1.NangoURLNotAllowedReason, message: fmt.Sprintf(
			"spec.nango.url %s is not one of the Nango URLs the operator allows (%s); the Nango secret key was not read. "+
				"Remove spec.nango.url, or ask the cluster admin to add it to the manager's --allowed-nango-urls",
			u, r.allowedNangoURLs)}
	}
	return nsync.Spec.Nango.URL, nil
}

// nangoClient builds the client of a NangoSync from its spec.nango, the operator's
// defaults and the secret key in its Secret.
func (r *NangoSyncReconciler) nangoClient(ctx context.Context, nsync *syncv1alpha1.NangoSync) (*nango.Client, error) {
	baseURL, err := r.nangoURL(nsync)
	if err != nil {
		return nil, err
	}
	secretKey, err := r.readSecretKey(ctx, nsync, r.nangoSecretRef(nsync))
	if err != nil {
		return nil, fmt.Errorf("read the Nango secret key: %w", err)
	}
	c, err := r.Nango.For(baseURL, secretKey)
	if err != nil {
		return nil, fmt.Errorf("build the Nango client for %s: %w", baseURL, err)
	}
	return c, nil
}
