package replicate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/verify"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// rig is a source and target cluster with a replicator between them.
type rig struct {
	pair    *kafkalocal.Pair
	cfg     Config
	target  *kgo.Client
	repl    *Replicator
	emf     bytes.Buffer
	cleanup []func()
}

// newRig starts both clusters with the topics on each (target topics
// renamed by rename, if given) and a replicator configured by mutate.
func newRig(t *testing.T, topics map[string]int32, rename map[string]string, mutate func(*Config)) *rig {
	t.Helper()
	var src, tgt []kafkalocal.Topic
	for name, n := range topics {
		src = append(src, kafkalocal.Topic{Name: name, Partitions: n})
		tn := name
		if r, ok := rename[name]; ok {
			tn = r
		}
		tgt = append(tgt, kafkalocal.Topic{Name: tn, Partitions: n})
	}
	tgt = append(tgt, kafkalocal.Topic{Name: DefaultDeadLetterTopic, Partitions: 1})
	pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{
		Source: kafkalocal.ClusterOptions{Topics: src, Security: kafkalocal.SecurityPlaintext},
		Target: kafkalocal.ClusterOptions{Topics: tgt},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pair.Close)
	r := &rig{pair: pair}
	t.Cleanup(func() {
		for _, f := range r.cleanup {
			f()
		}
	})
	r.cfg = Config{
		Target:           kafkaconn.Config{Prefix: "TARGET", Bootstrap: pair.Target.Bootstrap(), Auth: kafkaconn.AuthPlaintext},
		Compression:      "lz4",
		MaxMessageBytes:  DefaultMaxMessageBytes,
		OnRecordError:    FailBatch,
		DeadLetterTopic:  DefaultDeadLetterTopic,
		Provenance:       true,
		MetricsNamespace: "Test",
	}
	r.cfg.Transforms, _ = transform.Parse(nil)
	if mutate != nil {
		mutate(&r.cfg)
	}
	opts, err := r.cfg.Target.Options(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, ProducerOptions(r.cfg)...)
	opts = append(opts, kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	if r.target, err = kgo.NewClient(opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.target.Close)
	if r.repl, err = New(r.cfg, r.target, WithLogger(quietLogger()), WithMetricsWriter(&r.emf)); err != nil {
		t.Fatal(err)
	}
	return r
}

func quietLogger() *slog.Logger {
	if os.Getenv("KMIG_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// mapping starts an emulated event source mapping from the source topic to
// the replicator, and stops it at cleanup.
func (r *rig) mapping(t *testing.T, topic string, batchSize, concurrency int) *esm.Mapping {
	t.Helper()
	m, err := esm.New(esm.Config{
		FunctionName:          "replicator",
		Topics:                []string{topic},
		ConsumerGroupID:       "kmig-" + topic,
		BootstrapServers:      r.pair.Source.Bootstrap(),
		ClientOptions:         r.pair.Source.ClientOpts(),
		BatchSize:             batchSize,
		MaximumBatchingWindow: 5 * time.Millisecond,
		Concurrency:           concurrency,
		RetryBackoff:          time.Millisecond,
		InvokeTimeout:         invokeTimeout,
		Logger:                quietLogger(),
	}, r.repl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func (r *rig) waitCaughtUp(t *testing.T, m *esm.Mapping, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := m.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("replication did not catch up: %v (stats %+v)", err, m.Stats())
	}
}

// seed writes n records to each partition of topic on the source. Record i
// of partition p has key k<p>-<i> (nil every 7th), value v<p>-<i> (nil
// every 11th, empty every 13th), two headers in a fixed order with a
// repeated key, and CreateTime base+i ms.
func seed(t *testing.T, c *kafkalocal.Cluster, topic string, partitions int32, n int, valueSize int) {
	t.Helper()
	base := time.UnixMilli(1_700_000_000_000)
	pad := bytes.Repeat([]byte("x"), valueSize)
	var batch []*kgo.Record
	flush := func() {
		if err := c.ProduceSync(context.Background(), batch...); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := 0; i < n; i++ {
		for p := int32(0); p < partitions; p++ {
			rec := &kgo.Record{Topic: topic, Partition: p, Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
			if i%7 != 3 {
				rec.Key = []byte(fmt.Sprintf("k%d-%d", p, i))
			}
			switch {
			case i%11 == 5:
			case i%13 == 6:
				rec.Value = []byte{}
			default:
				rec.Value = append([]byte(fmt.Sprintf("v%d-%d:", p, i)), pad...)
			}
			rec.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i))}, {Key: "bin", Value: []byte{0xff, 0x00}}, {Key: "h", Value: []byte("again")}}
			batch = append(batch, rec)
			if len(batch) == 5000 {
				flush()
			}
		}
	}
	flush()
}

// readAll returns every record of topic, by partition, in offset order.
func readAll(t *testing.T, c *kafkalocal.Cluster, topic string) map[int32][]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := verify.ReadAll(ctx, c, topic)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameRecord reports how a target record differs from its source record.
func sameRecord(src, dst *kgo.Record) string { return verify.Diff(src, dst) }

// exactlyOnce checks, by provenance, that the target topic holds every
// source record exactly once, in order, and equal to the source.
func exactlyOnce(t *testing.T, src map[int32][]*kgo.Record, dst map[int32][]*kgo.Record, srcTopic string) {
	t.Helper()
	for _, res := range verify.Compare(src, dst, srcTopic) {
		if !res.OK() {
			t.Fatalf("partition %d: %d source records, %d target records: %d lost, %d duplicated or out of order; %s",
				res.Partition, res.Source, res.Target, res.Lost, res.Duplicated, res.Mismatch)
		}
	}
}
