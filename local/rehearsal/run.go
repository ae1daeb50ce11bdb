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

// Demo runs the rehearsal and writes its report to w.
func Demo(ctx context.Context, w io.Writer) error {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := time.Now()
	fmt.Fprintln(w, "== 1. Starting two embedded Kafka clusters: a SCRAM+ACL source and a plaintext target (MSK stand-in)")
	pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{
		Source: kafkalocal.ClusterOptions{Topics: DemoTopics},
		Target: kafkalocal.ClusterOptions{Topics: DemoTopics},
	})
	if err != nil {
		return err
	}
	defer pair.Close()
	fmt.Fprintf(w, "   source %s, target %s\n", pair.Source.BootstrapServers(), pair.Target.BootstrapServers())

	const perPartition = 2000
	fmt.Fprintf(w, "== 2. Seeding %d records per partition (null keys, null and empty values, headers, CreateTime)\n", perPartition)
	if err := Seed(ctx, pair.Source, DemoTopics, perPartition); err != nil {
		return err
	}
	names := make([]string, len(DemoTopics))
	for i, t := range DemoTopics {
		names[i] = t.Name
	}
	fmt.Fprintln(w, "== 3. Replicating: one event source mapping per topic invoking the replicator handler")
	repl, err := StartReplication(ctx, pair, names, nil, log)
	if err != nil {
		return err
	}
	defer repl.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := repl.WaitCaughtUp(wctx); err != nil {
		return err
	}
	tot := repl.Replicator.Totals()
	fmt.Fprintf(w, "   written %d, duplicates skipped %d, filtered %d, dead-lettered %d\n",
		tot.RecordsWritten, tot.DuplicatesSkipped, tot.RecordsFiltered, tot.RecordsDeadLettered)

	fmt.Fprintln(w, "== 4. Comparing source and target, partition by partition, by provenance")
	ok, err := CompareTopics(ctx, w, pair, names)
	if err != nil {
		return err
	}
	if !ok {
		return ErrMismatch
	}
	fmt.Fprintln(w, "   every source record is on the target exactly once, in order, equal")

	if _, _, err := toolsReady(); err != nil {
		return fmt.Errorf("the cutover needs the local state machine tools: run `npm ci --prefix statemachine/local` (%w)", err)
	}
	fmt.Fprintf(w, "== 5. Cutover through statemachine/cutover.asl.json (aws-local-stepfunctions), apps producing to and consuming %q in group %q\n", AppTopic, AppGroup)
	out, err := RunCutover(ctx, w, pair, repl, names, DemoTopics[0].Partitions, log)
	if err != nil {
		return err
	}
	if out.Status != "SUCCEEDED" {
		return fmt.Errorf("cutover %s: %s: %s", out.Status, out.Error, out.Cause)
	}
	fmt.Fprintf(w, "   cutover StopProducers→VerifyTarget %d ms, of which waiting %d ms\n", out.CutoverMs, out.WaitingMs)
	fmt.Fprintf(w, "Rehearsal took %s.\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(w, "RESULT: produced %d, consumed %d, missing %d, duplicated %d\n", out.Produced, out.Produced-out.Missing, out.Missing, out.Duplicated)
	if out.Missing != 0 || out.Duplicated != 0 || out.Produced == 0 {
		return ErrMismatch
	}
	return nil
}
