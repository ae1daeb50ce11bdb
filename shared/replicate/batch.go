package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaevent"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/telemetry"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/txnstate"
)

// chunkRecords is how many records of a partition are transformed and
// handed to the producer while the decoder reads on: the target's
// compression and acknowledgements overlap with decoding the rest of the
// event.
const chunkRecords = 512

// Handle decodes and writes one batch. Records are written while the event
// is still being decoded; if the event turns out malformed further on, the
// well-formed records before the fault may already be on the target, and
// the retry skips them by provenance.
//
// payload is decoded in place: Handle overwrites it, and the caller must
// not use it afterwards. Lambda's runtime reuses it only after Invoke
// returns, and by then every record pointing into it has been resolved
// (see send).
func (r *Replicator) Handle(ctx context.Context, payload []byte) (Result, error) {
	if err := r.replaceStoppedClient(ctx); err != nil {
		return Result{}, err
	}
	r.clMu.RLock()
	defer r.clMu.RUnlock()
	var m telemetry.BatchMetrics
	b := &batch{r: r, ctx: ctx, m: &m, parts: map[tp]*partState{}}
	defer b.closeSource()
	ev, err := kafkaevent.DecodeEachInPlace(payload, chunkRecords, b.chunk)
	if err == nil {
		err = b.settle()
	}
	failed, werr := b.wait()
	var open *OpenTransactionError
	if werr != nil && (err == nil || errors.As(err, &open)) {
		err = werr
	}
	if werr != nil && len(b.fenced) > 0 && fencedErr(werr) {
		err = b.fencedWrite(failed, werr)
	}
	if ferr := b.endFences(failed); ferr != nil && err == nil {
		err = ferr
	}
	ok := err == nil
	r.remember(b.order, failed, ok)
	res := b.result(ev)
	r.record(ctx, m)
	if err != nil {
		var me *kafkaevent.MalformedEventError
		switch {
		case errors.As(err, &me):
			r.log.ErrorContext(ctx, "rejecting malformed event", "error", err, "bytes", len(payload))
		case errors.As(err, &open):
			r.log.WarnContext(ctx, "a source transaction is still open; the records before it were written and the batch will be retried",
				"topic", open.Topic, "partition", open.Partition, "offset", open.Offset, "waited", open.Waited.String(),
				"written", res.RecordsWritten, "aborted", res.RecordsAborted)
		default:
			r.log.ErrorContext(ctx, "batch failed; it will be retried", "error", err, "partitions", len(b.order), "aborted", res.RecordsAborted)
		}
		return Result{}, err
	}
	level := slog.LevelDebug
	if res.RecordsAborted > 0 {
		level = slog.LevelInfo // the poller delivers aborted records: worth seeing
	}
	r.log.Log(ctx, level, "batch written", "records", res.Records, "written", res.RecordsWritten,
		"duplicatesSkipped", res.DuplicatesSkipped, "filtered", res.RecordsFiltered, "deadLettered", res.RecordsDeadLettered,
		"aborted", res.RecordsAborted)
	return res, nil
}

// batch is one invocation's work in progress.
type batch struct {
	r   *Replicator
	ctx context.Context
	m   *telemetry.BatchMetrics

	ends   map[string]kadm.ListedOffsets // target end offsets, per topic, read once
	starts map[string]kadm.ListedOffsets
	parts  map[tp]*partState
	order  []*partState
	// fenced are the partitions whose transaction is open (see fence.go),
	// including one whose dedup failed.
	fenced []*partState

	verdicts []txnstate.Verdict // scratch for one chunk's transaction verdicts

	acks acks // the batch's data records
}

// acks collects the outcome of records produced without the invocation's
// cancellation (see send).
type acks struct {
	wg     sync.WaitGroup
	mu     sync.Mutex           // guards what the producer's callbacks write below
	failed map[*kgo.Record]bool // records the target did not acknowledge
	first  error
	causes []string
}

// partState is one source partition's progress within a batch.
type partState struct {
	srcTopic  string
	srcPart   int32
	target    tp
	done      int64         // source offsets ≤ done are already on the target
	write     []*kgo.Record // data records sent, in order
	srcOff    []int64       // source offset of each record in write
	lastSrc   int64         // last source offset of this batch, once seen
	processed bool          // a record beyond done was seen
	// present, when read, holds the source offsets from the batch's first
	// record on that the target partition holds; records at or below done
	// are skipped only if present (or filtered or dead-lettered).
	present map[int64]bool

	// txn decides the source partition's transaction outcomes; nil
	// without the check.
	txn *txnstate.Partition
	// held are the partition's records from the first one whose
	// transaction is still open on: none of them is written before it
	// is decided, so what reaches the target stays a prefix.
	held []kgo.Record
	// gone holds the source offsets of delivered records the source no
	// longer holds whose outcome cannot be read (txnstate.Unknown).
	gone map[int64]bool
	// fence is the partition's transactional producer, in a transaction,
	// when the fence is on; nil otherwise.
	fence *fencedProducer
}

// chunk handles a run of one partition's records as the decoder yields it.
func (b *batch) chunk(c *kafkaevent.Partition) error {
	r := b.r
	key := tp{c.Topic, c.Partition}
	ps := b.parts[key]
	if ps == nil {
		ps = &partState{srcTopic: c.Topic, srcPart: c.Partition, target: tp{r.cfg.Transforms.TargetTopic(c.Topic), c.Partition}, done: -1}
		if r.cfg.TransactionalIDPrefix != "" {
			// Fence older invocations before reading the tail.
			fp, err := r.beginFence(b.ctx, c.Topic, c.Partition)
			if err != nil {
				return err
			}
			ps.fence = fp
			b.fenced = append(b.fenced, ps)
		}
		if r.cfg.Provenance {
			first := c.Records[0].Offset
			if err := telemetry.Trace(b.ctx, "dedup", func(ctx context.Context) error { return b.dedup(ctx, ps, first) }); err != nil {
				return err
			}
		}
		if r.txn != nil {
			ps.txn = r.txn.Open(c.Topic, c.Partition)
		}
		b.parts[key] = ps
		b.order = append(b.order, ps)
	}
	if ps.held != nil {
		// Behind a record of an open transaction: wait with it.
		ps.held = append(ps.held, c.Records...)
		return nil
	}
	recs, err := b.decide(ps, c.Records)
	if err != nil {
		return err
	}
	return b.write(ps, recs)
}

// decide reads the transaction outcome of recs, in offset order, from
// the source. It drops and counts aborted records, marks those whose
// outcome is gone (they then fail permanently), and holds back the
// records from the first undecided one on (see settle). It returns the
// records to write, in order.
func (b *batch) decide(ps *partState, recs []kgo.Record) ([]kgo.Record, error) {
	if ps.txn == nil || len(recs) == 0 {
		return recs, nil
	}
	if cap(b.verdicts) < len(recs) {
		b.verdicts = make([]txnstate.Verdict, len(recs))
	}
	vs := b.verdicts[:len(recs)]
	sum, err := ps.txn.Decide(b.ctx, recs, vs)
	if err != nil {
		return nil, &SourceReadError{Topic: ps.srcTopic, Partition: ps.srcPart, Err: err}
	}
	if sum.Decided < len(recs) {
		ps.held = recs[sum.Decided:len(recs):len(recs)]
		recs = recs[:sum.Decided]
	}
	if sum.Aborted == 0 && sum.Unknown == 0 {
		return recs, nil
	}
	kept := recs[:0]
	for i := range recs {
		switch vs[i] {
		case txnstate.Aborted:
			b.m.RecordsAborted++
			continue
		case txnstate.Unknown:
			if ps.gone == nil {
				ps.gone = map[int64]bool{}
			}
			ps.gone[recs[i].Offset] = true
		}
		kept = append(kept, recs[i])
	}
	return kept, nil
}

// settle runs after the event is decoded, for the partitions holding
// records back behind an open source transaction: it waits, polling the
// source, until the transaction ends or until shortly before the
// invocation's deadline (see waitUntil), and writes what became decided.
// A partition still waiting then fails the batch with an
// *OpenTransactionError; what was written before its first held record
// stays, and the retry skips it by provenance.
func (b *batch) settle() error {
	var (
		open  *OpenTransactionError
		until time.Time
		start time.Time
	)
	for _, ps := range b.order {
		for len(ps.held) > 0 {
			if until.IsZero() {
				start, until = b.r.now(), b.r.waitUntil(b.ctx)
			}
			first := ps.held[0].Offset
			var decided bool
			err := telemetry.Trace(b.ctx, "open-transaction", func(ctx context.Context) error {
				var err error
				decided, err = ps.txn.Wait(ctx, first, until)
				return err
			})
			if err != nil && b.ctx.Err() == nil {
				return &SourceReadError{Topic: ps.srcTopic, Partition: ps.srcPart, Err: err}
			}
			if !decided {
				if open == nil {
					open = &OpenTransactionError{Topic: ps.srcTopic, Partition: ps.srcPart, Offset: first}
				}
				break
			}
			recs := ps.held
			ps.held = nil
			if recs, err = b.decide(ps, recs); err != nil {
				return err
			}
			if err := b.write(ps, recs); err != nil {
				return err
			}
		}
	}
	if open != nil {
		open.Waited = b.r.now().Sub(start)
		return open
	}
	return nil
}

// Waiting for an open source transaction ends openTxnMargin before the
// invocation's deadline (at most a quarter of the time left), so the
// records decided before it are written and acknowledged in time; without
// a deadline it ends after maxOpenTxnWait.
const (
	openTxnMargin  = 10 * time.Second
	maxOpenTxnWait = time.Minute
)

func (r *Replicator) waitUntil(ctx context.Context) time.Time {
	now := r.now()
	dl, ok := ctx.Deadline()
	if !ok {
		return now.Add(maxOpenTxnWait)
	}
	return dl.Add(-min(openTxnMargin, max(dl.Sub(now), 0)/4))
}

// closeSource keeps what the batch learned of each source partition's
// transactions for later batches.
func (b *batch) closeSource() {
	for _, ps := range b.order {
		if ps.txn != nil {
			ps.txn.Close()
		}
	}
}

// write skips what the target already holds of recs (one partition's
// decided records, in order), transforms the rest and hands them to the
// producer.
func (b *batch) write(ps *partState, recs []kgo.Record) error {
	r := b.r
	if len(recs) == 0 {
		return nil
	}
	from := 0
	for from < len(recs) && recs[from].Offset <= ps.done {
		if ps.present != nil && !ps.present[recs[from].Offset] && !r.handledBefore(ps, &recs[from]) {
			// The target holds later records of this batch but not
			// this one: a gap. Write from here; what follows may be
			// written twice, nothing is lost.
			r.log.ErrorContext(b.ctx, "target lacks a record behind its tail; rewriting from the gap",
				"topic", ps.target.topic, "partition", ps.target.partition, "sourceOffset", recs[from].Offset)
			ps.done = recs[from].Offset - 1
			ps.present = nil
			break
		}
		from++
	}
	b.m.DuplicatesSkipped += int64(from)
	if from == len(recs) {
		return nil
	}
	ps.processed = true
	ps.lastSrc = recs[len(recs)-1].Offset
	write, srcOff, dead, failures := r.transform(ps, recs[from:], b.m)
	if len(failures) > 0 && r.cfg.OnRecordError == FailBatch {
		return &RecordFailuresError{Failures: failures}
	}
	// Dead letters are acknowledged before any later record of their
	// partition is written, so a retry that skips by provenance can never
	// skip an unacknowledged dead letter.
	if len(dead) > 0 {
		if err := r.produceDead(b.ctx, b.client(ps), dead); err != nil {
			return err
		}
		b.m.RecordsDeadLettered += int64(len(dead))
	}
	ps.write = append(ps.write, write...)
	ps.srcOff = append(ps.srcOff, srcOff...)
	b.acks.send(r, b.ctx, b.client(ps), "target", write)
	return nil
}

// client is the producer of ps's records: its transactional producer when
// the fence is on, the replicator's client otherwise.
func (b *batch) client(ps *partState) *kgo.Client {
	if ps.fence != nil {
		return ps.fence.cl
	}
	return b.r.cl.Load()
}

// fencedWrite names the first fenced partition whose records the target
// refused because a newer producer of its transactional ID took over.
func (b *batch) fencedWrite(failed map[*kgo.Record]bool, err error) error {
	for _, ps := range b.fenced {
		for _, rec := range ps.write {
			if failed[rec] {
				return &FenceError{Topic: ps.srcTopic, Partition: ps.srcPart, TransactionalID: ps.fence.id, Op: "write", Err: err}
			}
		}
	}
	return err
}

// endFences ends the transaction of every fenced partition of the batch,
// all at once, once every record sent is resolved. A partition whose
// records were all acknowledged commits, even if the batch fails: what it
// wrote is a prefix of its records, which the retry skips by provenance, as
// without the fence. A partition with an unacknowledged record aborts, so
// the target holds none of this batch's records for it. It returns the
// first failure.
func (b *batch) endFences(failed map[*kgo.Record]bool) error {
	errs := make([]error, len(b.fenced))
	var wg sync.WaitGroup
	for i, ps := range b.fenced {
		commit := !slices.ContainsFunc(ps.write, func(rec *kgo.Record) bool { return failed[rec] })
		wg.Go(func() { errs[i] = b.r.endFence(ps.fence, ps.srcTopic, ps.srcPart, commit) })
	}
	wg.Wait()
	var first error
	for i, ps := range b.fenced {
		ps.fence = nil
		if errs[i] != nil {
			b.r.log.WarnContext(b.ctx, "fenced write failed; the batch will be retried", "error", errs[i])
			if first == nil {
				first = errs[i]
			}
		}
	}
	return first
}

// send hands records to the producer without waiting; wait collects the
// acknowledgements. what names the records in errors.
//
// Records are produced without the invocation's cancellation: a deadline
// must never fail some of a partition's records while later ones are
// acknowledged after the target recovers, which would leave a gap. The
// producer retries them, in order, until the target answers, and the
// invocation waits for that. If the target stays away past the function's
// timeout, Lambda ends the execution environment with the records: what
// reached the target is then a prefix of each partition's records, and the
// retry skips exactly that prefix by provenance. Waiting is also what makes
// decoding in place safe: no record outlives the payload it points into.
func (a *acks) send(r *Replicator, ctx context.Context, cl *kgo.Client, what string, recs []*kgo.Record) {
	a.wg.Add(len(recs))
	ctx = context.WithoutCancel(ctx)
	shared := cl == r.cl.Load() // a fenced producer is replaced by endFence
	for _, rec := range recs {
		cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			if err != nil {
				if shared && producerStopped(err) {
					r.stopped.Store(true)
				}
				if unknownPartition(err) {
					// A partition added to the target since the client's
					// last metadata: the mapping retries the batch, and
					// the refreshed metadata knows the partition by then.
					cl.ForceMetadataRefresh()
				}
				a.mu.Lock()
				if a.failed == nil {
					a.failed = map[*kgo.Record]bool{}
				}
				a.failed[rec] = true
				if a.first == nil {
					a.first = err
				}
				if len(a.causes) < 5 {
					a.causes = append(a.causes, what+": "+err.Error())
				}
				a.mu.Unlock()
			}
			a.wg.Done()
		})
	}
}

// unknownPartition reports whether err is kgo's refusal of a record whose
// partition is beyond the partitions the client's metadata knows (kgo
// exports no error value for it).
func unknownPartition(err error) bool {
	return strings.Contains(err.Error(), "invalid record partitioning choice")
}

// wait blocks until every record sent is resolved and returns the failed
// ones, the first error and the distinct causes.
func (a *acks) wait() (failed map[*kgo.Record]bool, first error, causes []string) {
	a.wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failed, a.first, dedupStrings(a.causes) // every callback has run: no more writes
}

// wait blocks until every record sent is acknowledged or failed (see
// send), counts the acknowledged ones, and returns the failed ones and a
// *TargetWriteError if there are any.
func (b *batch) wait() (failed map[*kgo.Record]bool, err error) {
	var first error
	var causes []string
	_ = telemetry.Trace(b.ctx, "target-write", func(context.Context) error {
		failed, first, causes = b.acks.wait()
		return nil
	})
	now := b.r.now()
	for _, ps := range b.order {
		for _, rec := range ps.write {
			if failed[rec] {
				continue
			}
			b.m.RecordsWritten++
			b.m.BytesWritten += int64(len(rec.Key) + len(rec.Value))
			if len(b.m.Latencies) < 1000 {
				b.m.Latencies = append(b.m.Latencies, now.Sub(rec.Timestamp))
			}
		}
	}
	if len(failed) == 0 {
		return failed, nil
	}
	return failed, &TargetWriteError{Failed: len(failed), Errors: causes, Err: first}
}

// dedupStrings drops repeated strings, keeping the first of each.
func dedupStrings(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (b *batch) result(ev *kafkaevent.Event) Result {
	res := Result{
		RecordsWritten:      int(b.m.RecordsWritten),
		DuplicatesSkipped:   int(b.m.DuplicatesSkipped),
		RecordsFiltered:     int(b.m.RecordsFiltered),
		RecordsDeadLettered: int(b.m.RecordsDeadLettered),
		RecordsAborted:      int(b.m.RecordsAborted),
	}
	if ev != nil {
		res.Records = ev.Records
	}
	return res
}

// dedup sets where ps starts: past what the target partition already holds.
func (b *batch) dedup(ctx context.Context, ps *partState, first int64) error {
	r := b.r
	topic := ps.target.topic
	if b.ends == nil {
		b.ends = map[string]kadm.ListedOffsets{}
	}
	ends, ok := b.ends[topic]
	if !ok {
		var err error
		if ends, err = r.adm.ListEndOffsets(ctx, topic); err != nil {
			return &TargetReadError{Topic: topic, Partition: -1, Err: err}
		}
		b.ends[topic] = ends
	}
	end, ok := ends.Lookup(topic, ps.target.partition)
	if !ok {
		return &TargetReadError{Topic: topic, Partition: ps.target.partition, Err: kerr.UnknownTopicOrPartition}
	}
	if end.Err != nil {
		return &TargetReadError{Topic: topic, Partition: ps.target.partition, Err: end.Err}
	}
	r.mu.Lock()
	known, cached := r.tails[ps.target]
	r.mu.Unlock()
	done := int64(-1)
	switch {
	case cached && known.end == end.Offset:
		done = known.done
	case end.Offset > 0:
		if b.starts == nil {
			b.starts = map[string]kadm.ListedOffsets{}
		}
		starts, ok := b.starts[topic]
		if !ok {
			var err error
			if starts, err = r.adm.ListStartOffsets(ctx, topic); err != nil {
				return &TargetReadError{Topic: topic, Partition: -1, Err: err}
			}
			b.starts[topic] = starts
		}
		logStart := int64(0)
		if s, ok := starts.Lookup(topic, ps.target.partition); ok && s.Err == nil {
			logStart = s.Offset
		}
		var err error
		if done, err = r.tailSource(ctx, ps, logStart, end.Offset); err != nil {
			return err
		}
		// Read from the target, not cached: part of this batch may be
		// there after a failure. Check which records really are, rather
		// than trust that everything up to the tail is.
		if done >= first {
			if ps.present, err = r.targetSources(ctx, ps, first, done, logStart, end.Offset); err != nil {
				return err
			}
		}
	}
	r.mu.Lock()
	r.tails[ps.target] = tail{end: end.Offset, done: done}
	if pin, ok := r.pins[ps.target]; ok && pin < done {
		// The tail's provenance cannot be trusted past a gap this
		// container saw the target leave: rewrite from the gap.
		done = pin
	}
	r.mu.Unlock()
	ps.done = done
	return nil
}

// targetSources returns the source offsets ≥ first that the target
// partition holds, reading back from its end far enough to see a record
// from before first (or the log start). Each step reads only the span
// before the one already read, twice as long as the last.
func (r *Replicator) targetSources(ctx context.Context, ps *partState, first, done, logStart, end int64) (map[int64]bool, error) {
	present := map[int64]bool{}
	hi := end
	for span := done - first + 65; ; span *= 2 {
		from := max(logStart, end-span)
		complete := from == logStart
		seen := false // a record of this source partition in [from, hi)
		err := r.reader.Scan(ctx, ps.target.topic, ps.target.partition, from, hi, func(rec *kgo.Record) bool {
			pv, err := provenance.Of(rec)
			if err != nil || pv.Topic != ps.srcTopic || pv.Partition != ps.srcPart {
				return true
			}
			if !seen && pv.Offset < first {
				complete = true
			}
			seen = true
			if pv.Offset >= first {
				present[pv.Offset] = true
			}
			return true
		})
		if err != nil {
			return nil, &TargetReadError{Topic: ps.target.topic, Partition: ps.target.partition, Err: err}
		}
		if complete {
			return present, nil
		}
		hi = from
	}
}

// handledBefore reports whether a record absent from the target was
// filtered or dead-lettered by the transforms, which are deterministic, or
// dead-lettered because the source no longer holds it, rather than lost.
// It does not change the record.
func (r *Replicator) handledBefore(ps *partState, rec *kgo.Record) bool {
	if ps.gone[rec.Offset] {
		return r.cfg.OnRecordError == DeadLetter
	}
	if r.cfg.Transforms.Len() == 0 {
		return false
	}
	cp := *rec
	cp.Headers = slices.Clone(rec.Headers)
	v, err := r.cfg.Transforms.Apply(&cp)
	if err != nil {
		return r.cfg.OnRecordError == DeadLetter
	}
	return v == transform.Filter
}

// tailSource reads the newest target record's provenance and returns the
// source offset it names.
func (r *Replicator) tailSource(ctx context.Context, ps *partState, logStart, end int64) (int64, error) {
	tail, ok, err := provenance.ReadTail(ctx, r.reader, ps.target.topic, ps.target.partition, logStart, end)
	var np *provenance.UnusableError
	switch {
	case errors.As(err, &np):
		return 0, &ForeignRecordError{Topic: ps.target.topic, Partition: ps.target.partition, Offset: np.Offset, Reason: np.Err.Error()}
	case err != nil:
		return 0, &TargetReadError{Topic: ps.target.topic, Partition: ps.target.partition, Err: err}
	case !ok:
		return -1, nil
	}
	if src := tail.Source; src.Topic != ps.srcTopic || src.Partition != ps.srcPart {
		return 0, &ForeignRecordError{Topic: ps.target.topic, Partition: ps.target.partition, Offset: tail.Offset,
			Reason: fmt.Sprintf("its provenance is %s, not partition %d of %s", src, ps.srcPart, ps.srcTopic)}
	}
	return tail.Source.Offset, nil
}

// transform applies the chain to recs, adding the provenance header, and
// sorts them into records to write, dead letters and filtered ones. It
// returns the permanent failures.
func (r *Replicator) transform(ps *partState, recs []kgo.Record, m *telemetry.BatchMetrics) (write []*kgo.Record, srcOff []int64, dead []*kgo.Record, failures []RecordFailure) {
	write = make([]*kgo.Record, 0, len(recs))
	srcOff = make([]int64, 0, len(recs))
	var prov []byte
	if r.cfg.Provenance {
		prov = make([]byte, 0, (len(ps.srcTopic)+24)*len(recs))
	}
	transforms := r.cfg.Transforms.Len() > 0
	for i := range recs {
		rec := &recs[i]
		src := provenance.Source{Topic: ps.srcTopic, Partition: ps.srcPart, Offset: rec.Offset}
		// The original is kept for a dead letter. Without transforms the
		// headers are never changed in place (the provenance header goes
		// into spare capacity), so no copy is needed.
		orig := *rec
		if transforms {
			orig.Headers = append([]kgo.RecordHeader(nil), rec.Headers...)
		}
		var (
			verdict transform.Verdict
			err     error
			kind    = "transform"
		)
		if ps.gone[rec.Offset] {
			err, kind = &SourceRecordGoneError{}, "source-gone"
		} else {
			verdict, err = r.cfg.Transforms.Apply(rec)
		}
		if err == nil && verdict == transform.Keep && (rec.Topic != ps.target.topic || rec.Partition != ps.target.partition) {
			err = fmt.Errorf("a transform moved the record to %s/%d; only rename may change the topic and nothing may change the partition", rec.Topic, rec.Partition)
		}
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
			dead = append(dead, r.deadLetter(&orig, src, kind, err))
		case verdict == transform.Filter:
			m.RecordsFiltered++
		default:
			rec.Offset = 0 // the target assigns offsets; provenance keeps the source's
			write = append(write, rec)
			srcOff = append(srcOff, src.Offset)
		}
	}
	return write, srcOff, dead, failures
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
	d.Headers = make([]kgo.RecordHeader, 0, len(orig.Headers)+4)
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

// produceDead writes dead letters and waits for every acknowledgement.
// Like data records (see send), they are produced without the invocation's
// cancellation.
func (r *Replicator) produceDead(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	var a acks
	a.send(r, ctx, cl, "dead-letter", recs)
	if failed, first, causes := a.wait(); len(failed) > 0 {
		return &TargetWriteError{Failed: len(failed), Errors: causes, Err: first}
	}
	return nil
}

// remember records each target partition's tail after a batch, so the next
// batch in this warm container needs no read while the end offset proves
// nothing else wrote. After a failed batch the tail is forgotten and re-read
// from the target — unless acknowledgements were not a prefix of the
// partition's records (after a non-retriable error, or a broker restart
// that makes the idempotent producer bump its epoch): then the partition is
// pinned before the first unacknowledged record, whatever the tail says
// later, until a batch rewrites past it. A duplicate is possible in that
// case; a loss is not, as long as the same container retries (a new one
// only sees the target's tail).
func (r *Replicator) remember(parts []*partState, failed map[*kgo.Record]bool, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ps := range parts {
		prev, known := r.tails[ps.target]
		if !known {
			continue
		}
		if ok {
			t := prev
			if ps.processed {
				t.done = ps.lastSrc
				delete(r.pins, ps.target) // rewritten past the gap
			}
			if n := len(ps.write); n > 0 {
				t.end = ps.write[n-1].Offset + 1
				if r.cfg.TransactionalIDPrefix != "" {
					t.end++ // the commit marker
				}
			}
			r.tails[ps.target] = t
			continue
		}
		delete(r.tails, ps.target)
		firstFail, lastAck := -1, -1
		for i, rec := range ps.write {
			if failed[rec] {
				if firstFail < 0 {
					firstFail = i
				}
			} else {
				lastAck = i
			}
		}
		if firstFail >= 0 && lastAck > firstFail {
			pin := ps.srcOff[firstFail] - 1
			r.log.Error("target acknowledged records after an unacknowledged one; the retry rewrites from the gap",
				"topic", ps.target.topic, "partition", ps.target.partition, "sourceOffset", pin+1)
			if old, ok := r.pins[ps.target]; !ok || pin < old {
				r.pins[ps.target] = pin
			}
		}
	}
}
