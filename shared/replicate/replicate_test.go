package replicate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaevent"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

func TestFidelity(t *testing.T) { testFidelity(t, kfakeEnv()) }

// testFidelity: keys, values (null apart from empty), headers in order,
// timestamps, partitions and order survive, by provenance.
func testFidelity(t *testing.T, e *env) {
	orders := e.tn("orders")
	r := newRigOn(t, e, map[string]int32{"orders": 4}, nil, nil)
	seed(t, r.pair.Source, orders, 4, 300, 20)
	m := r.mapping(t, orders, 100, 1)
	r.waitCaughtUp(t, m, time.Minute)
	exactlyOnce(t, readAll(t, r.pair.Source, orders), readAll(t, r.pair.Target, orders), orders)
	tot := r.repl.Totals()
	if tot.RecordsWritten != 1200 || tot.DuplicatesSkipped != 0 || tot.RecordsFiltered != 0 || tot.RecordsDeadLettered != 0 {
		t.Fatalf("totals = %+v", tot)
	}
}

func TestRenamedTopic(t *testing.T) { testRenamedTopic(t, kfakeEnv()) }

func testRenamedTopic(t *testing.T, e *env) {
	from, to := e.tn("legacy.orders"), e.tn("orders")
	rename := map[string]string{"legacy.orders": "orders"}
	r := newRigOn(t, e, map[string]int32{"legacy.orders": 3}, rename, func(c *Config) {
		spec, _ := json.Marshal([]any{map[string]any{"type": "rename", "topics": map[string]string{from: to}}})
		var err error
		if c.Transforms, err = transform.Parse(spec); err != nil {
			t.Fatal(err)
		}
	})
	seed(t, r.pair.Source, from, 3, 100, 10)
	m := r.mapping(t, from, 50, 1)
	r.waitCaughtUp(t, m, time.Minute)
	exactlyOnce(t, readAll(t, r.pair.Source, from), readAll(t, r.pair.Target, to), from)
}

// TestRetryAfterPartialWrite replays a batch that was already written in
// part, as Lambda does after a timeout, and checks nothing is duplicated.
func TestRetryAfterPartialWrite(t *testing.T) { testRetryAfterPartialWrite(t, kfakeEnv()) }

func testRetryAfterPartialWrite(t *testing.T, e *env) {
	tp := e.tn("t")
	r := newRigOn(t, e, map[string]int32{"t": 2}, nil, nil)
	seed(t, r.pair.Source, tp, 2, 50, 5)
	src := readAll(t, r.pair.Source, tp)
	event := func(from, to int) []byte {
		var recs []*kgo.Record
		for p := int32(0); p < 2; p++ {
			recs = append(recs, src[p][from:to]...)
		}
		return encodeEvent(t, recs)
	}
	ctx := context.Background()
	// First the first half of partition 0's batch only, as if the rest
	// never got acknowledged.
	first := encodeEvent(t, src[0][0:20])
	if _, err := r.repl.Handle(ctx, first); err != nil {
		t.Fatal(err)
	}
	// Then the whole batch, twice; then the rest. A new replicator (cold
	// container) must also dedup, from the target's provenance alone.
	for i, ev := range [][]byte{event(0, 40), event(0, 40), event(30, 50)} {
		repl := r.repl
		if i == 1 {
			var err error
			if repl, err = New(r.cfg, r.target, r.source, WithLogger(quietLogger()), WithMetricsWriter(nil)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := repl.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	exactlyOnce(t, src, readAll(t, r.pair.Target, tp), tp)
}

func TestFaultsExactlyOnce(t *testing.T) {
	testFaultsExactlyOnce(t, kfakeEnv(), 8, 12500, 12, injectProduceFaults, 4*time.Minute) // 100,000 records
}

// faultInjector starts injecting n faults into r's target during the run
// and returns the count of faults fired so far.
type faultInjector func(t *testing.T, r *rig, n int64) *atomic.Int64

// testFaultsExactlyOnce replicates partitions×perPartition records while
// inject makes the target fail n times, and checks every record landed
// exactly once, in order, by provenance.
func testFaultsExactlyOnce(t *testing.T, e *env, partitions int32, perPartition int, n int64, inject faultInjector, wait time.Duration) {
	events := e.tn("events")
	// Small producer batches: each invocation takes several write requests
	// per partition, so an outage starting mid-invocation leaves its batch
	// written in part.
	r := newRigOn(t, e, map[string]int32{"events": partitions}, nil, func(c *Config) { c.MaxMessageBytes = 16 << 10 })
	seed(t, r.pair.Source, events, partitions, perPartition, 0)
	injected := inject(t, r, n)
	m, pool := r.lambdaMapping(t, events, 1000, 4)
	r.waitCaughtUp(t, m, wait)
	if injected.Load() < n {
		t.Fatalf("only %d faults fired", injected.Load())
	}
	st := m.Stats()
	if st.Retries == 0 {
		t.Fatalf("no batch was retried: stats %+v", st)
	}
	src, dst := readAll(t, r.pair.Source, events), readAll(t, r.pair.Target, events)
	exactlyOnce(t, src, dst, events)
	tot := r.totals()
	// Counted writes never exceed the records (a record written twice
	// would), and every record was either counted written or found on the
	// target by a retry. (A write the target took while the invocation
	// was being abandoned at its timeout is never acknowledged, so it is
	// counted as a duplicate skipped by the retry instead.)
	want := int64(partitions) * int64(perPartition)
	if tot.RecordsWritten > want || tot.RecordsWritten+tot.DuplicatesSkipped < want {
		t.Fatalf("totals %+v: want at most %d written and written + skipped ≥ %d", tot, want, want)
	}
	t.Logf("%d faults injected, %d retries, %d environments reset after timeouts, %d duplicates skipped by provenance",
		injected.Load(), st.Retries, pool.Resets(), tot.DuplicatesSkipped)
}

// TestFaultsWithoutProvenance shows what turning provenance off costs: no
// record is lost, but retried batches duplicate, and the duplicates are
// counted.
func TestFaultsWithoutProvenance(t *testing.T) {
	const partitions, perPartition = 8, 2000
	r := newRig(t, map[string]int32{"events": partitions}, nil, func(c *Config) { c.Provenance = false; c.MaxMessageBytes = 16 << 10 })
	seed(t, r.pair.Source, "events", partitions, perPartition, 0)
	injected := injectProduceFaults(t, r, 6)
	m, _ := r.lambdaMapping(t, "events", 500, 2)
	r.waitCaughtUp(t, m, 2*time.Minute)
	src := readAll(t, r.pair.Source, "events")
	countDups := func() (dups, total int) {
		t.Helper()
		dst := readAll(t, r.pair.Target, "events")
		for p, recs := range src {
			// Without provenance, match by content in order: each
			// source record must appear, in order; extra copies are
			// duplicates.
			j := 0
			for _, d := range dst[p] {
				total++
				if len(d.Headers) != 3 {
					t.Fatalf("provenance header written although disabled: %v", d.Headers)
				}
				if j < len(recs) && sameRecord(recs[j], d) == "" {
					j++
					continue
				}
				dups++
			}
			if j != len(recs) {
				t.Fatalf("partition %d: %d of %d source records found in order: lost records", p, j, len(recs))
			}
		}
		return dups, total
	}
	dups, total := countDups()
	t.Logf("provenance off: %d faults, %d retries: %d source records, %d target records, %d duplicates, 0 lost",
		injected.Load(), m.Stats().Retries, partitions*perPartition, total, dups)

	// Whether an outage hit mid-batch above depends on timing; a replayed
	// batch (Lambda retrying a batch whose acknowledgement was lost)
	// always shows the cost: every record is written again.
	m.Close()
	if _, err := r.repl.Handle(context.Background(), encodeEvent(t, src[0][:100])); err != nil {
		t.Fatal(err)
	}
	after, _ := countDups()
	if after != dups+100 {
		t.Fatalf("replayed 100 records without provenance: %d duplicates, want %d", after, dups+100)
	}
}

// injectProduceFaults makes the target refuse writes n times during the
// run, each time for longer than an invocation may take, with a retriable
// error (as when the target loses its in-sync replicas): the invocations
// caught in it time out with part of their batch written, and the event
// source mapping retries them.
func injectProduceFaults(_ *testing.T, r *rig, n int64) *atomic.Int64 {
	var reqs, fired, until atomic.Int64
	r.pair.Target.Kfake().Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.Produce},
		Count: -1,
		Err:   kerr.NotEnoughReplicas,
		When: func(kmsg.Request) bool {
			now := time.Now().UnixNano()
			if now < until.Load() {
				return true
			}
			// Every 25th write request starts an outage, so the
			// requests of the same invocation before it were written.
			if fired.Load() < n && reqs.Add(1)%25 == 0 {
				fired.Add(1)
				until.Store(now + int64(faultDuration))
				return true
			}
			return false
		},
	})
	return &fired
}

// faultDuration is how long each injected outage lasts; invocations time
// out after invokeTimeout, well within it.
const faultDuration, invokeTimeout = 600 * time.Millisecond, 250 * time.Millisecond

var registerPoisonHook sync.Once

func TestTransformsAndDeadLetters(t *testing.T) { testTransformsAndDeadLetters(t, kfakeEnv()) }

func testTransformsAndDeadLetters(t *testing.T, e *env) {
	registerPoisonHook.Do(func() {
		transform.RegisterHook("test-reject-poison", func(rec *kgo.Record) (transform.Verdict, error) {
			if bytes.HasPrefix(rec.Value, []byte("poison")) {
				return transform.Keep, errors.New("poison value")
			}
			return transform.Keep, nil
		})
	})
	tp, dlt := e.tn("t"), e.tn(DefaultDeadLetterTopic)
	r := newRigOn(t, e, map[string]int32{"t": 2}, nil, func(c *Config) {
		c.OnRecordError = DeadLetter
		c.MaxMessageBytes = 4096
		c.Transforms, _ = transform.Parse([]byte(`[
			{"type":"filter","drop":{"field":"key","match":"prefix","value":"test-"}},
			{"type":"setHeader","key":"migrated-by","value":"kmig"},
			{"type":"removeHeader","key":"secret"},
			{"type":"hook","name":"test-reject-poison"}]`))
	})
	var recs []*kgo.Record
	for i := 0; i < 20; i++ {
		rec := &kgo.Record{Topic: tp, Partition: int32(i % 2), Key: []byte("k" + string(rune('a'+i))), Value: []byte("ok"),
			Headers: []kgo.RecordHeader{{Key: "secret", Value: []byte("s")}, {Key: "keep", Value: []byte("1")}}}
		switch i {
		case 3, 4:
			rec.Key = []byte("test-" + string(rune('a'+i)))
		case 7:
			rec.Value = []byte("poison!")
		case 10:
			rec.Value = bytes.Repeat([]byte("z"), 5000) // too large for the target
		}
		recs = append(recs, rec)
	}
	if err := r.pair.Source.ProduceSync(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	m := r.mapping(t, tp, 100, 1)
	r.waitCaughtUp(t, m, time.Minute)

	dst := readAll(t, r.pair.Target, tp)
	written := 0
	for _, ds := range dst {
		for _, d := range ds {
			written++
			if strings.HasPrefix(string(d.Key), "test-") {
				t.Fatalf("filtered record written: %q", d.Key)
			}
			var hs []string
			for _, h := range d.Headers {
				hs = append(hs, h.Key)
			}
			if got := strings.Join(hs, ","); got != "keep,migrated-by,kmig-src" {
				t.Fatalf("headers = %s", got)
			}
		}
	}
	if written != 16 {
		t.Fatalf("%d records written, want 16 (20 - 2 filtered - 2 dead-lettered)", written)
	}
	dl := readAll(t, r.pair.Target, dlt)[0]
	if len(dl) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dl))
	}
	hdr := func(r *kgo.Record, k string) string {
		for _, h := range r.Headers {
			if h.Key == k {
				return string(h.Value)
			}
		}
		return ""
	}
	if hdr(dl[0], HeaderErrorType) == "too-large" {
		dl[0], dl[1] = dl[1], dl[0] // partitions are written in order; compare by kind
	}
	if !strings.Contains(hdr(dl[0], HeaderError), "poison value") || hdr(dl[0], HeaderErrorType) != "transform" ||
		hdr(dl[0], "kmig-src") != tp+"/1/3" || string(dl[0].Value) != "poison!" || hdr(dl[0], "secret") != "s" {
		t.Fatalf("transform dead letter = %+v", dl[0])
	}
	if hdr(dl[1], HeaderErrorType) != "too-large" || hdr(dl[1], HeaderValueDropped) != "true" || dl[1].Value != nil || hdr(dl[1], "kmig-src") != tp+"/0/5" {
		t.Fatalf("too-large dead letter = %+v", dl[1])
	}
	tot := r.repl.Totals()
	if tot.RecordsWritten != 16 || tot.RecordsFiltered != 2 || tot.RecordsDeadLettered != 2 {
		t.Fatalf("totals = %+v", tot)
	}
	// The EMF lines add up to the same counts.
	var sum [3]int64
	for _, line := range strings.Split(strings.TrimSpace(r.emf.String()), "\n") {
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("EMF line %q: %v", line, err)
		}
		sum[0] += int64(doc["RecordsWritten"].(float64))
		sum[1] += int64(doc["RecordsFiltered"].(float64))
		sum[2] += int64(doc["RecordsDeadLettered"].(float64))
	}
	if sum != [3]int64{16, 2, 2} {
		t.Fatalf("EMF sums = %v", sum)
	}
}

func TestFailBatchPolicy(t *testing.T) { testFailBatchPolicy(t, kfakeEnv()) }

func testFailBatchPolicy(t *testing.T, e *env) {
	tp := e.tn("t")
	r := newRigOn(t, e, map[string]int32{"t": 1}, nil, func(c *Config) { c.MaxMessageBytes = 2048 })
	recs := []*kgo.Record{{Topic: tp, Value: []byte("a")}, {Topic: tp, Value: bytes.Repeat([]byte("z"), 4000)}, {Topic: tp, Value: []byte("c")}}
	if err := r.pair.Source.ProduceSync(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	src := readAll(t, r.pair.Source, tp)
	_, err := r.repl.Handle(context.Background(), encodeEvent(t, src[0]))
	var rf *RecordFailuresError
	if !errors.As(err, &rf) || len(rf.Failures) != 1 || rf.Failures[0].Offset != 1 || !strings.Contains(err.Error(), tp+"/0@1") {
		t.Fatalf("err = %v, want RecordFailuresError for %s/0@1", err, tp)
	}
	if n := len(readAll(t, r.pair.Target, tp)[0]); n != 0 {
		t.Fatalf("%d records written although the batch failed", n)
	}
}

// A record that is malformed late in an event fails the invocation with a
// typed MalformedEventError naming it. The records handed to the producer
// before the decoder reached it are on the target, and Lambda's retry of
// the same event skips them by provenance: the target never holds a
// duplicate, and the retry fails at the same record.
func TestMalformedRecordLateInBatch(t *testing.T) {
	r := newRig(t, map[string]int32{"t": 2}, nil, nil)
	// Partition 1 is longer than one chunk, so the decoder hands its first
	// chunk on before it reaches the bad record.
	n := chunkRecords + 20
	bad := chunkRecords + 10
	seed(t, r.pair.Source, "t", 2, n, 5)
	src := readAll(t, r.pair.Source, "t")
	if len(src[0]) != n || len(src[1]) != n {
		t.Fatalf("seeded %d and %d records, want %d each", len(src[0]), len(src[1]), n)
	}
	const marker = "a value only the bad record holds"
	recs := slices.Concat(src[0], src[1])
	badRec := *src[1][bad]
	badRec.Value = []byte(marker)
	recs[n+bad] = &badRec
	encoded := []byte(base64.StdEncoding.EncodeToString([]byte(marker)))
	event := func() []byte { // Handle decodes in place: each invocation gets its own copy
		ev := encodeEvent(t, recs)
		if bytes.Count(ev, encoded) != 1 || bytes.Index(ev, []byte(`"t-0"`)) > bytes.Index(ev, []byte(`"t-1"`)) {
			t.Fatal("the event does not hold partition 0 and then partition 1 with the marked record once")
		}
		return bytes.Replace(ev, encoded, []byte("%%%"), 1)
	}
	// written checks the target holds partition 0 whole and a proper prefix
	// of partition 1 that ends before the bad record, each source record
	// once and in order, and returns that prefix's length.
	written := func(attempt string) int {
		t.Helper()
		dst := readAll(t, r.pair.Target, "t")
		k := len(dst[1])
		if k == 0 || k > bad {
			t.Fatalf("%s: the target holds %d records of partition 1, want the records before the bad one (some of the first %d)", attempt, k, bad)
		}
		exactlyOnce(t, map[int32][]*kgo.Record{0: src[0], 1: src[1][:k]}, dst, "t")
		return k
	}
	wantErr := func(attempt string, err error) {
		t.Helper()
		var me *kafkaevent.MalformedEventError
		if !errors.As(err, &me) || !errors.Is(err, kafkaevent.ErrBadBase64) || me.Key != "t-1" || me.Index != bad {
			t.Fatalf("%s: err = %v, want a MalformedEventError for records[\"t-1\"][%d]", attempt, err, bad)
		}
		if got := errorType(err); got != "MalformedEventError" {
			t.Fatalf("%s: Lambda errorType would be %q", attempt, got)
		}
	}

	_, err := r.repl.Invoke(context.Background(), event())
	wantErr("first invocation", err)
	first := written("first invocation")

	// Lambda retries the same event; a cold container (a new replicator)
	// reads what is already written from the target's provenance alone.
	retry, err := New(r.cfg, r.target, r.source, WithLogger(quietLogger()), WithMetricsWriter(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, repl := range []*Replicator{r.repl, retry} {
		attempt := fmt.Sprintf("retry %d", i+1)
		_, err := repl.Invoke(context.Background(), event())
		wantErr(attempt, err)
		if k := written(attempt); k != first {
			t.Fatalf("%s: partition 1 holds %d records on the target, %d after the first invocation", attempt, k, first)
		}
	}
}

func TestUnreachableTargetFailsTheBatch(t *testing.T) {
	r := newRig(t, map[string]int32{"t": 1}, nil, nil)
	if err := r.pair.Source.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	ev := encodeEvent(t, readAll(t, r.pair.Source, "t")[0])
	r.pair.Target.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := r.repl.Handle(ctx, ev)
	var re *TargetReadError
	if !errors.As(err, &re) {
		t.Fatalf("err = %T %v, want *TargetReadError", err, err)
	}
}

func TestLoadConfig(t *testing.T) {
	base := map[string]string{"TARGET_BOOTSTRAP_SERVERS": "b-1.example:9098", "SOURCE_BOOTSTRAP_SERVERS": "kafka-1.example:9096,kafka-2.example:9096", "AWS_REGION": "us-east-1"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "<unset>" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	c, err := LoadConfig(config.Map(base))
	if err != nil || c.Target.Auth != "iam" || !c.Provenance || c.OnRecordError != FailBatch || c.Compression != "lz4" || c.TransactionalIDPrefix != "" ||
		c.Source.Auth != "iam" || len(c.Source.Bootstrap) != 2 || c.Source.Prefix != "SOURCE" {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		varName string
		says    string
	}{
		{"missing target", with("TARGET_BOOTSTRAP_SERVERS", "<unset>"), "TARGET_BOOTSTRAP_SERVERS", "must be set"},
		{"target not host:port", with("TARGET_BOOTSTRAP_SERVERS", "broker-without-port"), "TARGET_BOOTSTRAP_SERVERS", "not host:port"},
		{"unknown auth", with("TARGET_AUTH", "kerberos"), "TARGET_AUTH", "not one of"},
		{"scram without secret", with("TARGET_AUTH", "scram-sha-512"), "TARGET_SECRET_ARN", "must be set when TARGET_AUTH is scram-sha-512"},
		{"mtls without secret", with("TARGET_AUTH", "mtls"), "TARGET_SECRET_ARN", "must be set"},
		{"iam without region", with("AWS_REGION", "<unset>"), "AWS_REGION", "must be set"},
		{"missing source", with("SOURCE_BOOTSTRAP_SERVERS", "<unset>"), "SOURCE_BOOTSTRAP_SERVERS", "must be set"},
		{"source not host:port", with("SOURCE_BOOTSTRAP_SERVERS", "kafka-1"), "SOURCE_BOOTSTRAP_SERVERS", "not host:port"},
		{"unknown source auth", with("SOURCE_AUTH", "kerberos"), "SOURCE_AUTH", "not one of"},
		{"source scram without secret", with("SOURCE_AUTH", "scram-sha-256"), "SOURCE_SECRET_ARN", "must be set when SOURCE_AUTH is scram-sha-256"},
		{"bad transform JSON", with("TRANSFORMS", `[{"type":"rename",`), "TRANSFORMS", "not a JSON list"},
		{"unknown transform", with("TRANSFORMS", `[{"type":"mask"}]`), "TRANSFORMS", "unknown transform type"},
		{"many-to-one rename", with("TRANSFORMS", `[{"type":"rename","topics":{"a":"x","b":"x"}}]`), "TRANSFORMS", "many-to-one"},
		{"bad policy", with("RECORD_ERROR_POLICY", "ignore"), "RECORD_ERROR_POLICY", "not one of"},
		{"bad provenance flag", with("PROVENANCE_HEADER", "maybe"), "PROVENANCE_HEADER", "not a boolean"},
		{"bad compression", with("TARGET_COMPRESSION", "brotli"), "TARGET_COMPRESSION", "not one of"},
		{"tiny max bytes", with("TARGET_MAX_MESSAGE_BYTES", "10"), "TARGET_MAX_MESSAGE_BYTES", "outside"},
		{"fence without provenance", with("TRANSACTIONAL_ID_PREFIX", "kmig-", "PROVENANCE_HEADER", "false"), "TRANSACTIONAL_ID_PREFIX", "needs PROVENANCE_HEADER=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(config.Map(tc.env))
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Variable != tc.varName || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want *config.Error for %s saying %q", err, tc.varName, tc.says)
			}
		})
	}
}
