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

package nango

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// cursorUUID is the internal record id a cursor ends with.
var cursorUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// DecodeCursor splits a Nango cursor into the last_modified_at and internal
// id it encodes. Cursors are opaque to Nango's clients; the operator uses
// this only to tell a malformed cursor from a server failure and to show
// where a sync stands.
func DecodeCursor(cursor string) (lastModifiedAt time.Time, id string, err error) {
	raw, err := base64.StdEncoding.DecodeString(cursor)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(cursor, "=")); err != nil {
			return time.Time{}, "", errors.New("cursor is not base64")
		}
	}
	ts, id, ok := strings.Cut(string(raw), "||")
	if !ok || strings.Contains(id, "||") {
		return time.Time{}, "", errors.New(`cursor is not "<timestamp>||<id>"`)
	}
	if lastModifiedAt, err = parseTimestamp(ts); err != nil {
		return time.Time{}, "", fmt.Errorf("cursor timestamp: %w", err)
	}
	if !cursorUUID.MatchString(id) {
		return time.Time{}, "", errors.New("cursor id is not a UUID")
	}
	return lastModifiedAt, id, nil
}

// wellFormedCursor reports whether a cursor has the form Nango issues.
func wellFormedCursor(cursor string) bool {
	_, _, err := DecodeCursor(cursor)
	return err == nil
}
