package rehearsal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/reconcilerun"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/verify"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/replicate"
)

// Replication is a running replicator between the two clusters, as a
// deployed stack runs it: the reconciler (shared/reconcile, through
// local/reconcilerun) selects the source topics by pattern, creates their
// target topics, seeds each mapping's group and creates one event source
// mapping per topic through the emulated Lambda API.
type Replication struct {
	Replicator *replicate.Replicator
	// Registry holds the mappings the reconciler created.
	Registry *esm.Registry
	// Reconciler is the rig whose Run is one reconcile run.
	Reconciler *reconcilerun.Rig
	target     *kgo.Client
	source     *kgo.Client
}

// FunctionName is the replicator's name in local runs.
const FunctionName = reconcilerun.ReplicatorFunction

// StartReplication builds the replicator from the same environment
// variables the Lambda function reads (with the fence on, as the template
// sets it: TRANSACTIONAL_ID_PREFIX is the mappings' group prefix) and the
// reconciler that selects plan's topics by its patterns (TOPIC_PATTERNS,
// EXCLUDED_TOPIC_PATTERNS) and creates their mappings when it runs; it
// runs nothing yet. env adds to, or replaces, the replicator's
// environment. The mappings read the source as the migrator's SCRAM
// user (the source's superuser: in a deployment the mappings and the
// cutover share the source secret). Each mapping's consumer group is
// MappingGroup(topic).
func StartReplication(ctx context.Context, pair *kafkalocal.Pair, plan Plan, env map[string]string, log *slog.Logger) (*Replication, error) {
	vars := map[string]string{"TARGET_BOOTSTRAP_SERVERS": pair.Target.BootstrapServers(), "TARGET_AUTH": "plaintext",
		"SOURCE_BOOTSTRAP_SERVERS": pair.Source.BootstrapServers(), "SOURCE_AUTH": "plaintext",
		"TRANSACTIONAL_ID_PREFIX": MappingGroup("")}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := replicate.LoadConfig(config.Map(vars))
	if err != nil {
		return nil, err
	}
	cl, err := replicate.NewTargetClient(ctx, cfg, nil, kgo.MetadataMinAge(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	// The replicator reads transaction outcomes as the mappings' user. The
	// embedded source is SCRAM without a Secrets Manager secret, so its
	// client comes from kafkalocal, not from the SOURCE_* variables.
	src, err := pair.Source.NewClientAs(kafkalocal.Admin())
	if err != nil {
		cl.Close()
		return nil, err
	}
	newFence := func(transactionalID string) (*kgo.Client, error) {
		return replicate.NewFenceClient(ctx, cfg, nil, transactionalID, kgo.MetadataMinAge(200*time.Millisecond))
	}
	r, err := replicate.New(cfg, cl, src, replicate.WithLogger(log), replicate.WithMetricsWriter(nil),
		replicate.WithFenceClientFactory(newFence))
	if err != nil {
		cl.Close()
		src.Close()
		return nil, err
	}
	rig, err := reconcilerun.Start(ctx, reconcilerun.Options{
		Pair: pair,
		Env: map[string]string{
			reconcile.EnvTopicPatterns:         strings.Join(plan.Patterns, ","),
			reconcile.EnvExcludedTopicPatterns: strings.Join(plan.Excluded, ","),
			reconcile.EnvConsumerGroupIDPrefix: MappingGroup(""),
		},
		Replicator:  r,
		MappingUser: pair.Source.AdminCredentials(),
		Options:     reconcile.Options{PollInterval: 50 * time.Millisecond},
		Log:         log,
	})
	if err != nil {
		cl.Close()
		src.Close()
		return nil, err
	}
	return &Replication{Replicator: r, Registry: rig.Registry, Reconciler: rig, target: cl, source: src}, nil
}

// MappingGroup is the source consumer group of topic's mapping: the
// reconciler's CONSUMER_GROUP_ID_PREFIX and the topic.
func MappingGroup(topic string) string { return "kmig-replicator-" + topic }

// WaitCaughtUp waits until every mapping polls and has committed up to
// the source's end offsets.
func (r *Replication) WaitCaughtUp(ctx context.Context) error {
	if err := r.Reconciler.WaitPolling(ctx); err != nil {
		return fmt.Errorf("mappings starting: %w", err)
	}
	for _, m := range r.Registry.List() {
		if err := m.WaitCaughtUp(ctx); err != nil {
			return fmt.Errorf("mapping for %s: %w", strings.Join(m.Topics(), ","), err)
		}
	}
	return nil
}

// Close stops the reconciler's rig, the mappings and the replicator's
// clients.
func (r *Replication) Close() {
	r.Reconciler.Close()
	r.target.Close()
	r.source.Close()
}

// Seed writes n records to every partition of each topic, with keys
// (null every 7th), values (null every 11th, empty every 13th), headers in
// a fixed order with a repeated key, and CreateTime timestamps.
func Seed(ctx context.Context, c *kafkalocal.Cluster, topics []kafkalocal.Topic, n int) error {
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var batch []*kgo.Record
	for _, t := range topics {
		for i := 0; i < n; i++ {
			for p := int32(0); p < t.Partitions; p++ {
				rec := &kgo.Record{Topic: t.Name, Partition: p, Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
				if i%7 != 3 {
					rec.Key = fmt.Appendf(nil, "%s-key-%d-%d", t.Name, p, i)
				}
				switch {
				case i%11 == 5: // tombstone
				case i%13 == 6:
					rec.Value = []byte{}
				default:
					rec.Value = fmt.Appendf(nil, `{"topic":%q,"partition":%d,"n":%d}`, t.Name, p, i)
				}
				rec.Headers = []kgo.RecordHeader{{Key: "trace-id", Value: fmt.Appendf(nil, "%016x", i)}, {Key: "bin", Value: []byte{0xff, 0, 0x80}}, {Key: "trace-id", Value: []byte("again")}}
				batch = append(batch, rec)
			}
		}
	}
	for len(batch) > 0 {
		n := min(len(batch), 5000)
		if err := c.ProduceSync(ctx, batch[:n]...); err != nil {
			return fmt.Errorf("seeding %s: %w", c.Name(), err)
		}
		batch = batch[n:]
	}
	return nil
}

// Comparison is what CompareTopics found, summed over its topics.
type Comparison struct {
	Topics, Partitions int
	// Source and Target count records; Lost and Duplicated are summed
	// over the partitions.
	Source, Target, Lost, Duplicated int
	// Differing counts partitions whose target copy is not every source
	// record exactly once, in order, equal.
	Differing int
}

// OK reports whether every partition compared was equal.
func (c Comparison) OK() bool { return c.Partitions > 0 && c.Differing == 0 }

// CompareTopics reads each topic from both clusters by provenance and
// writes a per-partition table to w: a row for every partition of the
// topics named in detail and for every partition that differs, then a
// line that sums every topic.
func CompareTopics(ctx context.Context, w io.Writer, pair *kafkalocal.Pair, topics, detail []string) (Comparison, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "topic\tpartition\tsource\ttarget\tlost\tduplicated\tequal, in order\t")
	var c Comparison
	for _, t := range topics {
		src, err := verify.ReadAll(ctx, pair.Source, t)
		if err != nil {
			return c, err
		}
		dst, err := verify.ReadAll(ctx, pair.Target, t)
		if err != nil {
			return c, err
		}
		c.Topics++
		for _, r := range verify.Compare(src, dst, t) {
			c.Partitions++
			c.Source += r.Source
			c.Target += r.Target
			c.Lost += r.Lost
			c.Duplicated += r.Duplicated
			eq := "yes"
			if !r.OK() {
				c.Differing++
				eq = "NO"
				if r.Mismatch != "" {
					eq += ": " + r.Mismatch
				}
			}
			if slices.Contains(detail, t) || !r.OK() {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", t, r.Partition, r.Source, r.Target, r.Lost, r.Duplicated, eq)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return c, err
	}
	eq := "yes"
	if !c.OK() {
		eq = fmt.Sprintf("NO, %d partitions differ", c.Differing)
	}
	_, err := fmt.Fprintf(w, "   all %d topics, %d partitions: source %d, target %d, lost %d, duplicated %d, equal in order: %s\n",
		c.Topics, c.Partitions, c.Source, c.Target, c.Lost, c.Duplicated, eq)
	return c, err
}
