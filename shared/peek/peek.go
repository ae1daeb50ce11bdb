// Package peek reads single records from a partition by offset, without a
// consumer group and without disturbing any consumer state.
//
// It is how the replicator finds the provenance of the newest record in a
// target partition, and how the cutover binary-searches a target partition
// for a translated offset. It only reads.
package peek

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrNoRecord is returned when no data record exists at or after the
// requested offset (below the high watermark).
var ErrNoRecord = errors.New("peek: no record at or after offset")

// Reader reads records from one cluster through an existing client. It is
// safe for concurrent use.
//
// It keeps each topic's metadata (ID, partition leaders) for metaTTL, so
// that reading many partitions of a topic sends one Metadata request, not
// one per read; a fetch answered with a retriable error (a leader that
// moved, a topic recreated under a new ID) or not answered at all reads
// the metadata again.
type Reader struct {
	cl *kgo.Client

	mu    sync.Mutex
	metas map[string]cachedTopic
}

type cachedTopic struct {
	t  *Topic
	at time.Time
}

// metaTTL is how long a Reader uses a topic's metadata.
const metaTTL = 5 * time.Second

// New returns a Reader using cl. cl is not closed by the Reader.
func New(cl *kgo.Client) *Reader { return &Reader{cl: cl, metas: map[string]cachedTopic{}} }

// At returns the first data record in topic/partition whose offset is ≥
// offset, and the partition's high watermark. Control records (transaction
// markers) are skipped.
func (r *Reader) At(ctx context.Context, topic string, partition int32, offset int64) (*kgo.Record, int64, error) {
	recs, hwm, err := r.fetch(ctx, topic, partition, offset)
	if err != nil {
		return nil, hwm, err
	}
	return recs[0], hwm, nil
}

// Scan calls fn with every data record of the partition from offset up to
// end, in order, until fn returns false. It reads several records per
// request.
func (r *Reader) Scan(ctx context.Context, topic string, partition int32, offset, end int64, fn func(*kgo.Record) bool) error {
	for offset < end {
		recs, _, err := r.fetch(ctx, topic, partition, offset)
		if errors.Is(err, ErrNoRecord) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.Offset >= end || !fn(rec) {
				return nil
			}
			offset = rec.Offset + 1
		}
	}
	return nil
}

// fetch returns the data records at or after offset that one fetch
// returns (at least one), and the high watermark.
func (r *Reader) fetch(ctx context.Context, topic string, partition int32, offset int64) ([]*kgo.Record, int64, error) {
	leader, id, err := r.meta(ctx, topic, partition, false)
	if err != nil {
		return nil, 0, err
	}
	for tries := 0; ; tries++ {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 1
		req.MaxBytes = 4 << 20
		req.IsolationLevel = 1 // read committed: never return aborted data
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = partition
		rp.FetchOffset = offset
		rp.PartitionMaxBytes = 4 << 20
		rp.CurrentLeaderEpoch = -1
		rp.LogStartOffset = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		req.Topics[0].TopicID = id // fetch v13+ names topics by ID
		resp, err := req.RequestWith(ctx, r.cl.Broker(int(leader)))
		if err != nil {
			r.forget(topic)
			return nil, 0, fmt.Errorf("peek: fetching %s/%d@%d: %w", topic, partition, offset, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
				return nil, 0, fmt.Errorf("peek: fetching %s/%d@%d: %w", topic, partition, offset, err)
			}
			return nil, 0, fmt.Errorf("peek: fetching %s/%d@%d: malformed response", topic, partition, offset)
		}
		p := &resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			if kerr.IsRetriable(err) && tries < 3 {
				if leader, id, err = r.meta(ctx, topic, partition, true); err != nil {
					return nil, 0, err
				}
				continue
			}
			return nil, 0, fmt.Errorf("peek: fetching %s/%d@%d: %w", topic, partition, offset, err)
		}
		fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset: offset, Topic: topic, Partition: partition, IsolationLevel: kgo.ReadCommitted(),
		}, p, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			return nil, 0, fmt.Errorf("peek: decoding %s/%d@%d: %w", topic, partition, offset, fp.Err)
		}
		for i, rec := range fp.Records {
			if rec.Offset >= offset {
				return fp.Records[i:], p.HighWatermark, nil
			}
		}
		// The response held only skipped batches (control records,
		// aborted data). Continue after what we saw, if anything.
		next := offset
		for _, rec := range fp.Records {
			next = rec.Offset + 1
		}
		if fp.LastStableOffset > 0 && next == offset && len(p.RecordBatches) > 0 {
			next = lastBatchEnd(p.RecordBatches, offset)
		}
		if next <= offset || next >= p.HighWatermark {
			return nil, p.HighWatermark, ErrNoRecord
		}
		offset = next
	}
}

// lastBatchEnd returns the offset after the last batch in raw, which holds
// record batches; it is used to step over batches holding no data records.
func lastBatchEnd(raw []byte, def int64) int64 {
	end := def
	for len(raw) >= 61 {
		var b kmsg.RecordBatch
		n := int(int32(raw[8])<<24|int32(raw[9])<<16|int32(raw[10])<<8|int32(raw[11])) + 12
		if n > len(raw) || b.ReadFrom(raw[:n]) != nil {
			break
		}
		end = b.FirstOffset + int64(b.LastOffsetDelta) + 1
		raw = raw[n:]
	}
	return end
}

// Last returns the newest data record in the partition strictly below end
// (normally the high watermark), scanning back over skipped batches. It
// returns ErrNoRecord when the partition holds no data record below end.
func (r *Reader) Last(ctx context.Context, topic string, partition int32, logStart, end int64) (*kgo.Record, error) {
	step := int64(1)
	for from := end - 1; ; {
		if from < logStart {
			from = logStart
		}
		if from >= end {
			return nil, ErrNoRecord
		}
		var last *kgo.Record
		for off := from; off < end; {
			rec, _, err := r.At(ctx, topic, partition, off)
			if errors.Is(err, ErrNoRecord) {
				break
			}
			if err != nil {
				return nil, err
			}
			if rec.Offset >= end {
				break
			}
			last = rec
			off = rec.Offset + 1
		}
		if last != nil {
			return last, nil
		}
		if from == logStart {
			return nil, ErrNoRecord
		}
		step *= 16
		from = end - step
	}
}

// meta returns the partition's leader and the topic's ID, from metadata
// read at most metaTTL ago unless fresh.
func (r *Reader) meta(ctx context.Context, topic string, partition int32, fresh bool) (int32, [16]byte, error) {
	if !fresh {
		r.mu.Lock()
		c, ok := r.metas[topic]
		r.mu.Unlock()
		if ok && time.Since(c.at) < metaTTL {
			if l, err := c.t.Leader(partition); err == nil {
				return l, c.t.ID, nil
			}
		}
	}
	t, err := Metadata(ctx, r.cl, topic)
	if err != nil {
		r.forget(topic)
		return 0, [16]byte{}, err
	}
	r.mu.Lock()
	if r.metas == nil {
		r.metas = map[string]cachedTopic{}
	}
	r.metas[topic] = cachedTopic{t: t, at: time.Now()}
	r.mu.Unlock()
	l, err := t.Leader(partition)
	return l, t.ID, err
}

// forget drops topic's metadata, so that the next read asks again.
func (r *Reader) forget(topic string) {
	r.mu.Lock()
	delete(r.metas, topic)
	r.mu.Unlock()
}

// Topic is one topic's metadata as a raw request needs it: its ID (Fetch
// v13+ names topics by ID) and each partition's leader (-1 if none).
type Topic struct {
	Name    string
	ID      [16]byte
	Leaders map[int32]int32
}

// Leader returns partition's leader, or an error wrapping
// kerr.UnknownTopicOrPartition or kerr.LeaderNotAvailable.
func (t *Topic) Leader(partition int32) (int32, error) {
	l, ok := t.Leaders[partition]
	switch {
	case !ok:
		return 0, fmt.Errorf("peek: %s has no partition %d: %w", t.Name, partition, kerr.UnknownTopicOrPartition)
	case l < 0:
		return 0, fmt.Errorf("peek: %s/%d has no leader: %w", t.Name, partition, kerr.LeaderNotAvailable)
	}
	return l, nil
}

// Metadata reads topic's metadata with one Metadata request through cl.
func Metadata(ctx context.Context, cl *kgo.Client, topic string) (*Topic, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("peek: metadata of %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("peek: metadata of %s: %w", topic, err)
		}
		out := &Topic{Name: topic, ID: t.TopicID, Leaders: make(map[int32]int32, len(t.Partitions))}
		for _, p := range t.Partitions {
			out.Leaders[p.Partition] = p.Leader
		}
		return out, nil
	}
	return nil, fmt.Errorf("peek: metadata of %s: %w", topic, kerr.UnknownTopicOrPartition)
}
