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

var _ = DescribeTable("payloadOf cuts Nango's metadata out of a record and keeps every other byte",
	func(fields, want string) {
		got, err := payloadOf(nango.Record{ID: "1", Fields: json.RawMessage(fields)})
		Expect(err).NotTo(HaveOccurred())
		Expect(string(got)).To(Equal(want))
	},
	Entry("metadata last, as Nango sends it",
		`{"id":"1","big":12345678901234567890,"n":null,"_nango_metadata":{"cursor":"x"}}`,
		`{"id":"1","big":12345678901234567890,"n":null}`),
	Entry("metadata first, with spaces",
		`{ "_nango_metadata" : {"a":[1,{"b":"}"}]} , "id":"1", "name":"Zoë \"quoted\"" }`,
		`{ "id":"1", "name":"Zoë \"quoted\"" }`),
	Entry("a nested member of the same name is the record's own",
		`{"id":"1","nested":{"_nango_metadata":true},"_nango_metadata":{}}`,
		`{"id":"1","nested":{"_nango_metadata":true}}`),
	Entry("no metadata at all",
		`{"id":"1"}`,
		`{"id":"1"}`),
)

var _ = Describe("payloadOf", func() {
	It("gives a pruned record no payload, so the sink keeps the fields it has", func() {
		pruned := time.Now()
		got, err := payloadOf(nango.Record{ID: "1", Fields: json.RawMessage(`{"id":"1"}`),
			Metadata: nango.RecordMetadata{PrunedAt: &pruned}})
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(BeNil())
	})

	It("refuses what is not a JSON object", func() {
		for _, fields := range []string{`[1,2]`, `"x"`, `null`} {
			_, err := payloadOf(nango.Record{ID: "1", Fields: json.RawMessage(fields)})
			Expect(err).To(HaveOccurred(), fields)
		}
	})
})
