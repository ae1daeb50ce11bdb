package replicate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
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
	adm, err := c.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets of %s: %v %v", topic, err, ends.Error())
	}
	out := map[int32][]*kgo.Record{}
	want := map[int32]int64{}
	parts := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		out[o.Partition] = nil
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[topic][o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return out
	}
	cl, err := c.NewClient(kgo.ConsumePartitions(parts), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v; still waiting for %v", topic, err, want)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			out[rec.Partition] = append(out[rec.Partition], rec)
			if rec.Offset+1 >= want[rec.Partition] {
				delete(want, rec.Partition)
			}
		})
	}
	return out
}

// userHeaders drops the provenance header.
func userHeaders(r *kgo.Record) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for _, h := range r.Headers {
		if h.Key != provenance.HeaderKey {
			hs = append(hs, h)
		}
	}
	return hs
}

// sameRecord reports how a target record differs from its source record
// (topic aside), or "" if it does not.
func sameRecord(src, dst *kgo.Record) string {
	switch {
	case src.Partition != dst.Partition:
		return fmt.Sprintf("partition %d != %d", dst.Partition, src.Partition)
	case (src.Key == nil) != (dst.Key == nil) || !bytes.Equal(src.Key, dst.Key):
		return fmt.Sprintf("key %q (nil %v) != %q (nil %v)", dst.Key, dst.Key == nil, src.Key, src.Key == nil)
	case (src.Value == nil) != (dst.Value == nil) || !bytes.Equal(src.Value, dst.Value):
		return fmt.Sprintf("value (nil %v, len %d) != (nil %v, len %d)", dst.Value == nil, len(dst.Value), src.Value == nil, len(src.Value))
	case !src.Timestamp.Equal(dst.Timestamp):
		return fmt.Sprintf("timestamp %v != %v", dst.Timestamp, src.Timestamp)
	case dst.Attrs.TimestampType() != 0:
		return "timestamp type is not CreateTime"
	}
	sh, dh := userHeaders(src), userHeaders(dst)
	if len(sh) != len(dh) {
		return fmt.Sprintf("%d headers != %d", len(dh), len(sh))
	}
	for i := range sh {
		if sh[i].Key != dh[i].Key || !bytes.Equal(sh[i].Value, dh[i].Value) {
			return fmt.Sprintf("header %d %q=%q != %q=%q", i, dh[i].Key, dh[i].Value, sh[i].Key, sh[i].Value)
		}
	}
	return ""
}

// exactlyOnce checks, by provenance, that the target topic holds every
// source record exactly once, in order, and equal to the source.
func exactlyOnce(t *testing.T, src map[int32][]*kgo.Record, dst map[int32][]*kgo.Record, srcTopic string) {
	t.Helper()
	parts := make([]int32, 0, len(src))
	for p := range src {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		s, d := src[p], dst[p]
		lost, dup := 0, 0
		j := 0
		for _, rec := range d {
			pv, err := provenance.Of(rec)
			if err != nil || pv.Topic != srcTopic || pv.Partition != p {
				t.Fatalf("partition %d: target offset %d has bad provenance %+v %v", p, rec.Offset, pv, err)
			}
			for j < len(s) && s[j].Offset < pv.Offset {
				lost++
				j++
			}
			if j >= len(s) || s[j].Offset != pv.Offset {
				if dup == 0 {
					next := int64(-1)
					if j < len(s) {
						next = s[j].Offset
					}
					t.Logf("partition %d: target offset %d names source offset %d; expected source offset %d next", p, rec.Offset, pv.Offset, next)
				}
				dup++
				continue
			}
			if diff := sameRecord(s[j], rec); diff != "" {
				t.Fatalf("partition %d source offset %d: %s", p, pv.Offset, diff)
			}
			j++
		}
		lost += len(s) - j
		if lost != 0 || dup != 0 {
			t.Fatalf("partition %d: %d source records, %d target records: %d lost, %d duplicated or out of order", p, len(s), len(d), lost, dup)
		}
	}
}
