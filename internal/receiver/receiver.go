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

// Package receiver is the operator's endpoint for Nango's webhooks. It verifies each
// webhook's signature over the raw body, finds the NangoSyncs the webhook concerns through
// field indexes, and wakes them through the API server, so that new records reach the sink
// within moments instead of at the next interval. It runs on every replica, leader or not;
// on the leader it also hands each wake to the controller in-process (Options.WakeInProcess).
//
// Webhooks are hints: one that is refused, lost or dropped only delays a sync to its
// interval. So the receiver answers as soon as a webhook is verified and its wakes are
// queued, and never waits for a sync.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/secretcache"
)

// Path is where Nango posts webhooks: set the environment's webhook URL to
// http(s)://<receiver>/webhooks/nango.
const Path = "/webhooks/nango"

// MaxBodyBytes bounds a webhook body. Nango's are well under a kilobyte.
const MaxBodyBytes = 1 << 20

// Defaults of Options.
const (
	DefaultKeyRefreshInterval = time.Second
	DefaultWorkers            = 4
	DefaultQueueSize          = 1024
	// DefaultMinWakeInterval is the least time between two wakes of one NangoSync. Nango
	// runs a sync at most every few minutes, so a tenth of a second is no delay for real
	// webhooks, while a replayed one costs each NangoSync at most ten patches and ten
	// in-process wakes a second (the last one after the last webhook, so no records are
	// missed).
	DefaultMinWakeInterval = 100 * time.Millisecond
	// verifyTimeout bounds the reads (Secrets, the cache) done before a webhook is answered.
	verifyTimeout = 5 * time.Second
)

// Options configure a Receiver. SetupWithManager fills Client, Registerer and Log from the
// manager, and Secrets when it is nil.
type Options struct {
	// BindAddress is where SetupWithManager listens, for example ":8090". New ignores it:
	// the caller serves the Receiver.
	BindAddress string
	// Client lists NangoSyncs through the field indexes of IndexNangoSyncs (the manager's
	// cached client) and patches them.
	Client client.Client
	// APIReader reads a NangoSync from the API server itself before a patch that writes run
	// or auth state, so that the patch can carry its resourceVersion: a newer run written
	// meanwhile (by another replica, or the health check) is never overwritten. nil: Client.
	// SetupWithManager fills it with the API reader of the cluster that holds NangoSyncs.
	APIReader client.Reader
	// Secrets answers the data of the Secrets that hold signing keys; share the
	// controller's, so that each change of a Secret is read once.
	Secrets *secretcache.Cache
	// NangoSyncs, when set, is where SetupWithManager has the receiver find NangoSyncs and
	// NangoSyncSets (its cache, indexes and client) instead of the manager: a manager that
	// reconciles one shard caches only that shard's, but a webhook may name those of any.
	// SetupWithManager adds it to the manager. New ignores it.
	NangoSyncs cluster.Cluster
	// SigningSecret is the operator's own Secret of webhook signing keys: every value in it
	// is a key, so that during a rotation it holds the old key and the new. A webhook one of
	// them verifies wakes every NangoSync it matches. Empty Name: none. A Secret that does
	// not exist holds no keys.
	SigningSecret types.NamespacedName
	// AllowLegacySignature accepts the legacy X-Nango-Signature (SHA-256 of key and body)
	// from senders that send no X-Nango-Hmac-Sha256. It is open to length extension.
	AllowLegacySignature bool
	// Registerer registers the receiver's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Log is the receiver's logger. It never logs bodies or keys.
	Log logr.Logger
	// KeyRefreshInterval is the shortest time between two reads of one Secret, when a
	// signature fails to verify with the keys read before.
	KeyRefreshInterval time.Duration
	// Workers write wakes; QueueSize bounds the NangoSyncs waiting for one.
	Workers   int
	QueueSize int
	// MinWakeInterval is the least time between two wakes (annotation patches, in-process
	// wakes) of one NangoSync.
	MinWakeInterval time.Duration
	// WakeInProcess, when set, is called for each NangoSync a verified webhook wakes, with
	// the requested-at value its annotation patch will carry, before that patch is
	// written: the controller of this replica, if it runs here, can start at once.
	WakeInProcess func(nsync types.NamespacedName, requestedAt string)
}

func (o Options) withDefaults() Options {
	if o.KeyRefreshInterval <= 0 {
		o.KeyRefreshInterval = DefaultKeyRefreshInterval
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MinWakeInterval <= 0 {
		o.MinWakeInterval = DefaultMinWakeInterval
	}
	if o.APIReader == nil {
		o.APIReader = o.Client
	}
	return o
}

// Receiver is the webhook endpoint (an http.Handler) and the workers that write its wakes
// (a manager.Runnable that runs on every replica).
type Receiver struct {
	client               client.Client
	signingSecret        types.NamespacedName
	allowLegacySignature bool
	keys                 *keyCache
	waker                *waker
	setWaker             *waker // wakes NangoSyncSets
	wakeInProcess        func(types.NamespacedName, string)
	metrics              *metrics
	log                  logr.Logger
}

// New builds a Receiver. Its wakes are written only once Start runs.
func New(opts Options) (*Receiver, error) {
	opts = opts.withDefaults()
	if opts.Client == nil || opts.Secrets == nil {
		return nil, errors.New("webhook receiver: Client and Secrets are required")
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	syncWaker := newWaker(opts.Client, opts.Workers, opts.QueueSize, m, opts.Log).
		throttled(opts.MinWakeInterval).inProcess(opts.WakeInProcess).locking(opts.APIReader)
	return &Receiver{
		client:               opts.Client,
		signingSecret:        opts.SigningSecret,
		allowLegacySignature: opts.AllowLegacySignature,
		keys:                 &keyCache{secrets: opts.Secrets, minRefresh: opts.KeyRefreshInterval},
		waker:                syncWaker,
		setWaker:             newSetWaker(opts.Client, opts.Workers, opts.QueueSize, m, opts.Log),
		wakeInProcess:        opts.WakeInProcess,
		metrics:              m,
		log:                  opts.Log,
	}, nil
}

// Start writes wakes until ctx ends.
func (r *Receiver) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { r.setWaker.run(ctx) })
	r.waker.run(ctx)
	wg.Wait()
	return nil
}

// NeedLeaderElection is false: every replica receives webhooks and writes their wakes; the
// leader's controller acts on them.
func (r *Receiver) NeedLeaderElection() bool { return false }

// answer is the receiver's answer to one request, and how it is counted.
type answer struct {
	status      int
	webhookType string
	result      string
	message     string
}

// ServeHTTP answers one request. Every verified webhook gets 202 Accepted (its wakes are
// written after the answer); Nango never retries a 4xx, so a 4xx is kept for requests that
// would fail again, and a 503 for a failure to read what verification needs.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	a := r.receive(w, req, time.Now())
	r.metrics.count(a.webhookType, a.result)
	if a.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.message+"\n")
}

// receive reads, verifies and acts on one request: nothing is done for a webhook before a
// known key verified it.
func (r *Receiver) receive(w http.ResponseWriter, req *http.Request, arrived time.Time) answer {
	body, sigs, refused := r.read(w, req)
	if refused != nil {
		return *refused
	}
	ctx, cancel := context.WithTimeout(req.Context(), verifyTimeout)
	defer cancel()
	wh, targets, refused := r.verify(ctx, req, sigs, body)
	if refused != nil {
		return *refused
	}
	if wh.Auth != nil {
		return r.actOnAuth(wh, targets, arrived)
	}
	return r.act(wh, targets, arrived)
}

// read checks the path, method and signature headers, then reads the body (at most
// MaxBodyBytes).
func (r *Receiver) read(w http.ResponseWriter, req *http.Request) ([]byte, nango.WebhookSignatures, *answer) {
	if req.URL.Path != Path {
		return nil, nango.WebhookSignatures{}, &answer{http.StatusNotFound, typeUnknown, resultNotFound, "not found: Nango webhooks go to " + Path}
	}
	if req.Method != http.MethodPost {
		return nil, nango.WebhookSignatures{}, &answer{http.StatusMethodNotAllowed, typeUnknown, resultWrongMethod, "method not allowed: use POST"}
	}
	// An unsigned request is refused before its body is read: it costs no more than its
	// headers, however large a body it announces.
	sigs := nango.WebhookSignaturesOf(req.Header, r.allowLegacySignature)
	if sigs.Empty() {
		r.log.V(1).Info("refused a webhook without a signature", "remote", req.RemoteAddr)
		refused := unauthorized()
		return nil, nango.WebhookSignatures{}, &refused
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBodyBytes))
	if err != nil {
		if maxBytes := (*http.MaxBytesError)(nil); errors.As(err, &maxBytes) {
			return nil, nango.WebhookSignatures{}, &answer{http.StatusRequestEntityTooLarge, typeUnknown, resultTooLarge,
				fmt.Sprintf("body too large: at most %d bytes", MaxBodyBytes)}
		}
		return nil, nango.WebhookSignatures{}, &answer{http.StatusBadRequest, typeUnknown, resultMalformed, "could not read the body"}
	}
	return body, sigs, nil
}

// verify parses the webhook and answers the NangoSyncs it may act on. The operator's keys
// are tried first, on the raw body; the webhook is parsed before it is verified only to find
// the NangoSyncs whose own keys to try. A body the operator's keys verify but that is not
// the JSON Nango sends is a 400; one no key verifies, parsed or not, a 401.
func (r *Receiver) verify(ctx context.Context, req *http.Request, sigs nango.WebhookSignatures,
	body []byte) (nango.Webhook, wakeTargets, *answer) {
	byOperator, operatorErr := r.verifiedByOperator(ctx, sigs, body)
	wh, err := nango.ParseWebhook(body)
	if err != nil {
		if byOperator {
			return nango.Webhook{}, wakeTargets{}, &answer{http.StatusBadRequest, typeUnknown, resultMalformed,
				"malformed webhook: not the JSON Nango sends"}
		}
		refused := r.refuse(req, operatorErr)
		return nango.Webhook{}, wakeTargets{}, &refused
	}
	var found []syncv1alpha1.NangoSync
	if !byOperator || wh.Sync != nil || wh.Auth != nil {
		if found, err = candidates(ctx, r.client, wh); err != nil {
			r.log.Error(err, "could not find the NangoSyncs of a webhook; Nango retries it")
			return nango.Webhook{}, wakeTargets{}, &answer{http.StatusServiceUnavailable, typeUnknown, resultUnavailable,
				"cannot read NangoSyncs now; retry later"}
		}
	}
	targets, sameEnvironment, keyErr := r.verifiedTargets(ctx, sigs, body, byOperator, found)
	sets, setErr := r.verifiedSets(ctx, sigs, body, byOperator, wh)
	if !byOperator && len(targets) == 0 && len(sets) == 0 {
		refused := r.refuse(req, errors.Join(operatorErr, keyErr, setErr))
		return nango.Webhook{}, wakeTargets{}, &refused
	}
	stored := make(map[types.NamespacedName]time.Time, len(found))
	for i := range found {
		stored[client.ObjectKeyFromObject(&found[i])] = storedRun(&found[i])
	}
	return wh, wakeTargets{syncs: targets, sets: sets, sameEnvironment: sameEnvironment, storedRun: stored}, nil
}

func unauthorized() answer {
	return answer{http.StatusUnauthorized, typeUnknown, resultUnauthorized, "unauthorized: no known signing key verifies the signature"}
}

// refuse answers a webhook no key verified: 401, or 503 when a Secret of keys could not be
// read, since one of its keys might have verified it and Nango retries a 503.
func (r *Receiver) refuse(req *http.Request, readErr error) answer {
	if readErr != nil {
		r.log.Error(readErr, "could not read the signing keys to verify a webhook; Nango retries it")
		return answer{http.StatusServiceUnavailable, typeUnknown, resultUnavailable, "cannot read signing keys now; retry later"}
	}
	r.log.V(1).Info("refused a webhook that no known signing key verifies", "remote", req.RemoteAddr)
	return unauthorized()
}

// verifiedByOperator reports whether one of the operator's own keys signed body.
func (r *Receiver) verifiedByOperator(ctx context.Context, sigs nango.WebhookSignatures, body []byte) (bool, error) {
	if r.signingSecret.Name == "" {
		return false, nil
	}
	return r.keys.verify(ctx, keySource{secret: r.signingSecret}, sigs, body)
}

// verifiedTargets are the NangoSyncs among found that the webhook may wake: all of them
// when the operator's key verified it, else those whose own signing key did. The second
// answer holds those of the webhook's own environment: whose own key verified it, or, for
// those that name no key, the operator's.
func (r *Receiver) verifiedTargets(ctx context.Context, sigs nango.WebhookSignatures, body []byte, byOperator bool,
	found []syncv1alpha1.NangoSync) ([]types.NamespacedName, map[types.NamespacedName]bool, error) {
	targets := make([]types.NamespacedName, 0, len(found))
	sameEnvironment := make(map[types.NamespacedName]bool, len(found))
	verdicts := map[keySource]bool{} // NangoSyncs often share a Secret: verify once per key
	var errs []error
	for i := range found {
		nsync := &found[i]
		source, ownKey := signingKeyOf(nsync)
		byOwnKey := false
		if ownKey {
			var seen bool
			if byOwnKey, seen = verdicts[source]; !seen {
				var err error
				byOwnKey, err = r.keys.verify(ctx, source, sigs, body)
				if err != nil {
					errs = append(errs, err)
				}
				verdicts[source] = byOwnKey
			}
		}
		key := client.ObjectKeyFromObject(nsync)
		if byOperator || byOwnKey {
			targets = append(targets, key)
		}
		if byOwnKey || (!ownKey && byOperator) {
			sameEnvironment[key] = true
		}
	}
	return targets, sameEnvironment, errors.Join(errs...)
}

// signingKeyOf is where a NangoSync's own signing key is, if it names one.
func signingKeyOf(nsync *syncv1alpha1.NangoSync) (keySource, bool) {
	if nsync.Spec.Nango == nil || nsync.Spec.Nango.WebhookSigningKeyRef == nil {
		return keySource{}, false
	}
	ref := nsync.Spec.Nango.WebhookSigningKeyRef
	return keySource{secret: types.NamespacedName{Namespace: nsync.Namespace, Name: ref.Name}, key: ref.Key}, true
}

// act queues what a verified webhook asks of its NangoSyncs and answers 202.
//
// A run's state (a failure, or a success that clears one) is written only onto the
// NangoSyncs of the webhook's own environment, and only when the run is newer than the
// last one the receiver wrote for them: a replayed old webhook changes nothing. A
// successful run wakes every target, stale or not, at most once per MinWakeInterval.
func (r *Receiver) act(wh nango.Webhook, all wakeTargets, arrived time.Time) answer {
	targets := all.syncs
	webhookType := labelType(wh.Type)
	accepted := func(result string) answer {
		return answer{http.StatusAccepted, webhookType, result, "accepted"}
	}
	run := wh.Sync
	switch {
	case run == nil || (!run.Succeeded() && !run.Failed()):
		return accepted(resultIgnored)
	case len(targets) == 0:
		r.log.V(1).Info("no NangoSync matches the sync webhook",
			"providerConfigKey", wh.ProviderConfigKey, "connectionId", wh.ConnectionID, "model", run.Model, "variant", run.Variant())
		return accepted(resultNoMatch)
	case run.Succeeded():
		at := runTime(run.QueryTimeStamp, arrived)
		for _, key := range targets {
			clear := all.sameEnvironment[key] && r.waker.newerRun(key, at, all.storedRun[key])
			r.waker.add(key, func(work *wakeWork) { work.mergeSuccess(arrived, clear, at) })
			if r.wakeInProcess != nil && r.waker.inProcessDue(key) {
				r.wakeInProcess(key, requestedAtValue(arrived))
				r.waker.handedOver(key, requestedAtValue(arrived))
			}
		}
		r.log.V(1).Info("waking NangoSyncs for new records", "nangosyncs", targets)
		return accepted(resultWake)
	default:
		failure := runFailure(run, arrived)
		at := runTime(failure.FailedAt, arrived)
		written := make([]types.NamespacedName, 0, len(targets))
		for _, key := range targets {
			if all.sameEnvironment[key] && r.waker.newerRun(key, at, all.storedRun[key]) {
				r.waker.add(key, func(work *wakeWork) { work.mergeFailure(arrived, failure, at) })
				written = append(written, key)
			}
		}
		if len(written) == 0 {
			r.log.V(1).Info("ignored a failed run older than the last run written, or of another environment",
				"nangosyncs", targets, "failedAt", failure.FailedAt)
			return accepted(resultIgnored)
		}
		r.log.Info("Nango reports that its sync run failed", "nangosyncs", written,
			"syncName", failure.SyncName, "errorType", failure.Type)
		return accepted(resultRunFailed)
	}
}

// NewHTTPServer serves handler with the timeouts and limits a public endpoint needs: a
// slow or idle client cannot hold a connection for long.
func NewHTTPServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      20 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
}
