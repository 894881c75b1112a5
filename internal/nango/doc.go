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

// Package nango is the operator's only way to talk to Nango: pages of
// records, sync triggers and status, typed errors, rate limiting shared
// by every sync of one secret key, and the webhooks Nango sends (their
// bodies and signatures).
//
// It follows docs/nango-api.md, including its odd corners: a short page
// with next_cursor set is not the end, pruned records carry no payload, a
// malformed cursor answers 500 (told apart from a sick server, see
// ListRecords), and every record's own fields are kept as the raw JSON Nango
// sent.
package nango
