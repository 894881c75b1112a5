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
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/image"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// The release as a platform team receives it, on a machine without a container engine: the
// image built by `make image`, pushed with `make image-push` to a registry (go-containerregistry's,
// in process, on loopback), the chart pushed there with `helm push` and installed from
// oci://, and the manager binary taken out of the pulled image's layer and run against the
// API server as the installed Deployment would run it. Only the kubelet and a container
// runtime are missing.
var _ = Describe("the release from an OCI registry", Ordered, func() {
	const imageRepo = "nango-operator"
	var (
		version  string
		platform = "linux/" + runtime.GOARCH
		layout   string
		built    v1.Hash
		host     string
		cluster  *chartCluster
		work     string
	)

	BeforeAll(func() {
		version = chartAppVersion()
		work = GinkgoT().TempDir()
		server := httptest.NewServer(registry.New(registry.Logger(log.New(GinkgoWriter, "registry: ", 0))))
		DeferCleanup(server.Close)
		host = strings.TrimPrefix(server.URL, "http://")
		cluster = startChartCluster()
	})

	It("builds the image twice to one digest with make image", func() {
		digests := make([]v1.Hash, 0, 2)
		for _, dir := range []string{"a", "b"} {
			imageDir := filepath.Join(work, dir)
			// The host's platform only: `make image` builds linux/arm64 too, and internal/image's
			// tests check an index of both.
			runMake("image", "PLATFORMS="+platform, "IMAGE_DIR="+imageDir)
			index, err := image.ReadLayout(filepath.Join(imageDir, "oci"))
			Expect(err).NotTo(HaveOccurred())
			digest, err := index.Digest()
			Expect(err).NotTo(HaveOccurred())
			digests = append(digests, digest)
			Expect(filepath.Join(imageDir, "nango-operator.tar")).To(BeARegularFile())
			layout = filepath.Join(imageDir, "oci")
		}
		Expect(digests[1]).To(Equal(digests[0]), "two builds of one commit")
		built = digests[0]
	})

	It("pushes the image with make image-push and the chart with helm push", func() {
		out := runMake("image-push", "IMAGE_DIR="+filepath.Dir(layout), "IMG="+host+"/"+imageRepo+":"+version)
		Expect(out).To(ContainSubstring(fmt.Sprintf("pushed %s/%s:%s@%s", host, imageRepo, version, built)))

		packaged := cluster.helm("package", cluster.chartDir, "-d", cluster.dir)
		chart := filepath.Join(cluster.dir, "nango-operator-"+chartVersion()+".tgz")
		Expect(packaged).To(ContainSubstring(chart))
		Expect(cluster.helm("push", chart, "oci://"+host+"/charts", "--plain-http")).
			To(ContainSubstring("Digest: sha256:"))
	})

	It("installs the chart from oci:// with the image pinned by the pushed digest, and runs the image's binary to a Ready NangoSync", func(ctx SpecContext) {
		sim := nangosim.New(nangosim.Options{})
		nangoServer := httptest.NewServer(sim.Handler())
		DeferCleanup(nangoServer.Close)
		env, ok := sim.Environment(nangosim.DefaultEnvironment)
		Expect(ok).To(BeTrue())
		Expect(cluster.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}})).To(Succeed())

		By("installing from oci://, pinned to the chart's version and the image's digest")
		values := cluster.writeFile("oci-values.yaml", fmt.Sprintf(`
image: {repository: %q, digest: %q}
nango:
  url: %q
  apiKeySecret: {create: true, value: %q}
webhook:
  signingKeySecret: {create: true, keys: {current: %q}}
`, host+"/"+imageRepo, built.String(), nangoServer.URL, env.SecretKey, env.SigningKey))
		cluster.helm("install", release, "oci://"+host+"/charts/nango-operator", "--version", chartVersion(),
			"--plain-http", "-n", releaseNamespace, "-f", values, "--wait=false")
		deployment := &unstructured.Unstructured{}
		deployment.SetAPIVersion("apps/v1")
		deployment.SetKind("Deployment")
		Expect(cluster.client.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: release}, deployment)).To(Succeed())
		container := managerContainer(deployment)
		Expect(container["image"]).To(Equal(host + "/" + imageRepo + "@" + built.String()))

		By("pulling the image back by that reference and reading its config")
		ref, err := name.ParseReference(container["image"].(string))
		Expect(err).NotTo(HaveOccurred())
		index, err := remote.Index(ref)
		Expect(err).NotTo(HaveOccurred())
		img := platformImage(index, platform)
		config, err := img.ConfigFile()
		Expect(err).NotTo(HaveOccurred())
		Expect(config.Config.User).To(Equal("65532:65532"))
		Expect(config.Config.Entrypoint).To(Equal([]string{"/manager"}))
		Expect(config.Config.Labels).To(HaveKeyWithValue("org.opencontainers.image.version", version))
		Expect(config.Config.Labels).To(HaveKeyWithValue("org.opencontainers.image.source", image.Source))
		Expect(config.Config.Labels).To(HaveKeyWithValue("org.opencontainers.image.licenses", "Apache-2.0"))
		Expect(config.Config.Labels).To(HaveKey("org.opencontainers.image.revision"))

		By("taking the manager out of the image's layers: no shell beside it")
		dir := GinkgoT().TempDir()
		files := extract(img, map[string]string{"manager": filepath.Join(dir, "manager")})
		Expect(files).To(ContainElements("manager", "etc/passwd", "etc/ssl/certs/ca-certificates.crt"))
		Expect(files).NotTo(ContainElement(MatchRegexp(`(^|/)(sh|bash|busybox)$`)))
		Expect(os.Chmod(filepath.Join(dir, "manager"), 0o755)).To(Succeed())
		out, err := exec.Command(filepath.Join(dir, "manager"), "--version").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(HavePrefix("manager " + version + " (commit "))

		By("running it with the Deployment's arguments, as the chart's ServiceAccount")
		ref2 := nangosim.ModelRef{
			ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: "acme-corp"},
			Model:         "Contact",
		}
		Expect(sim.CreateConnection(ref2.ConnectionRef, "hubspot")).To(Succeed())
		_, err = sim.SeedRecords(ref2, nangosim.SeedOptions{Count: 250})
		Expect(err).NotTo(HaveOccurred())
		args, _ := withBindAddresses(containerArgs(deployment))
		m := runBinary(filepath.Join(dir, "manager"),
			append([]string{"--kubeconfig", cluster.impersonatingKubeconfig(serviceAccount)}, args...))
		nsync := &syncv1alpha1.NangoSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: "from-the-image"},
			Spec: syncv1alpha1.NangoSyncSpec{
				ConnectionID:      ref2.ConnectionID,
				ProviderConfigKey: ref2.ProviderConfigKey,
				Model:             ref2.Model,
				Sink: syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{
					Path: filepath.Join(dir, "nango.db"), Table: "contacts",
				}},
			},
		}
		Expect(cluster.client.Create(ctx, nsync)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(cluster.client.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
			g.Expect(apimeta.IsStatusConditionTrue(nsync.Status.Conditions, syncv1alpha1.ReadyCondition)).
				To(BeTrue(), "conditions: %v", nsync.Status.Conditions)
			g.Expect(nsync.Status.Records.Total).To(BeEquivalentTo(250))
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "the manager's output:\n%s", m.output)
		Expect(m.output.String()).To(ContainSubstring(`"version":"` + version + `"`))
	}, SpecTimeout(3*time.Minute))
})

// chartVersion answers the chart's own version.
func chartVersion() string {
	GinkgoHelper()
	return readYAML(filepath.Join(repoRoot(), "charts", "nango-operator", "Chart.yaml"))["version"].(string)
}

// platformImage answers the image of an index for one platform.
func platformImage(index v1.ImageIndex, platform string) v1.Image {
	GinkgoHelper()
	manifest, err := index.IndexManifest()
	Expect(err).NotTo(HaveOccurred())
	for _, desc := range manifest.Manifests {
		if desc.Platform != nil && desc.Platform.String() == platform {
			img, err := index.Image(desc.Digest)
			Expect(err).NotTo(HaveOccurred())
			return img
		}
	}
	Fail("the image index has no image for " + platform)
	return nil
}

// extract lists the files of every layer of img, and writes those named in want (image path
// → local path) out of the layers.
func extract(img v1.Image, want map[string]string) []string {
	GinkgoHelper()
	layers, err := img.Layers()
	Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, l := range layers {
		rc, err := l.Uncompressed()
		Expect(err).NotTo(HaveOccurred())
		r := tar.NewReader(rc)
		for {
			h, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			Expect(err).NotTo(HaveOccurred())
			names = append(names, strings.TrimSuffix(h.Name, "/"))
			if path, ok := want[h.Name]; ok {
				contents, err := io.ReadAll(r)
				Expect(err).NotTo(HaveOccurred())
				Expect(os.WriteFile(path, contents, 0o600)).To(Succeed())
			}
		}
		Expect(rc.Close()).To(Succeed())
	}
	slices.Sort(names)
	return names
}
