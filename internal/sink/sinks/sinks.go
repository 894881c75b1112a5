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

// Package sinks maps a NangoSync's spec.sink to an open sink.Sink, and shares open sinks
// between the NangoSyncs that write to the same place. It is the one place that knows every
// sink kind: a new kind is a package of its own (passing sinktest) plus one case in Resolve.
package sinks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/fields"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink"
	"github.com/nango-operator/nango-operator/internal/sink/kafkasink"
	"github.com/nango-operator/nango-operator/internal/sink/postgres"
	"github.com/nango-operator/nango-operator/internal/sink/sqlite"
)

// SecretFunc reads one key of a Secret of the NangoSync's own namespace.
type SecretFunc func(ctx context.Context, ref syncv1alpha1.SecretKeyReference) (string, error)

// Env is what resolving a NangoSync's sink spec needs besides the spec.
type Env struct {
	// Namespace is the NangoSync's.
	Namespace string
	// Secret reads the Secrets the spec names.
	Secret SecretFunc
	// Checkpoints answers where a sink that cannot hold the operator's checkpoints (http)
	// keeps them, in Namespace, apart for each place written to.
	Checkpoints func(place string) httpsink.Checkpoints
}

// Target is a sink spec resolved, with the values of its Secrets, but not opened yet.
type Target struct {
	// ID names the place written to (database and table, file and table), so that
	// NangoSyncs writing to one place share one open sink. It never holds a secret.
	ID string
	// Name is "<kind>/<table>" as status and `kubectl get` show it.
	Name string
	// open opens the sink.
	open func(ctx context.Context) (sink.Sink, error)
}

// Open opens the sink of t.
func (t Target) Open(ctx context.Context) (sink.Sink, error) {
	return t.open(ctx)
}

// Resolve turns a sink spec into a Target, reading the Secrets it names with env.Secret.
func Resolve(ctx context.Context, spec syncv1alpha1.SinkSpec, env Env) (Target, error) {
	target, err := resolveKind(ctx, spec, env)
	if err != nil {
		return Target{}, err
	}
	return withFieldRules(ctx, target, spec.Fields, env)
}

// withFieldRules makes target apply the field rules of the spec to every page before its
// sink writes it. Two NangoSyncs writing to one place with different rules (or keys) get
// sinks of their own: the id holds a hash of the rules and key, never the key.
func withFieldRules(ctx context.Context, target Target, spec *syncv1alpha1.FieldRules, env Env) (Target, error) {
	if spec == nil || len(spec.Exclude)+len(spec.Hash) == 0 {
		return target, nil
	}
	var key string
	if len(spec.Hash) > 0 {
		if spec.HashKeySecretRef == nil { // the API server refuses this spec
			return Target{}, errors.New("spec.sink.fields.hash needs hashKeySecretRef")
		}
		var err error
		if key, err = env.Secret(ctx, *spec.HashKeySecretRef); err != nil {
			return Target{}, fmt.Errorf("read the hash key: %w", err)
		}
	}
	exclude, hash := paths(spec.Exclude), paths(spec.Hash)
	rules, err := fields.New(exclude, hash, []byte(key))
	if err != nil {
		return Target{}, fmt.Errorf("spec.sink.fields: %w", err)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%q\x00%q\x00%s", exclude, hash, key))
	open := target.open
	target.ID += "/fields/" + hex.EncodeToString(sum[:])
	target.open = func(ctx context.Context) (sink.Sink, error) {
		snk, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return fields.Wrap(snk, rules), nil
	}
	return target, nil
}

func paths(list []syncv1alpha1.FieldPath) []string {
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = string(p)
	}
	return out
}

// resolveKind resolves the sink kind the spec sets.
func resolveKind(ctx context.Context, spec syncv1alpha1.SinkSpec, env Env) (Target, error) {
	hard, secret := spec.Deletes == syncv1alpha1.DeletesHard, env.Secret
	switch {
	case spec.Postgres != nil:
		pg := spec.Postgres
		dsn, err := secret(ctx, pg.URLSecretRef)
		if err != nil {
			return Target{}, fmt.Errorf("read the PostgreSQL URL: %w", err)
		}
		// The id holds a hash of the DSN, never the DSN: it may carry a password.
		sum := sha256.Sum256([]byte(dsn))
		opts := postgres.Options{Schema: pg.Schema, Table: pg.Table, HardDeletes: hard, History: spec.History}
		return Target{
			ID: fmt.Sprintf("postgres/%s/%s/%s/%t/history=%t", hex.EncodeToString(sum[:]), pg.Schema, pg.Table, hard,
				spec.History),
			Name: DisplayName(spec),
			open: func(ctx context.Context) (sink.Sink, error) {
				snk, err := postgres.Open(ctx, dsn, opts)
				if err != nil {
					return nil, fmt.Errorf("open PostgreSQL table %s: %w", pg.Table, err)
				}
				return snk, nil
			},
		}, nil
	case spec.SQLite != nil:
		lite := spec.SQLite
		opts := sqlite.Options{Table: lite.Table, HardDeletes: hard, History: spec.History}
		return Target{
			ID:   fmt.Sprintf("sqlite/%s/%s/%t/history=%t", lite.Path, lite.Table, hard, spec.History),
			Name: DisplayName(spec),
			open: func(ctx context.Context) (sink.Sink, error) {
				snk, err := sqlite.Open(ctx, lite.Path, opts)
				if err != nil {
					return nil, fmt.Errorf("open SQLite table %s in %s: %w", lite.Table, lite.Path, err)
				}
				return snk, nil
			},
		}, nil
	case spec.HTTP != nil:
		return resolveHTTP(ctx, spec, env)
	case spec.Kafka != nil:
		return resolveKafka(ctx, spec, env)
	}
	// The API server refuses a NangoSync without exactly one sink kind.
	return Target{}, errors.New("spec.sink sets no sink kind")
}

// DisplayName names a sink for status and kubectl: "<kind>/<table>", with the schema when
// the spec names one.
func DisplayName(spec syncv1alpha1.SinkSpec) string {
	switch {
	case spec.Postgres != nil && spec.Postgres.Schema != "":
		return "postgres/" + spec.Postgres.Schema + "." + spec.Postgres.Table
	case spec.Postgres != nil:
		return "postgres/" + spec.Postgres.Table
	case spec.SQLite != nil:
		return "sqlite/" + spec.SQLite.Table
	case spec.HTTP != nil:
		return "http/" + spec.HTTP.URLSecretRef.Name
	case spec.Kafka != nil:
		return "kafka/" + spec.Kafka.Topic
	}
	return ""
}

// resolveHTTP reads the Secrets of an http sink. Its checkpoints live in the NangoSync's
// namespace, so its id names the namespace: NangoSyncs of two namespaces posting to one
// URL share no sink.
func resolveHTTP(ctx context.Context, spec syncv1alpha1.SinkSpec, env Env) (Target, error) {
	h := spec.HTTP
	endpoint, err := env.Secret(ctx, h.URLSecretRef)
	if err != nil {
		return Target{}, fmt.Errorf("read the endpoint URL: %w", err)
	}
	signingKey, err := env.Secret(ctx, h.SigningKeySecretRef)
	if err != nil {
		return Target{}, fmt.Errorf("read the signing key: %w", err)
	}
	var ca string
	if h.CASecretRef != nil {
		if ca, err = env.Secret(ctx, *h.CASecretRef); err != nil {
			return Target{}, fmt.Errorf("read the CA certificates: %w", err)
		}
	}
	opts := httpsink.Options{URL: endpoint, SigningKey: []byte(signingKey), CAPEM: []byte(ca),
		MaxBatchBytes: int(h.MaxBatchBytes)}
	if h.Timeout != nil {
		opts.Timeout = h.Timeout.Duration
	}
	// The place is a hash of the URL alone, never of secrets in the clear: rotating the
	// signing key or the CA keeps the checkpoints, pointing at another URL starts over.
	place := sha256.Sum256([]byte(endpoint))
	opts.Checkpoints = env.Checkpoints(hex.EncodeToString(place[:]))
	// The id also hashes the key, CA and limits, so that a change opens a new sink.
	all := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d\x00%d", endpoint, signingKey, ca, opts.Timeout, opts.MaxBatchBytes))
	return Target{
		ID:   fmt.Sprintf("http/%s/%s", env.Namespace, hex.EncodeToString(all[:])),
		Name: DisplayName(spec),
		open: func(context.Context) (sink.Sink, error) {
			snk, err := httpsink.Open(opts)
			if err != nil {
				return nil, fmt.Errorf("open the http sink of Secret %s: %w", h.URLSecretRef.Name, err)
			}
			return snk, nil
		},
	}, nil
}

// resolveKafka reads the Secrets of a kafka sink. Its checkpoints live in the cluster, so
// NangoSyncs of any namespace writing to one topic share one sink.
func resolveKafka(ctx context.Context, spec syncv1alpha1.SinkSpec, env Env) (Target, error) {
	k := spec.Kafka
	opts := kafkasink.Options{Brokers: k.Brokers, Topic: k.Topic, CheckpointTopic: k.CheckpointTopic,
		DisableTransactions: k.Delivery == syncv1alpha1.DeliveryAtLeastOnce, TransactionalIDPrefix: k.TransactionalIDPrefix,
		Tombstones: k.Tombstones}
	if k.TLS != nil {
		opts.TLS = true
		if k.TLS.CASecretRef != nil {
			ca, err := env.Secret(ctx, *k.TLS.CASecretRef)
			if err != nil {
				return Target{}, fmt.Errorf("read the Kafka CA certificates: %w", err)
			}
			opts.CAPEM = []byte(ca)
		}
	}
	if k.SASL != nil {
		username, err := env.Secret(ctx, k.SASL.UsernameSecretRef)
		if err != nil {
			return Target{}, fmt.Errorf("read the Kafka user name: %w", err)
		}
		password, err := env.Secret(ctx, k.SASL.PasswordSecretRef)
		if err != nil {
			return Target{}, fmt.Errorf("read the Kafka password: %w", err)
		}
		opts.SASL = &kafkasink.SASL{Mechanism: k.SASL.Mechanism, Username: username, Password: password}
	}
	// The id hashes everything that opens another sink, secrets included, never in the clear.
	h := sha256.New()
	h.Write(fmt.Appendf(nil, "%q\x00%s\x00%s\x00%t\x00%s\x00%t\x00%t\x00%s", opts.Brokers, opts.Topic, opts.CheckpointTopic,
		opts.DisableTransactions, opts.TransactionalIDPrefix, opts.Tombstones, opts.TLS, opts.CAPEM))
	if opts.SASL != nil {
		h.Write(fmt.Appendf(nil, "\x00%s\x00%s\x00%s", opts.SASL.Mechanism, opts.SASL.Username, opts.SASL.Password))
	}
	return Target{
		ID:   "kafka/" + hex.EncodeToString(h.Sum(nil)),
		Name: DisplayName(spec),
		open: func(context.Context) (sink.Sink, error) {
			snk, err := kafkasink.Open(opts)
			if err != nil {
				return nil, fmt.Errorf("open the kafka sink of topic %s: %w", k.Topic, err)
			}
			return snk, nil
		},
	}, nil
}
