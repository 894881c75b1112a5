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

package controller

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/secretcache"
	"github.com/nango-operator/nango-operator/internal/sink/sinks"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
)

// These tests run against a real kube-apiserver and etcd (envtest) with the CRDs from
// config/crd/bases, so the API server itself enforces the validation under test. A
// manager runs the NangoSync and NangoSyncSet reconcilers for the namespace syncNamespace against the Nango
// emulator, real PostgreSQL servers and SQLite files; the other tests use "default", where
// the reconciler does not look.

// syncNamespace is the only namespace the reconciler under test watches.
const syncNamespace = "sync"

var (
	ctx       context.Context
	cancel    context.CancelFunc
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client

	// sim is the Nango the reconciler reads from, served at simServer.
	sim       *nangosim.Sim
	simServer *httptest.Server
	// otherNango is a second Nango URL the operator allows, serving whatever a test
	// sets with otherNangoAnswers; 404 otherwise.
	otherNango        *httptest.Server
	otherNangoHandler atomic.Pointer[http.Handler]
	// faults is the reconciler's fault hook, armed by crash tests.
	faults = &faultHook{}
	// nangoRequests logs the record requests the emulator answered.
	nangoRequests = &requestLog{}
	// reconcilerMetrics holds the reconciler's metrics.
	reconcilerMetrics = prometheus.NewRegistry()
	// theReconciler is the reconciler the manager runs, for its in-process wakes.
	theReconciler *NangoSyncReconciler
)

// TestMain shares one throwaway PostgreSQL server among the tests of this package.
func TestMain(m *testing.M) { pgtest.Main(m) }

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.TODO())

	Expect(syncv1alpha1.AddToScheme(scheme.Scheme)).To(Succeed())

	// The binaries come from KUBEBUILDER_ASSETS, which `make test` sets after building them.
	// A missing one is an error, never a skip: these tests are the proof of the API.
	Expect(os.Getenv("KUBEBUILDER_ASSETS")).NotTo(BeEmpty(),
		"KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds etcd, kube-apiserver and kubectl into ./bin")

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}

	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	Expect(cfg).NotTo(BeNil())

	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())

	startReconciler()
})

// reconcileTimeout bounds each reconcile of the suite's reconciler: longer than its
// 5-second budget, shorter than the Nango client's own 30-second request timeout.
const reconcileTimeout = 8 * time.Second

// nangoHealthInterval is how often the suite's reconciler asks Nango how its syncs run.
const nangoHealthInterval = 300 * time.Millisecond

// startReconciler runs a manager with the NangoSync reconciler against the emulator, with
// short budgets and backoffs so that tests see paging, fairness and recovery quickly.
func startReconciler() {
	sim = nangosim.New(nangosim.Options{})
	simServer = httptest.NewServer(nangoRequests.record(sim.Handler()))
	DeferCleanup(simServer.Close)
	otherNango = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := otherNangoHandler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	DeferCleanup(otherNango.Close)

	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: syncNamespace}})).To(Succeed())
	Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: syncNamespace, Name: "nango"},
		StringData: map[string]string{"secretKey": simSecretKey()},
	})).To(Succeed())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme.Scheme,
		Client:                 ClientOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(CacheScope{Namespaces: []string{syncNamespace}}),
	})
	Expect(err).NotTo(HaveOccurred())

	pool := sinks.NewPool(faults.open)
	DeferCleanup(pool.Close)
	reconciler := &NangoSyncReconciler{
		Client:    mgr.GetClient(),
		Secrets:   secretcache.New(mgr.GetClient(), mgr.GetAPIReader()),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("nango-operator"),
		Nango: NewNangoClients(&http.Client{},
			nango.NewLimiterRegistry(nango.LimiterConfig{Limit: 100000, Window: time.Second})),
		Sinks: pool,
		Options: Options{
			DefaultNangoURL:         simServer.URL,
			AllowedNangoURLs:        []string{otherNango.URL},
			DefaultSecret:           syncv1alpha1.SecretKeyReference{Name: "nango", Key: "secretKey"},
			MaxRecordsPerReconcile:  5000,
			MaxTimePerReconcile:     5 * time.Second,
			MaxConcurrentReconciles: 4,
			RetryBaseDelay:          50 * time.Millisecond,
			RetryMaxDelay:           time.Second,
			ReconcileTimeout:        reconcileTimeout,
			NangoHealthInterval:     nangoHealthInterval,
		},
		Registerer: reconcilerMetrics,
	}
	Expect(reconciler.SetupWithManager(mgr)).To(Succeed())
	theReconciler = reconciler
	Expect((&NangoSyncSetReconciler{
		Client:                  mgr.GetClient(),
		Recorder:                mgr.GetEventRecorder("nango-operator"),
		Syncs:                   reconciler,
		MaxConcurrentReconciles: 2,
	}).SetupWithManager(mgr)).To(Succeed())

	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
}

// simSecretKey is the secret key of the emulator's default environment.
func simSecretKey() string {
	env, ok := sim.Environment(nangosim.DefaultEnvironment)
	Expect(ok).To(BeTrue())
	return env.SecretKey
}

var _ = AfterSuite(func() {
	cancel()
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})
