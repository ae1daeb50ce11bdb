package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs     int
	CPUModel string
	MemoryGB float64
	Kernel   string
	Go       string
	Kafka    string
}

// DescribeMachine reads /proc for the machine's description.
func DescribeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Kafka: os.Getenv("KMIG_REAL_KAFKA_VERSION")}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Fscanf(f, "MemTotal: %f kB", &kb); err == nil {
			m.MemoryGB = kb / 1024 / 1024
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// Prices for the cost model (us-east-1, as published when written).
const (
	LambdaArmPerGBSecond = 0.0000133334 // USD per GB-second, arm64
	LambdaPerMillionReqs = 0.20         // USD per 1M requests
	LambdaMemoryMB       = 1769         // 1 vCPU
	MSKReplicatorPerGB   = 0.08         // USD per GB replicated
	MSKReplicatorPerHour = 0.30         // USD per replicator-hour
	EC2Instance          = "m7g.large"  // 2 vCPU (Graviton3), 8 GiB
	EC2InstancePerHour   = 0.0816       // USD on demand
	EC2InstanceVCPUs     = 2
	EC2TargetUtilization = 0.7 // a fleet is sized to run at most this busy
)

func mbs(d DrainResult) float64  { return float64(d.Bytes) / 1e6 / d.Seconds }
func recs(d DrainResult) float64 { return float64(d.Records) / d.Seconds }
func cpuGB(role string) func(DrainResult) float64 {
	return func(d DrainResult) float64 {
		if role == "" {
			return d.ToolCPU() / d.GB()
		}
		return d.CPU[role] / d.GB()
	}
}
func statGB(child string, f func(ChildStats) int64) func(DrainResult) float64 {
	return func(d DrainResult) float64 { return float64(f(d.Stats[child])) / 1e9 / d.GB() }
}

func fmtS(s Summary, prec int) string {
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}

// WriteMarkdown writes the tables, goals and cost model.
func (r *Results) WriteMarkdown(w io.Writer) {
	o := r.Options
	m := r.Machine
	layout := "Brokers, the tool under test and the orchestrator share every CPU."
	if p := o.Placement; p != nil {
		layout = fmt.Sprintf("**Dedicated-core mode:** each tool's replicating process (pipe; function; MM2's JVM) runs alone on CPU %s; "+
			"both brokers, the ESM emulator (b's stand-in for Lambda's pollers) and the orchestrator share CPU %s.", p.Tool, p.Rest)
	}
	fmt.Fprintf(w, "Run %s, %s. Machine: %d CPUs (`nproc`), %s, %.1f GiB RAM, Linux %s, %s, Kafka %s. %s\n\n",
		r.Started.Format(time.RFC3339), r.Elapsed.Round(time.Second), m.CPUs, m.CPUModel, m.MemoryGB, m.Kernel, m.Go, m.Kafka, layout)
	fmt.Fprintf(w, "Settings: %d rounds, interleaved (order rotated each round); target compression %s (source backlog %s); "+
		"every tool acks=all + idempotent; (b) ESM batch size %d, concurrency %d, batching window %v; (c) tasks.max %d.\n\n",
		o.Rounds, o.Compression, o.SourceCompression, o.BatchSize, o.Concurrency, o.Window, o.MM2Tasks)
	for _, b := range r.Backlogs {
		fmt.Fprintf(w, "### %d B records: %d records, %.2f GB (key+value), %d partitions\n\n", b.ValueSize, b.Records(), float64(b.DataBytes())/1e9, b.Partitions)
		fmt.Fprintln(w, "| tool | MB/s | records/s | CPU-s/GB, replicating process(es) | source broker CPU-s/GB | target broker CPU-s/GB | runs verified |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		for _, t := range o.Tools {
			n := len(r.series(t, b.ValueSize, mbs))
			if n == 0 {
				continue
			}
			ok := 0
			for _, d := range r.Drains {
				if d.Tool == t && d.ValueSize == b.ValueSize && d.Check.OK() {
					ok++
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d/%d: 0 lost, 0 duplicated |\n", toolLabel(t),
				fmtS(summarize(r.series(t, b.ValueSize, mbs)), 1), fmtS(summarize(r.series(t, b.ValueSize, recs)), 0),
				fmtS(summarize(r.series(t, b.ValueSize, cpuGB(""))), 1),
				fmtS(summarize(r.series(t, b.ValueSize, cpuGB("source-broker"))), 1),
				fmtS(summarize(r.series(t, b.ValueSize, cpuGB("target-broker"))), 1), ok, n)
		}
		if len(r.series(ToolReplicator, b.ValueSize, mbs)) > 0 {
			fmt.Fprintf(w, "\n(b) split: function process %s CPU-s/GB, ESM emulator process (source consumer + event encoding) %s CPU-s/GB; "+
				"emulator encoding %s s/GB and handler %s s/GB of wall time (sums over concurrent batches); %s invocations per GB, largest batch %s records.\n",
				fmtS(summarize(r.series(ToolReplicator, b.ValueSize, cpuGB("function"))), 1),
				fmtS(summarize(r.series(ToolReplicator, b.ValueSize, cpuGB("esm"))), 1),
				fmtS(summarize(r.series(ToolReplicator, b.ValueSize, statGB(ChildESM, func(s ChildStats) int64 { return s.EncodeNanos }))), 2),
				fmtS(summarize(r.series(ToolReplicator, b.ValueSize, statGB(ChildESM, func(s ChildStats) int64 { return s.HandlerNanos }))), 1),
				fmtS(summarize(r.series(ToolReplicator, b.ValueSize, func(d DrainResult) float64 { return float64(d.Stats[ChildESM].Invocations) / d.GB() })), 0),
				fmtS(summarize(r.series(ToolReplicator, b.ValueSize, func(d DrainResult) float64 { return float64(d.Stats[ChildESM].MaxBatch) })), 0))
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Per run (MB/s, CPU-s/GB):")
		fmt.Fprintln(w)
		for _, d := range r.Drains {
			if d.ValueSize != b.ValueSize {
				continue
			}
			fmt.Fprintf(w, "- round %d %s: %.1f s, %.1f MB/s, %.0f rec/s, %.1f CPU-s/GB (%s); %s\n", d.Round+1, d.Tool, d.Seconds, mbs(d), recs(d),
				d.ToolCPU()/d.GB(), cpuDetail(d), d.Check)
		}
		fmt.Fprintln(w)
	}
	if len(r.Latency) > 0 {
		fmt.Fprintf(w, "### Latency at %.1f MB/s offered (half the slowest tool's median at %d B), %v per tool\n\n", r.RateMBs, r.Backlogs[0].ValueSize, o.LatencyDuration)
		fmt.Fprintln(w, "| tool | offered MB/s | p50 ms | p99 ms | max ms | records | verified |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		for _, l := range r.Latency {
			fmt.Fprintf(w, "| %s | %.1f | %.0f | %.0f | %.0f | %d | %s |\n", toolLabel(l.Tool), l.OfferedMBs, l.P50, l.P99, l.Max, l.Records, okWord(l.Check))
		}
		fmt.Fprintln(w)
	}
	r.writeGoals(w)
	r.writeCost(w)
}

func okWord(c Check) string {
	if c.OK() {
		return "0 lost, 0 duplicated"
	}
	return c.String()
}

func cpuDetail(d DrainResult) string {
	var parts []string
	for _, role := range []string{"pipe", "esm", "function", "mm2", "source-broker", "target-broker"} {
		if v, ok := d.CPU[role]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f s", role, v))
		}
	}
	return strings.Join(parts, ", ")
}

// ratio returns the per-round ratios f(a)/f(b) at valueSize.
func (r *Results) ratio(a, b string, valueSize int, f func(DrainResult) float64) Summary {
	xa, xb := r.series(a, valueSize, f), r.series(b, valueSize, f)
	var out []float64
	for i := range min(len(xa), len(xb)) {
		out = append(out, xa[i]/xb[i])
	}
	return summarize(out)
}

func (r *Results) writeGoals(w io.Writer) {
	size := 1024
	if len(r.series(ToolReplicator, size, mbs)) == 0 {
		return
	}
	pass := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	mode := ""
	if r.Options.Placement != nil {
		mode = "; dedicated-core mode"
	}
	fmt.Fprintf(w, "### Goals (1 KB records; per-round ratios, median and range%s)\n", mode)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| goal | want | got | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	if len(r.series(ToolMM2, size, mbs)) > 0 {
		t := r.ratio(ToolReplicator, ToolMM2, size, mbs)
		c := r.ratio(ToolReplicator, ToolMM2, size, cpuGB(""))
		fmt.Fprintf(w, "| (b) throughput vs (c) MirrorMaker 2 | ≥ 1.0× | %s× | %s |\n", fmtS(t, 2), pass(t.Median >= 1))
		fmt.Fprintf(w, "| (b) CPU-s/GB vs (c), ESM + function | ≤ 1.0× | %s× | %s |\n", fmtS(c, 2), pass(c.Median <= 1))
		fn := summarize(r.series(ToolReplicator, size, cpuGB("function")))
		mm := summarize(r.series(ToolMM2, size, cpuGB("")))
		fmt.Fprintf(w, "| (b) CPU-s/GB vs (c), function only (what Lambda bills) | ≤ 1.0× | %.2f× (medians) | %s |\n", fn.Median/mm.Median, pass(fn.Median <= mm.Median))
	}
	if len(r.series(ToolRaw, size, mbs)) > 0 {
		t := r.ratio(ToolReplicator, ToolRaw, size, mbs)
		fmt.Fprintf(w, "| (b) throughput vs (a) raw pipe | ≥ 0.7× | %s× | %s |\n", fmtS(t, 2), pass(t.Median >= 0.7))
		fn := summarize(r.series(ToolReplicator, size, cpuGB("function")))
		pipe := summarize(r.series(ToolRaw, size, cpuGB("")))
		fmt.Fprintf(w, "| (informational) GB per CPU-second, (b) function vs (a) pipe | | %.2f× (medians: %.1f vs %.1f CPU-s/GB) | |\n",
			pipe.Median/fn.Median, fn.Median, pipe.Median)
	}
	// The goals are set at 1 KB; other record sizes are shown beside them.
	for _, b := range r.Backlogs {
		if b.ValueSize == size || len(r.series(ToolReplicator, b.ValueSize, mbs)) == 0 {
			continue
		}
		for _, other := range []string{ToolRaw, ToolMM2} {
			if len(r.series(other, b.ValueSize, mbs)) == 0 {
				continue
			}
			t := r.ratio(ToolReplicator, other, b.ValueSize, mbs)
			fmt.Fprintf(w, "| (informational) %d B records: (b) throughput vs %s | | %s× | |\n", b.ValueSize, toolTag(other), fmtS(t, 2))
		}
	}
	all, ok := 0, 0
	for _, d := range r.Drains {
		all++
		if d.Check.OK() {
			ok++
		}
	}
	for _, l := range r.Latency {
		all++
		if l.Check.OK() {
			ok++
		}
	}
	fmt.Fprintf(w, "| zero lost, zero duplicated, every run | all runs | %d/%d runs | %s |\n\n", ok, all, pass(ok == all))
}

func (r *Results) writeCost(w io.Writer) {
	size := 1024
	fn := summarize(r.series(ToolReplicator, size, cpuGB("function"))).Median
	hw := summarize(r.series(ToolReplicator, size, statGB(ChildESM, func(s ChildStats) int64 { return s.HandlerNanos }))).Median
	inv := summarize(r.series(ToolReplicator, size, func(d DrainResult) float64 { return float64(d.Stats[ChildESM].Invocations) / d.GB() })).Median
	mmCPU := summarize(r.series(ToolMM2, size, cpuGB(""))).Median
	mmMBs := summarize(r.series(ToolMM2, size, mbs)).Median
	bMBs := summarize(r.series(ToolReplicator, size, mbs)).Median
	if fn == 0 {
		return
	}
	memGB := float64(LambdaMemoryMB) / 1024
	req := inv * LambdaPerMillionReqs / 1e6
	lCPU := fn*memGB*LambdaArmPerGBSecond + req
	lWall := hw*memGB*LambdaArmPerGBSecond + req
	fmt.Fprintln(w, "### Cost per GB replicated, from the 1 KB medians (us-east-1)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| option | assumption | USD per GB |")
	fmt.Fprintln(w, "|---|---|---|")
	fmt.Fprintf(w, "| Lambda replicator, CPU-bound | arm64 %d MB (1 vCPU), billed duration = function CPU %.1f s/GB; %.0f invocations/GB at batch size %d | %.5f |\n",
		LambdaMemoryMB, fn, inv, r.Options.BatchSize, lCPU)
	fmt.Fprintf(w, "| Lambda replicator, as measured here | billed duration = handler wall time %.1f s/GB (includes waiting for acks and for CPU on this shared 2-core box) | %.5f |\n", hw, lWall)
	for _, gbh := range []float64{bMBs * 3.6, 100} {
		fmt.Fprintf(w, "| MSK Replicator | $%.2f/GB + $%.2f/h at %.0f GB/h | %.5f |\n", MSKReplicatorPerGB, MSKReplicatorPerHour, gbh, MSKReplicatorPerGB+MSKReplicatorPerHour/gbh)
	}
	if mmCPU > 0 {
		capGBs := EC2InstanceVCPUs * EC2TargetUtilization / mmCPU // GB/s one instance sustains, CPU-bound
		fmt.Fprintf(w, "| MM2 fleet on EC2, CPU-bound | %s $%.4f/h, %d vCPU at %.0f%% busy, MM2 %.1f CPU-s/GB → %.0f MB/s per instance | %.5f |\n",
			EC2Instance, EC2InstancePerHour, EC2InstanceVCPUs, EC2TargetUtilization*100, mmCPU, capGBs*1000, EC2InstancePerHour/3600/capGBs)
		fmt.Fprintf(w, "| MM2 fleet on EC2, as measured here | %s $%.4f/h at the %.1f MB/s MM2 reached on this box | %.5f |\n",
			EC2Instance, EC2InstancePerHour, mmMBs, EC2InstancePerHour/3600/(mmMBs/1000))
	}
	fmt.Fprintln(w)
}
