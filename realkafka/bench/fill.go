package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Backlog is a pre-filled source topic: PerPartition records in each of
// Partitions partitions, values of ValueSize bytes.
type Backlog struct {
	Topic        string
	Partitions   int32
	PerPartition int64
	ValueSize    int
}

// Records is the backlog's record count.
func (b Backlog) Records() int64 { return int64(b.Partitions) * b.PerPartition }

// DataBytes is the backlog's key+value bytes (1 MB = 10^6 bytes in reports).
func (b Backlog) DataBytes() int64 {
	var n int64
	for p := int64(0); p < b.PerPartition; p++ {
		n += int64(len(AppendKey(nil, p)) + b.ValueSize)
	}
	return n * int64(b.Partitions)
}

// codec maps a compression name to franz-go's codec.
func codec(name string) kgo.CompressionCodec {
	return map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}[name]
}

// EnsureBacklog fills the backlog on the source unless a topic of that name
// already holds exactly the wanted records (then it is reused). It returns
// whether it filled.
func EnsureBacklog(ctx context.Context, env Env, b Backlog, compression string, progress io.Writer) (bool, error) {
	adm, err := NewAdmin(env.SourceOpts())
	if err != nil {
		return false, err
	}
	defer adm.Close()
	if ok, _ := adm.TopicExists(ctx, b.Topic); ok {
		ends, err := adm.EndOffsets(ctx, b.Topic)
		if err == nil && len(ends) == int(b.Partitions) {
			full := true
			for _, e := range ends {
				full = full && e == b.PerPartition
			}
			if full {
				return false, nil
			}
		}
	}
	if err := adm.RecreateTopic(ctx, b.Topic, b.Partitions, nil); err != nil {
		return false, err
	}
	start := time.Now()
	cl, err := kgo.NewClient(append(env.SourceOpts(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(codec(compression)),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(200000),
		kgo.ProducerLinger(5*time.Millisecond),
	)...)
	if err != nil {
		return false, err
	}
	defer cl.Close()
	var errs firstError
	promise := errs.promise
	// One goroutine per partition: each partition's records go in order.
	var wg sync.WaitGroup
	for p := range b.Partitions {
		wg.Go(func() {
			for seq := int64(0); seq < b.PerPartition; seq++ {
				if ctx.Err() != nil {
					return
				}
				r := &kgo.Record{Topic: b.Topic, Partition: p, Key: AppendKey(nil, seq), Value: AppendValue(nil, b.ValueSize, p, seq, 0)}
				cl.Produce(ctx, r, promise)
			}
		})
	}
	wg.Wait()
	if err := cl.Flush(ctx); err != nil {
		return false, err
	}
	if first := errs.get(); first != nil {
		return false, fmt.Errorf("filling %s: %w", b.Topic, first)
	}
	ends, err := adm.EndOffsets(ctx, b.Topic)
	if err != nil {
		return false, err
	}
	for p, e := range ends {
		if e != b.PerPartition {
			return false, fmt.Errorf("filled %s/%d to offset %d, want %d", b.Topic, p, e, b.PerPartition)
		}
	}
	if progress != nil {
		el := time.Since(start).Seconds()
		fmt.Fprintf(progress, "filled %s: %d records, %.2f GB in %.1fs (%.0f MB/s)\n", b.Topic, b.Records(),
			float64(b.DataBytes())/1e9, el, float64(b.DataBytes())/1e6/el)
	}
	return true, nil
}

// firstError keeps the first error reported to it, by produce promises or
// by set.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) promise(_ *kgo.Record, err error) { f.set(err) }

// set keeps err if it is the first non-nil error.
func (f *firstError) set(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
