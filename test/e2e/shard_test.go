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

package e2e

import (
	"context"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
)

// shardKey is the label that puts a NangoSync in a shard, as in the README.
const shardKey = "sharding.nango.dev/key"

// startShard runs a manager that owns the NangoSyncs labelled shardKey=shard, with a
// leader election Lease of its own, serving webhooks at addr.
func startShard(e *nangoEmulator, shard, addr, namespace string) *manager {
	GinkgoHelper()
	return startManager(append(receiverArgs(e, addr, namespace),
		"--zap-log-level", "debug",
		"--watch-label-selector", shardKey+"="+shard,
		"--leader-elect", "--leader-election-namespace", "default",
		"--leader-election-id", "e2e-shard-"+shard+"-"+rand.String(6))...)
}

// putInShard labels a NangoSync into a shard.
func putInShard(ctx context.Context, nsync *syncv1alpha1.NangoSync, shard string) {
	GinkgoHelper()
	patch := client.MergeFrom(nsync.DeepCopy())
	nsync.Labels = map[string]string{shardKey: shard}
	Expect(k8sClient.Patch(ctx, nsync, patch)).To(Succeed())
}

var _ = Describe("sharding", func() {
	It("reconciles each NangoSync in its own shard, and wakes it from a webhook any shard's receiver took", func(ctx SpecContext) {
		e := startNangoEmulator()
		namespace := newWebhookNamespace(ctx, e)
		addrA, addrB := freeAddr(), freeAddr()
		shardA := startShard(e, "a", addrA, namespace)
		shardB := startShard(e, "b", addrB, namespace)
		for _, m := range []*manager{shardA, shardB} {
			Eventually(func() (int, error) { return m.probe("/readyz") }).WithTimeout(30 * time.Second).Should(Equal(http.StatusOK))
		}

		By("leaving a NangoSync of no shard alone")
		alpha := newContactsSync(ctx, e, namespace, "alpha")
		beta := newContactsSync(ctx, e, namespace, "beta")
		Consistently(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(alpha.nsync), alpha.nsync)).To(Succeed())
			g.Expect(alpha.nsync.Finalizers).To(BeEmpty())
			g.Expect(alpha.nsync.Status.Conditions).To(BeEmpty())
		}).WithContext(ctx).WithTimeout(3*time.Second).Should(Succeed(), "a shard took a NangoSync it does not select")

		By("syncing each NangoSync in the shard its label names")
		putInShard(ctx, alpha.nsync, "a")
		putInShard(ctx, beta.nsync, "b")
		alpha.waitReady(ctx)
		beta.waitReady(ctx)

		By("waking each NangoSync from a webhook the other shard's receiver took")
		for _, c := range []struct {
			d        *contactsSync
			receiver string
			owner    *manager
		}{{beta, addrA, shardB}, {alpha, addrB, shardA}} {
			e.sendTo(c.receiver)
			id := "via-" + c.receiver
			c.d.upsert(id)
			delivery, err := e.sim.SendSyncWebhook(ctx, nangosim.SyncWebhook{ModelRef: c.d.ref, SyncName: "contacts"})
			Expect(err).NotTo(HaveOccurred())
			Expect(delivery.StatusCode).To(Equal(http.StatusAccepted))
			// The interval is 1h: only the wake syncs it now.
			probe := c.d.probe()
			Eventually(func() (bool, error) { return probe.has(c.d.ref.ConnectionID, id) }).
				WithTimeout(15*time.Second).Should(BeTrue(),
				"%s was not woken; shard a:\n%s\nshard b:\n%s", c.d.nsync.Name, shardA.output, shardB.output)
		}

		By("recording each sync's events from its own shard only")
		// The managers log at debug level every event they record, naming its NangoSync.
		eventOf := func(name string) string { return `"msg":"Event occurred","object":{"name":"` + name + `"` }
		Expect(shardA.output.String()).To(ContainSubstring(eventOf("alpha")))
		Expect(shardA.output.String()).NotTo(ContainSubstring(eventOf("beta")))
		Expect(shardB.output.String()).To(ContainSubstring(eventOf("beta")))
		Expect(shardB.output.String()).NotTo(ContainSubstring(eventOf("alpha")))
	}, SpecTimeout(3*time.Minute))
})
