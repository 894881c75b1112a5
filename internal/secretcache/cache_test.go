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

package secretcache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/nango-operator/nango-operator/internal/secretcache"
)

// apiServer is a fake API server that counts full reads of Secrets, and fails them on demand.
type apiServer struct {
	client.WithWatch
	reads int
	fail  bool
}

func newAPIServer(objs ...client.Object) *apiServer {
	a := &apiServer{}
	a.WithWatch = fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(objs...).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, full := obj.(*corev1.Secret); full {
				a.reads++
				if a.fail {
					return errors.New("the API server is down")
				}
			}
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
	return a
}

func TestDataIsReadOncePerResourceVersion(t *testing.T) {
	ctx := context.Background()
	key := client.ObjectKey{Namespace: "crm", Name: "nango"}
	api := newAPIServer(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Data: map[string][]byte{"secretKey": []byte("one")}})
	cache := secretcache.New(api, api)

	for range 3 {
		data, err := cache.Data(ctx, key)
		if err != nil || string(data["secretKey"]) != "one" {
			t.Fatalf("Data = %q, %v", data, err)
		}
	}
	if api.reads != 1 {
		t.Fatalf("three reads of an unchanged Secret cost %d API reads, want 1", api.reads)
	}

	secret := &corev1.Secret{}
	if err := api.Get(ctx, key, secret); err != nil {
		t.Fatal(err)
	}
	secret.Data["secretKey"] = []byte("two")
	if err := api.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if data, err := cache.Data(ctx, key); err != nil || string(data["secretKey"]) != "two" {
		t.Fatalf("after a change Data = %q, %v; want the new value", data, err)
	}

	api.fail = true
	secret.Data["secretKey"] = []byte("three")
	if err := api.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if data, err := cache.Data(ctx, key); err == nil || string(data["secretKey"]) != "two" {
		t.Fatalf("while the API server fails Data = %q, %v; want the last value read, and the error", data, err)
	}
}

func TestRefreshReadsAtMostOncePerInterval(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	api := newAPIServer()
	cache := secretcache.New(api, api, secretcache.WithClock(func() time.Time { return now }))
	key := client.ObjectKey{Namespace: "crm", Name: "missing"}

	for range 100 {
		if _, err := cache.Refresh(ctx, key, time.Second); !apierrors.IsNotFound(err) {
			t.Fatalf("Refresh of a missing Secret: %v, want NotFound", err)
		}
	}
	if api.reads != 1 {
		t.Fatalf("100 refreshes within the interval cost %d reads, want 1", api.reads)
	}
	now = now.Add(time.Second)
	if _, err := cache.Refresh(ctx, key, time.Second); !apierrors.IsNotFound(err) || api.reads != 2 {
		t.Fatalf("a refresh after the interval: %v, %d reads; want NotFound and a second read", err, api.reads)
	}
}
