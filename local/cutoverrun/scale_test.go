package cutoverrun

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/rundetails"
)

// TestCutoverOf2000PartitionsAnd50Groups cuts over 100 topics of 20
// partitions each with 50 groups that have committed on every partition:
// the run succeeds under the interpreter's 256 KiB state limit, and every
// group's offset on every partition is exact on the target. The report
// is too large to list everything, so its details are read back from the
// details topic.
func TestCutoverOf2000PartitionsAnd50Groups(t *testing.T) {
	const topics, partitions, groups = 100, 20, 50
	root := requireTools(t)
	ctx := ctxFor(t, 9*time.Minute)
	var names []string
	var kt []kafkalocal.Topic
	for i := range topics {
		n := fmt.Sprintf("scale.orders.%03d", i)
		names = append(names, n)
		kt = append(kt, kafkalocal.Topic{Name: n, Partitions: partitions})
	}
	kt = append(kt, kafkalocal.Topic{Name: defaultIdle, Partitions: 1})
	pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{
		Source: kafkalocal.ClusterOptions{Security: kafkalocal.SecuritySCRAMACL, Topics: kt},
		Target: kafkalocal.ClusterOptions{Topics: kt},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pair.Close)
	r := &rig{t: t, root: root, pair: pair, topic: names[0], idle: defaultIdle, group: "scale-group-00"}
	r.setup()
	maps := []*esm.Mapping{r.mapping}
	for _, n := range names[1:] {
		maps = append(maps, r.addMapping(n, false))
	}

	// Two records on every partition, replicated.
	var recs []*kgo.Record
	for _, n := range names {
		for p := range int32(partitions) {
			for i := range 2 {
				recs = append(recs, &kgo.Record{Topic: n, Partition: p, Value: fmt.Appendf(nil, "%s/%d/%d", n, p, i)})
			}
		}
	}
	if err := pair.Source.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	srcEnds := waitAllReplicated(t, ctx, r, names, maps)

	// Every group has read everything on the source.
	var gnames []string
	for g := range groups {
		name := fmt.Sprintf("scale-group-%02d", g)
		gnames = append(gnames, name)
		resp, err := r.srcAdm.CommitOffsets(ctx, name, srcEnds.Offsets())
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	tgtEnds, err := r.tgtAdm.ListEndOffsets(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}

	// StartConsumers starts one member of each group on the target, on
	// the first topic; StartProducers writes a record to each of its
	// partitions there, which every group then reads and commits.
	var mu sync.Mutex
	var members []*kgo.Client
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range members {
			m.Close()
		}
	})
	funcs := map[string]lambda.Handler{
		"start-consumers": hookFunc(func(context.Context) error {
			for _, g := range gnames {
				cl, err := kgo.NewClient(kgo.SeedBrokers(pair.Target.Bootstrap()...), kgo.ConsumerGroup(g),
					kgo.ConsumeTopics(names[0]), kgo.AutoCommitInterval(200*time.Millisecond))
				if err != nil {
					return err
				}
				mu.Lock()
				members = append(members, cl)
				mu.Unlock()
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
		"start-producers": hookFunc(func(ctx context.Context) error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(pair.Target.Bootstrap()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				return err
			}
			defer cl.Close()
			var rs []*kgo.Record
			for p := range int32(partitions) {
				rs = append(rs, &kgo.Record{Topic: names[0], Partition: p, Value: []byte("after the cutover")})
			}
			return cl.ProduceSync(ctx, rs...).FirstErr()
		}),
	}
	in := map[string]any{
		"topics": names, "groups": gnames, "fence": "acl",
		"quietSeconds": 1, "drainTimeoutSeconds": 120, "consumersTimeoutSeconds": 30, "verifySeconds": 120, "pollSeconds": 1,
		"hooks": map[string]any{"startConsumers": lambdaHook("start-consumers"), "startProducers": lambdaHook("start-producers")},
	}
	res := r.run(ctx, in, Options{Functions: funcs, Timeout: 8 * time.Minute})
	t.Logf("largest state: %d bytes (%s)", res.LargestState.Bytes, res.LargestState.State)
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	if res.LargestState.Bytes <= 0 || res.LargestState.Bytes > cutover.StateLimitBytes {
		t.Fatalf("largest state %d bytes; want under %d", res.LargestState.Bytes, cutover.StateLimitBytes)
	}
	rep := res.Report
	if rep.Details == nil || rep.Details.Inline || rep.Details.Groups == nil || rep.Details.Partitions == nil {
		t.Fatalf("report details %+v; want references, not everything inline", rep.Details)
	}
	if n := len(rep.Fence.Created); n != topics || len(rep.Fence.Remains) != 21 || !strings.Contains(rep.Fence.Remains[20], "and 80 more") {
		t.Fatalf("fence created %d ACLs, report lists %d remaining: %v", n, len(rep.Fence.Remains), rep.Fence.Remains)
	}
	if rep.Drain == nil || rep.Drain.Partitions != topics*partitions || rep.Drain.Lagging != 0 || rep.Drain.RecordsReplicated != 2*topics*partitions {
		t.Fatalf("drain summary %+v; want %d partitions, none lagging, %d records", rep.Drain, topics*partitions, 2*topics*partitions)
	}

	// The report's details, read back from the details topic.
	tcl, err := kgo.NewClient(kgo.SeedBrokers(pair.Target.Bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	defer tcl.Close()
	store := rundetails.New(tcl, "")
	var full []cutover.GroupReport
	if err := store.Get(ctx, *rep.Details.Groups, &full); err != nil {
		t.Fatal(err)
	}
	var parts []cutover.PartitionReport
	if err := store.Get(ctx, *rep.Details.Partitions, &parts); err != nil {
		t.Fatal(err)
	}
	if len(full) != groups || len(parts) != topics*partitions {
		t.Fatalf("details hold %d groups and %d partitions; want %d and %d", len(full), len(parts), groups, topics*partitions)
	}

	// Every group's offset on every partition of the other topics is the
	// target end before the switch (the first topic's moved on since).
	for _, g := range full {
		if g.Status != cutover.GroupTranslated || !g.Verified || len(g.Partitions) != topics*partitions {
			t.Fatalf("group %s: status %s verified %v with %d partitions", g.Group, g.Status, g.Verified, len(g.Partitions))
		}
		o, err := r.tgtAdm.FetchOffsets(ctx, g.Group)
		if err != nil {
			t.Fatal(err)
		}
		wrong := 0
		tgtEnds.Each(func(e kadm.ListedOffset) {
			if e.Topic == names[0] {
				return
			}
			c, ok := o.Lookup(e.Topic, e.Partition)
			if !ok || c.At != e.Offset {
				wrong++
			}
		})
		if wrong > 0 {
			t.Fatalf("group %s: %d partitions not at the target end", g.Group, wrong)
		}
	}
}

// waitAllReplicated waits until every topic's target end equals its source
// end and every mapping has committed up to it; it returns the source
// ends.
func waitAllReplicated(t *testing.T, ctx context.Context, r *rig, names []string, maps []*esm.Mapping) kadm.ListedOffsets {
	t.Helper()
	for {
		s, err1 := r.srcAdm.ListEndOffsets(ctx, names...)
		d, err2 := r.tgtAdm.ListEndOffsets(ctx, names...)
		if err1 == nil && err2 == nil {
			var behind []string
			s.Each(func(o kadm.ListedOffset) {
				if x, ok := d.Lookup(o.Topic, o.Partition); !ok || x.Offset != o.Offset {
					behind = append(behind, fmt.Sprintf("%s/%d", o.Topic, o.Partition))
				}
			})
			if len(behind) == 0 {
				for _, m := range maps {
					if err := m.WaitCaughtUp(ctx); err != nil {
						t.Fatalf("mapping %s did not commit up to the source end: %v", strings.Join(m.Topics(), ","), err)
					}
				}
				return s
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("replication did not catch up: %v %v", err1, err2)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
