// Package replicate is the replicator function's logic: it takes a raw
// Kafka event from a Lambda event source mapping and writes its records to
// the target cluster.
//
// Guarantees:
//   - Success is returned only after every record of the batch is either
//     acknowledged by the target (acks=all, idempotent producer), skipped
//     as already present, filtered by a transform, or acknowledged on the
//     dead-letter topic. Every outcome is counted.
//   - Key, value (null kept apart from empty), headers in order, timestamp,
//     partition and order within a partition are preserved.
//   - With the provenance header on, a retried batch writes no duplicates:
//     records at or below the source offset named by the newest target
//     record's kmig-src header are skipped.
//   - It never logs record contents or secrets.
package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaevent"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/telemetry"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// Dead-letter record headers, besides the original headers and kmig-src.
const (
	HeaderError        = "kmig-error"         // the failure, in words
	HeaderErrorType    = "kmig-error-type"    // transform | too-large
	HeaderValueDropped = "kmig-value-dropped" // "true" when the value could not fit
)

// Replicator writes event batches to the target. It is safe for concurrent
// use; partitions are independent.
type Replicator struct {
	cfg     Config
	cl      *kgo.Client
	adm     *kadm.Client
	reader  *peek.Reader
	log     *slog.Logger
	metrics io.Writer
	now     func() time.Time

	metricsMu sync.Mutex // one EMF line at a time

	mu    sync.Mutex
	tails map[tp]tail // what we know of each target partition's tail
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

// WithLogger sets the logger (default: telemetry.NewLogger()).
func WithLogger(l *slog.Logger) Option { return func(r *Replicator) { r.log = l } }

// WithMetricsWriter sets where EMF metric lines go (default os.Stdout; nil
// disables them).
func WithMetricsWriter(w io.Writer) Option { return func(r *Replicator) { r.metrics = w } }

// New returns a Replicator writing through cl, which must have been built
// with ProducerOptions(cfg). cl is shared and not closed by the Replicator.
func New(cfg Config, cl *kgo.Client, opts ...Option) (*Replicator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Replicator{
		cfg: cfg, cl: cl, adm: kadm.NewClient(cl), reader: peek.New(cl),
		metrics: os.Stdout, now: time.Now, tails: map[tp]tail{},
	}
	for _, o := range opts {
		o(r)
	}
	if r.log == nil {
		r.log = telemetry.NewLogger()
	}
	return r, nil
}

// Result summarises one batch. It is the function's response payload.
type Result struct {
	Records             int `json:"records"`
	RecordsWritten      int `json:"recordsWritten"`
	DuplicatesSkipped   int `json:"duplicatesSkipped"`
	RecordsFiltered     int `json:"recordsFiltered"`
	RecordsDeadLettered int `json:"recordsDeadLettered"`
}

// Totals returns the counts over every batch handled so far.
func (r *Replicator) Totals() telemetry.BatchMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.total
	t.Latencies = nil
	return t
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

// Handle decodes and writes one batch.
func (r *Replicator) Handle(ctx context.Context, payload []byte) (Result, error) {
	ev, err := kafkaevent.Decode(payload)
	if err != nil {
		r.log.ErrorContext(ctx, "rejecting malformed event", "error", err, "bytes", len(payload))
		return Result{}, err
	}
	var m telemetry.BatchMetrics
	res, err := r.write(ctx, ev, &m)
	r.record(ctx, m)
	if err != nil {
		r.log.ErrorContext(ctx, "batch failed; it will be retried", "error", err, "records", ev.Records, "partitions", len(ev.Partitions))
		return Result{}, err
	}
	r.log.DebugContext(ctx, "batch written", "records", res.Records, "written", res.RecordsWritten,
		"duplicatesSkipped", res.DuplicatesSkipped, "filtered", res.RecordsFiltered, "deadLettered", res.RecordsDeadLettered)
	return res, nil
}

func (r *Replicator) record(ctx context.Context, m telemetry.BatchMetrics) {
	r.mu.Lock()
	r.total.Add(telemetry.BatchMetrics{RecordsWritten: m.RecordsWritten, BytesWritten: m.BytesWritten,
		DuplicatesSkipped: m.DuplicatesSkipped, RecordsFiltered: m.RecordsFiltered, RecordsDeadLettered: m.RecordsDeadLettered})
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

// plan is one source partition's work in a batch.
type plan struct {
	src    *kafkaevent.Partition
	target tp
	from   int // index of the first record not yet handled
	write  []*kgo.Record
	srcOff []int64 // source offset of each record in write
	dead   []*kgo.Record
}

func (r *Replicator) write(ctx context.Context, ev *kafkaevent.Event, m *telemetry.BatchMetrics) (Result, error) {
	res := Result{Records: ev.Records}
	// Records an earlier, abandoned invocation left buffered must land (or
	// fail) before we read the target's tails, or dedup could miss them.
	if r.cl.BufferedProduceRecords() > 0 {
		if err := r.cl.Flush(ctx); err != nil {
			return res, &TargetWriteError{Failed: int(r.cl.BufferedProduceRecords()), Errors: []string{err.Error()}, Err: err}
		}
	}
	plans := make([]*plan, len(ev.Partitions))
	for i := range ev.Partitions {
		p := &ev.Partitions[i]
		plans[i] = &plan{src: p, target: tp{r.cfg.Transforms.TargetTopic(p.Topic), p.Partition}}
	}
	if r.cfg.Provenance {
		if err := telemetry.Trace(ctx, "dedup", func(ctx context.Context) error { return r.dedup(ctx, plans) }); err != nil {
			return res, err
		}
	}
	var failures []RecordFailure
	for _, pl := range plans {
		failures = append(failures, r.transform(pl, m)...)
	}
	if len(failures) > 0 && r.cfg.OnRecordError == FailBatch {
		return res, &RecordFailuresError{Failures: failures}
	}
	// Dead letters are acknowledged before any later record of their
	// partition is written, so a retry that skips by provenance can never
	// skip an unacknowledged dead letter.
	var dead []*kgo.Record
	for _, pl := range plans {
		dead = append(dead, pl.dead...)
	}
	if _, err := r.produce(ctx, "dead-letter", dead); err != nil {
		return res, err
	}
	m.RecordsDeadLettered = int64(len(dead))
	var all []*kgo.Record
	for _, pl := range plans {
		all = append(all, pl.write...)
	}
	var failed map[*kgo.Record]bool
	err := telemetry.Trace(ctx, "target-write", func(ctx context.Context) (err error) {
		failed, err = r.produce(ctx, "target", all)
		return err
	})
	r.remember(plans, failed)
	now := r.now()
	for _, rec := range all {
		if failed[rec] {
			continue
		}
		m.RecordsWritten++
		m.BytesWritten += int64(len(rec.Key) + len(rec.Value))
		if len(m.Latencies) < 1000 {
			m.Latencies = append(m.Latencies, now.Sub(rec.Timestamp))
		}
	}
	if err != nil {
		return res, err // acknowledged records stay counted as written
	}
	res.RecordsWritten = int(m.RecordsWritten)
	res.DuplicatesSkipped = int(m.DuplicatesSkipped)
	res.RecordsFiltered = int(m.RecordsFiltered)
	res.RecordsDeadLettered = int(m.RecordsDeadLettered)
	return res, nil
}

// dedup sets each plan's starting point past what the target already holds.
func (r *Replicator) dedup(ctx context.Context, plans []*plan) error {
	topics := map[string]bool{}
	for _, pl := range plans {
		topics[pl.target.topic] = true
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	ends, err := r.adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return &TargetReadError{Topic: names[0], Partition: -1, Err: err}
	}
	var starts kadm.ListedOffsets
	for _, pl := range plans {
		end, ok := ends.Lookup(pl.target.topic, pl.target.partition)
		if !ok {
			return &TargetReadError{Topic: pl.target.topic, Partition: pl.target.partition, Err: kerr.UnknownTopicOrPartition}
		}
		if end.Err != nil {
			return &TargetReadError{Topic: pl.target.topic, Partition: pl.target.partition, Err: end.Err}
		}
		r.mu.Lock()
		known, cached := r.tails[pl.target]
		r.mu.Unlock()
		done := int64(-1)
		switch {
		case cached && known.end == end.Offset:
			done = known.done
		case end.Offset > 0:
			if starts == nil {
				if starts, err = r.adm.ListStartOffsets(ctx, names...); err != nil {
					return &TargetReadError{Topic: names[0], Partition: -1, Err: err}
				}
			}
			logStart := int64(0)
			if s, ok := starts.Lookup(pl.target.topic, pl.target.partition); ok && s.Err == nil {
				logStart = s.Offset
			}
			if done, err = r.tailSource(ctx, pl, logStart, end.Offset); err != nil {
				return err
			}
		}
		r.mu.Lock()
		r.tails[pl.target] = tail{end: end.Offset, done: done}
		r.mu.Unlock()
		for pl.from < len(pl.src.Records) && pl.src.Records[pl.from].Offset <= done {
			pl.from++
		}
	}
	return nil
}

// tailSource reads the newest target record's provenance and returns the
// source offset it names.
func (r *Replicator) tailSource(ctx context.Context, pl *plan, logStart, end int64) (int64, error) {
	rec, err := r.reader.Last(ctx, pl.target.topic, pl.target.partition, logStart, end)
	if errors.Is(err, peek.ErrNoRecord) {
		return -1, nil
	}
	if err != nil {
		return 0, &TargetReadError{Topic: pl.target.topic, Partition: pl.target.partition, Err: err}
	}
	src, err := provenance.Of(rec)
	if err != nil {
		return 0, &ForeignRecordError{Topic: pl.target.topic, Partition: pl.target.partition, Offset: rec.Offset, Reason: err.Error()}
	}
	if src.Topic != pl.src.Topic || src.Partition != pl.src.Partition {
		return 0, &ForeignRecordError{Topic: pl.target.topic, Partition: pl.target.partition, Offset: rec.Offset,
			Reason: fmt.Sprintf("its provenance is %s, not partition %d of %s", src, pl.src.Partition, pl.src.Topic)}
	}
	return src.Offset, nil
}

// transform applies the chain to each record not yet handled, adding the
// provenance header, and sorts records into write, dead letters and
// filtered. It returns the permanent failures.
func (r *Replicator) transform(pl *plan, m *telemetry.BatchMetrics) []RecordFailure {
	recs := pl.src.Records
	m.DuplicatesSkipped += int64(pl.from)
	pl.write = make([]*kgo.Record, 0, len(recs)-pl.from)
	pl.srcOff = make([]int64, 0, len(recs)-pl.from)
	var failures []RecordFailure
	var prov []byte
	if r.cfg.Provenance {
		prov = make([]byte, 0, (len(pl.src.Topic)+24)*(len(recs)-pl.from))
	}
	for i := pl.from; i < len(recs); i++ {
		rec := &recs[i]
		src := provenance.Source{Topic: pl.src.Topic, Partition: pl.src.Partition, Offset: rec.Offset}
		orig := *rec
		orig.Headers = append([]kgo.RecordHeader(nil), rec.Headers...)
		verdict, err := r.cfg.Transforms.Apply(rec)
		if err == nil && verdict == transform.Keep && (rec.Topic != pl.target.topic || rec.Partition != pl.target.partition) {
			err = fmt.Errorf("a transform moved the record to %s/%d; only rename may change the topic and nothing may change the partition", rec.Topic, rec.Partition)
		}
		kind := "transform"
		if err == nil && verdict == transform.Keep {
			if r.cfg.Provenance {
				start := len(prov)
				prov = src.Append(prov)
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: provenance.HeaderKey, Value: prov[start:len(prov):len(prov)]})
			}
			if size := encodedSize(rec); size > r.maxBytes() {
				err, kind = &RecordTooLargeError{Size: size, Max: r.maxBytes()}, "too-large"
			}
		}
		switch {
		case err != nil:
			failures = append(failures, RecordFailure{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset, Reason: err.Error()})
			pl.dead = append(pl.dead, r.deadLetter(&orig, src, kind, err))
		case verdict == transform.Filter:
			m.RecordsFiltered++
		default:
			rec.Offset = 0 // the target assigns offsets; provenance keeps the source's
			pl.write = append(pl.write, rec)
			pl.srcOff = append(pl.srcOff, src.Offset)
		}
	}
	return failures
}

func (r *Replicator) maxBytes() int {
	if r.cfg.MaxMessageBytes > 0 {
		return r.cfg.MaxMessageBytes
	}
	return DefaultMaxMessageBytes
}

// encodedSize bounds from above the size of a record batch holding only
// rec, so a record that passes never fails in the client as too large.
func encodedSize(rec *kgo.Record) int {
	n := 61 + 5 + 1 + 10 + 5 + 5 + len(rec.Key) + 5 + len(rec.Value) + 5
	for _, h := range rec.Headers {
		n += 5 + len(h.Key) + 5 + len(h.Value)
	}
	return n
}

// deadLetter builds the dead-letter record for a failed source record: the
// original key, value and headers, plus kmig-src and the error.
func (r *Replicator) deadLetter(orig *kgo.Record, src provenance.Source, kind string, cause error) *kgo.Record {
	d := &kgo.Record{Topic: r.cfg.DeadLetterTopic, Partition: 0, Key: orig.Key, Value: orig.Value, Timestamp: orig.Timestamp}
	d.Headers = append(d.Headers, orig.Headers...)
	d.Headers = append(d.Headers,
		kgo.RecordHeader{Key: provenance.HeaderKey, Value: []byte(src.String())},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: HeaderErrorType, Value: []byte(kind)},
	)
	if encodedSize(d) > r.maxBytes() {
		d.Value = nil
		d.Headers = append(d.Headers, kgo.RecordHeader{Key: HeaderValueDropped, Value: []byte("true")})
	}
	return d
}

// produce writes recs and waits for every acknowledgement. On failure it
// returns a *TargetWriteError and the set of records not acknowledged.
func (r *Replicator) produce(ctx context.Context, what string, recs []*kgo.Record) (map[*kgo.Record]bool, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed = map[*kgo.Record]bool{}
		first  error
		causes = map[string]bool{}
	)
	wg.Add(len(recs))
	for _, rec := range recs {
		r.cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed[rec] = true
				if first == nil {
					first = err
				}
				if len(causes) < 5 {
					causes[err.Error()] = true
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if len(failed) == 0 {
		return nil, nil
	}
	e := &TargetWriteError{Failed: len(failed), Err: first}
	for c := range causes {
		e.Errors = append(e.Errors, what+": "+c)
	}
	return failed, e
}

// remember records each target partition's tail after a write, so the next
// batch in this warm container needs no read while the end offset proves
// nothing else wrote. After a failed write the tail is forgotten and re-read
// from the target — unless acknowledgements were not a prefix of the
// partition's records (the idempotent producer should never allow that):
// then the tail is pinned before the first unacknowledged record, so a
// retry rewrites from there. A duplicate is possible in that case; a loss
// is not.
func (r *Replicator) remember(plans []*plan, failed map[*kgo.Record]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pl := range plans {
		prev, known := r.tails[pl.target]
		if !known {
			continue
		}
		if len(failed) == 0 {
			t := tail{end: prev.end, done: prev.done}
			if n := len(pl.src.Records); n > pl.from {
				t.done = pl.src.Records[n-1].Offset
			}
			if n := len(pl.write); n > 0 {
				t.end = pl.write[n-1].Offset + 1
			}
			r.tails[pl.target] = t
			continue
		}
		delete(r.tails, pl.target)
		firstFail, lastAck := -1, -1
		for i, rec := range pl.write {
			if failed[rec] {
				if firstFail < 0 {
					firstFail = i
				}
			} else {
				lastAck = i
			}
		}
		if firstFail >= 0 && lastAck > firstFail {
			r.log.Error("target acknowledged records after an unacknowledged one; pinning the retry point before the gap",
				"topic", pl.target.topic, "partition", pl.target.partition, "sourceOffset", pl.srcOff[firstFail])
			r.tails[pl.target] = tail{end: pl.write[lastAck].Offset + 1, done: pl.srcOff[firstFail] - 1}
		}
	}
}
