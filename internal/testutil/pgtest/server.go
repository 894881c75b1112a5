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

// Package pgtest runs throwaway PostgreSQL servers for tests: initdb into a temporary
// directory, a server on a free loopback port with its socket in that directory, removed
// when the test (or the test binary) ends. It never touches the machine's own cluster.
//
// The server binaries come from Debian's postgresql package (/usr/lib/postgresql/*/bin,
// newest version first), from $PGTEST_BIN_DIR, or from PATH. When none is found the test
// fails: hack/ensure-postgres.sh (run by `make test`) installs them.
//
// Typical use shares one server per test binary and gives each test a database of its own:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.NewDatabase(t)
//		...
//	}
//
// A test that stops and restarts PostgreSQL takes a server of its own with StartServer.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nango-operator/nango-operator/internal/testutil/freeport"
)

// installHint is appended to every error that means "PostgreSQL is not installed here".
const installHint = "run hack/ensure-postgres.sh (make test runs it) to install Debian's postgresql package"

// serverUser is the account initdb and the server run as when the tests run as root:
// PostgreSQL refuses to run as root. Debian's postgresql package creates it.
const serverUser = "postgres"

// dirPrefix names the temporary directories of test servers, in os.TempDir().
const dirPrefix = "pgtest-"

// ownerFile, in a server's directory, holds the pid of the process that created it.
const ownerFile = "owner.pid"

// superuser is the database superuser initdb creates; trust authentication, no password.
const superuser = "postgres"

// commandTimeout bounds initdb, pg_ctl start and pg_ctl stop, so that a wedged server fails
// the test instead of hanging it until the go test timeout.
const commandTimeout = 2 * time.Minute

// settings are written to postgresql.conf. They trade durability for speed (the data is
// thrown away) and keep the server off every network but loopback.
var settings = []string{
	"listen_addresses = '127.0.0.1'",
	"fsync = off",
	"synchronous_commit = off",
	"full_page_writes = off",
	"max_connections = 300",
	"log_min_messages = warning",
}

// Server is one throwaway PostgreSQL server: a data directory made by initdb and, while
// started, a postmaster on a fixed loopback port. Stop and Start again keep the data and
// the port, which is how a test simulates PostgreSQL going away and coming back.
type Server struct {
	binDir    string
	root      string // temporary directory holding everything, owned by the server's user
	dataDir   string
	socketDir string
	logFile   string
	cred      *syscall.Credential // whom to run the server binaries as; nil: as ourselves

	mu      sync.Mutex
	port    int // chosen at the first Start, kept afterwards
	running bool
}

// NewServer creates the data directory of a new server with initdb. The server is not
// started: call Start, and Close when done.
func NewServer(ctx context.Context) (*Server, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	removeOrphans(ctx, binDir, cred)
	root, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("create PostgreSQL test directory: %w", err)
	}
	s := &Server{
		binDir:    binDir,
		root:      root,
		dataDir:   filepath.Join(root, "data"),
		socketDir: root,
		logFile:   filepath.Join(root, "server.log"),
		cred:      cred,
	}
	if err := s.initDataDir(ctx); err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	return s, nil
}

// initDataDir hands the temporary directory to the server's user and runs initdb in it.
func (s *Server) initDataDir(ctx context.Context) error {
	// The owner file lets a later run remove this server if this process dies without
	// cleaning up (a panicking test, the go test timeout, SIGKILL).
	owner := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(s.root, ownerFile), owner, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", ownerFile, err)
	}
	if s.cred != nil {
		if err := os.Chown(s.root, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("give %s to user %s: %w", s.root, serverUser, err)
		}
	}
	// -N: no fsync of the new files; trust: no passwords on a loopback-only throwaway server.
	if err := s.run(ctx, "initdb", "-D", s.dataDir, "-U", superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "-N"); err != nil {
		return err
	}
	conf, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	_, err = conf.WriteString("\n# pgtest\n" + strings.Join(settings, "\n") + "\n")
	if closeErr := conf.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	return nil
}

// Start starts the server and waits until it accepts connections. The first Start picks a
// free loopback port; later ones reuse it, so DSNs handed out before a Stop stay valid.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	if s.port == 0 {
		// Another process could take the port before the server binds it; Start then
		// fails with the server log saying so.
		port, err := freeport.Port()
		if err != nil {
			return fmt.Errorf("find a free port: %w", err)
		}
		s.port = port
	}
	err := s.run(ctx, "pg_ctl", "start", "-D", s.dataDir, "-w", "-t", "60", "-l", s.logFile,
		"-o", fmt.Sprintf("-p %d -k %s", s.port, s.socketDir))
	if err != nil {
		return fmt.Errorf("%w\nserver log:\n%s", err, s.logTail())
	}
	s.running = true
	return nil
}

// Stop shuts the server down (fast mode: open sessions are ended) and waits until it is
// gone. The data directory stays; Start brings the server back on the same port.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	if err := s.run(ctx, "pg_ctl", "stop", "-D", s.dataDir, "-m", "fast", "-w", "-t", "60"); err != nil {
		return err
	}
	s.running = false
	return nil
}

// Close stops the server if it runs and removes its directory.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	stopErr := s.Stop(ctx)
	return errors.Join(stopErr, os.RemoveAll(s.root))
}

// Port is the server's TCP port on 127.0.0.1; zero before the first Start.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// DSN is the connection URL of database on this server, as the superuser without a password.
func (s *Server) DSN(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.Port(), url.PathEscape(database))
}

// CreateDatabase creates an empty database on the running server.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	if err := s.execAsSuperuser(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops a database of the running server, closing its connections first.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := s.execAsSuperuser(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// execAsSuperuser runs one statement in the server's postgres database.
func (s *Server) execAsSuperuser(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("connect to the test server: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, sql)
	return err
}

// run runs one of the server's binaries as the server's user; its output goes into the error.
func (s *Server) run(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.root // the server's user may not be allowed into the test's working directory
	cmd.Env = append(os.Environ(), "LC_ALL=C", "HOME="+s.root)
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	// pg_ctl start leaves the server running with its output in the log file; WaitDelay
	// makes sure a child that kept our pipes open cannot block us forever.
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return nil
}

// logTail is the end of the server log, for errors about a server that would not start.
func (s *Server) logTail() string {
	const limit = 4000
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > limit {
		b = b[len(b)-limit:]
	}
	return string(b)
}

// removeOrphans stops and removes the servers left behind by test processes that died
// before their cleanup ran, so that they do not pile up on a developer's machine. It is
// best effort: whatever it cannot remove stays.
func removeOrphans(ctx context.Context, binDir string, cred *syscall.Credential) {
	roots, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, root := range roots {
		if !isOrphan(root) {
			continue
		}
		orphan := &Server{binDir: binDir, root: root, dataDir: filepath.Join(root, "data"), cred: cred}
		if _, err := os.Stat(filepath.Join(orphan.dataDir, "postmaster.pid")); err == nil {
			_ = orphan.run(ctx, "pg_ctl", "stop", "-D", orphan.dataDir, "-m", "immediate", "-w", "-t", "30")
		}
		_ = os.RemoveAll(root)
	}
}

// isOrphan tells whether the process that created the server directory root is gone.
func isOrphan(root string) bool {
	b, err := os.ReadFile(filepath.Join(root, ownerFile))
	if err != nil {
		return false // not ours, or still being created
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// findBinDir answers the directory holding initdb, pg_ctl and postgres.
func findBinDir() (string, error) {
	if dir := os.Getenv("PGTEST_BIN_DIR"); dir != "" {
		if !hasServerBinaries(dir) {
			return "", fmt.Errorf("PGTEST_BIN_DIR=%s holds no initdb, pg_ctl and postgres", dir)
		}
		return dir, nil
	}
	if dir := newestDebianBinDir(); dir != "" {
		return dir, nil
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(initdb); err == nil {
			initdb = resolved
		}
		if dir := filepath.Dir(initdb); hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb, pg_ctl, postgres) in /usr/lib/postgresql/*/bin, "+
		"$PGTEST_BIN_DIR or PATH: %s", installHint)
}

// newestDebianBinDir answers /usr/lib/postgresql/<newest major>/bin, or "" when none is complete.
func newestDebianBinDir() string {
	initdbs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	dirs := make([]string, 0, len(initdbs))
	for _, initdb := range initdbs {
		dirs = append(dirs, filepath.Dir(initdb))
	}
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if hasServerBinaries(dir) {
			return dir
		}
	}
	return ""
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// serverCredential answers whom to run the server as: ourselves, or the postgres user when
// we are root, since initdb and postgres refuse to run as root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		return nil, fmt.Errorf("tests run as root, PostgreSQL refuses to, and there is no %q user to run it as "+
			"(create one, e.g. `useradd --system %s`, or %s): %w", serverUser, serverUser, installHint, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of user %s: %w", serverUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of user %s: %w", serverUser, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}
