package cutover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/offsets"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// Group statuses in GroupReport.Status.
const (
	GroupTranslated     = "translated"      // offsets committed on the target
	GroupWouldTranslate = "would-translate" // dry run: offsets that would be committed
	GroupNoCommit       = "no-commit"       // nothing committed on the source: left alone
	GroupRefused        = "refused"         // dry run: the real run would refuse it (see Note)
)

// GroupReport is one application group's translation.
type GroupReport struct {
	Group       string           `json:"group"`
	Status      string           `json:"status"`
	TargetState string           `json:"targetState,omitempty"`
	Note        string           `json:"note,omitempty"`
	Partitions  []GroupPartition `json:"partitions,omitempty"`
	// Verified is set by VerifyTarget once the group has members on the
	// target and committed past the translated point.
	Verified bool `json:"verified,omitempty"`
}

// GroupPartition is one partition's source offset → target offset.
type GroupPartition struct {
	// Topic is the source topic, TargetTopic its name on the target,
	// where TargetOffset is committed.
	Topic       string `json:"topic"`
	TargetTopic string `json:"targetTopic"`
	Partition   int32  `json:"partition"`
	// SourceOffset is the committed source offset; -1 when the group has
	// no commit for this partition (then nothing is committed on the
	// target for it).
	SourceOffset int64 `json:"sourceOffset"`
	SourceEnd    int64 `json:"sourceEnd"`
	Lag          int64 `json:"lag"`
	// TargetOffset is the offset committed (or, in a dry run, that would
	// be committed) on the target; -1 when left alone.
	TargetOffset int64  `json:"targetOffset"`
	Method       string `json:"method"`
	Probes       int    `json:"probes,omitempty"`
}

// target is the topic the partition is committed on: TargetTopic, or Topic
// in a state written before TargetTopic existed.
func (p GroupPartition) target() string {
	if p.TargetTopic != "" {
		return p.TargetTopic
	}
	return p.Topic
}

// translateOffsets plans every group's translation, then commits each
// group's translated offsets on the target and reads them back, up to
// commitParallelism groups at a time.
//
// It runs under the step's deadline (Handle): the searches and fetches stop
// when it passes, the deadline is checked again right before each group's
// commit, and the commit itself carries it, so once the deadline has passed
// nothing more is committed and the step fails with *StepDeadlineError.
// Groups committed before that stay committed, as after any failure of this
// step.
//
// It is idempotent: the inputs it translates from (source commits and ends,
// target ends) no longer move once the source is fenced, replication is
// paused and the source consumers are gone, so a retry, or an earlier
// attempt whose answer was lost, commits the same offsets again.
func (h *Handler) translateOffsets(ctx context.Context, st *State) error {
	if err := h.mappingsStillPaused(ctx, st); err != nil {
		return err
	}
	groups, err := h.planGroups(ctx, st, false)
	if err != nil {
		return err
	}
	err = forEach(ctx, len(groups), commitParallelism, func(ctx context.Context, i int) error {
		g := &groups[i]
		if g.Status != GroupWouldTranslate {
			return nil
		}
		// The group must still be Empty at commit time.
		active, err := h.activeGroups(ctx, h.tgt, "target", []string{g.Group})
		if err != nil {
			return err
		}
		if s, ok := active[g.Group]; ok {
			return &GroupActiveOnTargetError{Group: g.Group, State: s}
		}
		if err := deadlineErr(ctx, fmt.Errorf("before committing group %s on the target", g.Group)); err != nil {
			return err
		}
		os := kadm.Offsets{}
		for _, p := range g.Partitions {
			if p.TargetOffset >= 0 {
				os.Add(kadm.Offset{Topic: p.target(), Partition: p.Partition, At: p.TargetOffset, LeaderEpoch: -1})
			}
		}
		resp, err := h.tgt.CommitOffsets(ctx, g.Group, os)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return &OffsetCommitError{Group: g.Group, Err: err}
		}
		back, err := h.fetchOffsets(ctx, h.tgt, g.Group)
		if err != nil {
			return &OffsetCommitError{Group: g.Group, Err: fmt.Errorf("reading back: %w", err)}
		}
		for _, p := range g.Partitions {
			if p.TargetOffset < 0 {
				continue
			}
			if c, ok := committed(back, p.target(), p.Partition); !ok || c != p.TargetOffset {
				return &OffsetCommitError{Group: g.Group, Err: fmt.Errorf("%s reads back %s, want %d", tp(p.target(), p.Partition), fmtCommit(c, ok), p.TargetOffset)}
			}
		}
		g.Status = GroupTranslated
		g.TargetState = "Empty"
		return nil
	})
	if err != nil {
		return err
	}
	return h.saveGroups(ctx, st, groups)
}

// commitParallelism bounds how many groups TranslateOffsets commits at
// once; each commit is one request to the group's coordinator.
const commitParallelism = 8

// saveGroups puts the groups' translations in the details topic and keeps
// them in the state without their partitions.
func (h *Handler) saveGroups(ctx context.Context, st *State, groups []GroupReport) error {
	ref, err := h.putDetails(ctx, st, "groups", groups)
	if err != nil {
		return err
	}
	st.Run.Groups, st.Run.GroupDetails = groupSummaries(groups), &ref
	return nil
}

// groupSummaries returns groups without their partitions.
func groupSummaries(groups []GroupReport) []GroupReport {
	out := make([]GroupReport, len(groups))
	for i, g := range groups {
		g.Partitions = nil
		out[i] = g
	}
	return out
}

// loadGroups returns the run's groups with their partitions, as
// TranslateOffsets saved them, and with the state's later changes
// (TargetState, Verified).
func (h *Handler) loadGroups(ctx context.Context, st *State) ([]GroupReport, error) {
	if st.Run.GroupDetails == nil {
		return st.Run.Groups, nil
	}
	var full []GroupReport
	if err := h.getDetails(ctx, *st.Run.GroupDetails, &full); err != nil {
		return nil, err
	}
	for i := range full {
		for _, s := range st.Run.Groups {
			if s.Group == full[i].Group {
				full[i].TargetState, full[i].Verified = s.TargetState, s.Verified
			}
		}
	}
	return full, nil
}

// planGroups computes every group's translation without committing. With
// dryRun false it returns the typed error a real run would fail with; with
// dryRun true it reports the refusal in the group's status instead.
//
// Groups often share a committed offset (every caught-up group commits the
// source end), so it reads each distinct (partition, committed offset) once:
// whether the offset consumed the partition, then each distinct starting
// point's target offset, partitionParallelism at a time. The result is what
// translating each group on its own gives.
func (h *Handler) planGroups(ctx context.Context, st *State, dryRun bool) ([]GroupReport, error) {
	topics := st.Config.Topics
	sStart, sEnd, err := h.bounds(ctx, h.src, "source", topics)
	if err != nil {
		return nil, err
	}
	sStable, err := h.stableOffsets(ctx, topics)
	if err != nil {
		return nil, err
	}
	tStart, tEnd, err := h.bounds(ctx, h.tgt, "target", st.Config.targetTopics())
	if err != nil {
		return nil, err
	}
	fetched, err := h.fetchManyOffsets(ctx, h.src, "source", st.Config.Groups)
	if err != nil {
		return nil, err
	}
	keys := sortedKeys(sEnd)
	srcPart := func(k string) offsets.SourcePartition {
		e := sEnd[k]
		return offsets.SourcePartition{Topic: e.Topic, Partition: e.Partition, Start: sStart[k].Offset, End: e.Offset, Stable: sStable[k]}
	}

	// Phase 1: whether each distinct commit consumed its partition.
	type commit struct {
		k string
		c int64
	}
	consumedAt := map[commit]bool{}
	for _, g := range st.Config.Groups {
		for _, k := range keys {
			if c, has := committed(fetched[g], sEnd[k].Topic, sEnd[k].Partition); has {
				consumedAt[commit{k, c}] = false
			}
		}
	}
	commits := slices.SortedFunc(maps.Keys(consumedAt), func(a, b commit) int {
		return cmp.Or(strings.Compare(a.k, b.k), cmp.Compare(a.c, b.c))
	})
	done := make([]bool, len(commits))
	err = forEach(ctx, len(commits), partitionParallelism, func(ctx context.Context, i int) error {
		var err error
		done[i], err = h.consumed(ctx, srcPart(commits[i].k), commits[i].c)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, c := range commits {
		consumedAt[c] = done[i]
	}
	// from is where the translation starts: a group that consumed the
	// partition (only transaction markers or aborted records follow its
	// commit) is caught up and starts at the source end.
	from := func(c commit) int64 {
		if consumedAt[c] {
			return sEnd[c.k].Offset
		}
		return c.c
	}

	// Refusals that need no translation, in the groups' order.
	active, err := h.activeGroups(ctx, h.tgt, "target", st.Config.Groups)
	if err != nil {
		return nil, err
	}
	if !dryRun {
		for _, g := range st.Config.Groups {
			var lagging []string
			for _, k := range keys {
				if c, has := committed(fetched[g], sEnd[k].Topic, sEnd[k].Partition); has && !consumedAt[commit{k, c}] && !st.Config.AllowLaggingGroups {
					lagging = append(lagging, fmt.Sprintf("%s committed %d of %d", k, c, sEnd[k].Offset))
				}
			}
			if len(lagging) > 0 {
				return nil, &LaggingGroupError{Group: g, Partitions: lagging}
			}
			if s, ok := active[g]; ok && hasCommit(fetched[g], sEnd) {
				return nil, &GroupActiveOnTargetError{Group: g, State: s}
			}
		}
	}

	// Phase 2: each distinct starting point's target offset.
	type start struct {
		k    string
		from int64
	}
	translated := map[start]offsets.Result{}
	for _, c := range commits {
		translated[start{c.k, from(c)}] = offsets.Result{}
	}
	starts := slices.SortedFunc(maps.Keys(translated), func(a, b start) int {
		return cmp.Or(strings.Compare(a.k, b.k), cmp.Compare(a.from, b.from))
	})
	results := make([]offsets.Result, len(starts))
	err = forEach(ctx, len(starts), partitionParallelism, func(ctx context.Context, i int) error {
		k, e := starts[i].k, sEnd[starts[i].k]
		target := st.Config.TargetTopic(e.Topic)
		tk := tp(target, e.Partition)
		res, err := offsets.Translate(ctx, h.tgtPk, offsets.Partition{
			Topic: e.Topic, Partition: e.Partition, SourceEnd: e.Offset,
			TargetTopic: target, TargetStart: tStart[tk].Offset, TargetEnd: tEnd[tk].Offset,
		}, starts[i].from)
		if err != nil {
			var np *provenance.UnusableError
			if errors.As(err, &np) {
				return &ProvenanceMissingError{Detail: np.Error()}
			}
			return &ClusterError{Op: "translating " + k + " from source offset " + fmt.Sprint(starts[i].from), Err: err}
		}
		results[i] = res
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, s := range starts {
		translated[s] = results[i]
	}

	out := make([]GroupReport, 0, len(st.Config.Groups))
	for _, g := range st.Config.Groups {
		gr := GroupReport{Group: g, Status: GroupWouldTranslate}
		lagging, any := false, false
		for _, k := range keys {
			e := sEnd[k]
			target := st.Config.TargetTopic(e.Topic)
			gp := GroupPartition{Topic: e.Topic, TargetTopic: target, Partition: e.Partition, SourceOffset: -1, SourceEnd: e.Offset, TargetOffset: -1, Method: GroupNoCommit}
			c, has := committed(fetched[g], e.Topic, e.Partition)
			if !has {
				gr.Partitions = append(gr.Partitions, gp)
				continue
			}
			any = true
			gp.SourceOffset = c
			if !consumedAt[commit{k, c}] {
				gp.Lag = e.Offset - c
				lagging = true
			}
			res := translated[start{k, from(commit{k, c})}]
			gp.TargetOffset, gp.Method, gp.Probes = res.Target, string(res.Method), res.Probes
			gr.Partitions = append(gr.Partitions, gp)
		}
		if !any {
			gr.Status = GroupNoCommit
			gr.Note = "no committed offsets on the source for the migrated topics; left alone"
			for i := range gr.Partitions {
				gr.Partitions[i].Method = GroupNoCommit
			}
			out = append(out, gr)
			continue
		}
		if lagging && !st.Config.AllowLaggingGroups {
			gr.Status = GroupRefused
			gr.Note = "lagging on the source; a real run refuses it unless allowLaggingGroups is set"
		}
		if s, ok := active[g]; ok {
			gr.Status = GroupRefused
			gr.Note = "active on the target (" + s + "); a real run refuses it"
		}
		out = append(out, gr)
	}
	return out, nil
}

// hasCommit reports whether o holds a commit on any partition of ends.
func hasCommit(o kadm.OffsetResponses, ends map[string]kadm.ListedOffset) bool {
	for _, e := range ends {
		if _, has := committed(o, e.Topic, e.Partition); has {
			return true
		}
	}
	return false
}

// ---- VerifyTarget ----

func (h *Handler) verifyTarget(ctx context.Context, st *State, first bool) (bool, error) {
	now := h.now()
	if first {
		st.Loop.Deadline = now.Add(time.Duration(st.Config.VerifySeconds) * time.Second)
	}
	groups, err := h.loadGroups(ctx, st)
	if err != nil {
		return false, err
	}
	var pending []string
	for i := range groups {
		g := &groups[i]
		if g.Status != GroupTranslated || g.Verified {
			continue
		}
		d, err := h.tgt.DescribeGroups(ctx, g.Group)
		if err != nil {
			return false, &ClusterError{Op: "describing target group " + g.Group, Err: err}
		}
		dg := d[g.Group]
		o, err := h.fetchOffsets(ctx, h.tgt, g.Group)
		if err != nil {
			return false, &ClusterError{Op: "fetching target offsets of " + g.Group, Err: err}
		}
		advanced, behind := 0, []string{}
		for _, p := range g.Partitions {
			if p.TargetOffset < 0 {
				continue
			}
			c, ok := committed(o, p.target(), p.Partition)
			switch {
			case ok && c > p.TargetOffset:
				advanced++
			case ok && c < p.TargetOffset:
				behind = append(behind, fmt.Sprintf("%s at %d < translated %d", tp(p.target(), p.Partition), c, p.TargetOffset))
			}
		}
		g.TargetState = dg.State
		switch {
		case len(behind) > 0:
			pending = append(pending, g.Group+": committed behind the translated point: "+fmt.Sprint(behind))
		case len(dg.Members) == 0:
			pending = append(pending, g.Group+": no members on the target")
		case advanced == 0:
			pending = append(pending, g.Group+": no partition committed past the translated point")
		default:
			g.Verified = true
		}
	}
	if len(pending) == 0 {
		// The details topic keeps the verified groups.
		return true, h.saveGroups(ctx, st, groups)
	}
	st.Run.Groups = groupSummaries(groups)
	sort.Strings(pending)
	if !now.Before(st.Loop.Deadline) {
		return false, &TargetNotVerifiedError{Groups: pending}
	}
	return false, nil
}

// mappingsStillPaused fails with *MappingResumedError when a mapping of
// the run's topics polls again after PauseReplication: the drain and the
// translation assume replication stands still.
func (h *Handler) mappingsStillPaused(ctx context.Context, st *State) error {
	maps, err := h.mappings(ctx, st.Config.Topics)
	if err != nil {
		return err
	}
	var resumed []string
	for _, m := range maps {
		if polls(m.State) {
			resumed = append(resumed, fmt.Sprintf("mapping %s of %s reads %s", m.UUID, strings.Join(m.Topics, ","), m.State))
		}
	}
	if len(resumed) > 0 {
		return &MappingResumedError{Mappings: resumed}
	}
	return nil
}
