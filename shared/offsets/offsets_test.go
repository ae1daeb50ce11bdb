package offsets

import (
	"context"
	"errors"
	"testing"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// fakePartition maps target offsets to source offsets; missing target
// offsets are control records (skipped by At).
type fakePartition map[int64]int64

func (f fakePartition) at(end int64, probes *int) at {
	return func(_ context.Context, topic string, p int32, off int64) (peekRecord, error) {
		*probes++
		for o := off; o < end; o++ {
			if s, ok := f[o]; ok {
				return peekRecord{Offset: o, Source: provenance.Source{Topic: "t", Partition: 0, Offset: s}}, nil
			}
		}
		return peekRecord{}, peek.ErrNoRecord
	}
}

// TestSearchIsExact checks the search for every committed offset the
// source holds, and a few before it, against a linear scan, over a target
// partition with gaps in provenance (filtered source records) and holes
// (control records), including a moved log start.
func TestSearchIsExact(t *testing.T) {
	f := fakePartition{}
	var tOff int64 = 3 // log start 3
	for s := int64(100); s < 400; s++ {
		if s%7 == 0 {
			continue // filtered: not on the target
		}
		if s%50 == 0 {
			tOff++ // a control record hole
		}
		f[tOff] = s
		tOff++
	}
	end := tOff
	p := Partition{Topic: "t", Partition: 0, SourceEnd: 400, TargetTopic: "t", TargetStart: 3, TargetEnd: end}
	for c := int64(90); c < p.SourceEnd; c++ {
		want := end
		for o := int64(3); o < end; o++ {
			if s, ok := f[o]; ok && s >= c {
				want = o
				break
			}
		}
		probes := 0
		res, err := search(context.Background(), f.at(end, &probes), p, c)
		if err != nil {
			t.Fatal(err)
		}
		if res.Target != want {
			t.Fatalf("c=%d: got %d, want %d", c, res.Target, want)
		}
		if probes > 20 {
			t.Errorf("c=%d: %d probes for %d records", c, probes, end-3)
		}
	}
}

// TestSearchNoProvenance reports records without provenance as a typed
// error.
func TestSearchNoProvenance(t *testing.T) {
	read := func(context.Context, string, int32, int64) (peekRecord, error) {
		return peekRecord{Offset: 5, Err: provenance.ErrAbsent}, nil
	}
	_, err := search(context.Background(), read, Partition{Topic: "t", SourceEnd: 10, TargetTopic: "t", TargetEnd: 10}, 3)
	var np *provenance.UnusableError
	if !errors.As(err, &np) || !errors.Is(err, provenance.ErrAbsent) {
		t.Fatalf("err %v, want *provenance.UnusableError wrapping ErrAbsent", err)
	}
}

// TestSearchStopsAtDeadline: a search whose context ends stops before its
// next probe and says why, even when the reads themselves ignore the
// context (a fetch answered from a buffer), so a step past its deadline
// does not go on searching.
func TestSearchStopsAtDeadline(t *testing.T) {
	f := fakePartition{}
	for o := int64(0); o < 1<<16; o++ {
		f[o] = o
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	errPast := errors.New("step deadline passed")
	probes := 0
	inner := f.at(1<<16, &probes)
	read := func(ctx context.Context, topic string, p int32, off int64) (peekRecord, error) {
		if probes == 3 {
			cancel(errPast)
		}
		return inner(ctx, topic, p, off)
	}
	p := Partition{Topic: "t", SourceEnd: 1 << 16, TargetTopic: "t", TargetEnd: 1 << 16}
	_, err := search(ctx, read, p, 12345)
	if !errors.Is(err, errPast) {
		t.Fatalf("err %v, want the context's cause", err)
	}
	if probes != 4 {
		t.Errorf("%d probes, want 4 (none after the context ended)", probes)
	}
}
