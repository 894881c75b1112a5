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
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

var (
	bigOnce sync.Once
	bigSim  *Sim
	bigRef  = ModelRef{ConnectionRef: ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "big"}, Model: "Contact"}
)

// millionRecordSim builds, once per test binary, a model of 1,000,000 records.
func millionRecordSim() *Sim {
	bigOnce.Do(func() {
		s := New(Options{})
		if err := s.CreateConnection(bigRef.ConnectionRef, ""); err != nil {
			panic(err)
		}
		if _, err := s.SeedRecords(bigRef, SeedOptions{Count: 1_000_000}); err != nil {
			panic(err)
		}
		bigSim = s
	})
	return bigSim
}

func (s *Sim) bigModel() *modelStore {
	return s.envs[DefaultEnvironment].integrations[bigRef.ProviderConfigKey].connections[bigRef.ConnectionID].models[bigRef.Model]
}

// BenchmarkListRecordsPage: one page of 1000 records from a 1,000,000-record
// model, starting at a cursor spread over the model: the seek, the scan and
// the JSON encoding of the answer (what the emulator's CPU does per page).
func BenchmarkListRecordsPage(b *testing.B) {
	s := millionRecordSim()
	m := s.bigModel()
	cursors := make([]cursor, 0, 997)
	for i := 0; i < len(m.rows)-1000; i += len(m.rows) / 997 {
		cursors = append(cursors, cursor{ts: m.rows[i].updated, id: m.rows[i].id})
	}
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := cursors[i%len(cursors)]
		sel, next := m.page(pageQuery{cursor: &c, limit: 1000})
		buf = m.appendPage(buf[:0], sel, next)
		if len(sel) != 1000 || !next {
			b.Fatalf("page of %d", len(sel))
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkListRecordsPageHTTP is the same page through the HTTP handler
// (auth, validation, cursor decoding, writing), without a network.
func BenchmarkListRecordsPageHTTP(b *testing.B) {
	s := millionRecordSim()
	m := s.bigModel()
	env, _ := s.Environment("")
	h := s.Handler()
	var buf []byte
	c := appendCursor(buf, &m.rows[len(m.rows)/2])
	req := httptest.NewRequest(http.MethodGet, "/records?model=Contact&limit=1000&cursor="+url.QueryEscape(string(c)), nil)
	req.Header.Set("Authorization", "Bearer "+env.SecretKey)
	req.Header.Set("Connection-Id", "big")
	req.Header.Set("Provider-Config-Key", "hubspot")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
