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
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// What `make deploy` applies, and the samples a user applies next, against a real API server.
var _ = Describe("kustomize", Ordered, func() {
	var cluster *chartCluster
	var kustomize string

	BeforeAll(func() {
		cluster = startChartCluster()
		kustomize = filepath.Join(cluster.repoRoot, "bin", "kustomize")
		Expect(kustomize).To(BeAnExistingFile(), "kustomize is missing: run `make kustomize`")
	})

	It("config/default installs the CRDs, RBAC, the manager and its Services", func() {
		manifests, err := cluster.run("", kustomize, "build", "config/default")
		Expect(err).NotTo(HaveOccurred(), manifests)
		kinds := kindsOf(parseManifests(manifests))
		Expect(kinds).To(HaveKeyWithValue("CustomResourceDefinition", 2), "NangoSync and NangoSyncSet")
		Expect(kinds).To(HaveKeyWithValue("Deployment", 1))
		Expect(kinds).To(HaveKeyWithValue("Service", 2), "metrics and the webhook receiver")

		out := cluster.kubectl(manifests, "apply", "-f", "-")
		Expect(out).To(ContainSubstring("deployment.apps/nango-operator-controller-manager created"))
		Expect(out).To(ContainSubstring("service/nango-operator-webhook-receiver created"))
		cluster.kubectl("", "wait", "--for=condition=Established", "crd/nangosyncs.sync.nango.dev", "crd/nangosyncsets.sync.nango.dev")
	})

	It("config/default with ../prometheus, ../certmanager and the certificate patch enabled serves metrics with cert-manager's certificate, which the ServiceMonitor verifies", func() {
		// The cluster has no Prometheus Operator or cert-manager: their CRDs, as stubs.
		cluster.installStubCRDs()
		cluster.kubectl(issuerCRD, "apply", "-f", "-")
		cluster.kubectl("", "wait", "--for=condition=Established", "--timeout=30s", "crd/issuers.cert-manager.io")

		manifests, err := cluster.run("", kustomize, "build", enableCommentedOut(cluster.repoRoot))
		Expect(err).NotTo(HaveOccurred(), manifests)
		objects := parseManifests(manifests)

		issuer := only(objects, "Issuer", "nango-operator-selfsigned-issuer")
		certificate := only(objects, "Certificate", "nango-operator-metrics-certs")
		Expect(nested(certificate, "spec", "issuerRef", "name")).To(Equal(issuer.GetName()))
		secretName := nested(certificate, "spec", "secretName")
		service := only(objects, "Service", "nango-operator-controller-manager-metrics-service")
		Expect(nested(certificate, "spec", "dnsNames")).To(ContainElement(service.GetName() + "." + service.GetNamespace() + ".svc"))

		deployment := only(objects, "Deployment", "nango-operator-controller-manager")
		container := nested(deployment, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
		Expect(container["args"]).To(ContainElement("--metrics-cert-path=/var/run/secrets/nango-operator/metrics-cert"))
		Expect(container["volumeMounts"]).To(ContainElement(HaveKeyWithValue("mountPath", "/var/run/secrets/nango-operator/metrics-cert")))
		Expect(nested(deployment, "spec", "template", "spec", "volumes")).To(ContainElement(
			HaveKeyWithValue("secret", HaveKeyWithValue("secretName", secretName))))

		endpoint := nested(only(objects, "ServiceMonitor", "nango-operator-controller-manager-metrics-monitor"),
			"spec", "endpoints").([]any)[0].(map[string]any)
		Expect(endpoint).NotTo(HaveKey("bearerTokenFile"))
		Expect(endpoint["tlsConfig"]).NotTo(HaveKey("insecureSkipVerify"))
		Expect(endpoint["tlsConfig"]).To(HaveKeyWithValue("ca", HaveKeyWithValue("secret", HaveKeyWithValue("name", secretName))))
		Expect(endpoint["tlsConfig"]).To(HaveKeyWithValue("serverName", service.GetName()+"."+service.GetNamespace()+".svc"))
		token := only(objects, "Secret", "nango-operator-metrics-scraper-token")
		Expect(endpoint["authorization"]).To(HaveKeyWithValue("credentials", HaveKeyWithValue("name", token.GetName())))
		scraper := only(objects, "ServiceAccount", "nango-operator-metrics-scraper")
		Expect(token.GetAnnotations()).To(HaveKeyWithValue("kubernetes.io/service-account.name", scraper.GetName()))
		binding := only(objects, "ClusterRoleBinding", "nango-operator-metrics-scraper")
		Expect(nested(binding, "roleRef", "name")).To(Equal("nango-operator-metrics-reader"))

		out := cluster.kubectl(manifests, "apply", "--dry-run=server", "-f", "-")
		Expect(out).To(ContainSubstring("issuer.cert-manager.io/nango-operator-selfsigned-issuer created (server dry run)"))
		Expect(out).To(ContainSubstring("certificate.cert-manager.io/nango-operator-metrics-certs created (server dry run)"))
		Expect(out).To(ContainSubstring("servicemonitor.monitoring.coreos.com/nango-operator-controller-manager-metrics-monitor created (server dry run)"))
		Expect(out).To(ContainSubstring("deployment.apps/nango-operator-controller-manager configured (server dry run)"))
	})

	It("accepts the samples, one for each sink, one with history and field rules, and a NangoSyncSet", func() {
		samples, err := cluster.run("", kustomize, "build", "config/samples")
		Expect(err).NotTo(HaveOccurred(), samples)
		out := cluster.kubectl(samples, "apply", "--dry-run=server", "-n", "default", "-f", "-")
		Expect(out).To(ContainSubstring("nangosync.sync.nango.dev/acme-hubspot-contacts created (server dry run)"))
		Expect(out).To(ContainSubstring("nangosync.sync.nango.dev/acme-salesforce-deals created (server dry run)"))
		Expect(out).To(ContainSubstring("nangosync.sync.nango.dev/acme-github-issues created (server dry run)"))
		Expect(out).To(ContainSubstring("nangosync.sync.nango.dev/acme-hubspot-contacts-kafka created (server dry run)"))
		Expect(out).To(ContainSubstring("nangosync.sync.nango.dev/globex-hubspot-contacts created (server dry run)"))
		Expect(out).To(ContainSubstring("nangosyncset.sync.nango.dev/hubspot-pro created (server dry run)"))
	})
})

// enableCommentedOut copies config/ into a directory of its own with the commented-out
// parts of config/default enabled, as a user would: ../prometheus, ../certmanager and
// cert_metrics_manager_patch.yaml. It answers the copy's config/default.
func enableCommentedOut(repoRoot string) string {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	Expect(os.CopyFS(filepath.Join(dir, "config"), os.DirFS(filepath.Join(repoRoot, "config")))).To(Succeed())
	path := filepath.Join(dir, "config", "default", "kustomization.yaml")
	kustomization := string(mustRead(path))
	for _, line := range []string{"- ../prometheus", "- ../certmanager", "- path: cert_metrics_manager_patch.yaml"} {
		Expect(kustomization).To(ContainSubstring("#"+line), "config/default/kustomization.yaml lacks #%s", line)
		kustomization = strings.Replace(kustomization, "#"+line, line, 1)
	}
	before, after, found := strings.Cut(kustomization, "- path: cert_metrics_manager_patch.yaml\n")
	Expect(found).To(BeTrue())
	after = strings.Replace(after, "#  target:\n#    kind: Deployment", "  target:\n    kind: Deployment", 1)
	Expect(os.WriteFile(path, []byte(before+"- path: cert_metrics_manager_patch.yaml\n"+after), 0o600)).To(Succeed())
	return filepath.Join(dir, "config", "default")
}

// issuerCRD is a stub of cert-manager's Issuer CRD, enough for the API server to accept one.
const issuerCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: issuers.cert-manager.io
spec:
  group: cert-manager.io
  names:
    kind: Issuer
    listKind: IssuerList
    plural: issuers
    singular: issuer
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`
