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

	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/nango-operator/nango-operator/internal/secretcache"
)

// shutdownTimeout bounds how long the server waits for webhooks being answered when the
// manager stops.
const shutdownTimeout = 10 * time.Second

// serviceAccountNamespaceFile holds the pod's namespace in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// SetupWithManager adds the receiver to mgr: its field indexes, its wake workers and its
// HTTP server on opts.BindAddress, all running on every replica. The manager's cached
// client and API reader (or those of opts.NangoSyncs), its metrics registry and logger take
// the place of opts' own. It listens at once, so that an address in use fails the start rather
// than the running manager.
func SetupWithManager(mgr manager.Manager, opts Options) error {
	var nangoSyncs cluster.Cluster = mgr
	if opts.NangoSyncs != nil {
		nangoSyncs = opts.NangoSyncs
		if err := mgr.Add(nangoSyncs); err != nil {
			return fmt.Errorf("add the webhook receiver's cache of NangoSyncs: %w", err)
		}
	}
	if err := IndexNangoSyncs(context.Background(), nangoSyncs.GetFieldIndexer()); err != nil {
		return err
	}
	if err := IndexNangoSyncSets(context.Background(), nangoSyncs.GetFieldIndexer()); err != nil {
		return err
	}
	opts.Client, opts.APIReader = nangoSyncs.GetClient(), nangoSyncs.GetAPIReader()
	if opts.Secrets == nil {
		opts.Secrets = secretcache.New(mgr.GetClient(), mgr.GetAPIReader())
	}
	opts.Registerer, opts.Log = ctrlmetrics.Registry, mgr.GetLogger().WithName("webhook-receiver")
	r, err := New(opts)
	if err != nil {
		return err
	}
	if err := mgr.Add(r); err != nil {
		return fmt.Errorf("add the webhook receiver's workers: %w", err)
	}
	listener, err := net.Listen("tcp", opts.BindAddress)
	if err != nil {
		return fmt.Errorf("listen for webhooks on %s: %w", opts.BindAddress, err)
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
