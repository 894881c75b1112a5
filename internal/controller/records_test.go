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

package controller

import (
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/nango-operator/nango-operator/internal/nango"
)

var _ = Describe("payloadOf", func() {
	It("gives a pruned record no payload, so the sink keeps the fields it has", func() {
		pruned := time.Now()
		got, err := payloadOf(nango.Record{ID: "1", Fields: json.RawMessage(`{"id":"1"}`),
			Metadata: nango.RecordMetadata{PrunedAt: &pruned}})
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(BeNil())
	})

	It("gives any other record its fields, in a buffer of their own", func() {
		fields := json.RawMessage(`{"id":"1","n":null}`)
		got, err := payloadOf(nango.Record{ID: "1", Fields: fields})
		Expect(err).NotTo(HaveOccurred())
		Expect(string(got)).To(Equal(`{"id":"1","n":null}`))
		got[2] = 'X'
		Expect(string(fields)).To(Equal(`{"id":"1","n":null}`))
	})

	It("refuses what is not a JSON object", func() {
		for _, fields := range []string{`[1,2]`, `"x"`, `null`} {
			_, err := payloadOf(nango.Record{ID: "1", Fields: json.RawMessage(fields)})
			Expect(err).To(HaveOccurred(), fields)
		}
	})
})
