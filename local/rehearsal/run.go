package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// ErrMismatch is returned by Demo when the target differs from the source.
var ErrMismatch = errors.New("target differs from source")

// ErrSelection is returned by Demo when the reconciler did not select,
// map and create on the target exactly the plan's topics.
var ErrSelection = errors.New("the reconciler's selection differs from the plan")

// Demo runs the rehearsal on two embedded clusters and writes its report
// to w.
func Demo(ctx context.Context, w io.Writer) error {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := time.Now()
	fmt.Fprintln(w, "== 1. Starting two embedded Kafka clusters: a SCRAM+ACL source and a plaintext target (MSK stand-in)")
	pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{})
	if err != nil {
		return err
	}
	defer pair.Close()
	fmt.Fprintf(w, "   source %s, target %s\n", pair.Source.BootstrapServers(), pair.Target.BootstrapServers())

	out, err := Rehearse(ctx, w, pair, Options{Log: log})
	if err != nil {
		return err
	}
	if out.Selection != "" {
		return fmt.Errorf("%w: %s", ErrSelection, out.Selection)
	}
	if !out.Replicated {
		return ErrMismatch
	}
	if c := out.Cutover; !c.Succeeded() {
		return fmt.Errorf("cutover %s: %s: %s", c.Status, c.Error, c.Cause)
	}
	fmt.Fprintf(w, "Rehearsal took %s.\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(w, "RESULT: %s\n", out.Result())
	if !out.OK() {
		return ErrMismatch
	}
	return nil
}
