package esm

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// seedGroup commits offsets for group, as the reconciler seeds a group
// before creating its mapping.
func seedGroup(t *testing.T, ctx context.Context, src *kafkalocal.Cluster, group string, offs map[string]map[int32]int64) {
	t.Helper()
	adm, err := src.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	var os kadm.Offsets
	for topic, ps := range offs {
		for p, o := range ps {
			os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
		}
	}
	resp, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("seeding group %s: %v", group, err)
	}
}

// TestSeededGroupWinsOverStartingPosition: a group with committed offsets
// is resumed from them, whatever StartingPosition says, as AWS documents.
func TestSeededGroupWinsOverStartingPosition(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	src := startSource(t, []kafkalocal.Topic{{Name: "seeded", Partitions: 2}})
	produce(t, ctx, src, "seeded", 2, 10)
	seedGroup(t, ctx, src, "g-seeded", map[string]map[int32]int64{"seeded": {0: 0, 1: 4}})
	rec := &recorder{}
	m := newMapping(t, src, "seeded", rec, func(c *Config) {
		c.ConsumerGroupID = "g-seeded"
		c.StartingPosition = Latest
	})
	waitCaughtUp(t, m, 20*time.Second)
	// Partition 1 starts at its commit (4): offsets 0..3 are not
	// redelivered. Partition 0 from 0: nothing lost despite LATEST.
	got := map[tp][]int64{}
	for _, a := range rec.snapshot() {
		if a.ok {
			for k, offs := range a.records {
				got[k] = append(got[k], offs...)
			}
		}
	}
	want := map[tp][]int64{{"seeded", 0}: seq(0, 10), {"seeded", 1}: seq(4, 10)}
	for k, w := range want {
		if !equalInts(got[k], w) {
			t.Errorf("%v: delivered %v, want %v", k, got[k], w)
		}
	}
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// noticeHandler sends every LogUncommittedPartition record's partition
// and offset to ch.
type noticeHandler struct {
	ch chan [2]int64
}

func (h noticeHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h noticeHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h noticeHandler) WithGroup(string) slog.Handler            { return h }
func (h noticeHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != LogUncommittedPartition {
		return nil
	}
	var v [2]int64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "partition":
			v[0] = a.Value.Int64()
		case "offset":
			v[1] = a.Value.Int64()
		}
		return true
	})
	h.ch <- v
	return nil
}

// TestUncommittedPartitionStart: a partition added to the topic while the
// mapping runs, with no commit in the (seeded, so existing) group, starts
// at its log start (earliest: every record delivered) or at its end when
// the mapping notices it (latest: exactly the records written before are
// skipped, every later one delivered).
func TestUncommittedPartitionStart(t *testing.T) {
	for _, start := range []PartitionStart{PartitionEarliest, PartitionLatest} {
		t.Run(string(start), func(t *testing.T) {
			ctx := testCtx(t, 90*time.Second)
			src := startSource(t, []kafkalocal.Topic{{Name: "grow", Partitions: 1}})
			produce(t, ctx, src, "grow", 1, 5)
			seedGroup(t, ctx, src, "g-grow", map[string]map[int32]int64{"grow": {0: 0}})
			notices := make(chan [2]int64, 10)
			rec := &recorder{}
			const refresh = 2 * time.Second
			// The mapping fixes where partition 1 starts only once its
			// first records are written: they are written before it
			// notices the partition, however soon it does.
			written := make(chan struct{})
			m := newMapping(t, src, "grow", rec, func(c *Config) {
				c.ConsumerGroupID = "g-grow"
				c.UncommittedPartitionStart = start
				c.MetadataRefresh = refresh
				c.Logger = slog.New(noticeHandler{notices})
				c.assigned = func(ctx context.Context, offs map[string]map[int32]kgo.Offset) {
					if _, ok := offs["grow"][1]; ok {
						select {
						case <-written:
						case <-ctx.Done():
						}
					}
				}
			})
			waitCaughtUp(t, m, 20*time.Second)

			adm, err := src.AdminClient()
			if err != nil {
				t.Fatal(err)
			}
			defer adm.Close()
			added := time.Now()
			if _, err := adm.CreatePartitions(ctx, 1, "grow"); err != nil {
				t.Fatal(err)
			}
			before := produceTo(t, ctx, src, "grow", 1, 0, 5)
			close(written)
			var notice [2]int64
			select {
			case notice = <-notices:
			case <-time.After(15 * refresh):
				// A bound, not a measure: without MetadataRefresh the
				// consumer would look every 5 minutes.
				t.Fatalf("the mapping did not notice partition 1 within %v", 15*refresh)
			}
			t.Logf("partition 1 noticed %v after it was added, at offset %d", time.Since(added).Round(time.Millisecond), notice[1])
			if notice[0] != 1 {
				t.Fatalf("notice for partition %d, want 1", notice[0])
			}
			if start == PartitionLatest && notice[1] != before {
				t.Fatalf("latest starts at offset %d, want %d, the end when the mapping noticed partition 1", notice[1], before)
			}
			produceTo(t, ctx, src, "grow", 1, 5, 5)
			waitCaughtUp(t, m, 20*time.Second)

			want := map[tp]int64{{"grow", 0}: 5, {"grow", 1}: 10}
			var got []int64
			for _, a := range rec.snapshot() {
				if a.ok {
					got = append(got, a.records[tp{"grow", 1}]...)
				}
			}
			if start == PartitionEarliest {
				checkDelivery(t, rec.snapshot(), want)
				if !equalInts(got, seq(0, 10)) {
					t.Fatalf("partition 1 delivered %v, want offsets 0..9", got)
				}
				return
			}
			if !equalInts(got, seq(5, 10)) {
				t.Fatalf("partition 1 delivered %v, want exactly offsets 5..9 (0..4 were written before the mapping noticed the partition)", got)
			}
		})
	}
}

// produceTo writes n records to one partition, values numbered from
// first, with a new client (that knows of partitions just added), and
// returns the partition's end offset after them.
func produceTo(t *testing.T, ctx context.Context, src *kafkalocal.Cluster, topic string, partition int32, first, n int) int64 {
	t.Helper()
	cl, err := src.NewClient(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: partition, Value: []byte{byte(first + i)}})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return rs[len(rs)-1].Offset + 1
}

// TestStartDelay: a new mapping reads Creating for StartDelay, refuses
// updates meanwhile and does not poll, then polls. The test's clock moves
// only when the test moves it.
func TestStartDelay(t *testing.T) {
	const delay = 700 * time.Millisecond
	ctx := testCtx(t, 30*time.Second)
	src := startSource(t, []kafkalocal.Topic{{Name: "slow", Partitions: 1}})
	produce(t, ctx, src, "slow", 1, 3)
	clk := newFakeClock()
	created := clk.Now()
	rec := &recorder{clock: clk}
	m := newMapping(t, src, "slow", rec, func(c *Config) {
		c.StartDelay = delay
		c.MaximumBatchingWindow = -1 // the batch goes at once: only the start waits for the clock
		c.clock = clk
	})
	if st := m.State(); st != StateCreating {
		t.Fatalf("state %s right after creation, want Creating", st)
	}
	if err := m.SetEnabled(false); !errors.Is(err, ErrInTransition) {
		t.Fatalf("SetEnabled while Creating: %v, want ErrInTransition", err)
	}
	clk.waitArmed(t, created.Add(delay), "the end of the start delay")
	if st, polling := m.State(), m.sess.Load() != nil; st != StateCreating || polling {
		t.Fatalf("state %s, polling %v before the start delay ended; want Creating, not polling", st, polling)
	}
	clk.Advance(delay)
	if err := m.WaitState(ctx, StateEnabled); err != nil {
		t.Fatal(err)
	}
	if at := m.LastModified(); !at.Equal(created.Add(delay)) {
		t.Fatalf("Enabled %v after creation, want at the end of the %v start delay", at.Sub(created), delay)
	}
	waitCaughtUp(t, m, 20*time.Second)
	checkDelivery(t, rec.snapshot(), map[tp]int64{{"slow", 0}: 3})
	for _, a := range rec.snapshot() {
		if a.at.Before(created.Add(delay)) {
			t.Fatalf("invoked %v after creation, within the start delay", a.at.Sub(created))
		}
	}
}

// TestAtTimestamp: AT_TIMESTAMP starts a group without commits at the
// first record stamped at or after StartingPositionTimestamp.
func TestAtTimestamp(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	src := startSource(t, []kafkalocal.Topic{{Name: "ts", Partitions: 1}})
	old := time.Now().Add(-time.Hour)
	var rs []*kgo.Record
	for i := range 6 {
		ts := old
		if i >= 4 {
			ts = time.Now()
		}
		rs = append(rs, &kgo.Record{Topic: "ts", Value: []byte{byte(i)}, Timestamp: ts})
	}
	if err := src.ProduceSync(ctx, rs...); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m := newMapping(t, src, "ts", rec, func(c *Config) {
		c.StartingPosition = AtTimestamp
		c.StartingPositionTimestamp = old.Add(30 * time.Minute)
	})
	waitCaughtUp(t, m, 20*time.Second)
	var got []int64
	for _, a := range rec.snapshot() {
		if a.ok {
			got = append(got, a.records[tp{"ts", 0}]...)
		}
	}
	if !equalInts(got, seq(4, 6)) {
		t.Fatalf("AT_TIMESTAMP delivered %v, want offsets 4 and 5", got)
	}
	if _, err := New(Config{FunctionName: "f", Topics: []string{"ts"}, BootstrapServers: src.Bootstrap(), StartingPosition: AtTimestamp}, rec); err == nil {
		t.Fatal("AT_TIMESTAMP without a timestamp accepted")
	}
}
