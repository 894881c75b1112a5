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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/checkpoints"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink"
	"github.com/nango-operator/nango-operator/internal/sink/httpsink/httpsinktest"
	"github.com/nango-operator/nango-operator/internal/sink/kafkasink"
)

// startKafka starts an in-process Kafka cluster (kfake) that outlives every manager the
// test kills: the managers reach it at the addresses it answers.
func startKafka(t *testing.T) []string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	must(t, err)
	t.Cleanup(cluster.Close)
	return cluster.ListenAddrs()
}

// kafkaReader reads what the manager wrote to Kafka as a read_committed consumer does,
// without taking any transactional id over.
type kafkaReader struct{ *kafkasink.Sink }

func (k kafkaReader) Checkpoint(ctx context.Context, key sink.Key) (sink.Checkpoint, error) {
	return k.CommittedCheckpoint(ctx, key)
}

// messages answers the committed record versions of key, in the order of their partition.
func (k kafkaReader) messages(ctx context.Context, key sink.Key) ([]kafkasink.Message, error) {
	var out []kafkasink.Message
	var decodeErr error
	err := k.ReadCommitted(ctx, k.Topic(key), func(r *kgo.Record) {
		if decodeErr != nil || !kafkasink.DataSetOf(r.Key, key) {
			return
		}
		m, err := kafkasink.DecodeMessage(r)
		if err != nil {
			decodeErr = err
		}
		out = append(out, m)
	})
	if err == nil {
		err = decodeErr
	}
	return out, err
}

// ReadRows folds the committed versions into rows as a consumer does: a version replaces an
// older one, a pruned version keeps the fields.
func (k kafkaReader) ReadRows(ctx context.Context, key sink.Key) ([]sink.Record, error) {
	messages, err := k.messages(ctx, key)
	if err != nil {
		return nil, err
	}
	return foldVersions(messages), nil
}

func foldVersions(messages []kafkasink.Message) []sink.Record {
	rows := map[string]sink.Record{}
	for _, m := range messages {
		httpsinktest.Apply(rows, m.Record)
	}
	out := make([]sink.Record, 0, len(rows))
	for _, r := range rows {
		out = append(out, r)
	}
	return out
}

// TestSoakKillKafka SIGKILLs the manager at random moments while it syncs into Kafka with
// transactions and the emulator keeps updating, deleting and pruning records. A
// read_committed consumer must then see every version once: no event id twice, the
// versions of each record in order, as many messages as the checkpoint counted (it is
// written in the pages' transactions), and the newest versions equal to the emulator.
// Smoke: 2 kills during 5,000 records (a transaction per page of 100 makes it the slowest
// soak in make test). Full (NANGO_SOAK_FULL=1): 20 kills, 200,000 records.
func TestSoakKillKafka(t *testing.T) {
	n, kills := 5_000, 2
	if fullSoak() {
		n, kills = 200_000, 20
	}
	e := cluster(t)
	brokers := startKafka(t)
	spec := syncv1alpha1.SinkSpec{Kafka: &syncv1alpha1.KafkaSink{Brokers: brokers, Topic: "soak.{model}",
		Delivery: syncv1alpha1.DeliveryExactlyOnce}}
	reader, err := kafkasink.Open(kafkasink.Options{Brokers: brokers, Topic: "soak.{model}"})
	must(t, err)
	t.Cleanup(func() { _ = reader.Close() })
	killSoak(t, e, n, kills, soakTarget{spec: spec, open: func(string) soakSink { return kafkaReader{reader} }})

	ctx := context.Background()
	messages, err := kafkaReader{reader}.messages(ctx, benchKey)
	must(t, err)
	checkpoint, err := reader.CommittedCheckpoint(ctx, benchKey)
	must(t, err)
	if err := exactlyOnce(messages, checkpoint.Written); err != nil {
		t.Fatal(err)
	}
	t.Logf("a read_committed consumer saw %d versions, each once, in order per record", len(messages))
}

// exactlyOnce checks that messages carry each version once, in order per record, and as
// many as written counts.
func exactlyOnce(messages []kafkasink.Message, written sink.WriteResult) error {
	ids := make(map[string]bool, len(messages))
	last := map[string]sink.Record{}
	for i, m := range messages {
		if m.Tombstone {
			return fmt.Errorf("message %d is a tombstone; the sink writes none", i)
		}
		if ids[m.ID] {
			return fmt.Errorf("version %s of record %s seen twice", m.ID, m.Record.ID)
		}
		ids[m.ID] = true
		if prev, ok := last[m.Record.ID]; ok && !m.Record.LastModifiedAt.After(prev.LastModifiedAt) {
			return fmt.Errorf("record %s: version of %s after one of %s", m.Record.ID, m.Record.LastModifiedAt, prev.LastModifiedAt)
		}
		last[m.Record.ID] = m.Record
	}
	if total := written.Added + written.Updated + written.Deleted; int64(len(messages)) != total {
		return fmt.Errorf("%d committed messages, the checkpoint counted %d versions", len(messages), total)
	}
	return nil
}

// httpReceiver is the user's endpoint of an http soak and the checkpoints the operator
// keeps for it.
type httpReceiver struct {
	*httpsinktest.Receiver
	checkpoints checkpoints.ConfigMaps
}

func (h httpReceiver) Checkpoint(ctx context.Context, key sink.Key) (sink.Checkpoint, error) {
	return h.checkpoints.Load(ctx, key)
}

// TestSoakKillHTTP SIGKILLs the manager at random moments while it pushes batches to an
// endpoint and the emulator keeps changing records. Every batch must follow one accepted
// before it (its Cursor-From is an accepted Cursor-To: no page skipped), the versions of each
// record arrive in order (a batch delivered again repeats them, never goes back), and the
// rows the endpoint makes, applying each Idempotency-Key once, equal the emulator's.
// Smoke: 2 kills during 5,000 records. Full (NANGO_SOAK_FULL=1): 20 kills, 200,000 records.
func TestSoakKillHTTP(t *testing.T) {
	n, kills := 5_000, 2
	if fullSoak() {
		n, kills = 200_000, 20
	}
	e := cluster(t)
	signingKey := "0123456789abcdef0123456789abcdef"
	rx := httpsinktest.New([]byte(signingKey))
	srv := httptest.NewServer(rx)
	t.Cleanup(srv.Close)
	endpoint := srv.URL + "/hooks/nango"
	place := sha256.Sum256([]byte(endpoint))
	spec := syncv1alpha1.SinkSpec{HTTP: &syncv1alpha1.HTTPSink{
		URLSecretRef:        syncv1alpha1.SecretKeyReference{Name: "endpoint", Key: "url"},
		SigningKeySecretRef: syncv1alpha1.SecretKeyReference{Name: "endpoint", Key: "signingKey"}}}
	killSoak(t, e, n, kills, soakTarget{spec: spec,
		secrets: map[string]map[string]string{"endpoint": {"url": endpoint, "signingKey": signingKey}},
		open: func(namespace string) soakSink {
			return httpReceiver{Receiver: rx, checkpoints: checkpoints.ConfigMaps{Client: e.k8s, Reader: e.k8s,
				Namespace: namespace, Place: hex.EncodeToString(place[:])}}
		}})
	again, err := inOrderAtLeastOnce(rx.Requests())
	must(t, err)
	t.Logf("%d batches accepted, %d of them delivered again after a kill", len(rx.Requests()), again)
}

// inOrderAtLeastOnce checks the batches an endpoint accepted: each page's first batch starts
// where an accepted page ended (or at the beginning), and no record's version goes back.
// It answers how many batches were delivered again.
func inOrderAtLeastOnce(requests []httpsinktest.Request) (int, error) {
	ended := map[string]bool{"": true}
	last := map[string]time.Time{}
	batches, again := 0, 0
	seenKeys := map[string]bool{}
	for i, r := range requests {
		from := r.Header.Get(httpsink.HeaderCursorFrom)
		to := r.Header.Get(httpsink.HeaderCursorTo)
		if strings.HasPrefix(r.Header.Get(httpsink.HeaderBatchPart), "1/") && !ended[from] {
			return 0, fmt.Errorf("request %d starts at cursor %q, where no accepted page ended: a page was skipped", i, from)
		}
		ended[to] = true
		batches++
		if key := r.Header.Get(httpsink.HeaderIdempotencyKey); seenKeys[key] {
			again++
		} else {
			seenKeys[key] = true
		}
		for _, ev := range r.Events {
			rec, err := ev.Record()
			if err != nil {
				return 0, err
			}
			if prev, ok := last[rec.ID]; ok && rec.LastModifiedAt.Before(prev) {
				return 0, fmt.Errorf("request %d: record %s went back from %s to %s", i, rec.ID, prev, rec.LastModifiedAt)
			}
			last[rec.ID] = rec.LastModifiedAt
		}
	}
	if batches == 0 {
		return 0, fmt.Errorf("no batch was accepted")
	}
	return again, nil
}
