package esm

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/apps"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

// TestIsolation writes committed and aborted transactions with plain
// records between them, and one transaction left open, and runs a mapping
// at each isolation level: read_uncommitted delivers every data record,
// read_committed only those a read_committed consumer reads, and neither
// reads as caught up while the transaction is open, nor fails to once it
// ends, although the group's committed offset stays below the end (behind
// the final transaction marker).
func TestIsolation(t *testing.T) {
	for _, iso := range []Isolation{ReadUncommitted, ReadCommitted} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			const topic, parts = "txns", 2
			src := startSource(t, []kafkalocal.Topic{{Name: topic, Partitions: parts}})
			ctx := testCtx(t, 30*time.Second)
			l := apps.NewLedger()
			p, err := apps.NewTxnProducer(src, kafkalocal.Admin(), l, topic, parts, "app")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			step := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			step(p.Commit(ctx, 6))
			step(p.Abort(ctx, 4))
			produce(t, ctx, src, topic, parts, 2)
			step(p.Commit(ctx, 4))
			open, err := p.Begin(ctx, 4)
			step(err)
			produce(t, ctx, src, topic, parts, 1) // behind the open transaction

			rec := &recorder{}
			m := newMapping(t, src, topic, rec, func(c *Config) { c.BatchSize = 3; c.Isolation = iso })
			if m.Isolation() != iso {
				t.Fatalf("Isolation() = %q", m.Isolation())
			}
			// read_uncommitted delivers the open transaction's records
			// (this handler takes them): the group then read everything.
			// read_committed delivers nothing at or past it.
			short, cancel := context.WithTimeout(ctx, time.Second)
			err = m.WaitCaughtUp(short)
			cancel()
			if caught := err == nil; caught != (iso == ReadUncommitted) {
				t.Fatalf("caught up while a transaction is open: %v (%v)", caught, err)
			}
			step(open.Abort(ctx))
			step(p.Commit(ctx, 2))
			step(p.Abort(ctx, 2)) // the partitions end with an abort marker
			waitCaughtUp(t, m, 15*time.Second)

			all, committed := dataOffsets(t, ctx, src, topic, parts)
			want := all
			if iso == ReadCommitted {
				want = committed
			}
			got := map[int32][]int64{}
			for _, a := range rec.snapshot() {
				if !a.ok {
					t.Fatal("an invocation failed")
				}
				for k, offs := range a.records {
					got[int32(k.partition)] = append(got[int32(k.partition)], offs...)
				}
			}
			for p := range int32(parts) {
				if !slices.Equal(got[p], want[p]) {
					t.Errorf("partition %d: delivered %v, want %v (committed %v)", p, got[p], want[p], committed[p])
				}
				if len(all[p]) == len(committed[p]) {
					t.Errorf("partition %d: no aborted record on the source", p)
				}
			}
			lags, err := m.Lag(ctx)
			step(err)
			for _, pl := range lags {
				if pl.Lag != 0 || pl.Committed >= pl.End || pl.Stable != pl.End {
					t.Errorf("%+v: want lag 0 with the committed offset below the end", pl)
				}
			}
		})
	}
}

// dataOffsets returns, per partition, the offsets of every data record and
// of those a read_committed consumer reads.
func dataOffsets(t *testing.T, ctx context.Context, c *kafkalocal.Cluster, topic string, parts int32) (all, committed map[int32][]int64) {
	t.Helper()
	cl, err := c.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	all, committed = map[int32][]int64{}, map[int32][]int64{}
	r := peek.New(cl)
	for p := range parts {
		end, _ := ends.Lookup(topic, p)
		if err := r.Scan(ctx, topic, p, 0, end.Offset, func(rec *kgo.Record) bool {
			committed[p] = append(committed[p], rec.Offset)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		rd, err := c.NewClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		for {
			// Every record is there: read until a poll finds no more.
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			fs := rd.PollFetches(pctx)
			cancel()
			if fs.NumRecords() == 0 {
				break
			}
			fs.EachRecord(func(rec *kgo.Record) { all[p] = append(all[p], rec.Offset) })
		}
		rd.Close()
	}
	return all, committed
}
