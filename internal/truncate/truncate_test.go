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
package truncate_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nango-operator/nango-operator/internal/truncate"
)

func TestStringCutsAtARuneBoundaryWithinTheLimit(t *testing.T) {
	for _, s := range []string{strings.Repeat("a", 5000), strings.Repeat("é", 5000), strings.Repeat("日本", 900)} {
		for _, n := range []int{1024, 2048, 10, 3} {
			got := truncate.String(s, n)
			if len(got) > n || !utf8.ValidString(got) || !strings.HasSuffix(got, truncate.Ellipsis) {
				t.Errorf("String(%d bytes of %q, %d) = %d bytes, valid %t", len(s), s[:2], n, len(got), utf8.ValidString(got))
			}
		}
	}
	if got := truncate.String("short", 1024); got != "short" {
		t.Errorf("String cut a short string: %q", got)
	}
}
