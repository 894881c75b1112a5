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

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations users set on a NangoSync to ask for work outside its interval.
const (
	// RequestedAtAnnotation asks for a sync now: any new value wakes the NangoSync once.
	// The handled value is recorded in status.lastHandledRequestedAt.
	RequestedAtAnnotation = "sync.nango.dev/requested-at"

	// ResyncAnnotation asks for a full resync: any new value forgets the stored cursor (in
	// status and in the sink's checkpoint) and reads every record again. The handled value
	// is recorded in status.lastHandledResyncAt.
	ResyncAnnotation = "sync.nango.dev/resync"
)

// NangoRunFailureAnnotation is written by the webhook receiver when Nango reports that its
// own sync run failed, and by the operator when Nango's GET /sync/status says the run is
// failing, paused or stopped; it is removed when a later run succeeds. Its value is a NangoRunFailure
// as compact JSON. The controller shows it as the NangoRunSucceeded condition and a Warning
// event.
const NangoRunFailureAnnotation = "sync.nango.dev/nango-run-failure"

// NangoRunAtAnnotation is written by the webhook receiver with each run state it writes
// (a failure, or a success that clears one): the time, RFC 3339, of that run
// (queryTimeStamp of a success, failedAt of a failure). A webhook of a run that is not
// newer changes no run state, also when it reaches a receiver restarted since, or another
// replica.
const NangoRunAtAnnotation = "sync.nango.dev/nango-run-at"

// NangoRunFailure is the value of the NangoRunFailureAnnotation: why Nango's own sync run
// failed, as its webhook said.
// +kubebuilder:object:generate=false
type NangoRunFailure struct {
	// Type is Nango's error type, for example "script_error".
	Type string `json:"type"`
	// Description is Nango's description of the error, cut to 1024 bytes.
	Description string `json:"description"`
	// SyncName is the Nango sync that failed.
	SyncName string `json:"syncName"`
	// FailedAt is when the run failed, RFC 3339; the webhook's arrival when Nango did not say.
	FailedAt string `json:"failedAt"`
}

// SecretOptInLabel, set to "true" on a Secret, lets NangoSyncs read it when the operator
// runs with --require-secret-opt-in: then someone who may write NangoSyncs but not read
// Secrets cannot make the operator use a Secret that was never meant for it.
const SecretOptInLabel = "sync.nango.dev/readable"

// NangoSyncFinalizer lets the controller remove the sink's checkpoint (and, with
// deletionPolicy Delete, this sync's rows) before the NangoSync goes away.
const NangoSyncFinalizer = "sync.nango.dev/finalizer"

// Condition types, following kstatus: Ready is normal-true; Reconciling and Stalled are
// abnormal-true and present only while they hold.
const (
	// ReadyCondition is True when the last sync read every record Nango had up to the
	// stored cursor and the sink committed them.
	ReadyCondition = "Ready"

	// ReconcilingCondition is True while the sync is not done but expects to get there on
	// its own: pages remain to be read (reason Progressing), or a failure that retrying can
	// fix is being retried with backoff (the failure's reason).
	ReconcilingCondition = "Reconciling"

	// StalledCondition is True when the sync cannot progress until a person changes
	// something: a missing Secret, a wrong key, an unknown connection, a cursor Nango
	// rejects, a sink that refuses the operator. It is still retried with backoff, so a fix
	// made outside Kubernetes is picked up on its own.
	StalledCondition = "Stalled"

	// NangoRunSucceededCondition is False while Nango reports that its own sync run for the
	// model failed (from its webhook, or from GET /sync/status for a NangoSync with
	// spec.syncName): the records stop changing at the source, though the copy is consistent
	// with what Nango has. Its reason is Nango's error type, or its run state (ERROR,
	// PAUSED, STOPPED) when only GET /sync/status told. It is True (NoFailureReported)
	// while no failure is reported, for a NangoSync with spec.syncName (whose runs the
	// operator asks Nango about) and for one whose reported failure was followed by a
	// successful run; a NangoSync without spec.syncName has none until a webhook reports
	// a failure.
	NangoRunSucceededCondition = "NangoRunSucceeded"

	// RetentionRiskCondition is True while the NangoSync has not synced (suspended, or
	// failing) for longer than the operator's share (--retention-risk-share, half by
	// default) of Nango's 30-day window: Nango empties the fields of records not updated
	// for 30 days and deletes a sync's records after 60 days without a run, so the copy
	// must sync again before then. Absent otherwise.
	RetentionRiskCondition = "RetentionRisk"
)

// Condition reasons. Each names what happened in words a person can act on; the condition
// message says what to fix.
const (
	// SyncedReason: every page up to the current cursor is in the sink.
	SyncedReason = "Synced"
	// ProgressingReason: pages are being read and written.
	ProgressingReason = "Progressing"
	// SuspendedReason: spec.suspend is true; nothing is read or written (Ready is False).
	SuspendedReason = "Suspended"
	// NoFailureReportedReason: NangoRunSucceeded while Nango reports no failed, paused or
	// stopped run of the sync.
	NoFailureReportedReason = "NoFailureReported"
	// SuspendedTooLongReason: RetentionRisk of a NangoSync suspended for too long.
	SuspendedTooLongReason = "SuspendedTooLong"
	// FailingTooLongReason: RetentionRisk of a NangoSync failing for too long.
	FailingTooLongReason = "FailingTooLong"
	// SecretNotFoundReason: a Secret (or a key in it) named by the spec does not exist.
	SecretNotFoundReason = "SecretNotFound"
	// UnauthorizedReason: Nango refused the secret key (401) or its scope (403).
	UnauthorizedReason = "Unauthorized"
	// UnknownConnectionReason: Nango knows no connection with this connectionId and providerConfigKey.
	UnknownConnectionReason = "UnknownConnection"
	// InvalidCursorReason: Nango keeps failing on the stored cursor; the resync annotation starts over.
	InvalidCursorReason = "InvalidCursor"
	// RateLimitedReason: the account's Nango rate limit is spent; the sync waits and retries.
	RateLimitedReason = "RateLimited"
	// NangoUnavailableReason: Nango answered with a server error or could not be reached.
	NangoUnavailableReason = "NangoUnavailable"
	// SinkUnavailableReason: the sink could not be reached or is busy; the sync retries.
	SinkUnavailableReason = "SinkUnavailable"
	// SinkRefusedReason: the sink refused the operator (credentials, a missing privilege,
	// a table of another shape); the message says what to change.
	SinkRefusedReason = "SinkRefused"
	// NangoURLNotAllowedReason: spec.nango.url is not one of the Nango URLs the cluster
	// admin allows (the operator's --allowed-nango-urls); its Secret is not read.
	NangoURLNotAllowedReason = "NangoURLNotAllowed"
	// SecretNotOptedInReason: a Secret the spec names lacks the label SecretOptInLabel,
	// which the operator requires (--require-secret-opt-in); its data is not read.
	SecretNotOptedInReason = "SecretNotOptedIn"
	// SinkPathNotAllowedReason: spec.sink.sqlite.path is outside the directory the cluster
	// admin gives the NangoSync's namespace (the operator's --sqlite-root).
	SinkPathNotAllowedReason = "SinkPathNotAllowed"
	// ConflictReason: another NangoSync owns this data set (integration, connection, model
	// and variant) in the sink's table; this one writes nothing there until it has another
	// table or the owner is gone. The message names the owner.
	ConflictReason = "Conflict"
	// SyncFailedReason: Nango reported that its own sync run failed (from a webhook).
	SyncFailedReason = "SyncFailed"
	// InvalidRequestReason: Nango refused the request as malformed, for example a
	// modifiedAfter more than 365 days ago.
	InvalidRequestReason = "InvalidRequest"
	// ReconcileFailedReason: anything else went wrong; the message says what.
	ReconcileFailedReason = "ReconcileFailed"
)

// Deletion policies: what happens to a NangoSync's rows in the sink when it is deleted.
const (
	// DeletionPolicyRetain keeps the rows; only the sink's checkpoint for this sync is removed.
	DeletionPolicyRetain = "Retain"
	// DeletionPolicyDelete removes the rows this sync wrote, and its checkpoint.
	DeletionPolicyDelete = "Delete"
)

// NangoSyncSpec says which Nango records to copy and where to.
//
// The identity of the data set (connectionId, providerConfigKey, model and variant) is
// immutable: changing it would mix two data sets under one cursor. Create a new NangoSync
// instead.
type NangoSyncSpec struct {
	// connectionId is the Nango connection to read records from, as shown in the Nango
	// dashboard (for example the id of one customer's HubSpot account).
	// Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="connectionId is immutable: create a new NangoSync to read another connection"
	ConnectionID string `json:"connectionId"`

	// providerConfigKey is the Nango integration id (the "unique key" of the integration in
	// Nango, for example "hubspot").
	// Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="providerConfigKey is immutable: create a new NangoSync to read another integration"
	ProviderConfigKey string `json:"providerConfigKey"`

	// model is the name of the Nango model whose records are copied, for example "Contact".
	// It starts with an upper-case letter, as Nango requires.
	// Immutable.
	// +required
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[A-Z][a-zA-Z0-9_-]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="model is immutable: create a new NangoSync to read another model"
	Model string `json:"model"`

	// variant of the model, for syncs that run in several variants. "base" is the model
	// itself.
	// Immutable.
	// +optional
	// +kubebuilder:default=base
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="variant is immutable: create a new NangoSync to read another variant"
	Variant string `json:"variant,omitempty"`

	// syncName is the name of the Nango sync script that produces the model. It is needed
	// to ask Nango itself for a full resync (the sync.nango.dev/resync annotation; without
	// it, a resync re-reads Nango's records but does not re-run Nango's sync), and for the
	// NangoRunSucceeded condition to follow Nango's run status without webhooks.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+$`
	SyncName string `json:"syncName,omitempty"`

	// nango says which Nango server to read from and with which secret key. Unset fields
	// take the operator's defaults (its --nango-url and --nango-secret flags).
	// +optional
	Nango *NangoEndpoint `json:"nango,omitempty"`

	// sink is where the records are written. Exactly one of its kinds is set. Every sink
	// keeps one row per (integration, connection, model, record id), so several NangoSyncs
	// may share one table.
	// +required
	Sink SinkSpec `json:"sink"`

	// interval between two syncs when no webhook wakes the NangoSync earlier. Webhooks can
	// be lost, so the interval is the guarantee of freshness. At least 10s; a Go duration
	// such as "30s", "5m" or "1h".
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s')",message="interval must be at least 10s"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// pageSize is the number of records asked of Nango per request, 1 to 10000.
	// +optional
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	PageSize int32 `json:"pageSize,omitempty"`

	// modifiedAfter is where the very first read starts: records last modified before this
	// RFC 3339 time are skipped. It is used only while no cursor is stored. Nango refuses
	// times more than 365 days in the past.
	// +optional
	ModifiedAfter *metav1.Time `json:"modifiedAfter,omitempty"`

	// suspend stops all work on this NangoSync while true. The cursor is kept.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// deletionPolicy says what happens to the rows this NangoSync wrote when it is deleted:
	// Retain keeps them, Delete removes them. Either way the sink's checkpoint is removed.
	// +optional
	// +kubebuilder:default=Retain
	// +kubebuilder:validation:Enum=Retain;Delete
	DeletionPolicy string `json:"deletionPolicy,omitempty"`
}

// NangoEndpoint is a Nango server and the secret key used to read from it.
type NangoEndpoint struct {
	// url of the Nango API, for example https://api.nango.dev for Nango Cloud or the URL of
	// a self-hosted server. Defaults to the operator's --nango-url flag.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="url must be an absolute http or https URL, such as https://api.nango.dev"
	URL string `json:"url,omitempty"`

	// secretRef names the Secret, in the NangoSync's namespace, that holds the Nango secret
	// key of the environment the connection belongs to. Defaults to the operator's
	// --nango-secret flag.
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`

	// webhookSigningKeyRef names the Secret, in the NangoSync's namespace, that holds the
	// webhook signing key of the connection's Nango environment (Environment Settings,
	// Webhooks). Webhooks signed with it wake this NangoSync as soon as Nango has new
	// records. Without it, only the operator's own signing keys (its
	// --webhook-signing-secret flag) verify webhooks for this NangoSync.
	// +optional
	WebhookSigningKeyRef *SecretKeyReference `json:"webhookSigningKeyRef,omitempty"`
}

// SecretKeyReference names one key of a Secret in the NangoSync's own namespace.
// Secrets of other namespaces are never read.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key in the Secret's data whose value is used.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// SinkSpec is where records are written. Exactly one of its kinds is set.
// +kubebuilder:validation:XValidation:rule="(has(self.postgres) ? 1 : 0) + (has(self.sqlite) ? 1 : 0) + (has(self.http) ? 1 : 0) + (has(self.kafka) ? 1 : 0) == 1",message="exactly one sink kind must be set: postgres, sqlite, http or kafka"
// +kubebuilder:validation:XValidation:rule="!has(self.http) || !has(self.deletes) || self.deletes == 'Soft'",message="deletes: Hard applies to tables; an http sink sends every deletion as a dev.nango.record.deleted event"
// +kubebuilder:validation:XValidation:rule="!has(self.kafka) || !has(self.deletes) || self.deletes == 'Soft'",message="deletes: Hard applies to tables; a kafka sink writes every deletion as a dev.nango.record.deleted event (and a tombstone with kafka.tombstones)"
// +kubebuilder:validation:XValidation:rule="(!has(self.http) && !has(self.kafka)) || !has(self.history) || !self.history",message="history keeps versions in a table beside the records table: it applies to postgres and sqlite sinks, not http or kafka"
// +kubebuilder:validation:XValidation:rule="!has(self.history) || !self.history || ((!has(self.postgres) || size(self.postgres.table) <= 55) && (!has(self.sqlite) || size(self.sqlite.table) <= 55))",message="with history the table name may have at most 55 characters: the history table <table>_history must fit PostgreSQL's 63"
type SinkSpec struct {
	// postgres writes records to a table in a PostgreSQL database.
	// +optional
	Postgres *PostgresSink `json:"postgres,omitempty"`

	// sqlite writes records to a table in an SQLite database file on the operator's volume.
	// Meant for small installations and trying things out.
	// +optional
	SQLite *SQLiteSink `json:"sqlite,omitempty"`

	// http posts records to an endpoint of your application, as signed CloudEvents
	// batches. Delivery is at-least-once: see HTTPSink.
	// +optional
	HTTP *HTTPSink `json:"http,omitempty"`

	// kafka writes each record version as a message to a Kafka topic, with exactly-once
	// effect for read_committed consumers unless delivery is AtLeastOnce: see KafkaSink.
	// +optional
	Kafka *KafkaSink `json:"kafka,omitempty"`

	// deletes says how records that Nango reports deleted are written: Soft keeps the row
	// and sets its deleted_at column, Hard removes the row.
	// +optional
	// +kubebuilder:default=Soft
	// +kubebuilder:validation:Enum=Soft;Hard
	Deletes string `json:"deletes,omitempty"`

	// history keeps every version of every record the operator wrote in a table beside the
	// records table, named <table>_history, as a slowly changing dimension of type 2: one
	// row per version, with the record's key, payload, last_action, deleted_at and Nango
	// cursor, valid from the version's last_modified_at (valid_from) until the next
	// version's (valid_to, NULL for the current one). The history is written in the same
	// transaction as the records and the checkpoint, and a page written twice adds no
	// version. Only versions the operator read are kept: a record that changed twice
	// between two syncs has one version for both, since Nango keeps only the latest.
	// postgres and sqlite sinks only.
	// +optional
	History bool `json:"history,omitempty"`

	// fields lists fields of the records that never reach the sink as they are: excluded
	// fields are removed, hashed ones replaced by a keyed hash. The rules apply to every
	// record before it is written (records table, history, quarantine and http events
	// alike); rows written before a rule was added keep what they held.
	// +optional
	Fields *FieldRules `json:"fields,omitempty"`
}

// FieldPath names a field of a record: keys joined by dots, such as email or
// address.postcode. A path goes through arrays: contacts.email is the email of every
// element of contacts. Keys hold letters, digits, '_', '-' and '$'.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$`
type FieldPath string

// FieldRules are the fields of a record a sink never receives as they are. A path that a
// record does not have is skipped; the record id and Nango's metadata are never changed.
// +kubebuilder:validation:XValidation:rule="!has(self.hash) || size(self.hash) == 0 || has(self.hashKeySecretRef)",message="hash needs hashKeySecretRef: the Secret key holding the HMAC key"
// +kubebuilder:validation:XValidation:rule="!has(self.exclude) || !has(self.hash) || !self.exclude.exists(e, self.hash.exists(h, h == e || h.startsWith(e + '.') || e.startsWith(h + '.')))",message="a path may not be both excluded and hashed, nor lie inside a path of the other list"
type FieldRules struct {
	// exclude lists the fields removed from every record before it is written.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	Exclude []FieldPath `json:"exclude,omitempty"`

	// hash lists the fields whose values are replaced by their HMAC-SHA256 under the key
	// in hashKeySecretRef, as 64 lower-case hex digits: the same value always gives the
	// same token, so tables can still be joined on it, but the value cannot be read back.
	// A string is hashed as its text, another value as its JSON; an array's elements are
	// hashed one by one; null stays null.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	Hash []FieldPath `json:"hash,omitempty"`

	// hashKeySecretRef names the Secret key holding the HMAC key of hash (at least 32
	// bytes are advised). Changing the key changes every token from then on.
	// +optional
	HashKeySecretRef *SecretKeyReference `json:"hashKeySecretRef,omitempty"`
}

// Delete modes of a sink.
const (
	// DeletesSoft keeps a deleted record's row and sets its deleted_at column.
	DeletesSoft = "Soft"
	// DeletesHard removes a deleted record's row.
	DeletesHard = "Hard"
)

// PostgresSink writes records to a PostgreSQL table. The operator creates the table (and a
// shared checkpoint table) when missing.
type PostgresSink struct {
	// urlSecretRef names the Secret key holding the connection URL, for example
	// postgres://user:password@host:5432/db?sslmode=require. Its query may set only host,
	// port, dbname, user, password, sslmode, application_name, connect_timeout and
	// default_query_exec_mode: parameters that name files of the operator's pod (passfile,
	// sslrootcert, ...) or change server settings (options, ...) are refused, as are Unix
	// socket hosts, and nothing is taken from the operator's environment or home directory
	// (PGPASSWORD, ~/.pgpass).
	// verify-ca and verify-full check the server against the operator image's CA roots.
	// +required
	URLSecretRef SecretKeyReference `json:"urlSecretRef"`

	// schema the table lives in. Defaults to the first schema of the connection's
	// search_path (usually public). A lower-case SQL identifier.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]*$`
	Schema string `json:"schema,omitempty"`

	// table the records are written to: a lower-case SQL identifier of at most 63
	// characters (letters, digits and underscores, not starting with a digit). Not
	// nango_sync_checkpoints, nango_sync_quarantine or nango_sync_layout: the operator keeps
	// its own data there.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]*$`
	// +kubebuilder:validation:XValidation:rule="!(self in ['nango_sync_checkpoints', 'nango_sync_quarantine', 'nango_sync_layout'])",message="nango_sync_checkpoints, nango_sync_quarantine and nango_sync_layout are the operator's own tables: choose another table for the records"
	Table string `json:"table"`
}

// SQLiteSink writes records to a table in an SQLite database file.
type SQLiteSink struct {
	// path of the database file, absolute, on a volume of the operator's pod. It is
	// created when missing.
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:Pattern=`^/[^\x00]*[^/]$`
	Path string `json:"path"`

	// table the records are written to: a lower-case SQL identifier of at most 63
	// characters (letters, digits and underscores, not starting with a digit). Not
	// nango_sync_checkpoints, nango_sync_quarantine or nango_sync_layout: the operator keeps
	// its own data there.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]*$`
	// +kubebuilder:validation:XValidation:rule="!(self in ['nango_sync_checkpoints', 'nango_sync_quarantine', 'nango_sync_layout'])",message="nango_sync_checkpoints, nango_sync_quarantine and nango_sync_layout are the operator's own tables: choose another table for the records"
	Table string `json:"table"`
}

// HTTPSink posts each batch of records to an endpoint as one request: a JSON array of
// CloudEvents (Content-Type application/cloudevents-batch+json), one event per record
// version, of type dev.nango.record.added, .updated or .deleted, with the record as Nango
// answers it (its fields and _nango_metadata) as data. The body is signed with HMAC-SHA256
// in the Nango-Operator-Signature header; Idempotency-Key is the same on every delivery of a
// batch. A 2xx answer commits the batch; 408, 429 (after its Retry-After) and 5xx are
// retried with backoff; any other answer stalls the sync with its status and the start of
// its body, until the endpoint or the spec changes. The operator keeps the cursor in a
// ConfigMap named nango-sync-checkpoint-<hash> in the NangoSync's namespace, written after
// the endpoint accepted the batch: after a crash the last batch is delivered again, with
// the same Idempotency-Key and event ids.
type HTTPSink struct {
	// urlSecretRef names the Secret key holding the endpoint's URL, http or https; it may
	// carry a token. Redirects are not followed, and no proxy is used.
	// +required
	URLSecretRef SecretKeyReference `json:"urlSecretRef"`

	// signingKeySecretRef names the Secret key holding the key the bodies are signed with.
	// +required
	SigningKeySecretRef SecretKeyReference `json:"signingKeySecretRef"`

	// caSecretRef names a Secret key holding PEM CA certificates to trust, besides the
	// operator image's roots, when verifying the endpoint.
	// +optional
	CASecretRef *SecretKeyReference `json:"caSecretRef,omitempty"`

	// timeout bounds each request, answer included: 1s to 5m, default 30s.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('5m')",message="timeout must be between 1s and 5m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// maxBatchBytes bounds a request's body: a larger batch is posted in several requests,
	// in order. An event larger than it is posted alone. 4096 to 67108864, default 1048576.
	// +optional
	// +kubebuilder:validation:Minimum=4096
	// +kubebuilder:validation:Maximum=67108864
	MaxBatchBytes int32 `json:"maxBatchBytes,omitempty"`
}

// KafkaSink writes one message per record version to a topic. The key is
// integration/connection/model/variant/id (each part percent-encoded), so a record's versions
// stay in one partition, in order; the value is the record as Nango answers it (its fields
// and _nango_metadata) as JSON; the CloudEvents attributes are headers (ce_specversion,
// ce_id, ce_type such as dev.nango.record.updated, ce_source, ce_subject, ce_time). A
// deletion is a dev.nango.record.deleted event, followed by a tombstone (null value) when
// tombstones is true. The checkpoint is a message of checkpointTopic keyed by topic and
// data set. With delivery ExactlyOnce, a page's messages and its checkpoint are written in
// one Kafka transaction under a transactional id of the data set's own, and the checkpoint
// is read with read_committed: a consumer reading with isolation.level=read_committed sees
// every version exactly once, across crashes. AtLeastOnce turns transactions off: after a
// crash the last page is written again, with the same keys and ce_id.
// +kubebuilder:validation:XValidation:rule="!has(self.checkpointTopic) || self.checkpointTopic != self.topic",message="checkpointTopic must differ from topic"
type KafkaSink struct {
	// brokers are the seed brokers, host:port, for example kafka-0.kafka:9092.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=261
	// +kubebuilder:validation:items:Pattern=`^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?):[0-9]{1,5}$`
	Brokers []string `json:"brokers"`

	// topic the records go to; {model} in it stands for the NangoSync's model, for example
	// nango.hubspot.{model}. Letters, digits, '.', '_' and '-', at most 249 characters.
	// The operator creates it with the brokers' defaults when missing and allowed to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=249
	// +kubebuilder:validation:Pattern=`^([a-zA-Z0-9._-]|\{model\})+$`
	// +kubebuilder:validation:XValidation:rule="!(self in ['.', '..'])",message="topic cannot be . or .."
	Topic string `json:"topic"`

	// checkpointTopic keeps the checkpoints, keyed by topic and data set; the operator
	// creates it compacted, with one partition, when missing. Default
	// nango-operator-checkpoints.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=249
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._-]+$`
	// +kubebuilder:validation:XValidation:rule="!(self in ['.', '..'])",message="checkpointTopic cannot be . or .."
	CheckpointTopic string `json:"checkpointTopic,omitempty"`

	// delivery is ExactlyOnce (Kafka transactions, the default) or AtLeastOnce (no
	// transactions, for clusters or ACLs without them: a crash can write a page twice).
	// +optional
	// +kubebuilder:default=ExactlyOnce
	// +kubebuilder:validation:Enum=ExactlyOnce;AtLeastOnce
	Delivery string `json:"delivery,omitempty"`

	// transactionalIDPrefix starts the transactional id of each data set
	// (<prefix>-<hash of topic and data set>), for ACLs on prefixed transactional ids.
	// Default nango-operator.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._-]+$`
	TransactionalIDPrefix string `json:"transactionalIDPrefix,omitempty"`

	// tombstones follows each deletion event with a tombstone (the record's key, a null
	// value), for compacted topics: compaction then drops the record.
	// +optional
	Tombstones bool `json:"tombstones,omitempty"`

	// tls dials the brokers with TLS.
	// +optional
	TLS *KafkaTLS `json:"tls,omitempty"`

	// sasl authenticates to the brokers.
	// +optional
	SASL *KafkaSASL `json:"sasl,omitempty"`
}

// Delivery modes of a kafka sink.
const (
	// DeliveryExactlyOnce writes a page and its checkpoint in one Kafka transaction.
	DeliveryExactlyOnce = "ExactlyOnce"
	// DeliveryAtLeastOnce writes without transactions.
	DeliveryAtLeastOnce = "AtLeastOnce"
)

// KafkaTLS is how the brokers are verified.
type KafkaTLS struct {
	// caSecretRef names a Secret key holding PEM CA certificates to trust, besides the
	// operator image's roots.
	// +optional
	CASecretRef *SecretKeyReference `json:"caSecretRef,omitempty"`
}

// KafkaSASL is how the operator authenticates to the brokers.
type KafkaSASL struct {
	// mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. PLAIN sends the password as
	// is: use it only with tls.
	// +required
	// +kubebuilder:validation:Enum=PLAIN;SCRAM-SHA-256;SCRAM-SHA-512
	Mechanism string `json:"mechanism"`

	// usernameSecretRef names the Secret key holding the user name.
	// +required
	UsernameSecretRef SecretKeyReference `json:"usernameSecretRef"`

	// passwordSecretRef names the Secret key holding the password.
	// +required
	PasswordSecretRef SecretKeyReference `json:"passwordSecretRef"`
}

// NangoSyncStatus is what the controller observed and did.
type NangoSyncStatus struct {
	// observedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling and Stalled, as kstatus reads them, and
	// NangoRunSucceeded: False while Nango reports that its own sync run failed, True
	// (NoFailureReported) for a NangoSync with spec.syncName or after a reported failure
	// was followed by a successful run.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// cursor is the Nango cursor after the last record the sink committed. The next sync
	// reads the records after it. Empty before the first record.
	// +optional
	Cursor string `json:"cursor,omitempty"`

	// sink names where the records go, as "<kind>/<table>", for display.
	// +optional
	Sink string `json:"sink,omitempty"`

	// writtenSink is the spec.sink the records were written to. When spec.sink moves to
	// another place, the operator leaves this one as a deletion would (its checkpoint
	// removed, and its rows with deletionPolicy Delete) and reads every record again into
	// the new one; until that succeeds, writtenSink keeps the place to clean.
	// +optional
	WrittenSink *SinkSpec `json:"writtenSink,omitempty"`

	// lastChangeTime is when a complete sync (to the end of Nango's records) last wrote
	// records to the sink, or first found there were none. A sync that finds nothing new
	// leaves the whole status as it is, so that idle NangoSyncs cost the API server no
	// writes; the metric nango_operator_sync_last_success_timestamp_seconds moves with
	// every complete sync, and Ready turns False as soon as one fails.
	// +optional
	LastChangeTime *metav1.Time `json:"lastChangeTime,omitempty"`

	// newestRecordTime is Nango's last_modified_at of the newest record written to the
	// sink: how fresh the copy's data is. Together with lastChangeTime it tells a copy that
	// lags (Ready False, or an old lastChangeTime) from a source where nothing changed.
	// `kubectl get -o wide` shows its age.
	// +optional
	NewestRecordTime *metav1.Time `json:"newestRecordTime,omitempty"`

	// records counts the records written to the sink since the NangoSync was created or
	// last resynced, by the action Nango reported.
	// +optional
	Records RecordCounts `json:"records,omitempty"`

	// lastHandledRequestedAt is the last value of the sync.nango.dev/requested-at
	// annotation that was acted on.
	// +optional
	LastHandledRequestedAt string `json:"lastHandledRequestedAt,omitempty"`

	// lastHandledResyncAt is the last value of the sync.nango.dev/resync annotation that
	// was acted on.
	// +optional
	LastHandledResyncAt string `json:"lastHandledResyncAt,omitempty"`
}

// RecordCounts counts records written to the sink, by the action Nango reported.
type RecordCounts struct {
	// added records: first seen by Nango.
	// +optional
	Added int64 `json:"added,omitempty"`
	// updated records: changed since Nango first saw them.
	// +optional
	Updated int64 `json:"updated,omitempty"`
	// deleted records: removed at the source.
	// +optional
	Deleted int64 `json:"deleted,omitempty"`
	// total of added, updated and deleted, for `kubectl get`.
	// +optional
	Total int64 `json:"total,omitempty"`
}

// NangoSync keeps a copy of the records Nango syncs for one connection, integration and
// model in a sink the user owns (a PostgreSQL or SQLite table). The controller reads the
// records modified after its stored cursor, writes them to the sink, stores the new cursor,
// and does it again after spec.interval or as soon as a Nango webhook says there is new data.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=nsync,categories=all;nango
// +kubebuilder:printcolumn:name="Connection",type=string,JSONPath=`.spec.connectionId`
// +kubebuilder:printcolumn:name="Integration",type=string,JSONPath=`.spec.providerConfigKey`
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.spec.model`
// +kubebuilder:printcolumn:name="Sink",type=string,JSONPath=`.status.sink`
// +kubebuilder:printcolumn:name="Records",type=integer,JSONPath=`.status.records.total`
// +kubebuilder:printcolumn:name="Last Change",type=date,JSONPath=`.status.lastChangeTime`
// +kubebuilder:printcolumn:name="Newest Record",type=date,priority=1,JSONPath=`.status.newestRecordTime`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Status",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NangoSync struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which records to copy and where to.
	// +required
	Spec NangoSyncSpec `json:"spec"`

	// status is what the controller observed and did.
	// +optional
	Status NangoSyncStatus `json:"status,omitempty"`
}

// GetConditions returns the status conditions, for condition helpers.
func (in *NangoSync) GetConditions() []metav1.Condition {
	return in.Status.Conditions
}

// SetConditions replaces the status conditions, for condition helpers.
func (in *NangoSync) SetConditions(conditions []metav1.Condition) {
	in.Status.Conditions = conditions
}

// +kubebuilder:object:root=true

// NangoSyncList is a list of NangoSyncs.
type NangoSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NangoSync `json:"items"`
}
