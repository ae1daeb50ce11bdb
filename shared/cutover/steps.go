package cutover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/offsets"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// ---- VerifySourceQuiet ----

func (h *Handler) verifySourceQuiet(ctx context.Context, st *State, first bool) (bool, error) {
	now := h.now()
	q := time.Duration(st.Config.QuietSeconds) * time.Second
	ends, err := h.endOffsets(ctx, h.src, "source", st.Config.Topics)
	if err != nil {
		return false, err
	}
	if first {
		st.Loop.Deadline = now.Add(3*q + time.Duration(st.Config.PollSeconds)*time.Second)
		st.Loop.Next = now.Add(q)
		return false, h.saveQuiet(ctx, st, ends)
	}
	var before map[string]int64
	if st.Run.Quiet == nil {
		return false, &ClusterError{Op: "reading the quiet window's start", Err: errors.New("no reference in the state")}
	}
	if err := h.getDetails(ctx, *st.Run.Quiet, &before); err != nil {
		return false, err
	}
	var moved []string
	for _, k := range sortedKeys(ends) {
		if ends[k] != before[k] {
			moved = append(moved, fmt.Sprintf("%s (%d→%d)", k, before[k], ends[k]))
		}
	}
	if len(moved) == 0 {
		st.Run.Quiet = nil
		return true, nil
	}
	if !now.Before(st.Loop.Deadline) {
		return false, &SourceNotQuietError{Partitions: moved}
	}
	st.Loop.Next = now.Add(q)
	return false, h.saveQuiet(ctx, st, ends)
}

// saveQuiet keeps the end offsets at the start of a quiet window.
func (h *Handler) saveQuiet(ctx context.Context, st *State, ends map[string]int64) error {
	ref, err := h.putDetails(ctx, st, "quiet", ends)
	if err != nil {
		return err
	}
	st.Run.Quiet = &ref
	return nil
}

func (h *Handler) endOffsets(ctx context.Context, adm *kadm.Client, side string, topics []string) (map[string]int64, error) {
	l, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, &ClusterError{Op: "listing " + side + " end offsets", Err: err}
	}
	out := map[string]int64{}
	l.Each(func(o kadm.ListedOffset) { out[tp(o.Topic, o.Partition)] = o.Offset })
	return out, nil
}

// ---- WaitForDrain ----

// PartitionReport describes one migrated partition on both clusters.
type PartitionReport struct {
	// Topic is the source topic, TargetTopic its name on the target
	// (the same unless the replicator renames it).
	Topic       string `json:"topic"`
	TargetTopic string `json:"targetTopic"`
	Partition   int32  `json:"partition"`
	SourceStart int64  `json:"sourceStart"`
	SourceEnd   int64  `json:"sourceEnd"`
	// SourceLast is the offset of the newest data record on the source,
	// -1 if none.
	SourceLast  int64 `json:"sourceLast"`
	TargetStart int64 `json:"targetStart"`
	TargetEnd   int64 `json:"targetEnd"`
	// TargetTailSource is the source offset named by the provenance of
	// the newest target record, -1 if the target partition is empty.
	TargetTailSource int64 `json:"targetTailSource"`
	// RecordsReplicated is the number of offsets in the target partition
	// (target end − target start). The replicator writes in transactions,
	// so it counts their commit markers (and any aborted copies) too: it
	// bounds the records copied from above.
	RecordsReplicated int64 `json:"recordsReplicated"`
	// Lag lists why the partition is not drained; empty when drained.
	Lag []LagReason `json:"lag,omitempty"`
}

func (h *Handler) waitForDrain(ctx context.Context, st *State, first bool) (bool, error) {
	now := h.now()
	if first {
		st.Loop.Deadline = now.Add(time.Duration(st.Config.DrainTimeoutSeconds) * time.Second)
	}
	parts, err := h.drainStatus(ctx, st, !st.Config.AllowLaggingGroups)
	if err != nil {
		return false, err
	}
	var lagging []string
	for _, p := range parts {
		for _, l := range p.Lag {
			lagging = append(lagging, tp(p.Topic, p.Partition)+": "+l.String())
		}
	}
	timedOut := !now.Before(st.Loop.Deadline)
	if len(lagging) == 0 || timedOut {
		// The partitions go to the report, or to the operator who reads
		// why the drain timed out.
		if err := h.saveDrain(ctx, st, parts); err != nil {
			return false, err
		}
	}
	if len(lagging) == 0 {
		return true, nil
	}
	if !st.Config.AllowLaggingGroups {
		// A listed group that lags with no members on the source will
		// never catch up: refuse now rather than at the deadline.
		if err := h.idleLaggingGroup(ctx, st, parts); err != nil {
			return false, err
		}
	}
	if timedOut {
		return false, &DrainTimeoutError{Lagging: lagging}
	}
	return false, nil
}

// saveDrain puts the partitions' drain reports in the details topic and
// their summary in the state.
func (h *Handler) saveDrain(ctx context.Context, st *State, parts []PartitionReport) error {
	ref, err := h.putDetails(ctx, st, "partitions", parts)
	if err != nil {
		return err
	}
	sum := &DrainSummary{Partitions: len(parts), Details: ref}
	for _, p := range parts {
		sum.RecordsReplicated += p.RecordsReplicated
		if len(p.Lag) > 0 {
			sum.Lagging++
		}
	}
	st.Run.Drain = sum
	return nil
}

func (h *Handler) idleLaggingGroup(ctx context.Context, st *State, parts []PartitionReport) error {
	for _, g := range st.Config.Groups {
		var behind []string
		for _, p := range parts {
			for _, l := range p.Lag {
				if l.Kind == LagGroup && l.Group == g {
					behind = append(behind, fmt.Sprintf("%s committed %d of %d", tp(p.Topic, p.Partition), l.At, l.Want))
				}
			}
		}
		if len(behind) == 0 {
			continue
		}
		active, err := h.activeGroups(ctx, h.src, "source", []string{g})
		if err != nil {
			return err
		}
		if _, ok := active[g]; !ok {
			return &LaggingGroupError{Group: g, Partitions: behind}
		}
	}
	return nil
}

// drainStatus reads both clusters and the replicator's groups and reports
// every partition with the reasons it is not drained.
func (h *Handler) drainStatus(ctx context.Context, st *State, appGroups bool) ([]PartitionReport, error) {
	topics := st.Config.Topics
	sStart, sEnd, err := h.bounds(ctx, h.src, "source", topics)
	if err != nil {
		return nil, err
	}
	tStart, tEnd, err := h.bounds(ctx, h.tgt, "target", st.Config.targetTopics())
	if err != nil {
		return nil, err
	}
	sStable, err := h.stableOffsets(ctx, topics)
	if err != nil {
		return nil, err
	}
	// Every group's commits, read once: the replicator's mappings' groups
	// and, when asked, the application groups.
	maps, err := h.runMappings(ctx, st)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range maps {
		names = append(names, m.ConsumerGroup)
	}
	if appGroups {
		names = append(names, st.Config.Groups...)
	}
	groups, err := h.fetchManyOffsets(ctx, h.src, "source", names)
	if err != nil {
		return nil, err
	}
	// The mappings that read each topic.
	readers := map[string][]Mapping{}
	for _, m := range maps {
		for _, t := range m.Topics {
			readers[t] = append(readers[t], m)
		}
	}
	keys := sortedKeys(sEnd)
	out := make([]PartitionReport, len(keys))
	err = forEach(ctx, len(keys), partitionParallelism, func(ctx context.Context, i int) error {
		k := keys[i]
		s := sEnd[k]
		target := st.Config.TargetTopic(s.Topic)
		tk := tp(target, s.Partition)
		p := PartitionReport{Topic: s.Topic, TargetTopic: target, Partition: s.Partition, SourceStart: sStart[k].Offset, SourceEnd: s.Offset,
			SourceLast: -1, TargetTailSource: -1, TargetStart: tStart[tk].Offset, TargetEnd: tEnd[tk].Offset}
		p.RecordsReplicated = p.TargetEnd - p.TargetStart
		src := offsets.SourcePartition{Topic: p.Topic, Partition: p.Partition, Start: p.SourceStart, End: p.SourceEnd, Stable: sStable[k]}
		var err error
		if p.Lag, err = h.partitionLag(ctx, st, &p, src, readers[p.Topic], groups, appGroups); err != nil {
			return err
		}
		out[i] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// partitionParallelism bounds how many partitions a step reads at once.
const partitionParallelism = 16

// partitionLag reads one partition's source tail and target tail
// provenance into p and returns why it is not drained (nothing when it
// is), given the mappings that read its topic and every group's commits.
func (h *Handler) partitionLag(ctx context.Context, st *State, p *PartitionReport, src offsets.SourcePartition, readers []Mapping, groups map[string]kadm.OffsetResponses, appGroups bool) ([]LagReason, error) {
	var lag []LagReason
	if src.Stable < src.End {
		lag = append(lag, LagReason{Kind: LagOpenTransaction, At: src.Stable, Want: src.End})
	}
	if p.SourceEnd > p.SourceStart {
		rec, err := h.srcPk.Last(ctx, p.Topic, p.Partition, p.SourceStart, p.SourceEnd)
		switch {
		case errors.Is(err, peek.ErrNoRecord):
		case err != nil:
			return nil, &ClusterError{Op: "reading source tail of " + tp(p.Topic, p.Partition), Err: err}
		default:
			p.SourceLast = rec.Offset
		}
	}
	tail, ok, err := provenance.ReadTail(ctx, h.tgtPk, p.TargetTopic, p.Partition, p.TargetStart, p.TargetEnd)
	if err != nil {
		var np *provenance.UnusableError
		if errors.As(err, &np) {
			return nil, &ProvenanceMissingError{Detail: np.Error()}
		}
		return nil, &ClusterError{Op: "reading target tail", Err: err}
	}
	if ok {
		p.TargetTailSource = tail.Source.Offset
	}
	if p.SourceLast >= 0 && p.TargetTailSource < p.SourceLast {
		lag = append(lag, LagReason{Kind: LagTargetBehind, At: p.TargetTailSource, Want: p.SourceLast})
	}
	for _, m := range readers {
		c, has := committed(groups[m.ConsumerGroup], p.Topic, p.Partition)
		done := p.SourceLast < 0 && src.Stable == src.End // no data record to read
		if has {
			if done, err = h.consumed(ctx, src, c); err != nil {
				return nil, err
			}
		}
		if !done {
			at := c
			if !has {
				at = -1
			}
			lag = append(lag, LagReason{Kind: LagReplicatorGroup, Group: m.ConsumerGroup, At: at, Want: p.SourceEnd})
		}
	}
	if !appGroups {
		return lag, nil
	}
	for _, g := range st.Config.Groups {
		c, has := committed(groups[g], p.Topic, p.Partition)
		if !has {
			continue
		}
		if done, err := h.consumed(ctx, src, c); err != nil {
			return nil, err
		} else if !done {
			lag = append(lag, LagReason{Kind: LagGroup, Group: g, At: c, Want: p.SourceEnd})
		}
	}
	return lag, nil
}

// forEach calls f(ctx, i) for every i in [0, n), at most par at a time,
// and returns the first error. After an error it starts no further call
// and cancels the others' context.
func forEach(ctx context.Context, n, par int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, par)
	started := 0
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if started < n {
		return &ClusterError{Op: "reading the partitions", Err: context.Cause(ctx)}
	}
	return nil
}

// consumed reports whether a group committed at c has read every data
// record of the source partition (offsets.Consumed): transaction markers
// and aborted records after c do not count.
func (h *Handler) consumed(ctx context.Context, p offsets.SourcePartition, c int64) (bool, error) {
	done, err := offsets.Consumed(ctx, h.srcPk, p, c)
	if err != nil {
		return false, &ClusterError{Op: "reading the source after a committed offset", Err: err}
	}
	return done, nil
}

// stableOffsets returns each source partition's last stable offset, keyed
// topic/partition: the first offset of its oldest open transaction, or its
// end offset when none is open.
func (h *Handler) stableOffsets(ctx context.Context, topics []string) (map[string]int64, error) {
	l, err := h.src.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, &ClusterError{Op: "listing source last stable offsets", Err: err}
	}
	out := map[string]int64{}
	l.Each(func(o kadm.ListedOffset) { out[tp(o.Topic, o.Partition)] = o.Offset })
	return out, nil
}

func fmtCommit(c int64, has bool) string {
	if !has {
		return "nothing"
	}
	return fmt.Sprint(c)
}

func committed(o kadm.OffsetResponses, topic string, p int32) (int64, bool) {
	r, ok := o.Lookup(topic, p)
	if !ok || r.Err != nil || r.At < 0 {
		return 0, false
	}
	return r.At, true
}

// fetchManyOffsets fetches the commits of every group of groups (repeats
// are read once), groupBatch groups per request; a group that does not
// exist has none.
func (h *Handler) fetchManyOffsets(ctx context.Context, adm *kadm.Client, side string, groups []string) (map[string]kadm.OffsetResponses, error) {
	out := make(map[string]kadm.OffsetResponses, len(groups))
	var unique []string
	for _, g := range groups {
		if _, ok := out[g]; !ok {
			out[g] = nil
			unique = append(unique, g)
		}
	}
	for start := 0; start < len(unique); start += groupBatch {
		batch := unique[start:min(start+groupBatch, len(unique))]
		fetched := adm.FetchManyOffsets(ctx, batch...)
		for _, g := range batch {
			r, ok := fetched[g]
			switch {
			case !ok || errors.Is(r.Err, kerr.GroupIDNotFound):
				out[g] = kadm.OffsetResponses{}
			case r.Err != nil:
				return nil, &ClusterError{Op: "fetching " + side + " offsets of group " + g, Err: r.Err}
			default:
				out[g] = r.Fetched
			}
		}
	}
	return out, nil
}

func (h *Handler) fetchOffsets(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	o, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return kadm.OffsetResponses{}, nil
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

func (h *Handler) bounds(ctx context.Context, adm *kadm.Client, side string, topics []string) (map[string]kadm.ListedOffset, map[string]kadm.ListedOffset, error) {
	s, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = s.Error()
	}
	if err != nil {
		return nil, nil, &ClusterError{Op: "listing " + side + " start offsets", Err: err}
	}
	e, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = e.Error()
	}
	if err != nil {
		return nil, nil, &ClusterError{Op: "listing " + side + " end offsets", Err: err}
	}
	start, end := map[string]kadm.ListedOffset{}, map[string]kadm.ListedOffset{}
	s.Each(func(o kadm.ListedOffset) { start[tp(o.Topic, o.Partition)] = o })
	e.Each(func(o kadm.ListedOffset) { end[tp(o.Topic, o.Partition)] = o })
	return start, end, nil
}

// ---- WaitForConsumersGone ----

func (h *Handler) waitForConsumersGone(ctx context.Context, st *State, first bool) (bool, error) {
	now := h.now()
	if first {
		st.Loop.Deadline = now.Add(time.Duration(st.Config.ConsumersTimeoutSeconds) * time.Second)
	}
	active, err := h.activeGroups(ctx, h.src, "source", st.Config.Groups)
	if err != nil {
		return false, err
	}
	if len(active) == 0 {
		return true, nil
	}
	if !now.Before(st.Loop.Deadline) {
		var gs []string
		for _, g := range sortedKeys(active) {
			gs = append(gs, fmt.Sprintf("%s (%s)", g, active[g]))
		}
		return false, &ConsumersActiveError{Groups: gs}
	}
	return false, nil
}

// activeGroups returns groups that have members, with "state, n members".
func (h *Handler) activeGroups(ctx context.Context, adm *kadm.Client, side string, groups []string) (map[string]string, error) {
	d, err := adm.DescribeGroups(ctx, groups...)
	if err != nil {
		return nil, &ClusterError{Op: "describing " + side + " groups", Err: err}
	}
	out := map[string]string{}
	for _, g := range groups {
		dg, ok := d[g]
		if !ok || errors.Is(dg.Err, kerr.GroupIDNotFound) {
			continue
		}
		if dg.Err != nil {
			return nil, &ClusterError{Op: "describing " + side + " group " + g, Err: dg.Err}
		}
		if len(dg.Members) > 0 || (dg.State != "Empty" && dg.State != "Dead" && dg.State != "") {
			out[g] = fmt.Sprintf("%s, %d members", dg.State, len(dg.Members))
		}
	}
	return out, nil
}
