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

// BaseVariant is the variant of a model that Nango syncs without variants. Nango leaves the
// variant out of some answers and webhooks (failed runs); an empty variant means this one,
// everywhere in the operator.
const BaseVariant = "base"

// DataSet identifies the records one NangoSync copies: one model, in one variant, of one
// connection of one integration. It is what webhooks are matched against, what the sink
// keys rows and checkpoints by, and what Nango is asked for.
// +kubebuilder:object:generate=false
type DataSet struct {
	// ProviderConfigKey is the Nango integration id.
	ProviderConfigKey string
	// ConnectionID is the Nango connection id.
	ConnectionID string
	// Model is the Nango model name.
	Model string
	// Variant is the model's variant, never empty: BaseVariant for the model itself.
	Variant string
}

// NewDataSet returns the data set of a model's variant; an empty variant is BaseVariant.
func NewDataSet(providerConfigKey, connectionID, model, variant string) DataSet {
	return DataSet{
		ProviderConfigKey: providerConfigKey,
		ConnectionID:      connectionID,
		Model:             model,
		Variant:           VariantOrBase(variant),
	}
}

// VariantOrBase is variant, or BaseVariant when it is empty.
func VariantOrBase(variant string) string {
	if variant == "" {
		return BaseVariant
	}
	return variant
}

// String renders the data set for logs, events and errors:
// integration/connection/model/variant.
func (d DataSet) String() string {
	return d.ProviderConfigKey + "/" + d.ConnectionID + "/" + d.Model + "/" + d.Variant
}

// DataSet is the data set this NangoSync copies. The API server defaults spec.variant, but
// objects built in Go and never sent to it may leave it empty.
func (in *NangoSync) DataSet() DataSet {
	return NewDataSet(in.Spec.ProviderConfigKey, in.Spec.ConnectionID, in.Spec.Model, in.Spec.Variant)
}
