// Command kmig-bench-scale measures the stack at many topics on embedded
// Kafka (`make bench-scale`): the reconciler's first run and steady state
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

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/scalebench"
)

func main() {
	var (
		topics     = flag.Int("reconcile-topics", 500, "source topics the reconciler selects")
		partitions = flag.Int("partitions", 3, "partitions per topic")
		only       = flag.String("only", "", "reconcile or cutover: run one benchmark only")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	failed := false
	if *only == "" || *only == "reconcile" {
		if err := scalebench.Reconcile(ctx, os.Stdout, scalebench.ReconcileOptions{Topics: *topics, Partitions: int32(*partitions)}); err != nil {
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
