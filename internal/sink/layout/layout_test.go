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

package layout_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/layout"
)

// noop is a step that changes nothing; tx is unused.
func noop(context.Context, struct{}, string) error { return nil }

func steps() layout.Steps[struct{}] {
	return layout.Steps[struct{}]{
		layout.Checkpoints: {{Version: 2, Apply: noop}, {Version: 3, Apply: noop}},
	}
}

func TestCurrentIsTheLastStepsVersion(t *testing.T) {
	if got := steps().Current(layout.Checkpoints); got != 3 {
		t.Errorf("Current(checkpoints) = %d, want 3", got)
	}
	if got := steps().Current(layout.Records); got != 1 {
		t.Errorf("Current of a kind without steps = %d, want 1", got)
	}
}

func TestPendingAnswersTheStepsAboveTheStoredVersion(t *testing.T) {
	for stored, want := range map[int][]int{layout.Unrecorded: {2, 3}, 1: {2, 3}, 2: {3}, 3: nil} {
		pending, err := steps().Pending(layout.Checkpoints, sink.CheckpointTable, stored)
		if err != nil {
			t.Fatalf("Pending from %d: %v", stored, err)
		}
		got := make([]int, 0, len(pending))
		for _, step := range pending {
			got = append(got, step.Version)
		}
		if len(got) != len(want) || (len(want) > 0 && got[0] != want[0]) {
			t.Errorf("Pending from %d = %v, want %v", stored, got, want)
		}
	}
}

func TestPendingRefusesANewerVersion(t *testing.T) {
	_, err := steps().Pending(layout.Checkpoints, sink.CheckpointTable, 4)
	fix, refused := sink.Refusal(err)
	if !refused || !strings.Contains(err.Error(), "layout version 4") || !strings.Contains(fix, "upgrade the operator") {
		t.Fatalf("Pending from a newer version: %v (refused %t, fix %q); want refused, naming the version", err, refused, fix)
	}
	if _, err := steps().Pending(layout.Checkpoints, sink.CheckpointTable, -1); err == nil {
		t.Fatal("Pending from version -1 succeeded")
	}
}

func TestCheckFindsMisnumberedSteps(t *testing.T) {
	if err := steps().Check(); err != nil {
		t.Fatalf("Check of steps numbered 2, 3: %v", err)
	}
	skipped := layout.Steps[struct{}]{layout.Records: {{Version: 3, Apply: noop}}}
	if err := skipped.Check(); err == nil {
		t.Fatal("Check of a first step numbered 3 succeeded")
	}
}
