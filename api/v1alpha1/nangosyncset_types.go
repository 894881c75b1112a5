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

// Labels and annotations a NangoSyncSet puts on the NangoSyncs it generates.
const (
	// SyncSetLabel names the NangoSyncSet that generated a NangoSync:
	// `kubectl get nangosyncs -l sync.nango.dev/sync-set=<name>` lists them.
	SyncSetLabel = "sync.nango.dev/sync-set"
	// ConnectionIDAnnotation holds the raw Nango connection id of a generated NangoSync
	// (its name holds only a readable prefix and a hash of it).
	ConnectionIDAnnotation = "sync.nango.dev/connection-id"
)

// Policies for the NangoSyncs of a connection that is gone from Nango, or no longer
// selected by the set.
const (
	// GoneConnectionDelete deletes them; each NangoSync's own deletionPolicy then says
	// whether its rows stay in the sink.
	GoneConnectionDelete = "Delete"
	// GoneConnectionKeep leaves them in place (they turn Stalled with UnknownConnection
	// once Nango no longer has the connection); the set stops owning them.
	GoneConnectionKeep = "Keep"
)

// Condition reasons of a NangoSyncSet, besides the NangoSync reasons it shares
// (SecretNotFound, Unauthorized, RateLimited, NangoUnavailable, NangoURLNotAllowed).
const (
	// DiscoveredReason: the last discovery listed every connection and every NangoSync
	// the set needs exists with the template's fields.
	DiscoveredReason = "Discovered"
	// InvalidSpecReason: the API server refuses the NangoSyncs the set's spec generates (a
	// template label value that is not a valid label value, say); the message quotes the
	// API server and says which field to change. The set is Stalled until its spec changes.
	InvalidSpecReason = "InvalidSpec"
)

// NangoSyncSetSpec declares NangoSyncs for every matching connection of one Nango
// integration: one NangoSync per connection and model.
type NangoSyncSetSpec struct {
	// providerConfigKey is the Nango integration whose connections are discovered (the
	// "unique key" of the integration in Nango, for example "hubspot").
	// Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9~:.@ _-]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="providerConfigKey is immutable: create a new NangoSyncSet for another integration"
	ProviderConfigKey string `json:"providerConfigKey"`

	// selector narrows the integration's connections to those matching all of its
	// fields. Without it, every connection of the integration is selected.
	// +optional
	Selector *ConnectionSelector `json:"selector,omitempty"`

	// models lists the models copied from every selected connection: one NangoSync per
	// connection and entry. At least one; a model and variant appear once.
	// +required
	// +listType=map
	// +listMapKey=model
	// +listMapKey=variant
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	Models []SyncSetModel `json:"models"`

	// template is what every generated NangoSync gets besides its identity (connection,
	// integration, model, variant): labels, annotations and the spec fields. The set owns
	// these fields: a change here reaches every generated NangoSync, and a hand edit of one
	// of them on a NangoSync is put back.
	// +required
	Template NangoSyncTemplate `json:"template"`

	// discoveryInterval is how often the integration's connections are listed when no
	// auth webhook from Nango announces a new connection earlier. Nango sends no webhook
	// when a connection is deleted, so this interval bounds how long the NangoSyncs of a
	// deleted connection stay. At least 10s; a Go duration such as "1m" or "1h".
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s')",message="discoveryInterval must be at least 10s"
	DiscoveryInterval *metav1.Duration `json:"discoveryInterval,omitempty"`

	// goneConnectionPolicy says what happens to the NangoSyncs of a connection that Nango
	// no longer has, or that the selector no longer matches: Delete removes them (their
	// own deletionPolicy then keeps or removes their rows), Keep leaves them and releases
	// them from the set. A connection counts as gone only when a complete listing lacks it
	// and a check of that one connection confirms it: an error, a rate limit or a listing
	// cut short never deletes anything.
	// +optional
	// +kubebuilder:default=Delete
	// +kubebuilder:validation:Enum=Delete;Keep
	GoneConnectionPolicy string `json:"goneConnectionPolicy,omitempty"`

	// suspend stops discovery while true: no NangoSync is created, changed or deleted.
	// The generated NangoSyncs keep syncing (set template.spec.suspend to pause them).
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ConnectionSelector selects Nango connections by what Nango knows of them.
type ConnectionSelector struct {
	// tags the connection must carry, every one with exactly this value. Nango tag keys
	// are lower case (Nango lowercases them), start with a letter and have at most 64
	// characters; values have 1 to 255 characters and are case-sensitive.
	// +optional
	// +kubebuilder:validation:MaxProperties=10
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-z][a-z0-9_./-]*$') && size(k) <= 64)",message="tag keys start with a lower-case letter, then lower-case letters, digits, _ . / or -, at most 64 characters (Nango lowercases tag keys)"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(self[k]) >= 1 && size(self[k]) <= 255)",message="tag values have 1 to 255 characters"
	Tags map[string]string `json:"tags,omitempty"`

	// endUserOrganizationId selects the connections of one end-user organization (the
	// organization id given to Nango's connect session).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	EndUserOrganizationID string `json:"endUserOrganizationId,omitempty"`
}

// SyncSetModel is one model copied from every selected connection.
type SyncSetModel struct {
	// model is the name of the Nango model, for example "Contact". It starts with an
	// upper-case letter, as Nango requires.
	// +required
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[A-Z][a-zA-Z0-9_-]+$`
	Model string `json:"model"`

	// variant of the model; "base" is the model itself.
	// +optional
	// +kubebuilder:default=base
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+$`
	Variant string `json:"variant,omitempty"`

	// syncName is the Nango sync that produces the model, copied to each NangoSync's
	// spec.syncName (needed only for full resyncs run by Nango itself).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+$`
	SyncName string `json:"syncName,omitempty"`
}

// NangoSyncTemplate is the part of every generated NangoSync the set owns.
type NangoSyncTemplate struct {
	// metadata holds labels and annotations for every generated NangoSync. Keys under
	// sync.nango.dev/ are the operator's own.
	// +optional
	Metadata NangoSyncTemplateMetadata `json:"metadata,omitempty"`

	// spec holds the NangoSync spec fields every generated NangoSync gets; see
	// `kubectl explain nangosync.spec` for each of them.
	// +required
	Spec NangoSyncTemplateSpec `json:"spec"`
}

// NangoSyncTemplateMetadata is the labels and annotations of generated NangoSyncs.
type NangoSyncTemplateMetadata struct {
	// labels of every generated NangoSync, besides sync.nango.dev/sync-set. A key is a
	// name of at most 63 letters, digits, '-', '_' or '.' (starting and ending with a
	// letter or digit), optionally after a DNS subdomain prefix and '/'; a value is empty
	// or such a name. Keys and the length of values are checked when the set is applied;
	// a value's characters when its NangoSyncs are (InvalidSpec).
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('sync.nango.dev/'))",message="label keys under sync.nango.dev/ are set by the operator"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$') && (k.contains('/') ? k.indexOf('/') <= 253 && size(k) - k.indexOf('/') <= 64 : size(k) <= 63))",message="label keys are qualified names: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, optionally after a lower-case DNS subdomain of at most 253 characters and '/'"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(self[k]) <= 63)",message="label values have at most 63 characters"
	Labels map[string]string `json:"labels,omitempty"`

	// annotations of every generated NangoSync, besides sync.nango.dev/connection-id.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('sync.nango.dev/'))",message="annotation keys under sync.nango.dev/ are set by the operator"
	Annotations map[string]string `json:"annotations,omitempty"`
}

// NangoSyncTemplateSpec is every field of a NangoSync spec but its identity (connection,
// integration, model, variant, syncName), with the same meaning and validation.
type NangoSyncTemplateSpec struct {
	// nango says which Nango server to list connections of and read from, and with which
	// secret key. Unset fields take the operator's defaults (its --nango-url and
	// --nango-secret flags).
	// +optional
	Nango *NangoEndpoint `json:"nango,omitempty"`

	// sink is where every generated NangoSync writes. Rows are keyed by integration,
	// connection, model and record id, so all of them can share one table.
	// +required
	Sink SinkSpec `json:"sink"`

	// interval between two syncs of each NangoSync when no webhook wakes it earlier. At
	// least 10s.
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

	// modifiedAfter is where each NangoSync's very first read starts (RFC 3339; Nango
	// refuses times more than 365 days in the past).
	// +optional
	ModifiedAfter *metav1.Time `json:"modifiedAfter,omitempty"`

	// suspend pauses every generated NangoSync while true; cursors are kept.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// deletionPolicy of each generated NangoSync: Retain keeps its rows when it is
	// deleted (by the set, when its connection is gone, or by hand), Delete removes them.
	// +optional
	// +kubebuilder:default=Retain
	// +kubebuilder:validation:Enum=Retain;Delete
	DeletionPolicy string `json:"deletionPolicy,omitempty"`
}

// NangoSyncSetStatus is what the controller observed and did.
type NangoSyncSetStatus struct {
	// observedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling and Stalled, as kstatus reads them.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// connections is how many connections the last complete discovery selected.
	// +optional
	Connections int32 `json:"connections,omitempty"`

	// syncs is how many NangoSyncs the set owns.
	// +optional
	Syncs int32 `json:"syncs,omitempty"`

	// readySyncs is how many of them are Ready.
	// +optional
	ReadySyncs int32 `json:"readySyncs,omitempty"`

	// ready is readySyncs out of syncs, such as "398/400": the READY column of
	// `kubectl get nangosyncsets`, read as a Deployment's.
	// +optional
	Ready string `json:"ready,omitempty"`

	// lastDiscoveryTime is when a complete discovery (every page listed without error)
	// last found the selected connections changed, or first completed. A discovery that
	// finds the same connections leaves the status as it is, so that idle sets cost the
	// API server no writes; Ready turns False as soon as one fails.
	// +optional
	LastDiscoveryTime *metav1.Time `json:"lastDiscoveryTime,omitempty"`

	// lastHandledRequestedAt is the last value of the sync.nango.dev/requested-at
	// annotation acted on (a discovery now). The webhook receiver sets it when Nango
	// announces a new connection of the integration.
	// +optional
	LastHandledRequestedAt string `json:"lastHandledRequestedAt,omitempty"`
}

// NangoSyncSet keeps a NangoSync for every model of every connection of a Nango
// integration that its selector matches: created within a second of Nango's auth webhook
// for a new connection (or at the next discovery), changed with the template, and deleted
// (by goneConnectionPolicy) only when Nango confirms the connection is gone.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=nsyncset,categories=all;nango
// +kubebuilder:printcolumn:name="Integration",type=string,JSONPath=`.spec.providerConfigKey`
// +kubebuilder:printcolumn:name="Connections",type=integer,JSONPath=`.status.connections`
// +kubebuilder:printcolumn:name="Syncs",type=integer,JSONPath=`.status.syncs`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`,description="NangoSyncs Ready out of those the set owns"
// +kubebuilder:printcolumn:name="Last Discovery",type=date,JSONPath=`.status.lastDiscoveryTime`
// +kubebuilder:printcolumn:name="Status",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="a NangoSyncSet's name has at most 63 characters: it is the value of the sync.nango.dev/sync-set label of its NangoSyncs"
type NangoSyncSet struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which connections and models to keep NangoSyncs for, and how.
	// +required
	Spec NangoSyncSetSpec `json:"spec"`

	// status is what the controller observed and did.
	// +optional
	Status NangoSyncSetStatus `json:"status,omitempty"`
}

// GetConditions returns the status conditions, for condition helpers.
func (in *NangoSyncSet) GetConditions() []metav1.Condition {
	return in.Status.Conditions
}

// SetConditions replaces the status conditions, for condition helpers.
func (in *NangoSyncSet) SetConditions(conditions []metav1.Condition) {
	in.Status.Conditions = conditions
}

// +kubebuilder:object:root=true

// NangoSyncSetList is a list of NangoSyncSets.
type NangoSyncSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NangoSyncSet `json:"items"`
}
