package esm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startSource starts a secured source (SCRAM + ACLs) with the given topics.
func startSource(t *testing.T, topics []kafkalocal.Topic, extra ...kfake.Opt) *kafkalocal.Cluster {
	t.Helper()
	c, err := kafkalocal.StartSource(kafkalocal.ClusterOptions{Topics: topics, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// newMapping starts a mapping on src as the ordinary app user (so the
// emulator works under ACLs), with fast test defaults that mod can change.
func newMapping(t *testing.T, src *kafkalocal.Cluster, topic string, h lambda.Handler, mod func(*Config)) *Mapping {
	t.Helper()
	cfg := Config{
		FunctionName:          "replicator",
		Topics:                []string{topic},
		BootstrapServers:      src.Bootstrap(),
		ClientOptions:         src.ClientOpts(kafkalocal.App()),
		MaximumBatchingWindow: 10 * time.Millisecond,
		RetryBackoff:          time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// produce writes n records to each of partitions, values "p-offset-ish"
// numbered per partition, and fails the test on error.
func produce(t *testing.T, ctx context.Context, src *kafkalocal.Cluster, topic string, partitions int32, n int) {
	t.Helper()
	var rs []*kgo.Record
	for p := range partitions {
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(strconv.Itoa(i)), Value: fmt.Appendf(nil, "%d-%d", p, i)})
		}
	}
	if err := src.ProduceSync(ctx, rs...); err != nil {
		t.Fatal(err)
	}
}

type tp struct {
	topic     string
	partition int64
}

type attempt struct {
	records map[tp][]int64 // offsets per partition, in event order
	ok      bool
	payload []byte
	at      time.Time // by the recorder's clock
}

// recorder is a handler that logs every invocation it receives, can fail
// on demand, and tracks how many invocations run at once.
type recorder struct {
	mu          sync.Mutex
	attempts    []attempt
	fail        func(n int) error // n: 0-based invocation index; nil: succeed
	gate        chan struct{}     // when non-nil, each invocation waits for a receive
	entered     chan struct{}     // when non-nil, signaled on entry
	inflight    int
	maxInflight int
	scribble    bool  // overwrite the event in place before a failure, as an in-place decoder may
	clock       clock // stamps attempts; nil: the real clock
}

func (r *recorder) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	r.mu.Lock()
	n := len(r.attempts)
	r.attempts = append(r.attempts, attempt{}) // reserve
	r.inflight++
	r.maxInflight = max(r.maxInflight, r.inflight)
	gate := r.gate
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inflight--
		r.mu.Unlock()
	}()
	if r.entered != nil {
		select {
		case r.entered <- struct{}{}:
		default:
		}
	}
	if gate != nil {
		<-gate
	}
	// Decode through the real aws-lambda-go JSON path.
	var ev events.KafkaEvent
	var decodeErr error
	_, err := lambda.NewHandler(func(_ context.Context, e events.KafkaEvent) error { ev = e; return nil }).Invoke(ctx, payload)
	if err != nil {
		decodeErr = err
	}
	var now clock = realClock{}
	if r.clock != nil {
		now = r.clock
	}
	a := attempt{records: map[tp][]int64{}, payload: append([]byte(nil), payload...), at: now.Now()}
	for key, recs := range ev.Records {
		for _, rec := range recs {
			if want := rec.Topic + "-" + strconv.FormatInt(rec.Partition, 10); want != key {
				decodeErr = errors.Join(decodeErr, fmt.Errorf("record %s/%d under key %q", rec.Topic, rec.Partition, key))
			}
			k := tp{rec.Topic, rec.Partition}
			a.records[k] = append(a.records[k], rec.Offset)
		}
	}
	var ferr error
	if r.fail != nil {
		ferr = r.fail(n)
	}
	ferr = errors.Join(decodeErr, ferr)
	a.ok = ferr == nil
	r.mu.Lock()
	r.attempts[n] = a
	r.mu.Unlock()
	if ferr != nil {
		if r.scribble {
			for i := range payload {
				payload[i] = '#'
			}
		}
		return nil, ferr
	}
	return []byte("null"), nil
}

func (r *recorder) snapshot() []attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]attempt(nil), r.attempts...)
}

// checkDelivery proves, per partition, that successful invocations carried
// offsets 0..want-1 exactly once and in order, and that every attempt for
// a partition started right after the last success (strict order: a
// partition's next batch waits for its previous one's success).
func checkDelivery(t *testing.T, attempts []attempt, want map[tp]int64) {
	t.Helper()
	next := map[tp]int64{}
	for i, a := range attempts {
		for k, offs := range a.records {
			for j, o := range offs {
				if o != next[k]+int64(j) {
					t.Fatalf("attempt %d %v: offsets %v, expected to start at %d contiguously", i, k, offs, next[k])
				}
			}
			if a.ok {
				next[k] += int64(len(offs))
			}
		}
	}
	for k, n := range want {
		if next[k] != n {
			t.Errorf("%v: delivered %d records, want %d", k, next[k], n)
		}
	}
	for k := range next {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected partition %v", k)
		}
	}
}

func waitCaughtUp(t *testing.T, m *Mapping, d time.Duration) {
	t.Helper()
	if err := m.WaitCaughtUp(testCtx(t, d)); err != nil {
		t.Fatalf("%v (stats %+v, last error %v)", err, m.Stats(), m.LastError())
	}
}

func rawRecords(t *testing.T, payload []byte) map[string][]map[string]json.RawMessage {
	t.Helper()
	var raw struct {
		Records map[string][]map[string]json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		t.Fatal(err)
	}
	return raw.Records
}

func std64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
