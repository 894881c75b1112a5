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
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// row is one stored version of a record, as Nango's records table holds it.
//
// Timestamps are Unix microseconds, the precision Postgres keeps. A zero
// deleted or pruned timestamp stands for SQL NULL.
type row struct {
	id      [16]byte // internal UUID, stable for the life of the record
	extID   string   // the record's own id, always a string
	body    []byte   // the record's members without braces, "id" normalised; nil once pruned
	created int64
	updated int64
	deleted int64
	pruned  int64
	stale   bool // superseded by a later row for the same record, or hard-deleted
}

// key orders rows the way Nango does: updated_at, then internal id.
func (r *row) after(ts int64, id [16]byte) bool {
	if r.updated != ts {
		return r.updated > ts
	}
	return bytes.Compare(r.id[:], id[:]) > 0
}

// Nango's record actions, also the upper-case filter values.
const (
	actionAdded   = "ADDED"
	actionUpdated = "UPDATED"
	actionDeleted = "DELETED"
)

// baseVariant is the variant name that means "no variant".
const baseVariant = "base"

func (r *row) lastAction() string {
	switch {
	case r.deleted != 0:
		return actionDeleted
	case r.created == r.updated:
		return actionAdded
	default:
		return actionUpdated
	}
}

// Results counts changes the way Nango's sync webhook reports them.
type Results struct {
	Added   int `json:"added"`
	Updated int `json:"updated"`
	Deleted int `json:"deleted"`
}

func (r *Results) add(o Results) {
	r.Added += o.Added
	r.Updated += o.Updated
	r.Deleted += o.Deleted
}

// modelStore keeps one model of one connection.
//
// rows is ordered by (updated, id) at all times: every write gets a timestamp
// strictly greater than any before it, so a changed record is appended at the
// end and its previous row is marked stale. A cursor seek is therefore a
// binary search, and a page is a forward scan, whatever the model's size.
type modelStore struct {
	rows   []row
	index  map[string]int // record id -> position of its live row
	nstale int
	lastTS int64

	// Changes since the last sync webhook for this model.
	pending      Results
	pendingSince int64
}

func newModelStore() *modelStore {
	return &modelStore{index: map[string]int{}}
}

// nextTimestamp returns a write timestamp strictly after every earlier one,
// so that appends keep rows ordered even when the clock stands still.
func (m *modelStore) nextTimestamp(now int64) int64 {
	if now <= m.lastTS {
		now = m.lastTS + 1
	}
	m.lastTS = now
	return now
}

func (m *modelStore) live(pos int) *row {
	if pos < 0 || pos >= len(m.rows) || m.rows[pos].stale {
		return nil
	}
	return &m.rows[pos]
}

func (m *modelStore) lookup(extID string) (*row, int) {
	pos, ok := m.index[extID]
	if !ok {
		return nil, -1
	}
	return &m.rows[pos], pos
}

// retire marks the row at pos stale; the caller appends its successor.
func (m *modelStore) retire(pos int) {
	m.rows[pos].stale = true
	m.nstale++
}

// appendBatch appends rows that share one timestamp, ordered by internal id.
func (m *modelStore) appendBatch(batch []row) {
	slices.SortFunc(batch, func(a, b row) int { return bytes.Compare(a.id[:], b.id[:]) })
	for i := range batch {
		m.index[batch[i].extID] = len(m.rows)
		m.rows = append(m.rows, batch[i])
	}
	m.maybeCompact()
}

// maybeCompact drops stale rows once they are the majority, keeping memory
// proportional to the live records.
func (m *modelStore) maybeCompact() {
	if m.nstale < 1024 || m.nstale*2 < len(m.rows) {
		return
	}
	kept := make([]row, 0, len(m.rows)-m.nstale)
	for i := range m.rows {
		if !m.rows[i].stale {
			m.index[m.rows[i].extID] = len(kept)
			kept = append(kept, m.rows[i])
		}
	}
	m.rows = kept
	m.nstale = 0
}

func (m *modelStore) noteChanges(res Results, ts int64) {
	if res == (Results{}) {
		return
	}
	if m.pending == (Results{}) {
		m.pendingSince = ts
	}
	m.pending.add(res)
}

// incomingRecord is a record parsed for storage.
type incomingRecord struct {
	extID string
	body  []byte
}

// parseRecord validates a record object and renders its stored body: the
// object's members in their original order, compact, with "id" replaced by
// its string form (Nango always answers the id as a string) and any
// "_nango_metadata" member dropped (Nango's own metadata replaces it).
func parseRecord(raw []byte) (incomingRecord, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return incomingRecord{}, fmt.Errorf("record is not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return incomingRecord{}, errors.New("record is not a JSON object")
	}
	var (
		body  []byte
		extID string
		hasID bool
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return incomingRecord{}, fmt.Errorf("record is not valid JSON: %w", err)
		}
		name, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return incomingRecord{}, fmt.Errorf("record member %q: %w", name, err)
		}
		if name == "_nango_metadata" {
			continue
		}
		if name == "id" {
			id, err := idString(value)
			if err != nil {
				return incomingRecord{}, err
			}
			extID, hasID = id, true
			value = appendJSONString(nil, id)
		} else {
			var buf bytes.Buffer
			if err := json.Compact(&buf, value); err != nil {
				return incomingRecord{}, fmt.Errorf("record member %q: %w", name, err)
			}
			value = buf.Bytes()
		}
		if len(body) > 0 {
			body = append(body, ',')
		}
		body = appendJSONString(body, name)
		body = append(body, ':')
		body = append(body, value...)
	}
	if _, err := dec.Token(); err != nil {
		return incomingRecord{}, fmt.Errorf("record is not valid JSON: %w", err)
	}
	if !hasID {
		return incomingRecord{}, errors.New(`record has no "id"`)
	}
	return incomingRecord{extID: extID, body: body}, nil
}

func idString(value json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(value, &s); err == nil {
		if s == "" {
			return "", errors.New(`record "id" is empty`)
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(value, &n); err == nil {
		return n.String(), nil
	}
	return "", errors.New(`record "id" must be a string or a number`)
}

// appendJSONString quotes s the way JSON.stringify does: only quotes,
// backslashes and control characters are escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\b':
			dst = append(dst, '\\', 'b')
		case c == '\f':
			dst = append(dst, '\\', 'f')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// upsert stores records the way Nango's upsert does: new records are ADDED,
// changed ones UPDATED, identical ones left alone, and a deleted record that
// comes back is ADDED again. The first of duplicate ids in a batch wins.
func (m *modelStore) upsert(recs []incomingRecord, now int64, newID func() [16]byte) Results {
	ts := m.nextTimestamp(now)
	var res Results
	batch := make([]row, 0, len(recs))
	seen := make(map[string]bool, len(recs))
	for _, rec := range recs {
		if seen[rec.extID] {
			continue
		}
		seen[rec.extID] = true
		old, pos := m.lookup(rec.extID)
		switch {
		case old == nil:
			batch = append(batch, row{id: newID(), extID: rec.extID, body: rec.body, created: ts, updated: ts})
			res.Added++
		case old.deleted != 0:
			next := *old
			next.body, next.created, next.updated, next.deleted, next.pruned = rec.body, ts, ts, 0, 0
			m.retire(pos)
			batch = append(batch, next)
			res.Added++
		case old.pruned == 0 && bytes.Equal(old.body, rec.body):
			// unchanged: Nango does not touch the row
		default:
			next := *old
			next.body, next.updated, next.pruned = rec.body, ts, 0
			m.retire(pos)
			batch = append(batch, next)
			res.Updated++
		}
	}
	if len(batch) > 0 {
		m.appendBatch(batch)
	}
	m.noteChanges(res, ts)
	return res
}

// softDelete marks records deleted; their payload is kept.
func (m *modelStore) softDelete(ids []string, now int64) int {
	ts := m.nextTimestamp(now)
	var batch []row
	for _, id := range ids {
		old, pos := m.lookup(id)
		if old == nil || old.deleted != 0 {
			continue
		}
		next := *old
		next.deleted, next.updated = ts, ts
		m.retire(pos)
		batch = append(batch, next)
	}
	if len(batch) > 0 {
		m.appendBatch(batch)
	}
	m.noteChanges(Results{Deleted: len(batch)}, ts)
	return len(batch)
}

// prune empties payloads and sets pruned_at without moving last_modified_at,
// so rows keep their place and their cursor.
func (m *modelStore) prune(ids []string, now int64) int {
	n := 0
	for _, id := range ids {
		r, _ := m.lookup(id)
		if r == nil || r.pruned != 0 {
			continue
		}
		r.body, r.pruned = nil, now
		n++
	}
	return n
}

// pruneUntil prunes every live row at or before the cursor position.
func (m *modelStore) pruneUntil(c cursor, now int64) int {
	end := m.seekAfter(c)
	n := 0
	for i := 0; i < end; i++ {
		if r := m.live(i); r != nil && r.pruned == 0 {
			r.body, r.pruned = nil, now
			n++
		}
	}
	return n
}

// hardDelete removes records entirely, as Nango's retention does.
func (m *modelStore) hardDelete(ids []string) int {
	n := 0
	for _, id := range ids {
		_, pos := m.lookup(id)
		if pos < 0 {
			continue
		}
		m.retire(pos)
		delete(m.index, id)
		n++
	}
	m.maybeCompact()
	return n
}

// cursor is a decoded Nango cursor: (last_modified_at, internal id).
type cursor struct {
	ts int64
	id [16]byte
}

// seekAfter returns the first position strictly after c.
func (m *modelStore) seekAfter(c cursor) int {
	lo, hi := 0, len(m.rows)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.rows[mid].after(c.ts, c.id) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// seekFrom returns the first position with updated >= ts.
func (m *modelStore) seekFrom(ts int64) int {
	lo, hi := 0, len(m.rows)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.rows[mid].updated >= ts {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// filterFunc decides whether a row passes a records filter.
type filterFunc func(*row) bool

// compileFilter reproduces the switch in Nango's getRecords: it tests the
// upper-cased, comma-joined filter with "includes" in a fixed order, which
// is why "updated,deleted" returns no deleted rows and a filter that names
// one value twice filters nothing.
func compileFilter(filter string) filterFunc {
	if filter == "" {
		return nil
	}
	f := strings.ToUpper(filter)
	added, updated, deleted := strings.Contains(f, actionAdded), strings.Contains(f, actionUpdated), strings.Contains(f, actionDeleted)
	switch {
	case added && updated:
		return func(r *row) bool { return r.deleted == 0 }
	case updated && deleted:
		return func(r *row) bool { return r.deleted == 0 && r.created != r.updated }
	case added && deleted:
		return func(r *row) bool { return r.deleted == 0 && r.created == r.updated }
	case f == actionAdded:
		return func(r *row) bool { return r.deleted == 0 && r.created == r.updated }
	case f == actionUpdated:
		return func(r *row) bool { return r.deleted == 0 && r.created != r.updated }
	case f == actionDeleted:
		return func(r *row) bool { return r.deleted != 0 }
	}
	return nil
}

// pageQuery is a validated GET /records query against one model.
type pageQuery struct {
	cursor        *cursor
	modifiedAfter *int64 // microseconds, already truncated to milliseconds
	filter        filterFunc
	ids           []string
	limit         float64 // Nango coerces with Number(), so 2.5 is a valid limit
	maxBytes      int     // response byte budget; 0 means none
}

// page selects the rows of one page and says whether next_cursor is set.
//
// Like Nango it fetches round(limit+1) rows and, when it got more than
// limit, drops the last one and points next_cursor at the new last row. With
// a byte budget it may stop early, in which case next_cursor is set even if
// nothing follows: a short page never means the end.
func (m *modelStore) page(q pageQuery) (sel []int, hasNext bool) {
	start := 0
	if q.cursor != nil {
		start = m.seekAfter(*q.cursor)
	}
	if q.modifiedAfter != nil {
		start = max(start, m.seekFrom(*q.modifiedAfter))
	}
	want := int(math.Round(q.limit + 1))
	budget := 0
	accept := func(pos int) (stop bool) {
		r := m.live(pos)
		if r == nil || (q.filter != nil && !q.filter(r)) {
			return false
		}
		sel = append(sel, pos)
		if q.maxBytes > 0 {
			budget += len(r.body) + recordOverhead
			if budget >= q.maxBytes && float64(len(sel)) <= q.limit {
				hasNext = true
				return true
			}
		}
		return len(sel) >= want
	}
	sel = make([]int, 0, min(want, 10001))
	if q.ids != nil {
		for _, pos := range m.positionsOf(q.ids, start) {
			if accept(pos) {
				break
			}
		}
	} else {
		for pos := start; pos < len(m.rows); pos++ {
			if accept(pos) {
				break
			}
		}
	}
	if hasNext {
		return sel, true
	}
	if float64(len(sel)) > q.limit {
		return sel[:len(sel)-1], true
	}
	return sel, false
}

// recordOverhead approximates the bytes a record's metadata adds to a page.
const recordOverhead = 260

func (m *modelStore) positionsOf(ids []string, start int) []int {
	out := make([]int, 0, len(ids))
	for _, id := range ids {
		if pos, ok := m.index[id]; ok && pos >= start && !slices.Contains(out, pos) {
			out = append(out, pos)
		}
	}
	slices.Sort(out)
	return out
}

// appendPage writes a GET /records answer for the selected rows. The key
// order matches Nango's: next_cursor first, then records.
func (m *modelStore) appendPage(dst []byte, sel []int, hasNext bool) []byte {
	dst = append(dst, `{"next_cursor":`...)
	if hasNext && len(sel) > 0 {
		dst = append(dst, '"')
		dst = appendCursor(dst, &m.rows[sel[len(sel)-1]])
		dst = append(dst, '"')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"records":[`...)
	for i, pos := range sel {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendRecord(dst, &m.rows[pos])
	}
	return append(dst, "]}"...)
}

// appendRecord renders {...payload, id, _nango_metadata} as Nango does.
func appendRecord(dst []byte, r *row) []byte {
	dst = append(dst, '{')
	if r.body != nil {
		dst = append(dst, r.body...)
	} else {
		// A pruned record has no payload: only its id survives.
		dst = append(dst, `"id":`...)
		dst = appendJSONString(dst, r.extID)
	}
	dst = append(dst, `,"_nango_metadata":{"first_seen_at":"`...)
	dst = appendPGTime(dst, r.created)
	dst = append(dst, `","last_modified_at":"`...)
	dst = appendPGTime(dst, r.updated)
	dst = append(dst, `","last_action":"`...)
	dst = append(dst, r.lastAction()...)
	dst = append(dst, `","deleted_at":`...)
	dst = appendNullableTime(dst, r.deleted)
	dst = append(dst, `,"pruned_at":`...)
	dst = appendNullableTime(dst, r.pruned)
	dst = append(dst, `,"cursor":"`...)
	dst = appendCursor(dst, r)
	return append(dst, `"}}`...)
}

func appendNullableTime(dst []byte, us int64) []byte {
	if us == 0 {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = appendPGTime(dst, us)
	return append(dst, '"')
}

// appendCursor writes base64("<last_modified_at>||<uuid>").
func appendCursor(dst []byte, r *row) []byte {
	var raw [72]byte
	n := putPGTime(raw[:], r.updated)
	raw[n], raw[n+1] = '|', '|'
	n += 2
	n += putUUID(raw[n:], r.id)
	return base64.StdEncoding.AppendEncode(dst, raw[:n])
}

func appendUUID(dst []byte, id [16]byte) []byte {
	var raw [36]byte
	putUUID(raw[:], id)
	return append(dst, raw[:]...)
}

// putUUID writes the 36-character form of id into b.
func putUUID(b []byte, id [16]byte) int {
	const hex = "0123456789abcdef"
	n := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[n] = '-'
			n++
		}
		b[n], b[n+1] = hex[c>>4], hex[c&0xf]
		n += 2
	}
	return n
}

// appendPGTime formats Unix microseconds the way Postgres's to_json does for
// a timestamptz in UTC: "2026-04-14T18:46:03.097459+00:00", with trailing
// zeros of the fraction dropped (and the dot too when it is all zeros).
func appendPGTime(dst []byte, us int64) []byte {
	var raw [40]byte
	n := putPGTime(raw[:], us)
	return append(dst, raw[:n]...)
}

// putPGTime writes appendPGTime's format into b (at least 32 bytes) without
// allocating: it is on the hot path of every page.
func putPGTime(b []byte, us int64) int {
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	days, rem := sec/86400, sec%86400
	if rem < 0 {
		days, rem = days-1, rem+86400
	}
	y, mo, d := civilFromDays(days)
	if y < 0 || y > 9999 {
		y = 0 // Postgres prints such years differently; the emulator never makes them
	}
	put4(b[0:], y)
	b[4] = '-'
	put2(b[5:], mo)
	b[7] = '-'
	put2(b[8:], d)
	b[10] = 'T'
	put2(b[11:], rem/3600)
	b[13] = ':'
	put2(b[14:], rem%3600/60)
	b[16] = ':'
	put2(b[17:], rem%60)
	n := 19
	if frac != 0 {
		b[n] = '.'
		for i := 6; i >= 1; i-- {
			b[n+i] = byte('0' + frac%10)
			frac /= 10
		}
		n += 7
		for b[n-1] == '0' {
			n--
		}
	}
	return n + copy(b[n:], "+00:00")
}

func put2(b []byte, v int64) { b[0], b[1] = byte('0'+v/10), byte('0'+v%10) }

func put4(b []byte, v int64) {
	put2(b, v/100)
	put2(b[2:], v%100)
}

// civilFromDays converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm); it avoids time.Time on the hot path.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}
