package rehearsal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/verify"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/replicate"
)

// DemoTopics are the topics the rehearsal seeds and migrates.
var DemoTopics = []kafkalocal.Topic{{Name: "orders", Partitions: 6}, {Name: "payments", Partitions: 3}, {Name: "audit.events", Partitions: 2}}

// Replication is a running replicator between the two clusters: one
// emulated event source mapping per topic, as the SAM template deploys.
type Replication struct {
	Replicator *replicate.Replicator
	Registry   *esm.Registry
	target     *kgo.Client
	source     *kgo.Client
}

// FunctionName is the replicator's name in local runs.
const FunctionName = "kmig-replicator"

// StartReplication builds the replicator from the same environment
// variables the Lambda function reads (with the fence on, as the template
// sets it: TRANSACTIONAL_ID_PREFIX is the mappings' group prefix), and one
// mapping per topic reading the
// source as the migrator's SCRAM user (the source's superuser: in a
// deployment the mappings and the cutover share the source secret). Each
// mapping's consumer group is MappingGroup(topic).
func StartReplication(ctx context.Context, pair *kafkalocal.Pair, topics []string, env map[string]string, log *slog.Logger) (*Replication, error) {
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
	reg := esm.NewRegistry()
	for _, t := range topics {
		_, err := reg.Create(esm.Config{
			FunctionName:          FunctionName,
			Topics:                []string{t},
			ConsumerGroupID:       MappingGroup(t),
			BootstrapServers:      pair.Source.Bootstrap(),
			ClientOptions:         pair.Source.ClientOpts(pair.Source.AdminCredentials()),
			BatchSize:             500,
			MaximumBatchingWindow: 20 * time.Millisecond,
			RetryBackoff:          50 * time.Millisecond,
			Logger:                log,
		}, r)
		if err != nil {
			reg.Close()
			cl.Close()
			src.Close()
			return nil, err
		}
	}
	return &Replication{Replicator: r, Registry: reg, target: cl, source: src}, nil
}

// MappingGroup is the source consumer group of topic's mapping.
func MappingGroup(topic string) string { return "kmig-replicator-" + topic }

// WaitCaughtUp waits until every mapping has committed up to the source's
// end offsets.
func (r *Replication) WaitCaughtUp(ctx context.Context) error {
	for _, m := range r.Registry.List() {
		if err := m.WaitCaughtUp(ctx); err != nil {
			return fmt.Errorf("mapping for %s: %w", strings.Join(m.Topics(), ","), err)
		}
	}
	return nil
}

// Close stops the mappings and the replicator's clients.
func (r *Replication) Close() {
	r.Registry.Close()
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

// CompareTopics reads each topic from both clusters, writes a
// per-partition table to w and returns whether everything matched.
func CompareTopics(ctx context.Context, w io.Writer, pair *kafkalocal.Pair, topics []string) (bool, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "topic\tpartition\tsource\ttarget\tlost\tduplicated\tequal, in order\t")
	ok := true
	for _, t := range topics {
		src, err := verify.ReadAll(ctx, pair.Source, t)
		if err != nil {
			return false, err
		}
		dst, err := verify.ReadAll(ctx, pair.Target, t)
		if err != nil {
			return false, err
		}
		for _, r := range verify.Compare(src, dst, t) {
			eq := "yes"
			if r.Mismatch != "" {
				eq = "NO: " + r.Mismatch
			}
			ok = ok && r.OK()
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", t, r.Partition, r.Source, r.Target, r.Lost, r.Duplicated, eq)
		}
	}
	return ok, tw.Flush()
}
