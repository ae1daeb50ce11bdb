// Package reconcile is the reconciler: one run discovers the source topics
// the stack's patterns select and makes sure each is replicated, by the
// replicator function through one Kafka event source mapping per topic.
//
// One run (Reconciler.Run):
//  1. lists the source topics and selects them (shared/selection; the
//     dead-letter and details topics are reserved); a topic whose consumer
//     group ID Lambda would refuse is reported (*GroupIDError) and skipped;
//  2. lists the replicator's mappings (every page) and reads each one's
//     topic;
//  3. synchronises the selected topics on the target (topicsync.Apply:
//     create, add partitions, configs, renames); a topic topicsync refuses
//     is reported and skipped, the others proceed;
//  4. for each selected topic without a mapping: seeds the mapping's
//     consumer group where it has no commit (the log-start offsets, or for
//     AT_TIMESTAMP the first offsets at the timestamp), then creates the
//     mapping, tagged kmig:topic and kmig:stack, with StartingPosition
//     TRIM_HORIZON (Lambda starts from the group's commits);
//  5. verifies earlier mappings: Enabled with a member in its group counts
//     as polling; anything else is reported, a mapping still Creating after
//     Options.MappingStartTimeout as stuck;
//  6. follows partitions added on the source: the group's commits for
//     partitions that have none are seeded at log start. A Disabled
//     mapping's empty group is committed directly; an Enabled mapping is
//     disabled, awaited Disabled with an Empty group, seeded and enabled
//     again. A new partition the mapping already read past its log start
//     while the target lacks those records is reported as a *GapError;
//  7. reports mappings whose source topic no longer exists and mappings of
//     topics no longer selected; it never deletes a mapping or a target
//     topic.
//
// Guarantees: the reconciler never changes the source cluster except to
// commit offsets of its own mappings' groups for partitions that have no
// commit; it never enables a mapping it did not disable in the same run (a
// cutover disables mappings, and the reconciler leaves them Disabled); it
// never deletes anything. A steady-state run (nothing new) makes a fixed
// number of Kafka requests and one Lambda API call per 100 mappings, plus
// one read of the first target record of each partition whose target
// holds fewer records than its group's commit is past the source log
// start (partitions of transactional or filtered topics).
//
// Not ruled out here: a cutover that pauses a mapping while this run has
// it disabled to seed new partitions sees it Disabled and leaves it, and
// this run then enables it again. The cutover finds it before translating
// any offset (MappingResumedError) and rolls back.
//
// Lambda's TooManyRequestsException is retried with backoff until the
// run's context ends.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/clock"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// Options tune a run; the zero value uses the defaults.
type Options struct {
	// Parallelism bounds the topics worked on at once (default 16).
	Parallelism int
	// MappingStartTimeout is how long a mapping may read Creating before
	// it is reported as stuck (default 10 minutes).
	MappingStartTimeout time.Duration
	// PauseTimeout bounds pausing an Enabled mapping to seed new
	// partitions: until it reads Disabled and its group is Empty (AWS: up
	// to 90 s to stop polling). Default 3 minutes.
	PauseTimeout time.Duration
	// PollInterval is how often a paused mapping's state and group are
	// read (default 1 s).
	PollInterval time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Parallelism <= 0 {
		o.Parallelism = 16
	}
	if o.MappingStartTimeout <= 0 {
		o.MappingStartTimeout = 10 * time.Minute
	}
	if o.PauseTimeout <= 0 {
		o.PauseTimeout = 3 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Reconciler runs the reconciliation. Source and Target are clients
// allowed to describe topics and groups (source: also commit the mappings'
// groups; target: create topics, partitions and configs).
type Reconciler struct {
	Config         Config
	Source, Target *kgo.Client
	Lambda         LambdaAPI
	Options        Options
	// FunctionName is the EMF dimension of the run's metrics: the
	// reconciler's own function name.
	FunctionName string
	// Log receives the run's report line; nil discards.
	Log *slog.Logger
	// Metrics receives the EMF line; nil is os.Stdout.
	Metrics io.Writer
}

// Run does one reconciliation. The error is for a run that could not
// work at all (a cluster or the Lambda API unreachable, the target topics
// not synchronised, the renames refused) or, joined, per-topic failures
// (*TopicError); reported facts (skipped topics, gaps, deleted source
// topics, mappings not polling) are in the Report, not errors. The report
// is logged and its metrics written in every case.
func (r *Reconciler) Run(ctx context.Context) (rep Report, err error) {
	o := r.Options.withDefaults()
	start := o.Now()
	run := &run{r: r, o: o, rep: &rep, src: kadm.NewClient(r.Source), tgt: kadm.NewClient(r.Target)}
	defer func() {
		rep.Seconds = o.Now().Sub(start).Seconds()
		rep.sort()
		if err != nil {
			rep.Error = err.Error()
		}
		r.publish(ctx, rep, o.Now())
	}()
	return rep, run.do(ctx)
}

type run struct {
	r        *Reconciler
	o        Options
	src, tgt *kadm.Client

	// Offsets read once per run for the gap check.
	srcStarts, tgtStarts, tgtEnds kadm.ListedOffsets

	mu  sync.Mutex
	rep *Report
}

func (x *run) locked(f func(*Report)) {
	x.mu.Lock()
	defer x.mu.Unlock()
	f(x.rep)
}

// topicState is what one topic's work needs.
type topicState struct {
	topic      string
	partitions int32
	mapping    *Mapping
	// commits are the group's committed offsets (≥ 0) by partition.
	commits map[int32]int64
	group   kadm.DescribedGroup
}

func (x *run) do(ctx context.Context) error {
	cfg := x.r.Config
	if cfg.Selection == nil {
		return errors.New("reconcile: no topic selection configured")
	}
	// 1. Source topics, selected. Fresh metadata, not the client's cache:
	// asking for authorized operations makes kadm bypass it.
	fresh := kadm.WithAuthorizedOps(ctx)
	all, err := x.src.ListTopics(fresh)
	if err != nil {
		return &ClusterError{Cluster: "source", Op: "listing topics", Err: err}
	}
	parts := map[string]int32{}
	for _, td := range all {
		if td.Err == nil {
			parts[td.Topic] = int32(len(td.Partitions))
		}
	}
	selected := cfg.Selection.Select(slices.Collect(maps.Keys(parts)))
	x.rep.TopicsSelected = len(selected)
	var eligible []string
	for _, t := range selected {
		if err := CheckGroupID(t, cfg.GroupID(t)); err != nil {
			x.rep.Skipped = append(x.rep.Skipped, Problem{Topic: t, Reason: err.Error()})
			continue
		}
		eligible = append(eligible, t)
	}

	// 2. The replicator's mappings.
	ms, err := listMappings(ctx, x.r.Lambda, cfg.ReplicatorFunction)
	if err != nil {
		return &LambdaError{Op: "listing the event source mappings of " + cfg.ReplicatorFunction, Err: err}
	}
	byTopic := map[string][]Mapping{}
	for _, m := range ms {
		byTopic[m.Topic] = append(byTopic[m.Topic], m)
	}
	// 7. Mappings of deleted or unselected topics: reported only.
	for _, t := range slices.Sorted(maps.Keys(byTopic)) {
		if _, ok := parts[t]; !ok {
			x.rep.DeletedSourceTopics = append(x.rep.DeletedSourceTopics, t)
		} else if !cfg.Selection.Match(t) {
			x.rep.UnselectedMappings = append(x.rep.UnselectedMappings, t)
		}
	}

	// 3. Target topics.
	synced, err := x.syncTopics(ctx, eligible)
	if err != nil {
		return err
	}

	// 4-6. Per topic.
	states := make([]*topicState, 0, len(synced))
	var groups, described []string
	for _, t := range synced {
		st := &topicState{topic: t, partitions: parts[t], commits: map[int32]int64{}}
		live := 0
		for i := range byTopic[t] {
			m := byTopic[t][i]
			if m.State == StateDeleting {
				continue
			}
			live++
			if st.mapping == nil {
				st.mapping = &m
			}
		}
		if live > 1 {
			x.rep.Failed = append(x.rep.Failed, Problem{Topic: t, Reason: fmt.Sprintf("%d event source mappings read this topic; one is expected", live)})
		}
		if st.mapping != nil {
			described = append(described, cfg.GroupID(t))
		}
		groups = append(groups, cfg.GroupID(t))
		states = append(states, st)
	}
	if len(states) == 0 {
		return x.failures()
	}
	commits := x.fetchCommits(ctx, groups)
	var dgs kadm.DescribedGroups
	if len(described) > 0 {
		if dgs, err = x.src.DescribeGroups(ctx, described...); err != nil {
			return &ClusterError{Cluster: "source", Op: "describing the mappings' consumer groups", Err: err}
		}
	}
	for _, st := range states {
		g := cfg.GroupID(st.topic)
		fr, ok := commits[g]
		if ok && fr.Err != nil && !errors.Is(fr.Err, kerr.GroupIDNotFound) {
			return &ClusterError{Cluster: "source", Op: fmt.Sprintf("fetching the commits of group %q", g), Err: fr.Err}
		}
		for p, o := range fr.Fetched[st.topic] {
			if o.Err == nil && o.At >= 0 {
				st.commits[p] = o.At
			}
		}
		st.group = dgs[g]
	}

	tgtNames := make([]string, len(synced))
	for i, t := range synced {
		tgtNames[i] = cfg.Renames.Target(t)
	}
	if x.srcStarts, err = x.src.ListStartOffsets(ctx, synced...); err != nil {
		return &ClusterError{Cluster: "source", Op: "listing start offsets", Err: err}
	}
	if x.tgtStarts, err = x.tgt.ListStartOffsets(ctx, tgtNames...); err != nil {
		return &ClusterError{Cluster: "target", Op: "listing start offsets", Err: err}
	}
	if x.tgtEnds, err = x.tgt.ListEndOffsets(ctx, tgtNames...); err != nil {
		return &ClusterError{Cluster: "target", Op: "listing end offsets", Err: err}
	}

	sem := make(chan struct{}, x.o.Parallelism)
	var wg sync.WaitGroup
	for _, st := range states {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := x.topic(ctx, st); err != nil {
				x.locked(func(rep *Report) { rep.Failed = append(rep.Failed, Problem{Topic: st.topic, Reason: err.Error()}) })
			}
		}()
	}
	wg.Wait()
	return x.failures()
}

// failures is the run's per-topic failures as one error.
func (x *run) failures() error {
	var errs []error
	for _, f := range x.rep.Failed {
		errs = append(errs, &TopicError{Topic: f.Topic, Reason: f.Reason})
	}
	return errors.Join(errs...)
}

// syncTopics runs topicsync.Apply for topics and returns the topics in
// sync on the target. A topic topicsync refuses is reported and left out,
// and Apply runs again for the others.
func (x *run) syncTopics(ctx context.Context, topics []string) ([]string, error) {
	cfg := x.r.Config
	var targetOnly []string
	if cfg.CreateDeadLetterTopic {
		targetOnly = []string{cfg.DeadLetterTopic}
	}
	if len(topics) == 0 {
		return nil, nil
	}
	if err := cfg.Renames.Check(topics, transform.CheckOptions{TargetOnly: targetOnly}); err != nil {
		return nil, fmt.Errorf("TRANSFORMS: %w", err)
	}
	opts := topicsync.Options{Topics: topics, TargetOnlyTopics: targetOnly, ConfigOverrides: cfg.ConfigOverrides,
		ReplicationFactor: cfg.ReplicationFactor, CopyACLs: cfg.CopyACLs, Renames: cfg.Renames}
	for attempt := 0; ; attempt++ {
		res, err := topicsync.Apply(ctx, x.src, x.tgt, opts)
		for _, tp := range res.Planned.Topics {
			if !tp.TargetOnly && !tp.Create {
				x.rep.PartitionsAdded += int(res.PartitionsAdded[tp.TargetTopic])
			}
		}
		for _, t := range res.TopicsCreated {
			if !slices.Contains(targetOnly, t) {
				x.rep.TargetTopicsCreated++
			}
		}
		if err == nil {
			return opts.Topics, nil
		}
		refused := map[string]bool{}
		for _, tp := range res.Planned.Topics {
			if tp.Err != nil {
				refused[tp.Topic] = true
				x.rep.Skipped = append(x.rep.Skipped, Problem{Topic: tp.Topic, Reason: tp.Err.Error()})
			}
		}
		if len(refused) == 0 || attempt > 0 {
			return nil, &TargetTopicsError{Err: err}
		}
		opts.Topics = slices.DeleteFunc(slices.Clone(opts.Topics), func(t string) bool { return refused[t] })
		if len(opts.Topics) == 0 {
			return nil, nil
		}
	}
}

// topic does steps 4 to 6 for one topic.
func (x *run) topic(ctx context.Context, st *topicState) error {
	var missing []int32
	for p := range st.partitions {
		if _, ok := st.commits[p]; !ok {
			missing = append(missing, p)
		}
	}
	if st.mapping == nil {
		return x.create(ctx, st, missing)
	}
	m := st.mapping
	now := x.o.Now()
	switch {
	case m.State == StateEnabled && len(st.group.Members) > 0:
		x.locked(func(rep *Report) { rep.MappingsPolling++ })
	case m.State == StateEnabled:
		x.notPolling(st, "Enabled, but its consumer group has no member on the source", false)
	case m.State == StateCreating && now.Sub(m.LastModified) > x.o.MappingStartTimeout:
		x.notPolling(st, fmt.Sprintf("still Creating %s after it was created (over %s)", now.Sub(m.LastModified).Round(time.Second), x.o.MappingStartTimeout), true)
	default:
		x.notPolling(st, m.State, false)
	}
	if len(missing) == 0 {
		return x.checkGaps(ctx, st)
	}
	switch m.State {
	case StateDisabled:
		if err := x.seedIdle(ctx, st, missing); err != nil {
			return err
		}
		return x.checkGaps(ctx, st)
	case StateEnabled:
		return x.pauseSeedResume(ctx, st, missing)
	}
	x.locked(func(rep *Report) {
		rep.Pending = append(rep.Pending, Problem{Topic: st.topic, Reason: fmt.Sprintf(
			"partitions %v have no commit in group %q; the mapping reads %s, they are seeded on a later run", missing, x.r.Config.GroupID(st.topic), m.State)})
	})
	return nil
}

func (x *run) notPolling(st *topicState, reason string, stuck bool) {
	x.locked(func(rep *Report) {
		rep.MappingsNotPolling = append(rep.MappingsNotPolling, MappingStatus{Topic: st.topic, UUID: st.mapping.UUID, State: st.mapping.State, Reason: reason, Stuck: stuck})
	})
}

// create seeds a new topic's group and creates its mapping (step 4).
func (x *run) create(ctx context.Context, st *topicState, missing []int32) error {
	cfg := x.r.Config
	if len(missing) > 0 {
		if err := x.seed(ctx, st, missing, cfg.StartingPosition == AtTimestamp); err != nil {
			return err
		}
	}
	var out *lambda.CreateEventSourceMappingOutput
	err := retry(ctx, throttled, func() error {
		var err error
		out, err = x.r.Lambda.CreateEventSourceMapping(ctx, cfg.MappingRequest(st.topic))
		return err
	})
	if err != nil {
		return &LambdaError{Op: fmt.Sprintf("creating the event source mapping of topic %q", st.topic), Err: err}
	}
	x.locked(func(rep *Report) { rep.MappingsCreated = append(rep.MappingsCreated, st.topic) })
	x.r.logger().DebugContext(ctx, "mapping created", "topic", st.topic, "uuid", aws.ToString(out.UUID))
	return nil
}

// seed commits, for partitions of st's topic, the log-start offsets (or
// with atTime the first offsets at the configured time) in the topic's
// group. The group must have no member: Kafka refuses a commit from
// outside into a group with active members.
func (x *run) seed(ctx context.Context, st *topicState, partitions []int32, atTime bool) error {
	cfg := x.r.Config
	var listed kadm.ListedOffsets
	var err error
	if atTime {
		listed, err = x.src.ListOffsetsAfterMilli(ctx, cfg.StartingTime.UnixMilli(), st.topic)
	} else {
		listed, err = x.src.ListStartOffsets(ctx, st.topic)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return &ClusterError{Cluster: "source", Op: fmt.Sprintf("listing the offsets of topic %q", st.topic), Err: err}
	}
	var os kadm.Offsets
	var seeded []PartitionOffset
	for _, p := range partitions {
		lo, ok := listed.Lookup(st.topic, p)
		if !ok || lo.Offset < 0 {
			return &ClusterError{Cluster: "source", Op: fmt.Sprintf("listing the offset of %s/%d", st.topic, p), Err: errors.New("no offset listed")}
		}
		os.Add(kadm.Offset{Topic: st.topic, Partition: p, At: lo.Offset, LeaderEpoch: -1})
		seeded = append(seeded, PartitionOffset{Topic: st.topic, Partition: p, Offset: lo.Offset})
	}
	g := cfg.GroupID(st.topic)
	resp, err := x.src.CommitOffsets(ctx, g, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return &ClusterError{Cluster: "source", Op: fmt.Sprintf("committing the start offsets of %q in group %q", st.topic, g), Err: err}
	}
	x.locked(func(rep *Report) { rep.PartitionsSeeded = append(rep.PartitionsSeeded, seeded...) })
	for _, s := range seeded {
		st.commits[s.Partition] = s.Offset
	}
	return nil
}

// seedIdle seeds the partitions of a Disabled mapping's topic that have
// no commit, in its group, which must be empty. The mapping stays
// Disabled.
func (x *run) seedIdle(ctx context.Context, st *topicState, missing []int32) error {
	if n := len(st.group.Members); n > 0 {
		return fmt.Errorf("group %q of the Disabled mapping %s still has %d member(s); its new partitions are seeded on a later run", x.r.Config.GroupID(st.topic), st.mapping.UUID, n)
	}
	return x.seed(ctx, st, missing, false)
}

// pauseSeedResume disables an Enabled mapping, waits until it reads
// Disabled and its group is Empty, commits the log-start offsets of the
// partitions that still have no commit, checks the new partitions the
// mapping read meanwhile for a gap, and enables the mapping again.
func (x *run) pauseSeedResume(ctx context.Context, st *topicState, missing []int32) error {
	m := st.mapping
	g := x.r.Config.GroupID(st.topic)
	pctx, cancel := context.WithTimeout(ctx, x.o.PauseTimeout)
	defer cancel()
	// Once an update may have reached the mapping (succeeded, or got no
	// answer), this run may have disabled it, so it is enabled again
	// whatever happens next; an update the API refused changed nothing.
	err := retry(pctx, Busy, func() error {
		_, err := x.r.Lambda.UpdateEventSourceMapping(pctx, &lambda.UpdateEventSourceMappingInput{UUID: aws.String(m.UUID), Enabled: aws.Bool(false)})
		return err
	})
	if notFound(err) {
		return nil // deleted meanwhile
	}
	work := func() error {
		if err != nil {
			return &LambdaError{Op: "disabling mapping " + m.UUID + " to seed new partitions", Err: err}
		}
		if err := x.waitIdle(pctx, m.UUID, g); err != nil {
			return err
		}
		fr, err := x.src.FetchOffsets(ctx, g)
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return &ClusterError{Cluster: "source", Op: fmt.Sprintf("fetching the commits of group %q", g), Err: err}
		}
		var still []int32
		for _, p := range missing {
			if o, ok := fr.Lookup(st.topic, p); ok && o.Err == nil && o.At >= 0 {
				st.commits[p] = o.At
				continue
			}
			still = append(still, p)
		}
		if len(still) > 0 {
			if err := x.seed(ctx, st, still, false); err != nil {
				return err
			}
		}
		return x.checkGaps(ctx, st)
	}
	werr := work()
	if err != nil && !maybeApplied(err) {
		return werr // the mapping was not disabled: nothing to enable
	}
	// Enable what this run disabled, within the run's own context (the
	// pause's deadline may have passed).
	rerr := retry(ctx, Busy, func() error {
		_, err := x.r.Lambda.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: aws.String(m.UUID), Enabled: aws.Bool(true)})
		return err
	})
	if rerr != nil && !notFound(rerr) {
		rerr = &LambdaError{Op: fmt.Sprintf("enabling mapping %s again after seeding (it is left Disabled: aws lambda update-event-source-mapping --uuid %s --enabled)", m.UUID, m.UUID), Err: rerr}
	} else {
		rerr = nil
		x.locked(func(rep *Report) { rep.MappingsPaused = append(rep.MappingsPaused, st.topic) })
	}
	return errors.Join(werr, rerr)
}

// coordinatorTries is how many times fetchCommits asks for a group whose
// coordinator answered a retriable error.
const coordinatorTries = 5

// fetchCommits fetches the commits of groups. A group whose answer is a
// retriable error (a coordinator not yet available: a cluster creating
// __consumer_offsets on its first group, a coordinator moving or still
// loading) is asked again, with backoff, up to coordinatorTries times in
// all; its last answer is kept.
func (x *run) fetchCommits(ctx context.Context, groups []string) kadm.FetchOffsetsResponses {
	out := x.src.FetchManyOffsets(ctx, groups...)
	for n := 1; n < coordinatorTries; n++ {
		var again []string
		for _, g := range groups {
			if r, ok := out[g]; ok && r.Err != nil && kerr.IsRetriable(r.Err) {
				again = append(again, g)
			}
		}
		if len(again) == 0 || clock.System.Sleep(ctx, backoff(n)) != nil {
			break
		}
		maps.Copy(out, x.src.FetchManyOffsets(ctx, again...))
	}
	return out
}

// waitIdle waits until mapping uuid reads Disabled and group g has no
// member.
func (x *run) waitIdle(ctx context.Context, uuid, g string) error {
	state := ""
	for {
		var out *lambda.GetEventSourceMappingOutput
		err := retry(ctx, throttled, func() error {
			var err error
			out, err = x.r.Lambda.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: aws.String(uuid)})
			return err
		})
		if err != nil {
			return &LambdaError{Op: "reading mapping " + uuid + " (last seen " + state + ")", Err: err}
		}
		state = aws.ToString(out.State)
		if state == StateDisabled {
			dg, err := x.src.DescribeGroups(ctx, g)
			if err == nil && dg[g].Err == nil && len(dg[g].Members) == 0 {
				return nil
			}
			state = "Disabled, its group still has members"
		}
		if err := clock.System.Sleep(ctx, x.o.PollInterval); err != nil {
			return fmt.Errorf("mapping %s not Disabled with an empty group within %s (reads %s): %w", uuid, x.o.PauseTimeout, state, err)
		}
	}
}

// checkGaps reports each partition of st's topic whose group commit is
// past the source log start while the target partition, never truncated
// (log start 0), lacks the records from the source log start: empty, or
// its first record's kmig-src offset is past the source log start.
// Partitions whose target holds at least as many records as the source
// offsets the group committed are not read: they cannot lack any.
func (x *run) checkGaps(ctx context.Context, st *topicState) error {
	tgtTopic := x.r.Config.Renames.Target(st.topic)
	rd := peek.New(x.r.Target)
	for p := range st.partitions {
		c, ok := st.commits[p]
		ss, ok1 := x.srcStarts.Lookup(st.topic, p)
		ts, ok2 := x.tgtStarts.Lookup(tgtTopic, p)
		te, ok3 := x.tgtEnds.Lookup(tgtTopic, p)
		if !ok || !ok1 || !ok2 || !ok3 || ss.Err != nil || ts.Err != nil || te.Err != nil ||
			c <= ss.Offset || ts.Offset != 0 || te.Offset-ts.Offset >= c-ss.Offset {
			continue
		}
		gap := &GapError{Topic: st.topic, Partition: p, From: ss.Offset, To: c}
		rec, _, err := rd.At(ctx, tgtTopic, p, 0)
		switch {
		case errors.Is(err, peek.ErrNoRecord):
		case err != nil:
			return &ClusterError{Cluster: "target", Op: fmt.Sprintf("reading the first record of %s/%d", tgtTopic, p), Err: err}
		default:
			src, perr := provenance.Of(rec)
			if perr != nil || src.Offset <= ss.Offset {
				continue // held from the log start, or not the replicator's: no claim
			}
			gap.To = src.Offset
		}
		x.locked(func(rep *Report) { rep.Gaps = append(rep.Gaps, gap) })
		x.r.logger().ErrorContext(ctx, "replication gap", "error", gap.Error())
	}
	return nil
}

func (r *Reconciler) logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Reconciler) publish(ctx context.Context, rep Report, now time.Time) {
	w := r.Metrics
	if w == nil {
		w = os.Stdout
	}
	if err := rep.WriteEMF(w, r.Config.MetricsNamespace, r.FunctionName, now); err != nil {
		r.logger().WarnContext(ctx, "writing metrics", "error", err)
	}
	lvl := slog.LevelInfo
	if rep.Error != "" || len(rep.Gaps) > 0 {
		lvl = slog.LevelError
	} else if len(rep.Skipped)+len(rep.MappingsNotPolling)+len(rep.DeletedSourceTopics) > 0 {
		lvl = slog.LevelWarn
	}
	r.logger().Log(ctx, lvl, "reconcile", "report", rep.forLog(), "mappingsCreated", len(rep.MappingsCreated),
		"partitionsSeeded", len(rep.PartitionsSeeded), "mappingsNotPolling", len(rep.MappingsNotPolling), "gaps", len(rep.Gaps))
}

func sortedProblems(ps []Problem) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Topic < ps[j].Topic })
}
