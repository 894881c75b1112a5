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

package nangosim

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// issue is one validation problem, shaped like a zod issue as Nango
// returns it: {"code","message","path"}.
type issue struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Path    []any  `json:"path"`
}

var (
	modelPattern       = regexp.MustCompile(`^[A-Z][a-zA-Z0-9_-]+$`)
	variantPattern     = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	connectionIDRegexp = regexp.MustCompile(`^[a-zA-Z0-9,.;:=+~\[\]|@${}"'\\/_ -]+$`)
	providerKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9~:.@ _-]+$`)
	uuidPattern        = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// zod's datetime(): UTC only ("Z"), seconds and fraction optional.
	isoUTCPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z$`)
	// zod's datetime({offset: true}), used for the cursor's timestamp.
	isoOffsetPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$`)
)

// recordsParams lists GET /records query parameters in the schema's order,
// which is also the order issues are reported in.
const (
	paramDelta         = "delta"
	paramModifiedAfter = "modified_after"
)

var recordsParams = []string{"model", "variant", paramDelta, paramModifiedAfter, "limit", "filter", "cursor", "ids"}

var validFilters = map[string]bool{
	"added": true, "updated": true, "deleted": true,
	actionAdded: true, actionUpdated: true, actionDeleted: true,
}

// recordsQuery is a validated GET /records query string.
type recordsQuery struct {
	model         string
	variant       string
	modifiedAfter *int64
	limit         float64
	filter        string
	cursor        string
	ids           []string
}

// storedModel is the name records are stored under: "<model>::<variant>"
// for any variant but base.
func (q recordsQuery) storedModel() string {
	return storedModelName(q.model, q.variant)
}

func storedModelName(model, variant string) string {
	if variant != "" && variant != baseVariant {
		return model + "::" + variant
	}
	return model
}

// queryParser collects zod-style issues while reading a query string.
type queryParser struct {
	values url.Values
	issues []issue
}

func (p *queryParser) bad(code, msg string, path ...any) {
	p.issues = append(p.issues, issue{Code: code, Message: msg, Path: append([]any{}, path...)})
}

// single returns a parameter sent once; sent twice it is an array, which
// the string schemas refuse.
func (p *queryParser) single(name string) (string, bool) {
	vs, ok := p.values[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		p.bad("invalid_type", "Invalid input: expected string, received array", name)
		return "", false
	}
	return vs[0], true
}

// parseRecordsQuery applies Nango's strict zod schema for GET /records,
// reporting issues in the schema's order.
func parseRecordsQuery(values url.Values, now time.Time) (recordsQuery, []issue) {
	p := &queryParser{values: values}
	q := recordsQuery{limit: 100}
	q.model = p.model()
	q.variant = p.variant()
	q.modifiedAfter = p.modifiedAfter(now)
	if n, ok := p.limit(); ok {
		q.limit = n
	}
	q.filter = p.filter()
	q.cursor = p.cursor()
	q.ids = p.ids()
	p.unknownKeys()
	return q, p.issues
}

func (p *queryParser) model() string {
	v, ok := p.single("model")
	switch {
	case !ok:
		if _, present := p.values["model"]; !present {
			p.bad("invalid_type", "Invalid input: expected string, received undefined", "model")
		}
	case len(v) > 255:
		p.bad("too_big", "Too big: expected string to have <=255 characters", "model")
	case !modelPattern.MatchString(v):
		p.bad("invalid_format", "Invalid string: must match pattern "+modelPattern.String(), "model")
	default:
		return v
	}
	return ""
}

func (p *queryParser) variant() string {
	v, ok := p.single("variant")
	if ok && !variantPattern.MatchString(v) {
		p.bad("invalid_format", "Invalid string: must match pattern "+variantPattern.String(), "variant")
		return ""
	}
	return v
}

// modifiedAfter reads delta and modified_after; the deprecated alias delta
// wins when both are sent.
func (p *queryParser) modifiedAfter(now time.Time) *int64 {
	var delta, modifiedAfter *int64
	for _, name := range []string{paramDelta, paramModifiedAfter} {
		v, ok := p.single(name)
		if !ok {
			continue
		}
		ts, problem := parseLookback(v, now)
		if problem != "" {
			code := "invalid_format"
			if problem == lookbackMessage {
				code = "custom"
			}
			p.bad(code, problem, name)
			continue
		}
		if name == paramModifiedAfter {
			modifiedAfter = &ts
		} else {
			delta = &ts
		}
	}
	if delta != nil {
		return delta
	}
	return modifiedAfter
}

func (p *queryParser) limit() (float64, bool) {
	v, ok := p.single("limit")
	if !ok {
		return 0, false
	}
	n := jsNumber(v)
	switch {
	case math.IsNaN(n):
		p.bad("invalid_type", "Invalid input: expected number, received NaN", "limit")
	case n < 1:
		p.bad("too_small", "Too small: expected number to be >=1", "limit")
	case n > 10000:
		p.bad("too_big", "Too big: expected number to be <=10000", "limit")
	default:
		return n, true
	}
	return 0, false
}

func (p *queryParser) filter() string {
	v, ok := p.single("filter")
	if !ok {
		return ""
	}
	valid := true
	for i, part := range strings.Split(v, ",") {
		if !validFilters[part] {
			valid = false
			p.bad("invalid_value", `Invalid option: expected one of "added"|"updated"|"deleted"|"ADDED"|"UPDATED"|"DELETED"`, "filter", i)
		}
	}
	if !valid {
		return ""
	}
	return v
}

func (p *queryParser) cursor() string {
	v, ok := p.single("cursor")
	switch {
	case !ok:
	case v == "":
		p.bad("too_small", "Too small: expected string to have >=1 characters", "cursor")
	case len(v) > 1000:
		p.bad("too_big", "Too big: expected string to have <=1000 characters", "cursor")
	default:
		return v
	}
	return ""
}

// ids accepts a single value or an array of at most 100, each 1..256 long.
func (p *queryParser) ids() []string {
	ids, ok := p.values["ids"]
	if !ok {
		return nil
	}
	if len(ids) > 100 {
		p.bad("too_big", "Too big: expected array to have <=100 items", "ids")
		return nil
	}
	for i, id := range ids {
		path := []any{"ids"}
		if len(ids) > 1 {
			path = append(path, i)
		}
		if id == "" {
			p.bad("too_small", "Too small: expected string to have >=1 characters", path...)
		} else if len(id) > 256 {
			p.bad("too_big", "Too big: expected string to have <=256 characters", path...)
		}
	}
	return ids
}

// unknownKeys reports parameters the strict schema does not know.
func (p *queryParser) unknownKeys() {
	var unknown []string
	for name := range p.values {
		if !slices.Contains(recordsParams, name) {
			unknown = append(unknown, name)
		}
	}
	p.unrecognized(unknown)
}

// unrecognized reports keys a strict schema does not know, as zod does: one
// issue naming them all, sorted.
func (p *queryParser) unrecognized(unknown []string) {
	if len(unknown) == 0 {
		return
	}
	slices.Sort(unknown)
	quoted := make([]string, len(unknown))
	for i, k := range unknown {
		quoted[i] = strconv.Quote(k)
	}
	noun := "key"
	if len(unknown) > 1 {
		noun = "keys"
	}
	p.bad("unrecognized_keys", fmt.Sprintf("Unrecognized %s: %s", noun, strings.Join(quoted, ", ")))
}

const lookbackMessage = "must be within the last 12 months"

// parseLookback parses a modified_after value: a UTC ISO datetime no older
// than 365 days. Nango compares with millisecond precision (dayjs), so the
// value is truncated to milliseconds.
func parseLookback(v string, now time.Time) (int64, string) {
	if !isoUTCPattern.MatchString(v) {
		return 0, "Invalid ISO datetime"
	}
	t, err := parseISO(v)
	if err != nil {
		return 0, "Invalid ISO datetime"
	}
	if t.Before(now.Add(-365 * 24 * time.Hour)) {
		return 0, lookbackMessage
	}
	return t.Truncate(time.Millisecond).UnixMicro(), ""
}

// parseISO parses the ISO forms zod accepts (seconds optional, any fraction
// length, Z or a numeric offset with or without colon).
func parseISO(v string) (time.Time, error) {
	for _, layout := range []string{
		time.RFC3339Nano,
		"2006-01-02T15:04Z07:00",
		"2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02T15:04:05.999999999Z07",
		"2006-01-02T15:04Z0700",
		"2006-01-02T15:04Z07",
	} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not an ISO datetime: %q", v)
}

// decodeCursor reproduces Nango's Cursor.from: lenient base64, exactly two
// "||"-separated parts, an ISO datetime with offset and a UUID. Anything
// else is a malformed cursor, which Nango answers with a 500.
func decodeCursor(s string) (cursor, bool) {
	raw, ok := lenientBase64(s)
	if !ok {
		return cursor{}, false
	}
	parts := strings.Split(string(raw), "||")
	if len(parts) != 2 || !isoOffsetPattern.MatchString(parts[0]) || !uuidPattern.MatchString(parts[1]) {
		return cursor{}, false
	}
	t, err := parseISO(parts[0])
	if err != nil {
		return cursor{}, false
	}
	var c cursor
	c.ts = t.UnixMicro()
	if _, err := hex.Decode(c.id[:], []byte(strings.ReplaceAll(parts[1], "-", ""))); err != nil {
		return cursor{}, false
	}
	return c, true
}

// lenientBase64 decodes standard or URL-safe base64, padded or not, as
// Node's Buffer.from(s, "base64") does.
func lenientBase64(s string) ([]byte, bool) {
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	b, err := base64.RawStdEncoding.DecodeString(s)
	return b, err == nil
}

// jsNumber converts a query value the way JavaScript's Number() does, for
// the forms that matter here: surrounding spaces are ignored, "" is 0.
func jsNumber(s string) float64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return n
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		if n, err := strconv.ParseUint(s[2:], 16, 64); err == nil {
			return float64(n)
		}
	}
	return math.NaN()
}
