package reconcilerun

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
)

func testLog() *slog.Logger {
	if os.Getenv("KMIG_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// kfakePair starts an embedded source (SCRAM with ACLs, as a self-managed
// source) and target.
func kfakePair(t testing.TB) *kafkalocal.Pair {
	t.Helper()
	p, err := kafkalocal.StartPair(kafkalocal.PairOptions{Source: kafkalocal.ClusterOptions{Security: kafkalocal.SecuritySCRAMACL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func startRig(t testing.TB, o Options) *Rig {
	t.Helper()
	if o.Log == nil {
		o.Log = testLog()
	}
	if o.Options.PollInterval == 0 {
		o.Options.PollInterval = 50 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)

	return r
}

func admin(t testing.TB, c *kafkalocal.Cluster) *kadm.Client {
	t.Helper()
	a, err := c.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// produce writes n records to each of partitions of topic, numbered from
// first: key "k<i>", value "<topic>/<p>/<i>", a header and a CreateTime.
func produce(t testing.TB, c *kafkalocal.Cluster, topic string, partitions []int32, first, n int) {
	t.Helper()
	var rs []*kgo.Record
	for _, p := range partitions {
		for i := first; i < first+n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", i),
				Value:     fmt.Appendf(nil, "%s/%d/%d", topic, p, i),
				Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte("v")}},
				Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i))})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A new client each time: it sees partitions added since.
	cl, err := c.NewClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func parts(n int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

func run(t testing.TB, r *Rig) reconcile.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v\nreport: %+v", err, rep)
	}
	return rep
}

// requireReplicated waits until topic is on the target complete: every
// record equal, in order, none lost, none duplicated.
func requireReplicated(t testing.TB, r *Rig, topic string, wantPerPartition map[int32]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := r.WaitReplicated(ctx, topic)
	if err != nil {
		t.Fatalf("%v: %+v", err, res)
	}
	for _, p := range res {
		if want, ok := wantPerPartition[p.Partition]; ok && p.Source != want {
			t.Errorf("%s/%d: %d source records, want %d", topic, p.Partition, p.Source, want)
		}
	}
}

// waitFor polls cond every few milliseconds until it holds. bound only
// guards against a condition that never comes: past it the test fails
// saying it waited for what.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAssigned waits until group's member holds every partition of topic
// up to n.
func waitAssigned(t testing.TB, adm *kadm.Client, group, topic string, n int32) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("group %s to hold %d partitions of %s", group, n, topic), func() bool {
		dg, err := adm.DescribeGroups(context.Background(), group)
		g := dg[group]
		return err == nil && int32(len(g.AssignedPartitions()[topic])) >= n
	})
}

func addPartitions(t testing.TB, adm *kadm.Client, topic string, n int) {
	t.Helper()
	rs, err := adm.CreatePartitions(context.Background(), n, topic)
	if err == nil {
		err = rs.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// starts records, from the mappings' logs, where each mapping started a
// partition it had no committed offset for (esm.LogUncommittedPartition):
// the start is fixed, and logged, before the mapping fetches anything.
type starts struct {
	slog.Handler
	mu *sync.Mutex
	at map[string]int64 // "topic/partition": the offset logged
}

func newStarts(inner *slog.Logger) *starts {
	return &starts{Handler: inner.Handler(), mu: &sync.Mutex{}, at: map[string]int64{}}
}

func (s *starts) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || s.Handler.Enabled(ctx, l)
}

func (s *starts) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == esm.LogUncommittedPartition {
		var topic string
		var partition, offset int64
		rec.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "topic":
				topic = a.Value.String()
			case "partition":
				partition = a.Value.Int64()
			case "offset":
				offset = a.Value.Int64()
			}
			return true
		})
		s.mu.Lock()
		s.at[fmt.Sprintf("%s/%d", topic, partition)] = offset
		s.mu.Unlock()
	}
	if !s.Handler.Enabled(ctx, rec.Level) {
		return nil
	}
	return s.Handler.Handle(ctx, rec)
}

func (s *starts) WithAttrs(as []slog.Attr) slog.Handler {
	return &starts{Handler: s.Handler.WithAttrs(as), mu: s.mu, at: s.at}
}

func (s *starts) WithGroup(name string) slog.Handler {
	return &starts{Handler: s.Handler.WithGroup(name), mu: s.mu, at: s.at}
}

// offset is where a mapping started topic/partition, if it logged it.
func (s *starts) offset(topic string, partition int32) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.at[fmt.Sprintf("%s/%d", topic, partition)]
	return o, ok
}
