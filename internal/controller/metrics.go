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
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// metrics are the reconciler's Prometheus metrics, beside controller-runtime's own.
type metrics struct {
	// lastSuccess says every NangoSync is alive without a status write per sync: an idle
	// sync leaves its status alone, and this is where its freshness shows.
	lastSuccess *prometheus.GaugeVec
}

func newMetrics(registerer prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nango_operator_sync_last_success_timestamp_seconds",
			Help: "When the NangoSync last read to the end of Nango's records and stored them, " +
				"as Unix time. Alert on it falling far behind the NangoSync's interval.",
		}, []string{"namespace", "name"}),
	}
	if registerer == nil {
		return m, nil
	}
	if err := registerer.Register(m.lastSuccess); err != nil {
		return nil, fmt.Errorf("register NangoSync metrics: %w", err)
	}
	return m, nil
}

// synced records a complete sync of key now.
func (m *metrics) synced(key types.NamespacedName) {
	m.lastSuccess.WithLabelValues(key.Namespace, key.Name).SetToCurrentTime()
}

// forget drops the series of a NangoSync that is gone.
func (m *metrics) forget(key types.NamespacedName) {
	m.lastSuccess.DeleteLabelValues(key.Namespace, key.Name)
}
