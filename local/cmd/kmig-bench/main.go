// Command kmig-bench measures the replicator's speed and memory against
// side-by-side baselines in one run and prints ratios with PASS/FAIL for
// each goal (`make bench`). It exits non-zero only when it could not
// measure; a missed goal is printed, not an exit status.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/bench"
)

func main() {
	var (
		rounds  = flag.Int("rounds", 9, "interleaved rounds per comparison")
		codec   = flag.String("compression", "", "target codec: none, gzip, snappy, lz4, zstd (default: the function's default, lz4)")
		sizes   = flag.String("sizes", "100,1024,10240", "record value sizes in bytes, comma-separated")
		sample  = flag.Duration("decode-sample", 150*time.Millisecond, "about how long each decoder runs per round")
		profile = flag.Bool("profile", true, "attribute allocations by call stack to tell the in-process target's share apart")
		quiet   = flag.Bool("q", false, "no progress lines on stderr")
	)
	flag.Parse()
	opts := bench.Options{Rounds: *rounds, DecodeSample: *sample, Profile: *profile, Compression: *codec}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "kmig-bench: -sizes: %q is not a positive byte count\n", s)
			os.Exit(2)
		}
		opts.ValueSizes = append(opts.ValueSizes, n)
	}
	if !*quiet {
		opts.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmig-bench: %v\n", err)
		os.Exit(1)
	}
	if err := rep.Write(os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "kmig-bench: %v\n", err)
		os.Exit(1)
	}
}
