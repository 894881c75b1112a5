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

// Command demo shows nango-operator at work on a laptop with no cluster and no Nango
// account: a local API server (the envtest binaries), the Nango emulator, the operator,
// one NangoSync into SQLite, and a webhook that brings new records within moments.
// `make demo` runs it; it stops everything it started on exit and on Ctrl-C.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
	"github.com/nango-operator/nango-operator/internal/testutil/freeport"
)

const (
	namespace   = "nango-demo"
	integration = "hubspot"
	connection  = "acme-corp"
	model       = "Contact"
	seeded      = 3000
	added       = 25
)

func main() {
	nonInteractive := flag.Bool("non-interactive", false, "stop right after the demo instead of waiting for Ctrl-C")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{nonInteractive: *nonInteractive}
	err := d.run(ctx)
	d.stopAll()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

// demo holds what the demo started, to stop it all at the end.
type demo struct {
	nonInteractive bool
	dir            string
	env            *envtest.Environment
	kubeconfig     string
	kubectlPath    string
	processes      []*exec.Cmd
	simURL         string
	receiverAddr   string
	secretKey      string
	signingKey     string
}

func (d *demo) run(ctx context.Context) error {
	var err error
	if d.dir, err = os.MkdirTemp("", "nango-demo-"); err != nil {
		return err
	}
	steps := []struct {
		title string
		do    func(context.Context) error
	}{
		{"Building the operator and the Nango emulator", d.build},
		{"Starting a local Kubernetes API server (etcd and kube-apiserver from ./bin) with the NangoSync CRD", d.startAPIServer},
		{fmt.Sprintf("Starting the Nango emulator with %d %s records of connection %s", seeded, model, connection), d.startNango},
		{"Starting the operator and its webhook receiver", d.startOperator},
		{"Applying a NangoSync that copies the contacts into SQLite", d.applyNangoSync},
		{"Waiting for the first sync", d.waitFirstSync},
		{fmt.Sprintf("Adding %d contacts in Nango and sending Nango's webhook", added), d.addRecordsAndWebhook},
	}
	for i, step := range steps {
		fmt.Printf("\n==> %d/%d %s\n", i+1, len(steps), step.title)
		if err := step.do(ctx); err != nil {
			return err
		}
	}
	fmt.Printf(`
Done. While the demo runs, look around:
    export KUBECONFIG=%s
    %s get nangosyncs -n %s -o wide
    %s describe nangosync contacts -n %s
    sqlite3 %s "select id, json_extract(payload, '$.name'), last_action from contacts limit 5"
Logs: %s
`, d.kubeconfig, d.kubectlPath, namespace, d.kubectlPath, namespace, d.sqlitePath(), d.dir)
	if d.nonInteractive {
		fmt.Println("(-non-interactive: stopping now)")
		return nil
	}
	fmt.Println("Press Ctrl-C to stop everything the demo started.")
	<-ctx.Done()
	return nil
}

func (d *demo) build(ctx context.Context) error {
	for _, target := range []struct{ out, pkg string }{
		{"manager", "./cmd"},
		{"nango-sim", "./cmd/nango-sim"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(d.dir, target.out), target.pkg)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", target.pkg, err)
		}
	}
	fmt.Printf("    built %s/manager and %s/nango-sim\n", d.dir, d.dir)
	return nil
}

func (d *demo) startAPIServer(ctx context.Context) error {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run the demo with `make demo`")
	}
	d.kubectlPath = filepath.Join(assets, "kubectl")
	d.env = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	if _, err := d.env.Start(); err != nil {
		return fmt.Errorf("start the API server: %w", err)
	}
	admin, err := d.env.AddUser(envtest.User{Name: "demo", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	d.kubeconfig = filepath.Join(d.dir, "kubeconfig")
	if err := os.WriteFile(d.kubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}
	fmt.Printf("    API server at %s\n    export KUBECONFIG=%s   # to use kubectl yourself\n", d.env.Config.Host, d.kubeconfig)
	return d.kubectl(ctx, "create", "namespace", namespace)
}

func (d *demo) startNango(ctx context.Context) error {
	addr, err := freeport.Addr()
	if err != nil {
		return err
	}
	if d.receiverAddr, err = freeport.Addr(); err != nil {
		return err
	}
	out, err := d.start(ctx, "nango-sim", filepath.Join(d.dir, "nango-sim"),
		"-addr", addr, "-seed", fmt.Sprint(seeded), "-seed-batch", "500",
		"-integration", integration, "-connection", connection, "-model", model,
		"-webhook-url", "http://"+d.receiverAddr+"/webhooks/nango")
	if err != nil {
		return err
	}
	values, err := readSettings(out, "NANGO_URL", "NANGO_SECRET_KEY", "NANGO_WEBHOOK_SIGNING_KEY")
	if err != nil {
		return fmt.Errorf("read the emulator's settings: %w", err)
	}
	d.simURL, d.secretKey, d.signingKey = values[0], values[1], values[2]
	fmt.Printf("    Nango emulator at %s, sending webhooks to http://%s/webhooks/nango\n", d.simURL, d.receiverAddr)
	fmt.Println("    (its secret key and webhook signing key go into the Secrets nango and nango-webhook)")
	return nil
}

func (d *demo) startOperator(ctx context.Context) error {
	if err := d.applyYAML(ctx, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: nango, namespace: %[1]s}
stringData: {secretKey: %[2]s}
---
apiVersion: v1
kind: Secret
metadata: {name: nango-webhook, namespace: %[1]s}
stringData: {signingKey: %[3]s}
`, namespace, d.secretKey, d.signingKey)); err != nil {
		return err
	}
	probeAddr, err := freeport.Addr()
	if err != nil {
		return err
	}
	_, err = d.start(ctx, "manager", filepath.Join(d.dir, "manager"),
		"--kubeconfig", d.kubeconfig,
		"--nango-url", d.simURL,
		"--health-probe-bind-address", probeAddr,
		"--metrics-bind-address", "0",
		"--webhook-bind-address", d.receiverAddr,
		"--webhook-signing-secret", "nango-webhook",
		"--webhook-signing-secret-namespace", namespace)
	if err != nil {
		return err
	}
	return waitFor(ctx, 30*time.Second, func() (bool, error) {
		resp, err := http.Get("http://" + probeAddr + "/readyz") //nolint:noctx // a local probe with a deadline around it
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

func (d *demo) sqlitePath() string { return filepath.Join(d.dir, "nango.db") }

func (d *demo) applyNangoSync(ctx context.Context) error {
	manifest := fmt.Sprintf(`apiVersion: sync.nango.dev/v1alpha1
kind: NangoSync
metadata:
  name: contacts
  namespace: %s
spec:
  connectionId: %s
  providerConfigKey: %s
  model: %s
  syncName: contacts
  sink:
    sqlite:
      path: %s
      table: contacts
  interval: 1h        # webhooks bring new records long before that
  pageSize: 500
`, namespace, connection, integration, model, d.sqlitePath())
	fmt.Print(indent(manifest))
	return d.applyYAML(ctx, manifest)
}

func (d *demo) waitFirstSync(ctx context.Context) error {
	start := time.Now()
	if err := d.kubectl(ctx, "wait", "nangosync/contacts", "-n", namespace, "--for=condition=Ready", "--timeout=120s"); err != nil {
		return err
	}
	fmt.Printf("    Ready after %s\n", time.Since(start).Round(time.Millisecond))
	return d.kubectl(ctx, "get", "nangosyncs", "-n", namespace)
}

func (d *demo) addRecordsAndWebhook(ctx context.Context) error {
	before, err := d.rowsInSink(ctx)
	if err != nil {
		return err
	}
	records := make([]json.RawMessage, added)
	for i := range records {
		records[i] = json.RawMessage(fmt.Sprintf(`{"id":"new-%03d","name":"New Contact %d","email":"new%d@example.com"}`, i, i, i))
	}
	ref := map[string]any{"provider_config_key": integration, "connection_id": connection, "model": model}
	if err := d.simControl(ctx, "/_sim/records/upsert", merge(ref, map[string]any{"records": records})); err != nil {
		return err
	}
	sent := time.Now()
	if err := d.simControl(ctx, "/_sim/webhooks/sync", merge(ref, map[string]any{"sync_name": "contacts"})); err != nil {
		return err
	}
	fmt.Printf("    rows in the sink before: %d\n", before)
	err = waitFor(ctx, 30*time.Second, func() (bool, error) {
		n, err := d.rowsInSink(ctx)
		return n == before+added, err
	})
	if err != nil {
		return fmt.Errorf("wait for the new records in the sink: %w", err)
	}
	fmt.Printf("    rows in the sink after:  %d, %s after the webhook (the interval is 1h)\n",
		before+added, time.Since(sent).Round(time.Millisecond))
	return waitFor(ctx, 30*time.Second, func() (bool, error) {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, d.kubectlPath, "--kubeconfig", d.kubeconfig, "get", "nangosync", "contacts",
			"-n", namespace, "-o", "jsonpath={.status.records.total}")
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			return false, err
		}
		if out.String() != fmt.Sprint(seeded+added) {
			return false, nil
		}
		return true, d.kubectl(ctx, "get", "nangosyncs", "-n", namespace)
	})
}

// rowsInSink counts the rows the NangoSync wrote to the SQLite file.
func (d *demo) rowsInSink(ctx context.Context) (int, error) {
	snk, err := sqlite.Open(ctx, d.sqlitePath(), sqlite.Options{Table: "contacts"})
	if err != nil {
		return 0, err
	}
	defer func() { _ = snk.Close() }()
	rows, err := snk.ReadRows(ctx, sink.Key(syncv1alpha1.NewDataSet(integration, connection, model, "")))
	return len(rows), err
}

// simControl posts to the emulator's control API.
func (d *demo) simControl(ctx context.Context, path string, body any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.simURL+path, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("emulator %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("emulator %s answered %d: %s", path, resp.StatusCode, answer)
	}
	return nil
}

// kubectl runs the real kubectl and shows the command and its output.
func (d *demo) kubectl(ctx context.Context, args ...string) error {
	fmt.Printf("    $ kubectl %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, d.kubectlPath, append([]string{"--kubeconfig", d.kubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	fmt.Print(indent(out.String()))
	if err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func (d *demo) applyYAML(ctx context.Context, manifest string) error {
	cmd := exec.CommandContext(ctx, d.kubectlPath, "--kubeconfig", d.kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	fmt.Print(indent(string(out)))
	if err != nil {
		return fmt.Errorf("kubectl apply: %w", err)
	}
	return nil
}

// start runs a program in the background, its output in a log file of the demo's folder,
// and answers a reader of its standard output.
func (d *demo) start(ctx context.Context, name, path string, args ...string) (*bufio.Reader, error) {
	logFile, err := os.Create(filepath.Join(d.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...) //nolint:gosec // our own binaries, just built
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d.processes = append(d.processes, cmd)
	fmt.Printf("    %s running (pid %d), log in %s\n", name, cmd.Process.Pid, logFile.Name())
	reader := bufio.NewReader(io.TeeReader(stdout, logFile))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return reader, nil
}

// stopAll stops the processes and the API server, and removes the demo's folder.
func (d *demo) stopAll() {
	fmt.Println("\n==> Stopping everything the demo started")
	for i := len(d.processes) - 1; i >= 0; i-- {
		p := d.processes[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	if d.env != nil {
		if err := d.env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop the API server: %v\n", err)
		}
	}
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
}

// readSettings reads KEY=value lines from a program's output until it has every key.
func readSettings(r *bufio.Reader, keys ...string) ([]string, error) {
	found := map[string]string{}
	for len(found) < len(keys) {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("the program stopped before printing %v: %w", keys, err)
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			found[k] = v
		}
	}
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = found[k]
	}
	go func() { _, _ = io.Copy(io.Discard, r) }() // keep the pipe flowing
	return values, nil
}

// waitFor polls done until it answers true, fails, or the timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, done func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(5 * time.Millisecond)
	defer ticker.Stop()
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %w", timeout, ctx.Err())
		case <-ticker.C:
		}
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
