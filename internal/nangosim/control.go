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
	"encoding/json"
	"fmt"
	"strconv"
)

// ConnectionRef names a connection: environment ("" is the default one),
// integration (provider config key) and connection id.
type ConnectionRef struct {
	Environment       string `json:"environment,omitempty"`
	ProviderConfigKey string `json:"provider_config_key"`
	ConnectionID      string `json:"connection_id"`
}

func (c ConnectionRef) String() string {
	return envName(c.Environment) + "/" + c.ProviderConfigKey + "/" + c.ConnectionID
}

// ModelRef names one model (and variant) of one connection.
type ModelRef struct {
	ConnectionRef
	Model   string `json:"model"`
	Variant string `json:"variant,omitempty"`
}

func (m ModelRef) String() string {
	return m.ConnectionRef.String() + "/" + storedModelName(m.Model, m.Variant)
}

func (s *Sim) lookupLocked(ref ConnectionRef) (*integration, *connection, error) {
	env, ok := s.envs[envName(ref.Environment)]
	if !ok {
		return nil, nil, fmt.Errorf("%s: unknown environment", ref)
	}
	integ := env.integrations[ref.ProviderConfigKey]
	if integ == nil {
		return nil, nil, fmt.Errorf("%s: unknown integration", ref)
	}
	conn := integ.connections[ref.ConnectionID]
	if conn == nil {
		return integ, nil, fmt.Errorf("%s: unknown connection", ref)
	}
	return integ, conn, nil
}

// withModel runs f on a model's store under the write lock, creating it.
func (s *Sim) withModel(ref ModelRef, f func(*modelStore)) error {
	if !modelPattern.MatchString(ref.Model) {
		return fmt.Errorf("%s: invalid model name", ref)
	}
	if ref.Variant != "" && !variantPattern.MatchString(ref.Variant) {
		return fmt.Errorf("%s: invalid variant", ref)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, conn, err := s.lookupLocked(ref.ConnectionRef)
	if err != nil {
		return err
	}
	name := storedModelName(ref.Model, ref.Variant)
	m := conn.models[name]
	if m == nil {
		m = newModelStore()
		conn.models[name] = m
	}
	f(m)
	return nil
}

// UpsertRecords stores records as one sync run would: every record is a JSON
// object with an "id" (string or number); all records of the call share one
// last_modified_at, later than any before. New records are ADDED, changed
// ones UPDATED, unchanged ones untouched, deleted ones that come back ADDED.
func (s *Sim) UpsertRecords(ref ModelRef, records []json.RawMessage) (Results, error) {
	parsed := make([]incomingRecord, 0, len(records))
	for i, raw := range records {
		rec, err := parseRecord(raw)
		if err != nil {
			return Results{}, fmt.Errorf("upsert %s: record %d: %w", ref, i, err)
		}
		parsed = append(parsed, rec)
	}
	var res Results
	err := s.withModel(ref, func(m *modelStore) {
		res = m.upsert(parsed, s.nowMicro(), s.newID)
	})
	if err != nil {
		return Results{}, fmt.Errorf("upsert %s: %w", ref, err)
	}
	return res, nil
}

// DeleteRecords soft-deletes records (deleted_at set, payload kept) and
// returns how many were deleted.
func (s *Sim) DeleteRecords(ref ModelRef, ids []string) (int, error) {
	var n int
	err := s.withModel(ref, func(m *modelStore) { n = m.softDelete(ids, s.nowMicro()) })
	if err != nil {
		return 0, fmt.Errorf("delete records %s: %w", ref, err)
	}
	return n, nil
}

// PruneRecords empties the payload of records and sets pruned_at, leaving
// last_modified_at (and so the cursor) unchanged.
func (s *Sim) PruneRecords(ref ModelRef, ids []string) (int, error) {
	var n int
	err := s.withModel(ref, func(m *modelStore) { n = m.prune(ids, s.nowMicro()) })
	if err != nil {
		return 0, fmt.Errorf("prune records %s: %w", ref, err)
	}
	return n, nil
}

// PruneUntilCursor prunes every record up to and including the cursor, like
// Nango's prune endpoint.
func (s *Sim) PruneUntilCursor(ref ModelRef, untilCursor string) (int, error) {
	c, ok := decodeCursor(untilCursor)
	if !ok {
		return 0, fmt.Errorf("prune records %s: malformed cursor", ref)
	}
	var n int
	err := s.withModel(ref, func(m *modelStore) { n = m.pruneUntil(c, s.nowMicro()) })
	if err != nil {
		return 0, fmt.Errorf("prune records %s: %w", ref, err)
	}
	return n, nil
}

// HardDeleteRecords removes records entirely, as retention does 60 days
// after deletion: they vanish from every answer.
func (s *Sim) HardDeleteRecords(ref ModelRef, ids []string) (int, error) {
	var n int
	err := s.withModel(ref, func(m *modelStore) { n = m.hardDelete(ids) })
	if err != nil {
		return 0, fmt.Errorf("hard delete records %s: %w", ref, err)
	}
	return n, nil
}

// SeedOptions shapes synthetic records.
type SeedOptions struct {
	// Count is how many records to add.
	Count int `json:"count"`
	// BatchSize is how many records share one timestamp (one "sync run");
	// default 1000.
	BatchSize int `json:"batch_size,omitempty"`
	// IDPrefix prefixes the generated ids ("rec-" by default).
	IDPrefix string `json:"id_prefix,omitempty"`
	// StartIndex is the number of the first generated record.
	StartIndex int `json:"start_index,omitempty"`
}

// SeedRecords adds synthetic records {"id","name","email","index","score",
// "tags","nested","nullable"} quickly, batch by batch, exercising large
// numbers, nulls and nesting.
func (s *Sim) SeedRecords(ref ModelRef, opts SeedOptions) (Results, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.IDPrefix == "" {
		opts.IDPrefix = "rec-"
	}
	var total Results
	batch := make([]incomingRecord, 0, opts.BatchSize)
	for done := 0; done < opts.Count; done += len(batch) {
		batch = batch[:0]
		for i := done; i < opts.Count && len(batch) < opts.BatchSize; i++ {
			batch = append(batch, syntheticRecord(opts.IDPrefix, opts.StartIndex+i))
		}
		var res Results
		if err := s.withModel(ref, func(m *modelStore) { res = m.upsert(batch, s.nowMicro(), s.newID) }); err != nil {
			return total, fmt.Errorf("seed %s: %w", ref, err)
		}
		total.add(res)
	}
	return total, nil
}

func syntheticRecord(prefix string, i int) incomingRecord {
	id := prefix + strconv.Itoa(i)
	b := make([]byte, 0, 160)
	b = append(b, `"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"name":"Contact `...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","email":"c`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `@example.com","index":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"score":12345678901234567890.5,"tags":["a","b"],"nested":{"ok":true},"nullable":null`...)
	return incomingRecord{extID: id, body: b}
}

// RecordCount returns the number of live records (deleted ones included).
func (s *Sim) RecordCount(ref ModelRef) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, conn, err := s.lookupLocked(ref.ConnectionRef)
	if err != nil {
		return 0
	}
	m := conn.models[storedModelName(ref.Model, ref.Variant)]
	if m == nil {
		return 0
	}
	return len(m.index)
}
