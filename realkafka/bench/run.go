package bench

import (
	localbench "github.com/kafka-msk-migrator/kafka-msk-migrator/local/bench"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configures a benchmark run.
type Options struct {
	Env     Env
	Exe     string // this binary, for the child processes
	WorkDir string // sockets, child logs, MM2 configs, results.json

	Tools    []string  // in round-0 order; default raw, replicator, mm2
	Backlogs []Backlog // drained in turn; the first 1 KB one sets the latency load
	Rounds   int

	Compression       string // every tool's target codec
	SourceCompression string // the backlog producer's codec

	Concurrency int           // ESM concurrency (b)
	BatchSize   int           // ESM batch size (b)
	Window      time.Duration // ESM maximum batching window (b)
	MM2Tasks    int           // tasks.max (c)

	LatencyDuration time.Duration // paced load per tool; 0 skips the latency phase
	LatencyRate     float64       // MB/s offered; 0 = half the slowest tool's median at the first backlog
	LatencyRounds   int

	StallTimeout time.Duration
	Progress     io.Writer

	// Placement, when set, pins the replicating process of each tool to
	// its own CPU and everything else to the others (the dedicated-core
	// mode); nil leaves every process on every CPU.
	Placement *Placement
}

// DrainResult is one tool draining one backlog once.
type DrainResult struct {
	Tool      string
	ValueSize int
	Round     int
	Records   int64
	Bytes     int64   // key+value bytes
	Seconds   float64 // from the last sample before the first record landed to the first with all
	// CPU seconds over that window, by role: pipe | esm + function | mm2,
	// and source-broker, target-broker.
	CPU   map[string]float64
	Stats map[string]ChildStats
	Check Check
}

// ToolCPU is the CPU seconds of the replicating process(es).
func (d DrainResult) ToolCPU() float64 {
	var s float64
	for role, v := range d.CPU {
		if role != "source-broker" && role != "target-broker" {
			s += v
		}
	}
	return s
}

// GB is the data drained, in 10^9 bytes.
func (d DrainResult) GB() float64 { return float64(d.Bytes) / 1e9 }

// LatencyResult is one tool under the fixed offered load.
type LatencyResult struct {
	Tool          string
	Round         int
	OfferedMBs    float64 // what the paced producer achieved
	Records       int64   // measured records (warm-up excluded)
	P50, P99, Max float64 // ms, target LogAppendTime − source LogAppendTime
	Check         Check
}

// Results is everything a run measured.
type Results struct {
	Started  time.Time
	Elapsed  time.Duration
	Options  Options `json:"-"`
	Backlogs []Backlog
	Drains   []DrainResult
	Latency  []LatencyResult
	RateMBs  float64 // the latency phase's target load
	Machine  Machine
	Filled   map[string]float64 // topic -> seconds spent filling (0: reused)
}

func (o *Options) defaults() {
	if len(o.Tools) == 0 {
		o.Tools = []string{ToolRaw, ToolReplicator, ToolMM2}
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.Compression == "" {
		o.Compression = "lz4"
	}
	if o.SourceCompression == "" {
		o.SourceCompression = "lz4"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 12
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 10000
	}
	if o.MM2Tasks <= 0 {
		o.MM2Tasks = 12
	}
	if o.LatencyRounds <= 0 {
		o.LatencyRounds = 1
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 120 * time.Second
	}
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// Run fills the backlogs (or reuses them), drains each with every tool,
// interleaved over rounds, verifies each run, then measures latency.
func Run(ctx context.Context, o Options) (*Results, error) {
	o.defaults()
	res := &Results{Started: time.Now(), Options: o, Backlogs: o.Backlogs, Machine: DescribeMachine(), Filled: map[string]float64{}}
	defer func() { res.Elapsed = time.Since(res.Started); o.save(res) }()
	for _, b := range o.Backlogs {
		t0 := time.Now()
		o.progress("backlog %s: %d × %d B in %d partitions (%.2f GB)", b.Topic, b.Records(), b.ValueSize, b.Partitions, float64(b.DataBytes())/1e9)
		filled, err := EnsureBacklog(ctx, o.Env, b, o.SourceCompression, o.Progress)
		if err != nil {
			return res, fmt.Errorf("backlog %s: %w", b.Topic, err)
		}
		if filled {
			res.Filled[b.Topic] = time.Since(t0).Seconds()
		} else {
			o.progress("backlog %s already filled: reused", b.Topic)
		}
	}
	if o.Placement != nil {
		restore, err := o.Placement.apply(o.Env)
		if err != nil {
			return res, err
		}
		defer restore()
		o.progress("dedicated-core mode: replicating process on CPU %s; brokers, ESM emulator and orchestrator on CPU %s", o.Placement.Tool, o.Placement.Rest)
	}
	for _, b := range o.Backlogs {
		for round := range o.Rounds {
			order := slices.Clone(o.Tools)
			// Rotate the order each round so no tool always goes first (page cache, JIT, disk).
			for range round % len(order) {
				order = append(order[1:], order[0])
			}
			for _, tool := range order {
				d, err := o.drain(ctx, tool, b, round)
				if err != nil {
					return res, fmt.Errorf("%s, %d B, round %d: %w", tool, b.ValueSize, round+1, err)
				}
				res.Drains = append(res.Drains, d)
				o.save(res)
			}
		}
	}
	if o.LatencyDuration > 0 && len(o.Backlogs) > 0 {
		rate := o.LatencyRate
		if rate <= 0 {
			slowest := 0.0
			for _, tool := range o.Tools {
				m := summarize(res.series(tool, o.Backlogs[0].ValueSize, func(d DrainResult) float64 { return float64(d.Bytes) / 1e6 / d.Seconds })).Median
				if slowest == 0 || m < slowest {
					slowest = m
				}
			}
			rate = slowest / 2
		}
		res.RateMBs = rate
		for round := range o.LatencyRounds {
			for _, tool := range o.Tools {
				l, err := o.latency(ctx, tool, o.Backlogs[0].ValueSize, rate, round)
				if err != nil {
					return res, fmt.Errorf("latency %s: %w", tool, err)
				}
				res.Latency = append(res.Latency, l)
				o.save(res)
			}
		}
	}
	return res, nil
}

func (o *Options) save(res *Results) {
	if o.WorkDir == "" {
		return
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err == nil {
		_ = os.WriteFile(filepath.Join(o.WorkDir, "results.json"), b, 0o644)
	}
}

// settle waits, before a timed run, for the machine to finish what the
// previous run left behind (see settle.go), and says how long it took.
func (o *Options) settle(ctx context.Context) {
	waited, quiet, err := settle(ctx)
	switch {
	case err != nil:
		o.progress("settling: %v", err)
	case !quiet:
		o.progress("settling: machine still busy after %.0f s; running anyway", waited.Seconds())
	default:
		o.progress("settled in %.1f s", waited.Seconds())
	}
}

// drain runs one tool over backlog b into a fresh target topic, once the
// machine has settled, and verifies the copy.
func (o *Options) drain(ctx context.Context, tool string, b Backlog, round int) (DrainResult, error) {
	d := DrainResult{Tool: tool, ValueSize: b.ValueSize, Round: round, Records: b.Records(), Bytes: b.DataBytes()}
	runID := fmt.Sprintf("%s-%db-r%d-%d", tool, b.ValueSize, round+1, time.Now().Unix())
	tadm, err := NewAdmin(o.Env.TargetOpts())
	if err != nil {
		return d, err
	}
	defer tadm.Close()
	if tool == ToolMM2 {
		if err := resetMM2(ctx, tadm); err != nil {
			return d, err
		}
	}
	if err := tadm.RecreateTopic(ctx, b.Topic, b.Partitions, nil); err != nil {
		return d, err
	}
	o.settle(ctx)
	o.progress("%s %d B round %d: draining %s", tool, b.ValueSize, round+1, b.Topic)
	rn, err := o.startTool(ctx, tool, b.Topic, runID)
	if err != nil {
		return d, err
	}
	start, end, werr := o.waitTarget(ctx, tadm, rn, b.Topic, b.Records())
	serr := rn.stop()
	if werr != nil {
		return d, werr
	}
	if serr != nil {
		return d, serr
	}
	d.Stats = rn.stats
	d.Seconds = end.at.Sub(start.at).Seconds()
	d.CPU = map[string]float64{}
	for role, v := range end.cpu {
		d.CPU[role] = v - start.cpu[role]
	}
	if d.Check, err = VerifyTarget(ctx, o.Env, b, tool == ToolReplicator); err != nil {
		return d, fmt.Errorf("verifying: %w", err)
	}
	o.progress("%s %d B round %d: %.1f MB/s, %.0f rec/s, %.1f CPU-s/GB (brokers: source %.1f, target %.1f); verify: %s",
		tool, b.ValueSize, round+1, float64(d.Bytes)/1e6/d.Seconds, float64(d.Records)/d.Seconds, d.ToolCPU()/d.GB(),
		d.CPU["source-broker"]/d.GB(), d.CPU["target-broker"]/d.GB(), d.Check)
	if !d.Check.OK() {
		return d, fmt.Errorf("verification failed: %s", d.Check)
	}
	return d, nil
}

// latency runs one tool on a fresh topic pair while a paced producer
// offers rateMBs on the source, and measures per record target
// LogAppendTime − source LogAppendTime.
func (o *Options) latency(ctx context.Context, tool string, valueSize int, rateMBs float64, round int) (LatencyResult, error) {
	const partitions, warm = 12, 20
	l := LatencyResult{Tool: tool, Round: round}
	runID := fmt.Sprintf("lat-%s-%d", tool, time.Now().Unix())
	topic := runID
	lat := map[string]*string{"message.timestamp.type": strp("LogAppendTime")}
	sadm, err := NewAdmin(o.Env.SourceOpts())
	if err != nil {
		return l, err
	}
	defer sadm.Close()
	tadm, err := NewAdmin(o.Env.TargetOpts())
	if err != nil {
		return l, err
	}
	defer tadm.Close()
	if tool == ToolMM2 {
		if err := resetMM2(ctx, tadm); err != nil {
			return l, err
		}
	}
	if err := sadm.RecreateTopic(ctx, topic, partitions, lat); err != nil {
		return l, err
	}
	if err := tadm.RecreateTopic(ctx, topic, partitions, lat); err != nil {
		return l, err
	}
	prod, err := kgo.NewClient(append(o.Env.SourceOpts(),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(codec(o.SourceCompression)), kgo.ProducerLinger(0))...)
	if err != nil {
		return l, err
	}
	defer prod.Close()
	var errs firstError
	promise := errs.promise
	seq := make([]int64, partitions)
	send := func(p int32) int {
		s := seq[p]
		seq[p]++
		r := &kgo.Record{Topic: topic, Partition: p, Key: AppendKey(nil, s), Value: AppendValue(nil, valueSize, p, s, time.Now().UnixNano())}
		prod.Produce(ctx, r, promise)
		return len(r.Key) + len(r.Value)
	}
	o.settle(ctx)
	o.progress("latency %s: starting on %s", tool, topic)
	rn, err := o.startTool(ctx, tool, topic, runID)
	if err != nil {
		return l, err
	}
	defer func() {
		if rn != nil {
			_ = rn.stop()
		}
	}()
	// Warm-up: the tool is running and replicating before the clock starts.
	for range warm {
		for p := range int32(partitions) {
			send(p)
		}
	}
	if err := prod.Flush(ctx); err != nil {
		return l, err
	}
	if _, _, err := o.waitTarget(ctx, tadm, rn, topic, partitions*warm); err != nil {
		return l, fmt.Errorf("warm-up: %w", err)
	}
	recBytes := float64(len(AppendKey(nil, 100000)) + valueSize)
	perSec := rateMBs * 1e6 / recBytes
	o.progress("latency %s: offering %.1f MB/s (%.0f records/s) for %v", tool, rateMBs, perSec, o.LatencyDuration)
	t0 := time.Now()
	var sent, sentBytes int64
	tick := time.NewTicker(5 * time.Millisecond)
	p := int32(0)
	for time.Since(t0) < o.LatencyDuration {
		<-tick.C
		due := int64(time.Since(t0).Seconds() * perSec)
		for ; sent < due; sent++ {
			sentBytes += int64(send(p))
			p = (p + 1) % partitions
		}
	}
	tick.Stop()
	el := time.Since(t0).Seconds()
	if err := prod.Flush(ctx); err != nil {
		return l, err
	}
	if first := errs.get(); first != nil {
		return l, first
	}
	l.OfferedMBs = float64(sentBytes) / 1e6 / el
	if _, _, err := o.waitTarget(ctx, tadm, rn, topic, partitions*warm+sent); err != nil {
		return l, err
	}
	if err := rn.stop(); err != nil {
		rn = nil
		return l, err
	}
	rn = nil
	// Source append times by partition and offset (= sequence number).
	src := make([][]int64, partitions)
	err = readTopic(ctx, o.Env.SourceOpts(), topic, func(r *kgo.Record) {
		if v, err := ParseValue(r.Value); err == nil && v.Seq == r.Offset && int(r.Offset) == len(src[r.Partition]) {
			src[r.Partition] = append(src[r.Partition], r.Timestamp.UnixMicro())
		}
	})
	if err != nil {
		return l, err
	}
	k := newChecker(topic, tool == ToolReplicator)
	var lats []float64
	err = readTopic(ctx, o.Env.TargetOpts(), topic, func(r *kgo.Record) {
		v, ok := k.add(r)
		if !ok || v.Seq < warm || int(v.Seq) >= len(src[r.Partition]) {
			return
		}
		lats = append(lats, float64(r.Timestamp.UnixMicro()-src[r.Partition][v.Seq])/1000)
	})
	if err != nil {
		return l, err
	}
	want := map[int32]int64{}
	for p := range int32(partitions) {
		want[p] = seq[p]
	}
	l.Check = k.finish(want)
	slices.Sort(lats)
	l.Records = int64(len(lats))
	if n := len(lats); n > 0 {
		l.P50, l.P99, l.Max = lats[n*50/100], lats[min(n-1, n*99/100)], lats[n-1]
	}
	o.progress("latency %s: offered %.1f MB/s, p50 %.0f ms, p99 %.0f ms, max %.0f ms over %d records; verify: %s",
		tool, l.OfferedMBs, l.P50, l.P99, l.Max, l.Records, l.Check)
	if !l.Check.OK() {
		return l, fmt.Errorf("verification failed: %s", l.Check)
	}
	_ = sadm.DeleteTopicsAndWait(ctx, topic)
	_ = tadm.DeleteTopicsAndWait(ctx, topic)
	return l, nil
}

// series returns f of every drain of tool at valueSize, in round order.
func (r *Results) series(tool string, valueSize int, f func(DrainResult) float64) []float64 {
	var xs []float64
	for _, d := range r.Drains {
		if d.Tool == tool && d.ValueSize == valueSize {
			xs = append(xs, f(d))
		}
	}
	return xs
}

// Summary is the median and range of a figure over rounds.
type Summary = localbench.Summary

func summarize(xs []float64) Summary { return localbench.Summarize(xs) }
