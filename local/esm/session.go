package esm

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitTimeout bounds the commit after a successful invocation.
const commitTimeout = 30 * time.Second

// session is one enabled period of a mapping: one consumer group member,
// a poll loop and Concurrency workers. It is started by Enable and ended
// by stop, which waits for the in-flight batches and leaves the group.
type session struct {
	m  *Mapping
	cl *kgo.Client

	pollCtx    context.Context
	cancelPoll context.CancelFunc
	stopCh     chan struct{}

	// mu guards the fields below; lock order is worker.mu, then mu.
	mu           sync.Mutex
	cond         *sync.Cond
	stopped      bool
	pending      int // records buffered in workers, not yet in a batch
	pendingBytes int
	inflight     map[tpKey]int

	workers []*worker
	wg      sync.WaitGroup
}

// worker invokes the batches of a fixed subset of partitions, one batch
// at a time, so each of its partitions is delivered strictly in order.
type worker struct {
	s *session

	mu           sync.Mutex
	pending      []pendingRec // poll order
	pendingBytes int
	firstAt      time.Time // arrival of the oldest pending record
	wake         chan struct{}

	// Owned by the worker goroutine.
	cut   int // batches cut so far, for Overlap.Every
	enc   *Encoder
	buf   []byte // the event of the current attempt; see encode
	batch []*kgo.Record
	seen  map[tpKey]struct{}
}

// pendingRec is a buffered record with its RecordSize, computed once.
type pendingRec struct {
	r    *kgo.Record
	size int
}

func (m *Mapping) startSession() (*session, error) {
	s := &session{
		m:        m,
		stopCh:   make(chan struct{}),
		inflight: make(map[tpKey]int),
	}
	s.cond = sync.NewCond(&s.mu)
	s.pollCtx, s.cancelPoll = context.WithCancel(context.Background())
	var reset kgo.Offset
	switch m.cfg.StartingPosition {
	case Latest:
		reset = kgo.NewOffset().AtEnd()
	case AtTimestamp:
		reset = kgo.NewOffset().AfterMilli(m.cfg.StartingPositionTimestamp.UnixMilli())
	default:
		reset = kgo.NewOffset().AtStart()
	}
	minAge := min(m.cfg.MetadataRefresh, DefaultMetadataRefresh)
	opts := append(m.cfg.connOptions(),
		kgo.ClientID("lambda-esm-"+m.cfg.UUID),
		kgo.MetadataMinAge(minAge),
		kgo.MetadataMaxAge(m.cfg.MetadataRefresh),
		kgo.ConsumerGroup(m.cfg.ConsumerGroupID),
		kgo.ConsumeTopics(m.cfg.Topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.AdjustFetchOffsetsFn(m.adjustStart(reset)),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onRevoked),
	)
	if m.cfg.Isolation == ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(append(opts, m.cfg.ClientOptions...)...)
	if err != nil {
		s.cancelPoll()
		return nil, fmt.Errorf("esm: mapping %s: building consumer: %w", m.cfg.UUID, err)
	}
	s.cl = cl
	for range m.cfg.Concurrency {
		s.workers = append(s.workers, &worker{
			s:    s,
			wake: make(chan struct{}, 1),
			enc:  NewEncoder(m.cfg.EventSourceArn, m.cfg.BootstrapServers),
			seen: make(map[tpKey]struct{}),
		})
	}
	s.wg.Add(1 + len(s.workers))
	go s.pollLoop()
	for _, w := range s.workers {
		go w.run()
	}
	return s, nil
}

// LogUncommittedPartition is the message the mapping logs (at Info, with
// uuid, topic, partition, start and offset: the first offset it will
// read, or -2 for the log start, -1 for the end) when it starts a
// partition without a committed offset in an existing group.
const LogUncommittedPartition = "esm: partition without a committed offset in an existing group"

// adjustStart returns the function that sees the offsets each assignment
// of a session starts from, before fetching begins: committed offsets as
// they are, and reset (StartingPosition) for partitions without a commit.
// Once the group exists (it has had a commit, or the session's first
// assignment is over), a partition without a commit starts at
// UncommittedPartitionStart instead.
func (m *Mapping) adjustStart(reset kgo.Offset) func(context.Context, map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var assigned atomic.Bool // this session had an assignment before
	return func(ctx context.Context, offs map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
		if m.cfg.assigned != nil {
			m.cfg.assigned(ctx, offs)
		}
		for _, ps := range offs {
			for _, o := range ps {
				if o != reset {
					m.groupCommitted.Store(true)
				}
			}
		}
		if later := assigned.Swap(true); !later && !m.groupCommitted.Load() {
			return offs, nil
		}
		var topics []string
		for t, ps := range offs {
			for _, o := range ps {
				if o == reset {
					topics = append(topics, t)
					break
				}
			}
		}
		if len(topics) == 0 {
			return offs, nil
		}
		// Latest is the end when the mapping sees the partition, read
		// here rather than left to the consumer, so that the start is
		// fixed (and logged) before anything is fetched.
		var ends kadm.ListedOffsets
		if m.cfg.UncommittedPartitionStart == PartitionLatest {
			if adm, err := m.adminClient(); err == nil {
				ends, err = adm.ListEndOffsets(ctx, topics...)
				if err == nil {
					err = ends.Error()
				}
				if err != nil {
					ends = nil
					m.recordErr(fmt.Errorf("esm: mapping %s: reading end offsets of new partitions: %w", m.cfg.UUID, err), "")
				}
			}
		}
		for _, t := range topics {
			for p, o := range offs[t] {
				if o != reset {
					continue
				}
				start, at := kgo.NewOffset().AtStart(), int64(-2)
				if m.cfg.UncommittedPartitionStart == PartitionLatest {
					start, at = kgo.NewOffset().AtEnd(), -1
					if e, ok := ends.Lookup(t, p); ok {
						start, at = kgo.NewOffset().At(e.Offset), e.Offset
					}
				}
				offs[t][p] = start
				m.cfg.Logger.Info(LogUncommittedPartition, "uuid", m.cfg.UUID, "topic", t, "partition", p,
					"start", string(m.cfg.UncommittedPartitionStart), "offset", at)
			}
		}
		return offs, nil
	}
}

// stop stops polling, lets each worker finish (and commit) its in-flight
// batch, drops records not yet in a batch (they are redelivered from the
// committed offsets) and leaves the group.
func (s *session) stop() {
	s.mu.Lock()
	s.stopped = true
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.stopCh)
	s.cancelPoll()
	s.wg.Wait()
	s.cl.Close() // leaves the group
}

func (s *session) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// sleep waits d and reports false if the session stopped meanwhile.
func (s *session) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stopCh:
		return false
	}
}

func (s *session) workerFor(topic string, partition int32) *worker {
	if len(s.workers) == 1 {
		return s.workers[0]
	}
	h := fnv.New32a()
	h.Write([]byte(topic))
	return s.workers[(uint64(h.Sum32())+uint64(uint32(partition)))%uint64(len(s.workers))]
}

func (s *session) pollLoop() {
	defer s.wg.Done()
	cfg := &s.m.cfg
	limit := 2 * cfg.BatchSize * len(s.workers)
	byteLimit := 2 * MaxPayloadBytes * len(s.workers)
	for {
		s.mu.Lock()
		for !s.stopped && (s.pending >= limit || s.pendingBytes >= byteLimit) {
			s.cond.Wait()
		}
		stopped, room := s.stopped, limit-s.pending
		s.mu.Unlock()
		if stopped {
			return
		}

		fetches := s.cl.PollRecords(s.pollCtx, room)
		if fetches.IsClientClosed() {
			s.cl.AllowRebalance()
			return
		}
		var pollErr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			s.m.st.pollErrors.Add(1)
			pollErr = fmt.Errorf("esm: mapping %s: fetching %s/%d: %w", cfg.UUID, t, p, err)
		})
		s.dispatch(fetches)
		s.cl.AllowRebalance()
		if pollErr != nil {
			s.m.recordErr(pollErr, "")
			if !s.sleep(cfg.RetryBackoff) {
				return
			}
		}
	}
}

// dispatch hands polled records to their partitions' workers. It runs
// while rebalancing is blocked, so no revoked partition's records can
// slip in after onRevoked dropped them.
func (s *session) dispatch(fetches kgo.Fetches) {
	if len(s.workers) == 1 {
		s.workers[0].add(fetches.Records())
		return
	}
	// One worker lookup per fetched partition, not per record; a
	// partition's records keep their order.
	per := make(map[*worker][]*kgo.Record, len(s.workers))
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		w := s.workerFor(p.Topic, p.Partition)
		per[w] = append(per[w], p.Records...)
	})
	for w, rs := range per {
		w.add(rs)
	}
}

// onRevoked drops the buffered records of partitions leaving this member
// and waits until no in-flight batch holds them, so that their last
// commit precedes the rebalance.
func (s *session) onRevoked(_ context.Context, _ *kgo.Client, gone map[string][]int32) {
	set := make(map[tpKey]struct{})
	for t, ps := range gone {
		for _, p := range ps {
			set[tpKey{t, p}] = struct{}{}
		}
	}
	if len(set) == 0 {
		return
	}
	for _, w := range s.workers {
		w.drop(set)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		busy := false
		for k := range set {
			if s.inflight[k] > 0 {
				busy = true
				break
			}
		}
		if !busy {
			return
		}
		s.cond.Wait()
	}
}

func (w *worker) add(rs []*kgo.Record) {
	if len(rs) == 0 {
		return
	}
	n := 0
	w.mu.Lock()
	if len(w.pending) == 0 {
		w.firstAt = w.s.m.cfg.clock.Now()
	}
	var sz recordSizer
	for _, r := range rs {
		size := sz.size(r)
		w.pending = append(w.pending, pendingRec{r, size})
		n += size + 1
	}
	w.pendingBytes += n
	w.s.mu.Lock()
	w.s.pending += len(rs)
	w.s.pendingBytes += n
	w.s.mu.Unlock()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) drop(set map[tpKey]struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := w.pending[:0]
	dropped, droppedBytes := 0, 0
	for _, p := range w.pending {
		if _, ok := set[tpKey{p.r.Topic, p.r.Partition}]; ok {
			dropped++
			droppedBytes += p.size + 1
			continue
		}
		kept = append(kept, p)
	}
	clear(w.pending[len(kept):])
	w.pending = kept
	w.pendingBytes -= droppedBytes
	if len(kept) == 0 {
		w.firstAt = time.Time{}
	}
	w.s.mu.Lock()
	w.s.pending -= dropped
	w.s.pendingBytes -= droppedBytes
	w.s.cond.Broadcast()
	w.s.mu.Unlock()
}

func (w *worker) run() {
	defer w.s.wg.Done()
	for {
		recs, size, tooLarge, started, ok := w.next()
		if !ok {
			return
		}
		w.process(recs, size, tooLarge, started)
		w.finish(recs)
	}
}

// next blocks until a batch is due (full, or its window expired) and cuts
// it, or reports false once the session stops.
func (w *worker) next() (recs []*kgo.Record, size int, tooLarge *RecordTooLargeError, started time.Time, ok bool) {
	cfg := &w.s.m.cfg
	var tm timer
	defer func() {
		if tm != nil {
			tm.Stop()
		}
	}()
	for {
		if w.s.isStopped() {
			return nil, 0, nil, time.Time{}, false
		}
		w.mu.Lock()
		var wait <-chan time.Time
		if n := len(w.pending); n > 0 {
			due := w.firstAt.Add(cfg.MaximumBatchingWindow)
			if n >= cfg.BatchSize || w.pendingBytes >= MaxPayloadBytes || !cfg.clock.Now().Before(due) {
				started = time.Now()
				recs, size, tooLarge = w.cutLocked()
				w.mu.Unlock()
				return recs, size, tooLarge, started, true
			}
			if left := due.Sub(cfg.clock.Now()); tm == nil {
				tm = cfg.clock.NewTimer(left)
			} else {
				tm.Reset(left)
			}
			wait = tm.C()
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-wait:
		case <-w.s.stopCh:
		}
	}
}

// cutLocked takes the longest prefix of pending records that fits
// BatchSize and MaxPayloadBytes (computing the exact event size), marks
// its partitions in flight and returns it with its size. A first record
// that alone exceeds the limit is returned alone with a
// RecordTooLargeError.
func (w *worker) cutLocked() ([]*kgo.Record, int, *RecordTooLargeError) {
	cfg := &w.s.m.cfg
	size := w.enc.Overhead()
	clear(w.seen)
	var tooLarge *RecordTooLargeError
	n, cutBytes := 0, 0
	var last tpKey
	for n < len(w.pending) && n < cfg.BatchSize {
		r, rs := w.pending[n].r, w.pending[n].size
		k := tpKey{r.Topic, r.Partition}
		add := rs
		if n > 0 && k == last {
			add++ // same partition as the record before: no map lookup
		} else if _, ok := w.seen[k]; ok {
			add++
		} else {
			add += GroupOverhead(r.Topic, r.Partition)
			if len(w.seen) > 0 {
				add++
			}
		}
		if size+add > MaxPayloadBytes {
			if n == 0 {
				tooLarge = &RecordTooLargeError{
					Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
					Size: size + add, Limit: MaxPayloadBytes,
				}
				size += add
				cutBytes += rs + 1
				w.seen[k] = struct{}{}
				n = 1
			}
			break
		}
		size += add
		cutBytes += rs + 1
		if n == 0 || k != last {
			w.seen[k] = struct{}{}
			last = k
		}
		n++
	}
	w.batch = w.batch[:0]
	for _, p := range w.pending[:n] {
		w.batch = append(w.batch, p.r)
	}
	rest := copy(w.pending, w.pending[n:])
	clear(w.pending[rest:])
	w.pending = w.pending[:rest]
	w.pendingBytes -= cutBytes
	if rest == 0 {
		w.firstAt = time.Time{}
	}
	w.s.mu.Lock()
	for k := range w.seen {
		w.s.inflight[k]++
	}
	w.s.pending -= n
	w.s.pendingBytes -= cutBytes
	w.s.cond.Broadcast()
	w.s.mu.Unlock()
	return w.batch, size, tooLarge
}

func (w *worker) finish(recs []*kgo.Record) {
	w.s.mu.Lock()
	for k := range w.seen {
		if w.s.inflight[k]--; w.s.inflight[k] <= 0 {
			delete(w.s.inflight, k)
		}
	}
	w.s.cond.Broadcast()
	w.s.mu.Unlock()
	clear(recs) // drop references to delivered records
}

// process invokes one batch until it succeeds, is discarded after
// MaximumRetryAttempts, or the session stops (then nothing is committed).
func (w *worker) process(recs []*kgo.Record, size int, tooLarge *RecordTooLargeError, started time.Time) {
	m := w.s.m
	if tooLarge != nil {
		m.st.oversized.Add(1)
	}
	maxRetries := *m.cfg.MaximumRetryAttempts
	if w.cut++; m.cfg.Overlap.Every > 0 && w.cut%m.cfg.Overlap.Every == 0 && tooLarge == nil && size <= MaxPayloadBytes {
		w.overlap(recs, size)
	}
	for attempt := 1; ; attempt++ {
		if tooLarge == nil && size <= MaxPayloadBytes {
			if attempt > 1 {
				started = time.Now()
			}
			size = w.encode(recs, size)
			m.st.encodeNanos.Add(int64(time.Since(started)))
		}
		var err error
		switch {
		case tooLarge != nil:
			err = tooLarge
			m.st.errors.Add(1)
			m.recordErr(err, ResultTooBig)
		case size > MaxPayloadBytes:
			err = &RecordTooLargeError{Topic: recs[0].Topic, Partition: recs[0].Partition, Offset: recs[0].Offset, Size: size, Limit: MaxPayloadBytes}
			m.st.errors.Add(1)
			m.recordErr(err, ResultTooBig)
		default:
			err = w.invoke(w.buf, attempt, len(recs))
		}
		if err == nil {
			m.st.batches.Add(1)
			m.st.records.Add(int64(len(recs)))
			m.st.bytes.Add(int64(size))
			storeMax(&m.st.maxRecords, int64(len(recs)))
			storeMax(&m.st.maxBytes, int64(size))
			m.mu.Lock()
			m.lastResult = ResultOK
			m.mu.Unlock()
			w.commit(recs)
			return
		}
		if maxRetries >= 0 && attempt > maxRetries {
			m.st.discardedBatches.Add(1)
			m.st.discardedRecords.Add(int64(len(recs)))
			m.cfg.Logger.Error("esm: batch discarded after retries", "uuid", m.cfg.UUID,
				"attempts", attempt, "records", len(recs), "first", fmt.Sprintf("%s/%d/%d", recs[0].Topic, recs[0].Partition, recs[0].Offset), "err", err)
			w.commit(recs)
			return
		}
		if !w.s.sleep(m.cfg.RetryBackoff) {
			return
		}
		m.st.retries.Add(1)
	}
}

// Overlap emulates a rebalance of the mapping's pollers that moves a
// partition while its previous owner is still invoking the function with a
// batch of it. AWS documents event source mappings as at-least-once ("Lambda
// event source mappings process each event at least once, and duplicate
// processing of records can occur") and does not document whether a
// revoked poller's invocation ends before the partition's new owner
// invokes, so a function must be right when it does not.
//
// An overlapped batch is invoked twice at once: first as the previous
// owner's (the zombie's) invocation, through Handler, whose outcome is
// ignored and never committed, since that poller no longer owns the
// partition; then, Lead later, as the new owner's redelivery from the
// committed offset, through the mapping's handler, retried and committed
// as any batch. The new owner goes on with the partition's following
// batches without waiting for the zombie, so those overlap it too. The
// session waits for zombie invocations when it stops.
type Overlap struct {
	// Every overlaps every Every-th batch each worker cuts (the Every-th,
	// the 2·Every-th, ...); 0 turns overlap off.
	Every int
	// Handler receives the zombie invocations: another execution
	// environment of the function, which a test may slow down. nil means
	// the mapping's handler.
	Handler lambda.Handler
	// Lead is how long the zombie's invocation starts before the
	// redelivery; 0 starts both at once.
	Lead time.Duration
}

// overlap starts the zombie invocation of recs (see Overlap) on its own
// copy of the event, and waits Overlap.Lead before the redelivery goes on.
func (w *worker) overlap(recs []*kgo.Record, size int) {
	s, m := w.s, w.s.m
	h := m.cfg.Overlap.Handler
	if h == nil {
		h = m.h
	}
	n, event := len(recs), w.enc.Append(make([]byte, 0, size), recs)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{
			AwsRequestID:       NewUUID(),
			InvokedFunctionArn: m.cfg.FunctionArn,
		})
		if m.cfg.InvokeTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, m.cfg.InvokeTimeout)
			defer cancel()
		}
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("handler panic: %v", p)
				}
			}()
			_, err = h.Invoke(ctx, event)
			return err
		}()
		m.cfg.Logger.Info("esm: overlapped invocation of the previous owner ended; its outcome is ignored",
			"uuid", m.cfg.UUID, "records", n, "err", err)
	}()
	if m.cfg.Overlap.Lead > 0 {
		s.sleep(m.cfg.Overlap.Lead)
	}
}

// encode writes the event for recs into w.buf, sized up front from the
// predicted size, and returns its actual length. Every attempt encodes
// afresh, as every invocation over Lambda's Invoke API carries its own
// copy of the event: a handler may decode in place, and a retry must
// still see the batch as polled.
func (w *worker) encode(recs []*kgo.Record, size int) int {
	if cap(w.buf) < size {
		w.buf = make([]byte, 0, size)
	}
	w.buf = w.enc.Append(w.buf[:0], recs)
	if len(w.buf) != size {
		// Size and Append disagree: a bug, but never exceed the limit.
		w.s.m.cfg.Logger.Error("esm: event size mismatch", "predicted", size, "actual", len(w.buf))
	}
	return len(w.buf)
}

// invoke calls the handler once. The in-flight call is never canceled by
// a disable; only InvokeTimeout bounds it. A panic becomes an error.
func (w *worker) invoke(payload []byte, attempt, n int) (err error) {
	m := w.s.m
	ctx := context.Background()
	if m.cfg.InvokeTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.cfg.InvokeTimeout)
		defer cancel()
	}
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       NewUUID(),
		InvokedFunctionArn: m.cfg.FunctionArn,
	})
	m.st.invocations.Add(1)
	start := time.Now()
	m.st.lastInvoke.Store(start.UnixNano())
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v", p)
		}
		m.st.handlerNanos.Add(int64(time.Since(start)))
		if err != nil {
			err = &InvokeError{FunctionName: m.cfg.FunctionName, Attempt: attempt, Records: n, Err: err}
			m.st.errors.Add(1)
			m.recordErr(err, ResultProblem)
		}
	}()
	_, err = m.h.Invoke(ctx, payload)
	return err
}

// commit commits last offset + 1 (with its leader epoch) for every
// partition of the batch. A failure is counted; the batch will then be
// redelivered to whoever owns the partitions next.
func (w *worker) commit(recs []*kgo.Record) {
	m := w.s.m
	offs := make(map[string]map[int32]kgo.EpochOffset)
	for _, r := range recs {
		ps := offs[r.Topic]
		if ps == nil {
			ps = make(map[int32]kgo.EpochOffset)
			offs[r.Topic] = ps
		}
		ps[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var cerr error
	w.s.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	if cerr == nil {
		m.groupCommitted.Store(true)
	}
	if cerr != nil {
		m.st.commitErrors.Add(1)
		m.recordErr(fmt.Errorf("esm: mapping %s: committing offsets of group %s: %w", m.cfg.UUID, m.cfg.ConsumerGroupID, cerr), "")
	}
}
