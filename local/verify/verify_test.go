package verify

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// TestCompareCatchesEveryFault proves the checker the other tests rely on
// can fail: it must see a lost, a duplicated, a reordered and a changed
// record.
func TestCompareCatchesEveryFault(t *testing.T) {
	src := map[int32][]*kgo.Record{0: {}}
	for i := int64(0); i < 5; i++ {
		src[0] = append(src[0], &kgo.Record{Offset: i * 2, Value: []byte{byte(i)}})
	}
	copyOf := func(i int) *kgo.Record {
		s := src[0][i]
		return &kgo.Record{Value: s.Value, Headers: []kgo.RecordHeader{{Key: provenance.HeaderKey,
			Value: []byte(provenance.Source{Topic: "t", Offset: s.Offset}.String())}}}
	}
	changed := copyOf(2)
	changed.Value = []byte("x")
	for _, tc := range []struct {
		name         string
		dst          []*kgo.Record
		lost, dup    int
		mismatch, ok bool
	}{
		{"exact", []*kgo.Record{copyOf(0), copyOf(1), copyOf(2), copyOf(3), copyOf(4)}, 0, 0, false, true},
		{"lost", []*kgo.Record{copyOf(0), copyOf(2), copyOf(3), copyOf(4)}, 1, 0, false, false},
		{"lost tail", []*kgo.Record{copyOf(0), copyOf(1)}, 3, 0, false, false},
		{"duplicated", []*kgo.Record{copyOf(0), copyOf(1), copyOf(1), copyOf(2), copyOf(3), copyOf(4)}, 0, 1, false, false},
		{"reordered", []*kgo.Record{copyOf(0), copyOf(2), copyOf(1), copyOf(3), copyOf(4)}, 1, 1, false, false},
		{"changed", []*kgo.Record{copyOf(0), copyOf(1), changed, copyOf(3), copyOf(4)}, 0, 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Compare(src, map[int32][]*kgo.Record{0: tc.dst}, "t")
			if len(res) != 1 {
				t.Fatalf("results %+v", res)
			}
			r := res[0]
			if r.Lost != tc.lost || r.Duplicated != tc.dup || (r.Mismatch != "") != tc.mismatch || r.OK() != tc.ok {
				t.Fatalf("got %+v", r)
			}
		})
	}
}
