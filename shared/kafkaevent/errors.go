package kafkaevent

import (
	"errors"
	"fmt"
)

// The kinds of malformed event. Each is wrapped in a *MalformedEventError;
// test with errors.Is.
//
// Decode finds a fault before returning any record. DecodeEach and
// DecodeEachInPlace hand out a chunk only once all its records are valid,
// but a fault further on is found after the earlier chunks were handed
// out, so a handler that writes chunks as they come (the replicator does)
// may already have written the records before the fault when the error is
// returned. The invocation still fails with the *MalformedEventError, so
// Lambda keeps the batch (nothing is lost) and retries it whole; the retry
// must skip the records already written (the replicator does, by
// provenance) and fails again at the same record.
var (
	ErrSyntax        = errors.New("event is not valid JSON")
	ErrMissingField  = errors.New("required field missing")
	ErrBadField      = errors.New("field has a bad value")
	ErrBadBase64     = errors.New("key or value is not valid base64")
	ErrKeyMismatch   = errors.New("record topic/partition does not match its records key")
	ErrOffsetOrder   = errors.New("offsets are not strictly increasing within a partition")
	ErrEmptyBatch    = errors.New("event holds no records")
	ErrUnknownSource = errors.New("eventSource is neither aws:kafka nor SelfManagedKafka")
)

// MalformedEventError reports why an event could not be decoded, and where.
// Its Go type name is the Lambda errorType callers see.
type MalformedEventError struct {
	Kind   error  // one of the Err* sentinels above
	Key    string // the records key ("topic-partition"), if known
	Index  int    // index of the record within that key's list, or -1
	Field  string // the JSON field involved, if any
	Pos    int    // byte offset in the event where decoding stopped
	Detail string // extra detail, never record contents
}

func (e *MalformedEventError) Error() string {
	s := "malformed Kafka event: " + e.Kind.Error()
	if e.Key != "" {
		s += fmt.Sprintf(" (records[%q]", e.Key)
		if e.Index >= 0 {
			s += fmt.Sprintf("[%d]", e.Index)
		}
		s += ")"
	}
	if e.Field != "" {
		s += " field " + e.Field
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s + fmt.Sprintf(" at byte %d", e.Pos)
}

func (e *MalformedEventError) Unwrap() error { return e.Kind }
