package bench

import (
	"bytes"
	"context"
	"testing"
	"time"
)

var valueSizes = []int{100, 1024, 10240}

func newWorkload(tb testing.TB, valueSize, maxEvent int) *Workload {
	tb.Helper()
	w, err := NewWorkload(valueSize, maxEvent)
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

func newRig(tb testing.TB, w *Workload) *Rig {
	tb.Helper()
	r, err := NewRig(context.Background(), w, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return r
}

// nextEvent is s.NextEvent, failing tb on error.
func nextEvent(tb testing.TB, s *Stream) []byte {
	tb.Helper()
	payload, err := s.NextEvent(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return payload
}

// BenchmarkDecode decodes a full event per op with each decoder.
func BenchmarkDecode(b *testing.B) {
	decoders := []struct {
		name string
		dec  Decoder
	}{{"kafkaevent", Fast}, {"json", StdJSON}, {"json+base64", StdJSONRecords}}
	for _, size := range valueSizes {
		w := newWorkload(b, size, 0)
		payload := w.Event(nil, 0)
		for _, d := range decoders {
			b.Run(SizeLabel(size)+"/"+d.name, func(b *testing.B) {
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := d.dec.Decode(payload); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkHandle writes a full event's records per op, through the
// handler and through a raw producer, to an in-process target. B/op
// includes the target's allocations.
func BenchmarkHandle(b *testing.B) {
	ctx := context.Background()
	for _, size := range valueSizes {
		w := newWorkload(b, size, 0)
		rig := newRig(b, w)
		if err := rig.Handle(ctx, nextEvent(b, rig.Main)); err != nil { // warm up
			b.Fatal(err)
		}
		if err := rig.Fenced.Handle(ctx, nextEvent(b, rig.Fenced)); err != nil {
			b.Fatal(err)
		}
		if err := rig.Raw(ctx, rig.RawRecords()); err != nil {
			b.Fatal(err)
		}
		report := func(b *testing.B) {
			b.ReportMetric(float64(w.Records())*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		}
		b.Run(SizeLabel(size)+"/handler", func(b *testing.B) {
			b.SetBytes(int64(w.DataBytes()))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				payload := nextEvent(b, rig.Main)
				b.StartTimer()
				if err := rig.Handle(ctx, payload); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run(SizeLabel(size)+"/fenced", func(b *testing.B) {
			b.SetBytes(int64(w.DataBytes()))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				payload := nextEvent(b, rig.Fenced)
				b.StartTimer()
				if err := rig.Fenced.Handle(ctx, payload); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run(SizeLabel(size)+"/raw", func(b *testing.B) {
			b.SetBytes(int64(w.DataBytes()))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				recs := rig.RawRecords()
				b.StartTimer()
				if err := rig.Raw(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
}

// TestBodies runs every body once on small events, so the harness keeps
// compiling and working under go test ./...
func TestBodies(t *testing.T) {
	ctx := context.Background()
	const small = 64 * 1024
	for _, size := range valueSizes {
		t.Run(SizeLabel(size), func(t *testing.T) {
			w := newWorkload(t, size, small)
			if w.EventSize() > small || w.Records() == 0 {
				t.Fatalf("event %d bytes with %d records; want 1..%d bytes", w.EventSize(), w.Records(), small)
			}
			e0, e1 := w.Event(nil, 0), w.Event(nil, 1)
			if len(e0) != len(e1) || bytes.Equal(e0, e1) {
				t.Fatalf("rounds 0 and 1: %d and %d bytes, equal %v; want same size, different offsets", len(e0), len(e1), bytes.Equal(e0, e1))
			}
			for _, d := range []Decoder{Fast, StdJSON, StdJSONRecords} {
				n, err := d.Decode(e0)
				if err != nil || n != w.Records() {
					t.Fatalf("%s: %d records, %v; want %d", d.Name, n, err, w.Records())
				}
			}
			rig := newRig(t, w)
			for _, s := range []*Stream{rig.Main, rig.Unchecked, rig.Txn, rig.TxnUnchecked} {
				for range 2 { // the second batch takes the cached-tail path
					if err := s.Handle(ctx, nextEvent(t, s)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if st := rig.Main.SourceStats(); st.Fetches == 0 || st.Bytes == 0 {
				t.Fatalf("the checked handler read nothing from the source: %+v", st)
			}
			if st := rig.Unchecked.SourceStats(); st.Fetches != 0 {
				t.Fatalf("the unchecked handler read the source: %+v", st)
			}
			if err := rig.Handle(ctx, nextEvent(t, rig.Main)[:len(e0)/2]); err == nil {
				t.Fatal("a truncated event was accepted")
			}
			if err := rig.Raw(ctx, rig.RawRecords()); err != nil {
				t.Fatal(err)
			}
			payload := nextEvent(t, rig.Main)
			m, err := MeasureMemory(true, func() error { return rig.Handle(ctx, payload) })
			if err != nil {
				t.Fatal(err)
			}
			if m.Alloc == 0 || m.Process() == 0 || m.ByClass[ClassCode] == 0 || len(m.Sites) == 0 {
				t.Fatalf("memory not measured: %+v", m)
			}
		})
	}
}

// TestRun runs the whole comparison on small events and checks the
// report names every goal.
func TestRun(t *testing.T) {
	rep, err := Run(context.Background(), Options{
		ValueSizes: []int{100, 1024}, EventBytes: 32 * 1024, Rounds: 2, DecodeSample: time.Millisecond, Profile: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Decode) != 2 || len(rep.Handle) != 2 || len(rep.Memory) != 2 {
		t.Fatalf("results: %d decode, %d handle, %d memory; want 2 each", len(rep.Decode), len(rep.Handle), len(rep.Memory))
	}
	if len(rep.Goals) != 2+1+2 {
		t.Fatalf("%d goals, want 5: %+v", len(rep.Goals), rep.Goals)
	}
	var out bytes.Buffer
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DECODE", "HANDLER THROUGHPUT", "MEMORY", "GOALS", "IN THIS PROCESS"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	for _, d := range rep.Decode {
		if d.Ratio.Median <= 0 || d.Ratio.Min > d.Ratio.Median || d.Ratio.Median > d.Ratio.Max {
			t.Errorf("decode %s ratio summary %+v is not ordered", SizeLabel(d.ValueSize), d.Ratio)
		}
	}
}
