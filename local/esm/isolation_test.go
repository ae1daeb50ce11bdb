package esm

import (
	"context"
	"errors"
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
// at each isolation level: read_uncommitted delivers every data record
// (the open transaction's too, so it reads as caught up while that is
// open), read_committed only those a read_committed consumer reads (so,
// having committed everything below the last stable offset, it still lags
// while the transaction is open); neither fails to read as caught up once
// the transaction ends, although the group's committed offset stays below
// the end (behind the final transaction marker). Each step waits for what
// it checks (the group's commits, the records read back), never for a
// time.
func TestIsolation(t *testing.T) {
	for _, iso := range []Isolation{ReadUncommitted, ReadCommitted} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			const topic, parts = "txns", 2
			src := startSource(t, []kafkalocal.Topic{{Name: topic, Partitions: parts}})
			ctx := testCtx(t, 60*time.Second)
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
			if iso == ReadUncommitted {
				// read_uncommitted delivers the open transaction's
				// records (this handler takes them): the group then
				// read everything.
				waitCaughtUp(t, m, 15*time.Second)
			} else {
				// read_committed delivers everything below the last
				// stable offset and nothing at or past it: once it has
				// committed all of that, it is still not caught up.
				last := lastBelowStable(t, ctx, src, topic)
				waitFor(t, 15*time.Second, "the mapping to commit every record below the last stable offset", func() bool {
					lags, err := m.Lag(ctx)
					if err != nil || len(lags) != parts {
						return false
					}
					for _, l := range lags {
						if l.Committed < last[l.Partition]+1 {
							return false
						}
					}
					return true
				})
				lags, err := m.Lag(ctx)
				step(err)
				for _, l := range lags {
					if l.Committed != last[l.Partition]+1 || l.Lag == 0 {
						t.Errorf("%+v while a transaction is open: want committed %d (after the last record below the last stable offset) and lag > 0",
							l, last[l.Partition]+1)
					}
				}
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
			// Caught up does not prove delivered: WaitCaughtUp's rule
			// (offsets.Consumed) counts records no read_committed
			// reader sees, such as the final aborted transaction's,
			// as consumed, which a read_uncommitted mapping delivers.
			// Wait for the deliveries and their commits too.
			delivered := func() map[int32][]int64 {
				got := map[int32][]int64{}
				for _, a := range rec.snapshot() {
					for k, offs := range a.records {
						got[int32(k.partition)] = append(got[int32(k.partition)], offs...)
					}
				}
				return got
			}
			waitFor(t, 15*time.Second, "the mapping to deliver and commit every record it reads", func() bool {
				got := delivered()
				lags, err := m.Lag(ctx)
				if err != nil || len(lags) != parts {
					return false
				}
				for _, l := range lags {
					w := want[l.Partition]
					if len(got[l.Partition]) < len(w) || len(w) > 0 && l.Committed < w[len(w)-1]+1 {
						return false
					}
				}
				return true
			})
			for _, a := range rec.snapshot() {
				if !a.ok {
					t.Fatal("an invocation failed")
				}
			}
			got := delivered()
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
		// Every offset below the end holds a data record or a
		// transaction marker: read (read_uncommitted, keeping the
		// markers) up to the last one.
		rd, err := c.NewClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}),
			kgo.KeepControlRecords())
		if err != nil {
			t.Fatal(err)
		}
		for last := int64(-1); last < end.Offset-1; {
			fs := rd.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("reading %s/%d: at offset %d of %d: %v", topic, p, last, end.Offset, err)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("reading %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(rec *kgo.Record) {
				last = rec.Offset
				if !rec.Attrs.IsControl() {
					all[p] = append(all[p], rec.Offset)
				}
			})
		}
		rd.Close()
	}
	return all, committed
}

// lastBelowStable returns, per partition, the offset of the last record a
// read_committed consumer reads below the last stable offset (-1: none).
func lastBelowStable(t *testing.T, ctx context.Context, c *kafkalocal.Cluster, topic string) map[int32]int64 {
	t.Helper()
	cl, err := c.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	stables, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic) // the last stable offsets
	if err == nil {
		err = stables.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	r := peek.New(cl)
	stables.Each(func(o kadm.ListedOffset) {
		out[o.Partition] = -1
		rec, err := r.Last(ctx, topic, o.Partition, 0, o.Offset)
		switch {
		case errors.Is(err, peek.ErrNoRecord):
		case err != nil:
			t.Fatal(err)
		default:
			out[o.Partition] = rec.Offset
		}
	})
	return out
}
