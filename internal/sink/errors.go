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

// A sink error is one of three kinds, and the drivers say which:
//   - unavailable (ErrUnavailable): the store could not be reached or is busy (refused or
//     lost connection, server shutting down, too many connections, database locked);
//     retrying with backoff fixes it;
//   - refused (RefusedError): the store will give the same answer until a person changes
//     something (bad credentials, a missing privilege, a table of another shape, a file
//     the process may not write); the error carries what to change;
//   - anything else, for example a malformed record.

// ErrUnavailable marks errors that mean the store could not be reached or is busy for now.
// Sinks wrap such errors with it; test with IsUnavailable.
var ErrUnavailable = errors.New("sink unavailable")

// IsUnavailable tells whether err says the sink's store is unreachable or busy for now: the
// caller should retry with backoff rather than report the configuration as broken.
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable)
}

// RefusedError is an error the store will repeat until a person changes its configuration
// or the sink's spec. Its message is the store's; Fix says what to change.
type RefusedError struct {
	Err error
	// Fix says what to change, to the person who reads the NangoSync's condition.
	Fix string
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Refused marks err as refused by the store, with what to change. nil stays nil.
func Refused(err error, fix string) error {
	if err == nil {
		return nil
	}
	return &RefusedError{Err: err, Fix: fix}
}

// Refusal tells whether err says the store refused the sink, and if so what to change.
func Refusal(err error) (fix string, refused bool) {
	var refusedErr *RefusedError
	if !errors.As(err, &refusedErr) {
		return "", false
	}
	return refusedErr.Fix, true
}
