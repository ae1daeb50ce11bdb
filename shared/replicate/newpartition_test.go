package replicate

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
)

// TestPartitionAddedToTarget: a partition added to both clusters while the
// replicator runs (as the reconciler adds it to the target when the source
// grows) is replicated as soon as the mapping retries the batch the stale
// producer metadata refused, not after the client's metadata max age: the
// refusal refreshes the metadata. Every record arrives exactly once.
func TestPartitionAddedToTarget(t *testing.T) {
	r := newRig(t, map[string]int32{"grows": 1}, nil, func(c *Config) { c.OnRecordError = FailBatch })
	seed(t, r.pair.Source, "grows", 1, 50, 0)
	// The replicator's target client never refreshes its metadata for
	// age within the test: only the refusal can make partition 1 known.
	newClient := func() (*kgo.Client, error) {
		return NewTargetClient(context.Background(), r.cfg, nil,
			kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(time.Hour),
			kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	}
	cl, err := newClient()
	if err != nil {
		t.Fatal(err)
	}
	repl, err := New(r.cfg, cl, r.source, WithLogger(quietLogger()), WithMetricsWriter(io.Discard), WithClientFactory(newClient))
	if err != nil {
		cl.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = repl.Close(ctx)
	})
	m := r.mappingFor(t, "grows", 100, 1, repl, func(c *esm.Config) { c.MetadataRefresh = 100 * time.Millisecond })
	r.waitCaughtUp(t, m, time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tgt, err := r.pair.Target.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	for _, c := range []*kadm.Client{kadm.NewClient(r.source), tgt} {
		if _, err := c.CreatePartitions(ctx, 1, "grows"); err != nil {
			t.Fatal(err)
		}
	}
	// A fresh producer: the cluster's own client has partition 1 unknown
	// for the same reason as the replicator's.
	pr, err := r.pair.Source.NewClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	for i := range 100 {
		rec := &kgo.Record{Topic: "grows", Partition: int32(i % 2), Value: []byte(fmt.Sprintf("after-%d", i))}
		if err := pr.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "partition 1's 50 records are on the target", func() bool {
		ends, err := tgt.ListEndOffsets(ctx, "grows")
		if err != nil {
			t.Fatal(err)
		}
		o, ok := ends.Lookup("grows", 1)
		return ok && o.Offset >= 50
	})
	r.waitCaughtUp(t, m, 10*time.Second)
	src, dst := readAll(t, r.pair.Source, "grows"), readAll(t, r.pair.Target, "grows")
	if len(src[1]) != 50 {
		t.Fatalf("partition 1: %d records on the source, want 50", len(src[1]))
	}
	exactlyOnce(t, src, dst, "grows")
}
