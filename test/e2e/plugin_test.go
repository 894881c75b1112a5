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
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/controller"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// The kubectl plugin, built from ./cmd/kubectl-nango and put on PATH, run through the real
// kubectl's plugin mechanism (`kubectl nango …`) against the manager and the API server.
var _ = Describe("kubectl nango", Ordered, func() {
	const (
		namespace = "plugin"
		name      = "acme-deals"
	)
	var (
		emulator *nangoEmulator
		deals    nangosim.ModelRef
		pathDir  string
	)

	// kubectlWith runs `kubectl args…` with the plugin on PATH and KUBECONFIG set to config
	// (kubectl takes no flag before a plugin's name), and answers its output and exit code.
	kubectlWith := func(config string, args ...string) (string, int) {
		GinkgoHelper()
		cmd := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+config, "PATH="+pathDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return out.String(), exitErr.ExitCode()
		}
		Expect(err).NotTo(HaveOccurred())
		return out.String(), 0
	}
	kubectl := func(args ...string) (string, int) {
		GinkgoHelper()
		return kubectlWith(kubeconfig, args...)
	}
	nango := func(args ...string) string {
		GinkgoHelper()
		out, code := kubectl(append([]string{"nango"}, args...)...)
		Expect(code).To(Equal(0), "kubectl nango %s:\n%s", strings.Join(args, " "), out)
		return out
	}
	addDeals := func(from, n int) {
		GinkgoHelper()
		records := make([]json.RawMessage, n)
		for i := range records {
			records[i] = fmt.Appendf(nil, `{"id":"deal-%05d","amount":%d}`, from+i, i)
		}
		_, err := emulator.sim.UpsertRecords(deals, records)
		Expect(err).NotTo(HaveOccurred())
	}

	BeforeAll(func(ctx SpecContext) {
		pathDir = GinkgoT().TempDir()
		runMake("build-plugin", "PLUGIN_BIN="+filepath.Join(pathDir, "kubectl-nango"))

		emulator = startNangoEmulator()
		deals = nangosim.ModelRef{
			ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "salesforce", ConnectionID: "acme-corp"},
			Model:         "Deal",
		}
		Expect(emulator.sim.CreateConnection(deals.ConnectionRef, "salesforce")).To(Succeed())
		addDeals(0, 100)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "nango"},
			StringData: map[string]string{"secretKey": emulator.env.SecretKey},
		})).To(Succeed())
		startManager("--nango-url", emulator.url)
		Expect(k8sClient.Create(ctx, &syncv1alpha1.NangoSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: syncv1alpha1.NangoSyncSpec{
				ConnectionID:      deals.ConnectionID,
				ProviderConfigKey: deals.ProviderConfigKey,
				Model:             deals.Model,
				Interval:          &metav1.Duration{Duration: time.Hour},
				Sink: syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{
					Path: filepath.Join(pathDir, "nango.db"), Table: "deals",
				}},
			},
		})).To(Succeed())
		out, code := kubectl("wait", "-n", namespace, "--for=condition=Ready", "nangosync/"+name, "--timeout=60s")
		Expect(code).To(Equal(0), out)
	})

	It("reads like kubectl's own --help, and says its version", func() {
		help := nango("--help")
		Expect(help).To(ContainSubstring("kubectl nango [command]"))
		Expect(help).To(ContainSubstring("--kubeconfig string"))
		Expect(help).To(ContainSubstring("-n, --namespace string"))
		for _, command := range []string{"sync", "resync", "suspend", "resume", "status"} {
			Expect(help).To(MatchRegexp(`(?m)^\s+%s\s+\S`, command))
		}
		Expect(nango("sync", "--help")).To(And(ContainSubstring("kubectl nango sync NAME [flags]"), ContainSubstring("Exit status:")))
		Expect(nango("--version")).To(HavePrefix("kubectl nango version " + chartAppVersion()))
	})

	It("shows the status of the namespace's NangoSyncs", func() {
		Expect(nango("status", "-n", namespace)).To(MatchRegexp(
			`(?m)^NAME\s+READY\s+REASON\s+RECORDS\s+NEWEST RECORD\s+LAST CHANGE\s+SET\s+MESSAGE\n%s\s+True\s+Synced\s+100\s+\S+ ago\s+\S+ ago\s+-\s`, name))
		Expect(nango("status", "-A")).To(MatchRegexp(`(?m)^%s\s+%s\s+True\s`, namespace, name))
		out, code := kubectlWith(filepath.Join(pathDir, "no-such-kubeconfig"), "nango", "status", "-A", "--kubeconfig", kubeconfig)
		Expect(code).To(Equal(0), "kubectl's --kubeconfig, after the plugin's name:\n%s", out)
		out, code = kubectl("nango", "status", "missing", "-n", namespace)
		Expect(code).To(Equal(1))
		Expect(out).To(ContainSubstring(`"missing" not found in namespace "plugin"`))
	})

	It("syncs now and prints the records it brought", func() {
		addDeals(100, 7)
		Expect(nango("sync", name, "-n", namespace)).To(Equal(
			fmt.Sprintf("nangosync/%s synced: 7 records brought (7 added, 0 updated, 0 deleted), 107 in all\n", name)))
	})

	It("reads everything again on resync", func(ctx SpecContext) {
		Expect(nango("resync", name, "-n", namespace, "--timeout=1m")).To(HavePrefix("nangosync/" + name + " resynced: "))
		nsync := &syncv1alpha1.NangoSync{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, nsync)).To(Succeed())
		Expect(nsync.Status.LastHandledResyncAt).To(Equal(nsync.Annotations[syncv1alpha1.ResyncAnnotation]))
		// The counts start over with the resync and come back to every record.
		Eventually(func() string { return nango("status", name, "-n", namespace) }).WithContext(ctx).
			WithTimeout(30 * time.Second).Should(MatchRegexp(`%s\s+True\s+Synced\s+107\s`, name))
	}, SpecTimeout(time.Minute))

	It("suspends and resumes, and a sync of a suspended NangoSync times out with exit status 3", func(ctx SpecContext) {
		Expect(nango("suspend", name, "-n", namespace)).To(Equal("nangosync/" + name + " suspended\n"))
		Eventually(func() string {
			return nango("status", name, "-n", namespace)
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(MatchRegexp(`%s\s+False\s+Suspended\s`, name))

		out, code := kubectl("nango", "sync", name, "-n", namespace, "--timeout=2s")
		Expect(code).To(Equal(3), out)
		Expect(out).To(ContainSubstring("not handled within 2s (Ready=False Suspended"))

		Expect(nango("resume", name, "-n", namespace)).To(Equal("nangosync/" + name + " resumed\n"))
		Expect(nango("sync", name, "-n", namespace)).To(ContainSubstring("synced:"))
	}, SpecTimeout(time.Minute))

	It("refuses a wrong command line with exit status 2", func() {
		out, code := kubectl("nango", "sync", "-n", namespace)
		Expect(code).To(Equal(2), out)
		Expect(out).To(ContainSubstring("takes exactly one NAME"))
		_, code = kubectl("nango", "sync", name, "--no-such-flag")
		Expect(code).To(Equal(2))
	})

	It("suspends and resumes every NangoSync of a set, refuses to suspend one of them alone, and shows them", func(ctx SpecContext) {
		const setName = "crm"
		children := make([]string, 0, 2)
		for _, conn := range []string{"plugin-umbrella", "plugin-initech"} {
			ref := nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: conn}
			Expect(emulator.sim.CreateConnectionWith(nangosim.NewConnection{ConnectionRef: ref, Provider: "hubspot",
				Tags: map[string]string{"plan": "pro"}})).To(Succeed())
			_, err := emulator.sim.UpsertRecords(nangosim.ModelRef{ConnectionRef: ref, Model: "Contact"},
				[]json.RawMessage{json.RawMessage(`{"id":"c-1"}`), json.RawMessage(`{"id":"c-2"}`)})
			Expect(err).NotTo(HaveOccurred())
			children = append(children, controller.SyncName(setName, "hubspot", conn, "Contact", ""))
		}
		set := &syncv1alpha1.NangoSyncSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: setName},
			Spec: syncv1alpha1.NangoSyncSetSpec{
				ProviderConfigKey: "hubspot",
				Selector:          &syncv1alpha1.ConnectionSelector{Tags: map[string]string{"plan": "pro"}},
				Models:            []syncv1alpha1.SyncSetModel{{Model: "Contact"}},
				DiscoveryInterval: &metav1.Duration{Duration: time.Hour},
				Template: syncv1alpha1.NangoSyncTemplate{Spec: syncv1alpha1.NangoSyncTemplateSpec{
					Interval: &metav1.Duration{Duration: time.Hour},
					Sink: syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{
						Path: filepath.Join(pathDir, "set.db"), Table: "contacts",
					}},
				}},
			},
		}
		Expect(k8sClient.Create(ctx, set)).To(Succeed())
		// envtest runs no garbage collector: the children go with the set by hand.
		DeferCleanup(func(ctx SpecContext) {
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, set))).To(Succeed())
			Expect(k8sClient.DeleteAllOf(ctx, &syncv1alpha1.NangoSync{}, client.InNamespace(namespace),
				client.MatchingLabels{syncv1alpha1.SyncSetLabel: setName})).To(Succeed())
		})
		status := func() string { return nango("status", "-n", namespace) }
		setRow := func(ready, reason, syncsReady string) string {
			return fmt.Sprintf(`(?m)^%s\s+%s\s+%s\s+2\s+%s\s+\S+ ago\s`, setName, ready, reason, syncsReady)
		}
		childRows := func(ready, reason string) types.GomegaMatcher {
			all := make([]types.GomegaMatcher, 0, len(children))
			for _, child := range children {
				all = append(all, MatchRegexp(`(?m)^%s\s+%s\s+%s\s.*\s%s\s`, child, ready, reason, setName))
			}
			return And(all...)
		}

		By("showing the set, READY x/y, and each NangoSync with its set")
		Eventually(status).WithContext(ctx).WithTimeout(time.Minute).Should(And(
			MatchRegexp(`(?m)^NANGOSYNCSET\s+READY\s+REASON\s+CONNECTIONS\s+SYNCS READY\s+LAST DISCOVERY\s+MESSAGE$`),
			MatchRegexp(setRow("True", "Discovered", "2/2")),
			childRows("True", "Synced")))

		By("suspending the set: its template's suspend reaches every NangoSync")
		Expect(nango("suspend", "set/"+setName, "-n", namespace)).To(Equal("nangosyncset/" + setName +
			" suspended: every NangoSync it owns follows (spec.template.spec.suspend=true)\n"))
		Eventually(status).WithContext(ctx).WithTimeout(30 * time.Second).Should(And(
			MatchRegexp(setRow("True", "Discovered", "0/2")), childRows("False", "Suspended")))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), set)).To(Succeed())
		Expect(set.Spec.Template.Spec.Suspend).To(BeTrue())
		Expect(set.Spec.Suspend).To(BeFalse(), "discovery goes on")

		By("refusing to suspend or resume one NangoSync of the set, naming the set")
		for _, verb := range []string{"suspend", "resume"} {
			out, code := kubectl("nango", verb, children[0], "-n", namespace)
			Expect(code).NotTo(Equal(0), out)
			Expect(out).To(ContainSubstring("nangosync/%s belongs to NangoSyncSet %s", children[0], setName))
			Expect(out).To(ContainSubstring("run `kubectl nango %s set/%s -n %s`", verb, setName, namespace))
		}
		child := &syncv1alpha1.NangoSync{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: children[0]}, child)).To(Succeed())
		Expect(child.Spec.Suspend).To(BeTrue(), "the refused resume changed nothing")

		By("resuming the set")
		Expect(nango("resume", "set/"+setName, "-n", namespace)).To(Equal("nangosyncset/" + setName +
			" resumed: every NangoSync it owns follows (spec.template.spec.suspend=false)\n"))
		Eventually(status).WithContext(ctx).WithTimeout(30 * time.Second).Should(And(
			MatchRegexp(setRow("True", "Discovered", "2/2")), childRows("True", "Synced")))
	}, SpecTimeout(3*time.Minute))

	It("takes kubectl's --context, after the plugin's name, from a kubeconfig with two contexts", func() {
		config, err := clientcmd.LoadFromFile(kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		envtestContext := config.CurrentContext
		Expect(config.Contexts).To(HaveKey(envtestContext))
		// The current context is a cluster nothing listens on: only --context reaches envtest.
		config.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
		config.Contexts["nowhere"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: config.Contexts[envtestContext].AuthInfo}
		config.CurrentContext = "nowhere"
		twoContexts := filepath.Join(pathDir, "two-contexts.kubeconfig")
		Expect(clientcmd.WriteToFile(*config, twoContexts)).To(Succeed())

		out, code := kubectlWith(twoContexts, "nango", "status", name, "-n", namespace, "--request-timeout=5s")
		Expect(code).NotTo(Equal(0), "the current context is nowhere:\n%s", out)
		Expect(out).To(ContainSubstring("127.0.0.1:1"))

		out, code = kubectlWith(twoContexts, "nango", "status", name, "-n", namespace, "--context", envtestContext)
		Expect(code).To(Equal(0), out)
		Expect(out).To(MatchRegexp(`(?m)^%s\s+True\s+Synced\s`, name))
		out, code = kubectlWith(twoContexts, "nango", "sync", name, "-n", namespace, "--context="+envtestContext)
		Expect(code).To(Equal(0), out)
		Expect(out).To(HavePrefix("nangosync/" + name + " synced: "))
	})
})
