// Package bench measures the replicator's speed and memory against side-by-side
// baselines: the event decoder against encoding/json, the whole handler
// against a raw franz-go producer, the handler with its transaction check
// against the same handler without it (on a plain and on a transactional
// source topic), and allocations per full event against the event's size.
// The bodies here are shared by `go test -bench` and by the kmig-bench
// command (`make bench`).
//
// Every figure it reports is a ratio of contenders measured in the same
// run, interleaved round by round, because the machines it runs on are
// shared and noisy. It runs the source and target clusters in process
// (kfake): each event's records are first written to the source, untimed,
// so the transaction check reads them at the offsets the event names. It
// must never be imported by a Lambda binary.
package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
)

// Names and shapes of the generated workload.
const (
	// RawTopic is where the raw producer baseline writes.
	RawTopic = "bench.raw"
	// Partitions is how many partitions an event's records are spread
	// over, round robin.
	Partitions = 4
	// OffsetBase is the first offset of the events Workload.Event
	// generates (for the decoders); a large base keeps the offsets'
	// decimal width, and so the event size, the same in every round. A
	// handler Stream's events name the offsets its records were given on
	// the source, which are narrower: they are at most EventSize.
	OffsetBase = 1_000_000_000
	// EventSourceARN is the MSK cluster ARN written in events.
	EventSourceARN = "arn:aws:kafka:eu-west-1:123456789012:cluster/source/6f1c9a54-2b3d-4e5f-8a9b-0c1d2e3f4a5b-1"
)

// Workload is one full event's worth of records of one value size: as
// many records as fit in the event size limit once encoded, each with a
// key, a value of ValueSize random (incompressible) bytes and two headers.
type Workload struct {
	ValueSize int
	recs      []kgo.Record  // templates in event order
	ptrs      []*kgo.Record // &recs[i]
	stride    int64         // offsets per partition per round
	dataBytes int
	enc       *esm.Encoder
}

// NewWorkload builds the records for values of valueSize bytes filling
// an event of at most maxEvent bytes (0 means [esm.MaxPayloadBytes], a
// full event). The content is fixed by a seeded generator, so every run
// measures the same bytes.
func NewWorkload(valueSize, maxEvent int) (*Workload, error) {
	if valueSize < 1 {
		return nil, fmt.Errorf("value size %d: must be at least 1", valueSize)
	}
	if maxEvent <= 0 {
		maxEvent = esm.MaxPayloadBytes
	}
	w := &Workload{ValueSize: valueSize, enc: esm.NewEncoder(EventSourceARN, []string{"b-1.source.example:9096", "b-2.source.example:9096"})}
	rng := rand.New(rand.NewPCG(1, uint64(valueSize)))
	// Values are windows over one random buffer, so a full event costs
	// about one event's worth of memory.
	pool := make([]byte, valueSize+64*1024)
	for i := range pool {
		pool[i] = byte(rng.Uint32())
	}
	ts := time.UnixMilli(1_767_225_600_000)
	size := w.enc.Overhead()
	groups := map[int32]bool{}
	for i := 0; ; i++ {
		p := int32(i % Partitions)
		at := rng.IntN(len(pool) - valueSize + 1)
		trace := make([]byte, 16)
		for j := range trace {
			trace[j] = byte(rng.Uint32())
		}
		r := kgo.Record{
			Topic:     EventTopic,
			Partition: p,
			Offset:    OffsetBase + int64(i/Partitions),
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
			Key:       []byte("key-" + strconv.Itoa(1_000_000+i)),
			Value:     pool[at : at+valueSize : at+valueSize],
			Headers: []kgo.RecordHeader{
				{Key: "content-type", Value: []byte("application/octet-stream")},
				{Key: "trace-id", Value: trace},
			},
		}
		add := esm.RecordSize(&r)
		if groups[p] {
			add++ // comma after the partition's previous record
		} else {
			if len(groups) > 0 {
				add++
			}
			add += esm.GroupOverhead(r.Topic, p)
		}
		if size+add > maxEvent {
			break
		}
		groups[p] = true
		size += add
		w.recs = append(w.recs, r)
		w.dataBytes += recordBytes(&r)
	}
	if len(w.recs) == 0 {
		return nil, fmt.Errorf("value size %d: no record fits in an event", valueSize)
	}
	w.stride = int64((len(w.recs) + Partitions - 1) / Partitions)
	w.ptrs = make([]*kgo.Record, len(w.recs))
	for i := range w.recs {
		w.ptrs[i] = &w.recs[i]
	}
	if got := w.enc.Size(w.ptrs); got != size || got > maxEvent {
		return nil, fmt.Errorf("value size %d: event would be %d bytes, sized as %d (limit %d)", valueSize, got, size, maxEvent)
	}
	return w, nil
}

func recordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Records is the number of records in one event.
func (w *Workload) Records() int { return len(w.recs) }

// DataBytes is the key, value and header bytes of one event's records
// (what a raw producer hands to Kafka), the basis of every MB/s figure.
func (w *Workload) DataBytes() int { return w.dataBytes }

// EventSize is the encoded size of one event; it is the same every round.
func (w *Workload) EventSize() int { return w.enc.Size(w.ptrs) }

// Event appends to dst the event for the given round: the same records,
// with each partition's offsets continuing where the previous round's
// stopped, so a replicator sees a stream of new batches (not retries).
func (w *Workload) Event(dst []byte, round int) []byte {
	w.setRound(round)
	return w.enc.Append(dst, w.ptrs)
}

func (w *Workload) setRound(round int) {
	for i := range w.recs {
		w.recs[i].Offset = OffsetBase + int64(round)*w.stride + int64(i/Partitions)
	}
}

// ProducerRecords returns fresh records with the event's keys, values,
// headers, timestamps and partitions, addressed to topic, for a producer
// to write.
func (w *Workload) ProducerRecords(topic string) []*kgo.Record {
	recs := make([]kgo.Record, len(w.recs))
	out := make([]*kgo.Record, len(w.recs))
	for i, t := range w.recs {
		recs[i] = kgo.Record{Topic: topic, Partition: t.Partition, Timestamp: t.Timestamp, Key: t.Key, Value: t.Value, Headers: t.Headers}
		out[i] = &recs[i]
	}
	return out
}

// SizeLabel names a value size the way the report does: 100B, 1KB, 10KB.
func SizeLabel(n int) string {
	switch {
	case n >= 1024 && n%1024 == 0:
		return strconv.Itoa(n/1024) + "KB"
	default:
		return strconv.Itoa(n) + "B"
	}
}
