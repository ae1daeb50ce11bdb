package replicate

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/produceguard"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// stall holds the requests of one kind (a Kafka API key) written on a
// client's connections until the test releases them: a zombie invocation
// paused (a slow environment, a network stall) after it read the target's
// tail, before its records reach the target (Produce) or before it commits
// them (EndTxn).
type stall struct {
	api     uint16
	mu      sync.Mutex
	cond    *sync.Cond
	held    []*heldWrite
	blocked int             // requests held so far
	seen    map[string]bool // requests held, by content: a client's retry of one passes
	open    bool            // released for good: nothing is held any more
}

type heldWrite struct {
	at      int64 // the new owner's invocations done when it was held
	release chan struct{}
}

// Kafka API keys a stall can hold.
const (
	apiProduce = 0
	apiEndTxn  = 26
)

func newStall(api uint16) *stall {
	s := &stall{api: api, seen: map[string]bool{}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// wrap holds every request of the stall's kind written on c until released.
func (s *stall) wrap(now func() int64) func(net.Conn) net.Conn {
	return func(c net.Conn) net.Conn { return &stallConn{Conn: c, s: s, now: now} }
}

type stallConn struct {
	net.Conn
	s   *stall
	now func() int64
}

func (c *stallConn) Write(b []byte) (int, error) {
	// A Kafka request: a 4-byte length, then the 2-byte API key.
	if len(b) >= 12 && binary.BigEndian.Uint16(b[4:6]) == c.s.api {
		// The request without its correlation ID (bytes 8-11): a client
		// retrying a released request (EndTxn answered
		// CONCURRENT_TRANSACTIONS) sends it again, and it must not count
		// as another zombie's.
		key := string(b[4:8]) + string(b[12:])
		c.s.mu.Lock()
		if c.s.seen[key] || c.s.open {
			c.s.mu.Unlock()
			return c.Conn.Write(b)
		}
		c.s.seen[key] = true
		h := &heldWrite{at: c.now(), release: make(chan struct{})}
		c.s.held = append(c.s.held, h)
		c.s.blocked++
		c.s.cond.Broadcast()
		c.s.mu.Unlock()
		<-h.release
	}
	return c.Conn.Write(b)
}

// waitBlocked waits until n requests have been held, or until n zombie
// invocations have returned (zombiesDone; a zombie that ended before its
// write holds nothing, and call wake when one returns). If neither comes
// within 30 s, the overlap did not happen as planned: it reports that
// and returns.
func (s *stall) waitBlocked(t *testing.T, n int, zombiesDone func() int64) {
	expired := false
	timer := time.AfterFunc(30*time.Second, func() {
		s.mu.Lock()
		expired = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.blocked < n && zombiesDone() < int64(n) {
		if expired {
			t.Errorf("%d requests held and %d zombie invocations returned, want %d of either: the zombie of an overlapped batch never reached its write", s.blocked, zombiesDone(), n)
			return
		}
		s.cond.Wait()
	}
}

// wake makes waitBlocked look again.
func (s *stall) wake() {
	s.mu.Lock()
	s.cond.Broadcast()
	s.mu.Unlock()
}

// releaseUpTo lets through the writes held when at most upTo invocations
// of the new owner were done.
func (s *stall) releaseUpTo(upTo int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.held[:0]
	for _, h := range s.held {
		if h.at <= upTo {
			close(h.release)
			continue
		}
		kept = append(kept, h)
	}
	s.held = kept
}

// releaseAll lets every held write through, and every later one: a
// zombie's request written after the run ended must not wait forever.
func (s *stall) releaseAll() {
	s.mu.Lock()
	s.open = true
	s.mu.Unlock()
	s.releaseUpTo(1 << 62)
}

// overlapRun is one partition replicated under overlapping delivery: every
// other batch is invoked at once by a zombie (the partition's previous
// owner, whose writes stall after it read the target's tail) and
// redelivered by the new owner, which goes on with the next batch. Each
// zombie's writes land after the new owner wrote the batch and the one
// after it.
type overlapRun struct {
	stallAPI    uint16       // what the zombie's stall holds: apiProduce or apiEndTxn
	zombies     atomic.Int64 // zombie invocations started
	zombiesDone atomic.Int64 // zombie invocations returned
	zombieFails atomic.Int64 // zombie invocations fenced (a *FenceError)
	done        atomic.Int64 // the new owner's invocations done
}

func (o *overlapRun) run(t *testing.T, r *rig, topic string, batch int) {
	t.Helper()
	st := newStall(o.stallAPI)
	zombie, zcl := r.newStalledFunction(t, st.wrap(o.done.Load))
	t.Cleanup(zcl.Close)
	var zwg sync.WaitGroup
	zh := lambdaHandlerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		zwg.Add(1)
		defer zwg.Done()
		o.zombies.Add(1)
		out, err := zombie.Invoke(ctx, payload)
		o.zombiesDone.Add(1)
		st.wake()
		var fe *FenceError
		if errors.As(err, &fe) {
			o.zombieFails.Add(1)
		} else if err != nil {
			t.Errorf("zombie invocation failed with %T, not a fenced *FenceError: %v", err, err)
		}
		return out, err
	})
	var overlapped sync.Map // first offsets of the overlapped batches seen
	owner := lambdaHandlerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		// The zombie of an overlapped batch has read the tail and stalls
		// on its write before the new owner writes the batch.
		if first := firstOffset(t, payload); first/int64(batch)%2 == 1 {
			overlapped.Store(first, true)
		}
		n := 0
		overlapped.Range(func(any, any) bool { n++; return true })
		st.waitBlocked(t, n, o.zombiesDone.Load)
		out, err := r.repl.Invoke(ctx, payload)
		if err == nil {
			n := o.done.Add(1)
			st.releaseUpTo(n - 2) // the redelivery and the batch after it are written
		}
		return out, err
	})
	t.Cleanup(st.releaseAll) // before the mapping's Close waits for zombies
	m := r.mappingFor(t, topic, batch, 1, owner, func(c *esm.Config) {
		c.Overlap = esm.Overlap{Every: 2, Handler: zh}
	})
	r.waitCaughtUp(t, m, 20*time.Second)
	if err := m.LastError(); err != nil {
		t.Logf("last mapping error: %v", err)
	}
	st.releaseAll()
	zwg.Wait()
}

// firstOffset is the offset of the first record of a one-partition event.
func firstOffset(t *testing.T, payload []byte) int64 {
	var ev struct {
		Records map[string][]struct {
			Offset int64 `json:"offset"`
		} `json:"records"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Errorf("decoding the event: %v", err)
		return -1
	}
	for _, recs := range ev.Records {
		return recs[0].Offset
	}
	return -1
}

// newStalledFunction is newFunction with every target connection wrapped
// by wrap (above the ProduceGuard).
func (r *rig) newStalledFunction(t *testing.T, wrap func(net.Conn) net.Conn) (*Replicator, *kgo.Client) {
	t.Helper()
	cfg := r.cfg
	newClient := func(extra ...kgo.Opt) (*kgo.Client, error) {
		c := cfg
		guard := produceguard.New()
		c.Target.WrapConn = func(conn net.Conn) net.Conn { return wrap(guard.Wrap(conn)) }
		opts, err := c.Target.Options(context.Background(), nil)
		if err != nil {
			return nil, err
		}
		opts = append(opts, ProducerOptions(c)...)
		opts = append(opts, kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
		return kgo.NewClient(append(opts, extra...)...)
	}
	cl, err := newClient()
	if err != nil {
		t.Fatal(err)
	}
	repl, err := New(cfg, cl, r.source, WithLogger(quietLogger()), WithMetricsWriter(nil),
		WithClientFactory(func() (*kgo.Client, error) { return newClient() }),
		WithFenceClientFactory(func(id string) (*kgo.Client, error) { return newClient(FenceOptions(id)...) }))
	if err != nil {
		t.Fatal(err)
	}
	return repl, cl
}

// damage counts, over a target partition's records, the copies of a
// source offset seen before (duplicates) and the records whose provenance
// is not above the one before (order violations).
func damage(t *testing.T, recs []*kgo.Record) (dups, regressions int) {
	t.Helper()
	seen := map[int64]bool{}
	prev := int64(-1)
	for _, rec := range recs {
		pv, err := provenance.Of(rec)
		if err != nil {
			t.Fatalf("target record at %d has no provenance: %v", rec.Offset, err)
		}
		if seen[pv.Offset] {
			dups++
		}
		seen[pv.Offset] = true
		if pv.Offset <= prev {
			regressions++
		}
		prev = pv.Offset
	}
	return dups, regressions
}

// TestOverlappingDelivery: a partition delivered twice at once, by a
// zombie invocation of its previous owner and by the new owner, which goes
// on with later batches before the zombie's writes land, is still copied
// exactly once, in order, with provenance increasing along the target
// partition (the cutover's offset translation binary-searches it): the
// new owner's transactions fence the zombie, whose writes are refused or
// aborted.
func TestOverlappingDelivery(t *testing.T) { testOverlappingDelivery(t, kfakeEnv()) }

func testOverlappingDelivery(t *testing.T, e *env) {
	tp := e.tn("t")
	prefix := e.tn("kmig-fence") + "-"
	r := newRigOn(t, e, map[string]int32{"t": 1}, nil, func(c *Config) { c.TransactionalIDPrefix = prefix })
	seed(t, r.pair.Source, tp, 1, 600, 10)
	o := overlapRun{stallAPI: apiProduce}
	o.run(t, r, tp, 100)
	dst := readAll(t, r.pair.Target, tp)
	dups, regressions := damage(t, dst[0])
	t.Logf("fenced overlap: %d zombie invocations (%d fenced), %d new-owner invocations; target: %d records, %d duplicates, %d order violations",
		o.zombies.Load(), o.zombieFails.Load(), o.done.Load(), len(dst[0]), dups, regressions)
	if o.zombies.Load() != 3 {
		t.Fatalf("%d zombie invocations, want 3: the overlap was not exercised as planned", o.zombies.Load())
	}
	if dups != 0 || regressions != 0 {
		t.Fatalf("%d duplicates and %d order violations on the target under overlapping delivery; target runs: %s",
			dups, regressions, provenanceRuns(dst[0]))
	}
	exactlyOnce(t, readAll(t, r.pair.Source, tp), dst, tp)
	if o.zombieFails.Load() != o.zombies.Load() {
		t.Fatalf("%d of %d zombie invocations fenced: every zombie should have been", o.zombieFails.Load(), o.zombies.Load())
	}
}

// TestOverlappingDeliveryUnfenced is the same overlap without the fence:
// dedup by provenance alone cannot stop a zombie that read the tail before
// the new owner wrote. It shows the harness really overlaps writes (so
// TestOverlappingDelivery cannot pass by accident) and measures the damage.
func TestOverlappingDeliveryUnfenced(t *testing.T) { testOverlappingDeliveryUnfenced(t, kfakeEnv()) }

func testOverlappingDeliveryUnfenced(t *testing.T, e *env) {
	tp := e.tn("t")
	r := newRigOn(t, e, map[string]int32{"t": 1}, nil, nil)
	seed(t, r.pair.Source, tp, 1, 600, 10)
	o := overlapRun{stallAPI: apiProduce}
	o.run(t, r, tp, 100)
	dst := readAll(t, r.pair.Target, tp)
	dups, regressions := damage(t, dst[0])
	t.Logf("unfenced overlap: %d zombie invocations (%d fenced), %d new-owner invocations; target: %d records, %d duplicates, %d order violations",
		o.zombies.Load(), o.zombieFails.Load(), o.done.Load(), len(dst[0]), dups, regressions)
	if dups == 0 || regressions == 0 {
		t.Fatalf("no duplicate or no order violation without the fence: the overlap did not reach the target; target runs: %s", provenanceRuns(dst[0]))
	}
}

// TestOverlappingDeliveryZombieCommitsLate: the zombie's records reach the
// target inside its transaction, and the zombie stalls before committing.
// The new owner's InitProducerID aborts that transaction; its records stay
// in the log, aborted, and every reader of provenance (the replicator's
// dedup, the cutover's translation, read_committed consumers) skips them.
// The zombie's late commit is refused.
func TestOverlappingDeliveryZombieCommitsLate(t *testing.T) {
	testOverlappingDeliveryZombieCommitsLate(t, kfakeEnv())
}

func testOverlappingDeliveryZombieCommitsLate(t *testing.T, e *env) {
	tp := e.tn("t")
	prefix := e.tn("kmig-fence") + "-"
	r := newRigOn(t, e, map[string]int32{"t": 1}, nil, func(c *Config) { c.TransactionalIDPrefix = prefix })
	seed(t, r.pair.Source, tp, 1, 600, 10)
	o := overlapRun{stallAPI: apiEndTxn}
	o.run(t, r, tp, 100)
	dst := readAll(t, r.pair.Target, tp)
	dups, regressions := damage(t, dst[0])
	uncommitted := len(readUncommitted(t, context.Background(), r.pair.Target, tp)[0])
	t.Logf("fenced overlap, zombie commits late: %d zombie invocations (%d fenced), %d new-owner invocations; target: %d records read_committed, %d duplicates, %d order violations; %d records read_uncommitted",
		o.zombies.Load(), o.zombieFails.Load(), o.done.Load(), len(dst[0]), dups, regressions, uncommitted)
	if o.zombies.Load() != 3 || o.zombieFails.Load() != 3 {
		t.Fatalf("%d zombie invocations, %d fenced; want 3 and 3", o.zombies.Load(), o.zombieFails.Load())
	}
	if dups != 0 || regressions != 0 {
		t.Fatalf("%d duplicates and %d order violations read_committed; target runs: %s", dups, regressions, provenanceRuns(dst[0]))
	}
	exactlyOnce(t, readAll(t, r.pair.Source, tp), dst, tp)
	if uncommitted != 900 {
		t.Fatalf("%d records read_uncommitted, want 900: the 600 committed and the zombies' 3 aborted batches of 100", uncommitted)
	}
}
