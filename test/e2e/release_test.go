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

package e2e

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// repoRoot is the checkout the tests run in.
func repoRoot() string {
	GinkgoHelper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	return root
}

// runMake runs a target of the project's Makefile, as a user would, and answers its output.
func runMake(args ...string) string {
	GinkgoHelper()
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-s"}, args...)...)
	cmd.Dir = repoRoot()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	Expect(cmd.Run()).To(Succeed(), "make %s:\n%s", strings.Join(args, " "), out.String())
	return out.String()
}

// makeVar answers a variable of the Makefile as make computes it.
func makeVar(name string) string {
	GinkgoHelper()
	return strings.TrimSpace(runMake("print-" + name))
}

// chartAppVersion answers the chart's appVersion, the one place the release is written.
func chartAppVersion() string {
	GinkgoHelper()
	m := regexp.MustCompile(`(?m)^appVersion:\s*"?([^"\s]+)"?\s*$`).FindSubmatch(
		mustRead(filepath.Join(repoRoot(), "charts", "nango-operator", "Chart.yaml")))
	Expect(m).NotTo(BeNil(), "Chart.yaml has no appVersion")
	return string(m[1])
}

var _ = Describe("the release's version", func() {
	It("is the chart's appVersion in the Makefile, the default image tag and the manager's --version", func() {
		version := chartAppVersion()
		Expect(makeVar("VERSION")).To(Equal(version))
		Expect(makeVar("IMG")).To(HaveSuffix(":" + version))

		head, err := exec.Command("git", "-C", repoRoot(), "rev-parse", "HEAD").Output()
		Expect(err).NotTo(HaveOccurred())
		binary := filepath.Join(GinkgoT().TempDir(), "manager")
		runMake("build-manager", "MANAGER_BIN="+binary)
		out, err := exec.Command(binary, "--version").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(MatchRegexp(`^manager %s \(commit %s(-dirty)?, built \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, go\S+, \S+/\S+\)\n$`,
			regexp.QuoteMeta(version), strings.TrimSpace(string(head))))
	})

	It("is the manager's first log line", func() {
		m := startManager("--nango-url", "api.nango.dev")
		Expect(m.exitCode(30 * time.Second)).To(Equal(1))
		first, _, _ := strings.Cut(m.output.String(), "\n")
		Expect(first).To(And(ContainSubstring(`"version"`), ContainSubstring(`"commit"`), ContainSubstring(`"date"`)))
	})
})
