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

package kafkasink

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/sinktest"
)

// BrokersEnv names brokers (host:port, comma-separated) of a real Kafka cluster to run the
// suite against instead of the in-process kfake cluster.
const BrokersEnv = "NANGO_OPERATOR_KAFKA_BROKERS"

// brokers answers the brokers of the package's tests: BrokersEnv's, or an in-process kfake
// cluster's, closed when the test ends.
func brokers(t *testing.T) []string {
	t.Helper()
	if env := os.Getenv(BrokersEnv); env != "" {
		return strings.Split(env, ",")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(cluster.Close)
	return cluster.ListenAddrs()
}

var unsafeTopic = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// topic answers a topic of the test's own: a real cluster keeps the topics of earlier runs.
func topic(t *testing.T, what string) string {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return unsafeTopic.ReplaceAllString(t.Name(), "-") + "-" + what + "-" + hex.EncodeToString(suffix)
}

// testSink is a Kafka sink with a read_committed consumer of its topic.
type testSink struct{ *Sink }

func (s testSink) Delivered(ctx context.Context, key sink.Key) ([]sinktest.Event, error) {
	var events []sinktest.Event
	var decodeErr error
	err := s.ReadCommitted(ctx, s.Topic(key), func(r *kgo.Record) {
		if decodeErr != nil || !DataSetOf(r.Key, key) {
			return
		}
		m, err := DecodeMessage(r)
		if err != nil {
			decodeErr = err
			return
		}
		if !m.Tombstone {
			events = append(events, sinktest.Event{ID: m.ID, Record: m.Record})
		}
	})
	return events, errors.Join(err, decodeErr)
}

func open(t *testing.T, opts Options) testSink {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return testSink{s}
}

func TestConformance(t *testing.T) {
	for _, transactions := range []bool{true, false} {
		t.Run(fmt.Sprintf("transactions=%t", transactions), func(t *testing.T) {
			// One partition: the suite reads a data set's versions in the order written, which
			// Kafka keeps per partition (per record key) only.
			opts := Options{Brokers: brokers(t), Topic: topic(t, "records"), CheckpointTopic: topic(t, "checkpoints"),
				DisableTransactions: !transactions}
			createTopic(t, opts, opts.Topic)
			sinktest.RunEvents(t, func(t *testing.T) sinktest.EventSink { return open(t, opts) })
		})
	}
}

// createTopic creates topic with one partition.
func createTopic(t *testing.T, opts Options, topic string) {
	t.Helper()
	s := open(t, opts)
	defer func() { _ = s.Close() }()
	resp, err := s.admin.CreateTopic(context.Background(), 1, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

var key = sink.Key{ProviderConfigKey: "github", ConnectionID: "acme/corp", Model: "Issue", Variant: "base"}

func records(from, n int, action sink.Action) []sink.Record {
	epoch := time.Date(2026, 4, 14, 18, 46, 3, 0, time.UTC)
	out := make([]sink.Record, n)
	for i := range out {
		id := fmt.Sprintf("r%03d", from+i)
		out[i] = sink.Record{ID: id, Payload: json.RawMessage(fmt.Sprintf(`{"id":%q,"title":"issue %d"}`, id, from+i)),
			Action: action, FirstSeenAt: epoch, LastModifiedAt: epoch.Add(time.Duration(from+i) * time.Second),
			Cursor: fmt.Sprintf("cursor-%s-%s", id, action)}
	}
	return out
}

// committed answers the messages of topic a read_committed consumer sees.
func committed(t *testing.T, s testSink, topic string) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	if err := s.ReadCommitted(context.Background(), topic, func(r *kgo.Record) { out = append(out, r) }); err != nil {
		t.Fatalf("ReadCommitted: %v", err)
	}
	return out
}

func header(r *kgo.Record, name string) string {
	for _, h := range r.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}

func TestMessagesAreCloudEventsKeyedByRecord(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{Brokers: brokers(t), Topic: topic(t, "{model}"), CheckpointTopic: topic(t, "checkpoints"),
		Tombstones: true})
	defer func() { _ = s.Close() }()
	if !strings.Contains(s.Topic(key), "-Issue-") {
		t.Fatalf("topic %q does not name the model", s.Topic(key))
	}
	page := append(records(0, 2, sink.ActionAdded), records(0, 1, sink.ActionDeleted)...)
	page[2].LastModifiedAt = page[1].LastModifiedAt.Add(time.Second)
	deletedAt := page[2].LastModifiedAt
	page[2].DeletedAt = &deletedAt
	if _, err := s.WritePage(ctx, key, sink.Page{Records: page, Checkpoint: "c3"}); err != nil {
		t.Fatalf("WritePage: %v", err)
	}
	messages := committed(t, s, s.Topic(key))
	// r000 deleted in the same page: only its newest version, the delete, then its tombstone.
	if len(messages) != 3 {
		t.Fatalf("%d messages, want 3 (r001 added, r000 deleted, r000's tombstone)", len(messages))
	}
	byKey := map[string][]*kgo.Record{}
	for _, m := range messages {
		byKey[string(m.Key)] = append(byKey[string(m.Key)], m)
	}
	added := byKey["github/acme%2Fcorp/Issue/base/r001"]
	if len(added) != 1 {
		t.Fatalf("messages by key: %v, want one of github/acme%%2Fcorp/Issue/base/r001", keys(byKey))
	}
	m := added[0]
	for name, want := range map[string]string{"ce_type": "dev.nango.record.added", "ce_source": "/nango/github/acme%2Fcorp/Issue/base",
		"ce_time": "2026-04-14T18:46:04Z", "ce_specversion": "1.0", "ce_subject": "r001", "content-type": "application/json"} {
		if got := header(m, name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if header(m, "ce_id") == "" {
		t.Errorf("no ce_id header")
	}
	var value map[string]any
	if err := json.Unmarshal(m.Value, &value); err != nil || value["title"] != "issue 1" || value["_nango_metadata"] == nil {
		t.Fatalf("value %s is not the record with its _nango_metadata (%v)", m.Value, err)
	}
	gone := byKey["github/acme%2Fcorp/Issue/base/r000"]
	if len(gone) != 2 || header(gone[0], "ce_type") != "dev.nango.record.deleted" || gone[1].Value != nil ||
		gone[0].Partition != gone[1].Partition || gone[0].Offset > gone[1].Offset {
		t.Fatalf("r000's messages %v, want a delete event then a tombstone in its partition", gone)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCrashedTransactionIsNeverSeen stands for a writer killed inside a transaction: its
// messages are on the brokers, uncommitted. A new writer (a restarted operator) takes the
// transactional id over, which aborts them; it reads the last committed checkpoint, writes
// the page again, and a read_committed consumer sees each version once. The old writer,
// fenced, fails its next write and recovers by reading again.
func TestCrashedTransactionIsNeverSeen(t *testing.T) {
	ctx := context.Background()
	opts := Options{Brokers: brokers(t), Topic: topic(t, "records"), CheckpointTopic: topic(t, "checkpoints")}
	crashed := open(t, opts)
	defer func() { _ = crashed.Close() }()
	first, second := records(0, 3, sink.ActionAdded), records(3, 3, sink.ActionAdded)
	if _, err := crashed.WritePage(ctx, key, sink.Page{Records: first, Checkpoint: "c3"}); err != nil {
		t.Fatalf("first page: %v", err)
	}
	// The second page's transaction, left open as by a SIGKILL between produce and commit.
	d, _ := crashed.set(key)
	if err := d.producer.BeginTransaction(); err != nil {
		t.Fatalf("BeginTransaction: %v", err)
	}
	messages := make([]*kgo.Record, 0, len(second)+1)
	for _, r := range second {
		messages = append(messages, crashed.recordMessage(key, r))
	}
	messages = append(messages, crashed.checkpointMessage(key, encodeCheckpoint(sink.Checkpoint{Cursor: "c6"})))
	if err := d.producer.ProduceSync(ctx, messages...).FirstErr(); err != nil {
		t.Fatalf("produce the open transaction: %v", err)
	}

	restarted := open(t, opts)
	defer func() { _ = restarted.Close() }()
	checkpoint, err := restarted.Checkpoint(ctx, key)
	if err != nil || checkpoint.Cursor != "c3" {
		t.Fatalf("checkpoint after the crash = %+v, %v; want c3", checkpoint, err)
	}
	if _, err := restarted.WritePage(ctx, key, sink.Page{Records: second, Checkpoint: "c6"}); err != nil {
		t.Fatalf("second page again: %v", err)
	}
	events, err := restarted.Delivered(ctx, key)
	if err != nil {
		t.Fatalf("Delivered: %v", err)
	}
	ids := make([]string, 0, len(events))
	for _, e := range events {
		ids = append(ids, e.Record.ID)
	}
	slices.Sort(ids) // Kafka orders the versions of each record, in its partition, not the records
	if got, want := strings.Join(ids, ","), "r000,r001,r002,r003,r004,r005"; got != want {
		t.Fatalf("a read_committed consumer sees %s, want %s", got, want)
	}

	// The fenced writer's next write fails; the one after reads the checkpoint again.
	if _, err := crashed.WritePage(ctx, key, sink.Page{Records: records(6, 1, sink.ActionAdded), Checkpoint: "c7"}); err == nil {
		t.Fatal("a fenced writer's write succeeded")
	}
	checkpoint, err = crashed.Checkpoint(ctx, key)
	if err != nil || checkpoint.Cursor != "c6" || checkpoint.Written.Added != 6 {
		t.Fatalf("the fenced writer reads %+v, %v; want c6 with 6 added", checkpoint, err)
	}
}

func TestTransactionalIDsAreOnePerDataSet(t *testing.T) {
	s := open(t, Options{Brokers: []string{"127.0.0.1:1"}, Topic: "records-{model}"})
	other := key
	other.ConnectionID = "globex"
	if a, b := s.TransactionalID(key), s.TransactionalID(other); a == b || !strings.HasPrefix(a, DefaultTransactionalIDPrefix+"-") {
		t.Fatalf("transactional ids %q and %q", a, b)
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	for name, opts := range map[string]Options{
		"no brokers":         {Topic: "records"},
		"bad topic":          {Brokers: []string{"b:9092"}, Topic: "records/{model}"},
		"bad CA":             {Brokers: []string{"b:9092"}, Topic: "records", CAPEM: []byte("not pem")},
		"bad SASL mechanism": {Brokers: []string{"b:9092"}, Topic: "records", SASL: &SASL{Mechanism: "GSSAPI"}},
		"templated checkpoints": {Brokers: []string{"b:9092"}, Topic: "records",
			CheckpointTopic: "checkpoints-{model}"},
	} {
		if _, err := Open(opts); err == nil {
			t.Errorf("%s: Open succeeded", name)
		} else if _, refused := sink.Refusal(err); !refused {
			t.Errorf("%s: %v is not a refusal", name, err)
		}
	}
}

func TestValueOfAPrunedRecordHasOnlyItsID(t *testing.T) {
	r := records(0, 1, sink.ActionUpdated)[0]
	r.Payload, r.Pruned = nil, true
	s := open(t, Options{Brokers: []string{"127.0.0.1:1"}, Topic: "records"})
	m := s.recordMessage(key, r)
	if !bytes.HasPrefix(m.Value, []byte(`{"id":"r000","_nango_metadata":{`)) {
		t.Fatalf("value of a pruned record: %s", m.Value)
	}
}

// selfSigned answers a TLS certificate for 127.0.0.1 and its PEM, to trust as a CA.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	private, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &private.PublicKey, private)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: private},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestTLSAndSASL runs on kfake alone (whatever BrokersEnv says): a cluster that asks for
// TLS and SCRAM or PLAIN is written to with the CA and credentials of the spec's Secrets,
// and a wrong password is a refusal, not an outage.
func TestTLSAndSASL(t *testing.T) {
	cert, caPEM := selfSigned(t)
	for _, mechanism := range []string{SASLScramSHA256, SASLScramSHA512, SASLPlain} {
		t.Run(mechanism, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
				kfake.Superuser(mechanism, "nango", "s3cret"),
				kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
			if err != nil {
				t.Fatalf("start kfake: %v", err)
			}
			defer cluster.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			opts := Options{Brokers: cluster.ListenAddrs(), Topic: "records", TLS: true, CAPEM: caPEM,
				SASL: &SASL{Mechanism: mechanism, Username: "nango", Password: "s3cret"}}
			s := open(t, opts)
			defer func() { _ = s.Close() }()
			if _, err := s.WritePage(ctx, key, sink.Page{Records: records(0, 2, sink.ActionAdded), Checkpoint: "c2"}); err != nil {
				t.Fatalf("WritePage over TLS with %s: %v", mechanism, err)
			}
			if events, err := s.Delivered(ctx, key); err != nil || len(events) != 2 {
				t.Fatalf("Delivered: %d events, %v", len(events), err)
			}

			// Kafka answers a wrong password with SASL_AUTHENTICATION_FAILED, a refusal
			// (TestErrorsAreClassified); kfake closes the connection instead, which reads as
			// an outage. Either way nothing is written and the password is not shown.
			opts.SASL.Password = "wrong-password"
			wrong := open(t, opts)
			defer func() { _ = wrong.Close() }()
			short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
			defer cancelShort()
			if _, err := wrong.Checkpoint(short, key); err == nil || strings.Contains(err.Error(), "wrong-password") {
				t.Fatalf("a wrong password: %v, want an error that does not show it", err)
			}
		})
	}
}

func TestErrorsAreClassified(t *testing.T) {
	s := open(t, Options{Brokers: []string{"127.0.0.1:1"}, Topic: "records"})
	ctx := context.Background()
	for _, refusal := range []error{kerr.SaslAuthenticationFailed, kerr.TopicAuthorizationFailed,
		kerr.TransactionalIDAuthorizationFailed, kerr.MessageTooLarge} {
		if _, refused := sink.Refusal(s.failed(ctx, "write", refusal)); !refused {
			t.Errorf("%v is not a refusal", refusal)
		}
	}
	for _, outage := range []error{kerr.NotLeaderForPartition, kerr.RequestTimedOut, io.EOF} {
		if err := s.failed(ctx, "write", outage); !sink.IsUnavailable(err) {
			t.Errorf("%v is not an unavailable sink: %v", outage, err)
		}
	}
	if !fenced(fmt.Errorf("commit: %w", kerr.InvalidProducerEpoch)) || fenced(kerr.RequestTimedOut) {
		t.Error("fenced does not tell a fenced producer")
	}
}
