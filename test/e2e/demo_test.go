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
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The README's first command, as CI runs it: `make demo` without waiting for Ctrl-C.
var _ = Describe("make demo", func() {
	It("runs to completion, shows the records arriving by webhook, and leaves nothing behind", func(ctx SpecContext) {
		demo := exec.CommandContext(ctx, "go", "run", "./hack/demo", "-non-interactive")
		demo.Dir = filepath.Join("..", "..")
		out, err := demo.CombinedOutput()
		GinkgoWriter.Printf("%s", out)
		Expect(err).NotTo(HaveOccurred(), "the demo failed:\n%s", out)

		Expect(string(out)).To(ContainSubstring("nangosync.sync.nango.dev/contacts condition met"))
		Expect(string(out)).To(MatchRegexp(`contacts\s+acme-corp\s+hubspot\s+Contact\s+sqlite/contacts\s+3000\s`))
		Expect(string(out)).To(ContainSubstring("rows in the sink after:  3025"))
		Expect(string(out)).To(MatchRegexp(`contacts\s+acme-corp\s+hubspot\s+Contact\s+sqlite/contacts\s+3025\s`))

		logs := regexp.MustCompile(`(?m)^Logs: (\S+)$`).FindStringSubmatch(string(out))
		Expect(logs).To(HaveLen(2))
		_, err = os.Stat(logs[1])
		Expect(os.IsNotExist(err)).To(BeTrue(), "the demo left %s behind", logs[1])
	}, SpecTimeout(5*time.Minute))
})
