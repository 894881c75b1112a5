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

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
)

// Every call a Sink makes is bounded, because a reconcile worker waits for it: a server
// that accepts connections and never answers (a hung host, a stopped process behind a
// load balancer, a network that drops packets silently) would otherwise hold the worker
// for good, and a few such NangoSyncs every worker of the operator.
const (
	// DefaultConnectTimeout bounds opening one connection: TCP, TLS and authentication.
	// A reachable server does it in milliseconds; 10 seconds leave room for two lost SYNs
	// (retransmitted after 1 and 3 seconds) and a slow TLS handshake.
	DefaultConnectTimeout = 10 * time.Second

	// MaxConnectTimeout is the most a URL's connect_timeout may ask for.
	MaxConnectTimeout = time.Minute

	// DefaultCallTimeout bounds each call of the Sink (writing one batch, reading one
	// checkpoint), from taking a connection to reading the answer. The largest batch the
	// operator writes (a few thousand records in one statement) takes well under a second
	// on a healthy server; a minute tolerates a busy one while still freeing the worker.
	DefaultCallTimeout = time.Minute

	// serverTimeoutMargin is how much longer than a call the server works on it
	// (statement_timeout, lock_timeout, idle_in_transaction_session_timeout): the server
	// stops what the sink no longer waits for, and the sink's own deadline, which reports
	// the sink unavailable, always comes first.
	serverTimeoutMargin = 5 * time.Second
)

// Timeouts bound the calls of a Sink. Zero fields take the defaults.
type Timeouts struct {
	// Connect bounds opening a connection; DefaultConnectTimeout when zero. A URL's
	// connect_timeout may shorten it, not lengthen it beyond MaxConnectTimeout.
	Connect time.Duration
	// Call bounds each call, connecting included; DefaultCallTimeout when zero.
	Call time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultConnectTimeout
	}
	if t.Call <= 0 {
		t.Call = DefaultCallTimeout
	}
	return t
}

// serverTimeouts are the SET LOCAL statements that bound a write transaction on the server.
// They are set per transaction rather than as startup parameters of the connection:
// PgBouncer, in the transaction mode that pgx's simple protocol serves, refuses startup
// parameters it does not track, and a session-level SET would leak to its other clients.
func (t Timeouts) serverTimeouts() []string {
	ms := (t.Call + serverTimeoutMargin).Milliseconds()
	return []string{
		fmt.Sprintf("SET LOCAL statement_timeout = %d", ms),
		fmt.Sprintf("SET LOCAL lock_timeout = %d", ms),
		fmt.Sprintf("SET LOCAL idle_in_transaction_session_timeout = %d", ms),
	}
}

// call runs f under the call deadline, and classifies its error. When the deadline, not
// the caller, ended it, the server is unavailable: the error says how long the sink waited.
func (s *Sink) call(ctx context.Context, f func(context.Context) error) error {
	callCtx, cancel := context.WithTimeout(ctx, s.timeouts.Call)
	defer cancel()
	err := classify(f(callCtx))
	if err == nil || ctx.Err() != nil || !errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		return err
	}
	if !sink.IsUnavailable(err) {
		err = fmt.Errorf("%w: %w", sink.ErrUnavailable, err)
	}
	return fmt.Errorf("no answer from PostgreSQL within %s: %w", s.timeouts.Call, err)
}
