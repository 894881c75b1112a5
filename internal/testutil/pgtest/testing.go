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

package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
)

// shared is the one server Main shares between the tests of a test binary. It starts when
// the first test asks for a database, so a binary whose tests never do pays nothing. It is
// the only process-wide state of this package, and it lives only while Main runs.
var shared sharedServer

type sharedServer struct {
	mu        sync.Mutex
	enabled   bool // Main is running
	server    *Server
	err       error // why the server could not start: every later test fails with it too
	databases int   // databases handed out so far, to name the next one
}

// Main runs the tests of a test binary with one PostgreSQL server shared by all of them,
// and removes it when they end or the binary is interrupted. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	shared.enable()
	stopWatching := closeOnSignal()
	defer stopWatching()
	defer shared.close()
	return m.Run()
}

// NewDatabase creates a fresh, empty database for the test and answers its DSN. The
// database lives on the server Main shares; without Main, on a server of the test's own
// (slower: initdb per test). It fails the test when PostgreSQL cannot be run; it never skips.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	srv, err := shared.get()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	if srv == nil {
		srv = StartServer(tb)
	}
	name := shared.nextDatabaseName()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	if err := srv.CreateDatabase(ctx, name); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return srv.DSN(name)
}

// StartServer starts a server for this test alone, removed when the test ends. Use it for
// tests that stop and restart PostgreSQL; a plain database is cheaper with NewDatabase.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	srv, err := startNewServer()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("pgtest: remove the test server: %v", err)
		}
	})
	return srv
}

func startNewServer() (*Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	srv, err := NewServer(ctx)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, errorsJoinClose(err, srv)
	}
	return srv, nil
}

// errorsJoinClose removes a server that failed to start, keeping the start error first.
func errorsJoinClose(err error, srv *Server) error {
	if closeErr := srv.Close(); closeErr != nil {
		return fmt.Errorf("%w (and removing it: %v)", err, closeErr)
	}
	return err
}

func (s *sharedServer) enable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enabled = true
}

// get answers the shared server, starting it on first use; nil when Main is not running.
func (s *sharedServer) get() (*Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled {
		return nil, nil
	}
	if s.server == nil && s.err == nil {
		s.server, s.err = startNewServer()
	}
	return s.server, s.err
}

func (s *sharedServer) nextDatabaseName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.databases++
	return fmt.Sprintf("test_%d", s.databases)
}

// close removes the shared server. It is safe to call twice (end of tests and a signal).
func (s *sharedServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enabled = false
	if s.server == nil {
		return
	}
	if err := s.server.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: remove the shared test server: %v\n", err)
	}
	s.server = nil
}

// closeOnSignal removes the shared server when the test binary is interrupted: the server
// runs in a session of its own (pg_ctl detaches it), so Ctrl-C would not reach it and it
// would outlive the tests. It answers a function that stops watching.
func closeOnSignal() (stop func()) {
	signals := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-signals:
			shared.close()
			fmt.Fprintf(os.Stderr, "pgtest: %v: removed the shared test server\n", sig)
			os.Exit(1)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(signals)
		close(done)
	}
}
