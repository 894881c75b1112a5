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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// testCA is a certificate authority made for one spec, which issues serving certificates
// for localhost, as cert-manager's CA Issuer would for the metrics Service.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA() *testCA {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nango-operator e2e CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	cert, err := x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a serving certificate for localhost with the given serial number, and its
// key, into dir as tls.crt and tls.key (the names of a kubernetes.io/tls Secret).
func (ca *testCA) issue(dir string, serial int64) {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	template := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "nango-operator-metrics"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, &key.PublicKey, ca.key)
	Expect(err).NotTo(HaveOccurred())
	keyDER, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	// The key first, then the certificate: the watcher reads a pair that matches once both
	// are written, whichever event it wakes on.
	Expect(os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)).To(Succeed())
}

// servedSerial connects to addr trusting only the CA, and answers the serial number of the
// certificate the server showed and the status of an unauthenticated GET /metrics.
func (ca *testCA) servedSerial(addr string) (int64, int, error) {
	var serial int64
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			// A new connection each time, so that a reloaded certificate is seen.
			DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{
				RootCAs: ca.pool, ServerName: "localhost", MinVersion: tls.VersionTLS12,
				VerifyConnection: func(cs tls.ConnectionState) error {
					serial = cs.PeerCertificates[0].SerialNumber.Int64()
					return nil
				},
			},
		},
	}
	resp, err := client.Get(fmt.Sprintf("https://%s/metrics", addr))
	if err != nil {
		return 0, 0, err
	}
	_ = resp.Body.Close()
	return serial, resp.StatusCode, nil
}

var _ = Describe("the metrics endpoint with a certificate of its own", func() {
	It("serves the certificate of --metrics-cert-path, verified against its CA, and reloads it when it changes", func() {
		ca := newTestCA()
		dir := GinkgoT().TempDir()
		ca.issue(dir, 1001)
		metricsAddr := freeAddr()
		m := startManager("--metrics-bind-address", metricsAddr, "--metrics-cert-path", dir)

		By("serving the given certificate, which a client trusting only the CA accepts; the endpoint still wants a token")
		Eventually(func(g Gomega) {
			serial, status, err := ca.servedSerial(metricsAddr)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(serial).To(BeEquivalentTo(1001))
			g.Expect(status).To(Equal(http.StatusUnauthorized))
		}).WithTimeout(30*time.Second).Should(Succeed(), "the manager's output:\n%s", m.output)

		By("serving the renewed certificate once its files change, without a restart")
		ca.issue(dir, 1002)
		Eventually(func() (int64, error) {
			serial, _, err := ca.servedSerial(metricsAddr)
			return serial, err
		}).WithTimeout(30*time.Second).Should(BeEquivalentTo(1002), "the manager's output:\n%s", m.output)
		Consistently(m.exited).WithTimeout(time.Second).ShouldNot(BeClosed())
	})

	It("refuses to start when the certificate cannot be read, rather than serving a self-signed one", func() {
		m := startManager("--metrics-bind-address", freeAddr(), "--metrics-cert-path", GinkgoT().TempDir())
		Expect(m.exitCode()).To(Equal(1))
		Expect(m.output.String()).To(ContainSubstring("--metrics-cert-path: read the metrics certificate"))
	})
})
