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
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/nango-operator/nango-operator/internal/receiver"
	"github.com/nango-operator/nango-operator/internal/secretcache"
)

// describedNames is a prometheus.Registerer that keeps the names of the metrics registered.
type describedNames map[string]bool

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d describedNames) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d[m[1]] = true
		}
	}
	return nil
}

func (d describedNames) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d describedNames) Unregister(prometheus.Collector) bool { return false }

// exportedMetrics names every metric of the operator's own: the reconciler's and the
// webhook receiver's.
func exportedMetrics(t *testing.T) describedNames {
	names := describedNames{}
	if _, err := newMetrics(names); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().Build()
	if _, err := receiver.New(receiver.Options{Client: c, Secrets: secretcache.New(c, c), Registerer: names}); err != nil {
		t.Fatal(err)
	}
	return names
}

var operatorMetric = regexp.MustCompile(`\bnango_operator_[a-z_]+\b`)

// checkQuery fails unless a PromQL query names metrics, all of them exported.
func checkQuery(t *testing.T, where, query string, exported describedNames) {
	t.Helper()
	found := operatorMetric.FindAllString(query, -1)
	if len(found) == 0 {
		t.Errorf("%s: %q names no metric of the operator", where, query)
	}
	for _, name := range found {
		base := name
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if !exported[base] {
				base = strings.TrimSuffix(base, suffix)
			}
		}
		if !exported[base] {
			t.Errorf("%s: %q names %s, which the manager does not export", where, query, name)
		}
	}
}

// TestChartDashboardAndAlertsNameExportedMetrics checks the chart's Grafana dashboard is
// valid JSON and that it and the alert rules query only metrics the manager exports.
func TestChartDashboardAndAlertsNameExportedMetrics(t *testing.T) {
	files := filepath.Join("..", "..", "charts", "nango-operator", "files")
	exported := exportedMetrics(t)

	raw, err := os.ReadFile(filepath.Join(files, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	queries := 0
	for _, p := range dashboard.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			checkQuery(t, "panel "+p.Title, target.Expr, exported)
			queries++
		}
	}
	for _, v := range dashboard.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			checkQuery(t, "variable "+v.Name, q["query"].(string), exported)
		}
	}
	if queries < 10 {
		t.Errorf("the dashboard has %d queries: panels are missing", queries)
	}

	raw, err = os.ReadFile(filepath.Join(files, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			checkQuery(t, "alert "+r.Alert, r.Expr, exported)
		}
	}
}
