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

package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/postgres"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
)

// testTimeouts are short, so that the tests wait little; guard is how long a test waits
// for a bounded call before it calls the call unbounded.
var testTimeouts = postgres.Timeouts{Connect: 300 * time.Millisecond, Call: time.Second}

const guard = 20 * time.Second

// TestSilentServerIsUnavailable opens a sink on a server that accepts connections and
// never answers: Open must give up within its timeouts and call the sink unavailable.
func TestSilentServerIsUnavailable(t *testing.T) {
	proxy := startProxy(t, "")
	proxy.freeze()
	err := bounded(t, func() error {
		s, err := postgres.Open(context.Background(), "postgres://someone@"+proxy.addr()+"/db?sslmode=disable",
			postgres.Options{Table: "contacts", Timeouts: testTimeouts})
		if err == nil {
			_ = s.Close()
		}
		return err
	})
	if !sink.IsUnavailable(err) {
		t.Fatalf("Open on a silent server: %v, want an unavailable error", err)
	}
}

// TestServerThatStopsAnsweringIsUnavailable opens a sink through a proxy that later stops
// forwarding: every call must give up within its timeout and call the sink unavailable,
// and the sink must work again once the server answers.
func TestServerThatStopsAnsweringIsUnavailable(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	proxy := startProxy(t, hostOf(t, dsn))
	s, err := postgres.Open(ctx, strings.Replace(dsn, hostOf(t, dsn), proxy.addr(), 1),
		postgres.Options{Table: "contacts", Timeouts: testTimeouts})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, s)
	// Closed before the sink: pgx sends a cancel request for each call that timed out, and
	// the sink's Close waits (up to 15 s) for the server to hang up on it.
	t.Cleanup(proxy.close)
	page := sink.Page{Records: []sink.Record{testRecord("a", 1)}, Checkpoint: "c1"}
	if _, err := s.WritePage(ctx, testKey, page); err != nil {
		t.Fatal(err)
	}

	proxy.freeze()
	calls := map[string]func() error{
		"WritePage": func() error {
			_, err := s.WritePage(ctx, testKey, sink.Page{Records: []sink.Record{testRecord("a", 2)}, Checkpoint: "c2"})
			return err
		},
		"Checkpoint":       func() error { _, err := s.Checkpoint(ctx, testKey); return err },
		"ReadRows":         func() error { _, err := s.ReadRows(ctx, testKey); return err },
		"DeleteCheckpoint": func() error { return s.DeleteCheckpoint(ctx, testKey, sink.Owner{}) },
		"DeleteRows":       func() error { return s.DeleteRows(ctx, testKey, sink.Owner{}) },
	}
	for name, call := range calls {
		err := bounded(t, call)
		if !sink.IsUnavailable(err) {
			t.Errorf("%s on a server that stopped answering: %v, want an unavailable error", name, err)
		}
	}

	proxy.thaw()
	if c, err := s.Checkpoint(ctx, testKey); err != nil || c.Cursor != "c1" {
		t.Fatalf("Checkpoint once the server answers again = %+v, %v; want c1", c, err)
	}
}

// bounded runs f and answers its error, failing the test if f has not returned after guard.
func bounded(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(guard):
		t.Fatalf("the call did not return within %s", guard)
		return nil
	}
}

func hostOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// proxy forwards TCP connections to upstream until frozen; frozen, it accepts connections
// and reads what they send, but forwards nothing either way: a server that hangs. With no
// upstream, it only ever accepts.
type proxy struct {
	listener net.Listener
	upstream string
	frozen   atomic.Bool
	mu       sync.Mutex
	conns    []net.Conn
}

func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{listener: listener, upstream: upstream}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.listener.Addr().String() }
func (p *proxy) freeze()      { p.frozen.Store(true) }
func (p *proxy) thaw()        { p.frozen.Store(false) }

func (p *proxy) serve() {
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return
		}
		p.track(client)
		if p.upstream == "" {
			go p.pipe(io.Discard, client)
			continue
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.track(server)
		go p.pipe(server, client)
		go p.pipe(client, server)
	}
}

// pipe copies src to dst while the proxy is not frozen, and swallows what src sends while
// it is: a frozen connection stays open and silent until its peer gives up.
func (p *proxy) pipe(dst io.Writer, src net.Conn) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if err != nil {
			if c, ok := dst.(net.Conn); ok {
				_ = c.Close()
			}
			return
		}
		if p.frozen.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil && !errors.Is(err, net.ErrClosed) {
			_ = src.Close()
			return
		}
	}
}

func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

// close closes the listener and every connection; closing again does nothing more.
func (p *proxy) close() {
	_ = p.listener.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
