package cutoverrun

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
)

// TestSubsetCutoverByPattern cuts over the topics a pattern selects among
// the replicator's mappings and leaves the others alone, with the groups
// left out of the input: the groups found are exactly the application
// groups that committed on the chosen topics (not the mappings' own
// groups, not a group with the mappings' prefix, not a group of the other
// topics only), their offsets are exact on the chosen topics' partitions
// and absent on the others', and the other topics' mappings stay Enabled
// and keep replicating, their groups never touched.
func TestSubsetCutoverByPattern(t *testing.T) {
	const partitions = 2
	ctx := ctxFor(t, 4*time.Minute)
	orders, refunds := names("shop.orders", 3), names("shop.refunds", 3)
	all := append(append([]string{}, orders...), refunds...)
	f := startFleet(t, ctx, FleetOptions{Topics: all, Partitions: partitions})
	for g, topics := range map[string][]string{
		"app-orders": orders, "app-refunds": refunds, "app-both": all,
		MappingGroupPrefix + "legacy": orders, // the mappings' prefix (inferred): never an application group
	} {
		if err := f.Commit(ctx, g, topics); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"app-both", "app-orders"}
	tgtEnds, err := f.Target.ListEndOffsets(ctx, all...)
	if err != nil {
		t.Fatal(err)
	}
	funcs, hooks := f.Hooks(ctx, want, orders[0])
	in := map[string]any{
		"topics": []string{`shop\.orders\..*`}, "fence": "acl",
		"quietSeconds": 1, "drainTimeoutSeconds": 60, "consumersTimeoutSeconds": 15, "verifySeconds": 60, "pollSeconds": 1,
		"hooks": hooks,
	}
	res, err := f.Run(ctx, in, Options{Functions: funcs, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	rep := res.Report
	if !slices.Equal(rep.Topics, orders) {
		t.Fatalf("report topics %v; want %v", rep.Topics, orders)
	}
	var got []string
	for _, g := range rep.Groups {
		got = append(got, g.Group)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("groups moved %v; want %v (found on the source)", got, want)
	}
	var fenced []string
	for _, a := range rep.Fence.Created {
		fenced = append(fenced, a.Topic)
	}
	slices.Sort(fenced)
	if !slices.Equal(slices.Compact(fenced), orders) {
		t.Errorf("fenced topics %v; want %v", fenced, orders)
	}
	for _, tp := range orders {
		if s := f.ByTopic[tp].State(); s != esm.StateDisabled {
			t.Errorf("mapping of %s reads %s; want Disabled", tp, s)
		}
	}
	for _, tp := range refunds {
		if s := f.ByTopic[tp].State(); s != esm.StateEnabled {
			t.Errorf("mapping of %s reads %s; want Enabled (not selected)", tp, s)
		}
	}

	// Offsets: exact on the chosen topics (but the first, which moved on
	// after the switch), none on the others and none for other groups.
	for _, g := range want {
		o, err := f.Target.FetchOffsets(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		tgtEnds.Each(func(e kadm.ListedOffset) {
			c, ok := o.Lookup(e.Topic, e.Partition)
			switch {
			case slices.Contains(refunds, e.Topic) && ok:
				t.Errorf("group %s has %s/%d=%d on the target; the topic was not cut over", g, e.Topic, e.Partition, c.At)
			case e.Topic != orders[0] && slices.Contains(orders, e.Topic) && (!ok || c.At != e.Offset):
				t.Errorf("group %s: %s/%d at %v on the target; want %d", g, e.Topic, e.Partition, c.At, e.Offset)
			}
		})
	}
	listed, err := f.Target.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range listed.Groups() {
		if g == "app-refunds" || strings.HasPrefix(g, MappingGroupPrefix) {
			t.Errorf("group %s exists on the target; the cutover must not touch it", g)
		}
	}

	// The other topics still replicate, their mappings' groups commit.
	if err := f.Pair.Source.ProduceSync(ctx, &kgo.Record{Topic: refunds[1], Partition: 1, Value: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if err := f.ByTopic[refunds[1]].WaitCaughtUp(ctx); err != nil {
		t.Fatalf("mapping of %s stopped replicating: %v", refunds[1], err)
	}
	e, err := f.Target.ListEndOffsets(ctx, refunds[1])
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := e.Lookup(refunds[1], 1); o.Offset != func() int64 { x, _ := tgtEnds.Lookup(refunds[1], 1); return x.Offset + 1 }() {
		t.Errorf("target end of %s/1 is %d; want one more record than before the cutover", refunds[1], o.Offset)
	}
}

// TestTopicsOmitted: with no topics in the input the cutover takes every
// topic the replicator's mappings read. A pattern that selects none of
// them, and groups left out where no application group committed, are
// refused in Validate with NothingSelectedError naming the field, before
// anything changes.
func TestTopicsOmitted(t *testing.T) {
	const partitions = 2
	ctx := ctxFor(t, 4*time.Minute)
	tn := names("fleet", 4)
	f := startFleet(t, ctx, FleetOptions{Topics: tn, Partitions: partitions})
	base := map[string]any{
		"fence": "acl", "quietSeconds": 1, "drainTimeoutSeconds": 60, "consumersTimeoutSeconds": 15, "verifySeconds": 60, "pollSeconds": 1,
	}
	with := func(kv ...any) map[string]any {
		in := map[string]any{}
		for k, v := range base {
			in[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			in[kv[i].(string)] = kv[i+1]
		}
		return in
	}
	for _, tc := range []struct {
		name  string
		in    map[string]any
		field string
	}{
		{"pattern selects nothing", with("topics", []string{`other\..*`}, "groups", []string{"app"}), "topics[0]"},
		{"no group found", with(), "groups"},
	} {
		res, err := f.Run(ctx, tc.in, Options{Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != "FAILED" || !strings.Contains(res.Cause, "NothingSelectedError") || !strings.Contains(res.Cause, tc.field+":") {
			t.Fatalf("%s: status %s: %s: %s; want NothingSelectedError on %s", tc.name, res.Status, res.Error, res.Cause, tc.field)
		}
		for _, tp := range tn {
			if s := f.ByTopic[tp].State(); s != esm.StateEnabled {
				t.Fatalf("%s: mapping of %s reads %s after a refused run", tc.name, tp, s)
			}
		}
	}

	if err := f.Commit(ctx, "app", tn); err != nil {
		t.Fatal(err)
	}
	funcs, hooks := f.Hooks(ctx, []string{"app"}, tn[0])
	res, err := f.Run(ctx, with("groups", []string{"app"}, "hooks", hooks), Options{Functions: funcs, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	if !slices.Equal(res.Report.Topics, tn) {
		t.Errorf("report topics %v; want every mapped topic %v", res.Report.Topics, tn)
	}
	for _, tp := range tn {
		if s := f.ByTopic[tp].State(); s != esm.StateDisabled {
			t.Errorf("mapping of %s reads %s; want Disabled", tp, s)
		}
	}
}

// TestCutoverPagedAndThrottled cuts over 150 topics, found by the
// replicator's function over two pages of mappings (the endpoint pages at
// 100, as AWS does), while the endpoint holds the control plane to
// Lambda's quota of 15 requests per second: throttled updates are sent
// again, and every mapping, on both pages, ends Disabled.
func TestCutoverPagedAndThrottled(t *testing.T) {
	const topics, partitions = 150, 1
	ctx := ctxFor(t, 6*time.Minute)
	tn := names("paged", topics)
	f := startFleet(t, ctx, FleetOptions{Topics: tn, Partitions: partitions})
	if err := f.Commit(ctx, "app", tn); err != nil {
		t.Fatal(err)
	}
	funcs, hooks := f.Hooks(ctx, []string{"app"}, tn[0])
	var ep *lambdaendpoint.Server
	in := map[string]any{
		"groups": []string{"app"}, "fence": "acl", "hooks": hooks,
		"quietSeconds": 1, "drainTimeoutSeconds": 120, "consumersTimeoutSeconds": 15, "verifySeconds": 60, "pollSeconds": 1,
	}
	res, err := f.Run(ctx, in, Options{Functions: funcs, Timeout: 5 * time.Minute, Endpoint: func(s *lambdaendpoint.Server) {
		ep = s
		s.SetControlPlaneRate(lambdaendpoint.ControlPlaneRate)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	if len(res.Report.Topics) != topics || res.Report.MappingCount != topics || len(res.Report.Paused) != topics {
		t.Fatalf("report: %d topics, %d mappings, %d paused; want %d each", len(res.Report.Topics), res.Report.MappingCount, len(res.Report.Paused), topics)
	}
	for _, tp := range tn {
		if s := f.ByTopic[tp].State(); s != esm.StateDisabled {
			t.Fatalf("mapping of %s reads %s; want Disabled", tp, s)
		}
	}
	n := ep.Errors("TooManyRequestsException")
	t.Logf("%d requests throttled; execution took %v", n, res.Duration.Round(time.Millisecond))
	if n == 0 {
		t.Error("no request was throttled: the test did not exercise the rate limit")
	}
}
