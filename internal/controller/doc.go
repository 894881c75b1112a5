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

// Package controller holds the NangoSync reconciler. Its envtest suite runs against a real
// kube-apiserver and etcd with the CRDs of config/crd/bases installed, and proves the API's
// server-side validation.
package controller

// The permissions the manager needs, from which `make manifests` writes config/rbac/role.yaml.
// +kubebuilder:rbac:groups=sync.nango.dev,resources=nangosyncs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=sync.nango.dev,resources=nangosyncs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sync.nango.dev,resources=nangosyncs/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
