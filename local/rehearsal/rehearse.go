package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// Options say what Rehearse migrates. The zero value is the demo's
// rehearsal: DemoTopics, AppGroup, 2000 records per partition, an ACL fence.
type Options struct {
	// Topics are seeded, replicated and cut over; the apps produce to and
	// consume Topics[0]. Empty means DemoTopics.
	Topics []kafkalocal.Topic
	// Group is the apps' consumer group; empty means AppGroup.
	Group string
	// PerPartition is how many records are seeded per partition; 0 means
	// 2000.
	PerPartition int
	// CreateTopics creates Topics on both clusters first, as the
	// superuser (a connected pair; an embedded pair starts with them).
	CreateTopics bool
	// Cutover holds cutover input fields that replace the rehearsal's
	// defaults (see CutoverOptions.Input), for example {"fence": "none"};
	// a nil value removes the field.
	Cutover map[string]any
	// Cleanup deletes the run's topics and consumer groups from both
	// clusters, and any fence ACL left naming its topics, when the
	// rehearsal passed: for shared, long-lived brokers. A failed run's are
	// left for a look.
	Cleanup bool
	// Log receives the replicator's and the cutover function's logs; nil
	// discards them.
	Log *slog.Logger
}

// Outcome is a rehearsal's verdict.
type Outcome struct {
	// Replicated says every seeded record reached the target exactly
	// once, in order, equal. The cutover runs only then.
	Replicated bool
	// Cutover is the cutover's outcome; nil when it did not run.
	Cutover *CutoverOutcome
	// Duration is the rehearsal's wall time.
	Duration time.Duration
}

// OK reports whether the rehearsal passed: replication exact, the cutover
// succeeded, and the apps' every number was read exactly once.
func (o *Outcome) OK() bool {
	c := o.Cutover
	return o.Replicated && c != nil && c.Succeeded() && c.Produced > 0 && c.Missing == 0 && c.Duplicated == 0
}

// Counts is the apps' tally as the RESULT lines print it.
func (o *Outcome) Counts() string {
	c := o.Cutover
	if c == nil {
		return "produced 0, consumed 0, missing 0, duplicated 0"
	}
	return fmt.Sprintf("produced %d, consumed %d, missing %d, duplicated %d", c.Produced, c.Produced-c.Missing, c.Missing, c.Duplicated)
}

func (o *Options) defaults() {
	if len(o.Topics) == 0 {
		o.Topics = DemoTopics
	}
	if o.Group == "" {
		o.Group = AppGroup
	}
	if o.PerPartition <= 0 {
		o.PerPartition = 2000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Rehearse runs the rehearsal on pair, writing its steps from 2 on to w:
// it seeds the topics on the source, replicates them through emulated
// event source mappings and the real replicator handler, compares source
// and target record for record, then runs the cutover through the real
// state machine while the numbered-message apps produce and consume. An
// error means the rehearsal could not be carried out; a difference or a
// failed cutover is in the outcome.
func Rehearse(ctx context.Context, w io.Writer, pair *kafkalocal.Pair, o Options) (*Outcome, error) {
	o.defaults()
	start := time.Now()
	out, err := rehearse(ctx, w, pair, o)
	if out != nil {
		out.Duration = time.Since(start)
	}
	if err == nil && o.Cleanup && out.OK() {
		if cerr := Cleanup(ctx, pair, o.Topics, o.Group); cerr != nil {
			fmt.Fprintf(w, "   cleanup: %v\n", cerr)
		}
	}
	return out, err
}

func rehearse(ctx context.Context, w io.Writer, pair *kafkalocal.Pair, o Options) (*Outcome, error) {
	names := make([]string, len(o.Topics))
	for i, t := range o.Topics {
		names[i] = t.Name
	}
	if o.CreateTopics {
		for _, c := range []*kafkalocal.Cluster{pair.Source, pair.Target} {
			if err := c.CreateTopics(ctx, o.Topics...); err != nil {
				return nil, err
			}
		}
	}
	fmt.Fprintf(w, "== 2. Seeding %d records per partition (null keys, null and empty values, headers, CreateTime)\n", o.PerPartition)
	if err := Seed(ctx, pair.Source, o.Topics, o.PerPartition); err != nil {
		return nil, err
	}
	fmt.Fprintln(w, "== 3. Replicating: one event source mapping per topic invoking the replicator handler")
	repl, err := StartReplication(ctx, pair, names, nil, o.Log)
	if err != nil {
		return nil, err
	}
	defer repl.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := repl.WaitCaughtUp(wctx); err != nil {
		return nil, err
	}
	tot := repl.Replicator.Totals()
	fmt.Fprintf(w, "   written %d, duplicates skipped %d, filtered %d, dead-lettered %d\n",
		tot.RecordsWritten, tot.DuplicatesSkipped, tot.RecordsFiltered, tot.RecordsDeadLettered)

	fmt.Fprintln(w, "== 4. Comparing source and target, partition by partition, by provenance")
	out := &Outcome{}
	if out.Replicated, err = CompareTopics(ctx, w, pair, names); err != nil || !out.Replicated {
		return out, err
	}
	fmt.Fprintln(w, "   every source record is on the target exactly once, in order, equal")

	if _, _, err := toolsReady(); err != nil {
		return out, fmt.Errorf("the cutover needs the local state machine tools: run `npm ci --prefix statemachine/local` (%w)", err)
	}
	fmt.Fprintf(w, "== 5. Cutover through statemachine/cutover.asl.json (aws-local-stepfunctions), apps producing to and consuming %q in group %q\n", names[0], o.Group)
	out.Cutover, err = RunCutover(ctx, w, pair, repl, CutoverOptions{
		Topics: names, AppPartitions: max(o.Topics[0].Partitions, 1), Group: o.Group, Input: o.Cutover, Log: o.Log,
	})
	if err != nil {
		return out, err
	}
	if out.Cutover.Succeeded() {
		fmt.Fprintf(w, "   cutover StopProducers→VerifyTarget %d ms, of which waiting %d ms\n", out.Cutover.CutoverMs, out.Cutover.WaitingMs)
	}
	return out, nil
}

// Cleanup deletes topics from both clusters, with the apps' group and the
// mappings' groups (MappingGroup) on the source and the apps' group on the
// target, and, where the source enforces ACLs, the cutover's fence ACLs
// (DENY WRITE for User:* on each topic) that a successful cutover leaves.
// It returns the first error and carries on past it.
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
		} else if err := res.Error(); err != nil {
			errs = append(errs, fmt.Errorf("deleting topics on %s: %w", side.c.Name(), err))
		}
		adm.Close()
	}
	return errors.Join(errs...)
}
