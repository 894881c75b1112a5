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

package fields_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/fields"
)

var key = []byte("a test key of thirty-two bytes!!")

func tok(value string) string { return `"` + fields.Token(key, value) + `"` }

func TestApply(t *testing.T) {
	cases := []struct {
		name            string
		exclude, hash   []string
		payload, expect string
	}{
		{"nothing to do keeps the bytes", []string{"ssn"}, []string{"email"},
			`{ "id" : "1",  "n": 1.50 }`, `{ "id" : "1",  "n": 1.50 }`},
		{"top-level exclude and hash", []string{"ssn"}, []string{"email"},
			`{"id":"1","email":"ada@example.com","ssn":"078-05-1120","n":1.50}`,
			`{"id":"1","email":` + tok("ada@example.com") + `,"n":1.50}`},
		{"nested paths", []string{"address.street"}, []string{"owner.contact.email"},
			`{"address":{"street":"12 St James's Square","city":"London"},"owner":{"contact":{"email":"b@x.io"}}}`,
			`{"address":{"city":"London"},"owner":{"contact":{"email":` + tok("b@x.io") + `}}}`},
		{"through arrays", []string{"emails.primary"}, []string{"emails.address"},
			`{"emails":[{"address":"a@x.io","primary":true},{"address":"b@x.io"},"loose"]}`,
			`{"emails":[{"address":` + tok("a@x.io") + `},{"address":` + tok("b@x.io") + `},"loose"]}`},
		{"an array at the end is hashed element by element, null stays", nil, []string{"phones", "fax"},
			`{"phones":["+1 555","+1 666"],"fax":null}`,
			`{"phones":[` + tok("+1 555") + `,` + tok("+1 666") + `],"fax":null}`},
		{"a non-string is hashed as its JSON", nil, []string{"age", "card"},
			`{"age":42,"card":{"n":"4111"}}`,
			`{"age":` + tok("42") + `,"card":` + tok(`{"n":"4111"}`) + `}`},
		{"escaped keys and duplicates are matched too", []string{"ssn"}, nil,
			`{"s\u0073n":"1","ssn":"2","id":"x"}`, `{"id":"x"}`},
		{"excluding every member leaves an empty object", []string{"a", "b"}, nil,
			`{"a":1,"b":2}`, `{}`},
		{"an outer path covers an inner one", []string{"address", "address.street"}, nil,
			`{"address":{"street":"s"},"id":"1"}`, `{"id":"1"}`},
		{"not an object is left alone", []string{"a"}, nil, `[{"a":1}]`, `[{"a":1}]`},
		{"not JSON is left alone, for the sink to refuse", []string{"a"}, nil, `{"a":1`, `{"a":1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rules, err := fields.New(c.exclude, c.hash, key)
			if err != nil {
				t.Fatal(err)
			}
			payload := []byte(c.payload)
			if got := string(rules.Apply(payload)); got != c.expect {
				t.Errorf("Apply(%s)\n got %s\nwant %s", c.payload, got, c.expect)
			}
			if string(payload) != c.payload {
				t.Errorf("Apply modified its argument: %s", payload)
			}
		})
	}
}

func TestSameValueSameToken(t *testing.T) {
	rules, err := fields.New(nil, []string{"email"}, key)
	if err != nil {
		t.Fatal(err)
	}
	a := rules.Apply([]byte(`{"email":"ada@example.com","id":"1"}`))
	b := rules.Apply([]byte(`{"id":"2","email":"ada@example.com"}`))
	want := tok("ada@example.com")
	if !strings.Contains(string(a), want) || !strings.Contains(string(b), want) {
		t.Fatalf("same email, tokens differ or missing: %s %s (want %s)", a, b, want)
	}
	other, err := fields.New(nil, []string{"email"}, []byte("another key, another token set!!"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(other.Apply([]byte(`{"email":"ada@example.com"}`))), want) {
		t.Fatal("another key gave the same token")
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := fields.New(nil, []string{"email"}, nil); err == nil {
		t.Error("hash without a key was accepted")
	}
	if _, err := fields.New([]string{"email"}, []string{"email"}, key); err == nil {
		t.Error("a path both excluded and hashed was accepted")
	}
	if _, err := fields.New([]string{"a..b"}, nil, nil); err == nil {
		t.Error("a path with an empty key was accepted")
	}
}

// recorder is a sink that keeps the pages it is given.
type recorder struct {
	sink.Sink
	pages []sink.Page
}

func (r *recorder) WritePage(_ context.Context, _ sink.Key, page sink.Page) (sink.WriteResult, error) {
	r.pages = append(r.pages, page)
	return sink.WriteResult{}, nil
}

func TestWrapAppliesRulesToCopies(t *testing.T) {
	rules, err := fields.New([]string{"ssn"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inner := &recorder{}
	if fields.Wrap(inner, nil) != sink.Sink(inner) {
		t.Error("Wrap with no rules did not answer the sink itself")
	}
	records := []sink.Record{{ID: "1", Payload: []byte(`{"ssn":"078-05-1120"}`)}, {ID: "2", Pruned: true}}
	if _, err := fields.Wrap(inner, rules).WritePage(context.Background(), sink.Key{}, sink.Page{Records: records}); err != nil {
		t.Fatal(err)
	}
	got := inner.pages[0].Records
	if string(got[0].Payload) != `{}` || got[1].Payload != nil {
		t.Errorf("written payloads %s, %s", got[0].Payload, got[1].Payload)
	}
	if string(records[0].Payload) != `{"ssn":"078-05-1120"}` {
		t.Errorf("the caller's record changed: %s", records[0].Payload)
	}
}
