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

package sink

import "errors"

// ErrUnavailable marks errors that mean the store could not be reached or is busy (refused
// or lost connection, server shutting down, too many connections, database locked), as
// opposed to errors that retrying will not fix (bad credentials, missing privileges, a
// malformed record). Sinks wrap such errors with it; test with IsUnavailable.
var ErrUnavailable = errors.New("sink unavailable")

// IsUnavailable tells whether err says the sink's store is unreachable or busy for now: the
// caller should retry with backoff rather than report the configuration as broken.
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable)
}
