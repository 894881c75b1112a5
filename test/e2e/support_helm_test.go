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
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// chartCluster is an API server of the chart tests' own, started without any CRD, so that
// `helm install` creates the NangoSync CRD itself and `helm uninstall` shows that it stays.
// The chart is driven with the real helm and kubectl binaries.
type chartCluster struct {
	env       *envtest.Environment
	client    client.Client
	clientset kubernetes.Interface
	// kubeconfig is an administrator's kubeconfig file.
	kubeconfig string
	dir        string
	repoRoot   string
	chartDir   string
	helmBin    string
	kubectlBin string
}

// startChartCluster starts the API server and checks that helm and kubectl are at hand.
// It stops at the end of the container it is called in.
func startChartCluster() *chartCluster {
	GinkgoHelper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	c := &chartCluster{
		dir:        GinkgoT().TempDir(),
		repoRoot:   root,
		chartDir:   filepath.Join(root, "charts", "nango-operator"),
		helmBin:    filepath.Join(root, "bin", "helm"),
		kubectlBin: filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"),
	}
	if h := os.Getenv("HELM"); h != "" {
		c.helmBin = h
	}
	Expect(c.helmBin).To(BeAnExistingFile(), "helm is missing: run `make helm`, which builds it into ./bin")
	Expect(c.kubectlBin).To(BeAnExistingFile(), "kubectl is missing from KUBEBUILDER_ASSETS: run `make setup-envtest`")

	c.env = &envtest.Environment{}
	cfg, err := c.env.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.env.Stop)

	c.client, err = client.New(cfg, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())
	c.clientset, err = kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())

	admin, err := c.env.AddUser(envtest.User{Name: "chart-admin", Groups: []string{"system:masters"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	contents, err := admin.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	c.kubeconfig = filepath.Join(c.dir, "admin.kubeconfig")
	Expect(os.WriteFile(c.kubeconfig, contents, 0o600)).To(Succeed())
	return c
}

// run runs a binary with the administrator's kubeconfig and Helm's state in a directory of
// the test's own, and answers its exit error and combined output.
func (c *chartCluster) run(stdin string, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = c.repoRoot
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+c.kubeconfig,
		"HELM_CACHE_HOME="+filepath.Join(c.dir, "helm", "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(c.dir, "helm", "config"),
		"HELM_DATA_HOME="+filepath.Join(c.dir, "helm", "data"),
	)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_, _ = fmt.Fprintf(GinkgoWriter, "$ %s %s\n", filepath.Base(bin), strings.Join(args, " "))
	err := cmd.Run()
	return out.String(), err
}

// helm runs helm and fails the spec unless it succeeds; it answers helm's output.
func (c *chartCluster) helm(args ...string) string {
	GinkgoHelper()
	out, err := c.run("", c.helmBin, args...)
	Expect(err).NotTo(HaveOccurred(), "helm %s:\n%s", strings.Join(args, " "), out)
	return out
}

// helmFails runs helm and fails the spec if it succeeds; it answers helm's output.
func (c *chartCluster) helmFails(args ...string) string {
	GinkgoHelper()
	out, err := c.run("", c.helmBin, args...)
	Expect(err).To(HaveOccurred(), "helm %s succeeded:\n%s", strings.Join(args, " "), out)
	return out
}

// kubectl runs kubectl with stdin and fails the spec unless it succeeds.
func (c *chartCluster) kubectl(stdin string, args ...string) string {
	GinkgoHelper()
	out, err := c.run(stdin, c.kubectlBin, args...)
	Expect(err).NotTo(HaveOccurred(), "kubectl %s:\n%s", strings.Join(args, " "), out)
	return out
}

// canI asks `kubectl auth can-i` whether user may do what args say.
func (c *chartCluster) canI(user string, args ...string) bool {
	GinkgoHelper()
	out, err := c.run("", c.kubectlBin, append([]string{"auth", "can-i", "--as", user}, args...)...)
	// The answer is the last line; warnings may come before it.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	answer := strings.TrimSpace(lines[len(lines)-1])
	switch {
	case answer == "yes" && err == nil:
		return true
	case strings.HasPrefix(answer, "no"):
		var exitErr *exec.ExitError
		Expect(errors.As(err, &exitErr)).To(BeTrue(), "kubectl auth can-i %s: %v", strings.Join(args, " "), err)
		return false
	}
	Fail(fmt.Sprintf("kubectl auth can-i %s answered neither yes nor no (%v):\n%s", strings.Join(args, " "), err, out))
	return false
}

// writeFile writes a file in the test's directory and answers its path.
func (c *chartCluster) writeFile(name, contents string) string {
	GinkgoHelper()
	path := filepath.Join(c.dir, name)
	Expect(os.WriteFile(path, []byte(contents), 0o600)).To(Succeed())
	return path
}

// impersonatingKubeconfig writes a kubeconfig that acts as user (impersonated by the
// administrator), as the manager pod would with its ServiceAccount's token.
func (c *chartCluster) impersonatingKubeconfig(user string) string {
	GinkgoHelper()
	return impersonatingKubeconfig(c.kubeconfig, c.dir, user)
}

// impersonatingKubeconfig writes into dir a copy of the administrator's kubeconfig that
// acts as user.
func impersonatingKubeconfig(kubeconfig, dir, user string) string {
	GinkgoHelper()
	config, err := clientcmd.LoadFromFile(kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	Expect(config.AuthInfos).NotTo(BeEmpty())
	for _, auth := range config.AuthInfos {
		auth.Impersonate = user
	}
	path := filepath.Join(dir, strings.NewReplacer(":", "-").Replace(user)+".kubeconfig")
	Expect(clientcmd.WriteToFile(*config, path)).To(Succeed())
	return path
}

// exists tells whether the object u names exists in the API server.
func (c *chartCluster) exists(ctx context.Context, u *unstructured.Unstructured) (bool, error) {
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(u.GroupVersionKind())
	err := c.client.Get(ctx, client.ObjectKeyFromObject(u), got)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// parseManifests splits a multi-document YAML stream into objects, skipping empty documents.
func parseManifests(manifests string) []*unstructured.Unstructured {
	GinkgoHelper()
	decoder := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objects []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := decoder.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objects
		}
		Expect(err).NotTo(HaveOccurred())
		if len(u.Object) > 0 {
			objects = append(objects, u)
		}
	}
}

// kindsOf counts the objects of each kind.
func kindsOf(objects []*unstructured.Unstructured) map[string]int {
	kinds := map[string]int{}
	for _, u := range objects {
		kinds[u.GetKind()]++
	}
	return kinds
}

// only answers the one object of kind (and name, when not empty).
func only(objects []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	GinkgoHelper()
	var found []*unstructured.Unstructured
	for _, u := range objects {
		if u.GetKind() == kind && (name == "" || u.GetName() == name) {
			found = append(found, u)
		}
	}
	Expect(found).To(HaveLen(1), "objects of kind %s named %q", kind, name)
	return found[0]
}

// nested reads a field of u, failing the spec when it is missing.
func nested(u *unstructured.Unstructured, fields ...string) any {
	GinkgoHelper()
	value, found, err := unstructured.NestedFieldNoCopy(u.Object, fields...)
	Expect(err).NotTo(HaveOccurred())
	Expect(found).To(BeTrue(), "%s %s has no %s", u.GetKind(), u.GetName(), strings.Join(fields, "."))
	return value
}

// managerContainer answers the manager container of a rendered or stored Deployment.
func managerContainer(deployment *unstructured.Unstructured) map[string]any {
	GinkgoHelper()
	containers := nested(deployment, "spec", "template", "spec", "containers").([]any)
	Expect(containers).To(HaveLen(1))
	container := containers[0].(map[string]any)
	Expect(container).To(HaveKeyWithValue("name", "manager"))
	return container
}

// containerArgs answers the manager container's arguments.
func containerArgs(deployment *unstructured.Unstructured) []string {
	GinkgoHelper()
	raw := managerContainer(deployment)["args"].([]any)
	args := make([]string, 0, len(raw))
	for _, arg := range raw {
		args = append(args, arg.(string))
	}
	return args
}

// withBindAddresses replaces the addresses the manager listens on with free loopback ones,
// so that the chart's arguments run on a shared machine. It answers the new arguments and
// the addresses by flag.
func withBindAddresses(args []string) ([]string, map[string]string) {
	GinkgoHelper()
	addrs := map[string]string{}
	out := make([]string, 0, len(args))
	for _, arg := range args {
		flag, value, _ := strings.Cut(arg, "=")
		switch flag {
		case "--health-probe-bind-address", "--webhook-bind-address", "--metrics-bind-address":
			if value != "0" {
				addrs[flag] = freeAddr()
				arg = flag + "=" + addrs[flag]
			}
		}
		out = append(out, arg)
	}
	return out, addrs
}

// serviceMonitorCRD is the part of the Prometheus Operator's ServiceMonitor CRD schema that
// the chart uses, typed as monitoring.coreos.com/v1 has it, and nothing else: with it, a
// server-side dry run (strict field validation) refuses a ServiceMonitor field that is
// misspelt, misplaced or of the wrong type.
const serviceMonitorCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names:
    kind: ServiceMonitor
    listKind: ServiceMonitorList
    plural: servicemonitors
    singular: servicemonitor
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            required: [selector]
            properties:
              endpoints:
                type: array
                items:
                  type: object
                  properties:
                    port: {type: string}
                    path: {type: string}
                    scheme: {type: string, enum: [http, https, HTTP, HTTPS]}
                    authorization:
                      type: object
                      properties:
                        type: {type: string}
                        credentials:
                          type: object
                          required: [key]
                          x-kubernetes-map-type: atomic
                          properties:
                            key: {type: string}
                            name: {type: string}
                            optional: {type: boolean}
                    interval: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                    scrapeTimeout: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                    tlsConfig:
                      type: object
                      properties:
                        insecureSkipVerify: {type: boolean}
                        serverName: {type: string}
                        ca:
                          type: object
                          properties:
                            secret:
                              type: object
                              required: [key]
                              x-kubernetes-map-type: atomic
                              properties:
                                key: {type: string}
                                name: {type: string}
                                optional: {type: boolean}
                            configMap:
                              type: object
                              required: [key]
                              x-kubernetes-map-type: atomic
                              properties:
                                key: {type: string}
                                name: {type: string}
                                optional: {type: boolean}
                        caFile: {type: string}
                        certFile: {type: string}
                        keyFile: {type: string}
              namespaceSelector:
                type: object
                properties:
                  any: {type: boolean}
                  matchNames: {type: array, items: {type: string}}
              selector:
                type: object
                x-kubernetes-map-type: atomic
                properties:
                  matchLabels: {type: object, additionalProperties: {type: string}}
                  matchExpressions:
                    type: array
                    items:
                      type: object
                      required: [key, operator]
                      properties:
                        key: {type: string}
                        operator: {type: string}
                        values: {type: array, items: {type: string}}
        required: [spec]
`

// prometheusRuleCRD is the part of the Prometheus Operator's PrometheusRule CRD schema that
// the chart's alerts use, typed as monitoring.coreos.com/v1 has it.
const prometheusRuleCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: prometheusrules.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names:
    kind: PrometheusRule
    listKind: PrometheusRuleList
    plural: prometheusrules
    singular: prometheusrule
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            properties:
              groups:
                type: array
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string, minLength: 1}
                    interval: {type: string}
                    rules:
                      type: array
                      items:
                        type: object
                        required: [expr]
                        properties:
                          alert: {type: string}
                          record: {type: string}
                          expr: {x-kubernetes-int-or-string: true}
                          for: {type: string}
                          keep_firing_for: {type: string}
                          labels: {type: object, additionalProperties: {type: string}}
                          annotations: {type: object, additionalProperties: {type: string}}
        required: [spec]
`

// certificateCRD is the part of cert-manager's Certificate CRD schema that the chart uses,
// typed as cert-manager.io/v1 has it.
const certificateCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: certificates.cert-manager.io
spec:
  group: cert-manager.io
  names:
    kind: Certificate
    listKind: CertificateList
    plural: certificates
    singular: certificate
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            required: [issuerRef, secretName]
            properties:
              secretName: {type: string}
              commonName: {type: string}
              dnsNames: {type: array, items: {type: string}}
              duration: {type: string}
              renewBefore: {type: string}
              usages: {type: array, items: {type: string, enum: [signing, digital signature, content commitment, key encipherment, key agreement, data encipherment, cert sign, crl sign, encipher only, decipher only, any, server auth, client auth, code signing, email protection, s/mime, ipsec end system, ipsec tunnel, ipsec user, timestamping, ocsp signing, microsoft sgc, netscape sgc]}}
              issuerRef:
                type: object
                required: [name]
                properties:
                  name: {type: string}
                  kind: {type: string}
                  group: {type: string}
              privateKey:
                type: object
                properties:
                  algorithm: {type: string, enum: [RSA, ECDSA, Ed25519]}
                  size: {type: integer}
                  rotationPolicy: {type: string, enum: [Never, Always]}
                  encoding: {type: string, enum: [PKCS1, PKCS8]}
        required: [spec]
`

// installStubCRDs installs the ServiceMonitor, PrometheusRule and Certificate stubs, so that
// a server-side dry run validates the chart's objects of those kinds too.
func (c *chartCluster) installStubCRDs() {
	GinkgoHelper()
	for _, crd := range []string{serviceMonitorCRD, prometheusRuleCRD, certificateCRD} {
		c.kubectl(crd, "apply", "-f", "-")
	}
	c.kubectl("", "wait", "--for=condition=Established", "--timeout=30s", "crd/servicemonitors.monitoring.coreos.com",
		"crd/prometheusrules.monitoring.coreos.com", "crd/certificates.cert-manager.io")
}

// runManager runs the manager binary with exactly args. It is killed at the end of the spec
// if it is still running.
func runManager(args []string) *manager {
	GinkgoHelper()
	return runBinary(managerBinary, args)
}

// runBinary runs a manager binary (one built for this run, or one taken out of the image)
// with args; it is killed at the end of the spec if it is still running.
func runBinary(binary string, args []string) *manager {
	GinkgoHelper()
	m := &manager{output: &syncBuffer{}, exited: make(chan struct{})}
	m.cmd = exec.Command(binary, args...)
	m.cmd.Stdout, m.cmd.Stderr = m.output, m.output
	Expect(m.cmd.Start()).To(Succeed())
	go func() {
		m.exitErr = m.cmd.Wait()
		close(m.exited)
	}()
	DeferCleanup(func() {
		select {
		case <-m.exited:
		default:
			_ = m.cmd.Process.Kill()
			<-m.exited
		}
	})
	return m
}

// mustRead reads a file, failing the spec when it cannot.
func mustRead(path string) []byte {
	GinkgoHelper()
	contents, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	return contents
}

// readYAML reads a file of one YAML object (a leading --- allowed).
func readYAML(path string) map[string]any {
	GinkgoHelper()
	objects := parseManifests(string(mustRead(path)))
	Expect(objects).To(HaveLen(1), path)
	return objects[0].Object
}
