package scalebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/reconcilerun"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
)

// DefaultMappingStartDelay is how long a new mapping reads Creating before
// it polls, unless ReconcileOptions say otherwise. AWS: "During event
// source mapping creation, it may take several minutes to start polling
// events from the stream."
const DefaultMappingStartDelay = 30 * time.Second

// DiscoveredTopic is the topic Reconcile creates on the source after the
// steady state, for the reconciler's next run to discover.
const DiscoveredTopic = "bench.discovered"

// ReconcileOptions configure Reconcile. Zero values take the defaults.
type ReconcileOptions struct {
	// Topics (default 500) of Partitions partitions each (default 3).
	Topics     int
	Partitions int32
	// RecordsPerPartition are written to every partition of every source
	// topic, and of DiscoveredTopic, before the reconciler first sees it
	// (default 20).
	RecordsPerPartition int
	// SteadyRuns is how many steady-state runs are measured (default 3).
	SteadyRuns int
	// MappingStartDelay is how long each new mapping reads Creating
	// before it starts polling (esm.Config.StartDelay): 0 means
	// DefaultMappingStartDelay, negative means none.
	MappingStartDelay time.Duration
	// ControlPlaneRate is the emulated Lambda API's rate limit on mapping
	// calls per second: 0 means Lambda's quota
	// (lambdaendpoint.ControlPlaneRate), negative means none.
	ControlPlaneRate float64
	// Timeout bounds the whole benchmark (default 10 minutes).
	Timeout time.Duration
}

func (o ReconcileOptions) withDefaults() ReconcileOptions {
	if o.Topics <= 0 {
		o.Topics = 500
	}
	if o.Partitions <= 0 {
		o.Partitions = 3
	}
	if o.RecordsPerPartition <= 0 {
		o.RecordsPerPartition = 20
	}
	if o.SteadyRuns <= 0 {
		o.SteadyRuns = 3
	}
	switch {
	case o.MappingStartDelay == 0:
		o.MappingStartDelay = DefaultMappingStartDelay
	case o.MappingStartDelay < 0:
		o.MappingStartDelay = 0
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.ControlPlaneRate == 0 {
		o.ControlPlaneRate = lambdaendpoint.ControlPlaneRate
	}
	return o
}

// Copied sums a comparison of source and target topics (local/verify).
type Copied struct {
	Records    int // source records compared
	Lost       int // source records missing on the target
	Duplicated int // target records repeated or out of order
	Mismatched int // partitions with a record that differs
}

// OK reports whether every record was on the target exactly once, in
// order and equal.
func (c Copied) OK() bool { return c.Lost == 0 && c.Duplicated == 0 && c.Mismatched == 0 }

func (c *Copied) add(o Copied) {
	c.Records += o.Records
	c.Lost += o.Lost
	c.Duplicated += o.Duplicated
	c.Mismatched += o.Mismatched
}

// Discovery times DiscoveredTopic from the start of the run that
// discovers it to its first record on the target: Total is CreatedAt +
// Creating + FirstBatch. Run overlaps them: the mapping is created during
// the run, and its start delay runs from then.
type Discovery struct {
	// Created are the mappings the discovery run created.
	Created []string
	// Run is the discovery run's wall time; CreatedAt is when it created
	// the topic's mapping (the LastModified the Lambda API answered), from
	// the run's start.
	Run, CreatedAt time.Duration
	// Creating is how long the mapping read Creating (the emulated start
	// delay, and the start of its poller).
	Creating time.Duration
	// FirstBatch is from the mapping reading Enabled (polling) to the
	// first record of the topic on the target.
	FirstBatch time.Duration
	// Total is from the run's start to the first record on the target.
	Total time.Duration
	// Copied compares the whole topic once its mapping caught up.
	Copied Copied
}

// ReconcileResult is what Reconcile measured.
type ReconcileResult struct {
	FirstRun, SlowestSteadyRun time.Duration
	// MostSteadyLambdaCalls is the most Lambda API calls a steady-state
	// run made: its list of the mappings, one call a page of 100.
	MostSteadyLambdaCalls int
	// Replicated compares every one of the Topics topics once every
	// mapping caught up; ReplicatedAfter is when that was, from the start
	// of the first run.
	Replicated      Copied
	ReplicatedAfter time.Duration
	Discovery       Discovery
}

// Reconcile measures the reconciler (shared/reconcile) and the replicator
// behind it on embedded kfake clusters, with the emulated Lambda API
// behind the AWS SDK's client, limited to Lambda's control plane rate,
// and every new mapping reading Creating for MappingStartDelay:
//
//  1. Topics source topics of Partitions partitions, each holding
//     RecordsPerPartition records, none replicated yet. The first run
//     creates every target topic and mapping. Once every mapping caught
//     up, every topic is compared record for record (local/verify).
//  2. Steady-state runs, each finding nothing to do.
//  3. DiscoveredTopic is created on the source and written to; the next
//     run discovers it, and the time to its first record on the target
//     is measured, then the whole topic is compared.
//
// It prints a table of the runs, the discovery's parts, and
//
//	RESULT: reconcile-first-run-<N>x<P> seconds <s> s
//	RESULT: reconcile-steady-state-<N>x<P> seconds <s> s   (the slowest steady run)
//	RESULT: reconcile-replicated-<N>x<P> lost <l> duplicated <d> records <n>
//	RESULT: reconcile-discovery-to-first-record seconds <s> s (mapping start <d>)
//
// It fails when a record is lost, duplicated or differs, when a
// steady-state run changes anything or does not report every mapping
// polling, or when the discovery run creates any mapping but
// DiscoveredTopic's.
func Reconcile(ctx context.Context, w io.Writer, opts ReconcileOptions) error {
	_, err := MeasureReconcile(ctx, w, opts)
	return err
}

// MeasureReconcile is Reconcile, returning what it measured as well.
func MeasureReconcile(ctx context.Context, w io.Writer, opts ReconcileOptions) (ReconcileResult, error) {
	var res ReconcileResult
	opts = opts.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	topics := make([]kafkalocal.Topic, opts.Topics)
	for i := range topics {
		topics[i] = kafkalocal.Topic{Name: fmt.Sprintf("bench.topic-%04d", i), Partitions: opts.Partitions}
	}
	pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{Source: kafkalocal.ClusterOptions{Topics: topics}})
	if err != nil {
		return res, err
	}
	defer pair.Close()
	for _, t := range topics {
		if err := produce(ctx, pair.Source, t.Name, t.Partitions, opts.RecordsPerPartition); err != nil {
			return res, err
		}
	}
	rig, err := reconcilerun.Start(ctx, reconcilerun.Options{
		Pair: pair,
		Env:  map[string]string{reconcile.EnvTopicPatterns: `bench\..*`},
		// Each of the many mappings refreshes its metadata rarely, as on
		// AWS; partition growth is not measured here.
		MetadataRefresh:  time.Minute,
		StartDelay:       opts.MappingStartDelay,
		ControlPlaneRate: max(opts.ControlPlaneRate, 0),
	})
	if err != nil {
		return res, err
	}
	defer rig.Close()
	created := &createTimes{LambdaAPI: rig.Reconciler.Lambda, at: map[string]time.Time{}}
	rig.Reconciler.Lambda = created
	size := fmt.Sprintf("%dx%d", opts.Topics, opts.Partitions)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tseconds\tcreated\tpolling\tnot polling\tlambda calls\tthrottled")
	calls, throttled := rig.API.Calls(), 0
	row := func(name string, rep reconcile.Report) {
		fmt.Fprintf(tw, "%s\t%.2f\t%d\t%d\t%d\t%d\t%d\n", name, rep.Seconds, len(rep.MappingsCreated), rep.MappingsPolling, len(rep.MappingsNotPolling),
			rig.API.Calls()-calls, rig.Endpoint.Errors("TooManyRequestsException")-throttled)
		calls, throttled = rig.API.Calls(), rig.Endpoint.Errors("TooManyRequestsException")
	}

	// 1. The first run, then replication of every topic.
	start := time.Now()
	first, err := rig.Run(ctx)
	if err != nil {
		return res, fmt.Errorf("first run: %w", err)
	}
	row("first", first)
	res.FirstRun = seconds(first.Seconds)
	if len(first.MappingsCreated) != opts.Topics {
		return res, fmt.Errorf("first run created %d mappings, want %d", len(first.MappingsCreated), opts.Topics)
	}
	if err := waitAllPolling(ctx, rig, opts.Topics); err != nil {
		return res, err
	}
	if err := forEach(ctx, rig.Registry.ListByFunction(reconcilerun.ReplicatorFunction), 8, func(m *esm.Mapping) error {
		return m.WaitCaughtUp(ctx)
	}); err != nil {
		return res, fmt.Errorf("waiting for every mapping to catch up: %w", err)
	}
	res.ReplicatedAfter = time.Since(start)
	var mu sync.Mutex
	if err := forEach(ctx, topics, 4, func(t kafkalocal.Topic) error {
		c, err := compare(ctx, rig, t.Name)
		mu.Lock()
		res.Replicated.add(c)
		mu.Unlock()
		return err
	}); err != nil {
		return res, err
	}

	// 2. The steady state: every mapping polls, every record is copied.
	calls, throttled = rig.API.Calls(), rig.Endpoint.Errors("TooManyRequestsException")
	for i := range opts.SteadyRuns {
		rep, err := rig.Run(ctx)
		if err != nil {
			return res, fmt.Errorf("steady-state run %d: %w", i+1, err)
		}
		res.MostSteadyLambdaCalls = max(res.MostSteadyLambdaCalls, int(rig.API.Calls()-calls))
		row(fmt.Sprintf("steady %d", i+1), rep)
		if n := len(rep.MappingsCreated) + rep.TargetTopicsCreated + rep.PartitionsAdded + len(rep.PartitionsSeeded) + len(rep.MappingsPaused); n != 0 {
			return res, fmt.Errorf("steady-state run %d changed %d things: %+v", i+1, n, rep)
		}
		if rep.MappingsPolling != opts.Topics {
			return res, fmt.Errorf("steady-state run %d: %d of %d mappings polling; not polling: %+v", i+1, rep.MappingsPolling, opts.Topics, rep.MappingsNotPolling)
		}
		res.SlowestSteadyRun = max(res.SlowestSteadyRun, seconds(rep.Seconds))
	}

	// 3. A topic appears, with records, before the next run.
	if err := pair.Source.CreateTopic(ctx, DiscoveredTopic, opts.Partitions); err != nil {
		return res, err
	}
	if err := produce(ctx, pair.Source, DiscoveredTopic, opts.Partitions, opts.RecordsPerPartition); err != nil {
		return res, err
	}
	firstRecord, err := watchFirstRecord(ctx, pair.Target, DiscoveredTopic)
	if err != nil {
		return res, err
	}
	start = time.Now()
	rep, err := rig.Run(ctx)
	ran := time.Since(start)
	if err != nil {
		return res, fmt.Errorf("discovery run: %w", err)
	}
	row("discovery", rep)
	if err := tw.Flush(); err != nil {
		return res, err
	}
	d := &res.Discovery
	d.Created, d.Run = rep.MappingsCreated, ran
	if !slices.Equal(rep.MappingsCreated, []string{DiscoveredTopic}) {
		return res, fmt.Errorf("discovery run created mappings for %v, want [%s]", rep.MappingsCreated, DiscoveredTopic)
	}
	if rep.MappingsPolling != opts.Topics {
		return res, fmt.Errorf("discovery run: %d of %d earlier mappings polling; not polling: %+v", rep.MappingsPolling, opts.Topics, rep.MappingsNotPolling)
	}
	createdAt, ok := created.get(DiscoveredTopic)
	m := rig.Mapping(DiscoveredTopic)
	if !ok || m == nil {
		return res, fmt.Errorf("discovery run reported the mapping of %s created, but the Lambda API has none", DiscoveredTopic)
	}
	if err := m.WaitState(ctx, esm.StateEnabled); err != nil {
		return res, err
	}
	enabledAt := m.LastModified() // nothing changes its state after it reads Enabled
	var firstAt time.Time
	select {
	case firstAt = <-firstRecord:
	case <-ctx.Done():
		return res, fmt.Errorf("no record of %s on the target: %w", DiscoveredTopic, ctx.Err())
	}
	d.CreatedAt, d.Creating = createdAt.Sub(start), enabledAt.Sub(createdAt)
	d.FirstBatch, d.Total = firstAt.Sub(enabledAt), firstAt.Sub(start)
	if err := m.WaitCaughtUp(ctx); err != nil {
		return res, err
	}
	if d.Copied, err = compare(ctx, rig, DiscoveredTopic); err != nil {
		return res, err
	}
	want := int(opts.Partitions) * opts.RecordsPerPartition

	fmt.Fprintf(w, "replicated: %d topics x %d partitions x %d records, every mapping caught up %.2f s after the first run started: %d records, lost %d, duplicated %d, differing partitions %d\n",
		opts.Topics, opts.Partitions, opts.RecordsPerPartition, res.ReplicatedAfter.Seconds(), res.Replicated.Records, res.Replicated.Lost, res.Replicated.Duplicated, res.Replicated.Mismatched)
	fmt.Fprintf(w, "discovery of %s (%d partitions x %d records, written before the run), from the start of the run that discovers it:\n",
		DiscoveredTopic, opts.Partitions, opts.RecordsPerPartition)
	dw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(dw, "  reconcile run\t%7.2f s\t(mapping created %.2f s into it)\n", d.Run.Seconds(), d.CreatedAt.Seconds())
	fmt.Fprintf(dw, "  mapping start delay (Creating, then Enabled)\t%7.2f s\t(emulated %v: -mapping-start-delay)\n", d.Creating.Seconds(), opts.MappingStartDelay)
	fmt.Fprintf(dw, "  first batch after polling started\t%7.2f s\t(Enabled to the first record on the target)\n", d.FirstBatch.Seconds())
	fmt.Fprintf(dw, "  total: run start to first record on the target\t%7.2f s\n", d.Total.Seconds())
	if err := dw.Flush(); err != nil {
		return res, err
	}
	fmt.Fprintf(w, "  records complete: %d of %d, lost %d, duplicated %d, differing partitions %d\n",
		d.Copied.Records, want, d.Copied.Lost, d.Copied.Duplicated, d.Copied.Mismatched)
	fmt.Fprintln(w, "  on AWS, the time from a topic appearing to the run that discovers it adds up to one DiscoveryIntervalMinutes (the reconciler's schedule)")
	fmt.Fprintf(w, "RESULT: reconcile-first-run-%s seconds %.2f s\n", size, res.FirstRun.Seconds())
	fmt.Fprintf(w, "RESULT: reconcile-steady-state-%s seconds %.2f s\n", size, res.SlowestSteadyRun.Seconds())
	fmt.Fprintf(w, "RESULT: reconcile-replicated-%s lost %d duplicated %d records %d\n", size, res.Replicated.Lost, res.Replicated.Duplicated, res.Replicated.Records)
	fmt.Fprintf(w, "RESULT: reconcile-discovery-to-first-record seconds %.2f s (mapping start %v)\n", d.Total.Seconds(), opts.MappingStartDelay)

	if n := opts.Topics * want; !res.Replicated.OK() || res.Replicated.Records != n {
		return res, fmt.Errorf("replicated topics: %+v, want %d records, none lost, duplicated or differing", res.Replicated, n)
	}
	if !d.Copied.OK() || d.Copied.Records != want {
		return res, fmt.Errorf("%s: %+v, want %d records, none lost, duplicated or differing", DiscoveredTopic, d.Copied, want)
	}
	return res, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// produce writes n records to every partition of topic: key "k<i>",
// value "<topic>/<p>/<i>", a header and a CreateTime.
func produce(ctx context.Context, c *kafkalocal.Cluster, topic string, partitions int32, n int) error {
	rs := make([]*kgo.Record, 0, int(partitions)*n)
	for p := range partitions {
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", i),
				Value:     fmt.Appendf(nil, "%s/%d/%d", topic, p, i),
				Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte("v")}},
				Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i))})
		}
	}
	return c.ProduceSync(ctx, rs...)
}

// compare reads topic on both clusters and sums the comparison.
func compare(ctx context.Context, rig *reconcilerun.Rig, topic string) (Copied, error) {
	parts, err := rig.Replicated(ctx, topic, "")
	if err != nil {
		return Copied{}, fmt.Errorf("comparing %s: %w", topic, err)
	}
	var c Copied
	for _, p := range parts {
		c.Records += p.Source
		c.Lost += p.Lost
		c.Duplicated += p.Duplicated
		if p.Mismatch != "" {
			c.Mismatched++
		}
	}
	return c, nil
}

// watchFirstRecord polls the end offsets of topic on c every 10 ms and
// sends the time it first holds a record. The channel is closed without a
// value when ctx ends first.
func watchFirstRecord(ctx context.Context, c *kafkalocal.Cluster, topic string) (<-chan time.Time, error) {
	adm, err := c.AdminClient()
	if err != nil {
		return nil, err
	}
	out := make(chan time.Time, 1)
	go func() {
		defer close(out)
		defer adm.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			// Before the run creates the target topic this fails: try again.
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err == nil && ends.Error() == nil {
				var n int64
				ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
				if n > 0 {
					out <- time.Now()
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return out, nil
}

// createTimes is a reconcile.LambdaAPI that notes when each topic's
// mapping was created: the LastModified of CreateEventSourceMapping's
// answer (the Lambda API's own time, to the millisecond, never after the
// mapping's start delay began), or when the call returned if it has none.
type createTimes struct {
	reconcile.LambdaAPI
	mu sync.Mutex
	at map[string]time.Time
}

func (c *createTimes) CreateEventSourceMapping(ctx context.Context, in *awslambda.CreateEventSourceMappingInput, opts ...func(*awslambda.Options)) (*awslambda.CreateEventSourceMappingOutput, error) {
	out, err := c.LambdaAPI.CreateEventSourceMapping(ctx, in, opts...)
	if err == nil && len(in.Topics) == 1 {
		at := time.Now()
		if out.LastModified != nil {
			at = *out.LastModified
		}
		c.mu.Lock()
		c.at[in.Topics[0]] = at
		c.mu.Unlock()
	}
	return out, err
}

func (c *createTimes) get(topic string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.at[topic]
	return t, ok
}

// forEach calls f on every item, at most limit at once, and returns the
// errors joined; once one fails, items not yet started are skipped.
func forEach[T any](ctx context.Context, items []T, limit int, f func(T) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, limit)
	for _, it := range items {
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return errors.Join(append(errs, ctx.Err())...)
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
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
