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

package httpsink_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nango-operator/nango-operator/internal/sink/httpsink"
)

// readmeBlock answers the fenced code block of language lang that follows the first line
// of the README starting with after.
func readmeBlock(t *testing.T, after, lang string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	at := strings.Index(text, "\n"+after)
	if at < 0 {
		t.Fatalf("README has no line starting with %q", after)
	}
	text = text[at:]
	start := strings.Index(text, "```"+lang+"\n")
	if start < 0 {
		t.Fatalf("README has no %s block after %q", lang, after)
	}
	text = text[start+len("```"+lang+"\n"):]
	end := strings.Index(text, "```")
	if end < 0 {
		t.Fatalf("README's %s block after %q does not end", lang, after)
	}
	return text[:end]
}

// TestREADMEGoSnippetIsTheTestsVerify: the Go snippet users copy is the function the
// tests' endpoint verifies every request with.
func TestREADMEGoSnippetIsTheTestsVerify(t *testing.T) {
	snippet := readmeBlock(t, "Verify the signature before reading the body", "go")
	source, err := os.ReadFile(filepath.Join("httpsinktest", "httpsinktest.go"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(source)
	start := strings.Index(text, "func Verify(")
	end := strings.Index(text[start:], "\n}\n")
	if start < 0 || end < 0 {
		t.Fatal("httpsinktest.go has no func Verify")
	}
	tested := strings.Replace(text[start:start+end+3], "func Verify(", "func verify(", 1)
	if snippet != tested {
		t.Fatalf("the README's Go snippet differs from httpsinktest.Verify:\n%s\nwant:\n%s", snippet, tested)
	}
}

// TestREADMENodeSnippetVerifies runs the README's Node snippet on signed bodies. It needs
// node; it fails, never skips, without it.
func TestREADMENodeSnippetVerifies(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for this test: %v", err)
	}
	script := readmeBlock(t, "Node (", "js") + `
const fs = require("node:fs");
const [key, bodyFile, header] = process.argv.slice(2);
process.stdout.write(String(verify(key, fs.readFileSync(bodyFile), header)));
`
	dir := t.TempDir()
	scriptFile, bodyFile := filepath.Join(dir, "verify.js"), filepath.Join(dir, "body.json")
	body := []byte(`[{"specversion":"1.0","id":"x","data":{"title":"Zoë"}}]`)
	if err := os.WriteFile(scriptFile, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cases := []struct {
		name, key, header string
		want              string
	}{
		{"signed", string(signingKey), httpsink.Sign(signingKey, now, body), "true"},
		{"another key", "another key", httpsink.Sign(signingKey, now, body), "false"},
		{"another body", string(signingKey), httpsink.Sign(signingKey, now, append([]byte(" "), body...)), "false"},
		{"an hour old", string(signingKey), httpsink.Sign(signingKey, now.Add(-time.Hour), body), "false"},
		{"no signature", string(signingKey), "t=1", "false"},
	}
	for _, c := range cases {
		out, err := exec.Command(node, scriptFile, c.key, bodyFile, c.header).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: node: %v: %s", c.name, err, out)
		}
		if string(out) != c.want {
			t.Errorf("%s: the Node snippet answered %s, want %s", c.name, out, c.want)
		}
	}
}
