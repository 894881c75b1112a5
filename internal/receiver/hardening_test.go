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

package receiver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r    io.Reader
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestUnsignedRequestIsRefusedBeforeItsBodyIsRead (issue 14, item 16): a request without
// a signature header is refused before the receiver reads (up to 1 MiB of) its body.
func TestUnsignedRequestIsRefusedBeforeItsBodyIsRead(t *testing.T) {
	h := newHarness(t, false, nil, fixtures()...)
	body := &countingReader{r: strings.NewReader(strings.Repeat("x", MaxBodyBytes))}
	req := httptest.NewRequest(http.MethodPost, Path, body)
	rec := httptest.NewRecorder()
	h.receiver.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", rec.Code)
	}
	if n := body.read.Load(); n != 0 {
		t.Fatalf("read %d bytes of an unsigned request's body", n)
	}
	if got := h.count(typeUnknown, resultUnauthorized); got != 1 {
		t.Fatalf("counted %v unauthorized", got)
	}
}

// TestReplayedWebhooksAreBounded (issue 14, item 15): one valid body replayed in a loop
// costs each NangoSync at most one annotation patch and one in-process wake per
// minWakeInterval, the last after the last webhook.
func TestReplayedWebhooksAreBounded(t *testing.T) {
	var inProcess atomic.Int32
	const interval = time.Second
	var lastInProcess atomic.Value
	h := newHarness(t, true, func(o *Options) {
		o.MinWakeInterval = interval
		o.WakeInProcess = func(_ types.NamespacedName, requestedAt string) {
			inProcess.Add(1)
			lastInProcess.Store(requestedAt)
		}
	}, fixtures()...)
	body := encode(t, syncPayload("Deal", "base", true))
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond {
		if code := h.webhook(operatorKey, body); code != http.StatusAccepted {
			t.Fatalf("status %d", code)
		}
	}
	lastWebhook := time.Now()
	g := NewWithT(t)
	g.Eventually(func() int { return len(h.calls.patchesOf(deals)) }).WithTimeout(3 * time.Second).Should(Equal(2))
	g.Consistently(func() int { return len(h.calls.patchesOf(deals)) }).WithTimeout(interval + 200*time.Millisecond).Should(Equal(2))
	g.Expect(h.calls.patchesOf(deals)[1].started).To(BeTemporally(">=", lastWebhook))
	// The first webhook's wake, then at most one for each patch that carries a later value.
	g.Expect(inProcess.Load()).To(BeNumerically("<=", 3), "more than one in-process wake per patch")
	// The controller of this replica saw the value of the last patch in-process before its
	// annotation event: without it, it would take the event for a new wake, or mark an
	// older value handled.
	g.Expect(lastInProcess.Load()).To(Equal(h.calls.patchesOf(deals)[1].requestedAt()))
}

// failThenRecover sends h a failed run of deals (failedAt 10:00:05), then a successful
// one after it (10:05), waits until the failure is written and cleared, and answers the
// failure's body.
func failThenRecover(t *testing.T, g Gomega, h *harness) []byte {
	t.Helper()
	failed := encode(t, syncPayload("Deal", "", false))
	success := syncPayload("Deal", "base", true)
	success["queryTimeStamp"] = "2026-05-01T10:05:00.000Z"
	g.Expect(h.webhook(operatorKey, failed)).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(deals) }).Should(HaveKey(syncv1alpha1.NangoRunFailureAnnotation))
	g.Expect(h.webhook(operatorKey, encode(t, success))).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(deals) }).ShouldNot(HaveKey(syncv1alpha1.NangoRunFailureAnnotation))
	return failed
}

// TestStaleRunFailureIsIgnored: a failure webhook replayed after a later successful run,
// or older than the failure already written, changes nothing.
func TestStaleRunFailureIsIgnored(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, func(o *Options) { o.MinWakeInterval = time.Millisecond }, fixtures()...)
	failed := failThenRecover(t, g, h)
	patches := len(h.calls.patchesOf(deals))

	g.Expect(h.webhook(operatorKey, failed)).To(Equal(http.StatusAccepted)) // replayed
	g.Consistently(func() map[string]string { return h.annotations(deals) }).WithTimeout(300*time.Millisecond).
		ShouldNot(HaveKey(syncv1alpha1.NangoRunFailureAnnotation), "a replayed old failure was written again")
	g.Expect(h.calls.patchesOf(deals)).To(HaveLen(patches))
}

// TestStaleRunFailureIsIgnoredAfterARestart: the receiver that wrote a success is gone (a
// restart, or the webhook reaches another replica); an old failure replayed to the next
// one changes nothing either, since the time of the last run written is kept on the
// NangoSync itself.
func TestStaleRunFailureIsIgnoredAfterARestart(t *testing.T) {
	g := NewWithT(t)
	fast := func(o *Options) { o.MinWakeInterval = time.Millisecond }
	first := newHarness(t, true, fast, fixtures()...)
	failed := failThenRecover(t, g, first)

	var written syncv1alpha1.NangoSync
	g.Expect(first.client.Get(context.Background(), deals, &written)).To(Succeed())
	written.ResourceVersion = ""
	objs := []client.Object{&written}
	for _, o := range fixtures() {
		if o.GetName() != deals.Name || o.GetNamespace() != deals.Namespace {
			objs = append(objs, o)
		}
	}
	restarted := newHarness(t, true, fast, objs...)
	g.Expect(restarted.webhook(operatorKey, failed)).To(Equal(http.StatusAccepted)) // replayed
	g.Consistently(func() map[string]string { return restarted.annotations(deals) }).WithTimeout(300*time.Millisecond).
		ShouldNot(HaveKey(syncv1alpha1.NangoRunFailureAnnotation), "a replayed old failure was written after a restart")

	// A newer failure is still written.
	newer := syncPayload("Deal", "", false)
	newer["failedAt"] = "2026-05-01T10:06:00.000Z"
	g.Expect(restarted.webhook(operatorKey, encode(t, newer))).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return restarted.annotations(deals) }).
		Should(HaveKey(syncv1alpha1.NangoRunFailureAnnotation))
}

// TestOperatorKeyWritesNoRunStateOnNangoSyncsWithTheirOwnKey: a NangoSync that names its
// own signing key belongs to another Nango environment: a webhook the operator's key
// verifies may wake it (a hint), but never writes a run failure onto it, nor clears one.
func TestOperatorKeyWritesNoRunStateOnNangoSyncsWithTheirOwnKey(t *testing.T) {
	g := NewWithT(t)
	h := newHarness(t, true, func(o *Options) { o.MinWakeInterval = time.Millisecond }, fixtures()...)
	failed := encode(t, syncPayload("Contact", "", false))
	g.Expect(h.webhook(operatorKey, failed)).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(contacts) }).Should(HaveKey(syncv1alpha1.NangoRunFailureAnnotation))
	g.Consistently(func() map[string]string { return h.annotations(ownKey) }).WithTimeout(200 * time.Millisecond).
		ShouldNot(HaveKey(syncv1alpha1.NangoRunFailureAnnotation))

	g.Expect(h.webhook(teamKey, failed)).To(Equal(http.StatusAccepted)) // its own environment's failure
	g.Eventually(func() map[string]string { return h.annotations(ownKey) }).Should(HaveKey(syncv1alpha1.NangoRunFailureAnnotation))
	success := syncPayload("Contact", "base", true)
	success["queryTimeStamp"] = "2026-05-01T11:00:00.000Z"
	g.Expect(h.webhook(operatorKey, encode(t, success))).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(ownKey) }).Should(HaveKey(syncv1alpha1.RequestedAtAnnotation), "still woken")
	g.Expect(h.annotations(ownKey)).To(HaveKey(syncv1alpha1.NangoRunFailureAnnotation), "another environment's success cleared it")
}

// TestRunStateKeepsANewerRunWrittenMeanwhile: between a failure webhook's arrival and its
// patch, another replica writes a newer run onto the NangoSync (its failure cleared). The
// failure's patch carries the resourceVersion it read, so it conflicts, reads the newer run
// and writes nothing; a patch that only wakes stays unlocked.
func TestRunStateKeepsANewerRunWrittenMeanwhile(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	h := newHarness(t, true, func(o *Options) { o.MinWakeInterval = time.Millisecond }, fixtures()...)
	hold := make(chan struct{})
	h.calls.set(func(a *apiCalls) { a.hold = hold })
	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Deal", "", false)))).To(Equal(http.StatusAccepted)) // failed at 10:00:05
	g.Eventually(func() int { return len(h.calls.patchesOf(deals)) }).Should(Equal(1))

	const newerRun = "2026-05-01T10:05:00Z"
	var nsync syncv1alpha1.NangoSync
	g.Expect(h.client.Get(ctx, deals, &nsync)).To(Succeed())
	nsync.Annotations = map[string]string{syncv1alpha1.NangoRunAtAnnotation: newerRun}
	g.Expect(h.client.Update(ctx, &nsync)).To(Succeed()) // another replica's success
	h.calls.set(func(a *apiCalls) { a.hold = nil })
	close(hold)

	g.Consistently(func() map[string]string { return h.annotations(deals) }).WithTimeout(300*time.Millisecond).Should(And(
		Not(HaveKey(syncv1alpha1.NangoRunFailureAnnotation)),
		HaveKeyWithValue(syncv1alpha1.NangoRunAtAnnotation, newerRun)), "an older failure overwrote the newer run")
	g.Expect(h.calls.patchesOf(deals)[0].body).To(ContainSubstring(`"resourceVersion"`), "run state written unlocked")

	// A success older than the stored run only wakes: its patch is not locked.
	g.Expect(h.webhook(operatorKey, encode(t, syncPayload("Deal", "base", true)))).To(Equal(http.StatusAccepted))
	g.Eventually(func() map[string]string { return h.annotations(deals) }).Should(HaveKey(syncv1alpha1.RequestedAtAnnotation))
	patches := h.calls.patchesOf(deals)
	g.Expect(patches[len(patches)-1].body).NotTo(ContainSubstring(`"resourceVersion"`))
	g.Expect(h.annotations(deals)).To(HaveKeyWithValue(syncv1alpha1.NangoRunAtAnnotation, newerRun))
}
