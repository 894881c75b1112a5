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
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// shutdownTimeout bounds how long the server waits for webhooks being answered when the
// manager stops.
const shutdownTimeout = 10 * time.Second

// serviceAccountNamespaceFile holds the pod's namespace in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Config is how the manager's flags set up the receiver.
type Config struct {
	// BindAddress is where the receiver listens, for example ":8090".
	BindAddress string
	// SigningSecret is the operator's own Secret of signing keys.
	SigningSecret types.NamespacedName
	// AllowLegacySignature accepts the legacy X-Nango-Signature.
	AllowLegacySignature bool
	// WakeInProcess, when set, also hands each wake to the controller of this replica.
	WakeInProcess func(nsync types.NamespacedName, requestedAt string)
}

// SetupWithManager adds the receiver to mgr: its field indexes, its wake workers and its
// HTTP server, all running on every replica. It listens at once, so that an address in use
// fails the start rather than the running manager.
func SetupWithManager(mgr manager.Manager, cfg Config) error {
	if err := IndexNangoSyncs(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	r, err := New(Options{
		Client:               mgr.GetClient(),
		SecretReader:         mgr.GetAPIReader(),
		SigningSecret:        cfg.SigningSecret,
		AllowLegacySignature: cfg.AllowLegacySignature,
		WakeInProcess:        cfg.WakeInProcess,
		Registerer:           ctrlmetrics.Registry,
		Log:                  mgr.GetLogger().WithName("webhook-receiver"),
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(r); err != nil {
		return fmt.Errorf("add the webhook receiver's workers: %w", err)
	}
	listener, err := net.Listen("tcp", cfg.BindAddress)
	if err != nil {
		return fmt.Errorf("listen for webhooks on %s: %w", cfg.BindAddress, err)
	}
	timeout := shutdownTimeout
	server := &manager.Server{
		Name:                "webhook-receiver",
		Server:              NewHTTPServer(r),
		Listener:            listener,
		OnlyServeWhenLeader: false,
		ShutdownTimeout:     &timeout,
	}
	if err := mgr.Add(server); err != nil {
		_ = listener.Close()
		return fmt.Errorf("add the webhook receiver's server: %w", err)
	}
	return nil
}

// OwnNamespace is the namespace the operator runs in: $POD_NAMESPACE, else the service
// account's namespace, else "default" (out of a cluster).
func OwnNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if data, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(data)); ns != "" {
			return ns
		}
	}
	return "default"
}
