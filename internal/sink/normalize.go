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
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxIDBytes is the longest record id a sink stores, in bytes. PostgreSQL refuses an index
// entry larger than about 2.7 KB, and the id shares the primary key's entry with the
// integration, connection, model and variant (up to 255 characters each); Nango's own ids
// are at most 255 characters. A longer id is quarantined.
const MaxIDBytes = 1024

// replacementEscape is U+FFFD, the Unicode replacement character, as a JSON escape.
const replacementEscape = `\ufffd`

// normalizePayload makes a valid JSON payload storable by every sink, with the same result
// in each: each byte that is not part of UTF-8 becomes U+FFFD (as Go's encoding/json
// decodes it), and so does each \u0000 escape and each \u escape of a lone surrogate
// (half of a UTF-16 pair without the other half), written as the escape \ufffd.
// PostgreSQL's text and jsonb refuse all three, and the alternative, refusing the record,
// would lose the rest of its fields.
func normalizePayload(payload []byte) []byte {
	if !utf8.Valid(payload) {
		payload = validUTF8(payload)
	}
	if bytes.IndexByte(payload, '\\') < 0 {
		return payload // no escapes: the common case costs one pass
	}
	var out []byte // allocated at the first replacement
	copied := 0
	// The payload is valid JSON, so a backslash is always the start of an escape inside a
	// string, and each escape can be skipped whole: \\u0000 is a backslash and "u0000".
	for i := 0; i < len(payload); i++ {
		if payload[i] != '\\' {
			continue
		}
		if payload[i+1] != 'u' {
			i++ // skip the escaped character
			continue
		}
		n, ok := storableEscape(payload[i:])
		if !ok {
			out = append(out, payload[copied:i]...)
			out = append(out, replacementEscape...)
			copied = i + 6
		}
		i += n - 1
	}
	if out == nil {
		return payload
	}
	return append(out, payload[copied:]...)
}

// validUTF8 is b with each byte that is not part of UTF-8 replaced by U+FFFD.
func validUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

// storableEscape reads the \u escape at the start of s, and answers its length (6, or 12
// for a surrogate pair) and whether PostgreSQL can store it. A lone surrogate or \u0000
// is 6 long, and not storable.
func storableEscape(s []byte) (int, bool) {
	code := hexValue(s[2:6])
	switch {
	case code == 0:
		return 6, false
	case code >= 0xd800 && code <= 0xdbff: // high surrogate: needs a low one right after
		if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if low := hexValue(s[8:12]); low >= 0xdc00 && low <= 0xdfff {
				return 12, true
			}
		}
		return 6, false
	case code >= 0xdc00 && code <= 0xdfff: // low surrogate without a high one before it
		return 6, false
	}
	return 6, true
}

// hexValue reads four hex digits, which valid JSON guarantees after \u.
func hexValue(digits []byte) uint64 {
	v, _ := strconv.ParseUint(string(digits), 16, 32)
	return v
}

// unstorable tells why a record, normalised, cannot be stored, "" when it can: such a
// record is quarantined. The id is a key: replacing characters in it could merge two
// records. A number is a value: writing another would change the record's meaning.
func unstorable(r Record) string {
	if reason := unstorableID(r.ID); reason != "" {
		return reason
	}
	if number := numberOutOfRange(r.Payload); number != "" {
		if len(number) > 40 {
			number = number[:40] + "…"
		}
		return fmt.Sprintf("the payload holds the number %s, outside the range of PostgreSQL's numeric", number)
	}
	return ""
}

func unstorableID(id string) string {
	switch {
	case len(id) > MaxIDBytes:
		return fmt.Sprintf("the id is %d bytes long, more than the %d a sink stores", len(id), MaxIDBytes)
	case strings.IndexByte(id, 0) >= 0:
		return "the id holds a NUL character, which PostgreSQL cannot store in text"
	case !utf8.ValidString(id):
		return "the id is not valid UTF-8"
	}
	return ""
}

// The limits of PostgreSQL's numeric, which jsonb keeps numbers in: up to 131072 digits
// before the decimal point, up to 16383 after it (counting trailing zeros as written), and
// an exponent of at most half the int32 range.
const (
	numericMaxWeight = 131071 // the power of ten of the most significant digit
	numericMaxScale  = 16383
	numericMaxExp    = 1<<30 - 1
)

// numberOutOfRange answers the first number of a valid JSON payload that PostgreSQL's
// numeric cannot hold, or "". It runs on every record: strings, the bulk of a payload, are
// skipped with the fast byte search, and only the stretches between them are read.
func numberOutOfRange(payload []byte) string {
	for i := 0; i < len(payload); {
		end := len(payload)
		if q := bytes.IndexByte(payload[i:], '"'); q >= 0 {
			end = i + q
		}
		if number := numberOutOfRangeIn(payload[i:end]); number != "" {
			return number
		}
		if end == len(payload) {
			break
		}
		i = stringEnd(payload, end+1)
	}
	return ""
}

// numberOutOfRangeIn is numberOutOfRange for a stretch of JSON that holds no string.
func numberOutOfRangeIn(json []byte) string {
	for i := 0; i < len(json); i++ {
		if c := json[i]; c != '-' && (c < '0' || c > '9') {
			continue
		}
		j := i + 1
		for j < len(json) && isNumberByte(json[j]) {
			j++
		}
		if !numericFits(json[i:j]) {
			return string(json[i:j])
		}
		i = j
	}
	return ""
}

// stringEnd answers the index after the closing quote of the string whose content starts
// at i: the first quote not escaped by an odd number of backslashes.
func stringEnd(payload []byte, i int) int {
	for start := i; ; {
		q := bytes.IndexByte(payload[i:], '"')
		if q < 0 {
			return len(payload)
		}
		end := i + q
		backslashes := 0
		for end-backslashes-1 >= start && payload[end-backslashes-1] == '\\' {
			backslashes++
		}
		if backslashes%2 == 0 {
			return end + 1
		}
		i = end + 1
	}
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// numericFits tells whether PostgreSQL's numeric holds the JSON number n.
func numericFits(n []byte) bool {
	k := bytes.IndexAny(n, "eE")
	if k < 0 && len(n) <= numericMaxScale {
		return true // the common case: too short to break a limit
	}
	mantissa, exponent := n, []byte(nil)
	if k >= 0 {
		mantissa, exponent = n[:k], n[k+1:]
	}
	exp := int64(0)
	if k >= 0 {
		e, err := strconv.ParseInt(string(exponent), 10, 64)
		if err != nil || e > numericMaxExp || e < -numericMaxExp {
			return false
		}
		exp = e
	}
	integer, fraction, _ := bytes.Cut(bytes.TrimPrefix(mantissa, []byte("-")), []byte("."))
	if int64(len(fraction))-exp > numericMaxScale {
		return false
	}
	var weight int64
	switch first := bytes.IndexFunc(fraction, func(r rune) bool { return r != '0' }); {
	case !bytes.Equal(integer, []byte("0")): // JSON writes no other leading zero
		weight = int64(len(integer)) - 1 + exp
	case first >= 0:
		weight = -int64(first) - 1 + exp
	default:
		return true // zero
	}
	return weight <= numericMaxWeight
}
