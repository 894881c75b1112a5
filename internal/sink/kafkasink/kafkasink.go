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

// Package kafkasink writes a NangoSync's records to a Kafka topic: one message per record
// version, keyed by integration/connection/model/variant/id (each part percent-encoded), so
// that a record's versions stay in one partition, in order. The value is the record as
// Nango's API answers it (its fields and _nango_metadata) as JSON; the CloudEvents
// attributes are headers (binary mode: ce_specversion, ce_id, ce_type, ce_source,
// ce_subject, ce_time, content-type). A deleted record is a delete event
// (dev.nango.record.deleted), followed by a tombstone (the same key, a null value) when
// Options.Tombstones asks for compaction semantics.
//
// The checkpoint of each data set is a message of the checkpoint topic (compacted), keyed
// by the records topic and the data set. With transactions (the default) a page's messages
// and its checkpoint are written in one Kafka transaction, under a transactional id of the
// data set's own: a consumer reading with isolation.level=read_committed sees every version
// exactly once, across crashes and restarts. Before a sink reads a data set's checkpoint
// (read_committed), it takes the transactional id over, which aborts whatever transaction a
// crashed writer left open. Without transactions, messages are written first and the
// checkpoint after them: a crash in between writes the page again, with the same keys and
// event ids (at-least-once).
//
// A sink keeps what it read of a checkpoint and what it wrote since: while it holds the
// data set's transactional id, no one else writes it (a writer that takes the id over
// fences this one, whose next write fails, forgets, and reads again).
package kafkasink

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/nango-operator/nango-operator/internal/sink"
	"github.com/nango-operator/nango-operator/internal/sink/cloudevents"
)

// Defaults of Options.
const (
	DefaultCheckpointTopic       = "nango-operator-checkpoints"
	DefaultTransactionalIDPrefix = "nango-operator"
	// ModelPlaceholder in Options.Topic is replaced by the data set's model.
	ModelPlaceholder = "{model}"
)

// The SASL mechanisms a sink can authenticate with.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL is how a sink authenticates to the brokers.
type SASL struct {
	// Mechanism is SASLPlain, SASLScramSHA256 or SASLScramSHA512.
	Mechanism string
	Username  string
	Password  string
}

// Options configure a sink.
type Options struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Topic the records go to; ModelPlaceholder in it is replaced by the data set's model.
	Topic string
	// CheckpointTopic keeps the checkpoints, keyed by records topic and data set. The sink
	// creates it (compacted, one partition) when missing. DefaultCheckpointTopic when empty.
	CheckpointTopic string
	// DisableTransactions writes messages, then the checkpoint, without a transaction:
	// at-least-once instead of exactly-once, for clusters that refuse transactions.
	DisableTransactions bool
	// TransactionalIDPrefix starts each data set's transactional id.
	// DefaultTransactionalIDPrefix when empty.
	TransactionalIDPrefix string
	// Tombstones follows each delete event with a tombstone of the record's key.
	Tombstones bool
	// TLS dials the brokers with TLS; CAPEM, when set, is trusted besides the system's roots.
	TLS   bool
	CAPEM []byte
	// SASL authenticates to the brokers when set.
	SASL *SASL
	// now answers the time of a data set's deletion event; time.Now when nil.
	now func() time.Time
}

// Sink writes to one cluster. It is safe for concurrent use; writes of one data set are
// serialised.
type Sink struct {
	opts  Options
	base  []kgo.Opt
	admin *kadm.Client

	mu      sync.Mutex
	sets    map[sink.Key]*dataSet
	created map[string]bool // topics known to exist
	closed  bool
}

// dataSet is what a sink holds of one data set: its producer, under the data set's
// transactional id, and its checkpoint as last read or written.
type dataSet struct {
	mu         sync.Mutex
	producer   *kgo.Client
	loaded     bool
	checkpoint sink.Checkpoint
}

// Open checks opts and answers a sink. It connects to nothing yet.
func Open(opts Options) (*Sink, error) {
	if len(opts.Brokers) == 0 {
		return nil, sink.Refused(errors.New("no Kafka brokers"), "list the brokers in spec.sink.kafka.brokers")
	}
	if err := validTopic(opts.Topic); err != nil {
		return nil, sink.Refused(err, "set spec.sink.kafka.topic to a Kafka topic name, {model} standing for the model")
	}
	if opts.CheckpointTopic == "" {
		opts.CheckpointTopic = DefaultCheckpointTopic
	}
	if err := validTopic(opts.CheckpointTopic); err != nil || strings.Contains(opts.CheckpointTopic, ModelPlaceholder) {
		return nil, sink.Refused(fmt.Errorf("checkpoint topic %q is not a topic name", opts.CheckpointTopic),
			"set spec.sink.kafka.checkpointTopic to a Kafka topic name")
	}
	if opts.TransactionalIDPrefix == "" {
		opts.TransactionalIDPrefix = DefaultTransactionalIDPrefix
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	base := []kgo.Opt{kgo.SeedBrokers(opts.Brokers...), kgo.ClientID("nango-operator")}
	if opts.TLS || len(opts.CAPEM) > 0 {
		config := &tls.Config{MinVersion: tls.VersionTLS12}
		if len(opts.CAPEM) > 0 {
			roots, err := x509.SystemCertPool()
			if err != nil {
				roots = x509.NewCertPool()
			}
			if !roots.AppendCertsFromPEM(opts.CAPEM) {
				return nil, sink.Refused(errors.New("the CA Secret holds no PEM certificate"),
					"put the PEM-encoded CA certificate of the brokers in the Secret that spec.sink.kafka.tls.caSecretRef names")
			}
			config.RootCAs = roots
		}
		base = append(base, kgo.DialTLSConfig(config))
	}
	if opts.SASL != nil {
		auth := opts.SASL
		switch auth.Mechanism {
		case SASLPlain:
			base = append(base, kgo.SASL(plain.Auth{User: auth.Username, Pass: auth.Password}.AsMechanism()))
		case SASLScramSHA256:
			base = append(base, kgo.SASL(scram.Auth{User: auth.Username, Pass: auth.Password}.AsSha256Mechanism()))
		case SASLScramSHA512:
			base = append(base, kgo.SASL(scram.Auth{User: auth.Username, Pass: auth.Password}.AsSha512Mechanism()))
		default:
			return nil, sink.Refused(fmt.Errorf("unknown SASL mechanism %q", auth.Mechanism),
				"set spec.sink.kafka.sasl.mechanism to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
	}
	adminClient, err := kgo.NewClient(base...)
	if err != nil {
		return nil, fmt.Errorf("configure the Kafka client: %w", err)
	}
	return &Sink{opts: opts, base: base, admin: kadm.NewClient(adminClient), sets: map[sink.Key]*dataSet{},
		created: map[string]bool{}}, nil
}

// validTopic checks a topic name as Kafka does, {model} allowed.
func validTopic(topic string) error {
	name := strings.ReplaceAll(topic, ModelPlaceholder, "M")
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return fmt.Errorf("topic %q is not a topic name", topic)
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("topic %q has %q: topic names hold letters, digits, '.', '_' and '-'", topic, c)
		}
	}
	return nil
}

// Topic answers the topic the records of key go to.
func (s *Sink) Topic(key sink.Key) string {
	return strings.ReplaceAll(s.opts.Topic, ModelPlaceholder, key.Model)
}

// MessageKey answers the key of a record's messages: integration/connection/model/variant/id,
// each part percent-encoded (url.PathEscape).
func MessageKey(key sink.Key, id string) string {
	return dataSetPrefix(key) + "/" + url.PathEscape(id)
}

func dataSetPrefix(key sink.Key) string {
	return url.PathEscape(key.ProviderConfigKey) + "/" + url.PathEscape(key.ConnectionID) + "/" +
		url.PathEscape(key.Model) + "/" + url.PathEscape(key.Variant)
}

// checkpointKey is the key of the data set's messages in the checkpoint topic.
func (s *Sink) checkpointKey(key sink.Key) string {
	return s.Topic(key) + "/" + dataSetPrefix(key)
}

// TransactionalID answers the transactional id of key's writes: the prefix and a hash of
// the records topic, checkpoint topic and data set.
func (s *Sink) TransactionalID(key sink.Key) string {
	sum := sha256.Sum256([]byte(s.Topic(key) + "\x00" + s.opts.CheckpointTopic + "\x00" + key.ProviderConfigKey +
		"\x00" + key.ConnectionID + "\x00" + key.Model + "\x00" + key.Variant))
	return s.opts.TransactionalIDPrefix + "-" + hex.EncodeToString(sum[:16])
}

// set answers the state of key, made on first use.
func (s *Sink) set(key sink.Key) (*dataSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("the Kafka sink is closed")
	}
	d, ok := s.sets[key]
	if !ok {
		d = &dataSet{}
		s.sets[key] = d
	}
	return d, nil
}

// forget drops what d holds: the next use takes the transactional id over and reads the
// checkpoint again. Every failed write forgets, since its outcome may be unknown.
func (d *dataSet) forget() {
	if d.producer != nil {
		d.producer.Close()
	}
	d.producer, d.loaded, d.checkpoint = nil, false, sink.Checkpoint{}
}

// ready makes sure d has a producer that holds the data set's transactional id, and knows
// the checkpoint. Called with d.mu held.
func (s *Sink) ready(ctx context.Context, key sink.Key, d *dataSet) error {
	if d.producer != nil && d.loaded {
		return nil
	}
	d.forget()
	if err := s.ensureTopic(ctx, s.opts.CheckpointTopic, true); err != nil {
		return err
	}
	if err := s.ensureTopic(ctx, s.Topic(key), false); err != nil {
		return err
	}
	opts := append(append([]kgo.Opt(nil), s.base...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.DefaultProduceTopic(s.Topic(key)))
	if !s.opts.DisableTransactions {
		opts = append(opts, kgo.TransactionalID(s.TransactionalID(key)))
	}
	producer, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("configure the Kafka producer of %s: %w", key, err)
	}
	d.producer = producer
	// Taking the transactional id over aborts a transaction a crashed writer left open,
	// so the checkpoint read next is the last committed one.
	if _, _, err := producer.ProducerID(ctx); err != nil {
		d.forget()
		return s.failed(ctx, "take the transactional id of "+key.String()+" over", err)
	}
	checkpoint, err := s.readCheckpoint(ctx, s.checkpointKey(key))
	if err != nil {
		d.forget()
		return err
	}
	d.checkpoint, d.loaded = checkpoint, true
	return nil
}

// ensureTopic creates topic when missing: the checkpoint topic compacted with one
// partition, a records topic with the brokers' defaults. A refusal to create is no error:
// the topic may exist, and writing to it tells.
func (s *Sink) ensureTopic(ctx context.Context, topic string, checkpoints bool) error {
	s.mu.Lock()
	done := s.created[topic]
	s.mu.Unlock()
	if done {
		return nil
	}
	partitions, configs := int32(-1), map[string]*string(nil)
	if checkpoints {
		compact := "compact"
		partitions, configs = 1, map[string]*string{"cleanup.policy": &compact}
	}
	resp, err := s.admin.CreateTopic(ctx, partitions, -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil, errors.Is(err, kerr.TopicAlreadyExists), errors.Is(err, kerr.TopicAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed):
	default:
		return s.failed(ctx, "create topic "+topic, err)
	}
	s.mu.Lock()
	s.created[topic] = true
	s.mu.Unlock()
	return nil
}

// storedCheckpoint is a checkpoint message's value.
type storedCheckpoint struct {
	Cursor    string `json:"cursor"`
	Added     int64  `json:"added"`
	Updated   int64  `json:"updated"`
	Deleted   int64  `json:"deleted"`
	OwnerUID  string `json:"ownerUID,omitempty"`
	OwnerName string `json:"ownerName,omitempty"`
}

func encodeCheckpoint(c sink.Checkpoint) []byte {
	value, _ := json.Marshal(storedCheckpoint{Cursor: c.Cursor, Added: c.Written.Added, Updated: c.Written.Updated,
		Deleted: c.Written.Deleted, OwnerUID: c.Owner.UID, OwnerName: c.Owner.Name})
	return value
}

func decodeCheckpoint(value []byte) (sink.Checkpoint, error) {
	if value == nil {
		return sink.Checkpoint{}, nil // a tombstone: deleted
	}
	var stored storedCheckpoint
	if err := json.Unmarshal(value, &stored); err != nil {
		return sink.Checkpoint{}, fmt.Errorf("a checkpoint message holds %q, not a checkpoint: %w", value, err)
	}
	return sink.Checkpoint{Cursor: stored.Cursor,
		Written: sink.WriteResult{Added: stored.Added, Updated: stored.Updated, Deleted: stored.Deleted},
		Owner:   sink.Owner{UID: stored.OwnerUID, Name: stored.OwnerName}}, nil
}

// readCheckpoint answers the last committed checkpoint of key in the checkpoint topic.
func (s *Sink) readCheckpoint(ctx context.Context, key string) (sink.Checkpoint, error) {
	var value []byte
	err := s.ReadCommitted(ctx, s.opts.CheckpointTopic, func(r *kgo.Record) {
		if string(r.Key) == key {
			value = r.Value
		}
	})
	if err != nil {
		return sink.Checkpoint{}, fmt.Errorf("read the checkpoint %s: %w", key, err)
	}
	return decodeCheckpoint(value)
}

// ReadCommitted reads topic with isolation.level=read_committed, from its start up to its
// end as it is when called, and hands each committed message to each, in order per
// partition. It waits for the transactions open at that end to end, since committed
// messages may follow them. A consumer of the records topic reads the same way.
func (s *Sink) ReadCommitted(ctx context.Context, topic string, each func(*kgo.Record)) error {
	starts, err := s.admin.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil // nothing written yet
	}
	if err != nil {
		return s.failed(ctx, "list the offsets of "+topic, err)
	}
	ends, err := s.admin.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return s.failed(ctx, "list the offsets of "+topic, err)
	}
	from, until := map[int32]kgo.Offset{}, map[int32]int64{}
	ends.Each(func(end kadm.ListedOffset) {
		if start, ok := starts.Lookup(topic, end.Partition); ok && start.Offset < end.Offset {
			from[end.Partition] = kgo.NewOffset().At(start.Offset)
			until[end.Partition] = end.Offset
		}
	})
	if len(from) == 0 {
		return nil
	}
	// Control records (transaction markers) are kept to see where a partition's read ends:
	// the last offset before the end may be one.
	consumer, err := kgo.NewClient(append(append([]kgo.Opt(nil), s.base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return fmt.Errorf("configure the Kafka consumer of %s: %w", topic, err)
	}
	defer consumer.Close()
	for len(until) > 0 {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("read topic %s: %w", topic, ctx.Err())
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return s.failed(ctx, "read topic "+topic, errs[0].Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end, reading := until[r.Partition]
			if !reading {
				return // past the end this read stops at
			}
			if r.Offset+1 >= end {
				delete(until, r.Partition)
			}
			if !r.Attrs.IsControl() && r.Offset < end {
				each(r)
			}
		})
	}
	return nil
}

// failed classifies a Kafka error: a refused authorization or authentication stays until
// someone fixes the cluster or the spec; anything else is the cluster unavailable for now.
func (s *Sink) failed(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	err = fmt.Errorf("%s on Kafka brokers %s: %w", what, strings.Join(s.opts.Brokers, ","), err)
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.TransactionalIDAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed):
		return sink.Refused(err, "grant the operator's Kafka principal write on the topics, and write on its "+
			"transactional ids (or set spec.sink.kafka.delivery: AtLeastOnce)")
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState),
		errors.Is(err, kerr.UnsupportedSaslMechanism):
		return sink.Refused(err, "check the SASL mechanism, user and password of spec.sink.kafka.sasl")
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return sink.Refused(err, "raise the topic's max.message.bytes: a record is larger than the brokers accept")
	case errors.Is(err, kerr.InvalidTopicException):
		return sink.Refused(err, "set spec.sink.kafka.topic to a valid topic name")
	}
	return fmt.Errorf("%w: %w", sink.ErrUnavailable, err)
}

// Checkpoint answers the checkpoint of key, as last committed.
func (s *Sink) Checkpoint(ctx context.Context, key sink.Key) (sink.Checkpoint, error) {
	d, err := s.set(key)
	if err != nil {
		return sink.Checkpoint{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.ready(ctx, key, d); err != nil {
		return sink.Checkpoint{}, err
	}
	return d.checkpoint, nil
}

// CommittedCheckpoint reads the last committed checkpoint of key without taking the
// transactional id over, so it does not disturb the operator writing it: what a monitor
// or a test reads. It waits for the transactions open at the checkpoint topic's end to end.
func (s *Sink) CommittedCheckpoint(ctx context.Context, key sink.Key) (sink.Checkpoint, error) {
	return s.readCheckpoint(ctx, s.checkpointKey(key))
}

// WritePage writes the page's messages and its checkpoint, in one transaction unless
// transactions are off.
func (s *Sink) WritePage(ctx context.Context, key sink.Key, page sink.Page) (sink.WriteResult, error) {
	prepared, err := sink.PreparePage(key, page.Records)
	if err != nil {
		return sink.WriteResult{}, err
	}
	d, err := s.set(key)
	if err != nil {
		return sink.WriteResult{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.ready(ctx, key, d); err != nil {
		return sink.WriteResult{}, err
	}
	if err := sink.Claimable(key, d.checkpoint.Owner, page.Owner); err != nil {
		return sink.WriteResult{}, err
	}
	messages := make([]*kgo.Record, 0, len(prepared.Records)+len(prepared.Quarantined)+1)
	for _, r := range prepared.Records {
		messages = append(messages, s.recordMessage(key, r))
		if s.opts.Tombstones && r.Action == sink.ActionDeleted {
			messages = append(messages, &kgo.Record{Key: []byte(MessageKey(key, r.ID))})
		}
	}
	for _, q := range prepared.Quarantined {
		messages = append(messages, s.quarantinedMessage(key, q))
	}
	next := d.checkpoint
	var checkpoint *kgo.Record
	if page.Checkpoint != "" {
		next = sink.Checkpoint{Cursor: page.Checkpoint, Written: d.checkpoint.Written.Add(prepared.Result), Owner: page.Owner}
		next.Written.Quarantined = 0
		checkpoint = s.checkpointMessage(key, encodeCheckpoint(next))
	}
	if err := s.writeOrRetake(ctx, key, d, messages, checkpoint); err != nil {
		return sink.WriteResult{}, err
	}
	d.checkpoint = next
	return prepared.Result, nil
}

// writeOrRetake writes, and when another writer had taken the transactional id over (a
// second sink of the same place, opened for a while) takes it back and writes again, but
// only if the checkpoint is still the one the write follows: else the write would repeat
// or skip what the other wrote, and the caller must read the checkpoint again.
func (s *Sink) writeOrRetake(ctx context.Context, key sink.Key, d *dataSet, messages []*kgo.Record, checkpoint *kgo.Record) error {
	follows := d.checkpoint // a failed write forgets it
	err := s.write(ctx, key, d, messages, checkpoint)
	if err == nil || !fenced(err) {
		return err
	}
	if readyErr := s.ready(ctx, key, d); readyErr != nil {
		return errors.Join(err, readyErr)
	}
	if d.checkpoint != follows {
		d.forget()
		return fmt.Errorf("%w: another writer wrote %s meanwhile: %w", sink.ErrUnavailable, key, err)
	}
	return s.write(ctx, key, d, messages, checkpoint)
}

// fenced reports whether err says that another producer took the transactional id over.
func fenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidProducerIDMapping)
}

// write produces messages and then checkpoint (if any), in one transaction unless they are
// off. On failure d forgets: the outcome of a failed commit is unknown until the
// checkpoint is read again.
func (s *Sink) write(ctx context.Context, key sink.Key, d *dataSet, messages []*kgo.Record, checkpoint *kgo.Record) (err error) {
	if len(messages) == 0 && checkpoint == nil {
		return nil
	}
	defer func() {
		if err != nil {
			d.forget()
		}
	}()
	p := d.producer
	transactional := !s.opts.DisableTransactions
	if transactional {
		if err := p.BeginTransaction(); err != nil {
			return s.failed(ctx, "begin a transaction of "+key.String(), err)
		}
	}
	if err := p.ProduceSync(ctx, messages...).FirstErr(); err != nil {
		return s.failed(ctx, fmt.Sprintf("write %d messages of %s to topic %s", len(messages), key, s.Topic(key)), err)
	}
	if checkpoint != nil {
		if err := p.ProduceSync(ctx, checkpoint).FirstErr(); err != nil {
			return s.failed(ctx, "write the checkpoint of "+key.String(), err)
		}
	}
	if transactional {
		if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return s.failed(ctx, "commit the transaction of "+key.String(), err)
		}
	}
	return nil
}

func (s *Sink) checkpointMessage(key sink.Key, value []byte) *kgo.Record {
	return &kgo.Record{Topic: s.opts.CheckpointTopic, Key: []byte(s.checkpointKey(key)), Value: value}
}

// headers answers the CloudEvents attributes of an event, in binary mode.
func headers(key sink.Key, id, typ, subject string, at time.Time) []kgo.RecordHeader {
	h := []kgo.RecordHeader{
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_id", Value: []byte(id)},
		{Key: "ce_type", Value: []byte(typ)},
		{Key: "ce_source", Value: []byte(cloudevents.Source(key))},
		{Key: "ce_time", Value: []byte(cloudevents.Time(at))},
		{Key: "content-type", Value: []byte("application/json")},
	}
	if subject != "" {
		h = append(h, kgo.RecordHeader{Key: "ce_subject", Value: []byte(subject)})
	}
	return h
}

func (s *Sink) recordMessage(key sink.Key, r sink.Record) *kgo.Record {
	return &kgo.Record{Key: []byte(MessageKey(key, r.ID)), Value: cloudevents.Data(r),
		Headers: headers(key, cloudevents.EventID(key, r), cloudevents.Type(r), r.ID, r.LastModifiedAt)}
}

func (s *Sink) quarantinedMessage(key sink.Key, q sink.Quarantined) *kgo.Record {
	return &kgo.Record{Key: []byte(MessageKey(key, q.QuotedID())), Value: cloudevents.QuarantinedData(q),
		Headers: headers(key, cloudevents.EventID(key, q.Record), cloudevents.TypeQuarantined, q.QuotedID(), q.LastModifiedAt)}
}

// DeleteCheckpoint forgets the checkpoint of key (a tombstone in the checkpoint topic), and
// so its owner: the next read starts over and writes every record again. It writes nothing
// for a data set another owns (*sink.ConflictError).
func (s *Sink) DeleteCheckpoint(ctx context.Context, key sink.Key, owner sink.Owner) error {
	return s.remove(ctx, key, owner, false)
}

// ResetCheckpoint forgets the cursor and counts of key and keeps its owner, claiming the
// data set for owner if no one owns it: the next read starts over and writes every record
// again. It writes nothing for a data set another owns (*sink.ConflictError).
func (s *Sink) ResetCheckpoint(ctx context.Context, key sink.Key, owner sink.Owner) error {
	d, err := s.set(key)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.ready(ctx, key, d); err != nil {
		return err
	}
	if err := sink.Claimable(key, d.checkpoint.Owner, owner); err != nil {
		return err
	}
	reset := sink.Checkpoint{Owner: owner}
	if err := s.writeOrRetake(ctx, key, d, nil, s.checkpointMessage(key, encodeCheckpoint(reset))); err != nil {
		return err
	}
	d.checkpoint = reset
	return nil
}

// DeleteRows cannot remove messages from a topic: it writes one event of type
// dev.nango.dataset.deleted (keyed by the data set, integration/connection/model/variant),
// for consumers to remove the data set's records, and forgets the checkpoint, in one
// transaction. It writes nothing for a data set another owns (*sink.ConflictError), nor for
// one without a checkpoint (sink.Sink.DeleteRows).
func (s *Sink) DeleteRows(ctx context.Context, key sink.Key, owner sink.Owner) error {
	if err := key.Validate(); err != nil {
		return err
	}
	return s.remove(ctx, key, owner, true)
}

func (s *Sink) remove(ctx context.Context, key sink.Key, owner sink.Owner, announce bool) error {
	d, err := s.set(key)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.ready(ctx, key, d); err != nil {
		return err
	}
	if err := sink.Claimable(key, d.checkpoint.Owner, owner); err != nil {
		return err
	}
	if announce && d.checkpoint == (sink.Checkpoint{}) {
		return nil // a data set without a checkpoint is no one's: nothing to delete
	}
	var messages []*kgo.Record
	if announce {
		at := s.opts.now()
		messages = append(messages, &kgo.Record{Key: []byte(dataSetPrefix(key)), Value: []byte("{}"),
			Headers: headers(key, cloudevents.DataSetDeletedID(key, at), cloudevents.TypeDataSetDeleted, "", at)})
	}
	if err := s.writeOrRetake(ctx, key, d, messages, s.checkpointMessage(key, nil)); err != nil {
		return err
	}
	d.checkpoint = sink.Checkpoint{}
	return nil
}

// Close closes every producer.
func (s *Sink) Close() error {
	s.mu.Lock()
	sets := s.sets
	s.sets, s.closed = nil, true
	s.mu.Unlock()
	for _, d := range sets {
		d.mu.Lock()
		d.forget()
		d.mu.Unlock()
	}
	s.admin.Close()
	return nil
}

// Message is a record version's message as a consumer decodes it.
type Message struct {
	// ID and Type are the CloudEvents id and type (ce_id, ce_type).
	ID, Type string
	// Tombstone is true for a null value: the record's key is to be forgotten.
	Tombstone bool
	// Record is the version (zero for a tombstone, and for events of other types).
	Record sink.Record
}

// DecodeMessage decodes a message of a records topic as a consumer does.
func DecodeMessage(r *kgo.Record) (Message, error) {
	if r.Value == nil {
		return Message{Tombstone: true}, nil
	}
	var m Message
	var subject string
	for _, h := range r.Headers {
		switch h.Key {
		case "ce_id":
			m.ID = string(h.Value)
		case "ce_type":
			m.Type = string(h.Value)
		case "ce_subject":
			subject = string(h.Value)
		}
	}
	switch m.Type {
	case cloudevents.TypeAdded, cloudevents.TypeUpdated, cloudevents.TypeDeleted:
		record, err := cloudevents.DecodeRecord(subject, r.Value)
		if err != nil {
			return Message{}, fmt.Errorf("message %s at offset %d of partition %d: %w", m.ID, r.Offset, r.Partition, err)
		}
		m.Record = record
	}
	return m, nil
}

// DataSetOf reports whether a records topic's message key belongs to the data set key.
func DataSetOf(messageKey []byte, key sink.Key) bool {
	return strings.HasPrefix(string(messageKey), dataSetPrefix(key)+"/")
}
