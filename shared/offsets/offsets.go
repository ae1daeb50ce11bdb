// Package offsets translates consumer-group positions on the source cluster
// into the exactly corresponding positions on the target cluster, using the
// kmig-src provenance header that the replicator writes on every record.
//
// Translation is exact: the target offset returned for a committed source
// offset c is the offset of the first target record copied from a source
// offset ≥ c, so a consumer resuming there reads every record it had not yet
// read on the source, once. The package only reads; it never commits.
package offsets

import (
	"context"
	"errors"
	"fmt"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// Partition describes one partition on both sides.
type Partition struct {
	Topic     string // the source topic, as written in provenance
	Partition int32
	// SourceEnd is the source partition's end offset (high watermark).
	SourceEnd int64
	// TargetStart and TargetEnd bound the target partition (log start
	// offset and high watermark) on the target topic TargetTopic.
	TargetTopic string
	TargetStart int64
	TargetEnd   int64
}

// Method says how a target offset was found.
type Method string

const (
	// CaughtUp: the group had read everything on the source, so it
	// starts at the target end.
	CaughtUp Method = "caught-up"
	// Search: the group was behind, and the offset was found by binary
	// search on provenance.
	Search Method = "search"
)

// Result is a translated position.
type Result struct {
	Target int64
	Method Method
	// Probes is how many single records were read.
	Probes int
}

// Translate returns the target offset for committed source offset c.
//
// If c ≥ p.SourceEnd the group is caught up and the result is p.TargetEnd.
// Otherwise the result is the offset of the first record in
// [p.TargetStart, p.TargetEnd) whose provenance offset is ≥ c (p.TargetEnd
// when there is none), found by binary search reading O(log n) single
// records. It relies on provenance offsets increasing along the target
// partition, which the replicator guarantees (order kept, duplicates
// skipped). It stops with ctx's error as soon as ctx is done.
func Translate(ctx context.Context, r *peek.Reader, p Partition, c int64) (Result, error) {
	if c >= p.SourceEnd {
		return Result{Target: p.TargetEnd, Method: CaughtUp}, nil
	}
	return search(ctx, peekAt(r), p, c)
}

// at abstracts peek.Reader.At for tests.
type at func(ctx context.Context, topic string, partition int32, offset int64) (peekRecord, error)

type peekRecord struct {
	Offset int64
	Source provenance.Source
	Err    error // provenance error, if any
}

func peekAt(r *peek.Reader) at {
	return func(ctx context.Context, topic string, partition int32, offset int64) (peekRecord, error) {
		rec, _, err := r.At(ctx, topic, partition, offset)
		if err != nil {
			return peekRecord{}, err
		}
		src, perr := provenance.Of(rec)
		return peekRecord{Offset: rec.Offset, Source: src, Err: perr}, nil
	}
}

func search(ctx context.Context, read at, p Partition, c int64) (Result, error) {
	res := Result{Target: p.TargetEnd, Method: Search}
	lo, hi := p.TargetStart, p.TargetEnd
	// Invariant: the answer is in [lo, hi) or is res.Target (≥ hi).
	for lo < hi {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("translating %s/%d from source offset %d: %w", p.Topic, p.Partition, c, context.Cause(ctx))
		}
		mid := lo + (hi-lo)/2
		rec, err := read(ctx, p.TargetTopic, p.Partition, mid)
		res.Probes++
		if errors.Is(err, peek.ErrNoRecord) {
			hi = mid // no data record in [mid, end)
			continue
		}
		if err != nil {
			return res, fmt.Errorf("translating %s/%d from source offset %d: %w", p.Topic, p.Partition, c, err)
		}
		if rec.Offset >= p.TargetEnd {
			hi = mid
			continue
		}
		if rec.Err != nil {
			return res, &provenance.UnusableError{Topic: p.TargetTopic, Partition: p.Partition, Offset: rec.Offset, Err: rec.Err}
		}
		if rec.Source.Topic != p.Topic || rec.Source.Partition != p.Partition {
			return res, &provenance.UnusableError{Topic: p.TargetTopic, Partition: p.Partition, Offset: rec.Offset,
				Err: fmt.Errorf("provenance names %s, not %s/%d", rec.Source, p.Topic, p.Partition)}
		}
		if rec.Source.Offset >= c {
			// No data record lies in [mid, rec.Offset), so the answer
			// is rec.Offset or earlier than mid.
			res.Target = rec.Offset
			hi = mid
		} else {
			lo = rec.Offset + 1
		}
	}
	return res, nil
}

// SourcePartition bounds one source partition as a consumer sees it.
type SourcePartition struct {
	Topic     string
	Partition int32
	// Start is the log start offset, End the high watermark, and Stable
	// the last stable offset: the first offset of the oldest transaction
	// still open, or End when none is.
	Start, End, Stable int64
}

// Consumed reports whether a consumer whose committed offset is c has read
// every data record of p that can ever be read with read_committed.
//
// A partition written by transactional producers ends with a transaction
// marker, and aborted records leave offsets no consumer sees, so a consumer
// that read everything may have committed less than End: which offset it
// commits after the last record depends on the client. Consumed is true
// when c ≥ End, and otherwise exactly when no transaction is open
// (Stable == End) and no committed data record lies in [c, End). While a
// transaction is open its records may still commit, so the partition is not
// consumed unless c ≥ End. It reads at most one fetch's worth of records.
func Consumed(ctx context.Context, r *peek.Reader, p SourcePartition, c int64) (bool, error) {
	if c >= p.End {
		return true, nil
	}
	if p.Stable < p.End {
		return false, nil
	}
	rec, _, err := r.At(ctx, p.Topic, p.Partition, max(c, p.Start))
	switch {
	case errors.Is(err, peek.ErrNoRecord):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("reading %s/%d from offset %d: %w", p.Topic, p.Partition, c, err)
	}
	return rec.Offset >= p.End, nil
}
