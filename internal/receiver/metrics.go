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
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nango-operator/nango-operator/internal/nango"
)

// Results of a webhook, the result label of nango_operator_webhooks_total.
const (
	// resultWake: a successful sync run; the matching NangoSyncs were asked to sync.
	resultWake = "wake"
	// resultNoMatch: a verified sync webhook that no NangoSync the key covers matches.
	resultNoMatch = "no_match"
	// resultRunFailed: Nango's run failed; the matching NangoSyncs were told so.
	resultRunFailed = "run_failed"
	// resultAuthFailed: a connection's credentials fail at Nango; its NangoSyncs were told so.
	resultAuthFailed = "auth_failed"
	// resultIgnored: a verified webhook of a type the operator does not act on (auth, …).
	resultIgnored = "ignored"
	// resultUnauthorized: no known key verified the signature.
	resultUnauthorized = "unauthorized"
	// resultMalformed: a verified body that is not the JSON Nango sends.
	resultMalformed = "malformed"
	// resultTooLarge: the body is over MaxBodyBytes.
	resultTooLarge = "too_large"
	// resultWrongMethod: anything but POST.
	resultWrongMethod = "wrong_method"
	// resultNotFound: a path other than Path.
	resultNotFound = "not_found"
	// resultUnavailable: the signing keys or the NangoSyncs could not be read; Nango retries.
	resultUnavailable = "unavailable"
)

// typeUnknown labels webhooks refused before their type could be trusted.
const typeUnknown = "unknown"

// metrics are the receiver's Prometheus metrics.
type metrics struct {
	webhooks     *prometheus.CounterVec
	wakeSeconds  prometheus.Histogram
	wakesDropped prometheus.Counter
}

func newMetrics(registerer prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nango_operator_webhooks_total",
			Help: "Nango webhooks received, by webhook type (unknown when refused before it was verified, " +
				"other for types the operator does not know) and by what the receiver did with them.",
		}, []string{"type", "result"}),
		wakeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "nango_operator_webhook_wake_seconds",
			Help: "Time from a webhook's arrival to the wake of its NangoSync written to the API server. " +
				"Coalesced webhooks count once, from the earliest.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		wakesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nango_operator_webhook_wakes_dropped_total",
			Help: "Wakes dropped because the wake queue was full; those NangoSyncs sync at their next interval.",
		}),
	}
	if registerer == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.webhooks, m.wakeSeconds, m.wakesDropped} {
		if err := registerer.Register(c); err != nil {
			return nil, fmt.Errorf("register webhook metrics: %w", err)
		}
	}
	return m, nil
}

// count records one answered webhook.
func (m *metrics) count(webhookType, result string) {
	m.webhooks.WithLabelValues(webhookType, result).Inc()
}

// labelType bounds the type label to the types Nango documents: the type comes from the
// body, and an unbounded label would let a sender grow the metrics without end.
func labelType(webhookType string) string {
	switch webhookType {
	case nango.WebhookTypeSync, nango.WebhookTypeAuth, nango.WebhookTypeForward, nango.WebhookTypeAsyncAction:
		return webhookType
	}
	return "other"
}
