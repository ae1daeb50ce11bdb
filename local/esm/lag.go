package esm

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/offsets"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

// PartitionLag is how far a mapping's consumer group is behind on one
// partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	Committed int64 // the group's committed offset, -1 if none
	Start     int64 // log start offset
	End       int64 // log end offset (high watermark)
	Stable    int64 // last stable offset: End unless a transaction is open
	// Lag is End - Committed, or End - Start when nothing is committed
	// (every record still in the log is unconfirmed), never negative;
	// but 0 when the group has consumed the partition by the rule of
	// offsets.Consumed: a group that read every record has committed
	// less than End when a transaction marker or aborted records close
	// the partition.
	Lag int64
}

// Lags is the lag of every partition of a mapping's topics, sorted by
// topic and partition.
type Lags []PartitionLag

// Total is the sum of all partitions' lag; 0 means fully caught up.
func (l Lags) Total() int64 {
	var n int64
	for _, p := range l {
		n += p.Lag
	}
	return n
}

// String lists the partitions that lag, as "topic/partition=lag".
func (l Lags) String() string {
	var b strings.Builder
	for _, p := range l {
		if p.Lag == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s/%d=%d", p.Topic, p.Partition, p.Lag)
	}
	if b.Len() == 0 {
		return "no lag"
	}
	return b.String()
}

func (m *Mapping) adminClient() (*kadm.Client, error) {
	m.adminOnce.Do(func() {
		opts := append(m.cfg.connOptions(), m.cfg.ClientOptions...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			m.adminErr = fmt.Errorf("esm: mapping %s: building admin client: %w", m.cfg.UUID, err)
			return
		}
		m.admin, m.reader = kadm.NewClient(cl), peek.New(cl)
	})
	return m.admin, m.adminErr
}

// Lag reads, from the source cluster, the group's committed offsets and the
// log offsets of every partition of the mapping's topics, and, for a
// partition the group has not committed up to its end, whether it has
// consumed it all the same (offsets.Consumed). It works whether the
// mapping is enabled or not.
func (m *Mapping) Lag(ctx context.Context) (Lags, error) { return m.lag(ctx, nil) }

// lag is Lag; it asks offsets.Consumed about a partition only if
// settled(partition) (nil: always).
func (m *Mapping) lag(ctx context.Context, settled func(PartitionLag) bool) (Lags, error) {
	adm, err := m.adminClient()
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, m.cfg.Topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("esm: mapping %s: listing end offsets: %w", m.cfg.UUID, err)
	}
	starts, err := adm.ListStartOffsets(ctx, m.cfg.Topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("esm: mapping %s: listing start offsets: %w", m.cfg.UUID, err)
	}
	stables, err := adm.ListCommittedOffsets(ctx, m.cfg.Topics...) // read_committed: the last stable offsets
	if err == nil {
		err = stables.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("esm: mapping %s: listing last stable offsets: %w", m.cfg.UUID, err)
	}
	committed, err := adm.FetchOffsets(ctx, m.cfg.ConsumerGroupID)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("esm: mapping %s: fetching offsets of group %s: %w", m.cfg.UUID, m.cfg.ConsumerGroupID, err)
	}
	var out Lags
	ends.Each(func(e kadm.ListedOffset) {
		pl := PartitionLag{Topic: e.Topic, Partition: e.Partition, Committed: -1, End: e.Offset, Stable: e.Offset}
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok {
			pl.Start = s.Offset
		}
		if s, ok := stables.Lookup(e.Topic, e.Partition); ok {
			pl.Stable = s.Offset
		}
		base := pl.Start
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.At >= 0 {
			pl.Committed = c.At
			base = c.At
		}
		pl.Lag = max(pl.End-base, 0)
		out = append(out, pl)
	})
	for i := range out {
		pl := &out[i]
		if pl.Lag == 0 || (settled != nil && !settled(*pl)) {
			continue
		}
		done, err := offsets.Consumed(ctx, m.reader, offsets.SourcePartition{Topic: pl.Topic, Partition: pl.Partition,
			Start: pl.Start, End: pl.End, Stable: pl.Stable}, pl.End-pl.Lag)
		if err != nil {
			return nil, fmt.Errorf("esm: mapping %s: %w", m.cfg.UUID, err)
		}
		if done {
			pl.Lag = 0
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

// WaitCaughtUp polls Lag until the group has consumed every partition of
// the mapping's topics (total lag 0: committed up to the end offsets, or
// consumed by the rule of offsets.Consumed). On ctx expiry the error wraps
// ctx.Err() and names the partitions still behind.
func (m *Mapping) WaitCaughtUp(ctx context.Context) error {
	const every = 20 * time.Millisecond
	var (
		last    Lags
		lastErr error
	)
	// While a partition's committed offset or end still moves, the
	// group is still consuming it: only a settled one is worth the read
	// offsets.Consumed makes.
	settled := func(p PartitionLag) bool {
		i := sort.Search(len(last), func(i int) bool {
			return last[i].Topic > p.Topic || (last[i].Topic == p.Topic && last[i].Partition >= p.Partition)
		})
		return i < len(last) && last[i].Topic == p.Topic && last[i].Partition == p.Partition &&
			last[i].Committed == p.Committed && last[i].End == p.End
	}
	for {
		l, err := m.lag(ctx, settled)
		if err == nil && len(l) > 0 && l.Total() == 0 {
			return nil
		}
		if err == nil {
			last = l
		} else if ctx.Err() == nil {
			lastErr = err
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			detail := last.String()
			if last == nil && lastErr != nil {
				detail = lastErr.Error()
			}
			return fmt.Errorf("esm: mapping %s: group %s not caught up (%s): %w", m.cfg.UUID, m.cfg.ConsumerGroupID, detail, ctx.Err())
		case <-t.C:
		}
	}
}
