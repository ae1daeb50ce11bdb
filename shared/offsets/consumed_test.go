package offsets

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

// TestConsumedWithTransactions writes committed, aborted and open
// transactions on a kfake partition and checks Consumed at every committed
// offset against the offsets a read_committed consumer really sees.
func TestConsumedWithTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	txn, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("app"), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	write := func(n int, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm, r := kadm.NewClient(cl), peek.New(cl)
	bounds := func() SourcePartition {
		t.Helper()
		s, err := adm.ListStartOffsets(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		e, err := adm.ListEndOffsets(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		st, err := adm.ListCommittedOffsets(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		so, _ := s.Lookup("t", 0)
		eo, _ := e.Lookup("t", 0)
		sto, _ := st.Lookup("t", 0)
		return SourcePartition{Topic: "t", Start: so.Offset, End: eo.Offset, Stable: sto.Offset}
	}
	// committed data offsets, as a read_committed consumer sees them
	visible := func(end int64) map[int64]bool {
		t.Helper()
		out := map[int64]bool{}
		if err := r.Scan(ctx, "t", 0, 0, end, func(rec *kgo.Record) bool { out[rec.Offset] = true; return true }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	check := func(stage string, open bool) {
		t.Helper()
		p := bounds()
		if open != (p.Stable < p.End) {
			t.Fatalf("%s: stable %d, end %d: open transaction %v expected", stage, p.Stable, p.End, open)
		}
		vis := visible(p.End)
		for cm := int64(0); cm <= p.End+1; cm++ {
			want := cm >= p.End
			if !open && !want {
				want = true
				for o := cm; o < p.End; o++ {
					if vis[o] {
						want = false
					}
				}
			}
			got, err := Consumed(ctx, r, p, cm)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s: Consumed at %d (end %d, stable %d) = %v, want %v", stage, cm, p.End, p.Stable, got, want)
			}
		}
	}
	write(3, kgo.TryCommit) // 0-2, marker 3
	write(2, kgo.TryAbort)  // 4-5 aborted, marker 6
	check("commit, abort", false)
	write(2, kgo.TryCommit) // 7-8, marker 9
	write(4, kgo.TryAbort)  // 10-13 aborted, marker 14
	check("commit, abort, commit, abort", false)
	// an open transaction: nothing after the last commit counts as read
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	check("open transaction", true)
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	check("open transaction committed", false)
}
