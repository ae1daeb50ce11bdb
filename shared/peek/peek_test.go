package peek

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReadsShareMetadata: reading one record from each of 16 partitions of
// a topic sends one Metadata request for the topic, not one per read, and
// every read returns its partition's record.
func TestReadsShareMetadata(t *testing.T) {
	const partitions = 16
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var asked atomic.Int64
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if m := req.(*kmsg.MetadataRequest); len(m.Topics) == 1 && m.Topics[0].Topic != nil && *m.Topics[0].Topic == "t" {
			asked.Add(1)
		}
		return nil, nil, false
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for p := range int32(partitions) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Partition: p, Value: fmt.Appendf(nil, "p%d", p)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	asked.Store(0)
	r := New(cl)
	for p := range int32(partitions) {
		rec, _, err := r.At(ctx, "t", p, 0)
		if err != nil || string(rec.Value) != fmt.Sprintf("p%d", p) {
			t.Fatalf("partition %d: %v %v", p, rec, err)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("%d Metadata requests for %d reads of one topic; want 1", n, partitions)
	}
}
