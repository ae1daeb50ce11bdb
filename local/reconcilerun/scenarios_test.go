package reconcilerun

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync/topicsynctest"
)

// The scenarios run on kfake (reconcile_test.go) and on real brokers
// (reconcile_realkafka_test.go); ns is a prefix unique to the run, which
// names every topic and group, and the patterns select only its topics.

func env(ns string, patterns ...string) map[string]string {
	for i, p := range patterns {
		patterns[i] = regexp.QuoteMeta(ns+".") + p
	}
	e := map[string]string{
		reconcile.EnvTopicPatterns:         join(patterns),
		reconcile.EnvConsumerGroupIDPrefix: "kmig-" + ns + "-",
	}
	return e
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

func createTopic(t testing.TB, c *kafkalocal.Cluster, topic string, n int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.CreateTopic(ctx, topic, n); err != nil {
		t.Fatal(err)
	}
	if !c.Embedded() {
		// Real brokers are shared and outlive the test: remove the topic
		// and its copy on the target.
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, cl := range []*kafkalocal.Cluster{c, targetOf[c]} {
				if cl == nil {
					continue
				}
				if adm, err := cl.AdminClient(); err == nil {
					_, _ = adm.DeleteTopics(ctx, topic)
					adm.Close()
				}
			}
		})
	}
}

// targetOf maps a real source cluster to its target, for cleanup.
var targetOf = map[*kafkalocal.Cluster]*kafkalocal.Cluster{}

// scenarioNewTopic: a topic created while the stack runs, whose first
// records were written before the reconciler ran, arrives complete.
func scenarioNewTopic(t *testing.T, pair *kafkalocal.Pair, ns string) {
	a, b := ns+".orders", ns+".payments"
	createTopic(t, pair.Source, a, 3)
	produce(t, pair.Source, a, parts(3), 0, 20)
	r := startRig(t, Options{Pair: pair, Env: env(ns, ".*")})
	rep := run(t, r)
	if !slices.Equal(rep.MappingsCreated, []string{a}) {
		t.Fatalf("first run created mappings for %v, want [%s]", rep.MappingsCreated, a)
	}
	// The new topic, with records before the reconciler sees it.
	createTopic(t, pair.Source, b, 2)
	produce(t, pair.Source, b, parts(2), 0, 30)
	rep = run(t, r)
	if !slices.Equal(rep.MappingsCreated, []string{b}) {
		t.Fatalf("second run created mappings for %v, want [%s]", rep.MappingsCreated, b)
	}
	if want := []reconcile.PartitionOffset{{Topic: b, Partition: 0, Offset: 0}, {Topic: b, Partition: 1, Offset: 0}}; !slices.Equal(rep.PartitionsSeeded, want) {
		t.Errorf("seeded %+v, want %+v", rep.PartitionsSeeded, want)
	}
	produce(t, pair.Source, b, parts(2), 30, 10) // and more after
	requireReplicated(t, r, a, map[int32]int{0: 20, 1: 20, 2: 20})
	requireReplicated(t, r, b, map[int32]int{0: 40, 1: 40})
	if m := r.Mapping(b); m == nil || m.ConsumerGroupID() != "kmig-"+ns+"-"+b {
		t.Fatalf("mapping of %s: %v", b, m)
	}
}

// scenarioPartitions: partitions added to a replicated topic are followed.
// seedFirst: the reconciler runs before the mapping notices them; late:
// the mapping starts a partition without a commit at its end.
func scenarioPartitions(t *testing.T, pair *kafkalocal.Pair, ns string, late, seedFirst bool, tune ...func(*Options)) {
	topic := ns + ".grow"
	createTopic(t, pair.Source, topic, 2)
	produce(t, pair.Source, topic, parts(2), 0, 10)
	o := Options{Pair: pair, Env: env(ns, ".*"), LateStart: late}
	if seedFirst {
		o.MetadataRefresh = time.Hour // the mapping never notices by itself
	} else {
		// It notices within 2 s: after the first records of the new
		// partitions are written.
		o.MetadataRefresh = 2 * time.Second
	}
	for _, f := range tune {
		f(&o)
	}
	if o.Log == nil {
		o.Log = testLog()
	}
	started := newStarts(o.Log)
	o.Log = slog.New(started)
	r := startRig(t, o)
	run(t, r)
	requireReplicated(t, r, topic, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.WaitPolling(ctx); err != nil {
		t.Fatal(err)
	}
	adm := admin(t, pair.Source)
	group := "kmig-" + ns + "-" + topic
	waitAssigned(t, adm, group, topic, 2)

	addPartitions(t, adm, topic, 2)
	produce(t, pair.Source, topic, []int32{2, 3}, 0, 15) // before anyone noticed
	gapExpected := late && !seedFirst
	if !seedFirst {
		if gapExpected {
			// The target partitions exist before the reconciler seeds (an
			// earlier run added them and stopped), so the mapping's
			// batches of the new partitions succeed and commit.
			addPartitions(t, admin(t, pair.Target), topic, 2)
		}
		// The mapping notices first: it holds the new partitions and has
		// fixed where it starts them (their end, 15, when late) before
		// the next records are written.
		waitAssigned(t, adm, group, topic, 4)
		wantStart := map[bool]int64{false: -2, true: 15}[late] // -2: the log start
		for _, p := range []int32{2, 3} {
			waitFor(t, 30*time.Second, fmt.Sprintf("the mapping to start %s/%d", topic, p), func() bool {
				_, ok := started.offset(topic, p)
				return ok
			})
			if at, _ := started.offset(topic, p); at != wantStart {
				t.Fatalf("the mapping started %s/%d at %d, want %d", topic, p, at, wantStart)
			}
		}
		produce(t, pair.Source, topic, []int32{2, 3}, 15, 5)
		if gapExpected {
			waitCommitted(t, adm, group, topic, []int32{2, 3}, 20)
		}
	}
	rep := run(t, r)
	if want := map[bool]int{false: 2, true: 0}[gapExpected]; rep.PartitionsAdded != want {
		t.Errorf("PartitionsAdded = %d, want %d", rep.PartitionsAdded, want)
	}
	if m := r.Mapping(topic); m == nil {
		t.Fatal("no mapping")
	} else if err := m.WaitState(ctx, esm.StateEnabled); err != nil {
		t.Fatalf("the mapping is not enabled again: %v", err)
	}
	produce(t, pair.Source, topic, parts(4), 100, 5)
	if gapExpected {
		// The mapping skipped the first records of the new partitions:
		// reported as gaps, named exactly, on every run until repaired.
		for _, rep := range []reconcile.Report{rep, run(t, r)} {
			if len(rep.Gaps) != 2 {
				t.Fatalf("gaps %+v, want one for each of partitions 2 and 3; report %+v", rep.Gaps, rep)
			}
			for i, g := range rep.Gaps {
				if g.Topic != topic || g.Partition != int32(2+i) || g.From != 0 || g.To != 15 {
					t.Errorf("gap %+v, want %s/%d from 0 to 15, where the mapping started", g, topic, 2+i)
				}
			}
			if !strings.Contains(r.Metrics.String(), `"ReplicationGaps":2`) {
				t.Errorf("no ReplicationGaps metric of 2 in %s", r.Metrics.String())
			}
		}
		// Partitions 0 and 1 stay complete.
		// Partitions 0 and 1 complete, 2 and 3 never: 5 s tells.
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		res, err := r.WaitReplicated(wctx, topic)
		for _, p := range res {
			if p.Partition < 2 && !p.OK() {
				t.Errorf("partition %d: %+v", p.Partition, p)
			}
			if p.Partition >= 2 && p.Lost == 0 {
				t.Errorf("partition %d lost nothing, but a gap was reported: %+v", p.Partition, p)
			}
		}
		if err == nil {
			t.Error("the topic is complete on the target, but the mapping started late")
		}
		return
	}
	if len(rep.Gaps) != 0 {
		t.Errorf("gaps reported: %+v", rep.Gaps)
	}
	requireReplicated(t, r, topic, map[int32]int{0: 15, 1: 15})
}

// scenarioPatternChange: a new pattern selects more topics on the next
// run.
func scenarioPatternChange(t *testing.T, pair *kafkalocal.Pair, ns string) {
	a, b := ns+".orders.eu", ns+".billing.eu"
	createTopic(t, pair.Source, a, 1)
	createTopic(t, pair.Source, b, 2)
	produce(t, pair.Source, a, parts(1), 0, 5)
	produce(t, pair.Source, b, parts(2), 0, 5)
	r := startRig(t, Options{Pair: pair, Env: env(ns, `orders\..*`)})
	rep := run(t, r)
	if !slices.Equal(rep.MappingsCreated, []string{a}) || rep.TopicsSelected != 1 {
		t.Fatalf("first run: selected %d, created %v, want 1 and [%s]", rep.TopicsSelected, rep.MappingsCreated, a)
	}
	if n := topicsynctest.Partitions(t, admin(t, pair.Target), b); n != 0 {
		t.Fatalf("unselected topic %s exists on the target with %d partitions", b, n)
	}
	cfg, err := reconcile.LoadConfig(func(k string) (string, bool) {
		if k == reconcile.EnvTopicPatterns {
			return env(ns, `orders\..*`, `billing\..*`)[k], true
		}
		v, ok := r.Env[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Reconciler.Config = cfg
	rep = run(t, r)
	if !slices.Equal(rep.MappingsCreated, []string{b}) || rep.TopicsSelected != 2 {
		t.Fatalf("after the pattern change: selected %d, created %v, want 2 and [%s]", rep.TopicsSelected, rep.MappingsCreated, b)
	}
	requireReplicated(t, r, b, map[int32]int{0: 5, 1: 5})
}

// scenarioDeleted: a deleted source topic is reported and its target
// topic left alone.
func scenarioDeleted(t *testing.T, pair *kafkalocal.Pair, ns string) {
	a, keep := ns+".gone", ns+".kept"
	createTopic(t, pair.Source, a, 2)
	createTopic(t, pair.Source, keep, 1)
	produce(t, pair.Source, a, parts(2), 0, 5)
	r := startRig(t, Options{Pair: pair, Env: env(ns, ".*")})
	run(t, r)
	requireReplicated(t, r, a, nil)
	src := admin(t, pair.Source)
	if _, err := src.DeleteTopics(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	waitGone(t, src, a)
	rep := run(t, r)
	if !slices.Equal(rep.DeletedSourceTopics, []string{a}) {
		t.Fatalf("DeletedSourceTopics = %v, want [%s]", rep.DeletedSourceTopics, a)
	}
	if n := topicsynctest.Partitions(t, admin(t, pair.Target), a); n != 2 {
		t.Fatalf("target topic %s has %d partitions after its source was deleted, want it left alone with 2", a, n)
	}
	if r.Mapping(a) == nil {
		t.Fatal("the mapping of the deleted topic was deleted; the reconciler must only report it")
	}
}

func waitGone(t testing.TB, adm *kadm.Client, topic string) {
	t.Helper()
	waitFor(t, 10*time.Second, "topic "+topic+" to be deleted", func() bool {
		td, err := adm.ListTopics(kadm.WithAuthorizedOps(context.Background()), topic)
		return err == nil && (td[topic].Err != nil || td[topic].Topic == "")
	})
}

// scenarioSteady: a run with nothing new creates nothing, changes
// nothing and reports every mapping polling.
func scenarioSteady(t *testing.T, pair *kafkalocal.Pair, ns string) {
	var topics []string
	for _, n := range []string{"a", "b", "c"} {
		tp := ns + ".steady." + n
		topics = append(topics, tp)
		createTopic(t, pair.Source, tp, 3)
		produce(t, pair.Source, tp, parts(3), 0, 3)
	}
	r := startRig(t, Options{Pair: pair, Env: env(ns, ".*")})
	rep := run(t, r)
	if len(rep.MappingsCreated) != 3 {
		t.Fatalf("first run created %v", rep.MappingsCreated)
	}
	for _, tp := range topics {
		requireReplicated(t, r, tp, nil)
	}
	calls := r.API.Calls()
	rep = run(t, r)
	if len(rep.MappingsCreated)+rep.TargetTopicsCreated+rep.PartitionsAdded+len(rep.PartitionsSeeded)+len(rep.MappingsPaused) != 0 {
		t.Errorf("steady-state run changed something: %+v", rep)
	}
	if rep.MappingsPolling != 3 || len(rep.MappingsNotPolling) != 0 {
		t.Errorf("steady state: %d polling, not polling %+v; want 3 and none", rep.MappingsPolling, rep.MappingsNotPolling)
	}
	if n := r.API.Calls() - calls; n != 1 {
		t.Errorf("steady-state run made %d Lambda API calls, want 1 (one list page)", n)
	}
}

// scenarioDisabled: a Disabled mapping (a cutover paused it) is never
// enabled by the reconciler, and its new partitions are seeded at their
// log start.
func scenarioDisabled(t *testing.T, pair *kafkalocal.Pair, ns string) {
	topic := ns + ".paused"
	createTopic(t, pair.Source, topic, 1)
	produce(t, pair.Source, topic, parts(1), 0, 5)
	r := startRig(t, Options{Pair: pair, Env: env(ns, ".*")})
	run(t, r)
	requireReplicated(t, r, topic, nil)
	m := r.Mapping(topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.WaitState(ctx, esm.StateEnabled); err != nil {
		t.Fatal(err)
	}
	if err := m.SetEnabled(false); err != nil { // as a cutover does
		t.Fatal(err)
	}
	if err := m.WaitState(ctx, esm.StateDisabled); err != nil {
		t.Fatal(err)
	}
	disabledAt := m.LastModified()
	adm := admin(t, pair.Source)
	addPartitions(t, adm, topic, 1)
	produce(t, pair.Source, topic, []int32{1}, 0, 4)
	for range 2 {
		rep := run(t, r)
		if len(rep.MappingsNotPolling) != 1 || rep.MappingsNotPolling[0].State != reconcile.StateDisabled {
			t.Errorf("not polling %+v, want the Disabled mapping", rep.MappingsNotPolling)
		}
		// The Lambda API changes a mapping's state within the call, and
		// the run's calls are over: any change shows now.
		if s, at := m.State(), m.LastModified(); s != esm.StateDisabled || !at.Equal(disabledAt) {
			t.Fatalf("the reconciler changed the Disabled mapping: now %s, last modified %v (disabled at %v)", s, at, disabledAt)
		}
	}
	fr, err := adm.FetchOffsets(ctx, "kmig-"+ns+"-"+topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fr.Lookup(topic, 1); !ok || o.At != 0 {
		t.Fatalf("new partition 1's commit is %+v, want 0 (log start)", o)
	}
	// Enabled again (the cutover's rollback), it replicates everything.
	if err := m.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	requireReplicated(t, r, topic, map[int32]int{0: 5, 1: 4})
}

// waitCommitted waits until group has a commit of at least min on each
// of partitions of topic.
func waitCommitted(t testing.TB, adm *kadm.Client, group, topic string, partitions []int32, min int64) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("group %s to commit %d on %s %v", group, min, topic, partitions), func() bool {
		fr, err := adm.FetchOffsets(context.Background(), group)
		done := err == nil
		for _, p := range partitions {
			o, ok := fr.Lookup(topic, p)
			done = done && ok && o.At >= min
		}
		return done
	})
}
