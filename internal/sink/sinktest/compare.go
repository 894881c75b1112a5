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

package sinktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// DiffRecords describes how the stored rows got differ from want, compared in order, or
// answers "" when they agree. Payloads are compared as JSON values (a store may reorder
// keys or respace), numbers digit for digit; times as instants to the microsecond, the
// precision sinks keep. End-to-end tests use it to compare a sink with its source.
func DiffRecords(want, got []sink.Record) string {
	return diffRecords(want, got)
}

func diffRecords(want, got []sink.Record) string {
	var diffs []string
	for i := 0; i < len(want) || i < len(got); i++ {
		switch {
		case i >= len(got):
			diffs = append(diffs, fmt.Sprintf("missing row %q", want[i].ID))
		case i >= len(want):
			diffs = append(diffs, fmt.Sprintf("unexpected row %q", got[i].ID))
		default:
			if d := diffRecord(want[i], got[i]); d != "" {
				diffs = append(diffs, fmt.Sprintf("row %d (%q): %s", i, want[i].ID, d))
			}
		}
	}
	return strings.Join(diffs, "\n")
}

func diffRecord(want, got sink.Record) string {
	var diffs []string
	differ := func(field string, want, got any) {
		diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
	if got.ID != want.ID {
		differ("ID", want.ID, got.ID)
	}
	if got.Action != want.Action {
		differ("Action", want.Action, got.Action)
	}
	if got.Pruned != want.Pruned {
		differ("Pruned", want.Pruned, got.Pruned)
	}
	if got.Cursor != want.Cursor {
		differ("Cursor", want.Cursor, got.Cursor)
	}
	if !sameInstant(want.FirstSeenAt, got.FirstSeenAt) {
		differ("FirstSeenAt", want.FirstSeenAt, got.FirstSeenAt)
	}
	if !sameInstant(want.LastModifiedAt, got.LastModifiedAt) {
		differ("LastModifiedAt", want.LastModifiedAt, got.LastModifiedAt)
	}
	if !sameOptionalInstant(want.DeletedAt, got.DeletedAt) {
		differ("DeletedAt", formatOptional(want.DeletedAt), formatOptional(got.DeletedAt))
	}
	if equal, err := sameJSON(want.Payload, got.Payload); err != nil || !equal {
		differ("Payload", string(want.Payload), fmt.Sprintf("%s (%v)", got.Payload, err))
	}
	return strings.Join(diffs, "; ")
}

func sameInstant(want, got time.Time) bool {
	return want.Truncate(time.Microsecond).Equal(got)
}

func sameOptionalInstant(want, got *time.Time) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	return sameInstant(*want, *got)
}

func formatOptional(t *time.Time) string {
	if t == nil {
		return "<nil>"
	}
	return t.String()
}

// sameJSON tells whether two payloads hold the same JSON value. Empty means no payload and
// equals only empty.
func sameJSON(want, got []byte) (bool, error) {
	if len(want) == 0 || len(got) == 0 {
		return len(want) == 0 && len(got) == 0, nil
	}
	w, err := decodeJSON(want)
	if err != nil {
		return false, fmt.Errorf("expected payload: %w", err)
	}
	g, err := decodeJSON(got)
	if err != nil {
		return false, fmt.Errorf("stored payload: %w", err)
	}
	return reflect.DeepEqual(w, g), nil
}

// decodeJSON decodes keeping numbers as their digits, so 12345678901234567890 does not
// become a float64 that equals its neighbours.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
