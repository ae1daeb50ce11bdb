// Command kmig-bench-scale measures the stack at many topics on embedded
// Kafka (`make bench-scale`): the reconciler's first run and steady state,
// every topic replicated with none lost or duplicated, and the time from
// the run that discovers a new topic to its first record on the target
// (scalebench.Reconcile), then the cutover's own time and largest state
// at growing topic counts (scalebench.Cutover). It prints RESULT lines and
// a table for each, and exits non-zero when a measurement failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/scalebench"
)

func main() {
	var (
		topics     = flag.Int("reconcile-topics", 500, "source topics the reconciler selects")
		partitions = flag.Int("partitions", 3, "partitions per topic")
		records    = flag.Int("records", 20, "records written to each partition of the reconciler's topics")
		startDelay = flag.Duration("mapping-start-delay", scalebench.DefaultMappingStartDelay, "how long a new event source mapping reads Creating before it polls (0: none)")
		only       = flag.String("only", "", "reconcile or cutover: run one benchmark only")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	failed := false
	if *only == "" || *only == "reconcile" {
		if err := scalebench.Reconcile(ctx, os.Stdout, scalebench.ReconcileOptions{
			Topics: *topics, Partitions: int32(*partitions), RecordsPerPartition: *records,
			MappingStartDelay: noneIfZero(*startDelay),
		}); err != nil {
			fmt.Fprintln(os.Stderr, "kmig-bench-scale: reconcile:", err)
			failed = true
		}
	}
	if *only == "" || *only == "cutover" {
		if err := scalebench.Cutover(ctx, os.Stdout, scalebench.CutoverOptions{Partitions: int32(*partitions)}); err != nil {
			fmt.Fprintln(os.Stderr, "kmig-bench-scale: cutover:", err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// noneIfZero maps a flag's 0 (no delay) to ReconcileOptions' negative
// (none), as 0 there means the default.
func noneIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
