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
	"bytes"
	"encoding/json"
	"errors"

	"github.com/tidwall/gjson"
)

// Validating a GET /records answer before gjson walks it.

// maxNestingDepth is encoding/json's nesting limit, kept so that the answers accepted do
// not change.
const maxNestingDepth = 10000

// validJSON returns an error, in encoding/json's words, unless b is one valid JSON value.
//
// gjson's validator accepts the same documents as encoding/json (RFC 8259 grammar, no
// UTF-8 check) but has no nesting limit and recurses: a deeply nested answer could
// exhaust the stack, which is fatal. So nesting is bounded first.
func validJSON(b []byte) error {
	if nestingWithin(b, maxNestingDepth) && gjson.ValidBytes(b) {
		return nil
	}
	// Only on failure: let encoding/json say what is wrong and where.
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}

// nestingWithin reports whether no object or array in b is nested deeper than maxDepth.
// On invalid JSON it may answer wrongly, but a validator, which stops at the first error,
// never gets deeper than the depth counted here.
func nestingWithin(b []byte, maxDepth int) bool {
	// A page has a few brackets a record: counting them (vectorised) usually settles it.
	if bytes.Count(b, []byte{'{'})+bytes.Count(b, []byte{'['}) <= maxDepth {
		return true
	}
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = stringEnd(b, i) - 1
		case '{', '[':
			if depth++; depth > maxDepth {
				return false
			}
		case '}', ']':
			depth--
		}
	}
	return true
}

// stringEnd returns the index just after the string starting at b[i] ('"'), or len(b)
// if it does not end.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			break
		}
		j += k
		if !escaped(b[i+1 : j]) {
			return j + 1
		}
	}
	return len(b)
}

// escaped reports whether s, the start of a string, ends in an odd run of backslashes,
// which escapes the quote after it.
func escaped(s []byte) bool {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n%2 == 1
}
