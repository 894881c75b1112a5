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
	"path/filepath"

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
