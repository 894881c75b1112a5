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

package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/secretcache"
)

// Signing keys of the tests, UUIDs as Nango's are.
const (
	operatorKey    = "6f1c2b9e-0d4a-4c5e-9b7a-1e2f3a4b5c6d"
	operatorKeyNew = "a8e7d6c5-b4a3-4921-8f0e-d1c2b3a4f5e6"
	teamKey        = "0e9d8c7b-6a5f-4e3d-9c1b-a0f9e8d7c6b5"
	strangerKey    = "deadbeef-dead-4eef-8ead-beefdeadbeef"
)

var (
	operatorSecret = types.NamespacedName{Namespace: "operator-system", Name: "nango-webhook"}
	// contacts and deals read one connection; ownKey reads contacts of the same connection
	// with its own signing key; variant reads a variant of the contacts.
	contacts = types.NamespacedName{Namespace: "crm", Name: "contacts"}
	deals    = types.NamespacedName{Namespace: "crm", Name: "deals"}
	variant  = types.NamespacedName{Namespace: "crm", Name: "contacts-eu"}
	ownKey   = types.NamespacedName{Namespace: "team", Name: "contacts"}
)

func testScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(syncv1alpha1.AddToScheme(scheme))
	return scheme
}

func nangoSync(key types.NamespacedName, model, variantName string) *syncv1alpha1.NangoSync {
	return &syncv1alpha1.NangoSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Spec: syncv1alpha1.NangoSyncSpec{
			ConnectionID:      "acme",
			ProviderConfigKey: "hubspot",
			Model:             model,
			Variant:           variantName,
			Sink:              syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{Path: "/data/nango.db", Table: "t"}},
		},
	}
}

func secret(key types.NamespacedName, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// fixtures are the objects most tests start from.
func fixtures() []client.Object {
	withOwnKey := nangoSync(ownKey, "Contact", "")
	withOwnKey.Spec.Nango = &syncv1alpha1.NangoEndpoint{
		WebhookSigningKeyRef: &syncv1alpha1.SecretKeyReference{Name: "nango-signing", Key: "key"},
	}
	return []client.Object{
		secret(operatorSecret, map[string]string{"key": operatorKey}),
		secret(types.NamespacedName{Namespace: "team", Name: "nango-signing"}, map[string]string{"key": teamKey + "\n"}),
		nangoSync(contacts, "Contact", "base"),
		nangoSync(deals, "Deal", "base"),
		nangoSync(variant, "Contact", "eu"),
		withOwnKey,
	}
}

// patchRecord is one patch the receiver sent.
type patchRecord struct {
	key     types.NamespacedName
	body    string
	started time.Time
}

// requestedAt is the requested-at value the patch writes, "" when it writes none.
func (p patchRecord) requestedAt() string {
	var patch struct {
		Metadata struct {
			Annotations map[string]*string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(p.body), &patch); err != nil {
		return ""
	}
	if v := patch.Metadata.Annotations[syncv1alpha1.RequestedAtAnnotation]; v != nil {
		return *v
	}
	return ""
}

// apiCalls records the receiver's calls to the API server and can hold patches back.
type apiCalls struct {
	mu          sync.Mutex
	patches     []patchRecord
	secretReads int
	// hold, while set, blocks every patch until it is closed.
	hold chan struct{}
	// failSecretReads and failLists make those calls fail as an unreachable API server would.
	failSecretReads bool
	failLists       bool
	// failPatches is how many patches, from now, fail.
	failPatches int
}

func (a *apiCalls) funcs() interceptor.Funcs {
	return interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			data, err := patch.Data(obj)
			if err != nil {
				return err
			}
			a.mu.Lock()
			a.patches = append(a.patches, patchRecord{key: client.ObjectKeyFromObject(obj), body: string(data), started: time.Now()})
			hold := a.hold
			fail := a.failPatches > 0
			if fail {
				a.failPatches--
			}
			a.mu.Unlock()
			if hold != nil {
				<-hold
			}
			if fail {
				return errUnreachable
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*corev1.Secret); ok {
				a.mu.Lock()
				a.secretReads++
				fail := a.failSecretReads
				a.mu.Unlock()
				if fail {
					return errUnreachable
				}
			}
			return c.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			a.mu.Lock()
			fail := a.failLists
			a.mu.Unlock()
			if fail {
				return errUnreachable
			}
			return c.List(ctx, list, opts...)
		},
	}
}

type unreachableError struct{}

func (unreachableError) Error() string { return "connection refused" }

var errUnreachable = unreachableError{}

func (a *apiCalls) patchesOf(key types.NamespacedName) []patchRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []patchRecord
	for _, p := range a.patches {
		if p.key == key {
			out = append(out, p)
		}
	}
	return out
}

func (a *apiCalls) patchCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.patches)
}

func (a *apiCalls) secretReadCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.secretReads
}

func (a *apiCalls) set(f func(*apiCalls)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a Receiver on a fake API server.
type harness struct {
	t        testing.TB
	client   client.Client
	calls    *apiCalls
	registry *prometheus.Registry
	receiver *Receiver
	clock    *fakeClock
}

// newHarness builds a receiver over objs; start runs its wake workers until the test ends.
func newHarness(t testing.TB, start bool, configure func(*Options), objs ...client.Object) *harness {
	t.Helper()
	h := &harness{t: t, calls: &apiCalls{}, registry: prometheus.NewRegistry(), clock: &fakeClock{now: time.Unix(1_700_000_000, 0)}}
	h.client = fake.NewClientBuilder().
		WithScheme(testScheme()).
		WithObjects(objs...).
		WithIndex(&syncv1alpha1.NangoSync{}, modelIndex, indexDataSet).
		WithIndex(&syncv1alpha1.NangoSync{}, connectionIndex, indexConnection).
		WithIndex(&syncv1alpha1.NangoSyncSet{}, setIndex, indexSetIntegration).
		WithInterceptorFuncs(h.calls.funcs()).
		Build()
	opts := Options{
		Client:        h.client,
		Secrets:       secretcache.New(h.client, h.client, secretcache.WithClock(h.clock.Now)),
		SigningSecret: operatorSecret,
		Registerer:    h.registry,
		Log:           logr.Discard(),
	}
	if tt, ok := t.(*testing.T); ok {
		opts.Log = testr.New(tt)
	}
	if configure != nil {
		configure(&opts)
	}
	r, err := New(opts)
	if err != nil {
		t.Fatalf("new receiver: %v", err)
	}
	h.receiver = r
	if start {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = r.Start(ctx)
		}()
		t.Cleanup(func() {
			h.calls.set(func(a *apiCalls) {
				if a.hold != nil {
					close(a.hold)
					a.hold = nil
				}
			})
			cancel()
			<-done
		})
	}
	return h
}

// syncPayload is a sync webhook as Nango builds it.
func syncPayload(model, variantName string, success bool) map[string]any {
	p := map[string]any{
		"from": "nango", "type": "sync", "connectionId": "acme", "providerConfigKey": "hubspot",
		"syncName": "contacts", "model": model, "success": success,
	}
	if success {
		p["syncVariant"] = variantName
		p["syncType"] = "INCREMENTAL"
		p["responseResults"] = map[string]int{"added": 1, "updated": 0, "deleted": 0}
		p["modifiedAfter"] = "2026-05-01T10:00:00.000Z"
		p["queryTimeStamp"] = "2026-05-01T10:00:01.000Z"
		p["checkpoints"] = map[string]any{"from": map[string]any{}, "to": map[string]any{}}
	} else {
		p["error"] = map[string]string{"type": "script_error", "description": "TypeError: cannot read properties of undefined"}
		p["startedAt"] = "2026-05-01T10:00:00.000Z"
		p["failedAt"] = "2026-05-01T10:00:05.000Z"
	}
	return p
}

// encode encodes a payload as Nango does: compact JSON, keys sorted.
func encode(t testing.TB, payload any) []byte {
	t.Helper()
	body, err := nangosim.StableJSON(payload)
	if err != nil {
		t.Fatalf("encode webhook: %v", err)
	}
	return body
}

// signedWith is the header Nango sends with body, signed with key.
func signedWith(key string, body []byte) http.Header {
	hmacHex, legacyHex := nangosim.SignWebhookBody(key, body)
	h := http.Header{}
	h.Set(nango.HeaderWebhookHMAC, hmacHex)
	h.Set(nango.HeaderWebhookLegacy, legacyHex)
	return h
}

// legacyOnly is the header of an old sender that signs with the legacy signature only.
func legacyOnly(key string, body []byte) http.Header {
	_, legacyHex := nangosim.SignWebhookBody(key, body)
	h := http.Header{}
	h.Set(nango.HeaderWebhookLegacy, legacyHex)
	return h
}

// post sends one request to the receiver and answers its response.
func (h *harness) post(method, path string, body []byte, header http.Header) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	for name, values := range header {
		for _, v := range values {
			req.Header.Add(name, v) // canonicalises the name, as a server reading the wire does
		}
	}
	rec := httptest.NewRecorder()
	h.receiver.ServeHTTP(rec, req)
	return rec
}

// webhook posts body, signed with key, to the receiver's path.
func (h *harness) webhook(key string, body []byte) int {
	h.t.Helper()
	return h.post(http.MethodPost, Path, body, signedWith(key, body)).Code
}

// count reads nango_operator_webhooks_total{type,result}.
func (h *harness) count(webhookType, result string) float64 {
	h.t.Helper()
	return h.metricValue("nango_operator_webhooks_total", map[string]string{"type": webhookType, "result": result})
}

// metricValue reads a counter, or a histogram's sample count, from the harness's registry.
func (h *harness) metricValue(name string, labels map[string]string) float64 {
	h.t.Helper()
	families, err := h.registry.Gather()
	if err != nil {
		h.t.Fatalf("gather metrics: %v", err)
	}
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
	metric:
		for _, m := range family.GetMetric() {
			for _, pair := range m.GetLabel() {
				if labels[pair.GetName()] != pair.GetValue() {
					continue metric
				}
			}
			if m.GetHistogram() != nil {
				return float64(m.GetHistogram().GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// annotations reads a NangoSync's annotations.
func (h *harness) annotations(key types.NamespacedName) map[string]string {
	h.t.Helper()
	nsync := &syncv1alpha1.NangoSync{}
	if err := h.client.Get(context.Background(), key, nsync); err != nil {
		h.t.Fatalf("get NangoSync %s: %v", key, err)
	}
	return nsync.Annotations
}
