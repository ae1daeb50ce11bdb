// Package verify checks a migration: it reads whole topics from the
// embedded clusters and compares source and target record for record, by
// provenance. It is used by `make demo` and by tests; it must never be
// imported by a Lambda binary.
package verify

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// ReadAll returns every record of topic a read_committed consumer reads,
// by partition, in offset order from the log start, up to the end offsets at the time of the
// call: records of aborted transactions, and of transactions still open,
// are left out.
func ReadAll(ctx context.Context, c *kafkalocal.Cluster, topic string) (map[int32][]*kgo.Record, error) {
	cl, err := c.NewClient()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s on %s: %w", topic, c.Name(), err)
	}
	// Scans start at the log start: retention or DeleteRecords may have
	// removed the first offsets.
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("start offsets of %s on %s: %w", topic, c.Name(), err)
	}
	out := map[int32][]*kgo.Record{}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
	)
	r := peek.New(cl)
	var parts []kadm.ListedOffset
	ends.Each(func(o kadm.ListedOffset) {
		out[o.Partition] = nil
		parts = append(parts, o)
	})
	for _, o := range parts {
		if o.Offset == 0 {
			continue
		}
		wg.Go(func() {
			var recs []*kgo.Record
			from, _ := starts.Lookup(topic, o.Partition)
			err := r.Scan(ctx, topic, o.Partition, from.Offset, o.Offset, func(rec *kgo.Record) bool {
				recs = append(recs, rec)
				return true
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = fmt.Errorf("reading %s/%d on %s: %w", topic, o.Partition, c.Name(), err)
			}
			out[o.Partition] = recs
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, nil
}

// PartitionResult compares one source partition with its target partition.
type PartitionResult struct {
	Partition  int32
	Source     int    // records in the source partition
	Target     int    // records in the target partition
	Lost       int    // source records with no copy on the target
	Duplicated int    // target records that repeat, or are out of order
	Mismatch   string // the first content difference, if any
}

// OK reports whether the partition was copied exactly once, in order, equal.
func (r PartitionResult) OK() bool { return r.Lost == 0 && r.Duplicated == 0 && r.Mismatch == "" }

// Compare matches target records to source records by their kmig-src
// provenance: every source record must appear exactly once, in order, with
// equal key (null kept apart from empty), value, headers in order and
// CreateTime timestamp, in the same partition.
func Compare(src, dst map[int32][]*kgo.Record, srcTopic string) []PartitionResult {
	parts := make([]int32, 0, len(src))
	for p := range src {
		parts = append(parts, p)
	}
	for p := range dst {
		if _, ok := src[p]; !ok {
			parts = append(parts, p)
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var out []PartitionResult
	for _, p := range parts {
		s, d := src[p], dst[p]
		res := PartitionResult{Partition: p, Source: len(s), Target: len(d)}
		j := 0
		for _, rec := range d {
			pv, err := provenance.Of(rec)
			if err != nil || pv.Topic != srcTopic || pv.Partition != p {
				if res.Mismatch == "" {
					res.Mismatch = fmt.Sprintf("target offset %d: provenance %v (%v), want %s/%d/…", rec.Offset, pv, err, srcTopic, p)
				}
				res.Duplicated++
				continue
			}
			for j < len(s) && s[j].Offset < pv.Offset {
				res.Lost++
				j++
			}
			if j >= len(s) || s[j].Offset != pv.Offset {
				res.Duplicated++
				continue
			}
			if diff := Diff(s[j], rec); diff != "" && res.Mismatch == "" {
				res.Mismatch = fmt.Sprintf("source offset %d: %s", pv.Offset, diff)
			}
			j++
		}
		res.Lost += len(s) - j
		out = append(out, res)
	}
	return out
}

// Diff says how a target record differs from its source record, ignoring
// the topic and the kmig-src header, or returns "".
func Diff(src, dst *kgo.Record) string {
	switch {
	case src.Partition != dst.Partition:
		return fmt.Sprintf("partition %d != %d", dst.Partition, src.Partition)
	case (src.Key == nil) != (dst.Key == nil) || !bytes.Equal(src.Key, dst.Key):
		return fmt.Sprintf("key differs (null %v vs %v, %d vs %d bytes)", dst.Key == nil, src.Key == nil, len(dst.Key), len(src.Key))
	case (src.Value == nil) != (dst.Value == nil) || !bytes.Equal(src.Value, dst.Value):
		return fmt.Sprintf("value differs (null %v vs %v, %d vs %d bytes)", dst.Value == nil, src.Value == nil, len(dst.Value), len(src.Value))
	case !src.Timestamp.Equal(dst.Timestamp):
		return fmt.Sprintf("timestamp %v != %v", dst.Timestamp, src.Timestamp)
	case dst.Attrs.TimestampType() != 0:
		return "timestamp type is not CreateTime"
	}
	sh, dh := userHeaders(src), userHeaders(dst)
	if len(sh) != len(dh) {
		return fmt.Sprintf("%d headers != %d", len(dh), len(sh))
	}
	for i := range sh {
		if sh[i].Key != dh[i].Key || !bytes.Equal(sh[i].Value, dh[i].Value) {
			return fmt.Sprintf("header %d differs (%q vs %q)", i, dh[i].Key, sh[i].Key)
		}
	}
	return ""
}

func userHeaders(r *kgo.Record) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for _, h := range r.Headers {
		if h.Key != provenance.HeaderKey {
			hs = append(hs, h)
		}
	}
	return hs
}
