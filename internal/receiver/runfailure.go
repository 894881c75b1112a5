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
	"time"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/truncate"
)

// Limits on what a failed run writes into the failure annotation, so that a long stack
// trace from a sync script cannot bloat the NangoSync.
const (
	maxNameBytes        = 128
	maxDescriptionBytes = 1024
	// maxModelsPerRun bounds the models of one failed run the receiver looks up.
	maxModelsPerRun = 64
)

// runFailure turns a failed run into its annotation value.
func runFailure(run *nango.SyncWebhook, arrived time.Time) syncv1alpha1.NangoRunFailure {
	f := syncv1alpha1.NangoRunFailure{Type: "unknown", SyncName: truncate.String(run.SyncName, maxNameBytes),
		FailedAt: arrived.UTC().Format(time.RFC3339)}
	if run.Error != nil {
		if run.Error.Type != "" {
			f.Type = truncate.String(run.Error.Type, maxNameBytes)
		}
		f.Description = truncate.String(run.Error.Description, maxDescriptionBytes)
	}
	if t, err := time.Parse(time.RFC3339Nano, run.FailedAt); err == nil {
		f.FailedAt = t.UTC().Format(time.RFC3339Nano)
	}
	return f
}
