package reconcile

import "fmt"

// ClusterError says a Kafka cluster could not be read or changed.
type ClusterError struct {
	Cluster string // "source" or "target"
	Op      string
	Err     error
}

func (e *ClusterError) Error() string {
	return fmt.Sprintf("%s cluster: %s: %v", e.Cluster, e.Op, e.Err)
}

func (e *ClusterError) Unwrap() error { return e.Err }

// LambdaError says a Lambda API call failed (after retrying
// TooManyRequestsException, and ResourceInUseException /
// ResourceConflictException for updates, until the run's deadline).
type LambdaError struct {
	Op  string
	Err error
}

func (e *LambdaError) Error() string { return fmt.Sprintf("lambda: %s: %v", e.Op, e.Err) }

func (e *LambdaError) Unwrap() error { return e.Err }

// TargetTopicsError says topicsync could not bring the target topics in
// sync; no mapping was created or changed in this run.
type TargetTopicsError struct {
	Err error
}

func (e *TargetTopicsError) Error() string { return "target topics: " + e.Err.Error() }

func (e *TargetTopicsError) Unwrap() error { return e.Err }

// TopicError is one topic's failure in a run; the other topics proceeded.
type TopicError struct {
	Topic  string
	Reason string
}

func (e *TopicError) Error() string { return fmt.Sprintf("topic %q: %s", e.Topic, e.Reason) }

// GapError is a partition whose mapping started past the partition's log
// start while the target lacks the records before: source offsets
// [From, To) of Topic/Partition were not replicated. It happens when
// Lambda noticed a partition added to the source before the reconciler
// seeded its commit, and started it from the end (AWS does not document
// where an existing group starts a partition it has no commit for). The
// records are still on the source; copying them needs a replay outside
// the mapping.
type GapError struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
}

func (e *GapError) Error() string {
	return fmt.Sprintf("replication gap on %s/%d: source offsets [%d, %d) were skipped by the mapping and are not on the target",
		e.Topic, e.Partition, e.From, e.To)
}
