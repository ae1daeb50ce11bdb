// Command kmig-demo rehearses a whole migration on one machine, with no AWS
// account: two embedded Kafka clusters, emulated event source mappings and
// the real replicator handler. It exits non-zero on any difference.
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
