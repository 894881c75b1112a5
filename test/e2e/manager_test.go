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
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nango-operator/nango-operator/internal/testutil/freeport"
)

// manager is one running manager process.
type manager struct {
	cmd       *exec.Cmd
	probeAddr string
	output    *syncBuffer
	exited    chan struct{}
	exitErr   error
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _ = GinkgoWriter.Write(p)
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr() string {
	GinkgoHelper()
	addr, err := freeport.Addr()
	Expect(err).NotTo(HaveOccurred())
	return addr
}

// startManager runs the manager binary against the envtest API server. It is killed at the
// end of the spec if it is still running.
func startManager(args ...string) *manager {
	GinkgoHelper()
	probeAddr := freeAddr()
	m := runManager(append([]string{
		"--kubeconfig", kubeconfig,
		"--health-probe-bind-address", probeAddr,
		"--metrics-bind-address", "0",
		"--webhook-bind-address", freeAddr(),
	}, args...))
	m.probeAddr = probeAddr
	return m
}

// probe answers the status code of one of the manager's probe endpoints.
func (m *manager) probe(path string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s%s", m.probeAddr, path), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// exitCode waits for the process to end and answers its exit code.
func (m *manager) exitCode() int {
	const within = 30 * time.Second
	GinkgoHelper()
	Eventually(m.exited).WithTimeout(within).Should(BeClosed(), "the manager did not exit; its output:\n%s", m.output)
	var exitErr *exec.ExitError
	if errors.As(m.exitErr, &exitErr) {
		return exitErr.ExitCode()
	}
	Expect(m.exitErr).NotTo(HaveOccurred())
	return 0
}

var _ = Describe("the manager binary", func() {
	It("starts against a real API server, answers its probes, leads, and stops cleanly on SIGTERM", func(ctx SpecContext) {
		m := startManager("--leader-elect", "--leader-election-namespace", "default", "--leader-election-id", "e2e-probes")

		By("answering /healthz and /readyz")
		Eventually(func() (int, error) { return m.probe("/healthz") }).WithTimeout(30 * time.Second).Should(Equal(http.StatusOK))
		Eventually(func() (int, error) { return m.probe("/readyz") }).WithTimeout(30 * time.Second).Should(Equal(http.StatusOK))

		By("taking the leader election Lease")
		lease := &coordinationv1.Lease{}
		leaseKey := types.NamespacedName{Namespace: "default", Name: "e2e-probes"}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, leaseKey, lease)).To(Succeed())
			g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
			g.Expect(*lease.Spec.HolderIdentity).NotTo(BeEmpty())
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("stopping cleanly on SIGTERM")
		Expect(m.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		Expect(m.exitCode()).To(Equal(0), "the manager's output:\n%s", m.output)
		Expect(m.output.String()).To(ContainSubstring("manager stopped"))

		By("releasing the Lease, so a new replica leads without waiting for it to expire")
		Expect(k8sClient.Get(ctx, leaseKey, lease)).To(Succeed())
		Expect(lease.Spec.HolderIdentity).To(Or(BeNil(), HaveValue(BeEmpty())))
	}, SpecTimeout(2*time.Minute))

	It("is not ready while its informers cannot sync, and still alive", func() {
		// A user with no RBAC at all: the manager cannot list NangoSyncs.
		m := startManager("--kubeconfig", impersonatingKubeconfig(kubeconfig, GinkgoT().TempDir(), "nobody"))
		Eventually(func() (int, error) { return m.probe("/healthz") }).WithTimeout(30 * time.Second).Should(Equal(http.StatusOK))
		Consistently(func() (int, error) { return m.probe("/readyz") }).WithTimeout(3 * time.Second).
			Should(Equal(http.StatusInternalServerError))
		Expect(m.output.String()).To(ContainSubstring("forbidden"))
	})

	It("refuses a Nango URL it cannot use, saying what to fix", func() {
		m := startManager("--nango-url", "api.nango.dev")
		Expect(m.exitCode()).To(Equal(1))
		Expect(m.output.String()).To(ContainSubstring(`--nango-url \"api.nango.dev\" must be an absolute http or https URL`))
	})
})
