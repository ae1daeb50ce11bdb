package provenance

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

// ReadTail returns the newest record below end with the source it names,
// ok=false for an empty range, and an *UnusableError for a newest record
// without the header.
func TestReadTail(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for _, h := range []string{"s/3/10", "s/3/11", ""} {
		rec := &kgo.Record{Topic: "t", Value: []byte("v")}
		if h != "" {
			rec.Headers = []kgo.RecordHeader{{Key: HeaderKey, Value: []byte(h)}}
		}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	r := peek.New(cl)

	if _, ok, err := ReadTail(ctx, r, "t", 0, 0, 0); ok || err != nil {
		t.Fatalf("empty range: ok %v, err %v; want no tail", ok, err)
	}
	for end, want := range map[int64]Tail{1: {0, Source{"s", 3, 10}}, 2: {1, Source{"s", 3, 11}}} {
		got, ok, err := ReadTail(ctx, r, "t", 0, 0, end)
		if err != nil || !ok || got != want {
			t.Fatalf("end %d: %+v ok %v err %v; want %+v", end, got, ok, err, want)
		}
	}
	_, _, err = ReadTail(ctx, r, "t", 0, 0, 3)
	var ue *UnusableError
	if !errors.As(err, &ue) || ue.Offset != 2 || !errors.Is(err, ErrAbsent) {
		t.Fatalf("err %v; want *UnusableError at offset 2 wrapping ErrAbsent", err)
	}
}
