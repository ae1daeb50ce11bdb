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
)

// Rig is an in-process kfake target with two writers to it, each with its
// own client: the replicator, with provenance on, writing [EventTopic]
// through a client built as the function builds it
// (replicate.NewTargetClient), and a raw producer with the same connection
// and producer options but franz-go's own pipelining (no
// kafkaconn.ProduceGuard), writing [RawTopic]. The two never share a topic,
// because the replicator refuses to write after records that carry no
// provenance.
type Rig struct {
	Workload *Workload
	target   *kafkalocal.Cluster
	repl     *replicate.Replicator
	replCl   *kgo.Client
	rawCl    *kgo.Client
	round    int
	event    []byte
}

// NewRig starts the target and both clients for w, compressing with
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
	tgt, err := kafkalocal.StartTarget(kafkalocal.ClusterOptions{Topics: []kafkalocal.Topic{
		{Name: EventTopic, Partitions: Partitions},
		{Name: RawTopic, Partitions: Partitions},
		{Name: replicate.DefaultDeadLetterTopic, Partitions: 1},
	}})
	if err != nil {
		return nil, err
	}
	r := &Rig{Workload: w, target: tgt}
	cfg := replicate.Config{
		Target:           kafkaconn.Config{Prefix: "TARGET", Bootstrap: tgt.Bootstrap(), Auth: kafkaconn.AuthPlaintext},
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
	if r.replCl, err = replicate.NewTargetClient(ctx, cfg, nil); err != nil {
		r.Close()
		return nil, err
	}
	if r.rawCl, err = cfg.Target.NewClient(ctx, nil, replicate.ProducerOptions(cfg)...); err != nil {
		r.Close()
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if r.repl, err = replicate.New(cfg, r.replCl, replicate.WithLogger(quiet), replicate.WithMetricsWriter(nil)); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close stops the clients and the target.
func (r *Rig) Close() {
	if r.replCl != nil {
		r.replCl.Close()
	}
	if r.rawCl != nil {
		r.rawCl.Close()
	}
	r.target.Close()
}

// NextEvent returns the next batch for the replicator: the workload's
// records with offsets following the previous batch's. The returned bytes
// are reused by the following call.
func (r *Rig) NextEvent() []byte {
	r.event = r.Workload.Event(r.event[:0], r.round)
	r.round++
	return r.event
}

// Handle runs one event through the replicator and fails unless every
// record was written.
func (r *Rig) Handle(ctx context.Context, payload []byte) error {
	res, err := r.repl.Handle(ctx, payload)
	if err != nil {
		return fmt.Errorf("handler: %w", err)
	}
	if res.RecordsWritten != r.Workload.Records() {
		return fmt.Errorf("handler wrote %d of %d records (result %+v)", res.RecordsWritten, r.Workload.Records(), res)
	}
	return nil
}

// RawRecords returns fresh records for one raw produce.
func (r *Rig) RawRecords() []*kgo.Record { return r.Workload.ProducerRecords(RawTopic) }

// Raw writes recs with a plain ProduceSync and waits for every ack.
func (r *Rig) Raw(ctx context.Context, recs []*kgo.Record) error {
	if err := r.rawCl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("raw producer: %w", err)
	}
	return nil
}
