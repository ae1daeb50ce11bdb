package provenance

import (
	"context"
	"errors"
	"fmt"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

// UnusableError says a target record has no parsable kmig-src header or
// names another source partition, so it cannot tell which source record it
// was copied from (for example because provenance was turned off in the
// replicator).
type UnusableError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *UnusableError) Error() string {
	return fmt.Sprintf("target %s/%d@%d has no usable kmig-src provenance: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

func (e *UnusableError) Unwrap() error { return e.Err }

// Tail is the newest data record of a target partition: its offset and the
// source record it was copied from.
type Tail struct {
	Offset int64
	Source Source
}

// ReadTail returns the newest data record in the target partition below
// end, and ok=false when the partition holds no data record. It is how the
// cutover proves the target holds every source record, and where the
// replicator resumes. A newest record without provenance is an
// *UnusableError.
func ReadTail(ctx context.Context, r *peek.Reader, topic string, partition int32, logStart, end int64) (Tail, bool, error) {
	if end <= logStart {
		return Tail{}, false, nil
	}
	rec, err := r.Last(ctx, topic, partition, logStart, end)
	if errors.Is(err, peek.ErrNoRecord) {
		return Tail{}, false, nil
	}
	if err != nil {
		return Tail{}, false, fmt.Errorf("reading tail of target %s/%d: %w", topic, partition, err)
	}
	src, err := Of(rec)
	if err != nil {
		return Tail{}, false, &UnusableError{Topic: topic, Partition: partition, Offset: rec.Offset, Err: err}
	}
	return Tail{Offset: rec.Offset, Source: src}, true, nil
}
