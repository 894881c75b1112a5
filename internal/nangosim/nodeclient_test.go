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

package nangosim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// nodeSDKVersion is the official Node client the emulator must serve unchanged.
const nodeSDKVersion = "0.71"

// nodeScript pages through a model with listRecords and prints one JSON line
// per page: the record ids, their cursors and next_cursor.
const nodeScript = `
const { Nango } = await import(process.env.NANGO_SDK_ENTRY);
const nango = new Nango({ secretKey: process.env.NANGO_SECRET_KEY, host: process.env.NANGO_HOST });
let cursor;
for (let i = 0; i < 100000; i++) {
  const page = await nango.listRecords({
    providerConfigKey: process.env.NANGO_PCK,
    connectionId: process.env.NANGO_CONNECTION,
    model: process.env.NANGO_MODEL,
    limit: Number(process.env.NANGO_LIMIT),
    ...(cursor ? { cursor } : {}),
  });
  console.log(JSON.stringify({
    ids: page.records.map((r) => r.id),
    cursors: page.records.map((r) => r._nango_metadata.cursor),
    next_cursor: page.next_cursor,
  }));
  if (!page.next_cursor) break;
  cursor = page.next_cursor;
}
`

type nodePage struct {
	IDs        []string `json:"ids"`
	Cursors    []string `json:"cursors"`
	NextCursor *string  `json:"next_cursor"`
}

// TestNodeSDKListRecords: the official @nangohq/node client pages through
// several thousand records in the emulator and gets exactly what the Go
// client gets, cursor by cursor. It needs node and npm (and the npm
// registry on the first run); it fails, never skips, without them.
func TestNodeSDKListRecords(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for this test: %v", err)
	}
	entry := installNodeSDK(t)

	// A byte budget makes some pages short while next_cursor is set: both
	// clients must keep paging.
	h := newHarness(t, nangosim.Options{MaxPageBytes: 200_000})
	if _, err := h.sim.SeedRecords(h.ref, nangosim.SeedOptions{Count: 4321, BatchSize: 500}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.sim.DeleteRecords(h.ref, []string{"rec-7", "rec-4000"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.sim.PruneRecords(h.ref, []string{"rec-9"}); err != nil {
		t.Fatal(err)
	}
	const limit = 1000

	script := filepath.Join(t.TempDir(), "page.mjs")
	if err := os.WriteFile(script, []byte(nodeScript), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = append(os.Environ(),
		"NANGO_SDK_ENTRY=file://"+entry,
		"NANGO_SECRET_KEY="+h.env.SecretKey,
		"NANGO_HOST="+h.srv.URL,
		"NANGO_PCK="+h.ref.ProviderConfigKey,
		"NANGO_CONNECTION="+h.ref.ConnectionID,
		"NANGO_MODEL="+h.ref.Model,
		"NANGO_LIMIT=1000",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node script: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	nodePages := make([]nodePage, 0, len(lines))
	for _, line := range lines {
		var p nodePage
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("node output %q: %v", line, err)
		}
		nodePages = append(nodePages, p)
	}

	req := withLimit(h.req(), limit)
	total, short := 0, 0
	for i := 0; ; i++ {
		page := h.list(req)
		if i >= len(nodePages) {
			t.Fatalf("Go client got page %d, the Node client stopped at %d", i, len(nodePages))
		}
		np := nodePages[i]
		if got := ids(page.Records); !slices.Equal(got, np.IDs) {
			t.Fatalf("page %d: ids differ: go %d records, node %d records", i, len(got), len(np.IDs))
		}
		for j, r := range page.Records {
			if r.Metadata.Cursor != np.Cursors[j] {
				t.Fatalf("page %d record %d: cursor differs", i, j)
			}
		}
		nodeNext := ""
		if np.NextCursor != nil {
			nodeNext = *np.NextCursor
		}
		if page.NextCursor != nodeNext {
			t.Fatalf("page %d: next_cursor differs: go %q, node %q", i, page.NextCursor, nodeNext)
		}
		total += len(page.Records)
		if len(page.Records) < limit && page.NextCursor != "" {
			short++
		}
		if page.NextCursor == "" {
			if i != len(nodePages)-1 {
				t.Fatalf("Go client stopped at page %d, the Node client went on to %d", i, len(nodePages))
			}
			break
		}
		req.Cursor = page.NextCursor
	}
	if total != 4321 || short == 0 {
		t.Fatalf("%d records (want 4321), %d short pages (want some)", total, short)
	}
	t.Logf("%d pages, %d records, %d short pages: identical for Go and Node", len(nodePages), total, short)
}

// installNodeSDK installs @nangohq/node into a cache folder keyed by version
// (so later runs are fast) and returns the path of its ESM entry point.
func installNodeSDK(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is required for this test: %v", err)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = t.TempDir()
	}
	dir := filepath.Join(base, "nango-operator", "nangohq-node-"+nodeSDKVersion)
	entry := filepath.Join(dir, "node_modules", "@nangohq", "node", "dist", "index.js")
	pkg := filepath.Join(dir, "node_modules", "@nangohq", "node", "package.json")
	if installedVersion(pkg) != "" {
		return entry
	}
	// Install into a fresh folder and move it into place, so a failed or
	// concurrent install never leaves a half-filled cache.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", tmp, "@nangohq/node@"+nodeSDKVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install @nangohq/node@%s: %v\n%s", nodeSDKVersion, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && installedVersion(pkg) == "" {
		t.Fatalf("move the installed SDK into the cache: %v", err)
	}
	v := installedVersion(pkg)
	if !strings.HasPrefix(v, nodeSDKVersion+".") {
		t.Fatalf("installed @nangohq/node %q, want %s.x", v, nodeSDKVersion)
	}
	return entry
}

func installedVersion(pkgJSON string) string {
	b, err := os.ReadFile(pkgJSON)
	if err != nil {
		return ""
	}
	var p struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &p) != nil {
		return ""
	}
	return p.Version
}

// runNodeScript runs script with node against the harness's emulator, the official
// client's entry point and the secret key in its environment, and answers the lines it
// printed. It fails, never skips, without node and npm.
func runNodeScript(t *testing.T, h *harness, script string) []string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for this test: %v", err)
	}
	entry := installNodeSDK(t)
	path := filepath.Join(t.TempDir(), "script.mjs")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, path)
	cmd.Env = append(os.Environ(), "NANGO_SDK_ENTRY=file://"+entry, "NANGO_SECRET_KEY="+h.env.SecretKey, "NANGO_HOST="+h.srv.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node script: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
