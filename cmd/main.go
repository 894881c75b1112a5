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

// Command manager runs the nango-operator: the NangoSync controller, the Nango webhook
// receiver, its health probes and its metrics endpoint.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	// Import all Kubernetes client auth plugins (e.g. Azure, GCP, OIDC, etc.)
	// to ensure that exec-entrypoint and run can make use of them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/controller"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/receiver"
	"github.com/nango-operator/nango-operator/internal/secretcache"
	"github.com/nango-operator/nango-operator/internal/sink/sinks"
	"github.com/nango-operator/nango-operator/internal/version"
)

// options are the manager's command-line settings.
type options struct {
	metricsAddr        string
	secureMetrics      bool
	enableHTTP2        bool
	metricsCertPath    string
	metricsCertName    string
	metricsCertKey     string
	probeAddr          string
	pprofAddr          string
	leaderElection     bool
	leaderElectionID   string
	leaderElectionNS   string
	defaultNangoURL    string
	defaultNangoSecret string
	defaultNangoKey    string
	nangoRateLimit     int
	nangoRateWindow    time.Duration
	watchNamespaces    []string
	watchLabelSelector string
	reconciler         controller.Options
	webhook            webhookOptions
	zap                zap.Options
}

// webhookOptions are the settings of the Nango webhook receiver.
type webhookOptions struct {
	bindAddress     string
	signingSecret   string
	signingSecretNS string
	allowLegacy     bool
	// nangoSyncs is where the receiver finds NangoSyncs when the manager's cache holds one
	// shard only; nil uses the manager's.
	nangoSyncs cluster.Cluster
}

func (o *options) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0",
		"The address the metrics endpoint binds to, :8443 for HTTPS or :8080 for HTTP; 0 disables it.")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, to clients the API server authenticates and authorizes.")
	fs.StringVar(&o.metricsCertPath, "metrics-cert-path", "",
		"The directory holding the metrics endpoint's certificate and key (a cert-manager Certificate's Secret, say); "+
			"they are reloaded when they change. Empty serves a self-signed certificate made at start.")
	fs.StringVar(&o.metricsCertName, "metrics-cert-name", "tls.crt",
		"The certificate's file name in --metrics-cert-path.")
	fs.StringVar(&o.metricsCertKey, "metrics-cert-key", "tls.key",
		"The private key's file name in --metrics-cert-path.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false,
		"Serve metrics over HTTP/2 too. Off by default against the HTTP/2 Stream Cancellation and Rapid Reset CVEs.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081",
		"The address the /healthz and /readyz probes bind to.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0",
		"The address Go's pprof profiles are served on (plain HTTP, unauthenticated: bind it to localhost); 0 disables them.")
	fs.BoolVar(&o.leaderElection, "leader-elect", false,
		"Elect a leader among replicas, so that only one reconciles NangoSyncs at a time.")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "nango-operator.sync.nango.dev",
		"The name of the Lease used for leader election.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "",
		"The namespace of the leader election Lease. Defaults to the manager's own namespace when it runs in a cluster.")
	fs.Func("watch-namespaces",
		"Comma-separated namespaces the manager watches and reads, NangoSyncs and Secrets alike; empty means all. "+
			"With it, the manager needs rights in those namespaces only (the chart's watchNamespaces).",
		func(s string) error {
			for _, ns := range strings.Split(s, ",") {
				if ns = strings.TrimSpace(ns); ns != "" {
					o.watchNamespaces = append(o.watchNamespaces, ns)
				}
			}
			return nil
		})
	fs.StringVar(&o.watchLabelSelector, "watch-label-selector", "",
		"A label selector: the manager reconciles only the NangoSyncs and NangoSyncSets it selects, for example "+
			"sharding.nango.dev/key=shard1 (or !sharding.nango.dev/key for the NangoSyncs of no shard). "+
			"Its webhook receiver still wakes the NangoSyncs of every shard. Give each shard its own --leader-election-id.")
	fs.StringVar(&o.defaultNangoURL, "nango-url", "https://api.nango.dev",
		"The Nango API URL for NangoSyncs that set no spec.nango.url.")
	fs.Func("allowed-nango-urls",
		"Comma-separated Nango API URLs, besides --nango-url, that NangoSyncs may name in spec.nango.url "+
			"(a URL below an allowed path is allowed). A NangoSync's secret key is sent to its Nango URL, "+
			"so any other is refused and its Secret not read.",
		func(s string) error {
			for _, u := range strings.Split(s, ",") {
				if u = strings.TrimSpace(u); u != "" {
					o.reconciler.AllowedNangoURLs = append(o.reconciler.AllowedNangoURLs, u)
				}
			}
			return nil
		})
	fs.BoolVar(&o.reconciler.RequireSecretOptIn, "require-secret-opt-in", false,
		"Read a Secret for a NangoSync only when it is labelled "+syncv1alpha1.SecretOptInLabel+"=true; "+
			"others are refused (reason SecretNotOptedIn) and their data not read.")
	fs.StringVar(&o.reconciler.SQLiteRoot, "sqlite-root", "",
		"The directory holding SQLite sinks: the files of namespace ns must be under <root>/ns/, created when missing. "+
			"Empty allows any path on the pod; set it when several teams share the operator.")
	fs.StringVar(&o.defaultNangoSecret, "nango-secret", "nango",
		"The Secret, in each NangoSync's own namespace, holding the Nango secret key for NangoSyncs that set no spec.nango.secretRef.")
	fs.StringVar(&o.defaultNangoKey, "nango-secret-key", "secretKey",
		"The key of --nango-secret that holds the Nango secret key.")
	fs.IntVar(&o.nangoRateLimit, "nango-rate-limit", nango.DefaultRateLimit,
		"Requests per --nango-rate-window that all NangoSyncs of one Nango secret key may send, until Nango's X-RateLimit-Limit says otherwise.")
	fs.DurationVar(&o.nangoRateWindow, "nango-rate-window", nango.DefaultRateWindow,
		"The length of Nango's rate limit window.")
	fs.IntVar(&o.reconciler.MaxConcurrentReconciles, "max-concurrent-reconciles", 4,
		"How many NangoSyncs sync at the same time.")
	fs.IntVar(&o.reconciler.MaxRecordsPerReconcile, "max-records-per-reconcile", controller.DefaultMaxRecordsPerReconcile,
		"Records one sync reads (in whole pages) before it lets the others go first; it carries on right after.")
	fs.DurationVar(&o.reconciler.MaxTimePerReconcile, "max-time-per-reconcile", controller.DefaultMaxTimePerReconcile,
		"Time one sync spends before it lets the others go first; it carries on right after.")
	fs.Float64Var(&o.reconciler.RetentionRiskShare, "retention-risk-share", controller.DefaultRetentionRiskShare,
		"The share (0 to 1] of Nango's 30-day retention window after which a NangoSync that does not sync "+
			"(suspended or failing) gets RetentionRisk=True and a Warning event.")
	fs.DurationVar(&o.reconciler.NangoHealthInterval, "nango-health-interval", controller.DefaultNangoHealthInterval,
		"How often Nango is asked (GET /sync/status, once per integration) how the syncs NangoSyncs name in spec.syncName run.")
	fs.DurationVar(&o.reconciler.ReconcileTimeout, "reconcile-timeout", controller.DefaultReconcileTimeout,
		"The longest one sync may take, whatever Nango or the sink do; longer than --max-time-per-reconcile.")
	fs.DurationVar(&o.reconciler.RetryBaseDelay, "retry-base-delay", controller.DefaultRetryBaseDelay,
		"The first wait before a failed sync is retried; it doubles on each failure.")
	fs.DurationVar(&o.reconciler.RetryMaxDelay, "retry-max-delay", controller.DefaultRetryMaxDelay,
		"The longest wait before a failed sync is retried.")
	fs.StringVar(&o.webhook.bindAddress, "webhook-bind-address", ":8090",
		"The address the Nango webhook receiver (path "+receiver.Path+") binds to on every replica; 0 disables it.")
	fs.StringVar(&o.webhook.signingSecret, "webhook-signing-secret", "nango-webhook",
		"The Secret whose every value is a Nango webhook signing key (two during a rotation). "+
			"Webhooks they verify wake every NangoSync they match. It may be absent; empty uses none.")
	fs.StringVar(&o.webhook.signingSecretNS, "webhook-signing-secret-namespace", "",
		"The namespace of --webhook-signing-secret. Defaults to the manager's own namespace.")
	fs.BoolVar(&o.webhook.allowLegacy, "webhook-allow-legacy-signature", false,
		"Also accept webhooks signed only with the legacy X-Nango-Signature, which is open to length extension.")
	o.zap.BindFlags(fs)
}

// validate reports the first setting that cannot work, saying how to fix it.
func (o *options) validate() error {
	if _, err := nango.ParseBaseURL(o.defaultNangoURL); err != nil {
		return fmt.Errorf("--nango-url %w", err)
	}
	if share := o.reconciler.RetentionRiskShare; share <= 0 || share > 1 {
		return fmt.Errorf("--retention-risk-share %g must be more than 0 and at most 1", share)
	}
	if o.reconciler.ReconcileTimeout <= o.reconciler.MaxTimePerReconcile {
		return fmt.Errorf("--reconcile-timeout %s must be longer than --max-time-per-reconcile %s",
			o.reconciler.ReconcileTimeout, o.reconciler.MaxTimePerReconcile)
	}
	if o.reconciler.SQLiteRoot != "" && !filepath.IsAbs(o.reconciler.SQLiteRoot) {
		return fmt.Errorf("--sqlite-root %q must be an absolute path", o.reconciler.SQLiteRoot)
	}
	for _, ns := range o.watchNamespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("--watch-namespaces: %q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
	}
	if _, err := o.shard(); err != nil {
		return err
	}
	if o.defaultNangoSecret == "" || o.defaultNangoKey == "" {
		return errors.New("--nango-secret and --nango-secret-key must not be empty")
	}
	return nil
}

// shard is the selector of --watch-label-selector; nil when it is empty.
func (o *options) shard() (labels.Selector, error) {
	if o.watchLabelSelector == "" {
		return nil, nil
	}
	selector, err := labels.Parse(o.watchLabelSelector)
	if err != nil {
		return nil, fmt.Errorf("--watch-label-selector: %w", err)
	}
	return selector, nil
}

func main() {
	var opts options
	opts.zap = zap.Options{Development: false}
	opts.bindFlags(flag.CommandLine)
	printVersion := flag.Bool("version", false, "Print the version, commit and build date, then exit.")
	probeURL := flag.String("probe", "",
		"GET this URL and exit: 0 when it answers 2xx, 1 otherwise; the manager does not start. "+
			"The chart's `helm test` Pod probes /readyz with it, as the image has no shell and no curl.")
	flag.Parse()
	if *printVersion {
		fmt.Println("manager", version.Get())
		return
	}
	if *probeURL != "" {
		if err := probe(*probeURL); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.zap)))
	setupLog := ctrl.Log.WithName("setup")
	// First, so that whatever follows, even a refused flag, is read knowing the build.
	setupLog.Info("nango-operator", version.Get().KeysAndValues()...)

	if err := run(opts); err != nil {
		setupLog.Error(err, "manager stopped with an error")
		os.Exit(1)
	}
}

func run(opts options) error {
	if err := opts.validate(); err != nil {
		return err
	}
	setupLog := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(syncv1alpha1.AddToScheme(scheme))

	metricsOptions := metricsserver.Options{
		BindAddress:   opts.metricsAddr,
		SecureServing: opts.secureMetrics,
		TLSOpts:       tlsOptions(opts.enableHTTP2),
	}
	metricsCerts, err := opts.metricsCertWatcher()
	if err != nil {
		return err
	}
	if metricsCerts != nil {
		metricsOptions.TLSOpts = append(metricsOptions.TLSOpts, func(c *tls.Config) { c.GetCertificate = metricsCerts.GetCertificate })
	}
	if opts.secureMetrics {
		// Only clients the API server authenticates and authorizes (a TokenReview and a
		// SubjectAccessReview) may read the metrics.
		metricsOptions.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	shard, err := opts.shard()
	if err != nil {
		return err
	}
	cfg := ctrl.GetConfigOrDie()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Client: controller.ClientOptions(),
		Cache: controller.CacheOptions(controller.CacheScope{
			Namespaces: opts.watchNamespaces, Shard: shard, OwnSecret: opts.webhook.signingSecretKey(),
		}),
		Metrics:                       metricsOptions,
		HealthProbeBindAddress:        opts.probeAddr,
		PprofBindAddress:              opts.pprofAddr,
		LeaderElection:                opts.leaderElection,
		LeaderElectionID:              opts.leaderElectionID,
		LeaderElectionNamespace:       opts.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}

	if metricsCerts != nil {
		// Reloads the certificate when its files change (a renewed Secret), on every replica.
		if err := mgr.Add(metricsCerts); err != nil {
			return fmt.Errorf("add the metrics certificate watcher: %w", err)
		}
	}

	sinkPool := sinks.NewPool(nil)
	defer func() {
		if err := sinkPool.Close(); err != nil {
			setupLog.Error(err, "close sinks")
		}
	}()
	reconcilerOptions := opts.reconciler
	reconcilerOptions.DefaultNangoURL = opts.defaultNangoURL
	reconcilerOptions.DefaultSecret = syncv1alpha1.SecretKeyReference{Name: opts.defaultNangoSecret, Key: opts.defaultNangoKey}
	// One cache of Secret values for the controller and the receiver: each change of a
	// Secret is read once.
	secrets := secretcache.New(mgr.GetClient(), mgr.GetAPIReader())
	reconciler := &controller.NangoSyncReconciler{
		Client:    mgr.GetClient(),
		Secrets:   secrets,
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("nango-operator"),
		Nango: controller.NewNangoClients(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
			nango.NewLimiterRegistry(nango.LimiterConfig{Limit: opts.nangoRateLimit, Window: opts.nangoRateWindow})),
		Sinks:      sinkPool,
		Options:    reconcilerOptions,
		Registerer: ctrlmetrics.Registry,
	}
	if err := reconciler.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the NangoSync controller: %w", err)
	}
	if err := (&controller.NangoSyncSetReconciler{
		Client:                  mgr.GetClient(),
		Recorder:                mgr.GetEventRecorder("nango-operator"),
		Syncs:                   reconciler,
		MaxConcurrentReconciles: 2,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the NangoSyncSet controller: %w", err)
	}

	caches := []cache.Cache{mgr.GetCache()}
	if opts.webhook.bindAddress != "0" && shard != nil {
		// The receiver of a shard finds the NangoSyncs of every shard, each woken through
		// the API server by its own shard's watch.
		allShards, err := cluster.New(cfg, func(o *cluster.Options) {
			o.Scheme = scheme
			o.Cache = controller.CacheOptions(controller.CacheScope{Namespaces: opts.watchNamespaces})
			o.Cache.DefaultTransform = cache.TransformStripManagedFields()
		})
		if err != nil {
			return fmt.Errorf("create the webhook receiver's cache of NangoSyncs: %w", err)
		}
		opts.webhook.nangoSyncs = allShards
		caches = append(caches, allShards.GetCache())
	}
	if err := setupReceiver(mgr, opts.webhook, secrets, reconciler.WakeInProcess); err != nil {
		return err
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("informers", informersSynced(caches...)); err != nil {
		return fmt.Errorf("add readiness check: %w", err)
	}

	setupLog.Info("starting manager",
		"leaderElection", opts.leaderElection,
		"nangoURL", opts.defaultNangoURL,
		"nangoSecret", opts.defaultNangoSecret,
		"webhookAddress", opts.webhook.bindAddress,
		"watchNamespaces", opts.watchNamespaces,
		"watchLabelSelector", opts.watchLabelSelector)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	setupLog.Info("manager stopped")
	return nil
}

// informersSynced makes the manager ready once its informer caches (and the receiver's)
// have synced: before that, the controller has not started and the receiver cannot match a webhook to its
// NangoSyncs. The probe waits a second at most.
func informersSynced(caches ...cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		for _, c := range caches {
			if !c.WaitForCacheSync(ctx) {
				return errors.New("the informer caches have not synced yet")
			}
		}
		return nil
	}
}

// signingSecretKey is the receiver's Secret of signing keys; empty when it has none.
func (o webhookOptions) signingSecretKey() types.NamespacedName {
	if o.signingSecret == "" || o.bindAddress == "0" {
		return types.NamespacedName{}
	}
	namespace := o.signingSecretNS
	if namespace == "" {
		namespace = receiver.OwnNamespace()
	}
	return types.NamespacedName{Namespace: namespace, Name: o.signingSecret}
}

// setupReceiver adds the Nango webhook receiver unless its address is "0". Its wakes also
// go to wakeInProcess, the controller of this replica.
func setupReceiver(mgr ctrl.Manager, o webhookOptions, secrets *secretcache.Cache, wakeInProcess func(types.NamespacedName, string)) error {
	if o.bindAddress == "0" {
		return nil
	}
	if err := receiver.SetupWithManager(mgr, receiver.Options{
		BindAddress:          o.bindAddress,
		SigningSecret:        o.signingSecretKey(),
		AllowLegacySignature: o.allowLegacy,
		Secrets:              secrets,
		WakeInProcess:        wakeInProcess,
		NangoSyncs:           o.nangoSyncs,
	}); err != nil {
		return fmt.Errorf("set up the webhook receiver: %w", err)
	}
	return nil
}

// probe GETs url once, within 10 seconds, and answers an error unless the answer is 2xx.
func probe(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Printf("probe %s: %s\n", url, resp.Status)
	return nil
}

// metricsCertWatcher reads the metrics certificate of --metrics-cert-path and watches it for
// changes; nil when the endpoint serves a self-signed certificate instead. A certificate that
// cannot be read stops the manager at start rather than falling back to a self-signed one.
func (o *options) metricsCertWatcher() (*certwatcher.CertWatcher, error) {
	if o.metricsCertPath == "" || o.metricsAddr == "0" || !o.secureMetrics {
		return nil, nil
	}
	w, err := certwatcher.New(filepath.Join(o.metricsCertPath, o.metricsCertName), filepath.Join(o.metricsCertPath, o.metricsCertKey))
	if err != nil {
		return nil, fmt.Errorf("--metrics-cert-path: read the metrics certificate: %w", err)
	}
	return w, nil
}

// tlsOptions turns HTTP/2 off unless asked for: HTTP/2 was open to the Stream Cancellation
// and Rapid Reset attacks (GHSA-qppj-fm5r-hxr3, GHSA-4374-p667-p6c8).
func tlsOptions(enableHTTP2 bool) []func(*tls.Config) {
	if enableHTTP2 {
		return nil
	}
	return []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
}
