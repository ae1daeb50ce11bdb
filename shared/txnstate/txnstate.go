// Package txnstate tells, for records a poller delivered from a source
// partition, whether a read_committed consumer of the source reads each
// one: whether its transaction (if any) committed, aborted, or is still
// open. The replicator uses it so that no record of an aborted
// transaction, and no record of an open one, reaches the target, whatever
// isolation level the poller reads with.
//
// It reads the source as a read_committed consumer would, with raw Fetch
// requests, but reads only the record-batch headers (offsets, attributes,
// producer ID; for a transaction marker, the marker's type), the
// response's AbortedTransactions and its LastStableOffset. Records are
// never decompressed or decoded.
//
// Guarantees, for an offset below the partition's last stable offset (a
// verdict other than Undecided never changes):
//   - Committed: a read_committed consumer reads the record there: it is
//     in a non-transactional batch or in a batch of a committed
//     transaction. An offset the source no longer holds (compacted or
//     deleted after it was read) is Committed when no aborted transaction
//     overlaps it: Kafka keeps an abort marker, and its index entry, for
//     delete.retention.ms after the aborted records are cleaned.
//   - Aborted: no consumer ever reads it: it is in a batch of an aborted
//     transaction (Kafka's read_committed algorithm, as the Java client
//     and franz-go apply it: a producer is aborted from the first offset
//     of each of its aborted transactions to the ABORT marker that ends
//     it), or it is a transaction marker.
//   - Unknown: the source no longer holds it and an aborted transaction
//     may have covered it, so what it was cannot be read.
//
// An offset at or past the last stable offset is Undecided: a transaction
// open there may still commit or abort.
//
// It only reads (Metadata and Fetch requests): no consumer group, no
// offsets committed, nothing written.
package txnstate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

// Verdict is what a read_committed consumer makes of one offset.
type Verdict uint8

// Verdicts. The zero value is Undecided, so a verdict never set reads as
// "do not write yet".
const (
	Undecided Verdict = iota // at or past the last stable offset: a transaction open there may go either way
	Committed                // a read_committed consumer reads it
	Aborted                  // no consumer reads it: aborted transaction, or a transaction marker
	Unknown                  // gone from the source, and an aborted transaction may have covered it
)

func (v Verdict) String() string {
	switch v {
	case Undecided:
		return "undecided"
	case Committed:
		return "committed"
	case Aborted:
		return "aborted"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// Fetch sizes, in bytes. A fetch asks for about twice the source bytes of
// the records still to decide (see Decide), within these bounds.
const (
	MinFetchBytes = 64 << 10
	MaxFetchBytes = 4 << 20
	// recordOverhead bounds from above what one record adds to a
	// record batch besides its key, value and header bytes, when each
	// record has a batch of its own (61-byte header, varints).
	recordOverhead = 80
	// maxPoll is the longest single long-poll of Wait.
	maxPoll = 5 * time.Second
)

// Stats count the reader's fetches.
type Stats struct {
	Fetches int64 // Fetch requests answered
	Bytes   int64 // record-batch bytes received
}

// Reader reads transaction outcomes from one cluster through an existing
// client, which it never closes. It keeps what its fetches taught about
// each partition, so a later batch of records right after an earlier one
// often needs no fetch. It is safe for concurrent use.
type Reader struct {
	cl *kgo.Client

	mu    sync.Mutex
	meta  map[string]*topicMeta
	known map[tp]knowledge // partitions not open
	stats Stats
}

type tp struct {
	topic     string
	partition int32
}

type topicMeta struct {
	id      [16]byte
	leaders map[int32]int32
}

// knowledge is the verdicts of a run of offsets: spans from lo on.
type knowledge struct {
	lo    int64
	spans []span
}

func (k *knowledge) end() int64 {
	if n := len(k.spans); n > 0 {
		return k.spans[n-1].end
	}
	return k.lo
}

// NewReader returns a Reader using cl, which needs only the connection
// options of the cluster (no consumer options).
func NewReader(cl *kgo.Client) *Reader {
	return &Reader{cl: cl, meta: map[string]*topicMeta{}, known: map[tp]knowledge{}}
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Partition is one source partition being decided. It is not safe for
// concurrent use; Close it when done so a later Open can reuse what it
// learned.
type Partition struct {
	r         *Reader
	topic     string
	partition int32
	k         knowledge
	stable    int64 // the last stable offset of the latest fetch, -1 before one
	low       int64 // the lowest offset asked about, -1 before any
	// The previous fetch: where it ended and how many bytes it asked
	// for. A fetch that continues it asks for twice as many.
	lastEnd  int64
	lastSize int
}

// Open returns the partition, with what earlier fetches learned of it.
func (r *Reader) Open(topic string, partition int32) *Partition {
	key := tp{topic, partition}
	r.mu.Lock()
	k := r.known[key]
	delete(r.known, key)
	r.mu.Unlock()
	return &Partition{r: r, topic: topic, partition: partition, k: k, stable: -1, low: -1, lastEnd: -1}
}

// Close keeps what p learned from the lowest offset it was asked about
// on, for the next Open of the partition.
func (p *Partition) Close() {
	k := p.k
	if p.low > k.lo {
		i := sort.Search(len(k.spans), func(i int) bool { return k.spans[i].end > p.low })
		k.spans = append([]span(nil), k.spans[i:]...)
		k.lo = min(p.low, k.end())
	}
	if len(k.spans) == 0 {
		return
	}
	key := tp{p.topic, p.partition}
	p.r.mu.Lock()
	if old, ok := p.r.known[key]; !ok || old.end() < k.end() {
		p.r.known[key] = k
	}
	p.r.mu.Unlock()
}

// Summary counts one Decide call's verdicts.
type Summary struct {
	// Decided is how many records, from the first, are decided; the
	// rest (from the first Undecided one on) are Undecided.
	Decided          int
	Aborted, Unknown int
}

// Decide sets out[i] to the verdict of recs[i] and returns the counts;
// only recs' offsets are read, and they must increase. It fetches only
// offsets it has not learned yet, each fetch asking for about twice the
// source bytes of the records still to decide (twice the previous fetch's
// size when it continues it), so one fetch covers the next call's records
// too. At the first Undecided record it stops: that record and every later
// one are Undecided (a later offset is past the last stable offset too).
// out must be at least as long as recs.
func (p *Partition) Decide(ctx context.Context, recs []kgo.Record, out []Verdict) (Summary, error) {
	var s Summary
	if len(recs) == 0 {
		return s, nil
	}
	if first := recs[0].Offset; p.low < 0 || first < p.low {
		p.low = first
	}
	out = out[:len(recs)]
	k := -1 // span of the previous record
	for i := range recs {
		x := recs[i].Offset
		if k < 0 || x >= p.k.spans[k].end {
			if x < p.k.lo || x >= p.k.end() {
				ok, err := p.learnAt(ctx, x, recs[i:], 0)
				if err != nil {
					return s, err
				}
				if !ok {
					clear(out[i:])
					return s, nil
				}
			}
			k = sort.Search(len(p.k.spans), func(j int) bool { return p.k.spans[j].end > x })
		}
		v := p.k.spans[k].v
		out[i] = v
		s.Decided++
		switch v {
		case Aborted:
			s.Aborted++
		case Unknown:
			s.Unknown++
		}
	}
	return s, nil
}

// Wait polls the source until offset is decided, or until until passes,
// and reports whether it is decided. It reads the source at least once,
// even when until has passed. Each poll is a fetch the broker holds until
// stable records arrive (at most a few seconds), so a commit is seen as
// soon as it happens.
func (p *Partition) Wait(ctx context.Context, offset int64, until time.Time) (bool, error) {
	for polled := false; ; polled = true {
		if offset >= p.k.lo && offset < p.k.end() {
			return true, nil
		}
		left := time.Until(until)
		if polled && left <= 0 {
			return false, nil
		}
		if _, err := p.learnAt(ctx, offset, nil, min(max(left, 0), maxPoll)); err != nil {
			return false, err
		}
	}
}

// learnAt fetches until offset x is decided or proven Undecided, and
// reports which. rest are the records from x on, to size the fetch; wait
// is how long the broker may hold a fetch that finds nothing stable.
func (p *Partition) learnAt(ctx context.Context, x int64, rest []kgo.Record, wait time.Duration) (bool, error) {
	want := 0
	for tries := 0; ; tries++ {
		if x >= p.k.lo && x < p.k.end() {
			return true, nil
		}
		if tries > 0 && x >= p.stable && p.k.end() >= p.stable && want == 0 {
			return false, nil
		}
		if tries >= 64 {
			return false, fmt.Errorf("txnstate: %s/%d: offset %d still undecided after %d fetches", p.topic, p.partition, x, tries)
		}
		from := p.k.end()
		if x < p.k.lo || x > from {
			from = x // a jump: what came before is not needed now
		}
		size := max(want, p.fetchSize(from, rest))
		rp, err := p.r.fetch(ctx, p.topic, p.partition, from, size, wait)
		var oor *outOfRangeError
		switch {
		case errors.As(err, &oor) && oor.logStart > from:
			// Deleted since it was read: nothing tells what it was.
			p.absorb(from, learned{spans: []span{{oor.logStart, Unknown}}, end: oor.logStart})
			p.lastEnd, p.lastSize = -1, 0
			want = 0
			continue
		case err != nil:
			return false, err
		}
		stable := rp.LastStableOffset
		if stable < 0 {
			stable = rp.HighWatermark
		}
		p.stable = stable
		l, err := learn(from, rp.RecordBatches, rp.AbortedTransactions, stable)
		if err != nil {
			return false, fmt.Errorf("txnstate: %s/%d from offset %d: %w", p.topic, p.partition, from, err)
		}
		want = 0
		if l.want > 0 {
			// Only the start of a batch came back: ask for all of it.
			want = min(max(l.want, 2*size), 1<<30)
		}
		p.absorb(from, l)
		p.lastEnd, p.lastSize = l.end, size
	}
}

// fetchSize is the bytes to ask for from offset from, for the records
// rest (whose first is at or after from).
func (p *Partition) fetchSize(from int64, rest []kgo.Record) int {
	est := 0
	for i := range rest {
		r := &rest[i]
		est += len(r.Key) + len(r.Value) + recordOverhead
		for _, h := range r.Headers {
			est += len(h.Key) + len(h.Value)
		}
	}
	size := 2 * est
	if from == p.lastEnd {
		size = max(size, 2*p.lastSize)
	}
	return min(max(size, MinFetchBytes), MaxFetchBytes)
}

// absorb adds what a fetch from offset from learned.
func (p *Partition) absorb(from int64, l learned) {
	if from != p.k.end() || from < p.k.lo {
		p.k = knowledge{lo: from}
	}
	for _, s := range l.spans {
		end := p.k.end()
		if s.end <= end {
			continue
		}
		if n := len(p.k.spans); n > 0 && p.k.spans[n-1].v == s.v {
			p.k.spans[n-1].end = s.end
		} else {
			p.k.spans = append(p.k.spans, s)
		}
	}
}

// outOfRangeError is a fetch below the log start (or past the end).
type outOfRangeError struct {
	logStart int64
	err      error
}

func (e *outOfRangeError) Error() string { return e.err.Error() }
func (e *outOfRangeError) Unwrap() error { return e.err }

// fetch issues one read_committed Fetch of a partition from offset from
// to its leader, retrying a few times on retriable errors.
func (r *Reader) fetch(ctx context.Context, topic string, partition int32, from int64, size int, wait time.Duration) (*kmsg.FetchResponseTopicPartition, error) {
	for tries := 0; ; tries++ {
		if tries > 0 {
			t := time.NewTimer(time.Duration(tries) * 100 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("txnstate: fetching %s/%d@%d: %w", topic, partition, from, ctx.Err())
			case <-t.C:
			}
		}
		leader, id, err := r.leader(ctx, topic, partition, tries > 0)
		if err != nil {
			if tries < 3 && ctx.Err() == nil && kerr.IsRetriable(err) {
				continue
			}
			return nil, err
		}
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = int32(wait.Milliseconds())
		req.MinBytes = 1
		req.MaxBytes = int32(size)
		req.IsolationLevel = 1 // read_committed: LastStableOffset and AbortedTransactions
		req.SessionEpoch = -1  // no fetch session
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rt.TopicID = id // Fetch v13+ names topics by ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = partition
		rp.FetchOffset = from
		rp.PartitionMaxBytes = int32(size)
		rp.CurrentLeaderEpoch = -1
		rp.LogStartOffset = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, r.cl.Broker(int(leader)))
		if err != nil {
			if tries < 3 && ctx.Err() == nil {
				continue // a broken connection: kgo dials again
			}
			return nil, fmt.Errorf("txnstate: fetching %s/%d@%d: %w", topic, partition, from, err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			if tries < 3 && kerr.IsRetriable(err) {
				continue
			}
			return nil, fmt.Errorf("txnstate: fetching %s/%d@%d: %w", topic, partition, from, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return nil, fmt.Errorf("txnstate: fetching %s/%d@%d: the response names %d topics", topic, partition, from, len(resp.Topics))
		}
		p := &resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			switch {
			case errors.Is(err, kerr.OffsetOutOfRange):
				return nil, &outOfRangeError{logStart: p.LogStartOffset, err: fmt.Errorf("txnstate: fetching %s/%d@%d (log start %d): %w", topic, partition, from, p.LogStartOffset, err)}
			case tries < 3 && kerr.IsRetriable(err):
				continue
			}
			return nil, fmt.Errorf("txnstate: fetching %s/%d@%d: %w", topic, partition, from, err)
		}
		r.mu.Lock()
		r.stats.Fetches++
		r.stats.Bytes += int64(len(p.RecordBatches))
		r.mu.Unlock()
		return p, nil
	}
}

// leader returns the partition's leader and the topic's ID, from cache
// unless refresh.
func (r *Reader) leader(ctx context.Context, topic string, partition int32, refresh bool) (int32, [16]byte, error) {
	if !refresh {
		r.mu.Lock()
		m := r.meta[topic]
		r.mu.Unlock()
		if m != nil {
			if l, ok := m.leaders[partition]; ok && l >= 0 {
				return l, m.id, nil
			}
		}
	}
	t, err := peek.Metadata(ctx, r.cl, topic)
	if err != nil {
		return 0, [16]byte{}, err
	}
	m := &topicMeta{id: t.ID, leaders: t.Leaders}
	r.mu.Lock()
	r.meta[topic] = m
	r.mu.Unlock()
	l, err := t.Leader(partition)
	return l, t.ID, err
}
