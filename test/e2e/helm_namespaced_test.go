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
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// watchedNamespace is the one namespace the namespaced release watches; otherNamespace is
// not watched.
const watchedNamespace = "team-a"

// The chart with watchNamespaces: the manager's rules come as Roles in the watched
// namespaces, and the manager, run with the chart's flags as its ServiceAccount, syncs
// there and ignores every other namespace.
var _ = Describe("the Helm chart in namespaced mode", Ordered, func() {
	var (
		cluster *chartCluster
		sim     *nangosim.Sim
		server  *httptest.Server
		values  string
	)

	BeforeAll(func(ctx SpecContext) {
		cluster = startChartCluster()
		sim = nangosim.New(nangosim.Options{WebhookRetryWaits: []time.Duration{}, WebhookTimeout: 10 * time.Second})
		server = httptest.NewServer(sim.Handler())
		DeferCleanup(server.Close)
		env, ok := sim.Environment(nangosim.DefaultEnvironment)
		Expect(ok).To(BeTrue())
		values = cluster.writeFile("namespaced-values.yaml", fmt.Sprintf(`
watchNamespaces: [%s]
nango: {url: %q}
webhook:
  signingKeySecret: {create: true, keys: {current: %q}}
`, watchedNamespace, server.URL, env.SigningKey))
		for _, ns := range []string{releaseNamespace, watchedNamespace, otherNamespace} {
			Expect(cluster.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
			Expect(cluster.client.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nango"},
				StringData: map[string]string{"secretKey": env.SecretKey},
			})).To(Succeed())
		}
	})

	It("installs Roles in the watched namespace and the release namespace, and no ClusterRole to read Secrets", func(ctx SpecContext) {
		cluster.helm("install", release, cluster.chartDir, "-n", releaseNamespace, "-f", values)
		objects := parseManifests(cluster.helm("get", "manifest", release, "-n", releaseNamespace))
		Expect(kindsOf(objects)).To(Equal(map[string]int{
			"CustomResourceDefinition": 2, "ServiceAccount": 1, "ClusterRole": 4, "ClusterRoleBinding": 1,
			"Role": 2, "RoleBinding": 2, "Service": 3, "Deployment": 1, "Secret": 1,
		}))
		Expect(only(objects, "Role", release+"-manager").GetNamespace()).To(Equal(watchedNamespace))
		Expect(only(objects, "Role", release+"-webhook-signing-key").GetNamespace()).To(Equal(releaseNamespace))
		for _, u := range objects {
			Expect(cluster.exists(ctx, u)).To(BeTrue(), "%s %s", u.GetKind(), u.GetName())
		}
		Expect(containerArgs(only(objects, "Deployment", release))).To(ContainElement("--watch-namespaces=" + watchedNamespace))
	})

	It("grants the ServiceAccount the manager's rules in the watched namespace and nothing elsewhere", func() {
		allowed := [][]string{
			{"get", "secrets", "-n", watchedNamespace},
			{"list", "secrets", "-n", watchedNamespace},
			{"watch", "secrets", "-n", watchedNamespace},
			{"patch", "nangosyncs.sync.nango.dev", "-n", watchedNamespace},
			{"update", "nangosyncs.sync.nango.dev", "--subresource=status", "-n", watchedNamespace},
			{"update", "nangosyncsets.sync.nango.dev", "--subresource=finalizers", "-n", watchedNamespace},
			{"create", "events.events.k8s.io", "-n", watchedNamespace},
			// The webhook signing Secret only, watched by name.
			{"get", "secrets/nango-webhook", "-n", releaseNamespace},
			{"list", "secrets/nango-webhook", "-n", releaseNamespace},
			{"watch", "secrets/nango-webhook", "-n", releaseNamespace},
		}
		for _, args := range allowed {
			Expect(cluster.canI(serviceAccount, args...)).To(BeTrue(), "the ServiceAccount may not %v", args)
		}
		denied := [][]string{
			{"get", "secrets", "-n", otherNamespace},
			{"list", "secrets", "--all-namespaces"},
			{"watch", "secrets", "--all-namespaces"},
			{"list", "secrets", "-n", releaseNamespace},
			{"get", "secrets/nango", "-n", releaseNamespace},
			{"update", "secrets", "-n", watchedNamespace},
			{"get", "nangosyncs.sync.nango.dev", "-n", otherNamespace},
			{"list", "nangosyncs.sync.nango.dev", "--all-namespaces"},
			{"patch", "nangosyncs.sync.nango.dev", "-n", otherNamespace},
			{"list", "nangosyncsets.sync.nango.dev", "--all-namespaces"},
			{"create", "events.events.k8s.io", "-n", otherNamespace},
			{"create", "clusterrolebindings.rbac.authorization.k8s.io"},
		}
		for _, args := range denied {
			Expect(cluster.canI(serviceAccount, args...)).To(BeFalse(), "the ServiceAccount may %v", args)
		}
		By("binding the Roles to the chart's ServiceAccount only")
		other := "system:serviceaccount:" + releaseNamespace + ":default"
		Expect(cluster.canI(other, "get", "secrets", "-n", watchedNamespace)).To(BeFalse())
	})

	It("runs the manager as the ServiceAccount with the chart's flags: syncs in the watched namespace, ignores the others", func(ctx SpecContext) {
		deployment := &unstructured.Unstructured{}
		deployment.SetAPIVersion("apps/v1")
		deployment.SetKind("Deployment")
		Expect(cluster.client.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: release}, deployment)).To(Succeed())
		args, addrs := withBindAddresses(containerArgs(deployment))
		m := runManager(append([]string{"--kubeconfig", cluster.impersonatingKubeconfig(serviceAccount)}, args...))

		ref := nangosim.ModelRef{
			ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "acme-corp"},
			Model:         "Contact",
		}
		Expect(sim.CreateConnection(ref.ConnectionRef, "hubspot")).To(Succeed())
		_, err := sim.SeedRecords(ref, nangosim.SeedOptions{Count: syncedRecords})
		Expect(err).NotTo(HaveOccurred())
		newSync := func(namespace string) *syncv1alpha1.NangoSync {
			nsync := &syncv1alpha1.NangoSync{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "acme-contacts"},
				Spec: syncv1alpha1.NangoSyncSpec{
					ConnectionID: ref.ConnectionID, ProviderConfigKey: ref.ProviderConfigKey, Model: ref.Model,
					Sink: syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{
						Path: filepath.Join(GinkgoT().TempDir(), "nango.db"), Table: "contacts",
					}},
					Interval: &metav1.Duration{Duration: time.Hour},
				},
			}
			Expect(cluster.client.Create(ctx, nsync)).To(Succeed())
			return nsync
		}
		watched, unwatched := newSync(watchedNamespace), newSync(otherNamespace)

		By("syncing the NangoSync of the watched namespace")
		Eventually(func(g Gomega) {
			g.Expect(cluster.client.Get(ctx, client.ObjectKeyFromObject(watched), watched)).To(Succeed())
			g.Expect(apimeta.IsStatusConditionTrue(watched.Status.Conditions, syncv1alpha1.ReadyCondition)).
				To(BeTrue(), "conditions: %v", watched.Status.Conditions)
			g.Expect(watched.Status.Records.Total).To(BeEquivalentTo(syncedRecords))
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "the manager's output:\n%s", m.output)

		By("waking it with a webhook verified with the signing Secret of the release namespace")
		Expect(sim.SetWebhookURL(nangosim.DefaultEnvironment, "http://"+addrs["--webhook-bind-address"]+"/webhooks/nango")).To(Succeed())
		_, err = sim.SeedRecords(ref, nangosim.SeedOptions{Count: webhookRecords, StartIndex: syncedRecords})
		Expect(err).NotTo(HaveOccurred())
		delivery, err := sim.SendSyncWebhook(ctx, nangosim.SyncWebhook{ModelRef: ref, SyncName: "contacts"})
		Expect(err).NotTo(HaveOccurred())
		Expect(delivery.StatusCode).To(Equal(http.StatusAccepted))
		Eventually(func(g Gomega) {
			g.Expect(cluster.client.Get(ctx, client.ObjectKeyFromObject(watched), watched)).To(Succeed())
			g.Expect(watched.Status.Records.Total).To(BeEquivalentTo(syncedRecords + webhookRecords))
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "the manager's output:\n%s", m.output)

		By("leaving the NangoSync of the unwatched namespace alone, webhook or not")
		Consistently(func(g Gomega) {
			g.Expect(cluster.client.Get(ctx, client.ObjectKeyFromObject(unwatched), unwatched)).To(Succeed())
			g.Expect(unwatched.Finalizers).To(BeEmpty())
			g.Expect(unwatched.Status.Conditions).To(BeEmpty())
			g.Expect(unwatched.Annotations).NotTo(HaveKey(syncv1alpha1.RequestedAtAnnotation))
		}).WithContext(ctx).WithTimeout(3 * time.Second).Should(Succeed())

		By("never being refused by the API server")
		Expect(strings.ToLower(m.output.String())).NotTo(ContainSubstring("forbidden"))
	}, SpecTimeout(2*time.Minute))
})
