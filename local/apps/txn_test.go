package apps

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// waitProduced waits until the ledger counts at least n committed
// numbers, for as long as ctx lasts.
func waitProduced(t *testing.T, ctx context.Context, l *Ledger, n int) {
	t.Helper()
	for int(l.next.Load()) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting until %d numbers are committed (%d are): %v", n, l.next.Load(), ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// readCommitted returns, per number, how many times a read_committed
// consumer of topic reads it, reading until the ledger's produced numbers
// are all there (or ctx ends), plus every number read at all.
func readCommitted(t *testing.T, ctx context.Context, c *kafkalocal.Cluster, topic string, l *Ledger) *Ledger {
	t.Helper()
	cl, err := c.NewClient(kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := NewLedger()
	seen.next.Store(l.next.Load())
	for {
		if _, missing, _ := seen.Check(); missing == 0 {
			// Anything after the last committed number arrives in
			// the same fetches: poll a little more to catch leaks.
			pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { seen.consumed(r.Value) })
			cancel()
			return seen
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { seen.consumed(r.Value) })
	}
}

func TestTxnProducer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kafkalocal.StartSource(kafkalocal.ClusterOptions{Topics: []kafkalocal.Topic{{Name: "t", Partitions: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := NewLedger()
	p, err := NewTxnProducer(c, kafkalocal.Admin(), l, "t", 3, "txn-app")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Commit(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := p.Abort(ctx, 4); err != nil {
		t.Fatal(err)
	}
	open, err := p.Begin(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if produced, _, _ := l.Check(); produced != 5 {
		t.Fatalf("produced %d with a transaction open, want 5", produced)
	}
	seen := readCommitted(t, ctx, c, "t", l)
	if produced, missing, dup := seen.Check(); produced != 5 || missing != 0 || dup != 0 || seen.Unproduced() != 0 {
		t.Fatalf("while open: produced %d, missing %d, duplicated %d, unproduced %d", produced, missing, dup, seen.Unproduced())
	}
	if err := open.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	seen = readCommitted(t, ctx, c, "t", l)
	if produced, missing, dup := seen.Check(); produced != 8 || missing != 0 || dup != 0 || seen.Unproduced() != 0 {
		t.Fatalf("after commit: produced %d, missing %d, duplicated %d, unproduced %d", produced, missing, dup, seen.Unproduced())
	}
	// The aborted numbers are on the source all the same: a
	// read_uncommitted consumer sees 5-7 twice.
	all := NewLedger()
	all.next.Store(8)
	cl, err := c.NewClient(kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for n := 0; n < 5+4+3; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { all.consumed(r.Value); n++ })
	}
	if _, missing, dup := all.Check(); missing != 0 || dup != 3 || all.Unproduced() != 1 {
		t.Fatalf("read_uncommitted: missing %d, duplicated %d, unproduced %d; want 0, 3, 1", missing, dup, all.Unproduced())
	}
}

func TestStartTxnProducerHold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kafkalocal.StartSource(kafkalocal.ClusterOptions{Topics: []kafkalocal.Topic{{Name: "t", Partitions: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := NewLedger()
	a, err := StartTxnProducer(c, kafkalocal.Admin(), l, "t", 2, "txn-app", 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	// Two transactions committed before the held one: there is
	// something for the read below to find.
	waitProduced(t, ctx, l, 8)
	release, err := a.Hold(ctx)
	if err != nil {
		t.Fatal(err)
	}
	held, _, _ := l.Check()
	seen := readCommitted(t, ctx, c, "t", l)
	if produced, missing, dup := seen.Check(); produced != held || missing != 0 || dup != 0 || seen.Unproduced() != 0 {
		t.Fatalf("while held: produced %d, missing %d, duplicated %d, unproduced %d", produced, missing, dup, seen.Unproduced())
	}
	release()
	waitProduced(t, ctx, l, held+1)
	a.Stop()
	if err := a.Err(); err != nil {
		t.Fatal(err)
	}
	seen = readCommitted(t, ctx, c, "t", l)
	produced, missing, dup := seen.Check()
	if produced <= held || missing != 0 || dup != 0 || seen.Unproduced() != 0 {
		t.Fatalf("after release: produced %d (held at %d), missing %d, duplicated %d, unproduced %d", produced, held, missing, dup, seen.Unproduced())
	}
	if produced%4 != 0 {
		t.Fatalf("produced %d: not whole transactions of 4", produced)
	}
}
