// Command kmig-demo rehearses a whole migration on one machine, with no AWS
// account (`make demo`): two embedded Kafka clusters, the reconciler
// selecting 64 topics by pattern and creating their event source mappings
// through the emulated Lambda API, the real replicator handler,
// and the cutover through the real state machine. It exits non-zero on any
// difference (rehearsal.Demo).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/rehearsal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := rehearsal.Demo(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kmig-demo:", err)
		os.Exit(1)
	}
}
