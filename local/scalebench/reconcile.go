package scalebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/reconcilerun"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
)

// ReconcileOptions configure Reconcile. Zero values take the defaults.
type ReconcileOptions struct {
	// Topics (default 500) of Partitions partitions each (default 3).
	Topics     int
	Partitions int32
	// SteadyRuns is how many steady-state runs are measured (default 3).
	SteadyRuns int
	// ControlPlaneRate is the emulated Lambda API's rate limit on mapping
	// calls per second: 0 means Lambda's quota
	// (lambdaendpoint.ControlPlaneRate), negative means none.
	ControlPlaneRate float64
	// Timeout bounds the whole benchmark (default 10 minutes).
	Timeout time.Duration
}

// Reconcile measures the reconciler (shared/reconcile) on embedded kfake
// clusters, with the emulated Lambda API behind the AWS SDK's client:
// Topics source topics of Partitions partitions, none replicated yet, and
// the Lambda API limited to Lambda's control plane rate. The
// first run creates every target topic and mapping; once every mapping
// polls, each steady-state run finds nothing to do. It prints
//
//	RESULT: reconcile-first-run-<N>x<P> seconds <s> s
//	RESULT: reconcile-steady-state-<N>x<P> seconds <s> s   (the slowest steady run)
//
// and a table of the runs. The mappings' handler accepts every batch and
// writes nothing: the runs measure the reconciler, not replication. It
// fails when a steady-state run changes anything or does not report every
// mapping polling.
func Reconcile(ctx context.Context, w io.Writer, opts ReconcileOptions) error {
	if opts.Topics <= 0 {
		opts.Topics = 500
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 3
	}
	if opts.SteadyRuns <= 0 {
		opts.SteadyRuns = 3
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Minute
	}
	if opts.ControlPlaneRate == 0 {
		opts.ControlPlaneRate = lambdaendpoint.ControlPlaneRate
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	topics := make([]kafkalocal.Topic, opts.Topics)
	for i := range topics {
		topics[i] = kafkalocal.Topic{Name: fmt.Sprintf("bench.topic-%04d", i), Partitions: opts.Partitions}
	}
	pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{Source: kafkalocal.ClusterOptions{Topics: topics}})
	if err != nil {
		return err
	}
	defer pair.Close()
	rig, err := reconcilerun.Start(ctx, reconcilerun.Options{
		Pair: pair, NoReplicator: true,
		Env: map[string]string{reconcile.EnvTopicPatterns: `bench\..*`},
		// Each of the many mappings refreshes its metadata rarely, as on
		// AWS; partition growth is not measured here.
		MetadataRefresh:  time.Minute,
		ControlPlaneRate: max(opts.ControlPlaneRate, 0),
	})
	if err != nil {
		return err
	}
	defer rig.Close()
	size := fmt.Sprintf("%dx%d", opts.Topics, opts.Partitions)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tseconds\tcreated\tpolling\tnot polling\tlambda calls\tthrottled")
	calls, throttled := rig.API.Calls(), 0
	row := func(name string, rep reconcile.Report) {
		fmt.Fprintf(tw, "%s\t%.2f\t%d\t%d\t%d\t%d\t%d\n", name, rep.Seconds, len(rep.MappingsCreated), rep.MappingsPolling, len(rep.MappingsNotPolling),
			rig.API.Calls()-calls, rig.Endpoint.Errors("TooManyRequestsException")-throttled)
		calls, throttled = rig.API.Calls(), rig.Endpoint.Errors("TooManyRequestsException")
	}

	first, err := rig.Run(ctx)
	if err != nil {
		return fmt.Errorf("first run: %w", err)
	}
	row("first", first)
	if len(first.MappingsCreated) != opts.Topics {
		return fmt.Errorf("first run created %d mappings, want %d", len(first.MappingsCreated), opts.Topics)
	}
	if err := waitAllPolling(ctx, rig, opts.Topics); err != nil {
		return err
	}
	calls, throttled = rig.API.Calls(), rig.Endpoint.Errors("TooManyRequestsException")
	var slowest float64
	for i := range opts.SteadyRuns {
		rep, err := rig.Run(ctx)
		if err != nil {
			return fmt.Errorf("steady-state run %d: %w", i+1, err)
		}
		row(fmt.Sprintf("steady %d", i+1), rep)
		if n := len(rep.MappingsCreated) + rep.TargetTopicsCreated + rep.PartitionsAdded + len(rep.PartitionsSeeded) + len(rep.MappingsPaused); n != 0 {
			return fmt.Errorf("steady-state run %d changed %d things: %+v", i+1, n, rep)
		}
		if rep.MappingsPolling != opts.Topics {
			return fmt.Errorf("steady-state run %d: %d of %d mappings polling; not polling: %+v", i+1, rep.MappingsPolling, opts.Topics, rep.MappingsNotPolling)
		}
		slowest = max(slowest, rep.Seconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "RESULT: reconcile-first-run-%s seconds %.2f s\n", size, first.Seconds)
	fmt.Fprintf(w, "RESULT: reconcile-steady-state-%s seconds %.2f s\n", size, slowest)
	return nil
}

// waitAllPolling waits until n mappings read Enabled and each group has a
// member, as the steady state needs.
func waitAllPolling(ctx context.Context, rig *reconcilerun.Rig, n int) error {
	for {
		if err := rig.WaitPolling(ctx); err != nil {
			return err
		}
		rep, err := rig.Run(ctx)
		if err != nil {
			return err
		}
		if rep.MappingsPolling == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("%d of %d mappings polling", rep.MappingsPolling, n), ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
