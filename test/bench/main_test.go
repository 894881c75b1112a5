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

// Package bench holds the operator's benchmarks and soaks: the real manager binary against
// an envtest API server, the Nango emulator and real sinks. A plain `go test` runs short
// smoke versions; NANGO_BENCH_FULL=1 (make bench) and NANGO_SOAK_FULL=1 (make soak) run the
// full sizes. See docs/benchmarks.md.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/testutil/freeport"
)

// env is the envtest API server and the manager binary shared by every test of the binary.
type env struct {
	testEnv       *envtest.Environment
	k8s           client.Client
	kubeconfig    string
	managerBinary string
	dir           string
}

var (
	shared     env
	sharedErr  error
	sharedOnce sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.testEnv != nil {
		if err := shared.testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
			code = 1
		}
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// fullBench and fullSoak select the full sizes; without them the smoke sizes run.
func fullBench() bool { return os.Getenv("NANGO_BENCH_FULL") == "1" }
func fullSoak() bool  { return os.Getenv("NANGO_SOAK_FULL") == "1" }

// envInt reads an integer override from the environment.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// cluster starts (once) the API server with the CRDs and builds the manager binary.
func cluster(t *testing.T) *env {
	t.Helper()
	sharedOnce.Do(func() { sharedErr = shared.start() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return &shared
}

func (e *env) start() error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is not set: run `make bench`, `make soak` or `make test`, " +
			"which build etcd and kube-apiserver into ./bin, or set it to bin/k8s/<version>-linux-amd64")
	}
	dir, err := os.MkdirTemp("", "nango-bench-")
	if err != nil {
		return err
	}
	e.dir = dir
	e.managerBinary = filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", e.managerBinary, "./cmd")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the manager: %w\n%s", err, out)
	}
	e.testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := e.testEnv.Start()
	if err != nil {
		return fmt.Errorf("start envtest: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := syncv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	if e.k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	admin, err := e.testEnv.AddUser(envtest.User{Name: "bench-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	contents, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	e.kubeconfig = filepath.Join(dir, "kubeconfig")
	return os.WriteFile(e.kubeconfig, contents, 0o600)
}

var namespaces struct {
	sync.Mutex
	n int
}

// newNamespace creates a namespace holding the Nango Secret (default name "nango", key
// "secretKey") and, when pgURL is set, a Secret "pg" with key "url".
func (e *env) newNamespace(t *testing.T, nangoKey, pgURL string) string {
	t.Helper()
	namespaces.Lock()
	namespaces.n++
	name := fmt.Sprintf("bench-%d", namespaces.n)
	namespaces.Unlock()
	ctx := context.Background()
	must(t, e.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	must(t, e.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "nango", Namespace: name},
		StringData: map[string]string{"secretKey": nangoKey}}))
	if pgURL != "" {
		must(t, e.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pg", Namespace: name},
			StringData: map[string]string{"url": pgURL}}))
	}
	return name
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// manager is one run of the manager binary.
type manager struct {
	cmd       *exec.Cmd
	probeAddr string
	output    *lockedBuffer
	exited    chan struct{}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the last 256 KiB: enough to explain a failure, bounded for long runs.
	if b.buf.Len() > 512<<10 {
		tail := append([]byte(nil), b.buf.Bytes()[b.buf.Len()-(256<<10):]...)
		b.buf.Reset()
		b.buf.Write(tail)
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	must(t, err)
	return addr
}

// startManager runs the manager binary; it is killed when the test ends if still running.
func (e *env) startManager(t *testing.T, args ...string) *manager {
	t.Helper()
	return e.startManagerWithEnv(t, nil, args...)
}

// startManagerWithEnv starts the manager with environment variables (NAME=value) added to
// the test's own.
func (e *env) startManagerWithEnv(t *testing.T, environment []string, args ...string) *manager {
	t.Helper()
	m := &manager{probeAddr: freeAddr(t), output: &lockedBuffer{}, exited: make(chan struct{})}
	m.cmd = exec.Command(e.managerBinary, append([]string{
		"--kubeconfig", e.kubeconfig,
		"--health-probe-bind-address", m.probeAddr,
		"--metrics-bind-address", "0",
		"--webhook-bind-address", "0",
	}, args...)...)
	m.cmd.Env = append(os.Environ(), environment...)
	m.cmd.Stdout, m.cmd.Stderr = m.output, m.output
	must(t, m.cmd.Start())
	go func() {
		_ = m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() { m.kill() })
	return m
}

// kill sends SIGKILL and waits for the process to be gone.
func (m *manager) kill() {
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
}

// stop sends SIGTERM and waits up to 30 s, then kills.
func (m *manager) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		m.kill()
	}
}

// waitReady polls /readyz until it answers 200.
func (m *manager) waitReady(t *testing.T) {
	t.Helper()
	eventually(t, 60*time.Second, 50*time.Millisecond, func() error {
		select {
		case <-m.exited:
			return fmt.Errorf("the manager exited; its output:\n%s", m.output)
		default:
		}
		resp, err := http.Get("http://" + m.probeAddr + "/readyz")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz answered %d", resp.StatusCode)
		}
		return nil
	})
}

// rssBytes reads VmRSS of pid from /proc.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) < 1 {
				break
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// userHZ is the unit of the CPU times in /proc: clock ticks of 1/100 s on Linux.
const userHZ = 100

// cpuSeconds is the user and system CPU time process pid has used so far.
func cpuSeconds(pid int) (float64, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count from after it.
	end := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	return float64(utime+stime) / userHZ, err
}

// machineCPU is the CPU time the whole machine has spent busy (user, nice, system, irq,
// softirq) and stolen by the hypervisor for other guests, on all cores, so far.
func machineCPU() (busy, steal float64, err error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, errors.New("no cpu line in /proc/stat")
	}
	ticks := make([]int64, 8)
	for i := range ticks {
		if ticks[i], err = strconv.ParseInt(fields[i+1], 10, 64); err != nil {
			return 0, 0, err
		}
	}
	busyTicks := ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
	return float64(busyTicks) / userHZ, float64(ticks[7]) / userHZ, nil
}

// eventually polls f every interval until it returns nil or timeout passes, then fails
// the test with f's last error.
func eventually(t *testing.T, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", timeout, err)
		}
		<-ticker.C
	}
}
