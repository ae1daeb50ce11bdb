package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// Check is the verification of one run's target topic against the backlog.
type Check struct {
	Records    int64 // records read from the target
	Lost       int64 // sequence numbers missing on the target
	Duplicated int64 // records repeating (or going back to) an earlier sequence number
	Bad        int64 // checksum, key, partition or provenance wrong
	First      string
}

// OK reports zero lost, zero duplicated, nothing changed.
func (c Check) OK() bool { return c.Lost == 0 && c.Duplicated == 0 && c.Bad == 0 }

func (c Check) String() string {
	s := fmt.Sprintf("%d records, lost %d, duplicated %d, bad %d", c.Records, c.Lost, c.Duplicated, c.Bad)
	if c.First != "" {
		s += " (first problem: " + c.First + ")"
	}
	return s
}

// readTopic reads every partition of topic from the start to its end
// offset at the time of the call, calling fn for each record in offset
// order per partition.
func readTopic(ctx context.Context, opts []kgo.Opt, topic string, fn func(*kgo.Record)) error {
	adm, err := NewAdmin(opts)
	if err != nil {
		return err
	}
	ends, err := adm.EndOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		return err
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	for p, e := range ends {
		if e > 0 {
			want[p] = e
			parts[p] = kgo.NewOffset().AtStart()
		}
	}
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxPartitionBytes(8<<20), kgo.FetchMaxBytes(64<<20))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %w (partitions not read to the end: %v)", topic, err, want)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("reading %s/%d: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if w, ok := want[r.Partition]; !ok || r.Offset >= w {
				return
			}
			fn(r)
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return nil
}

// checker checks records partition by partition against a backlog whose
// partition p holds sequence numbers 0..want[p]-1 in order.
type checker struct {
	srcTopic   string
	provenance bool // records must carry kmig-src naming srcTopic/p/seq
	next       map[int32]int64
	c          Check
	key        []byte
}

func newChecker(srcTopic string, provenance bool) *checker {
	return &checker{srcTopic: srcTopic, provenance: provenance, next: map[int32]int64{}}
}

func (k *checker) bad(format string, args ...any) {
	k.c.Bad++
	if k.c.First == "" {
		k.c.First = fmt.Sprintf(format, args...)
	}
}

// add checks one target record and returns its parsed header.
func (k *checker) add(r *kgo.Record) (Parsed, bool) {
	k.c.Records++
	v, err := ParseValue(r.Value)
	if err != nil {
		k.bad("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		return v, false
	}
	if v.Partition != r.Partition {
		k.bad("%s/%d@%d: record of source partition %d", r.Topic, r.Partition, r.Offset, v.Partition)
		return v, false
	}
	k.key = strconv.AppendInt(append(k.key[:0], 'k'), v.Seq, 10)
	if string(r.Key) != string(k.key) {
		k.bad("%s/%d@%d: key %q, want %q", r.Topic, r.Partition, r.Offset, r.Key, k.key)
	}
	if k.provenance {
		src, err := provenance.Of(r)
		if err != nil || src.Topic != k.srcTopic || src.Partition != r.Partition || src.Offset != v.Seq {
			k.bad("%s/%d@%d: provenance %v (%v), want %s/%d/%d", r.Topic, r.Partition, r.Offset, src, err, k.srcTopic, r.Partition, v.Seq)
		}
	}
	n := k.next[r.Partition]
	switch {
	case v.Seq == n:
		k.next[r.Partition] = n + 1
	case v.Seq < n:
		k.c.Duplicated++
		if k.c.First == "" {
			k.c.First = fmt.Sprintf("%s/%d@%d: sequence %d again (next expected %d)", r.Topic, r.Partition, r.Offset, v.Seq, n)
		}
	default:
		k.c.Lost += v.Seq - n
		if k.c.First == "" {
			k.c.First = fmt.Sprintf("%s/%d@%d: sequence %d, expected %d", r.Topic, r.Partition, r.Offset, v.Seq, n)
		}
		k.next[r.Partition] = v.Seq + 1
	}
	return v, true
}

// finish counts what never arrived, given each partition's record count.
func (k *checker) finish(want map[int32]int64) Check {
	for p, w := range want {
		if n := k.next[p]; n < w {
			k.c.Lost += w - n
			if k.c.First == "" {
				k.c.First = fmt.Sprintf("partition %d: %d of %d records", p, n, w)
			}
		}
	}
	return k.c
}

// VerifyTarget reads the whole target topic and checks it against the
// source backlog: every partition holds exactly sequence numbers
// 0..PerPartition-1, in order, with intact checksums and keys (and, with
// prov, a kmig-src header naming the source record).
func VerifyTarget(ctx context.Context, env Env, b Backlog, prov bool) (Check, error) {
	k := newChecker(b.Topic, prov)
	if err := readTopic(ctx, env.TargetOpts(), b.Topic, func(r *kgo.Record) { k.add(r) }); err != nil {
		return Check{}, err
	}
	want := map[int32]int64{}
	for p := range b.Partitions {
		want[p] = b.PerPartition
	}
	return k.finish(want), nil
}
