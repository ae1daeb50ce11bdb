package replicate

import (
	"fmt"
	"strings"
	"time"
)

// TargetWriteError is a transient failure to write to the target: the
// target was unavailable, timed out, or refused some records. The batch is
// failed so Lambda retries it whole; dedup on retry keeps the target free
// of duplicates.
type TargetWriteError struct {
	Failed int      // records not acknowledged
	Errors []string // distinct causes, at most a few
	Err    error    // the first cause
}

func (e *TargetWriteError) Error() string {
	return fmt.Sprintf("writing to target: %d record(s) not acknowledged: %s", e.Failed, strings.Join(e.Errors, "; "))
}

func (e *TargetWriteError) Unwrap() error { return e.Err }

// TargetReadError is a failure to read the target's end offsets or the
// provenance of its newest records, which dedup needs before writing.
type TargetReadError struct {
	Topic     string
	Partition int32 // -1 when the whole topic failed
	Err       error
}

func (e *TargetReadError) Error() string {
	if e.Partition < 0 {
		return fmt.Sprintf("reading target topic %s: %v", e.Topic, e.Err)
	}
	return fmt.Sprintf("reading target %s/%d: %v", e.Topic, e.Partition, e.Err)
}

func (e *TargetReadError) Unwrap() error { return e.Err }

// ForeignRecordError says the newest record in a target partition was not
// written by the replicator from the expected source partition, so where
// to resume cannot be proven. Something else writes to the target topic;
// an operator must look before replication continues.
type ForeignRecordError struct {
	Topic     string
	Partition int32
	Offset    int64  // the foreign record's target offset
	Reason    string // no provenance header, or provenance of another source
}

func (e *ForeignRecordError) Error() string {
	return fmt.Sprintf("target %s/%d@%d was not written by this replicator (%s); refusing to guess where to resume", e.Topic, e.Partition, e.Offset, e.Reason)
}

// RecordFailuresError fails a batch because records failed permanently and
// RECORD_ERROR_POLICY is fail-batch. Failures lists each failed record.
type RecordFailuresError struct {
	Failures []RecordFailure
}

// RecordFailure is one record that failed permanently.
type RecordFailure struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Reason    string `json:"reason"`
}

func (e *RecordFailuresError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d record(s) failed permanently (RECORD_ERROR_POLICY=fail-batch)", len(e.Failures))
	for i, f := range e.Failures {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failures)-5)
			break
		}
		fmt.Fprintf(&b, "; %s/%d@%d: %s", f.Topic, f.Partition, f.Offset, f.Reason)
	}
	return b.String()
}

// RecordTooLargeError is a record larger than TARGET_MAX_MESSAGE_BYTES.
type RecordTooLargeError struct {
	Size, Max int
}

func (e *RecordTooLargeError) Error() string {
	return fmt.Sprintf("record of about %d bytes exceeds the target's %d byte limit (TARGET_MAX_MESSAGE_BYTES)", e.Size, e.Max)
}

// OpenTransactionError fails a batch because a source record belongs to a
// transaction that was still open when the invocation had to end (the
// poller reads read_uncommitted, or the transaction began before the
// batch's records). Every record before it in its partition, and every
// other partition of the batch, was written; Lambda retries the batch, and
// the retry skips what was written by provenance and waits again.
type OpenTransactionError struct {
	Topic     string // the source topic
	Partition int32
	Offset    int64         // the first source record not yet written
	Waited    time.Duration // how long the invocation waited for the transaction
}

func (e *OpenTransactionError) Error() string {
	return fmt.Sprintf("source %s/%d@%d is in a transaction still open after waiting %s; the records before it were written and the batch will be retried",
		e.Topic, e.Partition, e.Offset, e.Waited.Round(time.Millisecond))
}

// SourceReadError is a failure to read the source partition's transaction
// state (see package txnstate), which the replicator needs before writing
// a record. The batch is failed so Lambda retries it.
type SourceReadError struct {
	Topic     string
	Partition int32
	Err       error
}

func (e *SourceReadError) Error() string {
	return fmt.Sprintf("reading the transaction state of source %s/%d: %v", e.Topic, e.Partition, e.Err)
}

func (e *SourceReadError) Unwrap() error { return e.Err }

// SourceRecordGoneError is a record the poller delivered that the source no
// longer holds (retention or compaction removed it since), where an
// aborted transaction may have covered it: whether a read_committed
// consumer would have read it cannot be told. It fails permanently, as a
// transform error does (see RECORD_ERROR_POLICY): with dead-letter it goes
// to the dead-letter topic, never to the target topic.
type SourceRecordGoneError struct{}

func (e *SourceRecordGoneError) Error() string {
	return "the source no longer holds this record and an aborted transaction may have covered it, so whether it was committed cannot be read"
}

// FenceError fails a batch whose writes to a source partition's target
// were refused because a newer invocation for the same source partition
// took the partition's transactional ID over (see
// Config.TransactionalIDPrefix): this invocation overlapped a newer one, as
// after a poller rebalance. What it wrote in the transaction is aborted, so
// the target holds none of it; the newer invocation writes the records.
// Other failures of the fence's transactions (the target unreachable) are
// *TargetWriteError.
type FenceError struct {
	Topic           string // the source topic
	Partition       int32
	TransactionalID string
	Op              string // "begin", "write", "commit" or "abort"
	Err             error
}

func (e *FenceError) Error() string {
	return fmt.Sprintf("source %s/%d: fenced by a newer invocation for the partition (transactional ID %s, at %s); this invocation's writes are aborted: %v",
		e.Topic, e.Partition, e.TransactionalID, e.Op, e.Err)
}

func (e *FenceError) Unwrap() error { return e.Err }
