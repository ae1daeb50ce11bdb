package txnstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// cluster returns a source cluster, embedded or real, and a topic on it
// with the given partitions, named uniquely on real brokers.
func cluster(t *testing.T, real bool, topic string, partitions int32) (*kafkalocal.Cluster, string) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	if real {
		pair := realkafka.Pair(t)
		topic = realkafka.UniqueName("kmig-txnstate." + topic)
		if err := pair.Source.CreateTopic(ctx, topic, partitions); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if adm, err := pair.Source.AdminClient(); err == nil && !t.Failed() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, _ = adm.DeleteTopics(ctx, topic)
				cancel()
				adm.Close()
			}
		})
		return pair.Source, topic
	}
	c, err := kafkalocal.StartSource(kafkalocal.ClusterOptions{Security: kafkalocal.SecurityPlaintext,
		Topics: []kafkalocal.Topic{{Name: topic, Partitions: partitions}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, topic
}

func client(t *testing.T, c *kafkalocal.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := c.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// mixedLog writes, to every partition of topic, records of two
// transactional producers (one compressing with lz4, one uncompressed)
// whose transactions overlap, some committed and some aborted, with
// non-transactional records between them, and leaves a transaction of the
// first producer open. It returns a function that commits it.
func mixedLog(t *testing.T, ctx context.Context, c *kafkalocal.Cluster, topic string, partitions int32) (commit func()) {
	t.Helper()
	a := client(t, c, kgo.TransactionalID(topic+"-a"), kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	b := client(t, c, kgo.TransactionalID(topic+"-b"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	plain := client(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	n := 0
	write := func(cl *kgo.Client, records int) {
		t.Helper()
		for i := 0; i < records; i++ {
			for p := range partitions {
				n++
				rec := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", n), Value: []byte(strings.Repeat("v", n%50))}
				if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	begin := func(cl *kgo.Client) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	end := func(cl *kgo.Client, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	write(plain, 2)
	begin(a)
	write(a, 3)
	begin(b)
	write(b, 2)
	write(plain, 1)
	write(a, 1)
	end(a, kgo.TryAbort)
	write(b, 2)
	end(b, kgo.TryCommit)
	begin(a)
	write(a, 2)
	end(a, kgo.TryCommit)
	begin(b)
	write(b, 3)
	write(plain, 2)
	end(b, kgo.TryAbort)
	begin(a)
	write(a, 2)
	write(plain, 1)
	return func() { end(a, kgo.TryCommit) }
}

func TestMatchesKgoOnKfake(t *testing.T)   { testMatchesKgo(t, false) }
func TestRealKafkaMatchesKgo(t *testing.T) { testMatchesKgo(t, true) }

// testMatchesKgo fetches a broker's mixed log read_committed from every
// offset with several size limits, and checks learn against
// kgo.ProcessFetchPartition with ReadCommitted on the same response: every
// data record kgo keeps is Committed, every one it drops Aborted. The open
// transaction's records are never decided, until it commits.
func testMatchesKgo(t *testing.T, real bool) {
	ctx := testCtx(t, 3*time.Minute)
	c, topic := cluster(t, real, "mixed", 3)
	commit := mixedLog(t, ctx, c, topic, 3)
	cl := client(t, c)
	r := NewReader(cl)
	adm := kadm.NewClient(cl)
	check := func(stage string) {
		t.Helper()
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(e kadm.ListedOffset) {
			aborted, committed := 0, 0
			for from := int64(0); from <= e.Offset; from++ {
				for _, size := range []int{1, 300, 1 << 20} {
					rp, err := r.fetch(ctx, topic, e.Partition, from, size, 0)
					if err != nil {
						t.Fatal(err)
					}
					a, c := compareWithKgo(t, fmt.Sprintf("%s %d@%d/%dB", stage, e.Partition, from, size), from, rp)
					if from == 0 && size == 1<<20 {
						aborted, committed = a, c
					}
				}
			}
			if aborted == 0 || committed == 0 {
				t.Errorf("%s partition %d: %d aborted, %d committed records from offset 0: the log is not mixed", stage, e.Partition, aborted, committed)
			}
		})
	}
	check("open")
	commit()
	check("committed")
}

// compareWithKgo checks learn against kgo on one fetch response and
// returns how many data records it found aborted and committed.
func compareWithKgo(t *testing.T, what string, from int64, rp *kmsg.FetchResponseTopicPartition) (aborted, committed int) {
	t.Helper()
	l, err := learn(from, rp.RecordBatches, rp.AbortedTransactions, rp.LastStableOffset)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if l.end > max(from, rp.LastStableOffset) {
		t.Fatalf("%s: learned up to %d, past the last stable offset %d", what, l.end, rp.LastStableOffset)
	}
	kept := func(level kgo.IsolationLevel) map[int64]bool {
		fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: from, Topic: "t", Partition: rp.Partition, IsolationLevel: level}, rp, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			t.Fatalf("%s: kgo: %v", what, fp.Err)
		}
		out := map[int64]bool{}
		for _, rec := range fp.Records {
			out[rec.Offset] = true
		}
		return out
	}
	keep, all := kept(kgo.ReadCommitted()), kept(kgo.ReadUncommitted())
	vs := verdicts(from, l)
	for o := range all {
		want := Aborted
		if keep[o] {
			want = Committed
		}
		switch {
		case o >= l.end && keep[o]:
			t.Errorf("%s: kgo keeps %d, past what learn decided (%d)", what, o, l.end)
		case o >= l.end:
		case vs[o] != want:
			t.Errorf("%s: offset %d: %v, kgo says %v", what, o, vs[o], want)
		case want == Aborted:
			aborted++
		default:
			committed++
		}
	}
	for o := from; o < l.end; o++ {
		if !all[o] && vs[o] != Aborted {
			t.Errorf("%s: offset %d holds no data record (a marker) but is %v", what, o, vs[o])
		}
	}
	return aborted, committed
}

func TestDecideAndWaitOnKfake(t *testing.T)   { testDecideAndWait(t, false) }
func TestRealKafkaDecideAndWait(t *testing.T) { testDecideAndWait(t, true) }

// testDecideAndWait decides a whole partition through Decide as the
// replicator does, in runs of 5 records: the open transaction and what
// follows it are Undecided, Wait sees its commit as it happens, and then
// everything is decided as a read_committed consumer reads it.
func testDecideAndWait(t *testing.T, real bool) {
	ctx := testCtx(t, 2*time.Minute)
	c, topic := cluster(t, real, "wait", 1)
	commit := mixedLog(t, ctx, c, topic, 1)
	cl := client(t, c)
	all := readAll(t, ctx, cl, topic, kgo.ReadUncommitted())
	// The reader's own client reports each fetch it writes.
	fetches := make(chan struct{}, 1000)
	r := NewReader(client(t, c, kgo.WithHooks(fetchWrites(fetches))))
	decide := func() ([]Verdict, Summary) {
		t.Helper()
		p := r.Open(topic, 0)
		defer p.Close()
		out := make([]Verdict, len(all))
		var sum Summary
		for i := 0; i < len(all); i += 5 {
			j := min(i+5, len(all))
			s, err := p.Decide(ctx, all[i:j], out[i:j])
			if err != nil {
				t.Fatal(err)
			}
			sum.Decided += s.Decided
			sum.Aborted += s.Aborted
			if s.Decided < j-i {
				for _, v := range out[i+s.Decided : j] {
					if v != Undecided {
						t.Fatalf("a verdict after an undecided record: %v", out)
					}
				}
				break
			}
		}
		return out, sum
	}
	stable := func() int64 {
		t.Helper()
		lso, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lso.Lookup(topic, 0)
		return o.Offset
	}
	lso := stable()
	out, sum := decide()
	for i, rec := range all {
		if (rec.Offset >= lso) != (out[i] == Undecided) {
			t.Fatalf("offset %d (last stable %d): %v", rec.Offset, lso, out[i])
		}
	}
	if sum.Aborted == 0 || sum.Decided == len(all) {
		t.Fatalf("summary %+v of %d records: want aborted ones and undecided ones", sum, len(all))
	}
	// Wait gives up at its deadline while the transaction stays open,
	// not before.
	p := r.Open(topic, 0)
	until := time.Now().Add(300 * time.Millisecond)
	if ok, err := p.Wait(ctx, lso, until); ok || err != nil {
		t.Fatalf("Wait on an open transaction: %v, %v", ok, err)
	}
	if now := time.Now(); now.Before(until) {
		t.Fatalf("Wait gave up %v before its deadline", until.Sub(now))
	}
	// It sees a commit made while it polls: the commit comes once
	// Wait's fetch is on the wire. (Each fetch is signalled before its
	// response is read: those of the earlier calls are all here.)
	for len(fetches) > 0 {
		<-fetches
	}
	waited := make(chan error, 1)
	go func() {
		ok, err := p.Wait(ctx, lso, time.Now().Add(time.Minute))
		if err == nil && !ok {
			err = errors.New("not decided")
		}
		waited <- err
	}()
	select {
	case <-fetches:
	case err := <-waited:
		t.Fatalf("Wait returned before the commit, without polling: %v", err)
	case <-ctx.Done():
		t.Fatal("Wait sent no fetch")
	}
	commit()
	if err := <-waited; err != nil {
		t.Fatalf("Wait with the commit made while it polled: %v", err)
	}
	p.Close()
	committed := map[int64]bool{}
	for _, rec := range readAll(t, ctx, cl, topic, kgo.ReadCommitted()) {
		committed[rec.Offset] = true
	}
	out, sum = decide()
	if sum.Decided != len(all) {
		t.Fatalf("after the commit, %d of %d records decided", sum.Decided, len(all))
	}
	for i, rec := range all {
		want := Aborted
		if committed[rec.Offset] {
			want = Committed
		}
		if out[i] != want {
			t.Errorf("offset %d: %v, a read_committed consumer says %v", rec.Offset, out[i], want)
		}
	}
}

// fetchWrites is a kgo hook that signals on c each Fetch request written
// to a broker.
type fetchWrites chan<- struct{}

func (c fetchWrites) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Fetch.Int16() && err == nil {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// readAll reads a partition-0 topic to its end at the given isolation
// level: read_uncommitted with a kgo consumer, read_committed with
// peek.Reader (whose fetches kgo processes read_committed).
func readAll(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, level kgo.IsolationLevel) []kgo.Record {
	t.Helper()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	var out []kgo.Record
	if level == kgo.ReadCommitted() {
		if err := peek.New(cl).Scan(ctx, topic, 0, 0, end.Offset, func(rec *kgo.Record) bool { out = append(out, *rec); return true }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Control records are kept so the read reaches the end offset even
	// when the log ends with a transaction marker (a real broker writes
	// markers after EndTxn has answered, so one can land after later
	// records); they are not returned.
	rd, err := kgo.NewClient(append(cl.Opts(), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for next := int64(0); next < end.Offset; {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s to offset %d: at %d: %v", topic, end.Offset, next, err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			next = rec.Offset + 1
			if !rec.Attrs.IsControl() {
				out = append(out, *rec)
			}
		})
	}
	return out
}

func TestDecideFetchesOnceForManyRuns(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	c, topic := cluster(t, false, "runs", 1)
	var recs []*kgo.Record
	for i := range 4 * 512 {
		recs = append(recs, &kgo.Record{Topic: topic, Value: make([]byte, 100), Key: fmt.Appendf(nil, "%d", i)})
	}
	if err := c.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	cl := client(t, c)
	all := readAll(t, ctx, cl, topic, kgo.ReadUncommitted())
	r := NewReader(cl)
	p := r.Open(topic, 0)
	out := make([]Verdict, 512)
	for i := 0; i < len(all); i += 512 {
		s, err := p.Decide(ctx, all[i:i+512], out)
		if err != nil || s.Decided != 512 || s.Aborted != 0 {
			t.Fatalf("run %d: %+v, %v", i/512, s, err)
		}
	}
	p.Close()
	if st := r.Stats(); st.Fetches > 2 {
		t.Fatalf("%d fetches for 4 runs of 512 records (%d bytes); want at most 2", st.Fetches, st.Bytes)
	}
	// What was learned outlives the partition: a retry needs no fetch.
	before := r.Stats().Fetches
	p = r.Open(topic, 0)
	if s, err := p.Decide(ctx, all[:512], out); err != nil || s.Decided != 512 {
		t.Fatalf("again: %+v, %v", s, err)
	}
	p.Close()
	if r.Stats().Fetches != before {
		t.Fatalf("deciding known offsets again fetched")
	}
}

// TestDecideBelowLogStart: records the source deleted since they were read
// are Unknown.
func TestDecideBelowLogStart(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	c, topic := cluster(t, false, "deleted", 1)
	var recs []*kgo.Record
	for range 10 {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte("v")})
	}
	if err := c.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	cl := client(t, c)
	all := readAll(t, ctx, cl, topic, kgo.ReadUncommitted())
	adm := kadm.NewClient(cl)
	del := kadm.Offsets{}
	del.AddOffset(topic, 0, 4, -1)
	if _, err := adm.DeleteRecords(ctx, del); err != nil {
		t.Fatal(err)
	}
	p := NewReader(cl).Open(topic, 0)
	defer p.Close()
	out := make([]Verdict, len(all))
	s, err := p.Decide(ctx, all, out)
	if err != nil {
		t.Fatal(err)
	}
	if s.Decided != 10 || s.Unknown != 4 {
		t.Fatalf("summary %+v; want 10 decided, 4 unknown", s)
	}
	for i, v := range out {
		if want := (i < 4); (v == Unknown) != want || (v != Unknown && v != Committed) {
			t.Errorf("offset %d: %v", i, v)
		}
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{Undecided: "undecided", Committed: "committed", Aborted: "aborted", Unknown: "unknown", 9: "Verdict(9)"} {
		if v.String() != want {
			t.Errorf("%d: %q, want %q", v, v.String(), want)
		}
	}
	if !errors.Is(fmt.Errorf("x: %w", ErrMalformed), ErrMalformed) {
		t.Fatal("ErrMalformed does not wrap")
	}
}
