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

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	"github.com/nango-operator/nango-operator/internal/truncate"
)

// maxEventNote is the longest note the API server accepts in an events.k8s.io/v1 Event.
// A longer one is refused, and the event is lost.
const maxEventNote = 1024

// boundedRecorder records events with their notes cut to maxEventNote, so that an event
// that quotes a long error is still recorded.
type boundedRecorder struct {
	events.EventRecorder
}

// Eventf formats the note, cuts it to maxEventNote and records the event.
func (r boundedRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, "%s", truncate.String(fmt.Sprintf(note, args...), maxEventNote))
}
