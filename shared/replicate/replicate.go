// Package replicate is the replicator function's logic: it takes a raw
// Kafka event from a Lambda event source mapping and writes its records to
// the target cluster.
//
// Guarantees:
//   - Success is returned only after every record of the batch is either
//     acknowledged by the target (acks=all, idempotent producer), skipped
//     as already present, filtered by a transform, acknowledged on the
//     dead-letter topic, or skipped as part of an aborted source
//     transaction. Every outcome is counted.
//   - Whatever isolation level the poller reads with, only records a
//     read_committed consumer of the source reads reach the target: each
//     delivered record's transaction outcome is read from the source
//     (package txnstate) before it is written. A record of a transaction
//     still open is written only once it commits: the batch waits for it
//     within the invocation, and otherwise writes the records before it
//     and fails with an *OpenTransactionError so Lambda retries.
//   - Key, value (null kept apart from empty), headers in order, timestamp,
//     partition and order within a partition are preserved.
//   - With the provenance header on, a retried batch writes no duplicates:
//     records at or below the source offset named by the newest target
//     record's kmig-src header are skipped.
//   - With a transactional ID prefix (Config.TransactionalIDPrefix) this
//     holds even when invocations for the same source partition overlap
//     (a poller rebalance that leaves the old owner running): each batch
//     writes a partition in a transaction of the partition's own
//     transactional ID, which fences every older invocation (see
//     fence.go). Without it, overlapping invocations can duplicate records
//     and write them out of order.
//   - It never logs record contents or secrets.
package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/telemetry"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/txnstate"
)

// Dead-letter record headers, besides the original headers and kmig-src.
const (
	HeaderError        = "kmig-error"         // the failure, in words
	HeaderErrorType    = "kmig-error-type"    // transform | too-large | source-gone
	HeaderValueDropped = "kmig-value-dropped" // "true" when the value could not fit
)

// Replicator writes event batches to the target. It is safe for concurrent
// use; partitions are independent.
type Replicator struct {
	cfg Config

	// The target client, and the admin client and reader built on it.
	// Batches hold clMu for reading; replacing the client after its
	// producer stopped holds it for writing. Close loads the client
	// without the lock, so it can end a batch that waits on the target.
	clMu      sync.RWMutex
	cl        atomic.Pointer[kgo.Client]
	adm       *kadm.Client
	reader    *peek.Reader
	newClient func() (*kgo.Client, error)
	stopped   atomic.Bool // the producer stopped on a sequence error

	// txn reads the source's transaction state; nil only with
	// WithoutTransactionCheck.
	txn          *txnstate.Reader
	uncheckedTxn bool

	// fence holds each source partition's transactional producer when
	// cfg.TransactionalIDPrefix is set (see fence.go).
	newFenceClient func(transactionalID string) (*kgo.Client, error)
	fenceMu        sync.Mutex
	fence          map[tp]*fencedProducer

	log     *slog.Logger
	metrics io.Writer
	now     func() time.Time

	metricsMu sync.Mutex // one EMF line at a time

	mu    sync.Mutex
	tails map[tp]tail // what we know of each target partition's tail
	// pins holds, per target partition, the last source offset proven
	// written after the target acknowledged records behind a failed one;
	// later source offsets are rewritten even if the tail says otherwise.
	pins  map[tp]int64
	total telemetry.BatchMetrics
}

type tp struct {
	topic     string
	partition int32
}

// tail is what the replicator knows of a target partition: while its end
// offset is still end, every source offset ≤ done has been handled.
type tail struct {
	end  int64
	done int64
}

// Option configures a Replicator.
type Option func(*Replicator)

// WithClientFactory lets the replicator replace its target client after
// the idempotent producer stopped on a sequence error (see ProducerOptions).
// The replaced client is closed. Close the replicator, not the client, at
// shutdown.
func WithClientFactory(f func() (*kgo.Client, error)) Option {
	return func(r *Replicator) { r.newClient = f }
}

// WithoutTransactionCheck turns off reading the source's transaction
// state: every delivered record is written, records of aborted and open
// transactions included, if the poller delivers them. It exists to measure
// what the check costs; a deployed replicator never uses it.
func WithoutTransactionCheck() Option { return func(r *Replicator) { r.uncheckedTxn = true } }

// WithLogger sets the logger (default: telemetry.NewLogger()).
func WithLogger(l *slog.Logger) Option { return func(r *Replicator) { r.log = l } }

// WithMetricsWriter sets where EMF metric lines go (default os.Stdout; nil
// disables them).
func WithMetricsWriter(w io.Writer) Option { return func(r *Replicator) { r.metrics = w } }

// New returns a Replicator writing through cl, which must have been built
// with ProducerOptions(cfg), and reading transaction outcomes from the
// source through source (see NewSourceClient), which may be nil only with
// WithoutTransactionCheck. cl is shared and not closed by the Replicator;
// source is never closed by it.
//
// With WithClientFactory, a client whose idempotent producer was stopped
// (see ProducerOptions) is replaced before the next batch; without it, every
// later batch fails with the producer's error.
func New(cfg Config, cl, source *kgo.Client, opts ...Option) (*Replicator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Replicator{
		cfg: cfg, adm: kadm.NewClient(cl), reader: peek.New(cl),
		metrics: os.Stdout, now: time.Now, tails: map[tp]tail{}, pins: map[tp]int64{},
		fence: map[tp]*fencedProducer{},
	}
	r.cl.Store(cl)
	for _, o := range opts {
		o(r)
	}
	if r.log == nil {
		r.log = telemetry.NewLogger()
	}
	if r.cfg.TransactionalIDPrefix != "" && r.newFenceClient == nil {
		return nil, errors.New("replicate: a transactional ID prefix needs WithFenceClientFactory")
	}
	if !r.uncheckedTxn {
		if source == nil {
			return nil, errors.New("replicate: a source client is needed to read transaction outcomes")
		}
		r.txn = txnstate.NewReader(source)
	}
	return r, nil
}

// Close flushes what the target client has buffered, within ctx, and
// closes it; records still unacknowledged then fail, and a batch waiting
// on them returns.
func (r *Replicator) Close(ctx context.Context) error {
	cl := r.cl.Load()
	err := cl.Flush(ctx)
	cl.Close()
	r.closeFence()
	return err
}

// producerStopped reports whether err means the idempotent producer
// stopped: the target answered a sequence error that would otherwise make
// the client re-sequence and write later records before earlier ones.
func producerStopped(err error) bool {
	return errors.Is(err, kerr.OutOfOrderSequenceNumber) || errors.Is(err, kerr.UnknownProducerID) ||
		errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.InvalidProducerIDMapping)
}

// replaceStoppedClient swaps in a new target client if the producer
// stopped, once no batch uses the old one.
func (r *Replicator) replaceStoppedClient(ctx context.Context) error {
	if !r.stopped.Load() || r.newClient == nil {
		return nil
	}
	r.clMu.Lock()
	defer r.clMu.Unlock()
	if !r.stopped.Load() {
		return nil
	}
	cl, err := r.newClient()
	if err != nil {
		return &TargetWriteError{Errors: []string{"replacing the stopped target client: " + err.Error()}, Err: err}
	}
	r.log.WarnContext(ctx, "replaced the target client after its idempotent producer stopped on a sequence error")
	r.cl.Swap(cl).Close()
	r.adm, r.reader = kadm.NewClient(cl), peek.New(cl)
	r.stopped.Store(false)
	return nil
}

// Result summarises one batch. It is the function's response payload.
type Result struct {
	Records             int `json:"records"`
	RecordsWritten      int `json:"recordsWritten"`
	DuplicatesSkipped   int `json:"duplicatesSkipped"`
	RecordsFiltered     int `json:"recordsFiltered"`
	RecordsDeadLettered int `json:"recordsDeadLettered"`
	// RecordsAborted counts delivered records of aborted source
	// transactions, skipped.
	RecordsAborted int `json:"recordsAborted"`
}

// Totals returns the counts over every batch handled so far.
func (r *Replicator) Totals() telemetry.BatchMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.total
	t.Latencies = nil
	return t
}

// SourceStats counts the source fetches that read transaction outcomes
// (zero with WithoutTransactionCheck).
func (r *Replicator) SourceStats() txnstate.Stats {
	if r.txn == nil {
		return txnstate.Stats{}
	}
	return r.txn.Stats()
}

// Invoke implements lambda.Handler on the raw event bytes. Errors are
// returned unwrapped so Lambda's errorType is their Go type name.
func (r *Replicator) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	res, err := r.Handle(ctx, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

func (r *Replicator) record(ctx context.Context, m telemetry.BatchMetrics) {
	r.mu.Lock()
	r.total.Add(telemetry.BatchMetrics{RecordsWritten: m.RecordsWritten, BytesWritten: m.BytesWritten,
		DuplicatesSkipped: m.DuplicatesSkipped, RecordsFiltered: m.RecordsFiltered, RecordsDeadLettered: m.RecordsDeadLettered,
		RecordsAborted: m.RecordsAborted})
	r.mu.Unlock()
	if r.metrics == nil {
		return
	}
	name := lambdacontext.FunctionName
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.InvokedFunctionArn != "" && name == "" {
		name = lc.InvokedFunctionArn
	}
	r.metricsMu.Lock()
	err := m.WriteEMF(r.metrics, r.cfg.MetricsNamespace, name, r.now())
	r.metricsMu.Unlock()
	if err != nil {
		r.log.WarnContext(ctx, "writing metrics", "error", err)
	}
}
