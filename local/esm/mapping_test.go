package esm

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

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
		rec := &recorder{}
		m := newMapping(t, src, "t", rec, func(c *Config) {
			c.BatchSize = 5
			c.MaximumBatchingWindow = time.Minute // full batches go at once
		})
		// 23 = 4*5 + 3: the last 3 wait for the window; the 4 full
		// batches must not.
		deadline := time.Now().Add(5 * time.Second)
		for m.Stats().RecordsDelivered < 20 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		for i, a := range rec.snapshot() {
			if n := len(a.records[tp{"t", 0}]); n != 5 {
				t.Errorf("batch %d has %d records, want 5", i, n)
			}
		}
		if got := m.Stats().RecordsDelivered; got != 20 {
			t.Fatalf("delivered %d, want the 4 full batches (20) before the window", got)
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

// TestBatchingWindow proves a partial batch waits for the window and a
// full batch does not.
func TestBatchingWindow(t *testing.T) {
	for _, tc := range []struct {
		name      string
		window    time.Duration
		batchSize int
		minWait   time.Duration
		maxWait   time.Duration
	}{
		{"partial-waits-window", 400 * time.Millisecond, 100, 400 * time.Millisecond, 5 * time.Second},
		{"full-goes-at-once", time.Minute, 3, 0, 5 * time.Second},
		{"no-window", -1, 100, 0, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := startSource(t, []kafkalocal.Topic{{Name: "t", Partitions: 1}})
			ctx := testCtx(t, 15*time.Second)
			produce(t, ctx, src, "t", 1, 3)
			rec := &recorder{entered: make(chan struct{}, 1)}
			start := time.Now()
			m := newMapping(t, src, "t", rec, func(c *Config) {
				c.MaximumBatchingWindow = tc.window
				c.BatchSize = tc.batchSize
			})
			select {
			case <-rec.entered:
			case <-time.After(tc.maxWait):
				t.Fatalf("no invocation within %v", tc.maxWait)
			}
			if took := time.Since(start); took < tc.minWait {
				t.Fatalf("invoked after %v, before the %v window", took, tc.minWait)
			}
			waitCaughtUp(t, m, 5*time.Second)
			if atts := rec.snapshot(); tc.window > 0 && (len(atts) != 1 || len(atts[0].records[tp{"t", 0}]) != 3) {
				t.Fatalf("want one batch of 3, got %d invocations", len(atts))
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

	gate := make(chan struct{})
	close(gate) // open at first
	rec := &recorder{entered: make(chan struct{}, 1)}
	m := newMapping(t, src, topic, rec, nil)
	if err := m.WaitState(ctx, StateEnabled); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, m, 10*time.Second)

	// Hold the next invocation in flight, then disable.
	hold := make(chan struct{})
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
	time.Sleep(100 * time.Millisecond)
	if s := m.State(); s != StateDisabling {
		t.Fatalf("state %s while a batch is in flight, want Disabling", s)
	}
	rec.mu.Lock()
	rec.gate = nil
	rec.mu.Unlock()
	close(hold)
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

	produce(t, ctx, src, topic, 2, 5)
	time.Sleep(200 * time.Millisecond)
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
	// Wait for the group to hold the partition, then produce one more.
	deadline := time.Now().Add(5 * time.Second)
	for {
		adm, _ := src.AdminClient()
		g, err := adm.DescribeGroups(ctx, m.ConsumerGroupID())
		adm.Close()
		if err == nil && g[m.ConsumerGroupID()].State == "Stable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("group never stable")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the reset to LATEST happen
	produce(t, ctx, src, "t", 1, 1)
	deadline = time.Now().Add(5 * time.Second)
	for m.Stats().RecordsDelivered == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	atts := rec.snapshot()
	if len(atts) != 1 || fmt.Sprint(atts[0].records[tp{"t", 0}]) != "[4]" {
		t.Fatalf("LATEST delivered %+v, want only offset 4", atts)
	}
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
				time.Sleep(time.Millisecond)
			}
		}()
	}
	for range 4 {
		<-done
	}
	// An update is refused while the last accepted one is in progress.
	for {
		err := m.SetEnabled(true)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrInTransition) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
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
// delivers nothing, then Enabled, resuming without gap or repeat. Updates
// in between are refused with ErrInTransition.
func TestTransition(t *testing.T) {
	t.Parallel()
	const topic = "t"
	const transition = 2 * time.Second
	src := startSource(t, []kafkalocal.Topic{{Name: topic, Partitions: 1}})
	ctx := testCtx(t, 30*time.Second)
	rec := &recorder{}
	m := newMapping(t, src, topic, rec, func(c *Config) { c.Transition = transition })
	if err := m.WaitState(ctx, StateEnabled); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, src, topic, 1, 5)
	waitCaughtUp(t, m, 10*time.Second)

	start := time.Now()
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
	waitCaughtUp(t, m, transition/2)
	if s := m.State(); s != StateDisabling {
		t.Fatalf("state %s %v after disabling, want Disabling for %v", s, time.Since(start), transition)
	}
	if err := m.WaitState(ctx, StateDisabled); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < transition {
		t.Fatalf("Disabled after %v, before the %v transition", d, transition)
	}
	if err := m.SetEnabled(false); err != nil {
		t.Fatalf("disabling a Disabled mapping: %v", err)
	}
	delivered := m.Stats().RecordsDelivered
	produce(t, ctx, src, topic, 1, 5)

	start = time.Now()
	if err := m.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if s := m.State(); s != StateEnabling {
		t.Fatalf("state %s right after enabling, want Enabling", s)
	}
	if err := m.SetEnabled(false); !errors.Is(err, ErrInTransition) {
		t.Fatalf("SetEnabled(false) while Enabling: %v, want ErrInTransition", err)
	}
	time.Sleep(transition / 2)
	if got := m.Stats().RecordsDelivered; got != delivered || m.State() != StateEnabling {
		t.Fatalf("%d records delivered, state %s, half way through Enabling; want none, Enabling", got-delivered, m.State())
	}
	if err := m.WaitState(ctx, StateEnabled); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < transition {
		t.Fatalf("Enabled after %v, before the %v transition", d, transition)
	}
	waitCaughtUp(t, m, 10*time.Second)
	checkDelivery(t, rec.snapshot(), map[tp]int64{{topic, 0}: 15})
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
