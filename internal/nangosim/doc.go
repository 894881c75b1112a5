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

// Package nangosim is an in-memory Nango server for tests, the demo and
// benchmarks.
//
// It follows docs/nango-api.md to the letter, odd corners included: a
// malformed cursor answers 500, "updated,deleted" returns no deleted rows, a
// page can be short while next_cursor is set (with a byte budget), pruned
// records keep only their id and metadata, timestamps are Postgres-formatted
// microseconds. Records of a model are kept ordered by (last_modified_at,
// internal id), so a page of a million-record model costs a binary search
// and a short scan.
//
// Build one with New, serve Handler (httptest.NewServer works), and drive it
// with the Go control methods or the same API as JSON under /_sim/.
package nangosim
