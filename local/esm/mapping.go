// Package esm emulates an AWS Lambda Kafka event source mapping (ESM) for
// tests and the local demo: it consumes topics as a consumer group, builds
// events.KafkaEvent JSON exactly as AWS does, invokes a lambda.Handler and
// commits offsets only after the invocation succeeded.
//
// Guarantees, matching AWS's documented behaviour:
//   - at most BatchSize records and at most 6 MB of event per invocation;
//   - a batch is sent when full or when its batching window expires;
//   - one partition's batches are invoked strictly in order, the next only
//     after the previous succeeded; a batch may span partitions;
//   - a failed batch is retried whole; offsets (last offset + 1 per
//     partition) are committed only after success;
//   - disabling finishes and commits the in-flight batch, then leaves the
//     group; enabling rejoins and resumes from the committed offsets;
//   - an update takes effect only after Config.Transition (AWS: up to
//     90 s): the mapping reads Disabling, still polling and invoking, or
//     Enabling, not yet polling, until then, and refuses further updates
//     while Creating, Enabling or Disabling (ErrInTransition).
//
// A new mapping reads Creating for Config.StartDelay, then polls. It
// resumes a consumer group with committed offsets from them, ignoring
// StartingPosition, as AWS documents; a partition without a commit in such
// a group (one added to the topic later, for example) starts per
// Config.UncommittedPartitionStart, which AWS does not document. Added
// partitions are noticed within about Config.MetadataRefresh.
//
// Batches hold the records the consumer delivers at the configured
// isolation level (read_uncommitted by default): see Isolation.
//
// Delivery is at least once: a batch whose commit fails (for example after
// losing the group) is delivered again. A batch that keeps failing under
// infinite retries holds its worker (and so its partitions) until the
// mapping is disabled, as on AWS; a record whose event alone exceeds 6 MB
// is such a batch (RecordTooLargeError), never dropped silently.
//
// Config.Overlap emulates what AWS does not rule out: a rebalance that
// hands a partition to a new poller while the old one still invokes the
// function with a batch of it (see Overlap).
//
// The payload passed to Handler.Invoke is reused after Invoke returns; a
// handler that keeps it must copy it. Disabling or closing waits for an
// in-flight invocation to return: a handler that never returns blocks it.
//
// This package must never be imported by a Lambda binary.
package esm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

// State is a mapping's state as reported by the Lambda API.
type State string

// Mapping states. Disabled is reported only once the mapping has stopped
// polling, committed its in-flight batch and left its consumer group, and
// Enabled only once it polls again.
const (
	StateCreating  State = "Creating"
	StateEnabling  State = "Enabling"
	StateEnabled   State = "Enabled"
	StateDisabling State = "Disabling"
	StateDisabled  State = "Disabled"
	StateDeleting  State = "Deleting"
)

// Processing results, as in the Lambda API's LastProcessingResult.
const (
	ResultNone    = "No records processed"
	ResultOK      = "OK"
	ResultProblem = "PROBLEM: Function call failed"
	ResultTooBig  = "PROBLEM: Record too large for the invocation payload"
)

// ErrDeleted is returned by operations on a mapping that was closed
// (deleted); the caller should drop its reference.
var ErrDeleted = errors.New("esm: event source mapping deleted")

// ErrInTransition is returned (wrapped) by SetEnabled while the mapping
// is Creating, Enabling or Disabling. An emulated Lambda API answers it as
// AWS answers an update of a mapping in transition, with
// ResourceInUseException; the caller tries again later.
var ErrInTransition = errors.New("esm: event source mapping is in transition")

// RecordTooLargeError reports a record whose event alone exceeds
// [MaxPayloadBytes], so it can never be delivered. The emulator treats it
// as a failing batch (retried per MaximumRetryAttempts, then discarded).
type RecordTooLargeError struct {
	Topic     string
	Partition int32
	Offset    int64
	Size      int // encoded event size with this record alone
	Limit     int
}

func (e *RecordTooLargeError) Error() string {
	return fmt.Sprintf("esm: record %s/%d/%d needs a %d byte event, over the %d byte invocation limit",
		e.Topic, e.Partition, e.Offset, e.Size, e.Limit)
}

// InvokeError is a failed invocation of a batch: the handler's error (or
// panic) and where the batch starts.
type InvokeError struct {
	FunctionName string
	Attempt      int // 1 for the first invocation
	Records      int
	Err          error
}

func (e *InvokeError) Error() string {
	return fmt.Sprintf("esm: invoking %s (attempt %d, %d records): %v", e.FunctionName, e.Attempt, e.Records, e.Err)
}

// Unwrap returns the handler's error.
func (e *InvokeError) Unwrap() error { return e.Err }

// Stats are cumulative counters since the mapping was created. EncodeTime
// is the emulator's own cost (cutting batches and writing the JSON);
// HandlerTime is time spent inside the handler; a benchmark can report
// them apart.
type Stats struct {
	Invocations       int64 // handler calls, including retries
	BatchesSucceeded  int64 // batches whose invocation succeeded
	RecordsDelivered  int64 // records in succeeded batches
	BytesDelivered    int64 // event bytes of succeeded batches
	Errors            int64 // failed attempts (handler errors and undeliverable records)
	Retries           int64 // re-invocations of a batch after a failure
	BatchesDiscarded  int64 // batches dropped after MaximumRetryAttempts
	RecordsDiscarded  int64 // records in discarded batches
	OversizedRecords  int64 // records that alone exceed MaxPayloadBytes
	CommitErrors      int64 // offset commits that failed (the batch will be redelivered)
	PollErrors        int64 // fetch errors reported by the consumer
	MaxBatchRecords   int64 // largest batch, in records
	MaxBatchBytes     int64 // largest event, in bytes
	EncodeTime        time.Duration
	HandlerTime       time.Duration
	LastBatchInvokeAt time.Time
}

type counters struct {
	invocations, batches, records, bytes, errors, retries atomic.Int64
	discardedBatches, discardedRecords, oversized         atomic.Int64
	commitErrors, pollErrors, maxRecords, maxBytes        atomic.Int64
	encodeNanos, handlerNanos, lastInvoke                 atomic.Int64
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// Mapping is one emulated event source mapping. All methods are safe for
// concurrent use.
type Mapping struct {
	cfg Config
	h   lambda.Handler

	mu           sync.Mutex
	state        State
	want         bool
	until        time.Time // end of the current transition (Enabling, Disabling)
	closing      bool
	lastModified time.Time
	lastResult   string
	lastErr      error
	stateCh      chan struct{} // closed and replaced on every state change

	wake chan struct{}
	done chan struct{}

	// sess is the current polling period, nil while not polling. Only
	// control sets it: once a session has started, and back to nil once
	// it has stopped.
	sess atomic.Pointer[session]

	adminOnce sync.Once
	admin     *kadm.Client
	reader    *peek.Reader // on the admin client, for offsets.Consumed
	adminErr  error

	// groupCommitted is set once the group is known to have a committed
	// offset: seen at an assignment or committed by the mapping (see
	// adjustStart).
	groupCommitted atomic.Bool

	st counters
}

// New validates cfg and starts a mapping that invokes h. It is Enabled
// (joining the group in the background) unless cfg.StartDisabled. It fails
// only on invalid configuration. Close it to stop it.
func New(cfg Config, h lambda.Handler) (*Mapping, error) {
	if h == nil {
		return nil, errors.New("esm: nil handler")
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	now := cfg.clock.Now()
	m := &Mapping{
		cfg:          cfg,
		h:            h,
		state:        StateCreating,
		want:         !cfg.StartDisabled,
		lastModified: now,
		until:        now.Add(cfg.StartDelay),
		lastResult:   ResultNone,
		stateCh:      make(chan struct{}),
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	go m.control()
	return m, nil
}

// Config returns the normalized configuration (defaults filled in).
func (m *Mapping) Config() Config {
	c := m.cfg
	c.Topics = append([]string(nil), c.Topics...)
	c.BootstrapServers = append([]string(nil), c.BootstrapServers...)
	c.ClientOptions = append([]kgo.Opt(nil), c.ClientOptions...)
	c.MaximumRetryAttempts = new(*m.cfg.MaximumRetryAttempts)
	return c
}

// UUID identifies the mapping.
func (m *Mapping) UUID() string { return m.cfg.UUID }

// FunctionName is the invoked function's name.
func (m *Mapping) FunctionName() string { return m.cfg.FunctionName }

// FunctionArn is the invoked function's ARN.
func (m *Mapping) FunctionArn() string { return m.cfg.FunctionArn }

// Topics are the consumed topics.
func (m *Mapping) Topics() []string { return append([]string(nil), m.cfg.Topics...) }

// ConsumerGroupID is the group the mapping consumes and commits as.
func (m *Mapping) ConsumerGroupID() string { return m.cfg.ConsumerGroupID }

// EventSourceArn is the MSK cluster ARN, empty for self-managed Kafka.
func (m *Mapping) EventSourceArn() string { return m.cfg.EventSourceArn }

// BootstrapServers are the source brokers.
func (m *Mapping) BootstrapServers() []string {
	return append([]string(nil), m.cfg.BootstrapServers...)
}

// BatchSize is the most records per invocation.
func (m *Mapping) BatchSize() int { return m.cfg.BatchSize }

// MaximumBatchingWindow is how long records wait for a batch to fill.
func (m *Mapping) MaximumBatchingWindow() time.Duration { return m.cfg.MaximumBatchingWindow }

// StartingPosition is where a group without commits starts.
func (m *Mapping) StartingPosition() StartingPosition { return m.cfg.StartingPosition }

// Isolation is the isolation level the mapping reads with.
func (m *Mapping) Isolation() Isolation { return m.cfg.Isolation }

// State reports the current state.
func (m *Mapping) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// LastModified is when the mapping was created or its state last changed.
func (m *Mapping) LastModified() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastModified
}

// LastProcessingResult is the outcome of the most recent attempt, in the
// Lambda API's words.
func (m *Mapping) LastProcessingResult() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastResult
}

// LastError is the most recent failure (invocation, commit, poll), or nil.
func (m *Mapping) LastError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

// Stats returns a snapshot of the counters.
func (m *Mapping) Stats() Stats {
	s := &m.st
	out := Stats{
		Invocations:      s.invocations.Load(),
		BatchesSucceeded: s.batches.Load(),
		RecordsDelivered: s.records.Load(),
		BytesDelivered:   s.bytes.Load(),
		Errors:           s.errors.Load(),
		Retries:          s.retries.Load(),
		BatchesDiscarded: s.discardedBatches.Load(),
		RecordsDiscarded: s.discardedRecords.Load(),
		OversizedRecords: s.oversized.Load(),
		CommitErrors:     s.commitErrors.Load(),
		PollErrors:       s.pollErrors.Load(),
		MaxBatchRecords:  s.maxRecords.Load(),
		MaxBatchBytes:    s.maxBytes.Load(),
		EncodeTime:       time.Duration(s.encodeNanos.Load()),
		HandlerTime:      time.Duration(s.handlerNanos.Load()),
	}
	if n := s.lastInvoke.Load(); n != 0 {
		out.LastBatchInvokeAt = time.Unix(0, n)
	}
	return out
}

// SetEnabled asks the mapping to start or stop, like
// UpdateEventSourceMapping's Enabled. It returns at once; the state reads
// Enabling/Disabling for at least Config.Transition and until the change
// is complete, then Enabled/Disabled (see WaitState). Asking for the state
// the mapping is in changes nothing. It fails on a deleted mapping
// (ErrDeleted) and on one that is Creating, Enabling or Disabling (an
// error wrapping ErrInTransition).
func (m *Mapping) SetEnabled(enabled bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return ErrDeleted
	}
	switch m.state {
	case StateCreating, StateEnabling, StateDisabling:
		return fmt.Errorf("mapping %s is %s: %w", m.cfg.UUID, m.state, ErrInTransition)
	}
	if enabled == m.want {
		return nil
	}
	m.want = enabled
	m.until = m.cfg.clock.Now().Add(m.cfg.Transition)
	if enabled {
		m.setStateLocked(StateEnabling)
	} else {
		m.setStateLocked(StateDisabling)
	}
	m.poke()
	return nil
}

// WaitState blocks until the mapping is in state s, ctx is done (the
// error wraps ctx.Err()), or the mapping is deleted (ErrDeleted).
func (m *Mapping) WaitState(ctx context.Context, s State) error {
	for {
		m.mu.Lock()
		cur, ch, closing := m.state, m.stateCh, m.closing
		m.mu.Unlock()
		if cur == s {
			return nil
		}
		if closing && s != StateDeleting {
			return ErrDeleted
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("esm: mapping %s waiting for state %s, still %s: %w", m.cfg.UUID, s, cur, ctx.Err())
		}
	}
}

// Close deletes the mapping: it stops as a disable does (the in-flight
// batch finishes and is committed, the group is left) and returns when
// everything has stopped. Safe to call more than once.
func (m *Mapping) Close() {
	m.startClose()
	<-m.done
	m.adminOnce.Do(func() { m.adminErr = ErrDeleted })
	if m.admin != nil {
		m.admin.Close()
	}
}

// Done is closed once the mapping has stopped after Close or a
// Registry deletion: its in-flight batch committed, its group left.
func (m *Mapping) Done() <-chan struct{} { return m.done }

// startClose makes the mapping read Deleting and starts stopping it; it
// reports whether this call started it (false: it was already closing).
func (m *Mapping) startClose() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return false
	}
	m.closing = true
	m.setStateLocked(StateDeleting)
	m.poke()
	return true
}

func (m *Mapping) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Mapping) setStateLocked(s State) {
	if m.state == s {
		return
	}
	m.cfg.Logger.Info("esm state", "uuid", m.cfg.UUID, "from", m.state, "to", s)
	m.state = s
	m.lastModified = m.cfg.clock.Now()
	close(m.stateCh)
	m.stateCh = make(chan struct{})
}

func (m *Mapping) recordErr(err error, result string) {
	m.mu.Lock()
	m.lastErr = err
	if result != "" {
		m.lastResult = result
	}
	m.mu.Unlock()
	m.cfg.Logger.Warn("esm failure", "uuid", m.cfg.UUID, "err", err)
}

// control reconciles the running session with the wanted state until the
// mapping is closed.
func (m *Mapping) control() {
	defer close(m.done)
	var (
		sess     *session
		retryAt  time.Time
		retryErr error
	)
	for {
		m.mu.Lock()
		want, closing := m.want && !m.closing, m.closing
		// During a transition the session stays as it is: still polling
		// while Disabling, not yet polling while Enabling. Deleting does
		// not wait.
		now := m.cfg.clock.Now()
		wait := m.until.Sub(now)
		m.mu.Unlock()
		if closing || wait < 0 {
			wait = 0
		}

		switch {
		case wait > 0:
		case want && sess == nil && !now.Before(retryAt):
			s, err := m.startSession()
			if err != nil {
				retryErr = err
				retryAt = now.Add(m.cfg.RetryBackoff)
				m.recordErr(err, "")
			} else {
				sess, retryErr = s, nil
				m.sess.Store(s)
			}
		case !want && sess != nil:
			sess.stop()
			sess = nil
			m.sess.Store(nil)
		}

		m.mu.Lock()
		switch {
		case m.closing, wait > 0:
		case m.want && sess != nil:
			m.setStateLocked(StateEnabled)
		case !m.want && sess == nil:
			m.setStateLocked(StateDisabled)
		}
		m.mu.Unlock()

		if closing && sess == nil {
			return
		}
		var (
			retry <-chan time.Time
			t     timer
		)
		switch {
		case wait > 0:
			t = m.cfg.clock.NewTimer(wait)
			retry = t.C()
		case retryErr != nil && sess == nil:
			t = m.cfg.clock.NewTimer(retryAt.Sub(m.cfg.clock.Now()))
			retry = t.C()
		}
		select {
		case <-m.wake:
		case <-retry:
		}
		if t != nil {
			t.Stop()
		}
	}
}
