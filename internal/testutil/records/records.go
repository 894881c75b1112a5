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

// Package records makes the synthetic records that the benchmarks sync: JSON objects shaped
// like a CRM contact, with nested fields, a number too big for a float64, a null and a
// padding note.
package records

import "strconv"

// The padding note repeats fillerText, up to maxFiller bytes.
const (
	fillerText = "lorem ipsum dolor sit amet "
	maxFiller  = 760
)

// JSON is record i at version v: a JSON object of about size bytes (1 KiB when size is
// 1024) whose "id" is ID(i).
func JSON(i, v, size int) []byte {
	b := make([]byte, 0, size+64)
	b = append(b, `{"id":"`...)
	b = append(b, ID(i)...)
	b = append(b, `","email":"contact`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `@example.com","firstName":"Ada","lastName":"Lovelace","company":"Analytical Engines Ltd",`+
		`"score":12345678901234567890.5,"nullable":null,"tags":["vip","emea"],`+
		`"address":{"street":"12 St James's Square","city":"London","postcode":"SW1Y 4JH"},"version":`...)
	b = strconv.AppendInt(b, int64(v), 10)
	b = append(b, `,"note":"`...)
	for pad := min(size-len(b)-2, maxFiller); pad > 0; {
		chunk := fillerText[:min(pad, len(fillerText))]
		b = append(b, chunk...)
		pad -= len(chunk)
	}
	return append(b, `"}`...)
}

// ID is the id of record i.
func ID(i int) string { return "c-" + strconv.Itoa(i) }
