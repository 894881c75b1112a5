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

// Package controller holds the NangoSync reconciler. For each NangoSync it reads the pages
// of records Nango has after the stored cursor, writes each page to the sink together with
// the cursor after it (one transaction), and records the cursor, counts and conditions in
// status. The cursor moves only after the sink committed; the sink's checkpoint wins over
// status.cursor after a crash between the two. One reconcile reads a bounded number of
// pages, then goes to the back of the queue, so that one huge sync never starves the
// others. Failures become conditions with a reason and a message that says what to fix,
// retried with exponential backoff. A webhook wakes a NangoSync through its requested-at
// annotation, and, when the webhook reached this replica and it leads, in-process first
// (WakeInProcess); a busy sync then hands its worker over after the write in progress.
package controller
