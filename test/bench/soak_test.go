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

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/nango"
	"github.com/nango-operator/nango-operator/internal/nangosim"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/postgres"
	"github.com/nango-operator/nango-operator/internal/testutil/pgtest"
	"github.com/nango-operator/nango-operator/internal/testutil/records"
)

// soakRecordSize keeps soak records small: the soaks are about correctness under faults.
const soakRecordSize = 300

// dataSet is the emulator's records as the sink must end up holding them: it mirrors every
// change the test makes, and keeps the last payload of a pruned record.
type dataSet struct {
	t   *testing.T
	sim *nangosim.Sim
	rng *rand.Rand

	mu        sync.Mutex
	want      map[string]state
	version   map[int]int
	lastWrite map[int]time.Time
	deleted   map[int]bool
	n         int // ids 0..n-1 exist
	changes   int
}

func newDataSet(t *testing.T, sim *nangosim.Sim, n int) *dataSet {
	d := &dataSet{t: t, sim: sim, rng: rand.New(rand.NewPCG(7, 7)), want: map[string]state{},
		version: map[int]int{}, lastWrite: map[int]time.Time{}, deleted: map[int]bool{}}
	ids := make([]int, 0, 5000)
	for start := 0; start < n; start += 5000 {
		ids = ids[:0]
		for i := start; i < min(n, start+5000); i++ {
			ids = append(ids, i)
		}
		d.upsert(ids)
	}
	d.n = n
	return d
}

// upsert writes a new version of ids (new ids are added).
func (d *dataSet) upsert(ids []int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	recs := make([]json.RawMessage, len(ids))
	for k, i := range ids {
		d.version[i]++
		recs[k] = records.JSON(i, d.version[i], soakRecordSize)
	}
	_, err := d.sim.UpsertRecords(benchModelRef, recs)
	must(d.t, err)
	now := time.Now()
	for k, i := range ids {
		h, err := hashPayload(recs[k])
		must(d.t, err)
		d.want[records.ID(i)] = state{hash: h}
		d.lastWrite[i] = now
		d.deleted[i] = false
		d.n = max(d.n, i+1)
	}
	d.changes += len(ids)
}

// mutate makes one round of changes: updates, additions, soft deletes, and prunes of
// records the sink has already read (readBefore is the sink checkpoint's time).
func (d *dataSet) mutate(readBefore time.Time) {
	d.mu.Lock()
	n := d.n
	pick := func(k int) []int {
		out := make([]int, 0, k)
		seen := map[int]bool{}
		for range k {
			i := d.rng.IntN(n)
			if !seen[i] {
				seen[i] = true
				out = append(out, i)
			}
		}
		return out
	}
	updates := pick(20)
	added := []int{n, n + 1, n + 2, n + 3, n + 4}
	var deletes, prunes []string
	var deleted []int
	for _, i := range pick(5) {
		if !d.deleted[i] {
			deletes = append(deletes, records.ID(i))
			deleted = append(deleted, i)
		}
	}
	updated := map[int]bool{}
	for _, i := range updates {
		updated[i] = true
	}
	for _, i := range pick(5) {
		// Never prune a record this round updates: the new version would be pruned before
		// the sink could read it.
		if !updated[i] && !readBefore.IsZero() && d.lastWrite[i].Add(5*time.Millisecond).Before(readBefore) {
			prunes = append(prunes, records.ID(i))
		}
	}
	d.mu.Unlock()

	d.upsert(append(updates, added...))
	if len(deletes) > 0 {
		d.mu.Lock()
		_, err := d.sim.DeleteRecords(benchModelRef, deletes)
		must(d.t, err)
		now := time.Now()
		for _, i := range deleted {
			s := d.want[records.ID(i)]
			s.deleted = true
			d.want[records.ID(i)] = s
			d.deleted[i] = true
			d.lastWrite[i] = now
		}
		d.changes += len(deleted)
		d.mu.Unlock()
	}
	if len(prunes) > 0 {
		_, err := d.sim.PruneRecords(benchModelRef, prunes)
		must(d.t, err)
	}
}

func (d *dataSet) snapshot() map[string]state {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]state, len(d.want))
	for k, v := range d.want {
		out[k] = v
	}
	return out
}

// cursorAfter reports whether cursor a is after cursor b in Nango's order.
func cursorAfter(a, b string) (bool, error) {
	ta, ia, err := nango.DecodeCursor(a)
	if err != nil {
		return false, err
	}
	tb, ib, err := nango.DecodeCursor(b)
	if err != nil {
		return false, err
	}
	return ta.After(tb) || (ta.Equal(tb) && ia > ib), nil
}

// soakSink is what a soak reads of the sink under test: its checkpoint, without disturbing
// the manager that writes it, and the rows its records make (for event sinks, the rows a
// consumer folds the events into).
type soakSink interface {
	Checkpoint(ctx context.Context, key sink.Key) (sink.Checkpoint, error)
	ReadRows(ctx context.Context, key sink.Key) ([]sink.Record, error)
}

// soakRun is one soak: an emulator being changed, a sink, one NangoSync.
type soakRun struct {
	t         *testing.T
	e         *env
	data      *dataSet
	url       string
	namespace string
	sink      soakSink
	stop      chan struct{}
	done      chan struct{}
	// backwards collects every time the sink's checkpoint went backwards.
	mu        sync.Mutex
	backwards []string
	samples   int
}

// newSoakRun is a soak into the table "contacts" of the PostgreSQL database at pgURL.
func newSoakRun(t *testing.T, e *env, n int, pgURL string, pageSize int32) *soakRun {
	t.Helper()
	return newSoakRunTo(t, e, n, pageSize, postgresSoakTarget(t, pgURL))
}

// postgresSoakTarget is the table "contacts" of the PostgreSQL database at pgURL.
func postgresSoakTarget(t *testing.T, pgURL string) soakTarget {
	return soakTarget{pgURL: pgURL, spec: postgresSinkSpec("contacts"),
		open: func(string) soakSink {
			pg, err := postgres.Open(context.Background(), pgURL, postgres.Options{Table: "contacts"})
			must(t, err)
			t.Cleanup(func() { _ = pg.Close() })
			return pg
		}}
}

// soakTarget is the sink a soak writes to: its spec, the Secrets it names (name → data),
// and how the test reads it, in the NangoSync's namespace.
type soakTarget struct {
	spec    syncv1alpha1.SinkSpec
	pgURL   string
	secrets map[string]map[string]string
	open    func(namespace string) soakSink
}

func newSoakRunTo(t *testing.T, e *env, n int, pageSize int32, target soakTarget) *soakRun {
	t.Helper()
	sim := nangosim.New(nangosim.Options{SecretKey: benchSecretKey})
	must(t, sim.CreateConnection(benchModelRef.ConnectionRef, "hubspot"))
	s := &soakRun{t: t, e: e, data: newDataSet(t, sim, n), stop: make(chan struct{}), done: make(chan struct{})}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	s.url = srv.URL
	s.namespace = e.newNamespace(t, benchSecretKey, target.pgURL)
	for name, data := range target.secrets {
		must(t, e.k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.namespace},
			StringData: data}))
	}
	s.sink = target.open(s.namespace)
	ns := nangoSync(s.namespace, "soak", s.url, pageSize, target.spec)
	must(t, e.k8s.Create(context.Background(), ns))
	return s
}

// mutateAndWatch changes the emulator's records every 50 ms and samples the sink's
// checkpoint every 50 ms, until stopMutating is called.
func (s *soakRun) mutateAndWatch() {
	go func() {
		defer close(s.done)
		ticker := time.NewTicker(50 * time.Millisecond)
		defer ticker.Stop()
		last := ""
		for {
			var readBefore time.Time
			if c, err := s.sink.Checkpoint(context.Background(), benchKey); err == nil && c.Cursor != "" {
				cp := c.Cursor
				if last != "" {
					if after, err := cursorAfter(last, cp); err != nil || after {
						s.mu.Lock()
						s.backwards = append(s.backwards, fmt.Sprintf("checkpoint %s after %s (%v)", cp, last, err))
						s.mu.Unlock()
					}
				}
				last = cp
				s.mu.Lock()
				s.samples++
				s.mu.Unlock()
				readBefore, _, _ = nango.DecodeCursor(cp)
			}
			s.data.mutate(readBefore)
			select {
			case <-s.stop:
				return
			case <-ticker.C:
			}
		}
	}()
}

func (s *soakRun) stopMutating() {
	close(s.stop)
	<-s.done
}

// verify asks for a sync now, waits until the sink's checkpoint reaches the emulator's last
// cursor, and compares the sink with the emulator and the test's own expectations.
func (s *soakRun) verify(ctx context.Context, c *nango.Client, within time.Duration) {
	t := s.t
	t.Helper()
	want := s.data.snapshot()
	emulator, pruned, lastCursor := emulatorState(t, c, 1000)
	// The emulator agrees with the test's model: same ids, deleted flags and payloads
	// (for records not pruned).
	if len(emulator) != len(want) {
		t.Fatalf("the emulator has %d records, the test expects %d", len(emulator), len(want))
	}
	for id, got := range emulator {
		w, ok := want[id]
		if !ok || got.deleted != w.deleted || (!pruned[id] && got.hash != w.hash) {
			t.Fatalf("the emulator's record %s differs from the test's model", id)
		}
	}

	s.syncNow(ctx)
	eventually(t, within, 200*time.Millisecond, func() error {
		c, err := s.sink.Checkpoint(ctx, benchKey)
		cp := c.Cursor
		if err != nil {
			return err
		}
		if cp != lastCursor {
			return fmt.Errorf("sink checkpoint %q, emulator's last cursor %q", cp, lastCursor)
		}
		return nil
	})
	// status.records counts each page once, however often the manager died: it ends
	// equal to the counts the sink keeps with its checkpoint, in the pages' transactions.
	eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		c, err := s.sink.Checkpoint(ctx, benchKey)
		if err != nil {
			return err
		}
		ns, err := s.e.getSync(s.namespace, "soak")
		if err != nil {
			return err
		}
		got, want := ns.Status.Records, c.Written
		if got.Added != want.Added || got.Updated != want.Updated || got.Deleted != want.Deleted ||
			got.Total != want.Added+want.Updated+want.Deleted {
			return fmt.Errorf("status.records %+v, the sink counted %+v", got, want)
		}
		return nil
	})
	if err := diffSink(s.sink, want); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.backwards) > 0 {
		t.Fatalf("the sink's checkpoint went backwards %d times: %v", len(s.backwards), s.backwards[:min(3, len(s.backwards))])
	}
	if s.samples < 2 {
		t.Fatalf("the checkpoint was sampled %d times: nothing was checked", s.samples)
	}
	t.Logf("%d records (%d pruned) equal in the emulator and the sink after %d changes; checkpoint sampled %d times, never backwards",
		len(want), len(pruned), s.data.changes, s.samples)
}

// syncNow sets the requested-at annotation, so the operator syncs without waiting for its
// interval.
func (s *soakRun) syncNow(ctx context.Context) {
	ns, err := s.e.getSync(s.namespace, "soak")
	must(s.t, err)
	patch := client.MergeFrom(ns.DeepCopy())
	if ns.Annotations == nil {
		ns.Annotations = map[string]string{}
	}
	ns.Annotations[syncv1alpha1.RequestedAtAnnotation] = time.Now().Format(time.RFC3339Nano)
	must(s.t, s.e.k8s.Patch(ctx, ns, patch))
}

// TestSoakKill SIGKILLs the manager at random moments during a sync while the emulator
// keeps updating, deleting and pruning records; then the sink must equal the emulator.
// Smoke: 3 kills during 20,000 records. Full (NANGO_SOAK_FULL=1): 20 kills, 200,000 records.
func TestSoakKill(t *testing.T) {
	n, kills := 20_000, 3
	if fullSoak() {
		n, kills = 200_000, 20
	}
	e := cluster(t)
	pgURL := pgtest.StartServer(t).DSN("postgres")
	killSoak(t, e, n, kills, postgresSoakTarget(t, pgURL))
}

// killSoak syncs n records into target in pages of 100 while the records change and the
// manager is SIGKILLed kills times, then compares the sink with the emulator.
func killSoak(t *testing.T, e *env, n, kills int, target soakTarget) {
	t.Helper()
	s := newSoakRunTo(t, e, n, 100, target)
	args := []string{"--nango-rate-limit", "1000000000", "--retry-base-delay", "50ms", "--retry-max-delay", "1s",
		"--allowed-nango-urls", s.url}
	m := s.killRepeatedly(kills, args)
	s.stopMutating()
	s.verify(context.Background(), newNangoClient(t, s.url), 3*time.Minute)
	m.stop()
}

// killRepeatedly starts the manager, changes the records while it syncs, and SIGKILLs it
// kills times at random moments, starting it again each time; it answers the manager that
// runs last.
func (s *soakRun) killRepeatedly(kills int, args []string) *manager {
	t, e := s.t, s.e
	m := e.startManager(t, args...)
	s.mutateAndWatch()
	rng := rand.New(rand.NewPCG(1, 2))
	for k := range kills {
		// A random moment mid-sync: once this manager has committed a page (a loaded
		// machine can take longer to start one than the moment to kill it), then up to
		// 700 ms more.
		s.waitForAWrite(m, 30*time.Second)
		wait := time.Duration(rng.IntN(700)) * time.Millisecond
		select {
		case <-time.After(wait):
		case <-m.exited:
			t.Fatalf("the manager exited by itself; its output:\n%s", m.output)
		}
		m.kill()
		// A checkpoint read can wait for a transaction the killed manager left open
		// (Kafka): it is logged, not required.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := s.sink.Checkpoint(ctx, benchKey)
		cancel()
		t.Logf("kill %d after %s at checkpoint %q (%v)", k+1, wait, c.Cursor, err)
		m = e.startManager(t, args...)
	}
	return m
}

// waitForAWrite waits until the sink's checkpoint moves, at most within, so that a kill lands
// while the manager writes; a sync that has ended moves it no more.
func (s *soakRun) waitForAWrite(m *manager, within time.Duration) {
	read := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, _ := s.sink.Checkpoint(ctx, benchKey)
		return c.Cursor
	}
	before := read()
	for deadline := time.Now().Add(within); time.Now().Before(deadline) && read() == before; {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-m.exited:
			s.t.Fatalf("the manager exited by itself; its output:\n%s", m.output)
		}
	}
}

// TestSoakNangoFaults syncs while the emulator answers 10% 5xx, 5% 429 (Retry-After 1 s),
// drops 1% of connections and adds 50 ms to every request, and the records keep changing.
// Smoke: 3,000 records, 5 s of changes. Full (NANGO_SOAK_FULL=1): 20,000 records, 60 s.
func TestSoakNangoFaults(t *testing.T) {
	n, changeFor := 3_000, 5*time.Second
	if fullSoak() {
		n, changeFor = 20_000, time.Minute
	}
	e := cluster(t)
	s := newSoakRun(t, e, n, pgtest.StartServer(t).DSN("postgres"), 100)
	faults := nangosim.Faults{ServerErrorRate: 0.10, RateLimitRate: 0.05, RetryAfter: nangosim.Duration(time.Second),
		DropRate: 0.01, Latency: nangosim.Duration(50 * time.Millisecond)}
	sim := s.data.sim
	sim.SetFaults(faults)
	m := e.startManager(t, "--nango-rate-limit", "1000000000", "--retry-base-delay", "50ms", "--retry-max-delay", "1s",
		"--allowed-nango-urls", s.url)
	s.mutateAndWatch()
	select {
	case <-time.After(changeFor):
	case <-m.exited:
		t.Fatalf("the manager exited; its output:\n%s", m.output)
	}
	s.stopMutating()
	// Read the final state without faults, then let the operator catch up with them.
	sim.SetFaults(nangosim.Faults{})
	c := newNangoClient(t, s.url)
	_, _, last := emulatorState(t, c, 1000)
	sim.SetFaults(faults)
	s.syncNow(context.Background())
	eventually(t, 3*time.Minute, 200*time.Millisecond, func() error {
		c, err := s.sink.Checkpoint(context.Background(), benchKey)
		cp := c.Cursor
		if err != nil {
			return err
		}
		if cp != last {
			return fmt.Errorf("sink checkpoint %q, emulator's last cursor %q", cp, last)
		}
		return nil
	})
	stats := sim.Stats()
	sim.SetFaults(nangosim.Faults{})
	s.verify(context.Background(), c, time.Minute)
	if stats.InjectedFaults == 0 {
		t.Fatal("no fault was injected")
	}
	t.Logf("emulator: %d requests, %d injected faults", stats.Requests, stats.InjectedFaults)
	m.stop()
}

// TestSoakPostgresOutage stops PostgreSQL mid-sync: the NangoSync must say SinkUnavailable,
// resume by itself when PostgreSQL is back, and lose nothing. Smoke: a 3 s outage during
// 20,000 records. Full (NANGO_SOAK_FULL=1): 30 s.
func TestSoakPostgresOutage(t *testing.T) {
	n, outage := 20_000, 3*time.Second
	if fullSoak() {
		outage = 30 * time.Second
	}
	e := cluster(t)
	pg := pgtest.StartServer(t)
	s := newSoakRun(t, e, n, pg.DSN("postgres"), 100)
	m := e.startManager(t, "--nango-rate-limit", "1000000000", "--retry-base-delay", "50ms", "--retry-max-delay", "1s",
		"--allowed-nango-urls", s.url)
	ctx := context.Background()
	eventually(t, time.Minute, 10*time.Millisecond, func() error {
		c, err := s.sink.Checkpoint(ctx, benchKey)
		cp := c.Cursor
		if err != nil || cp == "" {
			return fmt.Errorf("no checkpoint yet (%v)", err)
		}
		return nil
	})
	stopped := time.Now()
	must(t, pg.Stop(ctx))
	eventually(t, time.Minute, 100*time.Millisecond, func() error {
		ns, err := e.getSync(s.namespace, "soak")
		if err != nil {
			return err
		}
		if status, reason := readyReason(ns); status != metav1.ConditionFalse || reason != syncv1alpha1.SinkUnavailableReason {
			return fmt.Errorf("Ready=%s (%s)", status, reason)
		}
		return nil
	})
	if ns, err := e.getSync(s.namespace, "soak"); err == nil && totalRecords(ns) >= int64(n) {
		t.Fatalf("the sync had finished (%d records) before PostgreSQL stopped: not mid-sync", totalRecords(ns))
	}
	<-time.After(time.Until(stopped.Add(outage)))
	must(t, pg.Start(ctx))
	eventually(t, 2*time.Minute, 200*time.Millisecond, func() error {
		ns, err := e.getSync(s.namespace, "soak")
		if err != nil {
			return err
		}
		if status, reason := readyReason(ns); status != metav1.ConditionTrue || totalRecords(ns) < int64(n) {
			return fmt.Errorf("Ready=%s (%s), %d records", status, reason, totalRecords(ns))
		}
		return nil
	})
	// A few changes after the outage, watched through a few checkpoint samples (the test's own
	// pool reconnects after the restart, so a fixed wait may see none), then the exact comparison.
	s.mutateAndWatch()
	eventually(t, time.Minute, 50*time.Millisecond, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.samples < 5 {
			return fmt.Errorf("the checkpoint was sampled %d times", s.samples)
		}
		return nil
	})
	s.stopMutating()
	s.verify(ctx, newNangoClient(t, s.url), time.Minute)
	m.stop()
}
