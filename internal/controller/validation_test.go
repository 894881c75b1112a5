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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// validSpec is the smallest NangoSync spec the API server accepts.
func validSpec() map[string]any {
	return map[string]any{
		"connectionId":      "acme-corp",
		"providerConfigKey": "hubspot",
		"model":             "Contact",
		"sink": map[string]any{
			"postgres": map[string]any{
				"urlSecretRef": map[string]any{"name": "pg", "key": "url"},
				"table":        "hubspot_contacts",
			},
		},
	}
}

// newNangoSync builds an unstructured NangoSync, so that tests can send what the typed API
// cannot express: missing fields, wrong types, malformed times.
func newNangoSync(spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(syncv1alpha1.GroupVersion.WithKind("NangoSync"))
	u.SetNamespace("default")
	u.SetGenerateName("validation-")
	return u
}

// expectRefused asserts that the API server refused the object as invalid, and that its
// message names the field and says what is wrong.
func expectRefused(err error, field, says string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the API server accepted an invalid NangoSync")
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got: %v", err)
	Expect(err.Error()).To(ContainSubstring(field))
	Expect(err.Error()).To(ContainSubstring(says))
}

var _ = Describe("NangoSync validation by the API server", func() {
	DescribeTable("refuses an invalid NangoSync on create, naming the field",
		func(mutate func(spec map[string]any), field, says string) {
			spec := validSpec()
			mutate(spec)
			expectRefused(k8sClient.Create(ctx, newNangoSync(spec)), field, says)
		},
		Entry("missing connectionId",
			func(s map[string]any) { delete(s, "connectionId") },
			"spec.connectionId", "Required value"),
		Entry("empty connectionId",
			func(s map[string]any) { s["connectionId"] = "" },
			"spec.connectionId", "at least 1 chars long"),
		Entry("missing providerConfigKey",
			func(s map[string]any) { delete(s, "providerConfigKey") },
			"spec.providerConfigKey", "Required value"),
		Entry("missing model",
			func(s map[string]any) { delete(s, "model") },
			"spec.model", "Required value"),
		Entry("model starting lower-case",
			func(s map[string]any) { s["model"] = "contact" },
			"spec.model", "should match '^[A-Z][a-zA-Z0-9_-]+$'"),
		Entry("model with a space",
			func(s map[string]any) { s["model"] = "Hub Contact" },
			"spec.model", "should match"),
		Entry("variant with a space",
			func(s map[string]any) { s["variant"] = "eu west" },
			"spec.variant", "should match"),
		Entry("pageSize 0",
			func(s map[string]any) { s["pageSize"] = int64(0) },
			"spec.pageSize", "should be greater than or equal to 1"),
		Entry("pageSize 10001",
			func(s map[string]any) { s["pageSize"] = int64(10001) },
			"spec.pageSize", "should be less than or equal to 10000"),
		Entry("interval 1s",
			func(s map[string]any) { s["interval"] = "1s" },
			"spec.interval", "interval must be at least 10s"),
		Entry("interval not a duration",
			func(s map[string]any) { s["interval"] = "five minutes" },
			"spec.interval", "should match"),
		Entry("modifiedAfter not a date-time",
			func(s map[string]any) { s["modifiedAfter"] = "yesterday" },
			"spec.modifiedAfter", "date-time"),
		Entry("two sink kinds",
			func(s map[string]any) {
				s["sink"].(map[string]any)["sqlite"] = map[string]any{"path": "/data/nango.db", "table": "contacts"}
			},
			"spec.sink", "exactly one sink kind must be set: postgres, sqlite, http or kafka"),
		Entry("http timeout under 1s",
			func(s map[string]any) {
				s["sink"] = map[string]any{"http": httpSinkFields(map[string]any{"timeout": "100ms"})}
			},
			"spec.sink.http.timeout", "timeout must be between 1s and 5m"),
		Entry("http maxBatchBytes under 4096",
			func(s map[string]any) {
				s["sink"] = map[string]any{"http": httpSinkFields(map[string]any{"maxBatchBytes": int64(100)})}
			},
			"spec.sink.http.maxBatchBytes", "should be greater than or equal to 4096"),
		Entry("http without a signing key",
			func(s map[string]any) {
				spec := httpSinkFields(nil)
				delete(spec, "signingKeySecretRef")
				s["sink"] = map[string]any{"http": spec}
			},
			"spec.sink.http.signingKeySecretRef", "Required value"),
		Entry("http with hard deletes",
			func(s map[string]any) { s["sink"] = map[string]any{"http": httpSinkFields(nil), "deletes": "Hard"} },
			"spec.sink", "deletes: Hard applies to tables"),
		Entry("kafka without brokers",
			func(s map[string]any) { s["sink"] = map[string]any{"kafka": map[string]any{"topic": "contacts"}} },
			"spec.sink.kafka.brokers", "Required value"),
		Entry("kafka broker without a port",
			func(s map[string]any) {
				s["sink"] = map[string]any{"kafka": kafkaSinkFields(map[string]any{"brokers": []any{"kafka-0.kafka"}})}
			},
			"spec.sink.kafka.brokers[0]", "should match"),
		Entry("kafka topic with a slash",
			func(s map[string]any) {
				s["sink"] = map[string]any{"kafka": kafkaSinkFields(map[string]any{"topic": "nango/{model}"})}
			},
			"spec.sink.kafka.topic", "should match"),
		Entry("kafka topic with an unknown placeholder",
			func(s map[string]any) {
				s["sink"] = map[string]any{"kafka": kafkaSinkFields(map[string]any{"topic": "nango.{connection}"})}
			},
			"spec.sink.kafka.topic", "should match"),
		Entry("kafka checkpoint topic that is the records topic",
			func(s map[string]any) {
				s["sink"] = map[string]any{"kafka": kafkaSinkFields(map[string]any{"checkpointTopic": "contacts"})}
			},
			"spec.sink.kafka", "checkpointTopic must differ from topic"),
		Entry("kafka unknown delivery",
			func(s map[string]any) {
				s["sink"] = map[string]any{"kafka": kafkaSinkFields(map[string]any{"delivery": "ExactlyTwice"})}
			},
			"spec.sink.kafka.delivery", `supported values: "ExactlyOnce", "AtLeastOnce"`),
		Entry("kafka unknown SASL mechanism",
			func(s map[string]any) {
				s["sink"] = map[string]any{"kafka": kafkaSinkFields(map[string]any{"sasl": map[string]any{"mechanism": "GSSAPI",
					"usernameSecretRef": map[string]any{"name": "kafka", "key": "username"},
					"passwordSecretRef": map[string]any{"name": "kafka", "key": "password"}}})}
			},
			"spec.sink.kafka.sasl.mechanism", `supported values: "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"`),
		Entry("kafka SASL without a password",
			func(s map[string]any) {
				s["sink"] = map[string]any{"kafka": kafkaSinkFields(map[string]any{"sasl": map[string]any{"mechanism": "PLAIN",
					"usernameSecretRef": map[string]any{"name": "kafka", "key": "username"}}})}
			},
			"spec.sink.kafka.sasl.passwordSecretRef", "Required value"),
		Entry("kafka with hard deletes",
			func(s map[string]any) { s["sink"] = map[string]any{"kafka": kafkaSinkFields(nil), "deletes": "Hard"} },
			"spec.sink", "a kafka sink writes every deletion"),
		Entry("no sink kind",
			func(s map[string]any) { s["sink"] = map[string]any{} },
			"spec.sink", "exactly one sink kind must be set: postgres, sqlite, http or kafka"),
		Entry("no sink at all",
			func(s map[string]any) { delete(s, "sink") },
			"spec.sink", "Required value"),
		Entry("table name with SQL in it",
			func(s map[string]any) {
				s["sink"].(map[string]any)["postgres"].(map[string]any)["table"] = "contacts; DROP TABLE users"
			},
			"spec.sink.postgres.table", "should match '^[a-z_][a-z0-9_]*$'"),
		Entry("quoted table name",
			func(s map[string]any) {
				s["sink"].(map[string]any)["postgres"].(map[string]any)["table"] = `"Contacts"`
			},
			"spec.sink.postgres.table", "should match"),
		Entry("table name longer than PostgreSQL's 63-byte identifiers",
			func(s map[string]any) {
				s["sink"].(map[string]any)["postgres"].(map[string]any)["table"] = "t234567890123456789012345678901234567890123456789012345678901234"
			},
			"spec.sink.postgres.table", "may not be more than 63 bytes"),
		Entry("postgres table the operator keeps checkpoints in",
			func(s map[string]any) {
				s["sink"].(map[string]any)["postgres"].(map[string]any)["table"] = "nango_sync_checkpoints"
			},
			"spec.sink.postgres.table", "nango_sync_checkpoints, nango_sync_quarantine and nango_sync_layout are the operator's own tables"),
		Entry("postgres table the operator keeps quarantined records in",
			func(s map[string]any) {
				s["sink"].(map[string]any)["postgres"].(map[string]any)["table"] = "nango_sync_quarantine"
			},
			"spec.sink.postgres.table", "nango_sync_checkpoints, nango_sync_quarantine and nango_sync_layout are the operator's own tables"),
		Entry("postgres table the operator keeps layout versions in",
			func(s map[string]any) {
				s["sink"].(map[string]any)["postgres"].(map[string]any)["table"] = "nango_sync_layout"
			},
			"spec.sink.postgres.table", "nango_sync_checkpoints, nango_sync_quarantine and nango_sync_layout are the operator's own tables"),
		Entry("sqlite table the operator keeps checkpoints in",
			func(s map[string]any) {
				s["sink"] = map[string]any{"sqlite": map[string]any{"path": "/data/nango.db", "table": "nango_sync_checkpoints"}}
			},
			"spec.sink.sqlite.table", "nango_sync_checkpoints, nango_sync_quarantine and nango_sync_layout are the operator's own tables"),
		Entry("sqlite table the operator keeps quarantined records in",
			func(s map[string]any) {
				s["sink"] = map[string]any{"sqlite": map[string]any{"path": "/data/nango.db", "table": "nango_sync_quarantine"}}
			},
			"spec.sink.sqlite.table", "nango_sync_checkpoints, nango_sync_quarantine and nango_sync_layout are the operator's own tables"),
		Entry("sqlite table the operator keeps layout versions in",
			func(s map[string]any) {
				s["sink"] = map[string]any{"sqlite": map[string]any{"path": "/data/nango.db", "table": "nango_sync_layout"}}
			},
			"spec.sink.sqlite.table", "nango_sync_checkpoints, nango_sync_quarantine and nango_sync_layout are the operator's own tables"),
		Entry("unsafe schema name",
			func(s map[string]any) {
				s["sink"].(map[string]any)["postgres"].(map[string]any)["schema"] = "public.x"
			},
			"spec.sink.postgres.schema", "should match"),
		Entry("unsafe sqlite table name",
			func(s map[string]any) {
				s["sink"] = map[string]any{"sqlite": map[string]any{"path": "/data/nango.db", "table": "1contacts"}}
			},
			"spec.sink.sqlite.table", "should match"),
		Entry("relative sqlite path",
			func(s map[string]any) {
				s["sink"] = map[string]any{"sqlite": map[string]any{"path": "nango.db", "table": "contacts"}}
			},
			"spec.sink.sqlite.path", "should match"),
		Entry("postgres sink without its Secret",
			func(s map[string]any) {
				delete(s["sink"].(map[string]any)["postgres"].(map[string]any), "urlSecretRef")
			},
			"spec.sink.postgres.urlSecretRef", "Required value"),
		Entry("unknown delete mode",
			func(s map[string]any) { s["sink"].(map[string]any)["deletes"] = "Never" },
			"spec.sink.deletes", `supported values: "Soft", "Hard"`),
		Entry("unknown deletionPolicy",
			func(s map[string]any) { s["deletionPolicy"] = "Destroy" },
			"spec.deletionPolicy", `supported values: "Retain", "Delete"`),
		Entry("nango url that is not http(s)",
			func(s map[string]any) { s["nango"] = map[string]any{"url": "ftp://nango.example.com"} },
			"spec.nango.url", "url must be an absolute http or https URL"),
		Entry("nango url that is not absolute",
			func(s map[string]any) { s["nango"] = map[string]any{"url": "/records"} },
			"spec.nango.url", "url must be an absolute http or https URL"),
		Entry("nango secretRef without a key",
			func(s map[string]any) { s["nango"] = map[string]any{"secretRef": map[string]any{"name": "nango"}} },
			"spec.nango.secretRef.key", "Required value"),
		Entry("field path with an empty key",
			func(s map[string]any) { sinkFields(s, map[string]any{"exclude": []any{"address..street"}}) },
			"spec.sink.fields.exclude[0]", "should match"),
		Entry("field path with a character gjson would read as a query",
			func(s map[string]any) { sinkFields(s, map[string]any{"exclude": []any{"emails.#"}}) },
			"spec.sink.fields.exclude[0]", "should match"),
		Entry("a field excluded twice",
			func(s map[string]any) { sinkFields(s, map[string]any{"exclude": []any{"ssn", "ssn"}}) },
			"spec.sink.fields.exclude[1]", "Duplicate value"),
		Entry("a field both excluded and hashed",
			func(s map[string]any) {
				sinkFields(s, map[string]any{"exclude": []any{"email"}, "hash": []any{"email"},
					"hashKeySecretRef": map[string]any{"name": "pii", "key": "hmacKey"}})
			},
			"spec.sink.fields", "a path may not be both excluded and hashed"),
		Entry("a hashed field inside an excluded one",
			func(s map[string]any) {
				sinkFields(s, map[string]any{"exclude": []any{"owner"}, "hash": []any{"owner.email"},
					"hashKeySecretRef": map[string]any{"name": "pii", "key": "hmacKey"}})
			},
			"spec.sink.fields", "a path may not be both excluded and hashed"),
		Entry("hash without a key",
			func(s map[string]any) { sinkFields(s, map[string]any{"hash": []any{"email"}}) },
			"spec.sink.fields", "hash needs hashKeySecretRef"),
		Entry("Secret name that is not a DNS subdomain",
			func(s map[string]any) {
				s["nango"] = map[string]any{"secretRef": map[string]any{"name": "Nango_Secret", "key": "secretKey"}}
			},
			"spec.nango.secretRef.name", "should match"),
	)

	DescribeTable("refuses changing the identity of the data set on update",
		func(field string, newValue any, says string) {
			created := newNangoSync(validSpec())
			Expect(k8sClient.Create(ctx, created)).To(Succeed())
			DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, created))).To(Succeed()) })

			changed := created.DeepCopy()
			Expect(unstructured.SetNestedField(changed.Object, newValue, "spec", field)).To(Succeed())
			expectRefused(k8sClient.Update(ctx, changed), "spec."+field, says)
		},
		Entry("connectionId", "connectionId", "other-corp", "connectionId is immutable"),
		Entry("providerConfigKey", "providerConfigKey", "salesforce", "providerConfigKey is immutable"),
		Entry("model", "model", "Company", "model is immutable"),
		Entry("variant", "variant", "eu", "variant is immutable"),
	)

	It("accepts a minimal NangoSync and fills in the defaults", func() {
		created := newNangoSync(validSpec())
		Expect(k8sClient.Create(ctx, created)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, created)).To(Succeed()) })

		var got syncv1alpha1.NangoSync
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(created), &got)).To(Succeed())
		Expect(got.Spec.Interval).To(Equal(&metav1.Duration{Duration: 5 * time.Minute}))
		Expect(got.Spec.PageSize).To(Equal(int32(1000)))
		Expect(got.Spec.Variant).To(Equal("base"))
		Expect(got.Spec.DeletionPolicy).To(Equal(syncv1alpha1.DeletionPolicyRetain))
		Expect(got.Spec.Sink.Deletes).To(Equal(syncv1alpha1.DeletesSoft))
		Expect(got.Spec.Suspend).To(BeFalse())
	})

	It("accepts a NangoSync that sets every field, and keeps them", func() {
		modifiedAfter := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		want := &syncv1alpha1.NangoSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "every-field"},
			Spec: syncv1alpha1.NangoSyncSpec{
				ConnectionID:      "acme-corp",
				ProviderConfigKey: "salesforce-prod",
				Model:             "Deal_v2",
				Variant:           "eu-west",
				SyncName:          "deals",
				Nango: &syncv1alpha1.NangoEndpoint{
					URL:       "https://nango.internal.example.com:3003",
					SecretRef: &syncv1alpha1.SecretKeyReference{Name: "nango.prod", Key: "secret_key"},
				},
				Sink: syncv1alpha1.SinkSpec{
					SQLite:  &syncv1alpha1.SQLiteSink{Path: "/data/nango.db", Table: "deals"},
					Deletes: syncv1alpha1.DeletesHard,
					Fields: &syncv1alpha1.FieldRules{
						Exclude:          []syncv1alpha1.FieldPath{"ssn", "address.street"},
						Hash:             []syncv1alpha1.FieldPath{"email", "contacts.phone", "$ref_id", "x-tag"},
						HashKeySecretRef: &syncv1alpha1.SecretKeyReference{Name: "pii", Key: "hmacKey"},
					},
				},
				Interval:       &metav1.Duration{Duration: 90 * time.Second},
				PageSize:       10000,
				ModifiedAfter:  &modifiedAfter,
				Suspend:        true,
				DeletionPolicy: syncv1alpha1.DeletionPolicyDelete,
			},
		}
		Expect(k8sClient.Create(ctx, want.DeepCopy())).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, want)).To(Succeed()) })

		var got syncv1alpha1.NangoSync
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(want), &got)).To(Succeed())
		// Times come back in the local zone; compare the instant, then the rest.
		Expect(got.Spec.ModifiedAfter.Time).To(BeTemporally("==", modifiedAfter.Time))
		got.Spec.ModifiedAfter = want.Spec.ModifiedAfter
		Expect(got.Spec).To(Equal(want.Spec))
	})

	It("accepts an http sink that sets every field, and keeps them", func() {
		spec := validSpec()
		spec["sink"] = map[string]any{"http": httpSinkFields(map[string]any{
			"caSecretRef": map[string]any{"name": "endpoint", "key": "ca.crt"}, "timeout": "5m", "maxBatchBytes": int64(4096),
		})}
		created := newNangoSync(spec)
		Expect(k8sClient.Create(ctx, created)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, created)).To(Succeed()) })

		var got syncv1alpha1.NangoSync
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(created), &got)).To(Succeed())
		Expect(got.Spec.Sink.HTTP).To(Equal(&syncv1alpha1.HTTPSink{
			URLSecretRef:        syncv1alpha1.SecretKeyReference{Name: "endpoint", Key: "url"},
			SigningKeySecretRef: syncv1alpha1.SecretKeyReference{Name: "endpoint", Key: "signingKey"},
			CASecretRef:         &syncv1alpha1.SecretKeyReference{Name: "endpoint", Key: "ca.crt"},
			Timeout:             &metav1.Duration{Duration: 5 * time.Minute},
			MaxBatchBytes:       4096,
		}))
	})

	It("accepts a kafka sink that sets every field, keeps them, and defaults delivery to ExactlyOnce", func() {
		spec := validSpec()
		spec["sink"] = map[string]any{"kafka": kafkaSinkFields(nil)}
		minimal := newNangoSync(spec)
		Expect(k8sClient.Create(ctx, minimal)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, minimal)).To(Succeed()) })
		var got syncv1alpha1.NangoSync
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(minimal), &got)).To(Succeed())
		Expect(got.Spec.Sink.Kafka.Delivery).To(Equal(syncv1alpha1.DeliveryExactlyOnce))

		ref := func(key string) syncv1alpha1.SecretKeyReference {
			return syncv1alpha1.SecretKeyReference{Name: "kafka", Key: key}
		}
		want := &syncv1alpha1.KafkaSink{Brokers: []string{"kafka-0.kafka:9093", "10.0.0.7:9093"}, Topic: "nango.hubspot.{model}",
			CheckpointTopic: "nango-checkpoints", Delivery: syncv1alpha1.DeliveryAtLeastOnce, TransactionalIDPrefix: "crm-nango",
			Tombstones: true, TLS: &syncv1alpha1.KafkaTLS{CASecretRef: new(ref("ca.crt"))},
			SASL: &syncv1alpha1.KafkaSASL{Mechanism: "SCRAM-SHA-512", UsernameSecretRef: ref("username"), PasswordSecretRef: ref("password")}}
		every := &syncv1alpha1.NangoSync{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "every-kafka-field"},
			Spec: syncv1alpha1.NangoSyncSpec{ConnectionID: "acme", ProviderConfigKey: "hubspot", Model: "Contact",
				Sink: syncv1alpha1.SinkSpec{Kafka: want}}}
		Expect(k8sClient.Create(ctx, every)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, every)).To(Succeed()) })
		var kept syncv1alpha1.NangoSync
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(every), &kept)).To(Succeed())
		Expect(kept.Spec.Sink.Kafka).To(Equal(want))
	})

	It("accepts changes to everything but the data set's identity", func() {
		created := newNangoSync(validSpec())
		Expect(k8sClient.Create(ctx, created)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, created)).To(Succeed()) })

		var got syncv1alpha1.NangoSync
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(created), &got)).To(Succeed())
		got.Spec.Interval = &metav1.Duration{Duration: time.Hour}
		got.Spec.PageSize = 50
		got.Spec.Suspend = true
		got.Spec.Sink.Postgres.Table = "contacts_v2"
		Expect(k8sClient.Update(ctx, &got)).To(Succeed())
	})
})

// kafkaSinkFields is a valid spec.sink.kafka, with fields set or replaced.
func kafkaSinkFields(fields map[string]any) map[string]any {
	spec := map[string]any{"brokers": []any{"kafka-0.kafka:9092", "[::1]:9093"}, "topic": "contacts"}
	for k, v := range fields {
		spec[k] = v
	}
	return spec
}

// httpSinkFields is a valid spec.sink.http, with fields set or replaced.
func httpSinkFields(fields map[string]any) map[string]any {
	spec := map[string]any{
		"urlSecretRef":        map[string]any{"name": "endpoint", "key": "url"},
		"signingKeySecretRef": map[string]any{"name": "endpoint", "key": "signingKey"},
	}
	for k, v := range fields {
		spec[k] = v
	}
	return spec
}

// sinkFields sets spec.sink.fields.
func sinkFields(spec map[string]any, fields map[string]any) {
	spec["sink"].(map[string]any)["fields"] = fields
}
