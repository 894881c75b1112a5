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

// DecodePage exposes decodePage to the external tests.
func DecodePage(body []byte) (*RecordsPage, error) { return decodePage(body) }

// Unexported helpers the external tests check on their own.
var (
	ParseTimestamp   = parseTimestamp
	WellFormedCursor = wellFormedCursor
)

// MetadataField is the member of a record that holds Nango's metadata.
const MetadataField = metadataField

// WithoutPayloadSpans is p with the records' metadata spans cleared, to compare its
// records with ones built by hand.
func WithoutPayloadSpans(p *RecordsPage) *RecordsPage {
	out := *p
	out.Records = make([]Record, len(p.Records))
	copy(out.Records, p.Records)
	for i := range out.Records {
		out.Records[i].metadataSpan = [2]int{}
	}
	return &out
}
