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
// Package truncate cuts text to what an API server, an annotation or a person reading a
// condition will take, without splitting a UTF-8 character.
package truncate

import "unicode/utf8"

// Ellipsis marks where String cut.
const Ellipsis = "…"

// String cuts s to at most n bytes, at a rune boundary, and marks the cut with Ellipsis.
// A string of n bytes or fewer is returned as it is.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(0, n-len(Ellipsis))
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + Ellipsis
}
