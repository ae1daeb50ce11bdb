package offsets

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConsumedWithTransactions writes committed, aborted and open
// transactions on a kfake partition and checks Consumed at every committed
// offset against the offsets a read_committed consumer really sees.
func TestConsumedWithTransactions(t *testing.T) {
	tp := newTxnPartition(t, "t", "app")
	ctx, txn, adm, r := tp.ctx, tp.txn, tp.adm, tp.r
	write := func(n int, end kgo.TransactionEndTry) {
		t.Helper()
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Value: []byte("v")}
		}
		tp.write(t, end, recs...)
	}
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
