package cutoverrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/replicate"
)

// FleetOptions describe a Fleet.
type FleetOptions struct {
	// Topics are the replicated topics, each with Partitions partitions
	// and one event source mapping of the replicator (consumer group
	// MappingGroupPrefix + topic).
	Topics     []string
	Partitions int32
	// Unmapped are topics on both clusters that no mapping reads.
	Unmapped []string
	// RecordsPerPartition are written to every partition of Topics and
	// replicated before StartFleet returns (default 2).
	RecordsPerPartition int
	// Log receives the replicator's logs; nil discards them.
	Log *slog.Logger
}

// MappingGroupPrefix is the prefix of a Fleet's mappings' consumer groups.
const MappingGroupPrefix = "kmig-replicator-"

// Fleet is a source and target cluster (embedded kfake, the source with
// SCRAM and ACLs) with many replicated topics: the replicator runs through
// the ESM emulator, one mapping per topic, all of them Enabled. It serves
// scale tests and benchmarks of the cutover, which finds the mappings by
// the replicator's function name.
type Fleet struct {
	Pair       *kafkalocal.Pair
	Mappings   *esm.Registry
	Replicator lambda.Handler
	// ByTopic is each topic's mapping.
	ByTopic map[string]*esm.Mapping
	// SourceEnds are the source end offsets once everything was
	// replicated.
	SourceEnds kadm.ListedOffsets
	Source     *kadm.Client
	Target     *kadm.Client

	opts    FleetOptions
	closers []func()
	mu      sync.Mutex
	members []*kgo.Client
}

// StartFleet starts the clusters, the replicator and its mappings, writes
// the records and waits until every mapping has replicated and committed
// them.
func StartFleet(ctx context.Context, o FleetOptions) (f *Fleet, err error) {
	if o.RecordsPerPartition <= 0 {
		o.RecordsPerPartition = 2
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	f = &Fleet{opts: o, ByTopic: map[string]*esm.Mapping{}}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	var kt []kafkalocal.Topic
	for _, n := range append(append([]string{}, o.Topics...), o.Unmapped...) {
		kt = append(kt, kafkalocal.Topic{Name: n, Partitions: o.Partitions})
	}
	if f.Pair, err = kafkalocal.StartPair(kafkalocal.PairOptions{
		Source: kafkalocal.ClusterOptions{Security: kafkalocal.SecuritySCRAMACL, Topics: kt},
		Target: kafkalocal.ClusterOptions{Topics: kt},
	}); err != nil {
		return nil, err
	}
	f.closers = append(f.closers, f.Pair.Close)
	if f.Source, err = f.Pair.Source.AdminClient(); err != nil {
		return nil, err
	}
	f.closers = append(f.closers, f.Source.Close)
	if f.Target, err = f.Pair.Target.AdminClient(); err != nil {
		return nil, err
	}
	f.closers = append(f.closers, f.Target.Close)

	rcfg := replicate.Config{
		Target:      kafkaconn.Config{Prefix: "TARGET", Bootstrap: f.Pair.Target.Bootstrap(), Auth: kafkaconn.AuthPlaintext},
		Compression: "none", MaxMessageBytes: replicate.DefaultMaxMessageBytes,
		OnRecordError: replicate.FailBatch, Provenance: true,
	}
	tcl, err := replicate.NewTargetClient(ctx, rcfg, nil)
	if err != nil {
		return nil, err
	}
	f.closers = append(f.closers, tcl.Close)
	scl, err := f.Pair.Source.NewAppClient()
	if err != nil {
		return nil, err
	}
	f.closers = append(f.closers, scl.Close)
	rep, err := replicate.New(rcfg, tcl, scl, replicate.WithLogger(o.Log), replicate.WithMetricsWriter(io.Discard))
	if err != nil {
		return nil, err
	}
	f.Replicator = lambda.NewHandler(func(ctx context.Context, payload json.RawMessage) (json.RawMessage, error) {
		return rep.Invoke(ctx, payload)
	})
	f.Mappings = esm.NewRegistry()
	f.closers = append(f.closers, f.Mappings.Close)
	for _, tp := range o.Topics {
		m, err := f.Mappings.Create(esm.Config{
			Transition:            time.Second,
			FunctionName:          DefaultReplicatorFunction,
			Topics:                []string{tp},
			ConsumerGroupID:       MappingGroupPrefix + tp,
			BootstrapServers:      f.Pair.Source.Bootstrap(),
			ClientOptions:         f.Pair.Source.ClientOpts(f.Pair.Source.AppCredentials()),
			MaximumBatchingWindow: 20 * time.Millisecond,
			RetryBackoff:          20 * time.Millisecond,
		}, f.Replicator)
		if err != nil {
			return nil, fmt.Errorf("mapping of %s: %w", tp, err)
		}
		f.ByTopic[tp] = m
	}

	var recs []*kgo.Record
	for _, n := range o.Topics {
		for p := range o.Partitions {
			for i := range o.RecordsPerPartition {
				recs = append(recs, &kgo.Record{Topic: n, Partition: p, Value: fmt.Appendf(nil, "%s/%d/%d", n, p, i)})
			}
		}
	}
	if err := f.Pair.Source.ProduceSync(ctx, recs...); err != nil {
		return nil, err
	}
	if f.SourceEnds, err = f.waitReplicated(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// waitReplicated waits until every topic's target end equals its source
// end and every mapping has committed up to it; it returns the source
// ends.
func (f *Fleet) waitReplicated(ctx context.Context) (kadm.ListedOffsets, error) {
	for {
		s, err1 := f.Source.ListEndOffsets(ctx, f.opts.Topics...)
		d, err2 := f.Target.ListEndOffsets(ctx, f.opts.Topics...)
		if err := errors.Join(err1, err2); err == nil {
			behind := 0
			s.Each(func(o kadm.ListedOffset) {
				if x, ok := d.Lookup(o.Topic, o.Partition); !ok || x.Offset != o.Offset {
					behind++
				}
			})
			if behind == 0 {
				for _, tp := range f.opts.Topics {
					if err := f.ByTopic[tp].WaitCaughtUp(ctx); err != nil {
						return nil, fmt.Errorf("mapping of %s did not commit up to the source end: %w", tp, err)
					}
				}
				return s, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("replication did not catch up: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Commit commits group's offsets at the source end on every partition of
// topics, as a consumer that read everything does.
func (f *Fleet) Commit(ctx context.Context, group string, topics []string) error {
	os := kadm.Offsets{}
	for _, tp := range topics {
		for p := range f.opts.Partitions {
			e, ok := f.SourceEnds.Lookup(tp, p)
			if !ok {
				return fmt.Errorf("no source end of %s/%d", tp, p)
			}
			os.Add(kadm.Offset{Topic: tp, Partition: p, At: e.Offset, LeaderEpoch: -1})
		}
	}
	resp, err := f.Source.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	return err
}

// Hooks returns lambda hook functions, named start-consumers and
// start-producers, that let VerifyTarget see groups advance on the target:
// StartConsumers starts one member of each of groups there, reading topic;
// StartProducers writes one record to each of its partitions, which every
// member reads and commits. Close stops the members.
func (f *Fleet) Hooks(ctx context.Context, groups []string, topic string) (map[string]lambda.Handler, map[string]any) {
	funcs := map[string]lambda.Handler{
		"start-consumers": hook(func(context.Context) error {
			for _, g := range groups {
				cl, err := kgo.NewClient(kgo.SeedBrokers(f.Pair.Target.Bootstrap()...), kgo.ConsumerGroup(g),
					kgo.ConsumeTopics(topic), kgo.AutoCommitInterval(200*time.Millisecond))
				if err != nil {
					return err
				}
				f.mu.Lock()
				f.members = append(f.members, cl)
				f.mu.Unlock()
				go func() {
					for ctx.Err() == nil {
						if fs := cl.PollFetches(ctx); fs.IsClientClosed() {
							return
						}
					}
				}()
			}
			return nil
		}),
		"start-producers": hook(func(ctx context.Context) error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(f.Pair.Target.Bootstrap()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				return err
			}
			defer cl.Close()
			var rs []*kgo.Record
			for p := range f.opts.Partitions {
				rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("after the cutover")})
			}
			return cl.ProduceSync(ctx, rs...).FirstErr()
		}),
	}
	hooks := map[string]any{
		"startConsumers": map[string]any{"type": "lambda", "functionArn": lambdaendpoint.FunctionArn("start-consumers")},
		"startProducers": map[string]any{"type": "lambda", "functionArn": lambdaendpoint.FunctionArn("start-producers")},
	}
	return funcs, hooks
}

func hook(f func(ctx context.Context) error) lambda.Handler {
	return lambda.NewHandler(func(ctx context.Context, _ json.RawMessage) (map[string]string, error) {
		if err := f(ctx); err != nil {
			return nil, err
		}
		return map[string]string{"ok": "true"}, nil
	})
}

// Run runs the cutover state machine on the fleet with input; o's
// clusters, mappings and replicator are the fleet's.
func (f *Fleet) Run(ctx context.Context, input map[string]any, o Options) (*Result, error) {
	b, err := json.Marshal(input)
	if err != nil {
		return nil, err
	}
	o.Source, o.Target, o.Mappings, o.Replicator, o.Input = f.Pair.Source, f.Pair.Target, f.Mappings, f.Replicator, b
	return Run(ctx, o)
}

// Close stops the group members the hooks started, the mappings, the
// replicator's clients and the clusters.
func (f *Fleet) Close() {
	f.mu.Lock()
	for _, m := range f.members {
		m.Close()
	}
	f.members = nil
	f.mu.Unlock()
	for i := len(f.closers) - 1; i >= 0; i-- {
		f.closers[i]()
	}
	f.closers = nil
}
