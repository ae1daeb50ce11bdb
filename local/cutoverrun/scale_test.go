package cutoverrun

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/rundetails"
)

// startFleet starts a Fleet for t, closed when t ends.
func startFleet(t *testing.T, ctx context.Context, o FleetOptions) *Fleet {
	t.Helper()
	requireTools(t)
	f, err := StartFleet(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// names returns n topic names prefix.000, prefix.001, …
func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s.%03d", prefix, i)
	}
	return out
}

// TestCutoverOf500TopicsAnd50Groups cuts over every topic the replicator's
// 500 mappings read (the input names none: the mappings are found by the
// function, over pages of 100 where the endpoint pages) with 3 partitions
// each, and 50 groups that committed on every partition: the run succeeds
// under the interpreter's 256 KiB state limit, every mapping is paused,
// and every group's offset on every one of the 1,500 partitions is exact
// on the target. The report is too large to list everything, so its
// details are read back from the details topic.
func TestCutoverOf500TopicsAnd50Groups(t *testing.T) {
	const topics, partitions, groups = 500, 3, 50
	ctx := ctxFor(t, 14*time.Minute)
	tn := names("scale.orders", topics)
	f := startFleet(t, ctx, FleetOptions{Topics: tn, Partitions: partitions})
	gnames := names("scale-group", groups)
	for _, g := range gnames {
		if err := f.Commit(ctx, g, tn); err != nil {
			t.Fatal(err)
		}
	}
	tgtEnds, err := f.Target.ListEndOffsets(ctx, tn...)
	if err != nil {
		t.Fatal(err)
	}
	funcs, hooks := f.Hooks(ctx, gnames, tn[0])
	in := map[string]any{
		"groups": gnames, "fence": "acl",
		"quietSeconds": 1, "drainTimeoutSeconds": 300, "consumersTimeoutSeconds": 30, "verifySeconds": 180, "pollSeconds": 1,
		"hooks": hooks,
	}
	res, err := f.Run(ctx, in, Options{Functions: funcs, Timeout: 12 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("execution %s in %v; largest state: %d bytes (%s)", res.Status, res.Duration.Round(time.Millisecond), res.LargestState.Bytes, res.LargestState.State)
	logSteps(t, res)
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	if res.LargestState.Bytes <= 0 || res.LargestState.Bytes > cutover.StateLimitBytes {
		t.Fatalf("largest state %d bytes; want under %d", res.LargestState.Bytes, cutover.StateLimitBytes)
	}
	rep := res.Report
	if !slices.Equal(rep.Topics, tn) {
		t.Fatalf("report names %d topics; want the %d the mappings read", len(rep.Topics), topics)
	}
	for _, tp := range tn {
		if s := f.ByTopic[tp].State(); s != esm.StateDisabled {
			t.Fatalf("mapping of %s reads %s after the cutover; want Disabled", tp, s)
		}
	}
	if rep.Details == nil || rep.Details.Inline || rep.Details.Groups == nil || rep.Details.Partitions == nil {
		t.Fatalf("report details %+v; want references, not everything inline", rep.Details)
	}
	if n := len(rep.Fence.Created); n != topics || len(rep.Fence.Remains) != 21 || !strings.Contains(rep.Fence.Remains[20], fmt.Sprintf("and %d more", topics-20)) {
		t.Fatalf("fence created %d ACLs, report lists %d remaining: %v", n, len(rep.Fence.Remains), rep.Fence.Remains)
	}
	if rep.Drain == nil || rep.Drain.Partitions != topics*partitions || rep.Drain.Lagging != 0 || rep.Drain.RecordsReplicated != 2*topics*partitions {
		t.Fatalf("drain summary %+v; want %d partitions, none lagging, %d records", rep.Drain, topics*partitions, 2*topics*partitions)
	}

	// The report's details, read back from the details topic.
	tcl, err := kgo.NewClient(kgo.SeedBrokers(f.Pair.Target.Bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	defer tcl.Close()
	store := rundetails.New(tcl, "")
	var full []cutover.GroupReport
	if err := store.Get(ctx, *rep.Details.Groups, &full); err != nil {
		t.Fatal(err)
	}
	if len(full) != groups {
		t.Fatalf("details hold %d groups; want %d", len(full), groups)
	}
	// Every group's offset on every partition of the other topics is the
	// target end before the switch (the first topic's moved on since).
	for _, g := range full {
		if g.Status != cutover.GroupTranslated || !g.Verified || len(g.Partitions) != topics*partitions {
			t.Fatalf("group %s: status %s verified %v with %d partitions", g.Group, g.Status, g.Verified, len(g.Partitions))
		}
		o, err := f.Target.FetchOffsets(ctx, g.Group)
		if err != nil {
			t.Fatal(err)
		}
		wrong, checked := 0, 0
		tgtEnds.Each(func(e kadm.ListedOffset) {
			if e.Topic == tn[0] {
				return
			}
			checked++
			if c, ok := o.Lookup(e.Topic, e.Partition); !ok || c.At != e.Offset {
				wrong++
			}
		})
		if wrong > 0 || checked != (topics-1)*partitions {
			t.Fatalf("group %s: %d of %d partitions not at the target end", g.Group, wrong, checked)
		}
	}
}

// logSteps logs how long each step took, and the polls of polling steps.
func logSteps(t *testing.T, res *Result) {
	t.Helper()
	if res.Report == nil {
		return
	}
	var b strings.Builder
	for _, s := range res.Report.Steps {
		fmt.Fprintf(&b, " %s=%dms/%d", s.Step, s.DurationMs, s.Polls)
	}
	t.Logf("steps:%s", b.String())
}
