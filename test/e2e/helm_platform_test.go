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
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	celschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// The chart as a platform team runs it: as a subchart of an umbrella chart, on the oldest
// Kubernetes it declares, with RBAC folded into the built-in roles, `helm test`, SQLite on a
// volume, metrics over a real certificate, an egress policy and a values table that matches
// values.yaml. Every rendering is dry-run against a real API server.
var _ = Describe("the Helm chart, as platform teams use it", Ordered, func() {
	var cluster *chartCluster

	// dryRun renders the chart with args, applies it with a server-side dry run and answers
	// the objects, every one of which the API server must accept.
	dryRun := func(args ...string) []*unstructured.Unstructured {
		GinkgoHelper()
		rendered := cluster.helm(append([]string{"template", release, cluster.chartDir, "-n", releaseNamespace}, args...)...)
		objects := parseManifests(rendered)
		out := cluster.kubectl(rendered, "apply", "--dry-run=server", "-f", "-")
		Expect(strings.Count(out, "(server dry run)")).To(Equal(len(objects)), out)
		return objects
	}

	BeforeAll(func(ctx SpecContext) {
		cluster = startChartCluster()
		Expect(cluster.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}})).To(Succeed())
		cluster.installStubCRDs()
	})

	It("is a dependency of an umbrella chart, which may set global values", func() {
		umbrella := filepath.Join(cluster.dir, "platform")
		Expect(os.MkdirAll(filepath.Join(umbrella, "templates"), 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(umbrella, "Chart.yaml"), fmt.Appendf(nil, `apiVersion: v2
name: platform
version: 1.0.0
dependencies:
  - name: nango-operator
    version: %s
    repository: file://%s
`, chartVersion(), cluster.chartDir), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(umbrella, "values.yaml"), []byte(`global:
  imageRegistry: registry.example.com
  team: platform
nango-operator:
  replicaCount: 2
  metrics:
    serviceMonitor: {enabled: true}
`), 0o644)).To(Succeed())
		cluster.helm("dependency", "build", umbrella)
		Expect(cluster.helm("lint", "--strict", umbrella)).To(ContainSubstring("0 chart(s) failed"))
		rendered := cluster.helm("template", "platform", umbrella, "-n", releaseNamespace)
		objects := parseManifests(rendered)
		out := cluster.kubectl(rendered, "apply", "--dry-run=server", "-f", "-")
		Expect(strings.Count(out, "(server dry run)")).To(Equal(len(objects)), out)
		Expect(nested(only(objects, "Deployment", "platform-nango-operator"), "spec", "replicas")).To(BeEquivalentTo(2))
		only(objects, "ServiceMonitor", "platform-nango-operator")

		By("still refusing an unknown value of its own inside the umbrella")
		out = cluster.helmFails("template", "platform", umbrella, "--set", "nango-operator.replicas=2")
		Expect(out).To(ContainSubstring("additional properties 'replicas' not allowed"))
	})

	It("declares the oldest Kubernetes whose CEL has every function its CRDs' rules call", func() {
		chart := readYAML(filepath.Join(cluster.chartDir, "Chart.yaml"))
		kubeVersion, _ := chart["kubeVersion"].(string)
		match := regexp.MustCompile(`^>=1\.(\d+)\.0-0$`).FindStringSubmatch(kubeVersion)
		Expect(match).NotTo(BeNil(), "kubeVersion %q is not of the form >=1.N.0-0", kubeVersion)
		var minor uint
		_, err := fmt.Sscan(match[1], &minor)
		Expect(err).NotTo(HaveOccurred())
		// x-kubernetes-validations (and transition rules) are on by default from 1.25.
		Expect(minor).To(BeNumerically(">=", 25))

		By("compiling every rule of every CRD with the CEL environment of that release")
		crds, err := filepath.Glob(filepath.Join(cluster.repoRoot, "config", "crd", "bases", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(crds).NotTo(BeEmpty())
		rules := 0
		for _, path := range crds {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			Expect(yaml.Unmarshal(mustRead(path), crd)).To(Succeed())
			for _, v := range crd.Spec.Versions {
				n, errs := compileCELRules(v.Schema.OpenAPIV3Schema, minor)
				Expect(errs).To(BeEmpty(), "%s %s: rules that Kubernetes 1.%d cannot compile: raise kubeVersion", crd.Name, v.Name, minor)
				rules += n
			}
		}
		Expect(rules).To(BeNumerically(">", 10))

		By("telling apart a rule that needs a newer Kubernetes (the format library of 1.31)")
		newer := &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"name": {Type: "string", MaxLength: ptr.To[int64](63), XValidations: apiextensionsv1.ValidationRules{
				{Rule: "!format.dns1123Label().validate(self).hasValue()"},
			}},
		}}
		_, errs := compileCELRules(newer, minor)
		Expect(errs).To(HaveLen(1))
		_, errs = compileCELRules(newer, 31)
		Expect(errs).To(BeEmpty())

		By("letting helm refuse an older cluster")
		Expect(cluster.helmFails("template", cluster.chartDir, "--kube-version", fmt.Sprintf("1.%d.0", minor-1))).
			To(ContainSubstring("incompatible with Kubernetes"))
		cluster.helm("template", cluster.chartDir, "--kube-version", fmt.Sprintf("1.%d.0", minor))
	})

	It("folds viewer and editor roles for every kind into the built-in view, edit and admin roles", func(ctx SpecContext) {
		objects := dryRun()
		viewer := only(objects, "ClusterRole", release+"-viewer")
		editor := only(objects, "ClusterRole", release+"-editor")
		Expect(viewer.GetLabels()).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-view", "true"))
		Expect(editor.GetLabels()).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-edit", "true"))
		Expect(editor.GetLabels()).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-admin", "true"))

		By("granting, through each, what it says on every kind of config/crd/bases, and no more")
		cluster.helm("install", release, cluster.chartDir, "-n", releaseNamespace)
		for _, role := range []string{"viewer", "editor"} {
			Expect(cluster.client.Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: "team-" + role},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release + "-" + role},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "team-" + role}},
			})).To(Succeed())
		}
		crds, err := filepath.Glob(filepath.Join(cluster.repoRoot, "config", "crd", "bases", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		for _, path := range crds {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			Expect(yaml.Unmarshal(mustRead(path), crd)).To(Succeed())
			resource := crd.Spec.Names.Plural + "." + crd.Spec.Group
			for _, verb := range []string{"get", "list", "watch"} {
				Expect(cluster.canI("team-viewer", verb, resource, "-n", releaseNamespace)).To(BeTrue(), "viewer %s %s", verb, resource)
				Expect(cluster.canI("team-editor", verb, resource, "-n", releaseNamespace)).To(BeTrue(), "editor %s %s", verb, resource)
			}
			for _, verb := range []string{"create", "update", "patch", "delete", "deletecollection"} {
				Expect(cluster.canI("team-viewer", verb, resource, "-n", releaseNamespace)).To(BeFalse(), "viewer %s %s", verb, resource)
				Expect(cluster.canI("team-editor", verb, resource, "-n", releaseNamespace)).To(BeTrue(), "editor %s %s", verb, resource)
			}
			Expect(cluster.canI("team-editor", "update", resource, "--subresource=status", "-n", releaseNamespace)).
				To(BeFalse(), "the status is the operator's")
			Expect(cluster.canI("team-editor", "list", resource, "-n", otherNamespace)).To(BeFalse(), "bound in one namespace only")
		}
		Expect(cluster.canI("team-editor", "get", "secrets", "-n", releaseNamespace)).To(BeFalse())
		cluster.helm("uninstall", release, "-n", releaseNamespace)
	})

	It("has a helm test hook whose Pod probes /readyz with the manager image, which it runs as the manager would", func() {
		objects := dryRun()
		pod := only(objects, "Pod", release+"-test-readyz")
		Expect(pod.GetAnnotations()).To(HaveKeyWithValue("helm.sh/hook", "test"))
		Expect(pod.GetLabels()).NotTo(HaveKeyWithValue("app.kubernetes.io/name", "nango-operator"), "no Service of the release selects it")
		containers := nested(pod, "spec", "containers").([]any)
		Expect(containers).To(HaveLen(1))
		container := containers[0].(map[string]any)
		deployment := only(objects, "Deployment", release)
		Expect(container["image"]).To(Equal(managerContainer(deployment)["image"]))
		Expect(container["securityContext"]).To(Equal(managerContainer(deployment)["securityContext"]))
		health := only(objects, "Service", release+"-health")
		Expect(nested(health, "spec", "selector")).To(Equal(nested(deployment, "spec", "selector", "matchLabels")))
		Expect(container["args"]).To(Equal([]any{"--probe=http://" + release + "-health." + releaseNamespace + ".svc:8081/readyz"}))

		By("running the test Pod's command against a running manager: exit 0 once it is ready")
		m := startManager()
		args := []string{strings.Replace(container["args"].([]any)[0].(string),
			release+"-health."+releaseNamespace+".svc:8081", m.probeAddr, 1)}
		Eventually(func() error { return exec.Command(managerBinary, args...).Run() }).
			WithTimeout(30*time.Second).Should(Succeed(), "the manager's output:\n%s", m.output)
		out, err := exec.Command(managerBinary, args...).CombinedOutput()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(ContainSubstring("200 OK"))

		By("and exit 1, saying why, when nothing answers")
		out, err = exec.Command(managerBinary, "--probe=http://"+freeAddr()+"/readyz").CombinedOutput()
		Expect(err).To(HaveOccurred())
		Expect(string(out)).To(ContainSubstring("connection refused"))
	})

	It("keeps SQLite on a PersistentVolumeClaim: one replica, Recreate, a volume UID 65532 can write", func() {
		objects := dryRun("-f", filepath.Join(cluster.chartDir, "ci", "sqlite-persistence-values.yaml"))
		deployment := only(objects, "Deployment", release)
		Expect(nested(deployment, "spec", "strategy")).To(Equal(map[string]any{"type": "Recreate"}))
		Expect(nested(deployment, "spec", "template", "spec", "securityContext", "fsGroup")).To(BeEquivalentTo(65532))
		claim := only(objects, "PersistentVolumeClaim", release+"-sqlite")
		Expect(nested(claim, "spec", "resources", "requests", "storage")).To(Equal("5Gi"))
		Expect(nested(claim, "spec", "accessModes")).To(Equal([]any{"ReadWriteOnce"}))
		Expect(claim.GetAnnotations()).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
		Expect(managerContainer(deployment)["volumeMounts"]).To(ContainElement(
			map[string]any{"name": "sqlite", "mountPath": "/var/lib/nango-operator"}))
		Expect(nested(deployment, "spec", "template", "spec", "volumes")).To(ContainElement(
			map[string]any{"name": "sqlite", "persistentVolumeClaim": map[string]any{"claimName": release + "-sqlite"}}))

		By("mounting an existing claim instead of creating one")
		objects = parseManifests(cluster.helm("template", release, cluster.chartDir, "--set", "persistence.enabled=true",
			"--set", "persistence.existingClaim=shared-sqlite"))
		Expect(kindsOf(objects)).NotTo(HaveKey("PersistentVolumeClaim"))
		Expect(nested(only(objects, "Deployment", release), "spec", "template", "spec", "volumes")).To(ContainElement(
			map[string]any{"name": "sqlite", "persistentVolumeClaim": map[string]any{"claimName": "shared-sqlite"}}))

		By("refusing more than one replica, saying why")
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "persistence.enabled=true", "--set", "replicaCount=2")).
			To(ContainSubstring("an SQLite file has one writer: set replicaCount to 1, not 2"))
		By("and keeping the default rolling update without persistence")
		objects = parseManifests(cluster.helm("template", release, cluster.chartDir))
		Expect(only(objects, "Deployment", release).Object["spec"]).NotTo(HaveKey("strategy"))
	})

	It("serves metrics with a cert-manager certificate, which the ServiceMonitor verifies, scraping with a token from a Secret", func() {
		objects := dryRun("-f", filepath.Join(cluster.chartDir, "ci", "all-features-values.yaml"))
		certificate := only(objects, "Certificate", release+"-metrics")
		Expect(nested(certificate, "spec", "secretName")).To(Equal(release + "-metrics-cert"))
		Expect(nested(certificate, "spec", "issuerRef")).To(Equal(map[string]any{
			"name": "internal-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}))
		Expect(nested(certificate, "spec", "dnsNames")).To(ContainElement(release + "-metrics." + releaseNamespace + ".svc"))

		deployment := only(objects, "Deployment", release)
		certPath := "/var/run/secrets/nango-operator/metrics-cert"
		Expect(containerArgs(deployment)).To(ContainElement("--metrics-cert-path=" + certPath))
		Expect(managerContainer(deployment)["volumeMounts"]).To(ContainElement(
			map[string]any{"name": "metrics-cert", "mountPath": certPath, "readOnly": true}))
		Expect(nested(deployment, "spec", "template", "spec", "volumes")).To(ContainElement(
			map[string]any{"name": "metrics-cert", "secret": map[string]any{"secretName": release + "-metrics-cert"}}))

		endpoints := nested(only(objects, "ServiceMonitor", release), "spec", "endpoints").([]any)
		Expect(endpoints).To(HaveLen(1))
		endpoint := endpoints[0].(map[string]any)
		Expect(endpoint).NotTo(HaveKey("bearerTokenFile"))
		Expect(endpoint["authorization"]).To(Equal(map[string]any{"type": "Bearer",
			"credentials": map[string]any{"name": release + "-metrics-scraper", "key": "token"}}))
		Expect(endpoint["tlsConfig"]).To(Equal(map[string]any{
			"ca":         map[string]any{"secret": map[string]any{"name": release + "-metrics-cert", "key": "ca.crt"}},
			"serverName": release + "-metrics." + releaseNamespace + ".svc",
		}))

		By("creating the scraper's identity: a ServiceAccount bound to the metrics reader, and its token Secret")
		token := only(objects, "Secret", release+"-metrics-scraper")
		Expect(token.Object["type"]).To(Equal("kubernetes.io/service-account-token"))
		Expect(token.GetAnnotations()).To(HaveKeyWithValue("kubernetes.io/service-account.name", release+"-metrics-scraper"))
		only(objects, "ServiceAccount", release+"-metrics-scraper")
		binding := only(objects, "ClusterRoleBinding", release+"-metrics-scraper")
		Expect(nested(binding, "roleRef", "name")).To(Equal(release + "-metrics-reader"))

		By("with a Secret and a token of the user's own instead")
		objects = dryRun("-f", filepath.Join(cluster.chartDir, "ci", "sqlite-persistence-values.yaml"))
		Expect(kindsOf(objects)).NotTo(HaveKey("Certificate"))
		Expect(nested(only(objects, "Deployment", release), "spec", "template", "spec", "volumes")).To(ContainElement(
			map[string]any{"name": "metrics-cert", "secret": map[string]any{"secretName": "nango-operator-metrics-tls"}}))
		endpoint = nested(only(objects, "ServiceMonitor", release), "spec", "endpoints").([]any)[0].(map[string]any)
		Expect(endpoint["authorization"]).To(HaveKeyWithValue("credentials", map[string]any{"name": "prometheus-scrape-token", "key": "token"}))
		Expect(endpoint["tlsConfig"]).To(HaveKeyWithValue("ca", map[string]any{
			"secret": map[string]any{"name": "nango-operator-metrics-tls", "key": "ca.crt"}}))
		for _, u := range objects {
			Expect(u.GetName()).NotTo(HaveSuffix("-metrics-scraper"), "%s %s", u.GetKind(), u.GetName())
		}

		By("skipping verification only of the self-signed certificate, which no CA signs")
		objects = parseManifests(cluster.helm("template", release, cluster.chartDir, "--set", "metrics.serviceMonitor.enabled=true"))
		endpoint = nested(only(objects, "ServiceMonitor", release), "spec", "endpoints").([]any)[0].(map[string]any)
		Expect(endpoint["tlsConfig"]).To(Equal(map[string]any{"insecureSkipVerify": true}))
		Expect(containerArgs(only(objects, "Deployment", release))).NotTo(ContainElement(HavePrefix("--metrics-cert-path")))

		By("refusing cert-manager without an issuer")
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "metrics.tls.certManager.enabled=true")).
			To(ContainSubstring("needs metrics.tls.certManager.issuerRef.name"))
	})

	It("restricts egress to the API server, DNS, Nango and the sinks when asked to", func() {
		objects := dryRun("-f", filepath.Join(cluster.chartDir, "ci", "all-features-values.yaml"))
		policy := only(objects, "NetworkPolicy", release)
		Expect(nested(policy, "spec", "policyTypes")).To(Equal([]any{"Ingress", "Egress"}))
		egress := nested(policy, "spec", "egress").([]any)
		tcp := func(port int) map[string]any { return map[string]any{"port": float64(port), "protocol": "TCP"} }
		ipBlocks := func(cidrs ...string) []any {
			out := make([]any, 0, len(cidrs))
			for _, c := range cidrs {
				out = append(out, map[string]any{"ipBlock": map[string]any{"cidr": c}})
			}
			return out
		}
		Expect(egress).To(ConsistOf(
			// DNS
			HaveKeyWithValue("ports", []any{map[string]any{"port": float64(53), "protocol": "UDP"}, tcp(53)}),
			map[string]any{"to": ipBlocks("172.20.0.10/32", "172.20.0.11/32"), "ports": []any{tcp(6443)}},
			map[string]any{"to": ipBlocks("0.0.0.0/0"), "ports": []any{tcp(443)}},
			map[string]any{"to": ipBlocks("10.20.0.0/16"), "ports": []any{tcp(5432), tcp(8443)}},
			HaveKeyWithValue("ports", []any{map[string]any{"port": float64(8080)}}),
		))

		By("leaving egress open by default")
		objects = parseManifests(cluster.helm("template", release, cluster.chartDir, "--set", "networkPolicy.enabled=true"))
		Expect(nested(only(objects, "NetworkPolicy", release), "spec", "policyTypes")).To(Equal([]any{"Ingress"}))

		By("refusing an egress policy that would cut the manager off the API server")
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "networkPolicy.enabled=true",
			"--set", "networkPolicy.egress.enabled=true")).To(ContainSubstring("needs networkPolicy.egress.apiServer"))
		Expect(cluster.helmFails("template", cluster.chartDir, "--set", "networkPolicy.enabled=true",
			"--set", "networkPolicy.egress.enabled=true", "--set", "networkPolicy.egress.apiServer[0].ports[0]=443")).
			To(ContainSubstring("cidrs"))
	})

	It("has a README whose values table is what helm-docs makes of values.yaml", func() {
		helmDocs := os.Getenv("HELM_DOCS")
		if helmDocs == "" {
			helmDocs = filepath.Join(cluster.repoRoot, "bin", "helm-docs")
		}
		Expect(helmDocs).To(BeAnExistingFile(), "helm-docs is missing: run `make helm-docs`, which builds it into ./bin")
		out, err := cluster.run("", helmDocs, "--dry-run", "--chart-search-root", cluster.chartDir, "--log-level", "warning")
		Expect(err).NotTo(HaveOccurred(), out)
		readme := string(mustRead(filepath.Join(cluster.chartDir, "README.md")))
		Expect(strings.TrimSpace(out)).To(Equal(strings.TrimSpace(readme)), "the chart's README is stale: run `make helm-readme`")
		for _, value := range []string{"persistence.enabled", "metrics.tls.certManager.issuerRef", "networkPolicy.egress.apiServer", "global"} {
			Expect(readme).To(ContainSubstring("| " + value + " |"))
		}
	})
})

// compileCELRules compiles every x-kubernetes-validations rule of a CRD version's schema
// with the CEL environment of Kubernetes 1.<minor>, as its API server would for a new CRD,
// and answers how many rules there were and the errors of those it could not compile.
func compileCELRules(schema *apiextensionsv1.JSONSchemaProps, minor uint) (int, []string) {
	GinkgoHelper()
	internal := &apiextensions.JSONSchemaProps{}
	Expect(apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(schema, internal, nil)).To(Succeed())
	root, err := structuralschema.NewStructural(internal)
	Expect(err).NotTo(HaveOccurred())
	envSet := environment.MustBaseEnvSet(version.MajorMinor(1, minor))
	rules := 0
	var errs []string
	var walk func(s *structuralschema.Structural, path string, isRoot bool)
	walk = func(s *structuralschema.Structural, path string, isRoot bool) {
		if len(s.XValidations) > 0 {
			compiled := s
			if isRoot {
				// A root rule sees apiVersion, kind and metadata.name, as on the API server.
				compiled = model.WithTypeAndObjectMeta(s)
			}
			declType := model.SchemaDeclType(compiled, isRoot || s.XEmbeddedResource)
			results, err := celschema.Compile(compiled, declType, celconfig.PerCallLimit, envSet, celschema.NewExpressionsEnvLoader())
			Expect(err).NotTo(HaveOccurred(), path)
			for i, r := range results {
				rules++
				if r.Error != nil {
					errs = append(errs, fmt.Sprintf("%s: %q: %s", path, s.XValidations[i].Rule, r.Error.Detail))
				}
			}
		}
		for name, property := range s.Properties {
			walk(&property, path+"."+name, false)
		}
		if s.Items != nil {
			walk(s.Items, path+"[*]", false)
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Structural != nil {
			walk(s.AdditionalProperties.Structural, path+"[*]", false)
		}
	}
	walk(root, "", true)
	return rules, errs
}
