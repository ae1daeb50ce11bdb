package replicate

import (
	"strings"
	"sync"
	"sync/atomic"

	"bytes"
	"context"
	"fmt"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaenv"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/telemetry"
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

// env is where a suite runs: embedded kfake clusters (kfakeEnv) or real
// Apache Kafka brokers (realEnv, in replicate_realkafka_test.go). The suite
// bodies (test* functions) take one, so the same body runs on both.
type env struct {
	// real is true on real brokers.
	real bool
	// unique makes a cluster-side name from a test's logical topic name;
	// nil keeps it (kfake clusters are fresh per test).
	unique func(string) string
	// clusters returns a source and target holding the topics.
	clusters func(t *testing.T, src, tgt []kafkalocal.Topic) *kafkalocal.Pair
	// invokeTimeout is the emulated function timeout of mappings.
	invokeTimeout time.Duration
	names         map[string]string
}

// kfakeEnv runs on a fresh pair of embedded clusters per rig: a plaintext
// source and a target.
func kfakeEnv() *env {
	return &env{
		invokeTimeout: invokeTimeout,
		clusters: func(t *testing.T, src, tgt []kafkalocal.Topic) *kafkalocal.Pair {
			t.Helper()
			pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{
				Source: kafkalocal.ClusterOptions{Topics: src, Security: kafkalocal.SecurityPlaintext},
				Target: kafkalocal.ClusterOptions{Topics: tgt},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pair.Close)
			return pair
		},
	}
}

// tn is the cluster-side name of the test's topic name, the same for every
// call with the same name.
func (e *env) tn(name string) string {
	if e.unique == nil {
		return name
	}
	if e.names == nil {
		e.names = map[string]string{}
	}
	if n, ok := e.names[name]; ok {
		return n
	}
	n := e.unique(name)
	e.names[name] = n
	return n
}

// rig is a source and target cluster with a replicator between them.
type rig struct {
	env     *env
	pair    *kafkalocal.Pair
	cfg     Config
	target  *kgo.Client
	source  *kgo.Client // every replicator's source client (transaction outcomes)
	repl    *Replicator
	emf     bytes.Buffer
	cleanup []func()

	mu        sync.Mutex
	functions []*Replicator // replicators of emulated Lambda environments
}

// newRig starts both kfake clusters with the topics on each (target
// topics renamed by rename, if given) and a replicator configured by
// mutate.
func newRig(t *testing.T, topics map[string]int32, rename map[string]string, mutate func(*Config)) *rig {
	t.Helper()
	return newRigOn(t, kfakeEnv(), topics, rename, mutate)
}

// newRigOn is newRig on e. Topic names in topics and rename are logical
// (e.tn gives the cluster-side names); the dead-letter topic is
// e.tn(DefaultDeadLetterTopic).
func newRigOn(t *testing.T, e *env, topics map[string]int32, rename map[string]string, mutate func(*Config)) *rig {
	t.Helper()
	var src, tgt []kafkalocal.Topic
	for name, n := range topics {
		src = append(src, kafkalocal.Topic{Name: e.tn(name), Partitions: n})
		tn := name
		if r, ok := rename[name]; ok {
			tn = r
		}
		tgt = append(tgt, kafkalocal.Topic{Name: e.tn(tn), Partitions: n})
	}
	tgt = append(tgt, kafkalocal.Topic{Name: e.tn(DefaultDeadLetterTopic), Partitions: 1})
	pair := e.clusters(t, src, tgt)
	r := &rig{env: e, pair: pair}
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
		DeadLetterTopic:  e.tn(DefaultDeadLetterTopic),
		Provenance:       true,
		MetricsNamespace: "Test",
	}
	r.cfg.Transforms, _ = transform.Parse(nil)
	if mutate != nil {
		mutate(&r.cfg)
	}
	var err error
	if r.source, err = pair.Source.NewClient(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.source.Close)
	if r.repl, r.target, err = r.newFunction(&r.emf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.target.Close)
	return r
}

var clientSeq atomic.Int64

// testKgoLogger is the franz-go logger KMIG_TEST_KGO_LOG asks for: nil
// when unset, "debug" with lines prefixed by a client number, anything else
// info.
func testKgoLogger() kgo.Logger {
	switch os.Getenv("KMIG_TEST_KGO_LOG") {
	case "":
		return nil
	case "debug":
		id := clientSeq.Add(1)
		return kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, func() string {
			return fmt.Sprintf("%s c%d ", time.Now().Format("15:04:05.000"), id)
		})
	default:
		return kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)
	}
}

// newFunction builds a target client and a replicator from r.cfg, as the
// function's main does at start-up; every client logs as testKgoLogger
// says.
func (r *rig) newFunction(metrics io.Writer) (*Replicator, *kgo.Client, error) {
	newClient := func() (*kgo.Client, error) {
		opts := []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond })}
		if l := testKgoLogger(); l != nil {
			opts = append(opts, kgo.WithLogger(l))
		}
		return NewTargetClient(context.Background(), r.cfg, nil, opts...)
	}
	cl, err := newClient()
	if err != nil {
		return nil, nil, err
	}
	newFence := func(id string) (*kgo.Client, error) {
		return NewFenceClient(context.Background(), r.cfg, nil, id, kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	}
	repl, err := New(r.cfg, cl, r.source, WithLogger(quietLogger()), WithMetricsWriter(metrics), WithClientFactory(newClient), WithFenceClientFactory(newFence))
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return repl, cl, nil
}

// lambdaMapping is mapping with the replicator running in emulated Lambda
// environments (one per concurrent batch) with the env's function timeout:
// an invocation that outlives it is abandoned and its environment, target
// client included, is torn down and built again, as Lambda does.
func (r *rig) lambdaMapping(t *testing.T, topic string, batchSize, concurrency int) (*esm.Mapping, *lambdaenv.Pool) {
	t.Helper()
	pool := lambdaenv.NewPool(concurrency, func() (lambda.Handler, func(), error) {
		repl, _, err := r.newFunction(nil)
		if err != nil {
			return nil, nil, err
		}
		r.mu.Lock()
		r.functions = append(r.functions, repl)
		r.mu.Unlock()
		return repl, func() {
			// The environment dies: its client goes with whatever it
			// had in flight.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = repl.Close(ctx)
		}, nil
	}, r.env.invokeTimeout)
	return r.mappingFor(t, topic, batchSize, concurrency, pool, nil), pool
}

// totals sums the counts of every replicator the rig ran.
func (r *rig) totals() telemetry.BatchMetrics {
	t := r.repl.Totals()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.functions {
		t.Add(f.Totals())
	}
	return t
}

func quietLogger() *slog.Logger {
	if os.Getenv("KMIG_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// mapping starts an emulated event source mapping from the source topic
// (a cluster-side name) to the replicator, and stops it at cleanup.
func (r *rig) mapping(t *testing.T, topic string, batchSize, concurrency int) *esm.Mapping {
	t.Helper()
	return r.mappingFor(t, topic, batchSize, concurrency, r.repl, nil)
}

// mappingFor is mapping invoking h, with the config changed by mod if
// not nil.
func (r *rig) mappingFor(t *testing.T, topic string, batchSize, concurrency int, h lambda.Handler, mod func(*esm.Config)) *esm.Mapping {
	t.Helper()
	cfg := esm.Config{
		FunctionName:          "replicator",
		Topics:                []string{topic},
		ConsumerGroupID:       "kmig-" + topic,
		BootstrapServers:      r.pair.Source.Bootstrap(),
		ClientOptions:         r.pair.Source.ClientOpts(),
		BatchSize:             batchSize,
		MaximumBatchingWindow: 5 * time.Millisecond,
		Concurrency:           concurrency,
		RetryBackoff:          time.Millisecond,
		Logger:                quietLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := esm.New(cfg, h)
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
// repeated key, and CreateTime base+i ms. base is in November 2023, as a
// backfill's records are old: older than a broker's producer.id.expiration.ms
// (see TestRealKafkaTargetRestarts).
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
			t.Logf("partition %d on the target, as runs of source offsets: %s", res.Partition, provenanceRuns(dst[res.Partition]))
			t.Fatalf("partition %d: %d source records, %d target records: %d lost, %d duplicated or out of order; %s",
				res.Partition, res.Source, res.Target, res.Lost, res.Duplicated, res.Mismatch)
		}
	}
}

// provenanceRuns renders a target partition's source offsets as runs, to
// show where a gap or a repeat is.
func provenanceRuns(recs []*kgo.Record) string {
	var b strings.Builder
	start, prev := int64(-2), int64(-2)
	flush := func() {
		if start >= 0 {
			fmt.Fprintf(&b, "%d-%d ", start, prev)
		}
	}
	for _, rec := range recs {
		pv, err := provenance.Of(rec)
		if err != nil {
			continue
		}
		if pv.Offset != prev+1 {
			flush()
			start = pv.Offset
			fmt.Fprintf(&b, "[pid %d/%d @%d] ", rec.ProducerID, rec.ProducerEpoch, rec.Offset)
		}
		prev = pv.Offset
	}
	flush()
	return b.String()
}
