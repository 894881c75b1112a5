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
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

const (
	release          = "nango-operator"
	releaseNamespace = "nango-system"
	// serviceAccount is the user the manager pod runs as: the chart's ServiceAccount.
	serviceAccount = "system:serviceaccount:" + releaseNamespace + ":" + release
	leaseName      = "nango-operator.sync.nango.dev"
	// otherNamespace holds NangoSyncs of a team other than the operator's.
	otherNamespace = "crm"
	// syncedRecords are synced first; webhookRecords come after, announced by a webhook.
	syncedRecords  = 25
	webhookRecords = 5
)

// The chart, driven by the real helm and kubectl binaries against an API server of its own:
// it must render what the API server accepts, install, upgrade and uninstall cleanly, and its
// RBAC must be enough for the real manager to sync, and no more.
var _ = Describe("the Helm chart", Ordered, func() {
	var (
		cluster     *chartCluster
		sim         *nangosim.Sim
		nangoServer *httptest.Server
		installFile string
		upgradeFile string
		allFeatures string
	)

	BeforeAll(func(ctx SpecContext) {
		cluster = startChartCluster()
		allFeatures = filepath.Join(cluster.chartDir, "ci", "all-features-values.yaml")

		// One webhook attempt, as the receiver's answer is what the test checks.
		sim = nangosim.New(nangosim.Options{WebhookRetryWaits: []time.Duration{}, WebhookTimeout: 10 * time.Second})
		nangoServer = httptest.NewServer(sim.Handler())
		DeferCleanup(nangoServer.Close)
		env, ok := sim.Environment(nangosim.DefaultEnvironment)
		Expect(ok).To(BeTrue())

		// The chart creates both Secrets, so that a sync proves them right.
		installFile = cluster.writeFile("install-values.yaml", fmt.Sprintf(`
nango:
  apiKeySecret: {create: true, value: %q}
webhook:
  signingKeySecret: {create: true, keys: {current: %q}}
  ingress:
    enabled: true
    hosts: [nango-hooks.example.com]
    tls: [{secretName: nango-hooks-tls, hosts: [nango-hooks.example.com]}]
`, env.SecretKey, env.SigningKey))
		// The upgrade points the operator at the emulator, runs two replicas (so leader
		// election), drops the Ingress and adds a PodDisruptionBudget.
		upgradeFile = cluster.writeFile("upgrade-values.yaml", fmt.Sprintf(`
replicaCount: 2
nango: {url: %q}
logLevel: debug
webhook: {ingress: {enabled: false}}
podDisruptionBudget: {enabled: true}
`, nangoServer.URL))

		for _, ns := range []string{releaseNamespace, otherNamespace} {
			Expect(cluster.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
	})

	It("carries the CRDs and the manager's rules exactly as controller-gen generates them", func() {
		By("regenerating the chart's copies into a scratch directory")
		scratch := GinkgoT().TempDir()
		out, err := cluster.run("", "bash", filepath.Join(cluster.repoRoot, "hack", "helm-sync.sh"), "all", scratch)
		Expect(err).NotTo(HaveOccurred(), out)
		generated, err := filepath.Glob(filepath.Join(scratch, "templates", "*", "*"))
		Expect(err).NotTo(HaveOccurred())
		Expect(generated).To(HaveLen(3), "two CRDs and the manager's rules")
		inChart, err := filepath.Glob(filepath.Join(cluster.chartDir, "templates", "crd", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(inChart).To(HaveLen(2), "templates/crd holds a file no CRD of config/crd/bases generates")
		for _, path := range generated {
			rel, err := filepath.Rel(scratch, path)
			Expect(err).NotTo(HaveOccurred())
			want, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred())
			got, err := os.ReadFile(filepath.Join(cluster.chartDir, rel))
			Expect(err).NotTo(HaveOccurred(), "run `make helm-crds helm-rbac`")
			Expect(string(got)).To(Equal(string(want)), "%s drifted from config/: run `make helm-crds helm-rbac`", rel)
		}

		By("rendering them with the same spec and rules as config/")
		objects := parseManifests(cluster.helm("template", release, cluster.chartDir, "-n", releaseNamespace))
		for _, plural := range []string{"nangosyncs", "nangosyncsets"} {
			crd := only(objects, "CustomResourceDefinition", plural+".sync.nango.dev")
			base := readYAML(filepath.Join(cluster.repoRoot, "config", "crd", "bases", "sync.nango.dev_"+plural+".yaml"))
			Expect(crd.Object["spec"]).To(Equal(base["spec"]))
			Expect(crd.GetAnnotations()).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
		}
		rules := readYAML(filepath.Join(cluster.repoRoot, "config", "rbac", "role.yaml"))["rules"]
		role := only(objects, "ClusterRole", release+"-manager")
		Expect(role.Object["rules"]).To(Equal(rules))

		By("rendering the same rules as a Role in each namespace of watchNamespaces, and no ClusterRole")
		objects = parseManifests(cluster.helm("template", release, cluster.chartDir, "-n", releaseNamespace,
			"--set", "watchNamespaces={team-a,team-b}"))
		for _, u := range objects {
			Expect(u.GetKind() == "ClusterRole" && u.GetName() == release+"-manager").To(BeFalse(), "a ClusterRole for the manager")
			if u.GetKind() == "Role" && u.GetName() == release+"-manager" {
				Expect(u.GetNamespace()).To(BeElementOf("team-a", "team-b"))
				Expect(u.Object["rules"]).To(Equal(rules))
			}
		}
	})

	It("passes helm lint --strict, with default values and with every optional feature on", func() {
		Expect(cluster.helm("lint", "--strict", cluster.chartDir)).To(ContainSubstring("0 chart(s) failed"))
		Expect(cluster.helm("lint", "--strict", cluster.chartDir, "-f", allFeatures)).To(ContainSubstring("0 chart(s) failed"))
		Expect(cluster.helm("lint", "--strict", cluster.chartDir, "-f", filepath.Join(cluster.chartDir, "ci", "sqlite-persistence-values.yaml"))).
			To(ContainSubstring("0 chart(s) failed"))
	})

	It("refuses values its schema does not know or that cannot work", func() {
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "replicas=2")).
			To(ContainSubstring("additional properties 'replicas' not allowed"))
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "webhook.ingress.enable=true")).
			To(ContainSubstring("additional properties 'enable' not allowed"))
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "nango.apiKeySecret.create=true")).
			To(ContainSubstring("apiKeySecret"))
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "webhook.signingKeySecret.create=true")).
			To(ContainSubstring("signingKeySecret"))
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "metrics.enabled=false",
			"--set", "metrics.serviceMonitor.enabled=true")).To(ContainSubstring("needs metrics.enabled"))
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "watchNamespaces={Team_A}")).
			To(ContainSubstring("watchNamespaces"))
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "watchLabelSelector=sharding.nango.dev/key=a",
			"--set", "replicaCount=2")).To(ContainSubstring("give it a leaderElection.id of its own"))
	})

	It("passes the Nango health interval and the retention risk share as values of their own", func() {
		args := func(set ...string) []string {
			rendered := cluster.helm(append([]string{"template", release, cluster.chartDir, "-n", releaseNamespace}, set...)...)
			return containerArgs(only(parseManifests(rendered), "Deployment", release))
		}
		Expect(args()).To(ContainElements("--nango-health-interval=5m", "--retention-risk-share=0.5"),
			"the defaults are the manager's own")
		Expect(args("--set", "nango.healthInterval=90s", "--set", "retentionRiskShare=0.25")).
			To(ContainElements("--nango-health-interval=90s", "--retention-risk-share=0.25"))
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "nango.healthInterval=often")).
			To(ContainSubstring("healthInterval"))
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "retentionRiskShare=1.5")).
			To(ContainSubstring("retentionRiskShare"))
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "retentionRiskShare=0")).
			To(ContainSubstring("retentionRiskShare"))
	})

	It("renders manifests the API server accepts, with default values and with every optional feature on", func() {
		By("installing ServiceMonitor, PrometheusRule and Certificate CRDs, so that the dry run validates those objects too")
		cluster.installStubCRDs()

		By("rendering and dry-running the default values")
		defaults := cluster.helm("template", release, cluster.chartDir, "-n", releaseNamespace)
		objects := parseManifests(defaults)
		Expect(kindsOf(objects)).To(Equal(map[string]int{
			"CustomResourceDefinition": 2, "ServiceAccount": 1, "ClusterRole": 5, "ClusterRoleBinding": 2,
			"Service": 3, "Deployment": 1, "Pod": 1,
		}))
		out := cluster.kubectl(defaults, "apply", "--dry-run=server", "-f", "-")
		Expect(strings.Count(out, "(server dry run)")).To(Equal(len(objects)), out)

		deployment := only(objects, "Deployment", release)
		Expect(nested(deployment, "spec", "replicas")).To(BeEquivalentTo(1))
		Expect(containerArgs(deployment)).NotTo(ContainElement("--leader-elect"), "leader election with one replica")
		Expect(nested(deployment, "spec", "template", "spec", "securityContext")).To(Equal(map[string]any{
			"runAsNonRoot": true, "seccompProfile": map[string]any{"type": "RuntimeDefault"},
			"fsGroup": float64(65532), "fsGroupChangePolicy": "OnRootMismatch",
		}))
		manager := managerContainer(deployment)
		Expect(manager["securityContext"]).To(Equal(map[string]any{
			"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
			"capabilities": map[string]any{"drop": []any{"ALL"}},
		}))
		Expect(manager).To(HaveKey("livenessProbe"))
		Expect(manager).To(HaveKey("readinessProbe"))
		Expect(manager).To(HaveKey("resources"))
		Expect(containerArgs(deployment)).To(ContainElements(
			"--metrics-bind-address=:8443",
			"--webhook-bind-address=:8090",
			"--webhook-signing-secret=nango-webhook",
			"--webhook-signing-secret-namespace="+releaseNamespace,
		))
		webhookService := only(objects, "Service", release+"-webhook")
		Expect(nested(webhookService, "spec", "ports")).To(ConsistOf(HaveKeyWithValue("port", BeEquivalentTo(8090))))

		By("rendering and dry-running every optional feature")
		everything := cluster.helm("template", release, cluster.chartDir, "-n", releaseNamespace, "-f", allFeatures)
		objects = parseManifests(everything)
		Expect(kindsOf(objects)).To(Equal(map[string]int{
			"CustomResourceDefinition": 2, "ServiceAccount": 2, "ClusterRole": 5, "ClusterRoleBinding": 3,
			"Role": 1, "RoleBinding": 1, "Service": 3, "Deployment": 1, "Secret": 3, "Ingress": 1,
			"ServiceMonitor": 1, "PrometheusRule": 1, "ConfigMap": 1, "Certificate": 1,
			"PodDisruptionBudget": 1, "NetworkPolicy": 1, "Pod": 1,
		}))
		out = cluster.kubectl(everything, "apply", "--dry-run=server", "-f", "-")
		Expect(strings.Count(out, "(server dry run)")).To(Equal(len(objects)), out)
		Expect(containerArgs(only(objects, "Deployment", release))).To(ContainElements(
			"--leader-elect", "--leader-election-namespace="+releaseNamespace, "--webhook-allow-legacy-signature",
			"--allowed-nango-urls=https://nango.internal.example.com:3003,http://nango.nango.svc:8080/tenant-a",
			"--sqlite-root=/var/lib/nango-operator/sqlite", "--require-secret-opt-in"))
		ingress := only(objects, "Ingress", release+"-webhook")
		Expect(nested(ingress, "spec", "rules")).To(ConsistOf(HaveKeyWithValue("http", HaveKeyWithValue("paths",
			ConsistOf(HaveKeyWithValue("path", "/webhooks/nango"))))))
		Expect(only(objects, "Secret", "nango-webhook").Object["data"]).To(HaveLen(2))

		By("refusing, in the same dry run, a ServiceMonitor field the monitoring CRD does not have")
		broken := strings.Replace(everything, "authorization:", "authorisation:", 1)
		_, err := cluster.run(broken, cluster.kubectlBin, "apply", "--dry-run=server", "-f", "-")
		Expect(err).To(HaveOccurred())
	})

	It("installs every object of the release, and tells where to point Nango's webhooks", func(ctx SpecContext) {
		out := cluster.helm("install", release, cluster.chartDir, "-n", releaseNamespace, "-f", installFile)
		Expect(out).To(ContainSubstring("https://nango-hooks.example.com/webhooks/nango"))
		Expect(out).To(ContainSubstring("it serves the NangoSyncs in " + releaseNamespace + " only"))

		objects := parseManifests(cluster.helm("get", "manifest", release, "-n", releaseNamespace))
		Expect(kindsOf(objects)).To(Equal(map[string]int{
			"CustomResourceDefinition": 2, "ServiceAccount": 1, "ClusterRole": 5, "ClusterRoleBinding": 2,
			"Service": 3, "Deployment": 1, "Secret": 2, "Ingress": 1,
		}))
		for _, u := range objects {
			Expect(cluster.exists(ctx, u)).To(BeTrue(), "%s %s", u.GetKind(), u.GetName())
		}
		secret := &corev1.Secret{}
		Expect(cluster.client.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: "nango"}, secret)).To(Succeed())
		Expect(secret.Data).To(HaveKey("secretKey"))
	})

	It("upgrades with changed values: objects added, changed and removed", func(ctx SpecContext) {
		cluster.helm("upgrade", release, cluster.chartDir, "-n", releaseNamespace, "-f", installFile, "-f", upgradeFile)
		Expect(cluster.helm("status", release, "-n", releaseNamespace)).To(ContainSubstring("REVISION: 2"))

		deployment := &unstructured.Unstructured{}
		deployment.SetAPIVersion("apps/v1")
		deployment.SetKind("Deployment")
		Expect(cluster.client.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: release}, deployment)).To(Succeed())
		Expect(nested(deployment, "spec", "replicas")).To(BeEquivalentTo(2))
		Expect(containerArgs(deployment)).To(ContainElements("--leader-elect", "--nango-url="+nangoServer.URL, "--zap-log-level=debug"))

		objects := parseManifests(cluster.helm("get", "manifest", release, "-n", releaseNamespace))
		Expect(kindsOf(objects)).To(HaveKeyWithValue("Role", 1))
		Expect(kindsOf(objects)).To(HaveKeyWithValue("PodDisruptionBudget", 1))
		Expect(kindsOf(objects)).NotTo(HaveKey("Ingress"))
		for _, u := range objects {
			Expect(cluster.exists(ctx, u)).To(BeTrue(), "%s %s", u.GetKind(), u.GetName())
		}
		ingress := &unstructured.Unstructured{}
		ingress.SetAPIVersion("networking.k8s.io/v1")
		ingress.SetKind("Ingress")
		ingress.SetNamespace(releaseNamespace)
		ingress.SetName(release + "-webhook")
		Expect(cluster.exists(ctx, ingress)).To(BeFalse(), "the upgrade left the Ingress it turned off")
	})

	It("runs the manager, as the chart's ServiceAccount with the chart's flags, through a sync end to end", func(ctx SpecContext) {
		By("seeding the emulator")
		ref := nangosim.ModelRef{
			ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "acme-corp"},
			Model:         "Contact",
		}
		Expect(sim.CreateConnection(ref.ConnectionRef, "hubspot")).To(Succeed())
		_, err := sim.SeedRecords(ref, nangosim.SeedOptions{Count: syncedRecords})
		Expect(err).NotTo(HaveOccurred())

		By("starting the manager with the installed Deployment's arguments and the ServiceAccount's rights")
		deployment := &unstructured.Unstructured{}
		deployment.SetAPIVersion("apps/v1")
		deployment.SetKind("Deployment")
		Expect(cluster.client.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: release}, deployment)).To(Succeed())
		args, addrs := withBindAddresses(containerArgs(deployment))
		Expect(addrs).To(HaveKey("--metrics-bind-address"))
		m := runManager(append([]string{"--kubeconfig", cluster.impersonatingKubeconfig(serviceAccount)}, args...))

		By("syncing a NangoSync that names neither the Nango URL nor its Secret: the chart's flags and Secret do")
		nsync := &syncv1alpha1.NangoSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: "acme-contacts"},
			Spec: syncv1alpha1.NangoSyncSpec{
				ConnectionID:      ref.ConnectionID,
				ProviderConfigKey: ref.ProviderConfigKey,
				Model:             ref.Model,
				Sink: syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{
					Path: filepath.Join(GinkgoT().TempDir(), "nango.db"), Table: "contacts",
				}},
			},
		}
		Expect(cluster.client.Create(ctx, nsync)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(cluster.client.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
			g.Expect(apimeta.IsStatusConditionTrue(nsync.Status.Conditions, syncv1alpha1.ReadyCondition)).
				To(BeTrue(), "conditions: %v", nsync.Status.Conditions)
			g.Expect(nsync.Status.Records.Total).To(BeEquivalentTo(syncedRecords))
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "the manager's output:\n%s", m.output)

		By("waking the sync early with a Nango webhook, verified with the key in the chart's Secret")
		Expect(sim.SetWebhookURL(nangosim.DefaultEnvironment, "http://"+addrs["--webhook-bind-address"]+"/webhooks/nango")).To(Succeed())
		_, err = sim.SeedRecords(ref, nangosim.SeedOptions{Count: webhookRecords, StartIndex: syncedRecords})
		Expect(err).NotTo(HaveOccurred())
		delivery, err := sim.SendSyncWebhook(ctx, nangosim.SyncWebhook{ModelRef: ref, SyncName: "contacts"})
		Expect(err).NotTo(HaveOccurred())
		Expect(delivery.StatusCode).To(BeNumerically("<", 300), "the receiver refused a webhook signed with the chart's key")
		Eventually(func(g Gomega) {
			g.Expect(cluster.client.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
			g.Expect(nsync.Status.Records.Total).To(BeEquivalentTo(syncedRecords + webhookRecords))
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(),
			"the webhook did not wake the sync (its interval is 5m); the manager's output:\n%s", m.output)

		By("refusing a webhook signed with another key")
		Expect(sim.SetSigningKey(nangosim.DefaultEnvironment, sim.NewUUID())).To(Succeed())
		delivery, err = sim.SendSyncWebhook(ctx, nangosim.SyncWebhook{ModelRef: ref, SyncName: "contacts"})
		Expect(err).NotTo(HaveOccurred())
		Expect(delivery.StatusCode).To(Equal(http.StatusUnauthorized))

		By("leading through the Lease the chart's Role allows")
		lease := &coordinationv1.Lease{}
		Expect(cluster.client.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: leaseName}, lease)).To(Succeed())
		Expect(lease.Spec.HolderIdentity).To(HaveValue(Not(BeEmpty())))

		By("serving metrics to a client bound to the chart's metrics-reader role, and to no one else")
		metricsURL := "https://" + addrs["--metrics-bind-address"] + "/metrics"
		Expect(cluster.client.Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Namespace: otherNamespace, Name: "prometheus"},
		})).To(Succeed())
		Expect(cluster.client.Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Namespace: otherNamespace, Name: "stranger"},
		})).To(Succeed())
		Expect(cluster.client.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "prometheus-nango-operator-metrics"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release + "-metrics-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: otherNamespace, Name: "prometheus"}},
		})).To(Succeed())
		prometheus := cluster.token(ctx, otherNamespace, "prometheus")
		stranger := cluster.token(ctx, otherNamespace, "stranger")
		Eventually(func() (int, error) { return scrape(metricsURL, prometheus) }).WithContext(ctx).
			WithTimeout(30*time.Second).Should(Equal(http.StatusOK), "the manager's output:\n%s", m.output)
		Expect(scrape(metricsURL, stranger)).To(Equal(http.StatusForbidden))
		Expect(scrape(metricsURL, "")).To(Equal(http.StatusUnauthorized))

		By("never being refused by the API server")
		Expect(m.output.String()).NotTo(ContainSubstring("forbidden"))
	}, SpecTimeout(2*time.Minute))

	It("grants the ServiceAccount what the manager needs and nothing more", func(ctx SpecContext) {
		By("binding exactly the rules controller-gen generated from the controller's markers")
		role := &rbacv1.ClusterRole{}
		Expect(cluster.client.Get(ctx, types.NamespacedName{Name: release + "-manager"}, role)).To(Succeed())
		want := &rbacv1.ClusterRole{}
		Expect(yaml.Unmarshal(mustRead(filepath.Join(cluster.repoRoot, "config", "rbac", "role.yaml")), want)).To(Succeed())
		Expect(role.Rules).To(Equal(want.Rules))

		allowed := [][]string{
			// Secrets are read, never written, in every namespace: each NangoSync's own
			// Secrets live in its namespace, and the manager watches Secret metadata
			// cluster-wide to wake the syncs that use a Secret when it changes.
			{"get", "secrets", "-n", otherNamespace},
			{"list", "secrets", "--all-namespaces"},
			{"watch", "secrets", "--all-namespaces"},
			{"patch", "nangosyncs.sync.nango.dev", "-n", otherNamespace},
			{"update", "nangosyncs.sync.nango.dev", "--subresource=status", "-n", otherNamespace},
			{"update", "nangosyncs.sync.nango.dev", "--subresource=finalizers", "-n", otherNamespace},
			// A NangoSyncSet's NangoSyncs are created and deleted by the operator.
			{"create", "nangosyncs.sync.nango.dev", "-n", otherNamespace},
			{"delete", "nangosyncs.sync.nango.dev", "-n", otherNamespace},
			{"watch", "nangosyncsets.sync.nango.dev", "--all-namespaces"},
			{"patch", "nangosyncsets.sync.nango.dev", "--subresource=status", "-n", otherNamespace},
			{"update", "nangosyncsets.sync.nango.dev", "--subresource=finalizers", "-n", otherNamespace},
			{"create", "events.events.k8s.io", "-n", otherNamespace},
			{"create", "leases.coordination.k8s.io", "-n", releaseNamespace},
			{"update", "leases.coordination.k8s.io/" + leaseName, "-n", releaseNamespace},
			{"create", "events", "-n", releaseNamespace},
			{"create", "tokenreviews.authentication.k8s.io"},
			{"create", "subjectaccessreviews.authorization.k8s.io"},
			// An http sink's checkpoint is a ConfigMap in its NangoSync's namespace,
			// applied server-side after each batch and deleted with the NangoSync.
			{"get", "configmaps", "-n", otherNamespace},
			{"patch", "configmaps", "-n", otherNamespace},
			{"create", "configmaps", "-n", otherNamespace},
			{"delete", "configmaps", "-n", otherNamespace},
		}
		for _, args := range allowed {
			Expect(cluster.canI(serviceAccount, args...)).To(BeTrue(), "the ServiceAccount may not %v", args)
		}
		denied := [][]string{
			{"create", "secrets", "-n", releaseNamespace},
			{"update", "secrets", "-n", otherNamespace},
			{"patch", "secrets", "-n", otherNamespace},
			{"delete", "secrets", "-n", releaseNamespace},
			{"create", "nangosyncsets.sync.nango.dev", "-n", otherNamespace},
			{"delete", "nangosyncsets.sync.nango.dev", "-n", otherNamespace},
			{"delete", "customresourcedefinitions.apiextensions.k8s.io"},
			{"create", "deployments.apps", "-n", releaseNamespace},
			{"create", "pods", "-n", releaseNamespace},
			// The checkpoints of http sinks are read one by one, never listed or watched.
			{"list", "configmaps", "-n", releaseNamespace},
			{"watch", "configmaps", "--all-namespaces"},
			{"update", "configmaps", "-n", otherNamespace},
			{"create", "leases.coordination.k8s.io", "-n", otherNamespace},
			{"update", "leases.coordination.k8s.io/another-lease", "-n", releaseNamespace},
			{"delete", "leases.coordination.k8s.io/" + leaseName, "-n", releaseNamespace},
			{"create", "events", "-n", otherNamespace},
			{"create", "clusterrolebindings.rbac.authorization.k8s.io"},
			{"escalate", "clusterroles.rbac.authorization.k8s.io"},
			{"impersonate", "serviceaccounts", "-n", releaseNamespace},
			{"get", "/metrics"},
		}
		for _, args := range denied {
			Expect(cluster.canI(serviceAccount, args...)).To(BeFalse(), "the ServiceAccount may %v", args)
		}
	})

	It("uninstalls everything but the CRD, which keeps the NangoSyncs and their status", func(ctx SpecContext) {
		objects := parseManifests(cluster.helm("get", "manifest", release, "-n", releaseNamespace))
		out := cluster.helm("uninstall", release, "-n", releaseNamespace)
		Expect(out).To(ContainSubstring("kept due to the resource policy"))
		for _, u := range objects {
			if u.GetKind() == "CustomResourceDefinition" {
				Expect(cluster.exists(ctx, u)).To(BeTrue(), "helm uninstall deleted the CRD")
				continue
			}
			Eventually(func() (bool, error) { return cluster.exists(ctx, u) }).WithContext(ctx).
				Should(BeFalse(), "%s %s outlived the release", u.GetKind(), u.GetName())
		}
		nsync := &syncv1alpha1.NangoSync{}
		Expect(cluster.client.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: "acme-contacts"}, nsync)).To(Succeed())
		Expect(nsync.Status.Records.Total).To(BeEquivalentTo(syncedRecords + webhookRecords))
	})
})

// token issues a short-lived token for a ServiceAccount, as a pod would mount it.
func (c *chartCluster) token(ctx SpecContext, namespace, name string) string {
	GinkgoHelper()
	expiry := int64(600)
	request, err := c.clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}},
		metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return request.Status.Token
}

// scrape answers the status code of a GET of the manager's metrics with a bearer token.
// The manager serves a self-signed certificate.
func scrape(url, token string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	httpClient := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // self-signed
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
