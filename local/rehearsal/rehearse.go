package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
)

// Options say what Rehearse migrates. The zero value is the demo's
// rehearsal: DemoPlan, AppGroup, 2000 records per partition of the plan's
// Topics and 100 of the others, an ACL fence.
type Options struct {
	// Plan are the topics and the selection; the zero value means
	// DemoPlan(). Rehearse creates its topics on the source (they must
	// not exist yet); the reconciler creates the selected ones on the
	// target.
	Plan Plan
	// Group is the apps' consumer group; empty means AppGroup.
	Group string
	// PerPartition is how many records are seeded per partition of the
	// plan's Topics; 0 means 2000.
	PerPartition int
	// BulkPerPartition is how many records are seeded per partition of
	// every other topic of the plan; 0 means 100.
	BulkPerPartition int
	// Cutover holds cutover input fields that replace the rehearsal's
	// defaults (see CutoverOptions.Input), for example {"fence": "none"};
	// a nil value removes the field.
	Cutover map[string]any
	// Cleanup deletes the run's topics and consumer groups from both
	// clusters, and any fence ACL left naming its topics, when the
	// rehearsal passed: for shared, long-lived brokers. A failed run's are
	// left for a look.
	Cleanup bool
	// Log receives the replicator's, the reconciler's and the cutover
	// function's logs; nil discards them.
	Log *slog.Logger
}

// Outcome is a rehearsal's verdict.
type Outcome struct {
	// Selection is empty when the reconciler selected, and created
	// mappings and target topics for, exactly the plan's selected topics
	// (Late on its second run, its group seeded at offset 0) and nothing
	// else, and the cutover covered every mapped topic; otherwise it says
	// what differed, and the rehearsal stopped there.
	Selection string
	// TopicsSelected is the last reconcile run's count; MappingsCreated
	// sums the mappings every run created.
	TopicsSelected, MappingsCreated int
	// Replicated says every seeded record of every selected topic reached
	// the target exactly once, in order, equal. The cutover runs only
	// then.
	Replicated bool
	// Compared sums the comparison of the selected topics.
	Compared Comparison
	// Cutover is the cutover's outcome; nil when it did not run.
	Cutover *CutoverOutcome
	// Duration is the rehearsal's wall time.
	Duration time.Duration
}

// OK reports whether the rehearsal passed: the selection as planned,
// replication exact, the cutover succeeded, and the apps' every number
// was read exactly once.
func (o *Outcome) OK() bool {
	c := o.Cutover
	return o.Selection == "" && o.Replicated && c != nil && c.Succeeded() && c.Produced > 0 && c.Missing == 0 && c.Duplicated == 0
}

// Counts is the apps' tally as the RESULT lines print it.
func (o *Outcome) Counts() string {
	c := o.Cutover
	if c == nil {
		return "produced 0, consumed 0, missing 0, duplicated 0"
	}
	return fmt.Sprintf("produced %d, consumed %d, missing %d, duplicated %d", c.Produced, c.Produced-c.Missing, c.Missing, c.Duplicated)
}

// Result is the demo's RESULT line without its label: what the
// reconciler selected and mapped, the selected topics' records compared,
// and the apps' tally (Counts).
func (o *Outcome) Result() string {
	c := o.Compared
	return fmt.Sprintf("%d topics selected by pattern, %d mappings created by the reconciler, %d records on the target equal, lost %d, duplicated %d; apps %s",
		o.TopicsSelected, o.MappingsCreated, c.Target, c.Lost, c.Duplicated, o.Counts())
}

func (o *Options) defaults() {
	if len(o.Plan.Topics) == 0 {
		o.Plan = DemoPlan()
	}
	if o.Group == "" {
		o.Group = AppGroup
	}
	if o.PerPartition <= 0 {
		o.PerPartition = 2000
	}
	if o.BulkPerPartition <= 0 {
		o.BulkPerPartition = 100
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Rehearse runs the rehearsal on pair, writing its steps from 2 on to w:
// it creates and seeds the plan's topics on the source; runs the
// reconciler, which selects them by the plan's patterns, creates their
// target topics and one event source mapping each (emulated, invoking the
// real replicator handler), and checks it left the unselected topics
// alone; creates the Late topic with records and runs the reconciler
// again, which finds it; compares source and target record for record;
// then runs the cutover over every mapped topic through the real state
// machine while the numbered-message apps produce and consume. An error
// means the rehearsal could not be carried out; a wrong selection, a
// difference or a failed cutover is in the outcome.
func Rehearse(ctx context.Context, w io.Writer, pair *kafkalocal.Pair, o Options) (*Outcome, error) {
	o.defaults()
	start := time.Now()
	out, err := rehearse(ctx, w, pair, o)
	if out != nil {
		out.Duration = time.Since(start)
	}
	if err == nil && o.Cleanup && out.OK() {
		if cerr := Cleanup(ctx, pair, o.Plan.All(), o.Group); cerr != nil {
			fmt.Fprintf(w, "   cleanup: %v\n", cerr)
		}
	}
	return out, err
}

func rehearse(ctx context.Context, w io.Writer, pair *kafkalocal.Pair, o Options) (*Outcome, error) {
	plan := o.Plan
	if err := pair.Source.CreateTopics(ctx, plan.SourceTopics()...); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "== 2. Seeding the source: %d topics the selection must pick (%d records per partition of %s, %d of the %d others), and %d it must not: %s\n",
		len(plan.Selected()), o.PerPartition, strings.Join(names(plan.Topics), ", "), o.BulkPerPartition, len(plan.Bulk),
		len(plan.Unselected), strings.Join(names(plan.Unselected), ", "))
	fmt.Fprintln(w, "   (null keys, null and empty values, headers, CreateTime)")
	if err := Seed(ctx, pair.Source, plan.Topics, o.PerPartition); err != nil {
		return nil, err
	}
	if err := Seed(ctx, pair.Source, append(append([]kafkalocal.Topic{}, plan.Bulk...), plan.Unselected...), o.BulkPerPartition); err != nil {
		return nil, err
	}

	fmt.Fprintf(w, "== 3. Reconciler (TOPIC_PATTERNS=%s, EXCLUDED_TOPIC_PATTERNS=%s): selects the source topics, creates their target topics, seeds each mapping's group and creates one event source mapping per topic through the Lambda API\n",
		strings.Join(plan.Patterns, ","), strings.Join(plan.Excluded, ","))
	repl, err := StartReplication(ctx, pair, plan, nil, o.Log)
	if err != nil {
		return nil, err
	}
	defer repl.Close()
	out := &Outcome{}
	rep, err := repl.Reconciler.Run(ctx)
	if err != nil {
		return out, fmt.Errorf("reconcile run: %w", err)
	}
	printReport(w, rep)
	out.TopicsSelected, out.MappingsCreated = rep.TopicsSelected, len(rep.MappingsCreated)
	if out.Selection, err = checkSelection(ctx, repl, pair, rep, names(plan.Selected()), plan.Unselected); err != nil || out.Selection != "" {
		return out, err
	}
	fmt.Fprintf(w, "   as planned: a mapping and a target topic for each of the %d selected topics, none for %s\n",
		len(plan.Selected()), strings.Join(names(plan.Unselected), ", "))
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := repl.WaitCaughtUp(wctx); err != nil {
		return out, err
	}
	tot := repl.Replicator.Totals()
	fmt.Fprintf(w, "   replicated: written %d, duplicates skipped %d, filtered %d, dead-lettered %d\n",
		tot.RecordsWritten, tot.DuplicatesSkipped, tot.RecordsFiltered, tot.RecordsDeadLettered)

	fmt.Fprintf(w, "== 4. Discovery: topic %s created while replication runs, %d records per partition written, then the next reconcile run\n",
		plan.Late.Name, o.BulkPerPartition)
	if err := pair.Source.CreateTopics(ctx, plan.Late); err != nil {
		return out, err
	}
	if err := Seed(ctx, pair.Source, []kafkalocal.Topic{plan.Late}, o.BulkPerPartition); err != nil {
		return out, err
	}
	if rep, err = repl.Reconciler.Run(ctx); err != nil {
		return out, fmt.Errorf("reconcile run: %w", err)
	}
	printReport(w, rep)
	out.TopicsSelected, out.MappingsCreated = rep.TopicsSelected, out.MappingsCreated+len(rep.MappingsCreated)
	selected := append(names(plan.Selected()), plan.Late.Name)
	if out.Selection, err = checkSelection(ctx, repl, pair, rep, []string{plan.Late.Name}, plan.Unselected); err != nil || out.Selection != "" {
		return out, err
	}
	if rep.TopicsSelected != len(selected) {
		out.Selection = fmt.Sprintf("the second run selected %d topics, want %d", rep.TopicsSelected, len(selected))
		return out, nil
	}
	// The group starts at the log start, so the records written before
	// the run are replicated too.
	var fromStart []reconcile.PartitionOffset
	for p := range plan.Late.Partitions {
		fromStart = append(fromStart, reconcile.PartitionOffset{Topic: plan.Late.Name, Partition: p})
	}
	if !slices.Equal(rep.PartitionsSeeded, fromStart) {
		out.Selection = fmt.Sprintf("the second run seeded %+v, want %+v", rep.PartitionsSeeded, fromStart)
		return out, nil
	}
	if err := repl.WaitCaughtUp(wctx); err != nil {
		return out, err
	}
	fmt.Fprintf(w, "   %s: mapping created, its group seeded at offset 0 of its %d partitions, caught up\n", plan.Late.Name, plan.Late.Partitions)

	fmt.Fprintf(w, "== 5. Comparing source and target, partition by partition, by provenance: all %d selected topics\n", len(selected))
	if out.Compared, err = CompareTopics(ctx, w, pair, selected, append(names(plan.Topics), plan.Late.Name)); err != nil {
		return out, err
	}
	if out.Replicated = out.Compared.OK(); !out.Replicated {
		return out, nil
	}
	fmt.Fprintln(w, "   every source record is on the target exactly once, in order, equal")

	if _, _, err := toolsReady(); err != nil {
		return out, fmt.Errorf("the cutover needs the local state machine tools: run `npm ci --prefix statemachine/local` (%w)", err)
	}
	fmt.Fprintf(w, "== 6. Cutover of every mapped topic (input without \"topics\") through statemachine/cutover.asl.json (aws-local-stepfunctions), apps producing to and consuming %q in group %q\n", plan.Topics[0].Name, o.Group)
	out.Cutover, err = RunCutover(ctx, w, pair, repl, CutoverOptions{
		AppTopic: plan.Topics[0].Name, AppPartitions: max(plan.Topics[0].Partitions, 1), Group: o.Group, Input: o.Cutover, Log: o.Log,
	})
	if err != nil {
		return out, err
	}
	if out.Cutover.Succeeded() {
		fmt.Fprintf(w, "   cutover of %d topics, StopProducers→VerifyTarget %d ms, of which waiting %d ms\n", out.Cutover.Topics, out.Cutover.CutoverMs, out.Cutover.WaitingMs)
		if out.Cutover.Topics != len(selected) {
			out.Selection = fmt.Sprintf("the cutover covered %d topics, want the %d mapped ones", out.Cutover.Topics, len(selected))
		}
	}
	return out, nil
}

// printReport writes what a reconcile run did.
func printReport(w io.Writer, rep reconcile.Report) {
	fmt.Fprintf(w, "   reconciler run: topics selected %d, target topics created %d, mappings created %d, earlier mappings polling %d, partitions' group offsets seeded %d, in %.2f s\n",
		rep.TopicsSelected, rep.TargetTopicsCreated, len(rep.MappingsCreated), rep.MappingsPolling, len(rep.PartitionsSeeded), rep.Seconds)
	for _, l := range []struct {
		what string
		ps   []reconcile.Problem
	}{{"skipped", rep.Skipped}, {"pending", rep.Pending}, {"failed", rep.Failed}} {
		for _, p := range l.ps {
			fmt.Fprintf(w, "   reconciler %s %s: %s\n", l.what, p.Topic, p.Reason)
		}
	}
}

// checkSelection says what differs from the plan after a reconcile run
// whose report is rep: the run must have created mappings for exactly
// created, each reading its topic in group MappingGroup(topic) with its
// target topic present, and neither a mapping nor a target topic may
// exist for unselected. Empty means as planned.
func checkSelection(ctx context.Context, repl *Replication, pair *kafkalocal.Pair, rep reconcile.Report, created []string, unselected []kafkalocal.Topic) (string, error) {
	if len(rep.Failed) > 0 || len(rep.Skipped) > 0 || len(rep.Pending) > 0 || rep.Error != "" {
		return fmt.Sprintf("the reconcile run reported failed %v, skipped %v, pending %v, error %q", rep.Failed, rep.Skipped, rep.Pending, rep.Error), nil
	}
	want := slices.Sorted(slices.Values(created))
	if !slices.Equal(rep.MappingsCreated, want) {
		extra, missing := difference(rep.MappingsCreated, want), difference(want, rep.MappingsCreated)
		return fmt.Sprintf("the reconcile run created mappings for %d topics, want %d: not planned %v, missing %v",
			len(rep.MappingsCreated), len(want), firstFew(extra), firstFew(missing)), nil
	}
	adm, err := pair.Target.AdminClient()
	if err != nil {
		return "", err
	}
	defer adm.Close()
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return "", fmt.Errorf("listing the target's topics: %w", err)
	}
	for _, t := range want {
		m := repl.Reconciler.Mapping(t)
		if m == nil || m.ConsumerGroupID() != MappingGroup(t) {
			return fmt.Sprintf("topic %s has no mapping in group %s", t, MappingGroup(t)), nil
		}
		if !tds.Has(t) {
			return fmt.Sprintf("topic %s has no target topic", t), nil
		}
	}
	for _, t := range unselected {
		if repl.Reconciler.Mapping(t.Name) != nil {
			return fmt.Sprintf("topic %s, which the selection must leave alone, got a mapping", t.Name), nil
		}
		if tds.Has(t.Name) {
			return fmt.Sprintf("topic %s, which the selection must leave alone, got a target topic", t.Name), nil
		}
	}
	return "", nil
}

// difference are the elements of a not in b.
func difference(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func firstFew(ss []string) []string {
	if len(ss) > 5 {
		return append(ss[:5:5], "…")
	}
	return ss
}

// Cleanup deletes topics from both clusters (a topic missing on one is
// not an error: the reconciler creates only the selected ones on the
// target), with the apps' group and the mappings' groups (MappingGroup) on
// the source and the apps' group on the target, and, where the source
// enforces ACLs, the cutover's fence ACLs (DENY WRITE for User:* on each
// topic) that a successful cutover leaves. It returns every error and
// carries on past each.
func Cleanup(ctx context.Context, pair *kafkalocal.Pair, topics []kafkalocal.Topic, group string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	names := make([]string, len(topics))
	srcGroups := []string{group}
	for i, t := range topics {
		names[i] = t.Name
		srcGroups = append(srcGroups, MappingGroup(t.Name))
	}
	var errs []error
	for _, side := range []struct {
		c      *kafkalocal.Cluster
		groups []string
	}{{pair.Source, srcGroups}, {pair.Target, []string{group}}} {
		adm, err := side.c.AdminClient()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if side.c.ACLsEnforced() {
			fence := kadm.NewACLs().Topics(names...).ResourcePatternType(kadm.ACLPatternLiteral).
				Deny("User:*").DenyHosts("*").Operations(kadm.OpWrite)
			if _, err := adm.DeleteACLs(ctx, fence); err != nil {
				errs = append(errs, fmt.Errorf("deleting fence ACLs on %s: %w", side.c.Name(), err))
			}
		}
		if res, err := adm.DeleteGroups(ctx, side.groups...); err != nil {
			errs = append(errs, fmt.Errorf("deleting groups on %s: %w", side.c.Name(), err))
		} else {
			for _, r := range res {
				if r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
					errs = append(errs, fmt.Errorf("deleting group %s on %s: %w", r.Group, side.c.Name(), r.Err))
				}
			}
		}
		if res, err := adm.DeleteTopics(ctx, names...); err != nil {
			errs = append(errs, fmt.Errorf("deleting topics on %s: %w", side.c.Name(), err))
		} else {
			for _, r := range res.Sorted() {
				if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
					errs = append(errs, fmt.Errorf("deleting topic %s on %s: %w", r.Topic, side.c.Name(), r.Err))
				}
			}
		}
		adm.Close()
	}
	return errors.Join(errs...)
}
