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

package nango

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/nango-operator/nango-operator/internal/truncate"
)

// Kind says what a controller should do about an error.
type Kind string

const (
	// KindUnauthorized: the secret key is missing, malformed or unknown.
	// Stop and tell the user; retrying cannot help.
	KindUnauthorized Kind = "Unauthorized"
	// KindForbidden: the key lacks a scope. Stop and tell the user.
	KindForbidden Kind = "Forbidden"
	// KindUnknownConnection: the connection or integration does not exist.
	// Stop and tell the user.
	KindUnknownConnection Kind = "UnknownConnection"
	// KindInvalidRequest: Nango rejected the request's shape (a bug on our
	// side, or a spec value Nango does not accept).
	KindInvalidRequest Kind = "InvalidRequest"
	// KindRateLimited: the account's budget is spent; RetryAfter says how
	// long to wait. Retry later.
	KindRateLimited Kind = "RateLimited"
	// KindServerError: a 5xx. Retry with backoff.
	KindServerError Kind = "ServerError"
	// KindInvalidCursor: Nango answers 500 for this cursor and only for it.
	// Retrying will not help: surface it (a resync starts over).
	KindInvalidCursor Kind = "InvalidCursor"
	// KindNetwork: no answer (connection refused or dropped, timeout).
	// Retry with backoff.
	KindNetwork Kind = "Network"
	// KindInvalidResponse: an answer that is not what the contract says
	// (undecodable body, unexpected status).
	KindInvalidResponse Kind = "InvalidResponse"
	// KindResponseTooLarge: the answer exceeded the client's size bound;
	// ask for smaller pages.
	KindResponseTooLarge Kind = "ResponseTooLarge"
)

// ValidationIssue is one problem Nango found in a request (a zod issue).
type ValidationIssue struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Path    []any  `json:"path"`
}

// Error is every error the client returns about Nango. It never contains the
// secret key.
type Error struct {
	Kind Kind
	// Op is what the client was doing, e.g. "list records".
	Op string
	// Status is the HTTP status, 0 when there was no answer.
	Status int
	// Code and Message are Nango's error code and message, when it sent them.
	Code    string
	Message string
	// Issues lists validation problems of a 400.
	Issues []ValidationIssue
	// RetryAfter is how long to wait before trying again (rate limits).
	RetryAfter time.Duration
	// Err is the underlying error, if any (network errors, decoding errors).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("nango: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(string(e.Kind))
	if e.Status != 0 || e.Code != "" {
		b.WriteString(" (")
		if e.Status != 0 {
			fmt.Fprintf(&b, "%d", e.Status)
			if e.Code != "" {
				b.WriteString(" ")
			}
		}
		b.WriteString(e.Code)
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	for i, is := range e.Issues {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Issues)-i)
			break
		}
		fmt.Fprintf(&b, "; %v: %s", is.Path, is.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// errorKind returns the Kind of a client error, or "" for other errors.
func errorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// isKind reports whether err is a client error of the given kind.
func isKind(err error, k Kind) bool { return errorKind(err) == k }

// IsTerminal reports whether retrying cannot help until the user changes
// something (key, scope, connection, spec) or asks for a resync.
func IsTerminal(err error) bool {
	switch errorKind(err) {
	case KindUnauthorized, KindForbidden, KindUnknownConnection, KindInvalidRequest, KindInvalidCursor:
		return true
	}
	return false
}

// RetryAfter returns how long a rate-limited error asks to wait (0 if none).
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// errorEnvelope is Nango's {"error": {...}} body; older servers send
// {"error": "message"}.
type errorEnvelope struct {
	Error json.RawMessage `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Errors  []ValidationIssue `json:"errors"`
}

// Bounds on what an error keeps of an answer. Its text ends up in a condition message, an
// event note and log lines: it is Nango's to word but the operator's to size, so that a
// server (or whatever answers at its URL) cannot fill status with 64 KiB of text.
const (
	maxCodeBytes   = 64
	maxIssues      = 10
	maxPathEntries = 8
)

// errorFromResponse classifies a non-2xx answer. Every text taken from the body is
// sanitised and cut short, and the secret key, should the server echo it, is blanked out.
func errorFromResponse(op string, status int, body []byte, secretKey string) *Error {
	if secretKey != "" {
		body = bytes.ReplaceAll(body, []byte(secretKey), []byte("[secret key]"))
	}
	e := &Error{Op: op, Status: status}
	var env errorEnvelope
	if json.Unmarshal(body, &env) == nil && len(env.Error) > 0 {
		var d errorDetail
		var msg string
		switch {
		case json.Unmarshal(env.Error, &d) == nil:
			e.Code, e.Message, e.Issues = sanitize(d.Code, maxCodeBytes), sanitize(d.Message, maxMessageBytes), sanitizeIssues(d.Errors)
		case json.Unmarshal(env.Error, &msg) == nil:
			e.Message = sanitize(msg, maxMessageBytes)
		}
	} else if len(body) > 0 {
		e.Message = snippet(body)
	}
	e.Kind = kindFor(status, e.Code)
	return e
}

// sanitizeIssues keeps the first maxIssues issues, each short and printable. Error prints
// only three; the rest are for callers that look.
func sanitizeIssues(issues []ValidationIssue) []ValidationIssue {
	if len(issues) == 0 {
		return nil
	}
	out := make([]ValidationIssue, 0, min(len(issues), maxIssues))
	for _, is := range issues[:min(len(issues), maxIssues)] {
		path := make([]any, 0, min(len(is.Path), maxPathEntries))
		for _, p := range is.Path[:min(len(is.Path), maxPathEntries)] {
			switch v := p.(type) {
			case string:
				p = sanitize(v, maxCodeBytes)
			case float64: // an array index
			default:
				p = "?"
			}
			path = append(path, p)
		}
		out = append(out, ValidationIssue{Code: sanitize(is.Code, maxCodeBytes),
			Message: sanitize(is.Message, maxMessageBytes/2), Path: path})
	}
	return out
}

func kindFor(status int, code string) Kind {
	switch {
	case code == "unknown_connection" || code == "unknown_provider_config":
		return KindUnknownConnection
	case status == http.StatusUnauthorized:
		return KindUnauthorized
	case status == http.StatusForbidden:
		return KindForbidden
	case status == http.StatusTooManyRequests:
		return KindRateLimited
	case status >= 500:
		return KindServerError
	case status >= 400:
		return KindInvalidRequest
	}
	return KindInvalidResponse
}

// maxMessageBytes bounds a message taken from an answer.
const maxMessageBytes = 300

// snippet returns a short printable prefix of a body for error messages.
func snippet(b []byte) string { return sanitize(string(b), maxMessageBytes) }

// sanitize makes text from an answer fit for a condition message, an event and a log
// line: invalid UTF-8 and control or format characters (newlines, escapes, bidi
// overrides) become spaces or U+FFFD, and it is cut to at most n bytes on a rune
// boundary, marked with an ellipsis.
func sanitize(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return truncate.String(s, n)
}
