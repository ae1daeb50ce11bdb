package esm

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// TestDeliveryOrderNoGapsNoRedelivery runs batches across partitions, with
// and without concurrency and injected failures, and proves every record
// is delivered, in order, with no gap and no re-delivery after success,
// and that the group ends at lag 0.
func TestDeliveryOrderNoGapsNoRedelivery(t *testing.T) {
	for _, tc := range []struct {
		name        string
		concurrency int
		failEvery   int // fail every n-th invocation; 0: never
	}{
		{"serial", 1, 0},
		{"serial-failures", 1, 3},
		{"concurrent-failures", 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const topic, parts, perPart = "orders", 4, 40
			src := startSource(t, []kafkalocal.Topic{{Name: topic, Partitions: parts}})
			ctx := testCtx(t, 15*time.Second)
			produce(t, ctx, src, topic, parts, perPart/2)

			rec := &recorder{}
			if tc.failEvery > 0 {
				rec.fail = func(n int) error {
					if n%tc.failEvery == tc.failEvery-1 {
						return fmt.Errorf("injected failure %d", n)
					}
					return nil
				}
			}
			m := newMapping(t, src, topic, rec, func(c *Config) {
				c.BatchSize = 7
				c.Concurrency = tc.concurrency
			})
			produce(t, ctx, src, topic, parts, perPart/2) // some arrive while running
			waitCaughtUp(t, m, 10*time.Second)

			want := map[tp]int64{}
			for p := range int64(parts) {
				want[tp{topic, p}] = perPart
			}
			atts := rec.snapshot()
			checkDelivery(t, atts, want)
			st := m.Stats()
			if st.RecordsDelivered != parts*perPart || st.MaxBatchRecords > 7 {
				t.Errorf("stats: %+v", st)
			}
			var failed int64
			for _, a := range atts {
				if !a.ok {
					failed++
				}
			}
			if st.Errors != failed || st.Retries != failed || st.Invocations != int64(len(atts)) {
				t.Errorf("errors=%d retries=%d invocations=%d, handler saw %d failures in %d calls", st.Errors, st.Retries, st.Invocations, failed, len(atts))
			}
			if tc.failEvery > 0 && failed == 0 {
				t.Error("no failure was injected")
			}
			if rec.maxInflight > tc.concurrency {
				t.Errorf("%d invocations in flight, Concurrency %d", rec.maxInflight, tc.concurrency)
			}
			if st.EncodeTime <= 0 || st.HandlerTime <= 0 {
				t.Errorf("timings not measured: %+v", st)
			}
		})
	}
}

// TestCommitOnlyAfterSuccess fails the first K invocations: each failure
// sees nothing committed, every retry carries the identical event even
// though the handler overwrote the previous one in place, and after
// success everything is committed once.
func TestCommitOnlyAfterSuccess(t *testing.T) {
	t.Parallel()
	const topic, k = "t", 3
	src := startSource(t, []kafkalocal.Topic{{Name: topic, Partitions: 2}})
	ctx := testCtx(t, 15*time.Second)
	produce(t, ctx, src, topic, 2, 5)

	var m *Mapping
	ready := make(chan struct{})
	rec := &recorder{scribble: true}
	rec.fail = func(n int) error {
		<-ready
		if n >= k {
			return nil
		}
		lags, err := m.Lag(ctx)
		if err != nil {
			return err
		}
		for _, l := range lags {
			if l.Committed != -1 {
				t.Errorf("attempt %d: %s/%d committed %d before success", n, l.Topic, l.Partition, l.Committed)
			}
		}
		return errors.New("not yet")
	}
	m = newMapping(t, src, topic, rec, nil)
	close(ready)
	waitCaughtUp(t, m, 10*time.Second)

	atts := rec.snapshot()
	if len(atts) != k+1 {
		t.Fatalf("%d invocations, want %d", len(atts), k+1)
	}
	for i := 1; i < len(atts); i++ {
		if !bytes.Equal(atts[i].payload, atts[0].payload) {
			t.Fatalf("retry %d carried a different event", i)
		}
	}
	checkDelivery(t, atts, map[tp]int64{{topic, 0}: 5, {topic, 1}: 5})
	st := m.Stats()
	if st.Errors != k || st.Retries != k || st.BatchesSucceeded != 1 || st.Invocations != k+1 {
		t.Errorf("stats %+v", st)
	}
	var ie *InvokeError
	if !errors.As(m.LastError(), &ie) || ie.Attempt != k {
		t.Errorf("LastError %v, want InvokeError of attempt %d", m.LastError(), k)
	}
	if m.LastProcessingResult() != ResultOK {
		t.Errorf("LastProcessingResult %q", m.LastProcessingResult())
	}
	lags, err := m.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lags {
		if l.Committed != 5 || l.End != 5 || l.Lag != 0 {
			t.Errorf("lag %+v", l)
		}
	}
}

// TestBatchLimits proves BatchSize and the 6 MB cap (measured on the
// encoded event) are respected, that a record too large for any event is
// reported and, with finite retries, discarded visibly, and that null keys
// and empty values survive the trip through Kafka.
func TestBatchLimits(t *testing.T) {
	t.Run("batch-size", func(t *testing.T) {
		t.Parallel()
		src := startSource(t, []kafkalocal.Topic{{Name: "t", Partitions: 1}})
		ctx := testCtx(t, 15*time.Second)
		produce(t, ctx, src, "t", 1, 23)
		clk := newFakeClock()
		t0 := clk.Now()
		rec := &recorder{clock: clk}
		m := newMapping(t, src, "t", rec, func(c *Config) {
			c.BatchSize = 5
			c.MaximumBatchingWindow = time.Minute
			c.clock = clk
		})
		// 23 = 4*5 + 3: the 4 full batches go at once; the last 3 wait
		// for the window, which only this test's clock can end.
		waitFor(t, 10*time.Second, "the 4 full batches (20 records) to be delivered", func() bool {
			return m.Stats().RecordsDelivered == 20 && pending(m) == 3
		})
		clk.waitArmed(t, t0.Add(time.Minute), "the batching window of the last 3 records")
		for i, a := range rec.snapshot() {
			if n := len(a.records[tp{"t", 0}]); n != 5 || !a.at.Equal(t0) {
				t.Errorf("batch %d has %d records at %v, want 5 at once", i, n, a.at.Sub(t0))
			}
		}
		if got := m.Stats().RecordsDelivered; got != 20 {
			t.Fatalf("delivered %d, want the 4 full batches (20) before the window", got)
		}
		clk.Advance(time.Minute)
		waitCaughtUp(t, m, 10*time.Second)
		atts := rec.snapshot()
		if last := atts[len(atts)-1]; len(atts) != 5 || len(last.records[tp{"t", 0}]) != 3 || !last.at.Equal(t0.Add(time.Minute)) {
			t.Fatalf("%d batches, the last of %d records at %v; want a 5th of 3 once the window ended", len(atts), len(last.records[tp{"t", 0}]), last.at.Sub(t0))
		}
	})

	t.Run("6MB", func(t *testing.T) {
		t.Parallel()
		const topic = "big"
		src := startSource(t, []kafkalocal.Topic{{Name: topic, Partitions: 1}},
			kfake.BrokerConfigs(map[string]string{"message.max.bytes": "16777216"}))
		ctx := testCtx(t, 15*time.Second)
		prod, err := src.NewClient(kgo.ProducerBatchMaxBytes(16<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		mb := bytes.Repeat([]byte{'x'}, 1<<20) // 1 MiB → ~1.33 MiB base64: 4 fit in 6 MiB, 5 do not
		var rs []*kgo.Record
		for range 9 {
			rs = append(rs, &kgo.Record{Topic: topic, Value: mb})
		}
		rs = append(rs, &kgo.Record{Topic: topic, Value: bytes.Repeat([]byte{'y'}, 4_800_000)}) // ~6.4 MB encoded: never fits
		rs = append(rs,
			&kgo.Record{Topic: topic, Key: nil, Value: []byte{}},
			&kgo.Record{Topic: topic, Key: []byte{}, Value: nil},
			&kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{0x80, 0x7f}}, {Key: "h", Value: nil}}},
		)
		for _, r := range rs { // one at a time: keep produce requests small
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}

		rec := &recorder{}
		m := newMapping(t, src, topic, rec, func(c *Config) {
			c.BatchSize = MaxBatchSize
			c.MaximumRetryAttempts = new(1)
			c.MaximumBatchingWindow = 50 * time.Millisecond
		})
		waitCaughtUp(t, m, 10*time.Second)

		atts := rec.snapshot()
		var delivered []int64
		for i, a := range atts {
			if len(a.payload) > MaxPayloadBytes {
				t.Errorf("invocation %d: %d byte event exceeds %d", i, len(a.payload), MaxPayloadBytes)
			}
			if n := len(a.records[tp{topic, 0}]); n > 4 {
				t.Errorf("invocation %d: %d one-MiB records cannot fit 6 MiB", i, n)
			}
			if a.ok {
				delivered = append(delivered, a.records[tp{topic, 0}]...)
			}
		}
		want := []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12}
		if fmt.Sprint(delivered) != fmt.Sprint(want) {
			t.Fatalf("delivered offsets %v, want %v (9 discarded)", delivered, want)
		}
		st := m.Stats()
		if st.MaxBatchRecords != 4 || st.OversizedRecords != 1 || st.RecordsDiscarded != 1 || st.BatchesDiscarded != 1 || st.Errors != 2 || st.Retries != 1 {
			t.Errorf("stats %+v", st)
		}
		if st.MaxBatchBytes > MaxPayloadBytes || st.MaxBatchBytes < 5<<20 {
			t.Errorf("largest event %d bytes; want full (>5 MiB) and ≤ 6 MiB", st.MaxBatchBytes)
		}
		var tooBig *RecordTooLargeError
		if !errors.As(m.LastError(), &tooBig) || tooBig.Offset != 9 || tooBig.Size <= MaxPayloadBytes {
			t.Errorf("LastError %v, want RecordTooLargeError for offset 9", m.LastError())
		}

		// The small records' null/empty key and value, and headers.
		last := atts[len(atts)-1]
		raw := rawRecords(t, last.payload)[topic+"-0"]
		byOffset := map[string]map[string]string{}
		for _, r := range raw {
			f := map[string]string{}
			for k, v := range r {
				f[k] = string(v)
			}
			byOffset[f["offset"]] = f
		}
		for _, c := range []struct {
			offset, field, want string // want "" with ok=false means absent
			present             bool
		}{
			{"10", "key", "", false},
			{"10", "value", `""`, true},
			{"11", "key", `""`, true},
			{"11", "value", "", false},
			{"12", "key", `"` + std64("k") + `"`, true},
			{"12", "headers", `[{"h":[-128,127]},{"h":[]}]`, true},
			{"12", "timestampType", `"CREATE_TIME"`, true},
		} {
			got, ok := byOffset[c.offset][c.field]
			if ok != c.present || got != c.want {
				t.Errorf("offset %s field %s = %q (present %v), want %q (present %v)", c.offset, c.field, got, ok, c.want, c.present)
			}
		}
	})
}

// TestBatchingWindow proves a partial batch waits for the window, and no
// longer, and a full batch does not wait. The test's clock stands still
// unless the test moves it, so a batch that waited for it would never go.
func TestBatchingWindow(t *testing.T) {
	for _, tc := range []struct {
		name      string
		window    time.Duration
		batchSize int
		waits     bool // the batch waits for the window
	}{
		{"partial-waits-window", 400 * time.Millisecond, 100, true},
		{"full-goes-at-once", time.Minute, 3, false},
		{"no-window", -1, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := startSource(t, []kafkalocal.Topic{{Name: "t", Partitions: 1}})
			ctx := testCtx(t, 15*time.Second)
			produce(t, ctx, src, "t", 1, 3)
			clk := newFakeClock()
			t0 := clk.Now()
			rec := &recorder{clock: clk}
			m := newMapping(t, src, "t", rec, func(c *Config) {
				c.MaximumBatchingWindow = tc.window
				c.BatchSize = tc.batchSize
				c.clock = clk
			})
			want := t0
			if tc.waits {
				waitFor(t, 10*time.Second, "the 3 records to be polled", func() bool { return pending(m) == 3 })
				clk.waitArmed(t, t0.Add(tc.window), "the batching window")
				if n := len(rec.snapshot()); n != 0 {
					t.Fatalf("%d invocations before the window ended", n)
				}
				clk.Advance(tc.window)
				want = t0.Add(tc.window)
			}
			waitCaughtUp(t, m, 10*time.Second)
			atts := rec.snapshot()
			if tc.window > 0 && (len(atts) != 1 || len(atts[0].records[tp{"t", 0}]) != 3) {
				t.Fatalf("want one batch of 3, got %d invocations", len(atts))
			}
			for _, a := range atts {
				if !a.at.Equal(want) {
					t.Fatalf("invoked at %v, want %v (clock start + %v)", a.at.Sub(t0), want.Sub(t0), want.Sub(t0))
				}
			}
		})
	}
}

// TestDisableEnable proves that disabling waits for and commits the
// in-flight batch, reads Disabled only once stopped, leaves the group
// (Empty on the source), delivers nothing while disabled, and that
// enabling resumes from the committed offsets without gap or repeat.
func TestDisableEnable(t *testing.T) {
	t.Parallel()
	const topic = "t"
	src := startSource(t, []kafkalocal.Topic{{Name: topic, Partitions: 2}})
	ctx := testCtx(t, 20*time.Second)
	produce(t, ctx, src, topic, 2, 5)

	rec := &recorder{entered: make(chan struct{}, 1)}
	m := newMapping(t, src, topic, rec, nil)
	if err := m.WaitState(ctx, StateEnabled); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, m, 10*time.Second)

	// Hold the next invocation in flight, then disable. A failing test
	// lets it go too (before Close, which waits for it).
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release)
	rec.mu.Lock()
	rec.gate = hold
	rec.mu.Unlock()
	select {
	case <-rec.entered: // drain a stale signal
	default:
	}
	produce(t, ctx, src, topic, 2, 5)
	select {
	case <-rec.entered:
	case <-ctx.Done():
		t.Fatal("no invocation")
	}
	if err := m.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the mapping to start stopping its session", func() bool {
		s := m.sess.Load()
		return s != nil && s.isStopped()
	})
	if s := m.State(); s != StateDisabling {
		t.Fatalf("state %s while a batch is in flight, want Disabling", s)
	}
	rec.mu.Lock()
	rec.gate = nil
	rec.mu.Unlock()
	release()
	if err := m.WaitState(ctx, StateDisabled); err != nil {
		t.Fatal(err)
	}
	before := len(rec.snapshot())

	adm, err := src.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	groups, err := adm.DescribeGroups(ctx, m.ConsumerGroupID())
	if err != nil {
		t.Fatal(err)
	}
	if g := groups[m.ConsumerGroupID()]; g.State != "Empty" || len(g.Members) != 0 {
		t.Fatalf("group state %q with %d members after Disabled, want Empty", g.State, len(g.Members))
	}
	// The in-flight batch was committed before Disabled.
	lags, err := m.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, l := range lags {
		committed += max(l.Committed, 0)
	}
	if delivered := m.Stats().RecordsDelivered; committed != delivered {
		t.Fatalf("committed %d, delivered %d: the in-flight batch must be committed on disable", committed, delivered)
	}

	// Disabled means the session has stopped: no poller, no worker left
	// to invoke (and the group, above, has no member).
	if m.sess.Load() != nil {
		t.Fatal("a session still runs after Disabled")
	}
	produce(t, ctx, src, topic, 2, 5)
	if n := len(rec.snapshot()); n != before {
		t.Fatalf("%d invocations while disabled", n-before)
	}

	if err := m.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitState(ctx, StateEnabled); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, m, 10*time.Second)
	checkDelivery(t, rec.snapshot(), map[tp]int64{{topic, 0}: 15, {topic, 1}: 15})
	if st := m.Stats(); st.RecordsDelivered != 30 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestStartDisabledAndLatest proves a mapping created disabled consumes
// nothing, and LATEST skips records older than the group's first join.
func TestStartDisabledAndLatest(t *testing.T) {
	t.Parallel()
	src := startSource(t, []kafkalocal.Topic{{Name: "t", Partitions: 1}})
	ctx := testCtx(t, 15*time.Second)
	produce(t, ctx, src, "t", 1, 4)
	fetched := watchFetches(src)
	rec := &recorder{}
	m := newMapping(t, src, "t", rec, func(c *Config) {
		c.StartDisabled = true
		c.StartingPosition = Latest
	})
	if err := m.WaitState(ctx, StateDisabled); err != nil {
		t.Fatal(err)
	}
	if err := m.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitState(ctx, StateEnabled); err != nil {
		t.Fatal(err)
	}
	// Once the mapping's consumer fetches from offset 4, the end when it
	// joined, its start is fixed: then produce one more.
	waitFor(t, 10*time.Second, "the mapping to fetch t/0 from offset 4 (LATEST)", func() bool { return fetched.has(0, 4) })
	produce(t, ctx, src, "t", 1, 1)
	waitFor(t, 10*time.Second, "the record written after the mapping started to be delivered", func() bool {
		return m.Stats().RecordsDelivered > 0
	})
	var got [][]int64
	for _, a := range rec.snapshot() {
		got = append(got, a.records[tp{"t", 0}])
	}
	if fmt.Sprint(got) != "[[4]]" {
		t.Fatalf("LATEST delivered batches %v, want one of offset 4 only", got)
	}
}

// fetchLog records the partitions and offsets of every Fetch request a
// source cluster receives.
type fetchLog struct {
	mu   sync.Mutex
	seen map[[2]int64]bool // partition, fetch offset
}

// watchFetches starts logging src's Fetch requests (of any topic: use it
// on a cluster with one).
func watchFetches(src *kafkalocal.Cluster) *fetchLog {
	l := &fetchLog{seen: map[[2]int64]bool{}}
	src.Kfake().ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, t := range req.(*kmsg.FetchRequest).Topics {
			for _, p := range t.Partitions {
				l.seen[[2]int64{int64(p.Partition), p.FetchOffset}] = true
			}
		}
		return nil, nil, false // observe only: the cluster answers
	})
	return l
}

func (l *fetchLog) has(partition int32, offset int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[[2]int64{int64(partition), offset}]
}

// TestConfigValidation rejects each bad field with its name.
func TestConfigValidation(t *testing.T) {
	ok := Config{FunctionName: "f", Topics: []string{"t"}, BootstrapServers: []string{"127.0.0.1:1"}, StartDisabled: true}
	for _, tc := range []struct {
		field string
		mod   func(*Config)
	}{
		{"FunctionName", func(c *Config) { c.FunctionName = "" }},
		{"Topics", func(c *Config) { c.Topics = nil }},
		{"BootstrapServers", func(c *Config) { c.BootstrapServers = nil }},
		{"BatchSize", func(c *Config) { c.BatchSize = MaxBatchSize + 1 }},
		{"BatchSize", func(c *Config) { c.BatchSize = -1 }},
		{"MaximumBatchingWindow", func(c *Config) { c.MaximumBatchingWindow = 301 * time.Second }},
		{"StartingPosition", func(c *Config) { c.StartingPosition = "AT_TIMESTAMP" }},
		{"Concurrency", func(c *Config) { c.Concurrency = -2 }},
		{"MaximumRetryAttempts", func(c *Config) { c.MaximumRetryAttempts = new(-2) }},
		{"RetryBackoff", func(c *Config) { c.RetryBackoff = -time.Second }},
		{"ServerRootCACertificate", func(c *Config) { c.ServerRootCACertificate = "not PEM" }},
		{"ServerRootCACertificate", func(c *Config) {
			c.ServerRootCACertificate = testCA(t).PEM
			c.EventSourceArn = "arn:aws:kafka:us-east-1:123456789012:cluster/src/abcd"
		}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			_, err := New(c, &recorder{})
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %v, want an error naming %s", err, tc.field)
			}
		})
	}
	m, err := New(ok, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.Config()
	if c.BatchSize != 100 || c.MaximumBatchingWindow != 500*time.Millisecond || c.StartingPosition != TrimHorizon ||
		c.Concurrency != 1 || *c.MaximumRetryAttempts != InfiniteRetries || c.ConsumerGroupID != m.UUID() ||
		c.FunctionArn != "arn:aws:lambda:us-east-1:000000000000:function:f" || len(m.UUID()) != 36 {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestRegistry covers lookup by UUID, listing by function name or ARN,
// duplicate UUIDs, deletion and state changes through the registry.
func TestRegistry(t *testing.T) {
	r := NewRegistry()
	t.Cleanup(r.Close)
	mk := func(fn, uuid string) *Mapping {
		t.Helper()
		m, err := r.Create(Config{UUID: uuid, FunctionName: fn, Topics: []string{"t"}, BootstrapServers: []string{"127.0.0.1:1"}, StartDisabled: true}, &recorder{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a1, a2, b := mk("a", "u1"), mk("a", ""), mk("b", "u3")
	if _, err := r.Create(Config{UUID: "u1", FunctionName: "c", Topics: []string{"t"}, BootstrapServers: []string{"x:1"}}, &recorder{}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate UUID: %v", err)
	}
	for _, tc := range []struct {
		fn   string
		want []*Mapping
	}{
		{"a", []*Mapping{a1, a2}},
		{a1.FunctionArn(), []*Mapping{a1, a2}},
		{"b", []*Mapping{b}},
		{"nope", nil},
	} {
		if got := r.ListByFunction(tc.fn); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ListByFunction(%q) = %d mappings, want %d", tc.fn, len(got), len(tc.want))
		}
	}
	if got, err := r.Get("u3"); err != nil || got != b {
		t.Fatalf("Get(u3) = %v, %v", got, err)
	}
	if _, err := r.Get("zzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}
	ctx := testCtx(t, 5*time.Second)
	if err := b.WaitState(ctx, StateDisabled); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete("u3"); err != nil {
		t.Fatal(err)
	}
	if err := b.SetEnabled(true); !errors.Is(err, ErrDeleted) {
		t.Fatalf("SetEnabled on deleted: %v", err)
	}
	if b.State() != StateDeleting {
		t.Fatalf("deleted mapping state %s", b.State())
	}
	if got := r.List(); len(got) != 2 {
		t.Fatalf("List after delete: %d", len(got))
	}
	if err := r.Delete("u3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestConcurrentControl flips a mapping on and off from several goroutines
// (as an HTTP endpoint would) and requires it to settle in the last wanted
// state; run with -race.
func TestConcurrentControl(t *testing.T) {
	t.Parallel()
	src := startSource(t, []kafkalocal.Topic{{Name: "t", Partitions: 2}})
	ctx := testCtx(t, 15*time.Second)
	produce(t, ctx, src, "t", 2, 20)
	rec := &recorder{}
	m := newMapping(t, src, "t", rec, nil)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 10 {
				_ = m.SetEnabled((i+g)%2 == 0)
				_ = m.State()
				_ = m.Stats()
				runtime.Gosched() // let the others interleave
			}
		}()
	}
	for range 4 {
		<-done
	}
	// An update is refused while the last accepted one is in progress:
	// wait for it to end (nobody else updates now), then enable.
	waitFor(t, 10*time.Second, "the last accepted update to complete", func() bool {
		s := m.State()
		return s == StateEnabled || s == StateDisabled
	})
	if err := m.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitState(ctx, StateEnabled); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, m, 10*time.Second)
	// Successful batches may repeat only if a commit was lost; none may be
	// out of order or missing.
	checkDelivery(t, rec.snapshot(), map[tp]int64{{"t", 0}: 20, {"t", 1}: 20})
	if st := m.Stats(); st.CommitErrors != 0 {
		t.Errorf("commit errors: %+v (%v)", st, m.LastError())
	}
}

// TestTransition proves the documented lag of an update: after
// SetEnabled(false) the mapping reads Disabling for Transition and keeps
// delivering records; it reads Disabled, and delivers nothing more, only
// after that. After SetEnabled(true) it reads Enabling for Transition and
// does not poll, then Enabled, resuming without gap or repeat. Updates in
// between are refused with ErrInTransition. The test's clock moves only
// when the test moves it, so each transition lasts as long as the test
// needs and ends when the test says.
func TestTransition(t *testing.T) {
	t.Parallel()
	const topic = "t"
	const transition = 2 * time.Second
	src := startSource(t, []kafkalocal.Topic{{Name: topic, Partitions: 1}})
	ctx := testCtx(t, 30*time.Second)
	clk := newFakeClock()
	rec := &recorder{clock: clk}
	m := newMapping(t, src, topic, rec, func(c *Config) {
		c.Transition = transition
		c.MaximumBatchingWindow = -1 // batches go at once: only the transitions wait for the clock
		c.clock = clk
	})
	if err := m.WaitState(ctx, StateEnabled); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, src, topic, 1, 5)
	waitCaughtUp(t, m, 10*time.Second)

	start := clk.Now()
	if err := m.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if s := m.State(); s != StateDisabling {
		t.Fatalf("state %s right after disabling, want Disabling", s)
	}
	for _, en := range []bool{true, false} {
		if err := m.SetEnabled(en); !errors.Is(err, ErrInTransition) {
			t.Fatalf("SetEnabled(%v) while Disabling: %v, want ErrInTransition", en, err)
		}
	}
	// Records written while Disabling are still delivered.
	produce(t, ctx, src, topic, 1, 5)
	waitCaughtUp(t, m, 10*time.Second)
	clk.waitArmed(t, start.Add(transition), "the end of Disabling")
	if s := m.State(); s != StateDisabling {
		t.Fatalf("state %s before the transition ended, want Disabling", s)
	}
	if s := m.sess.Load(); s == nil || s.isStopped() {
		t.Fatal("the mapping stopped polling before the transition ended")
	}
	clk.Advance(transition)
	if err := m.WaitState(ctx, StateDisabled); err != nil {
		t.Fatal(err)
	}
	if at := m.LastModified(); !at.Equal(start.Add(transition)) {
		t.Fatalf("Disabled %v after disabling, want at the end of the %v transition", at.Sub(start), transition)
	}
	if err := m.SetEnabled(false); err != nil {
		t.Fatalf("disabling a Disabled mapping: %v", err)
	}
	delivered, before := m.Stats().RecordsDelivered, len(rec.snapshot())
	produce(t, ctx, src, topic, 1, 5)

	start = clk.Now()
	if err := m.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if s := m.State(); s != StateEnabling {
		t.Fatalf("state %s right after enabling, want Enabling", s)
	}
	if err := m.SetEnabled(false); !errors.Is(err, ErrInTransition) {
		t.Fatalf("SetEnabled(false) while Enabling: %v, want ErrInTransition", err)
	}
	clk.waitArmed(t, start.Add(transition), "the end of Enabling")
	if got := m.Stats().RecordsDelivered; got != delivered || m.State() != StateEnabling || m.sess.Load() != nil {
		t.Fatalf("%d records delivered, state %s, polling %v before Enabling ended; want none, Enabling, not polling",
			got-delivered, m.State(), m.sess.Load() != nil)
	}
	clk.Advance(transition)
	if err := m.WaitState(ctx, StateEnabled); err != nil {
		t.Fatal(err)
	}
	if at := m.LastModified(); !at.Equal(start.Add(transition)) {
		t.Fatalf("Enabled %v after enabling, want at the end of the %v transition", at.Sub(start), transition)
	}
	waitCaughtUp(t, m, 10*time.Second)
	checkDelivery(t, rec.snapshot(), map[tp]int64{{topic, 0}: 15})
	for _, a := range rec.snapshot()[before:] {
		if a.at.Before(start.Add(transition)) {
			t.Fatalf("invoked %v after enabling, within the transition", a.at.Sub(start))
		}
	}
}

// TestTransitionBounds: Transition is at most the 90 s AWS documents.
func TestTransitionBounds(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, MaxTransition + time.Millisecond} {
		_, err := New(Config{FunctionName: "f", Topics: []string{"t"}, BootstrapServers: []string{"x:1"}, Transition: d}, &recorder{})
		if err == nil || !strings.Contains(err.Error(), "Transition") {
			t.Errorf("Transition %v: %v, want an error naming Transition", d, err)
		}
	}
}
