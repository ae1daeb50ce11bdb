// Command kmig-realbench is the real-Kafka side-by-side benchmark
// (`make bench-real`, docs/BENCHMARKS.md): it drains a pre-filled backlog on
// the SOURCE broker of realkafka/brokers.sh to the TARGET with a raw
// franz-go pipe, the replicator behind the ESM emulator and MirrorMaker 2,
// interleaved over rounds, verifies every run, and prints a Markdown report.
//
//	realkafka/brokers.sh start && eval "$(realkafka/brokers.sh env)"
//	go run ./realkafka/cmd/kmig-realbench
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka/bench"
)

func main() {
	if bench.IsChild(os.Args[1:]) {
		os.Exit(bench.ChildMain(os.Args[1:]))
	}
	var (
		rounds      = flag.Int("rounds", 3, "interleaved rounds per backlog")
		tools       = flag.String("tools", "raw,replicator,mm2", "tools, comma-separated: raw, replicator, mm2")
		sizes       = flag.String("sizes", "1024:2100000,100:10000000", "backlogs as valueBytes:records, comma-separated; the first sets the latency load")
		partitions  = flag.Int("partitions", 12, "partitions of each backlog topic")
		compression = flag.String("compression", "lz4", "target compression of every tool")
		srcComp     = flag.String("source-compression", "lz4", "compression of the backlog on the source")
		conc        = flag.Int("concurrency", 12, "(b) ESM concurrency")
		batch       = flag.Int("batch-size", 10000, "(b) ESM batch size")
		window      = flag.Duration("window", 100*time.Millisecond, "(b) ESM maximum batching window")
		tasks       = flag.Int("mm2-tasks", 12, "(c) MirrorMaker 2 tasks.max")
		latDur      = flag.Duration("latency", 20*time.Second, "paced load per tool in the latency phase (0 skips it)")
		latRate     = flag.Float64("latency-rate", 0, "offered MB/s in the latency phase (0: half the slowest tool's median)")
		work        = flag.String("workdir", "", "directory for logs, sockets, MM2 configs and results.json (default: a new temp dir)")
		out         = flag.String("o", "", "also write the Markdown report to this file")
		dedicated   = flag.Bool("dedicated-core", false, "pin each tool's replicating process (pipe, function, MM2) to the last CPU and brokers, ESM emulator and orchestrator to the others")
	)
	flag.Parse()
	env, err := bench.EnvFromEnviron()
	if err != nil {
		fail(err)
	}
	exe, err := os.Executable()
	if err != nil {
		fail(err)
	}
	if *work == "" {
		if *work, err = os.MkdirTemp("", "kmig-realbench-"); err != nil {
			fail(err)
		}
	} else if err := os.MkdirAll(*work, 0o755); err != nil {
		fail(err)
	}
	if env.RepoRoot, err = filepath.Abs(env.RepoRoot); err != nil {
		fail(err)
	}
	o := bench.Options{
		Env: env, Exe: exe, WorkDir: *work, Tools: strings.Split(*tools, ","), Rounds: *rounds,
		Compression: *compression, SourceCompression: *srcComp, Concurrency: *conc, BatchSize: *batch,
		Window: *window, MM2Tasks: *tasks, LatencyDuration: *latDur, LatencyRate: *latRate, Progress: os.Stderr,
	}
	if *dedicated {
		if o.Placement, err = bench.NewPlacement(0); err != nil {
			fail(err)
		}
	}
	for _, s := range strings.Split(*sizes, ",") {
		v, n, ok := strings.Cut(strings.TrimSpace(s), ":")
		size, err1 := strconv.Atoi(v)
		count, err2 := strconv.ParseInt(n, 10, 64)
		if !ok || err1 != nil || err2 != nil || size < 24 || count < int64(*partitions) {
			fail(fmt.Errorf("-sizes: %q is not valueBytes:records (value ≥ 24 bytes)", s))
		}
		per := count / int64(*partitions)
		o.Backlogs = append(o.Backlogs, bench.Backlog{
			Topic: fmt.Sprintf("kmig-bench-%db-%d", size, per*int64(*partitions)), Partitions: int32(*partitions), PerPartition: per, ValueSize: size,
		})
	}
	fmt.Fprintf(os.Stderr, "kmig-realbench: work dir %s\n", *work)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, o)
	if res != nil {
		res.WriteMarkdown(os.Stdout)
		if *out != "" {
			f, ferr := os.Create(*out)
			if ferr == nil {
				res.WriteMarkdown(f)
				f.Close()
			}
		}
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "kmig-realbench: %v\n", err)
	os.Exit(1)
}
