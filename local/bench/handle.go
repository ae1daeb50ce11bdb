package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/replicate"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/txnstate"
)

// Source topics of the handler streams (see Stream); each is written to
// the topic of the same name on the target.
const (
	// EventTopic is written by plain producers: the handler's main stream.
	EventTopic = "bench.events"
	// UncheckedTopic is EventTopic's twin for the handler without the
	// transaction check.
	UncheckedTopic = "bench.events.unchecked"
	// TxnTopic and TxnUncheckedTopic are written in committed
	// transactions of TxnRecords records each.
	TxnTopic          = "bench.txn"
	TxnUncheckedTopic = "bench.txn.unchecked"
	// FencedTopic is EventTopic's twin for the handler with the fence
	// (replicate.Config.TransactionalIDPrefix): each partition written in
	// a transaction of its own transactional ID.
	FencedTopic = "bench.events.fenced"
	// TxnRecords is how many records (over all partitions) each source
	// transaction holds: Kafka Streams' exactly-once commits every 100 ms
	// write transactions of this order.
	TxnRecords = 100
)

// Rig is an in-process kfake source and target with writers to the target,
// each with its own client: four replicator streams (Stream), each reading
// its own source topic and writing its own target topic through a client
// built as the function builds it (replicate.NewTargetClient), and a raw
// producer with the same connection and producer options but franz-go's
// own pipelining (no produceguard.Guard), writing [RawTopic]. No two
// writers share a target topic: a replicator refuses to write after
// records that carry no provenance, and another writer's records would
// cost it re-reading the target's tail.
type Rig struct {
	Workload *Workload
	source   *kafkalocal.Cluster
	target   *kafkalocal.Cluster
	srcCl    *kgo.Client // the replicators' source client (transaction checks)
	rawCl    *kgo.Client
	// Main is the handler as deployed (transaction check on) on a
	// non-transactional topic; Unchecked the same without the check;
	// Txn and TxnUnchecked the same two on a transactional topic; Fenced
	// is Main with the fence.
	Main, Unchecked, Txn, TxnUnchecked, Fenced *Stream
	streams                                    []*Stream
}

// Stream is one replicator and the source topic it replicates: each event
// it hands out names records first written to that topic (untimed), at the
// offsets they were given.
type Stream struct {
	rig   *Rig
	topic string
	txn   bool
	repl  *replicate.Replicator
	replC *kgo.Client
	seed  *kgo.Client // writes the source topic; transactional when txn
	recs  []kgo.Record
	ptrs  []*kgo.Record
	event []byte
}

// NewRig starts the clusters and clients for w, compressing with
// compression (none, gzip, snappy, lz4, zstd; empty means the function's
// default, replicate.DefaultCompression). Close releases them.
func NewRig(ctx context.Context, w *Workload, compression string) (*Rig, error) {
	if compression == "" {
		compression = replicate.DefaultCompression
	}
	switch compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		return nil, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", compression)
	}
	topics := []kafkalocal.Topic{
		{Name: EventTopic, Partitions: Partitions}, {Name: UncheckedTopic, Partitions: Partitions},
		{Name: TxnTopic, Partitions: Partitions}, {Name: TxnUncheckedTopic, Partitions: Partitions},
		{Name: FencedTopic, Partitions: Partitions},
	}
	src, err := kafkalocal.StartSource(kafkalocal.ClusterOptions{Topics: topics, Security: kafkalocal.SecurityPlaintext})
	if err != nil {
		return nil, err
	}
	tgt, err := kafkalocal.StartTarget(kafkalocal.ClusterOptions{Topics: append(topics,
		kafkalocal.Topic{Name: RawTopic, Partitions: Partitions},
		kafkalocal.Topic{Name: replicate.DefaultDeadLetterTopic, Partitions: 1})})
	if err != nil {
		src.Close()
		return nil, err
	}
	r := &Rig{Workload: w, source: src, target: tgt}
	cfg := replicate.Config{
		Target:           kafkaconn.Config{Prefix: "TARGET", Bootstrap: tgt.Bootstrap(), Auth: kafkaconn.AuthPlaintext},
		Source:           kafkaconn.Config{Prefix: "SOURCE", Bootstrap: src.Bootstrap(), Auth: kafkaconn.AuthPlaintext},
		Compression:      compression,
		MaxMessageBytes:  replicate.DefaultMaxMessageBytes,
		OnRecordError:    replicate.FailBatch,
		DeadLetterTopic:  replicate.DefaultDeadLetterTopic,
		Provenance:       true,
		MetricsNamespace: replicate.DefaultMetricsNamespace,
	}
	if cfg.Transforms, err = transform.Parse(nil); err != nil {
		r.Close()
		return nil, err
	}
	if r.srcCl, err = replicate.NewSourceClient(ctx, cfg, nil); err != nil {
		r.Close()
		return nil, err
	}
	if r.rawCl, err = cfg.Target.NewClient(ctx, nil, replicate.ProducerOptions(cfg)...); err != nil {
		r.Close()
		return nil, err
	}
	for _, s := range []struct {
		dst     **Stream
		topic   string
		txn     bool
		checked bool
		fenced  bool
	}{{&r.Main, EventTopic, false, true, false}, {&r.Unchecked, UncheckedTopic, false, false, false},
		{&r.Txn, TxnTopic, true, true, false}, {&r.TxnUnchecked, TxnUncheckedTopic, true, false, false},
		{&r.Fenced, FencedTopic, false, true, true}} {
		st, err := r.newStream(ctx, cfg, s.topic, s.txn, s.checked, s.fenced)
		if err != nil {
			r.Close()
			return nil, err
		}
		*s.dst = st
	}
	return r, nil
}

func (r *Rig) newStream(ctx context.Context, cfg replicate.Config, topic string, txn, checked, fenced bool) (*Stream, error) {
	s := &Stream{rig: r, topic: topic, txn: txn}
	r.streams = append(r.streams, s)
	var err error
	if s.replC, err = replicate.NewTargetClient(ctx, cfg, nil); err != nil {
		return nil, err
	}
	opts := []replicate.Option{replicate.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), replicate.WithMetricsWriter(nil)}
	if !checked {
		opts = append(opts, replicate.WithoutTransactionCheck())
	}
	if fenced {
		cfg.TransactionalIDPrefix = "bench-fence-"
		opts = append(opts, replicate.WithFenceClientFactory(func(id string) (*kgo.Client, error) {
			return replicate.NewFenceClient(ctx, cfg, nil, id)
		}))
	}
	if s.repl, err = replicate.New(cfg, s.replC, r.srcCl, opts...); err != nil {
		return nil, err
	}
	// Uncompressed, as Kafka's Java producer writes by default: the
	// check then fetches as many bytes as the records hold, its most.
	seedOpts := []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(100_000),
		kgo.ProducerBatchCompression(kgo.NoCompression())}
	if txn {
		seedOpts = append(seedOpts, kgo.TransactionalID("bench-"+topic))
	}
	if s.seed, err = r.source.NewClient(seedOpts...); err != nil {
		return nil, err
	}
	s.recs = make([]kgo.Record, len(r.Workload.recs))
	s.ptrs = make([]*kgo.Record, len(s.recs))
	for i, t := range r.Workload.recs {
		s.recs[i] = t
		s.recs[i].Topic = topic
		s.ptrs[i] = &s.recs[i]
	}
	return s, nil
}

// Close stops the clients and the clusters.
func (r *Rig) Close() {
	for _, s := range r.streams {
		if s.repl != nil {
			_ = s.repl.Close(context.Background()) // its client and fenced producers
			s.replC = nil
		}
		for _, cl := range []*kgo.Client{s.replC, s.seed} {
			if cl != nil {
				cl.Close()
			}
		}
	}
	for _, cl := range []*kgo.Client{r.srcCl, r.rawCl} {
		if cl != nil {
			cl.Close()
		}
	}
	r.target.Close()
	r.source.Close()
}

// Source is the replicators' source cluster.
func (r *Rig) Source() *kafkalocal.Cluster { return r.source }

// NextEvent is r.Main.NextEvent.
func (r *Rig) NextEvent(ctx context.Context) ([]byte, error) { return r.Main.NextEvent(ctx) }

// Handle is r.Main.Handle.
func (r *Rig) Handle(ctx context.Context, payload []byte) error { return r.Main.Handle(ctx, payload) }

// NextEvent writes the workload's records once more to the stream's source
// topic (in transactions of TxnRecords records, committed, on a
// transactional stream) and returns the event naming them at the offsets
// they were given. The returned bytes are reused by the following call.
func (s *Stream) NextEvent(ctx context.Context) ([]byte, error) {
	recs := s.rig.Workload.ProducerRecords(s.topic)
	step := len(recs)
	if s.txn {
		step = TxnRecords
	}
	for i := 0; i < len(recs); i += step {
		part := recs[i:min(i+step, len(recs))]
		if s.txn {
			if err := s.seed.BeginTransaction(); err != nil {
				return nil, fmt.Errorf("seeding %s: %w", s.topic, err)
			}
		}
		err := s.seed.ProduceSync(ctx, part...).FirstErr()
		if s.txn {
			commit := kgo.TryCommit
			if err != nil {
				commit = kgo.TryAbort
			}
			if eerr := s.seed.EndTransaction(ctx, commit); err == nil {
				err = eerr
			}
		}
		if err != nil {
			return nil, fmt.Errorf("seeding %s: %w", s.topic, err)
		}
	}
	for i, rec := range recs {
		s.recs[i].Offset = rec.Offset
	}
	s.event = s.rig.Workload.enc.Append(s.event[:0], s.ptrs)
	return s.event, nil
}

// Handle runs one event through the stream's replicator and fails unless
// every record was written.
func (s *Stream) Handle(ctx context.Context, payload []byte) error {
	res, err := s.repl.Handle(ctx, payload)
	if err != nil {
		return fmt.Errorf("handler (%s): %w", s.topic, err)
	}
	if res.RecordsWritten != s.rig.Workload.Records() {
		return fmt.Errorf("handler (%s) wrote %d of %d records (result %+v)", s.topic, res.RecordsWritten, s.rig.Workload.Records(), res)
	}
	return nil
}

// SourceStats are the stream's replicator's source fetches so far (zero
// without the check).
func (s *Stream) SourceStats() txnstate.Stats { return s.repl.SourceStats() }

// RawRecords returns fresh records for one raw produce.
func (r *Rig) RawRecords() []*kgo.Record { return r.Workload.ProducerRecords(RawTopic) }

// Raw writes recs with a plain ProduceSync and waits for every ack.
func (r *Rig) Raw(ctx context.Context, recs []*kgo.Record) error {
	if err := r.rawCl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("raw producer: %w", err)
	}
	return nil
}
