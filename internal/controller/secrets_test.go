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
	"slices"
	"testing"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// TestSecretNames: every Secret a NangoSync reads is one whose change wakes it, so that a
// rotated key or a Secret created after the NangoSync is used at once, not an interval
// later. A Secret named twice is listed once.
func TestSecretNames(t *testing.T) {
	ref := func(name string) syncv1alpha1.SecretKeyReference {
		return syncv1alpha1.SecretKeyReference{Name: name, Key: "k"}
	}
	refp := func(name string) *syncv1alpha1.SecretKeyReference { r := ref(name); return &r }
	cases := []struct {
		name string
		spec syncv1alpha1.NangoSyncSpec
		want []string
	}{{
		name: "the operator's default Nango Secret and a postgres URL",
		spec: syncv1alpha1.NangoSyncSpec{Sink: syncv1alpha1.SinkSpec{Postgres: &syncv1alpha1.PostgresSink{URLSecretRef: ref("pg")}}},
		want: []string{"nango", "pg"},
	}, {
		name: "the NangoSync's own Nango Secret, webhook signing key and field hash key",
		spec: syncv1alpha1.NangoSyncSpec{
			Nango: &syncv1alpha1.NangoEndpoint{SecretRef: refp("own-nango"), WebhookSigningKeyRef: refp("webhook")},
			Sink: syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{Path: "/data/x.db", Table: "t"},
				Fields: &syncv1alpha1.FieldRules{Hash: []syncv1alpha1.FieldPath{"email"}, HashKeySecretRef: refp("hash")}},
		},
		want: []string{"hash", "own-nango", "webhook"},
	}, {
		name: "an http sink's URL, signing key and CA",
		spec: syncv1alpha1.NangoSyncSpec{Sink: syncv1alpha1.SinkSpec{HTTP: &syncv1alpha1.HTTPSink{
			URLSecretRef: ref("endpoint"), SigningKeySecretRef: ref("signing"), CASecretRef: refp("endpoint-ca")}}},
		want: []string{"endpoint", "endpoint-ca", "nango", "signing"},
	}, {
		name: "an http sink without a CA, its URL and key in one Secret",
		spec: syncv1alpha1.NangoSyncSpec{Sink: syncv1alpha1.SinkSpec{HTTP: &syncv1alpha1.HTTPSink{
			URLSecretRef: ref("endpoint"), SigningKeySecretRef: ref("endpoint")}}},
		want: []string{"endpoint", "nango"},
	}, {
		name: "a kafka sink's TLS CA and SASL user name and password",
		spec: syncv1alpha1.NangoSyncSpec{Sink: syncv1alpha1.SinkSpec{Kafka: &syncv1alpha1.KafkaSink{
			Brokers: []string{"kafka:9092"}, Topic: "t",
			TLS: &syncv1alpha1.KafkaTLS{CASecretRef: refp("kafka-ca")},
			SASL: &syncv1alpha1.KafkaSASL{Mechanism: "SCRAM-SHA-512",
				UsernameSecretRef: ref("kafka-user"), PasswordSecretRef: ref("kafka-password")}}}},
		want: []string{"kafka-ca", "kafka-password", "kafka-user", "nango"},
	}, {
		name: "a kafka sink with TLS from the image's roots and no SASL",
		spec: syncv1alpha1.NangoSyncSpec{Sink: syncv1alpha1.SinkSpec{Kafka: &syncv1alpha1.KafkaSink{
			Brokers: []string{"kafka:9092"}, Topic: "t", TLS: &syncv1alpha1.KafkaTLS{}}}},
		want: []string{"nango"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := secretNames(&syncv1alpha1.NangoSync{Spec: tc.spec}, "nango")
			if !slices.Equal(got, tc.want) {
				t.Errorf("secretNames = %q, want %q", got, tc.want)
			}
		})
	}
}
