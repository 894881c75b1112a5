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

package version

import (
	"strings"
	"testing"
)

func TestStampedWins(t *testing.T) {
	vcs := func() (string, string, bool) { return "abc", "2026-01-01T00:00:00Z", true }
	got := get("0.1.0", "def", "2026-02-02T00:00:00Z", vcs)
	if got.Version != "0.1.0" || got.Commit != "def" || got.Date != "2026-02-02T00:00:00Z" {
		t.Fatalf("stamped values were not kept: %+v", got)
	}
}

func TestUnstampedFallsBackToVCS(t *testing.T) {
	vcs := func() (string, string, bool) { return "abc", "2026-01-01T00:00:00Z", true }
	got := get("", "", "", vcs)
	if got.Version != "dev" || got.Commit != "abc-dirty" || got.Date != "2026-01-01T00:00:00Z" {
		t.Fatalf("unstamped build: %+v", got)
	}
}

func TestNothingKnown(t *testing.T) {
	got := get("", "", "", func() (string, string, bool) { return "", "", false })
	if got.Commit != "unknown" || got.Date != "unknown" {
		t.Fatalf("a build that knows nothing: %+v", got)
	}
	if s := got.String(); !strings.HasPrefix(s, "dev (commit unknown, built unknown, go") {
		t.Fatalf("String() = %q", s)
	}
}
