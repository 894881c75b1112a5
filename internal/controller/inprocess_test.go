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
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestInProcessWakesSkipOnlyTheEchoOfAServedWake(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "contacts"}
	var w inProcessWakes

	// Nothing handed over: every reconcile syncs.
	if w.takeServed(key, "t0") || w.markServed(key, w.latest(key), "t0") {
		t.Fatal("a NangoSync never woken in-process was served")
	}

	// A sync that started after the wake t1, and saw an older annotation, serves t1 once.
	w.deliver(key, "t1")
	started := w.latest(key)
	if !w.markServed(key, started, "t0") {
		t.Fatal("a complete sync did not serve the wake it started after")
	}
	if w.takeServed(key, "t0") {
		t.Fatal("an older annotation was taken for the served wake")
	}
	if !w.echoPending(key) || !w.takeServed(key, "t1") {
		t.Fatal("the annotation event of the served wake was not skipped")
	}
	if w.takeServed(key, "t1") {
		t.Fatal("a served wake was skipped twice: a later interval would not sync")
	}

	// A sync that already saw its wake in the annotation expects no event for it.
	w.deliver(key, "t2")
	if w.markServed(key, w.latest(key), "t2") || w.takeServed(key, "t2") {
		t.Fatal("a wake whose annotation the sync saw was kept as served")
	}

	// A wake that came during the sync is not served by it.
	w.deliver(key, "t3")
	started = w.latest(key)
	w.deliver(key, "t4")
	if w.markServed(key, started, "t2") || w.takeServed(key, "t3") || w.takeServed(key, "t4") {
		t.Fatal("a sync served a wake that came after it started")
	}

	// A served wake followed by a new one: the old echo syncs again, the new wake counts.
	w.deliver(key, "t5")
	w.markServed(key, "t5", "t4")
	w.deliver(key, "t6")
	if w.echoPending(key) || w.takeServed(key, "t5") {
		t.Fatal("an echo was skipped although a newer wake waits")
	}

	w.markServed(key, "t6", "t5")
	w.forget(key)
	if w.echoPending(key) || w.latest(key) != "" {
		t.Fatal("a deleted NangoSync's wakes were kept")
	}
}
