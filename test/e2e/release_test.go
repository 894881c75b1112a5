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
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/macho"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/nango-operator/nango-operator/internal/image"
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
		Expect(m.exitCode()).To(Equal(1))
		first, _, _ := strings.Cut(m.output.String(), "\n")
		Expect(first).To(And(ContainSubstring(`"version"`), ContainSubstring(`"commit"`), ContainSubstring(`"date"`)))
	})
})

var _ = Describe("make release", func() {
	It("writes the image, the chart, the CRD bundle and the SBOM, and their checksums", func() {
		dist := filepath.Join(GinkgoT().TempDir(), "dist")
		// The host's platform only for the image, and the host's and one cross-compiled one for
		// the plugin, to keep make test fast; the release itself builds them all.
		version := chartAppVersion()
		runMake("release", "RELEASE_DIR="+dist, "PLATFORMS=linux/"+runtime.GOARCH,
			"PLUGIN_PLATFORMS=linux/"+runtime.GOARCH+" darwin/arm64")
		sums := string(mustRead(filepath.Join(dist, "SHA256SUMS")))
		want := []string{
			"image/nango-operator.tar",
			"nango-operator-" + chartVersion() + ".tgz",
			"nango-operator-crds.yaml",
			"nango-operator-manager.cdx.json",
			"kubectl-nango_" + version + "_darwin_arm64.tar.gz",
			"kubectl-nango_" + version + "_linux_" + runtime.GOARCH + ".tar.gz",
		}
		lines := strings.Split(strings.TrimSpace(sums), "\n")
		Expect(lines).To(HaveLen(len(want)), sums)
		for i, line := range lines {
			sum, file, ok := strings.Cut(line, "  ")
			Expect(ok).To(BeTrue(), line)
			Expect(file).To(Equal(want[i]))
			digest := sha256.Sum256(mustRead(filepath.Join(dist, file)))
			Expect(sum).To(Equal(hex.EncodeToString(digest[:])), "the checksum of %s", file)
		}

		crds := parseManifests(string(mustRead(filepath.Join(dist, "nango-operator-crds.yaml"))))
		Expect(kindsOf(crds)).To(HaveKeyWithValue("CustomResourceDefinition", len(mustGlob(filepath.Join(repoRoot(), "config", "crd", "bases", "*.yaml")))))

		var sbom struct {
			BOMFormat string `json:"bomFormat"`
			Metadata  struct {
				Component struct {
					Name string `json:"name"`
				} `json:"component"`
			} `json:"metadata"`
			Components []struct {
				Name string `json:"name"`
			} `json:"components"`
		}
		Expect(json.Unmarshal(mustRead(filepath.Join(dist, "nango-operator-manager.cdx.json")), &sbom)).To(Succeed())
		Expect(sbom.BOMFormat).To(Equal("CycloneDX"))
		Expect(sbom.Metadata.Component.Name).To(Equal("github.com/nango-operator/nango-operator"))
		Expect(sbom.Components).To(ContainElement(HaveField("Name", "sigs.k8s.io/controller-runtime")))

		index, err := image.ReadLayout(filepath.Join(dist, "image", "oci"))
		Expect(err).NotTo(HaveOccurred())
		Expect(index.Digest()).NotTo(BeZero())

		expectPluginArchives(dist, version, sums)
	})

	It("lists the kubectl plugin's platforms in the krew template, with a checksum placeholder each", func() {
		template := string(mustRead(filepath.Join(repoRoot(), "hack", "krew", "nango.yaml")))
		selectors := regexp.MustCompile(`matchLabels: \{os: (\w+), arch: (\w+)\}`).FindAllStringSubmatch(template, -1)
		platforms := make([]string, 0, len(selectors))
		for _, m := range selectors {
			platforms = append(platforms, m[1]+"/"+m[2])
			Expect(template).To(ContainSubstring("kubectl-nango_${VERSION}_%s_%s.tar.gz\n      sha256: ${SHA256_%s_%s}",
				m[1], m[2], strings.ToUpper(m[1]), strings.ToUpper(m[2])))
		}
		Expect(platforms).To(ConsistOf(strings.Fields(makeVar("PLUGIN_PLATFORMS"))))
	})
})

// expectPluginArchives checks the kubectl plugin's archives of a release: each holds the
// binary alone, built for its platform (the host's runs and says its version), and the krew
// manifest names each with its checksum from SHA256SUMS.
func expectPluginArchives(dist, version, sums string) {
	GinkgoHelper()
	manifest := string(mustRead(filepath.Join(dist, "kubectl-nango.krew.yaml")))
	Expect(manifest).To(ContainSubstring("version: v" + version))
	for _, line := range strings.Split(strings.TrimSpace(sums), "\n") {
		sum, file, _ := strings.Cut(line, "  ")
		platform, isPlugin := strings.CutPrefix(file, "kubectl-nango_"+version+"_")
		if !isPlugin {
			continue
		}
		goos, goarch, _ := strings.Cut(strings.TrimSuffix(platform, ".tar.gz"), "_")
		Expect(manifest).To(ContainSubstring("/%s\n      sha256: %s\n", file, sum), "the krew manifest's entry of %s", file)

		binary := extractPlugin(filepath.Join(dist, file))
		if goos == runtime.GOOS && goarch == runtime.GOARCH {
			out, err := exec.Command(binary, "--version").CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			Expect(string(out)).To(ContainSubstring(version))
			continue
		}
		Expect(goos).To(Equal("darwin"), "a cross-compiled archive the test does not know: %s", file)
		exe, err := macho.Open(binary)
		Expect(err).NotTo(HaveOccurred(), "%s holds no Mach-O binary", file)
		Expect(exe.Cpu).To(Equal(map[string]macho.Cpu{"arm64": macho.CpuArm64, "amd64": macho.CpuAmd64}[goarch]))
		Expect(exe.Close()).To(Succeed())
	}
}

// extractPlugin answers the path of the binary an archive of the plugin holds, its one entry.
func extractPlugin(archive string) string {
	GinkgoHelper()
	f, err := os.Open(archive)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = f.Close() }()
	gz, err := gzip.NewReader(f)
	Expect(err).NotTo(HaveOccurred())
	tr := tar.NewReader(gz)
	header, err := tr.Next()
	Expect(err).NotTo(HaveOccurred())
	Expect(header.Name).To(Equal("kubectl-nango"))
	Expect(header.Mode&0o111).NotTo(BeZero(), "kubectl-nango is not executable")
	binary := filepath.Join(GinkgoT().TempDir(), "kubectl-nango")
	content, err := io.ReadAll(tr)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(binary, content, 0o755)).To(Succeed())
	_, err = tr.Next()
	Expect(err).To(MatchError(io.EOF), "%s holds more than kubectl-nango", archive)
	return binary
}

// mustGlob answers the files a pattern matches.
func mustGlob(pattern string) []string {
	GinkgoHelper()
	paths, err := filepath.Glob(pattern)
	Expect(err).NotTo(HaveOccurred())
	return paths
}
