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

// Command nango-sim runs the in-memory Nango emulator (internal/nangosim) on
// a port, for the demo, end-to-end tests and benchmarks.
//
//	nango-sim -addr 127.0.0.1:3003 -seed 100000 -rate-limit 200 -rate-window 60s
//
// It prints its base URL, the default environment's keys and the seeded
// connection, then serves until interrupted. The emulator's keys are fake
// and printed on purpose; the control API under /_sim/ has no
// authentication, so bind it to a private address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nango-operator/nango-operator/internal/nangosim"
)

type config struct {
	addr         string
	secretKey    string
	signingKey   string
	webhookURL   string
	integration  string
	connection   string
	model        string
	seed         int
	batchSize    int
	rateLimit    int
	rateWindow   time.Duration
	maxPageBytes int
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("nango-sim", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:3003", "address to listen on (port 0 picks one)")
	fs.StringVar(&c.secretKey, "secret-key", "", "secret key of the default environment (UUID v4; generated if empty)")
	fs.StringVar(&c.signingKey, "signing-key", "", "webhook signing key (generated if empty)")
	fs.StringVar(&c.webhookURL, "webhook-url", "", "where webhooks are sent")
	fs.StringVar(&c.integration, "integration", "hubspot", "provider config key of the seeded connection")
	fs.StringVar(&c.connection, "connection", "acme-corp", "connection id of the seeded connection")
	fs.StringVar(&c.model, "model", "Contact", "model to seed")
	fs.IntVar(&c.seed, "seed", 0, "number of synthetic records to seed")
	fs.IntVar(&c.batchSize, "seed-batch", 1000, "records per seeded batch (one timestamp each)")
	fs.IntVar(&c.rateLimit, "rate-limit", 0, "requests per account per window (0: no limit; Nango: 200)")
	fs.DurationVar(&c.rateWindow, "rate-window", time.Minute, "rate limit window")
	fs.IntVar(&c.maxPageBytes, "max-page-bytes", 0, "byte budget of a records page (0: none)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.seed < 0 || c.rateLimit < 0 || c.maxPageBytes < 0 {
		return c, errors.New("-seed, -rate-limit and -max-page-bytes must not be negative")
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "nango-sim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	sim := nangosim.New(nangosim.Options{
		SecretKey:    cfg.secretKey,
		SigningKey:   cfg.signingKey,
		WebhookURL:   cfg.webhookURL,
		MaxPageBytes: cfg.maxPageBytes,
		RateLimit:    nangosim.RateLimit{Limit: cfg.rateLimit, Window: cfg.rateWindow},
	})
	ref := nangosim.ModelRef{
		ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: cfg.integration, ConnectionID: cfg.connection},
		Model:         cfg.model,
	}
	if err := sim.CreateConnection(ref.ConnectionRef, cfg.integration); err != nil {
		return err
	}
	if cfg.seed > 0 {
		start := time.Now()
		if _, err := sim.SeedRecords(ref, nangosim.SeedOptions{Count: cfg.seed, BatchSize: cfg.batchSize}); err != nil {
			return err
		}
		fmt.Printf("seeded %d %s records in %s\n", cfg.seed, cfg.model, time.Since(start).Round(time.Millisecond))
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	env, _ := sim.Environment("")
	fmt.Printf("NANGO_URL=http://%s\n", ln.Addr())
	fmt.Printf("NANGO_SECRET_KEY=%s\n", env.SecretKey)
	fmt.Printf("NANGO_WEBHOOK_SIGNING_KEY=%s\n", env.SigningKey)
	fmt.Printf("NANGO_PROVIDER_CONFIG_KEY=%s\nNANGO_CONNECTION_ID=%s\nNANGO_MODEL=%s\n", cfg.integration, cfg.connection, cfg.model)

	srv := &http.Server{
		Handler:           sim.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
