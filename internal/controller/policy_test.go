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
	"errors"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

func TestNangoURLsAllowOnlyTheirSchemeHostPortAndPath(t *testing.T) {
	allowed, err := parseNangoURLs([]string{"https://api.nango.dev", "http://nango.internal:3003/", "https://nango.example.com/tenant-a"})
	if err != nil {
		t.Fatal(err)
	}
	for url, want := range map[string]bool{
		"https://api.nango.dev":                 true,
		"https://API.nango.dev/":                true,
		"https://api.nango.dev:443":             true,
		"http://nango.internal:3003":            true,
		"https://nango.example.com/tenant-a":    true,
		"https://nango.example.com/tenant-a/v1": true,
		"http://api.nango.dev":                  false, // https never becomes http
		"https://api.nango.dev:8443":            false,
		"https://api.nango.dev.example.com":     false,
		"https://user:pass@api.nango.dev":       false,
		"https://nango.internal:3003":           false,
		"https://nango.example.com/tenant-ab":   false,
		"https://nango.example.com/":            false,
		"https://elsewhere.example.com":         false,
		"://not a url":                          false,
	} {
		if got := allowed.allows(url); got != want {
			t.Errorf("allows(%q) = %t, want %t", url, got, want)
		}
	}
	for _, bad := range []string{"api.nango.dev", "ftp://api.nango.dev", "https://u:p@api.nango.dev", "https://api.nango.dev?x=1"} {
		if _, err := parseNangoURLs([]string{bad}); err == nil {
			t.Errorf("parseNangoURLs(%q) accepted it", bad)
		}
	}
}

func TestSQLitePathsStayUnderTheirNamespacesDirectory(t *testing.T) {
	root := t.TempDir()
	opts := Options{SQLiteRoot: root}
	nsyncAt := func(namespace, path string) *syncv1alpha1.NangoSync {
		return &syncv1alpha1.NangoSync{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "contacts"},
			Spec: syncv1alpha1.NangoSyncSpec{Sink: syncv1alpha1.SinkSpec{
				SQLite: &syncv1alpha1.SQLiteSink{Path: path, Table: "contacts"}}}}
	}
	for path, allowed := range map[string]bool{
		filepath.Join(root, "team-a", "nango.db"):             true,
		filepath.Join(root, "team-a", "sub", "nango.db"):      true,
		filepath.Join(root, "team-b", "nango.db"):             false,
		filepath.Join(root, "team-a", "..", "team-b", "x.db"): false,
		filepath.Join(root, "team-a"):                         false,
		filepath.Join(root, "team-ab", "nango.db"):            false,
		"/etc/passwd": false,
	} {
		nsync := nsyncAt("team-a", path)
		err := opts.prepareSQLitePath(nsync.Namespace, nsync.Spec.Sink)
		var refused *policyError
		if got := !errors.As(err, &refused); got != allowed || (!allowed && refused.reason != syncv1alpha1.SinkPathNotAllowedReason) {
			t.Errorf("path %s for namespace team-a: %v, want allowed %t", path, err, allowed)
		}
	}
	if info, err := os.Stat(filepath.Join(root, "team-a")); err != nil || info.Mode().Perm() != sqliteDirMode {
		t.Errorf("the namespace's directory was not created with mode %o: %v", sqliteDirMode, err)
	}
	if _, err := os.Stat(filepath.Join(root, "team-b")); !os.IsNotExist(err) {
		t.Errorf("a refused path created another namespace's directory: %v", err)
	}
	if err := (Options{}).prepareSQLitePath("team-a", nsyncAt("team-a", "/anywhere/nango.db").Spec.Sink); err != nil {
		t.Errorf("without --sqlite-root a path was refused: %v", err)
	}
}
