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
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// The flow the README gives a user, with the real kubectl: apply a sample, wait for it,
// watch the record count, pull the levers, read the events.
var _ = Describe("a user with kubectl", Ordered, func() {
	const (
		namespace = "userflow"
		name      = "acme-salesforce-deals"
	)
	var (
		emulator *nangoEmulator
		deals    nangosim.ModelRef
	)

	kubectl := func(args ...string) string {
		GinkgoHelper()
		cmd := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"),
			append([]string{"--kubeconfig", kubeconfig, "--namespace", namespace}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		Expect(cmd.Run()).To(Succeed(), "kubectl %s:\n%s", strings.Join(args, " "), out.String())
		return out.String()
	}
	recordsTotal := func() string {
		return kubectl("get", "nangosync", name, "-o", "jsonpath={.status.records.total}")
	}
	addDeals := func(from, n int) {
		GinkgoHelper()
		records := make([]json.RawMessage, n)
		for i := range records {
			records[i] = fmt.Appendf(nil, `{"id":"deal-%05d","name":"Deal %d","amount":%d}`, from+i, from+i, 1000*i)
		}
		_, err := emulator.sim.UpsertRecords(deals, records)
		Expect(err).NotTo(HaveOccurred())
	}

	BeforeAll(func(ctx SpecContext) {
		emulator = startNangoEmulator()
		deals = nangosim.ModelRef{
			ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "salesforce", ConnectionID: "acme-corp"},
			Model:         "Deal",
		}
		Expect(emulator.sim.CreateConnection(deals.ConnectionRef, "salesforce")).To(Succeed())
		addDeals(0, 500)

		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "nango"},
			StringData: map[string]string{"secretKey": emulator.env.SecretKey},
		})).To(Succeed())
		startManager("--nango-url", emulator.url)
	})

	It("applies the SQLite sample and waits for it to be Ready", func() {
		sample, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "sync_v1alpha1_nangosync_sqlite.yaml"))
		Expect(err).NotTo(HaveOccurred())
		// The sample's file lives on the operator's volume; here the operator runs locally.
		manifest := strings.ReplaceAll(string(sample), "/data/nango.db", filepath.Join(GinkgoT().TempDir(), "nango.db"))
		cmd := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"),
			"--kubeconfig", kubeconfig, "--namespace", namespace, "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(manifest)
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring("nangosync.sync.nango.dev/" + name + " created"))

		Expect(kubectl("wait", "--for=condition=Ready", "nangosync/"+name, "--timeout=60s")).
			To(ContainSubstring("condition met"))
		Expect(kubectl("get", "nangosyncs")).To(MatchRegexp(
			`(?m)^%s\s+acme-corp\s+salesforce\s+Deal\s+sqlite/deals\s+500\s+\S+\s+True\s`, name))
	})

	It("syncs now on sync.nango.dev/requested-at", func() {
		addDeals(500, 10)
		value := fmt.Sprint(time.Now().UnixNano())
		kubectl("annotate", "nangosync", name, syncv1alpha1.RequestedAtAnnotation+"="+value, "--overwrite")
		Eventually(recordsTotal).WithTimeout(30 * time.Second).Should(Equal("510"))
		Expect(kubectl("get", "nangosync", name, "-o", "jsonpath={.status.lastHandledRequestedAt}")).To(Equal(value))
	})

	It("reads everything again on sync.nango.dev/resync", func() {
		cursorBefore := kubectl("get", "nangosync", name, "-o", "jsonpath={.status.cursor}")
		value := fmt.Sprint(time.Now().UnixNano())
		kubectl("annotate", "nangosync", name, syncv1alpha1.ResyncAnnotation+"="+value, "--overwrite")
		Eventually(func() string {
			return kubectl("get", "nangosync", name, "-o", "jsonpath={.status.lastHandledResyncAt}")
		}).WithTimeout(30 * time.Second).Should(Equal(value))
		// The counts start over with the resync and come back to every record.
		Eventually(recordsTotal).WithTimeout(30 * time.Second).Should(Equal("510"))
		Expect(kubectl("get", "nangosync", name, "-o", "jsonpath={.status.cursor}")).To(Equal(cursorBefore),
			"reading everything again ends at the same last record")
	})

	It("tells its story in kubectl describe", func() {
		Eventually(func() string { return kubectl("describe", "nangosync", name) }).
			WithTimeout(30 * time.Second).Should(And(
			MatchRegexp(`Normal\s+FirstSync\s+.*First sync complete: 500 records written to sqlite/deals`),
			MatchRegexp(`Normal\s+Resync\s+.*reading every record again`),
		))
	})
})
