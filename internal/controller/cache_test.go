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
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var _ = Describe("The manager's cache", func() {
	It("keeps no annotation or managedFields of a Secret, which may hold its data", func(ctx SpecContext) {
		By("creating a Secret as `kubectl apply` does: its data in the last-applied annotation")
		lastApplied := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"applied","namespace":"sync"},` +
			`"stringData":{"url":"postgres://admin:hunter2@db/app"}}`
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: syncNamespace, Name: "applied", Labels: map[string]string{"team": "crm"},
				Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: lastApplied},
			},
			StringData: map[string]string{"url": "postgres://admin:hunter2@db/app"},
		}
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(k8sClient.Delete(ctx, secret)).To(Succeed()) })
		Expect(secret.Annotations).To(HaveKey(corev1.LastAppliedConfigAnnotation))
		Expect(secret.ManagedFields).NotTo(BeEmpty())

		By("reading its metadata from the manager's cache")
		cached := &metav1.PartialObjectMetadata{}
		cached.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		Eventually(func(g Gomega) {
			g.Expect(theReconciler.Get(ctx, client.ObjectKeyFromObject(secret), cached)).To(Succeed())
			g.Expect(cached.ResourceVersion).To(Equal(secret.ResourceVersion))
		}).WithContext(ctx).Should(Succeed())
		Expect(cached.Annotations).To(BeEmpty())
		Expect(cached.ManagedFields).To(BeEmpty())
		Expect(cached.Labels).To(Equal(secret.Labels), "labels are kept")
	})
})
