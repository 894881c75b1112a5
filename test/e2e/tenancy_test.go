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
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
)

// The secret values of the shared-cluster spec: none may appear outside the cluster.
const (
	adminPassword = "db-admin-5ecret-value"
	pgPassword    = "team-pg-5ecret-value"
)

var _ = Describe("a cluster shared by two teams", func() {
	It("keeps one team's syncs Ready and its rows exact while the other team's NangoSyncs are hostile, and lets no Secret value out", func(ctx SpecContext) {
		e := startNangoEmulator()
		teamA, teamB := newTeamNamespace(ctx, "team-a", e), newTeamNamespace(ctx, "team-b", e)
		sqliteRoot := GinkgoT().TempDir()
		pg := pgtest.StartServer(GinkgoTB())
		Expect(pg.CreateDatabase(ctx, "shared")).To(Succeed())
		sharedDSN := withPassword(pg.DSN("shared"), pgPassword)

		By("standing up what a hostile tenant aims at: another host, a Nango that only says 429, a database that never answers")
		var elsewhereCalls atomic.Int32
		elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			elsewhereCalls.Add(1)
			w.WriteHeader(http.StatusOK)
		}))
		DeferCleanup(elsewhere.Close)
		angryNango := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "3153600000")
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		DeferCleanup(angryNango.Close)
		silentDB := silentListener()

		By("running one operator for both teams, with the admin's policy")
		receiverAddr := freeAddr()
		m := startManager("--nango-url", e.url, "--allowed-nango-urls", angryNango.URL,
			"--sqlite-root", sqliteRoot, "--require-secret-opt-in", "--reconcile-timeout", "30s",
			"--max-concurrent-reconciles", "4", "--retry-max-delay", "2s",
			"--webhook-bind-address", receiverAddr,
			"--webhook-signing-secret", webhookSigningSecret, "--webhook-signing-secret-namespace", teamA)
		e.sendTo(receiverAddr)

		By("syncing team A's contacts into the shared PostgreSQL and its deals into SQLite under its root")
		contacts := teamModel(e, "acme", "Contact", 300)
		deals := teamModel(e, "acme", "Deal", 200)
		createSecret(ctx, teamA, "shared-pg", map[string]string{"url": sharedDSN}, true)
		a1 := teamSync(ctx, teamA, "contacts", contacts, syncv1alpha1.SinkSpec{Postgres: &syncv1alpha1.PostgresSink{
			URLSecretRef: syncv1alpha1.SecretKeyReference{Name: "shared-pg", Key: "url"}, Table: "contacts"}}, nil)
		a2 := teamSync(ctx, teamA, "deals", deals, syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{
			Path: filepath.Join(sqliteRoot, teamA, "crm.db"), Table: "deals"}}, nil)
		for _, nsync := range []*syncv1alpha1.NangoSync{a1, a2} {
			waitReason(ctx, nsync, syncv1alpha1.SyncedReason, m)
		}

		By("letting team B write NangoSyncs that try to reach past their namespace")
		createSecret(ctx, teamB, "db-admin", map[string]string{"password": adminPassword}, false)
		createSecret(ctx, teamB, "silent-pg", map[string]string{"url": "postgres://team:" + pgPassword + "@" + silentDB + "/db?sslmode=disable"}, true)
		createSecret(ctx, teamB, "shared-pg", map[string]string{"url": sharedDSN}, true)
		hostile := map[string]*syncv1alpha1.NangoSync{
			syncv1alpha1.NangoURLNotAllowedReason: teamSync(ctx, teamB, "exfiltrate", contacts, sqliteIn(sqliteRoot, teamB),
				func(n *syncv1alpha1.NangoSync) {
					n.Spec.Nango = &syncv1alpha1.NangoEndpoint{URL: elsewhere.URL,
						SecretRef: &syncv1alpha1.SecretKeyReference{Name: "db-admin", Key: "password"}}
				}),
			syncv1alpha1.SecretNotOptedInReason: teamSync(ctx, teamB, "borrow-secret", contacts, sqliteIn(sqliteRoot, teamB),
				func(n *syncv1alpha1.NangoSync) {
					n.Spec.Nango = &syncv1alpha1.NangoEndpoint{SecretRef: &syncv1alpha1.SecretKeyReference{Name: "db-admin", Key: "password"}}
				}),
			syncv1alpha1.SinkPathNotAllowedReason: teamSync(ctx, teamB, "other-teams-file", deals, syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{
				Path: filepath.Join(sqliteRoot, teamA, "crm.db"), Table: "deals"}}, nil),
			syncv1alpha1.RateLimitedReason: teamSync(ctx, teamB, "angry-nango", contacts, sqliteIn(sqliteRoot, teamB),
				func(n *syncv1alpha1.NangoSync) { n.Spec.Nango = &syncv1alpha1.NangoEndpoint{URL: angryNango.URL} }),
			syncv1alpha1.SinkUnavailableReason: teamSync(ctx, teamB, "silent-db", contacts, syncv1alpha1.SinkSpec{Postgres: &syncv1alpha1.PostgresSink{
				URLSecretRef: syncv1alpha1.SecretKeyReference{Name: "silent-pg", Key: "url"}, Table: "contacts"}}, nil),
			syncv1alpha1.ConflictReason: teamSync(ctx, teamB, "same-data-set", contacts, syncv1alpha1.SinkSpec{Postgres: &syncv1alpha1.PostgresSink{
				URLSecretRef: syncv1alpha1.SecretKeyReference{Name: "shared-pg", Key: "url"}, Table: "contacts"}},
				func(n *syncv1alpha1.NangoSync) { n.Spec.DeletionPolicy = syncv1alpha1.DeletionPolicyDelete }),
		}
		for reason, nsync := range hostile {
			waitReason(ctx, nsync, reason, m)
		}

		By("replaying one valid webhook for team A's contacts, hundreds of times")
		for range 300 {
			delivery, err := e.sim.SendSyncWebhook(ctx, nangosim.SyncWebhook{ModelRef: contacts, SyncName: "contacts"})
			Expect(err).NotTo(HaveOccurred())
			Expect(delivery.StatusCode).To(BeNumerically("<", 500))
		}

		By("keeping team A Ready all along, and syncing its new records at once")
		Consistently(func(g Gomega) {
			for _, nsync := range []*syncv1alpha1.NangoSync{a1, a2} {
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
				g.Expect(apimeta.IsStatusConditionTrue(nsync.Status.Conditions, syncv1alpha1.ReadyCondition)).To(BeTrue(),
					"%s: %v", nsync.Name, nsync.Status.Conditions)
			}
		}).WithContext(ctx).WithTimeout(5 * time.Second).Should(Succeed())
		_, err := e.sim.UpsertRecords(contacts, []json.RawMessage{json.RawMessage(`{"id":"late","name":"late contact"}`)})
		Expect(err).NotTo(HaveOccurred())
		delivery, err := e.sim.SendSyncWebhook(ctx, nangosim.SyncWebhook{ModelRef: contacts, SyncName: "contacts"})
		Expect(err).NotTo(HaveOccurred())
		Expect(delivery.StatusCode).To(BeNumerically("<", 500))
		Eventually(func() (int, error) { return countRows(ctx, sharedDSN, "contacts", contacts.ConnectionID) }).
			WithContext(ctx).WithTimeout(30*time.Second).Should(Equal(301), "the manager's output:\n%s", m.output)
		Expect(countSQLiteRows(filepath.Join(sqliteRoot, teamA, "crm.db"), "deals")).To(Equal(200))

		By("deleting team B's claimant of team A's data set, deletionPolicy Delete, without touching team A's rows")
		conflicting := hostile[syncv1alpha1.ConflictReason]
		Expect(k8sClient.Delete(ctx, conflicting)).To(Succeed())
		Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(conflicting), conflicting) }).
			WithContext(ctx).WithTimeout(30 * time.Second).Should(Satisfy(apierrors.IsNotFound))
		delete(hostile, syncv1alpha1.ConflictReason)
		Expect(countRows(ctx, sharedDSN, "contacts", contacts.ConnectionID)).To(Equal(301))

		By("letting no Secret value out: nothing reached the other host, and no value is in the log")
		Expect(elsewhereCalls.Load()).To(BeZero())
		for _, value := range []string{adminPassword, pgPassword, e.env.SecretKey} {
			Expect(m.output.String()).NotTo(ContainSubstring(value))
		}
		for _, nsync := range hostile {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
			status, err := json.Marshal(nsync.Status)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(status)).NotTo(ContainSubstring(adminPassword))
			Expect(string(status)).NotTo(ContainSubstring(pgPassword))
		}
	}, SpecTimeout(5*time.Minute))
})

// newTeamNamespace creates a team's namespace with its Nango secret key, labelled for
// NangoSyncs, and the operator's webhook signing key.
func newTeamNamespace(ctx context.Context, team string, e *nangoEmulator) string {
	GinkgoHelper()
	name := team + "-" + rand.String(5)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	createSecret(ctx, name, "nango", map[string]string{"secretKey": e.env.SecretKey}, true)
	createSecret(ctx, name, webhookSigningSecret, map[string]string{"current": e.env.SigningKey}, false)
	return name
}

// createSecret creates a Secret, labelled for NangoSyncs when readable.
func createSecret(ctx context.Context, namespace, name string, data map[string]string, readable bool) {
	GinkgoHelper()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, StringData: data}
	if readable {
		secret.Labels = map[string]string{syncv1alpha1.SecretOptInLabel: "true"}
	}
	Expect(k8sClient.Create(ctx, secret)).To(Succeed())
}

// teamModel is a model of a connection in the emulator with n records.
func teamModel(e *nangoEmulator, connectionID, model string, n int) nangosim.ModelRef {
	GinkgoHelper()
	ref := nangosim.ModelRef{ConnectionRef: nangosim.ConnectionRef{ProviderConfigKey: "hubspot", ConnectionID: connectionID}, Model: model}
	if err := e.sim.CreateConnection(ref.ConnectionRef, "hubspot"); err != nil {
		Expect(err.Error()).To(ContainSubstring("exists"))
	}
	_, err := e.sim.SeedRecords(ref, nangosim.SeedOptions{Count: n})
	Expect(err).NotTo(HaveOccurred())
	return ref
}

// teamSync creates a NangoSync of ref into snk, changed by mutate, and deletes it when the
// spec ends, without waiting for a sink it may never reach.
func teamSync(ctx context.Context, namespace, name string, ref nangosim.ModelRef, snk syncv1alpha1.SinkSpec,
	mutate func(*syncv1alpha1.NangoSync)) *syncv1alpha1.NangoSync {
	GinkgoHelper()
	nsync := &syncv1alpha1.NangoSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: syncv1alpha1.NangoSyncSpec{
			ConnectionID: ref.ConnectionID, ProviderConfigKey: ref.ProviderConfigKey, Model: ref.Model,
			Sink: snk, Interval: &metav1.Duration{Duration: time.Hour},
		},
	}
	if mutate != nil {
		mutate(nsync)
	}
	Expect(k8sClient.Create(ctx, nsync)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		_ = k8sClient.Delete(ctx, nsync)
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		_ = client.IgnoreNotFound(k8sClient.Patch(ctx, nsync, client.RawPatch("application/merge-patch+json", patch)))
	})
	return nsync
}

// sqliteIn is an SQLite sink in the namespace's own directory under the root.
func sqliteIn(root, namespace string) syncv1alpha1.SinkSpec {
	return syncv1alpha1.SinkSpec{SQLite: &syncv1alpha1.SQLiteSink{Path: filepath.Join(root, namespace, "own.db"), Table: "contacts"}}
}

// waitReason waits until the NangoSync's Ready condition has reason.
func waitReason(ctx context.Context, nsync *syncv1alpha1.NangoSync, reason string, m *manager) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nsync), nsync)).To(Succeed())
		ready := apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(reason), "%s: %s", nsync.Name, ready.Message)
	}).WithContext(ctx).WithTimeout(90*time.Second).Should(Succeed(), "the manager's output:\n%s", m.output)
}

// silentListener accepts TCP connections and never answers; it closes when the spec ends.
func silentListener() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	DeferCleanup(func() {
		_ = l.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// withPassword is dsn with a password; the test server trusts every local connection, so
// the password only has to stay secret.
func withPassword(dsn, password string) string {
	GinkgoHelper()
	u, err := url.Parse(dsn)
	Expect(err).NotTo(HaveOccurred())
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// countRows counts the rows of a connection in a PostgreSQL table.
func countRows(ctx context.Context, dsn, table, connectionID string) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var n int
	err = conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE connection_id = $1", pgx.Identifier{table}.Sanitize()), connectionID).Scan(&n)
	return n, err
}

// countSQLiteRows counts the rows of an SQLite table.
func countSQLiteRows(path, table string) int {
	GinkgoHelper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=query_only(1)")
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = db.Close() }()
	var n int
	Expect(db.QueryRow(fmt.Sprintf("SELECT count(*) FROM %q", table)).Scan(&n)).To(Succeed())
	return n
}
