// Package nangosim is an in-memory Nango server for tests, the demo and
// benchmarks.
//
// It follows ../shared/nango-api.md to the letter, odd corners included: a
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
