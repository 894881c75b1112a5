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

package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/nango-operator/nango-operator/internal/sink/sinktest"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
)

func BenchmarkWritePage(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "nango.db"), sqlite.Options{Table: "contacts"})
	closeAtEnd(b, s)
	sinktest.BenchmarkWritePage(b, s)
}
