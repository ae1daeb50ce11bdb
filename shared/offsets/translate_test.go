package offsets

import (
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// TestTranslateIsExact writes a target partition on kfake as the
// replicator would (provenance on every record, filtered source offsets
// missing, transactions whose commit markers leave holes, a log start moved
// by a deletion) and checks Translate for every committed offset from
// before the first copied record to past the source end against a linear
// scan of the partition: a caught-up group starts at the target end, any
// other at the first record copied from an offset at or after its own.
func TestTranslateIsExact(t *testing.T) {
	tp := newTxnPartition(t, "target", "replicator")
	ctx, adm, r := tp.ctx, tp.adm, tp.r
	const sourceEnd = 400
	var batch []*kgo.Record
	flush := func() {
		t.Helper()
		tp.write(t, kgo.TryCommit, batch...)
		batch = batch[:0]
	}
	for s := int64(100); s < sourceEnd; s++ {
		if s%7 == 0 {
			continue // filtered: not on the target
		}
		src := provenance.Source{Topic: "source", Partition: 0, Offset: s}
		batch = append(batch, &kgo.Record{Value: []byte(strconv.FormatInt(s, 10)), Headers: []kgo.RecordHeader{{Key: provenance.HeaderKey, Value: src.Append(nil)}}})
		if len(batch) == 37 {
			flush()
		}
	}
	flush()

	del, err := adm.DeleteRecords(ctx, kadm.Offsets{"target": {0: {Topic: "target", Partition: 0, At: 3}}})
	if err == nil {
		err = del.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, "target")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "target")
	if err != nil {
		t.Fatal(err)
	}
	start, _ := starts.Lookup("target", 0)
	end, _ := ends.Lookup("target", 0)
	if start.Offset != 3 {
		t.Fatalf("log start %d after deleting up to 3", start.Offset)
	}

	// The partition as a consumer reads it: data records only.
	type copied struct{ target, source int64 }
	var recs []copied
	if err := r.Scan(ctx, "target", 0, start.Offset, end.Offset, func(rec *kgo.Record) bool {
		src, err := provenance.Of(rec)
		if err != nil {
			t.Fatalf("target record %d: %v", rec.Offset, err)
		}
		recs = append(recs, copied{rec.Offset, src.Offset})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if holes := end.Offset - start.Offset - int64(len(recs)); holes < 5 {
		t.Fatalf("%d records in [%d, %d): want the commit markers' holes in the partition", len(recs), start.Offset, end.Offset)
	}

	p := Partition{Topic: "source", Partition: 0, SourceEnd: sourceEnd, TargetTopic: "target", TargetStart: start.Offset, TargetEnd: end.Offset}
	for committed := int64(90); committed <= sourceEnd+5; committed++ {
		want, method := end.Offset, Search
		if committed >= sourceEnd {
			method = CaughtUp
		} else {
			for _, rec := range recs {
				if rec.source >= committed {
					want = rec.target
					break
				}
			}
		}
		res, err := Translate(ctx, r, p, committed)
		if err != nil {
			t.Fatalf("committed %d: %v", committed, err)
		}
		if res.Target != want || res.Method != method {
			t.Fatalf("committed %d: target %d by %s, want %d by %s", committed, res.Target, res.Method, want, method)
		}
		if res.Probes > 20 {
			t.Errorf("committed %d: %d probes for %d records", committed, res.Probes, len(recs))
		}
	}
}
