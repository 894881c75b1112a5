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

package sink

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nango"
)

func TestPayloadOfAPrunedRecordIsEmptySoTheSinkKeepsItsFields(t *testing.T) {
	pruned := time.Now()
	got, err := payloadOf(nango.Record{ID: "1", Fields: json.RawMessage(`{"id":"1"}`),
		Metadata: nango.RecordMetadata{PrunedAt: &pruned}})
	if err != nil || got != nil {
		t.Fatalf("payloadOf(pruned) = %q, %v; want nil, nil", got, err)
	}
}

func TestPayloadOfARecordIsItsFieldsInABufferOfTheirOwn(t *testing.T) {
	fields := json.RawMessage(`{"id":"1","n":null}`)
	got, err := payloadOf(nango.Record{ID: "1", Fields: fields})
	if err != nil || string(got) != `{"id":"1","n":null}` {
		t.Fatalf("payloadOf = %q, %v", got, err)
	}
	got[2] = 'X'
	if string(fields) != `{"id":"1","n":null}` {
		t.Fatal("the payload shares the page's buffer")
	}
}

func TestPayloadOfRefusesWhatIsNotAJSONObject(t *testing.T) {
	for _, fields := range []string{`[1,2]`, `"x"`, `null`} {
		if _, err := payloadOf(nango.Record{ID: "1", Fields: json.RawMessage(fields)}); err == nil {
			t.Errorf("payloadOf(%s) succeeded", fields)
		}
	}
}
