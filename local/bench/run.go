package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/replicate"
)

// The speed and memory goals the bench checks (docs/BENCHMARKS.md).
const (
	GoalDecodeSpeedup  = 3.0 // kafkaevent vs encoding/json, full event
	GoalHandlerRatio   = 0.7 // handler vs raw producer throughput at 1 KB
	GoalHandlerAtValue = 1024
	GoalAllocPerEvent  = 2.0 // process allocations per batch, × event size
)

// Options configures a run.
type Options struct {
	// ValueSizes are the record value sizes to measure (default 100,
	// 1024, 10240 bytes).
	ValueSizes []int
	// EventBytes caps each event (default esm.MaxPayloadBytes).
	EventBytes int
	// Rounds is how many interleaved rounds each comparison runs
	// (default 9); the handler comparison runs one more, unmeasured, to
	// warm up.
	Rounds int
	// DecodeSample is about how long one decoder runs per round
	// (default 150ms).
	DecodeSample time.Duration
	// Compression is the target producers' codec (default
	// replicate.DefaultCompression, as the function).
	Compression string
	// Profile attributes allocations by call stack, so the in-process
	// target's share can be told apart. It makes the memory phase slower.
	Profile bool
	// Progress, if set, receives a line per phase.
	Progress io.Writer
}

func (o *Options) defaults() {
	if len(o.ValueSizes) == 0 {
		o.ValueSizes = []int{100, 1024, 10240}
	}
	if o.Rounds <= 0 {
		o.Rounds = 9
	}
	if o.Compression == "" {
		o.Compression = replicate.DefaultCompression
	}
	if o.DecodeSample <= 0 {
		o.DecodeSample = 150 * time.Millisecond
	}
}

// Summary is the median and range of a figure over rounds.
type Summary struct{ Median, Min, Max float64 }

// Summarize returns the median and range of xs.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{Median: med, Min: s[0], Max: s[len(s)-1]}
}

// DecodeResult compares decoders on one full event.
type DecodeResult struct {
	ValueSize, Records, EventBytes int
	// MB/s of event bytes (1 MB = 10^6 bytes).
	Fast, Std, StdRecords Summary
	// Per-round speed ratios Fast/Std and Fast/StdRecords.
	Ratio, RatioRecords Summary
}

// HandleResult compares the handler with a raw producer on one event's
// records, and the handler with the transaction check (as deployed) with
// the same handler without it, on a non-transactional topic and on a
// transactional one.
type HandleResult struct {
	ValueSize, Records, DataBytes, EventBytes int
	HandlerRecs, RawRecs                      Summary // records/s
	HandlerMBs, RawMBs                        Summary // MB/s of record data (key+value+headers)
	Ratio                                     Summary // per-round handler/raw throughput
	// MB/s of the handler without the check, and of both on the
	// transactional topic.
	UncheckedMBs, TxnMBs, TxnUncheckedMBs Summary
	// Per-round throughput with the check ÷ without it.
	CheckRatio, TxnCheckRatio Summary
	// MB/s of the handler with the fence (a transaction per partition
	// and event), and per round its throughput ÷ the handler's.
	FencedMBs, FenceRatio Summary
	// What the check fetched from the source per event: fetches and
	// record-batch bytes (non-transactional topic, transactional topic).
	SourceFetches, SourceBytes, TxnSourceFetches, TxnSourceBytes float64
}

// MemoryResult is one event's allocations and peak heap.
type MemoryResult struct {
	ValueSize, EventBytes int
	// Decode is one decode. Handle and Raw are the median, by process
	// allocation, of MemorySamples consecutive batches; HandleSamples and
	// RawSamples are every batch's process allocation, in order.
	Decode, Handle, Raw       Memory
	HandleSamples, RawSamples []uint64
}

// MemorySamples is how many consecutive batches RunMemory measures for the
// handler and for the raw producer. One batch is not enough: whether the
// client's pooled buffers survive between two batches depends on where
// the GCs fall, so a single batch's allocations swing by 2× or more.
const MemorySamples = 5

// Goal is one of those goals, checked.
type Goal struct {
	Name, Want, Got string
	Pass            bool
}

// Report is everything a run measured.
type Report struct {
	Options Options
	Decode  []DecodeResult
	Handle  []HandleResult
	Memory  []MemoryResult
	Goals   []Goal
	Elapsed time.Duration
}

// Passed reports whether every goal was met.
func (r *Report) Passed() bool {
	for _, g := range r.Goals {
		if !g.Pass {
			return false
		}
	}
	return true
}

// contender is one side of a comparison. prepare runs untimed before each
// sample; run runs iters times per sample.
type contender struct {
	prepare func() error
	run     func() error
	iters   int
}

// interleave runs every contender once per round, alternating the order
// each round, with a GC before each sample so one contender's garbage is
// not collected on another's time. It returns seconds per run, by
// contender then round.
func interleave(ctx context.Context, rounds int, cs []*contender) ([][]float64, error) {
	out := make([][]float64, len(cs))
	for round := 0; round < rounds; round++ {
		for k := range cs {
			i := k
			if round%2 == 1 {
				i = len(cs) - 1 - k
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			c := cs[i]
			if c.prepare != nil {
				if err := c.prepare(); err != nil {
					return nil, err
				}
			}
			runtime.GC()
			start := time.Now()
			for range c.iters {
				if err := c.run(); err != nil {
					return nil, err
				}
			}
			out[i] = append(out[i], time.Since(start).Seconds()/float64(c.iters))
		}
	}
	return out, nil
}

// per divides n by each duration.
func per(n float64, secs []float64) []float64 {
	out := make([]float64, len(secs))
	for i, s := range secs {
		out[i] = n / s
	}
	return out
}

// ratios returns base[i]/cand[i]: how many times faster cand ran.
func ratios(cand, base []float64) []float64 {
	out := make([]float64, len(cand))
	for i := range cand {
		out[i] = base[i] / cand[i]
	}
	return out
}

// Run measures everything and checks the goals. A missed goal is not an
// error; the returned error is for a run that could not measure.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts.defaults()
	started := time.Now()
	rep := &Report{Options: opts}
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, format+"\n", args...)
		}
	}
	for _, size := range opts.ValueSizes {
		w, err := NewWorkload(size, opts.EventBytes)
		if err != nil {
			return nil, err
		}
		progress("decode %s: %d records, %d-byte event", SizeLabel(size), w.Records(), w.EventSize())
		d, err := RunDecode(ctx, w, opts.Rounds, opts.DecodeSample)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", SizeLabel(size), err)
		}
		rep.Decode = append(rep.Decode, d)

		progress("handler vs raw producer %s", SizeLabel(size))
		rig, err := NewRig(ctx, w, opts.Compression)
		if err != nil {
			return nil, err
		}
		h, err := RunHandle(ctx, rig, opts.Rounds)
		if err == nil {
			progress("memory %s", SizeLabel(size))
			var m MemoryResult
			m, err = RunMemory(ctx, rig, opts.Profile)
			rep.Memory = append(rep.Memory, m)
		}
		rig.Close()
		if err != nil {
			return nil, fmt.Errorf("%s records: %w", SizeLabel(size), err)
		}
		rep.Handle = append(rep.Handle, h)
	}
	rep.Goals = goals(rep)
	rep.Elapsed = time.Since(started)
	return rep, nil
}

// RunDecode compares the decoders on w's event, interleaved over rounds.
func RunDecode(ctx context.Context, w *Workload, rounds int, sample time.Duration) (DecodeResult, error) {
	payload := w.Event(nil, 0)
	decs := []Decoder{Fast, StdJSON, StdJSONRecords}
	cs := make([]*contender, len(decs))
	for i, d := range decs {
		// Warm up, check, and size a sample to about the given time.
		start := time.Now()
		n, err := d.Decode(payload)
		if err != nil {
			return DecodeResult{}, fmt.Errorf("%s: %w", d.Name, err)
		}
		if n != w.Records() {
			return DecodeResult{}, fmt.Errorf("%s decoded %d records, want %d", d.Name, n, w.Records())
		}
		iters := int(math.Ceil(float64(sample) / float64(max(time.Since(start), time.Microsecond))))
		cs[i] = &contender{iters: max(1, iters), run: func() error { _, err := d.Decode(payload); return err }}
	}
	secs, err := interleave(ctx, rounds, cs)
	if err != nil {
		return DecodeResult{}, err
	}
	mb := float64(len(payload)) / 1e6
	return DecodeResult{
		ValueSize: w.ValueSize, Records: w.Records(), EventBytes: len(payload),
		Fast: Summarize(per(mb, secs[0])), Std: Summarize(per(mb, secs[1])), StdRecords: Summarize(per(mb, secs[2])),
		Ratio: Summarize(ratios(secs[0], secs[1])), RatioRecords: Summarize(ratios(secs[0], secs[2])),
	}, nil
}

// RunHandle compares, on rig's target, the handler taking each round's
// event with a raw producer writing the same records, and the handler's
// streams with and without the transaction check, interleaved over rounds
// after one unmeasured warm-up round. Writing each event's records to the
// source first is not timed.
func RunHandle(ctx context.Context, rig *Rig, rounds int) (HandleResult, error) {
	streams := []*Stream{rig.Main, rig.Unchecked, rig.Txn, rig.TxnUnchecked, rig.Fenced}
	cs := make([]*contender, 0, len(streams)+1)
	for _, s := range streams {
		var payload []byte
		cs = append(cs, &contender{iters: 1,
			prepare: func() (err error) { payload, err = s.NextEvent(ctx); return err },
			run:     func() error { return s.Handle(ctx, payload) },
		})
	}
	var recs []*kgo.Record
	cs = append(cs, &contender{iters: 1,
		prepare: func() error { recs = rig.RawRecords(); return nil },
		run:     func() error { return rig.Raw(ctx, recs) },
	})
	if _, err := interleave(ctx, 1, cs); err != nil {
		return HandleResult{}, fmt.Errorf("warm-up: %w", err)
	}
	main0, txn0 := rig.Main.SourceStats(), rig.Txn.SourceStats()
	secs, err := interleave(ctx, rounds, cs)
	if err != nil {
		return HandleResult{}, err
	}
	main1, txn1 := rig.Main.SourceStats(), rig.Txn.SourceStats()
	w := rig.Workload
	n, mb, r := float64(w.Records()), float64(w.DataBytes())/1e6, float64(rounds)
	raw := secs[len(secs)-1]
	return HandleResult{
		ValueSize: w.ValueSize, Records: w.Records(), DataBytes: w.DataBytes(), EventBytes: w.EventSize(),
		HandlerRecs: Summarize(per(n, secs[0])), RawRecs: Summarize(per(n, raw)),
		HandlerMBs: Summarize(per(mb, secs[0])), RawMBs: Summarize(per(mb, raw)),
		Ratio:        Summarize(ratios(secs[0], raw)),
		UncheckedMBs: Summarize(per(mb, secs[1])), TxnMBs: Summarize(per(mb, secs[2])), TxnUncheckedMBs: Summarize(per(mb, secs[3])),
		CheckRatio: Summarize(ratios(secs[0], secs[1])), TxnCheckRatio: Summarize(ratios(secs[2], secs[3])),
		FencedMBs: Summarize(per(mb, secs[4])), FenceRatio: Summarize(ratios(secs[4], secs[0])),
		SourceFetches: float64(main1.Fetches-main0.Fetches) / r, SourceBytes: float64(main1.Bytes-main0.Bytes) / r,
		TxnSourceFetches: float64(txn1.Fetches-txn0.Fetches) / r, TxnSourceBytes: float64(txn1.Bytes-txn0.Bytes) / r,
	}, nil
}

// RunMemory measures allocations and peak heap per event: decoding it,
// handling it, and the raw producer writing its records. Handle and Raw are
// each measured over MemorySamples consecutive batches after an unmeasured
// call of their own, as a warm function handles one batch after another,
// and the median batch is reported with every batch's figure beside it.
func RunMemory(ctx context.Context, rig *Rig, profile bool) (MemoryResult, error) {
	res := MemoryResult{ValueSize: rig.Workload.ValueSize, EventBytes: rig.Workload.EventSize()}
	// NextEvent reuses its buffer and Handle decodes in place: the warm-up
	// batch goes first, and the measured one is a copy of the next event.
	payload, err := rig.NextEvent(ctx)
	if err != nil {
		return res, err
	}
	if err := rig.Handle(ctx, payload); err != nil {
		return res, err
	}
	if payload, err = rig.NextEvent(ctx); err != nil {
		return res, err
	}
	payload = slices.Clone(payload)
	if res.Decode, err = MeasureMemory(profile, func() error { _, err := Fast.Decode(payload); return err }); err != nil {
		return res, err
	}
	// Handle decodes in place: each batch gets its own copy of the next
	// event, made (and its records written to the source) before its
	// measurement starts.
	var nextErr error
	next := func() {
		var p []byte
		if p, nextErr = rig.NextEvent(ctx); nextErr == nil {
			payload = slices.Clone(p)
		}
	}
	if res.Handle, res.HandleSamples, err = medianMemory(profile, next, func() error {
		if nextErr != nil {
			return nextErr
		}
		return rig.Handle(ctx, payload)
	}); err != nil {
		return res, err
	}
	recs := rig.RawRecords()
	if err := rig.Raw(ctx, recs); err != nil {
		return res, err
	}
	if res.Raw, res.RawSamples, err = medianMemory(profile, nil, func() error { return rig.Raw(ctx, recs) }); err != nil {
		return res, err
	}
	return res, nil
}

// medianMemory measures MemorySamples calls of fn, each after prepare (if
// not nil, unmeasured), and returns the median call by process allocation
// and every call's process allocation in order.
func medianMemory(profile bool, prepare func(), fn func() error) (Memory, []uint64, error) {
	ms := make([]Memory, 0, MemorySamples)
	for range MemorySamples {
		if prepare != nil {
			prepare()
		}
		m, err := MeasureMemory(profile, fn)
		if err != nil {
			return Memory{}, nil, err
		}
		ms = append(ms, m)
	}
	samples := make([]uint64, len(ms))
	for i, m := range ms {
		samples[i] = m.Process()
	}
	sorted := slices.Clone(ms)
	slices.SortStableFunc(sorted, func(a, b Memory) int { return cmp.Compare(a.Process(), b.Process()) })
	return sorted[len(sorted)/2], samples, nil
}

func goals(r *Report) []Goal {
	var gs []Goal
	for _, d := range r.Decode {
		gs = append(gs, Goal{
			Name: fmt.Sprintf("decode speed, %s records", SizeLabel(d.ValueSize)),
			Want: fmt.Sprintf("≥ %.1f× encoding/json", GoalDecodeSpeedup),
			Got:  fmt.Sprintf("%.2f×", d.Ratio.Median),
			Pass: d.Ratio.Median >= GoalDecodeSpeedup,
		})
	}
	for _, h := range r.Handle {
		if h.ValueSize != GoalHandlerAtValue {
			continue
		}
		gs = append(gs, Goal{
			Name: fmt.Sprintf("handler throughput, %s records", SizeLabel(h.ValueSize)),
			Want: fmt.Sprintf("≥ %.1f× raw producer", GoalHandlerRatio),
			Got:  fmt.Sprintf("%.2f×", h.Ratio.Median),
			Pass: h.Ratio.Median >= GoalHandlerRatio,
		})
	}
	for _, m := range r.Memory {
		x := float64(m.Handle.Process()) / float64(m.EventBytes)
		gs = append(gs, Goal{
			Name: fmt.Sprintf("allocations per batch, %s records", SizeLabel(m.ValueSize)),
			Want: fmt.Sprintf("≤ %.1f× event size", GoalAllocPerEvent),
			Got:  fmt.Sprintf("%.2f×", x),
			Pass: x <= GoalAllocPerEvent,
		})
	}
	return gs
}
