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

// Package fields keeps fields of records from reaching a sink as they are: excluded fields
// are removed from each payload, hashed ones replaced by their HMAC-SHA256 under a key the
// user holds. The rules are applied once, before a page reaches any sink (Wrap), so that the
// records table, its history, the quarantine and an http endpoint all receive the same
// redacted payload, and no sink has to know about them.
//
// A payload is edited, not re-encoded: the objects on a rule's path are rebuilt member by
// member, everything else is copied byte for byte, so key order, number spelling and
// escapes stay as Nango sent them.
package fields

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// op is what a rule does to the field at the end of its path.
type op int

const (
	opDescend op = iota // no rule ends here: look inside
	opExclude
	opHash
)

// node is one key of a path; the rules form a tree from the payload's root.
type node struct {
	op       op
	children map[string]*node
}

// Rules are the exclude and hash rules of one sink. The zero Rules, and nil, change nothing.
// A Rules is safe for concurrent use.
type Rules struct {
	root *node
	key  []byte
}

// New answers the rules that remove the fields of exclude and hash those of hashed under key.
// A path is keys joined by dots; it goes through arrays (contacts.email is the email of
// every element of contacts). A path inside another path of either list is covered by the
// outer one. hashed needs a key.
func New(exclude, hashed []string, key []byte) (*Rules, error) {
	if len(hashed) > 0 && len(key) == 0 {
		return nil, errors.New("fields to hash but no hash key")
	}
	r := &Rules{root: &node{}, key: key}
	for _, p := range exclude {
		if err := r.add(p, opExclude); err != nil {
			return nil, err
		}
	}
	for _, p := range hashed {
		if err := r.add(p, opHash); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Rules) add(path string, o op) error {
	keys := strings.Split(path, ".")
	n := r.root
	for _, k := range keys {
		if k == "" {
			return fmt.Errorf("field path %q has an empty key", path)
		}
		if n.op != opDescend {
			return nil // an outer path already covers this one
		}
		if n.children == nil {
			n.children = map[string]*node{}
		}
		child, ok := n.children[k]
		if !ok {
			child = &node{}
			n.children[k] = child
		}
		n = child
	}
	if n.op != opDescend && n.op != o {
		return fmt.Errorf("field path %q is both excluded and hashed", path)
	}
	n.op, n.children = o, nil // covers whatever lay below it
	return nil
}

// Empty reports whether the rules change nothing.
func (r *Rules) Empty() bool {
	return r == nil || r.root == nil || len(r.root.children) == 0
}

// Apply answers payload with the rules applied. A payload that is not a JSON object is
// answered as it is: the sink refuses a payload that is not JSON, and the rules name fields
// of objects. payload itself is never modified.
func (r *Rules) Apply(payload []byte) []byte {
	if r.Empty() || len(payload) == 0 || !gjson.ValidBytes(payload) {
		return payload
	}
	value := gjson.ParseBytes(payload)
	if !value.IsObject() {
		return payload
	}
	e := editor{mac: hmac.New(sha256.New, r.key)}
	if out, changed := e.apply(value, r.root); changed {
		return out
	}
	return payload
}

// editor applies rules to one payload; its HMAC is reused from field to field.
type editor struct {
	mac hash.Hash
}

// apply answers value with n's rules applied, and whether anything changed.
func (e *editor) apply(value gjson.Result, n *node) ([]byte, bool) {
	switch {
	case value.IsObject():
		return e.object(value, n)
	case value.IsArray():
		return e.array(value, func(elem gjson.Result) ([]byte, bool) { return e.apply(elem, n) })
	}
	return nil, false
}

// object rebuilds an object whose members n names; it answers false when none is there.
func (e *editor) object(value gjson.Result, n *node) ([]byte, bool) {
	var out []byte
	changed := false
	first := true
	value.ForEach(func(k, v gjson.Result) bool {
		member := []byte(v.Raw)
		child := n.children[k.String()]
		if child != nil {
			switch child.op {
			case opExclude:
				changed = true
				return true
			case opHash:
				member, changed = e.hash(v), true
			case opDescend:
				if edited, ok := e.apply(v, child); ok {
					member, changed = edited, true
				}
			}
		}
		if first {
			out = append(out, '{')
			first = false
		} else {
			out = append(out, ',')
		}
		out = append(out, k.Raw...)
		out = append(out, ':')
		out = append(out, member...)
		return true
	})
	if !changed {
		return nil, false
	}
	if first {
		out = append(out, '{')
	}
	return append(out, '}'), true
}

// array rebuilds an array whose elements each answer; it answers false when none changed.
func (e *editor) array(value gjson.Result, each func(gjson.Result) ([]byte, bool)) ([]byte, bool) {
	out := []byte{'['}
	changed := false
	i := 0
	value.ForEach(func(_, elem gjson.Result) bool {
		if i > 0 {
			out = append(out, ',')
		}
		i++
		if edited, ok := each(elem); ok {
			out, changed = append(out, edited...), true
		} else {
			out = append(out, elem.Raw...)
		}
		return true
	})
	return append(out, ']'), changed
}

// hash answers the token that replaces value: the HMAC of a string's text, or of another
// value's JSON, as a JSON string of hex digits; an array's elements one by one; null as is.
func (e *editor) hash(value gjson.Result) []byte {
	switch {
	case value.Type == gjson.Null:
		return []byte("null")
	case value.IsArray():
		out, _ := e.array(value, func(elem gjson.Result) ([]byte, bool) { return e.hash(elem), true })
		return out
	case value.Type == gjson.String:
		return e.token(value.String())
	}
	return e.token(value.Raw)
}

func (e *editor) token(text string) []byte {
	e.mac.Reset()
	e.mac.Write([]byte(text))
	sum := e.mac.Sum(nil)
	out := make([]byte, 0, 2+hex.EncodedLen(len(sum)))
	out = append(out, '"')
	out = hex.AppendEncode(out, sum)
	return append(out, '"')
}

// Token answers the token hash puts in place of the string value under key, as people
// compute it to look a record up: hex(HMAC-SHA256(key, value)).
func Token(key []byte, value string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(value))
	return hex.EncodeToString(mac.Sum(nil))
}

// Wrap answers a sink that applies rules to every record's payload before s writes it.
// With empty rules it answers s.
func Wrap(s sink.Sink, rules *Rules) sink.Sink {
	if rules.Empty() {
		return s
	}
	return &ruledSink{Sink: s, rules: rules}
}

// ruledSink applies its rules to each page before the sink it wraps writes it.
type ruledSink struct {
	sink.Sink
	rules *Rules
}

// WritePage writes page with the rules applied to copies of its records.
func (s *ruledSink) WritePage(ctx context.Context, key sink.Key, page sink.Page) (sink.WriteResult, error) {
	records := make([]sink.Record, len(page.Records))
	for i, r := range page.Records {
		r.Payload = s.rules.Apply(r.Payload)
		records[i] = r
	}
	page.Records = records
	return s.Sink.WritePage(ctx, key, page)
}

// Unwrap answers the sink the rules are applied before.
func (s *ruledSink) Unwrap() sink.Sink { return s.Sink }
