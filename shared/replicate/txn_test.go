package replicate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/apps"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaevent"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

func TestTransactions(t *testing.T) { testTransactions(t, kfakeEnv()) }

// testTransactions migrates, through the ESM emulator and the replicator,
// a topic written by a transactional application (committed and aborted
// transactions) with non-transactional records between its transactions,
// and one transaction held open while the mapping delivers batches, under
// each poller isolation level. The target must hold exactly what a
// read_committed consumer of the source reads, each record once, none
// aborted; the open transaction's records (and the records behind it)
// only once it commits; every aborted record the poller delivered must be
// counted; and the mapping must read as caught up at the end.
func testTransactions(t *testing.T, e *env) {
	for _, iso := range []esm.Isolation{esm.ReadUncommitted, esm.ReadCommitted} {
		t.Run(string(iso), func(t *testing.T) {
			sub := *e
			sub.names = nil
			testTransactionsAt(t, &sub, iso)
		})
	}
}

// deliveries records what each invocation carried and returned.
type deliveries struct {
	mu          sync.Mutex
	offsets     []provenance.Source   // every record of every invocation, retries included
	invocations [][]provenance.Source // the same, by invocation
	open        int                   // invocations that returned an *OpenTransactionError
	other       []error
}

func (d *deliveries) wrap(t *testing.T, r *Replicator) lambdaHandlerFunc {
	return func(ctx context.Context, payload []byte) ([]byte, error) {
		ev, err := kafkaevent.Decode(slices.Clone(payload))
		if err != nil {
			t.Errorf("the mapping sent a malformed event: %v", err)
		}
		out, herr := r.Invoke(ctx, payload)
		d.mu.Lock()
		defer d.mu.Unlock()
		if ev != nil {
			var inv []provenance.Source
			for _, p := range ev.Partitions {
				for _, rec := range p.Records {
					inv = append(inv, provenance.Source{Topic: p.Topic, Partition: p.Partition, Offset: rec.Offset})
				}
			}
			d.offsets = append(d.offsets, inv...)
			d.invocations = append(d.invocations, inv)
		}
		var open *OpenTransactionError
		switch {
		case errors.As(herr, &open):
			d.open++
		case herr != nil:
			d.other = append(d.other, herr)
		}
		return out, herr
	}
}

// pastStable counts the finished invocations that carried a record at or
// past its partition's last stable offset in lso.
func (d *deliveries) pastStable(lso map[int32]int64) int {
	n := 0
	for _, inv := range d.invocations {
		if slices.ContainsFunc(inv, func(s provenance.Source) bool { return s.Offset >= lso[s.Partition] }) {
			n++
		}
	}
	return n
}

// pollerWatch is a kgo hook on a mapping's consumer: it counts the
// Fetch requests the consumer writes to each broker and keeps the source
// position of every record it buffers for delivery.
type pollerWatch struct {
	mu       sync.Mutex
	fetches  map[int32]int64 // by broker node ID
	buffered []provenance.Source
}

func (w *pollerWatch) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Fetch.Int16() && err == nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.fetches == nil {
			w.fetches = map[int32]int64{}
		}
		w.fetches[meta.NodeID]++
	}
}

// fetchCounts returns the Fetch requests written so far, by broker.
func (w *pollerWatch) fetchCounts() map[int32]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.fetches)
}

func (w *pollerWatch) OnFetchRecordBuffered(r *kgo.Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buffered = append(w.buffered, provenance.Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset})
}

// pastStable returns the buffered records at or past lso.
func (w *pollerWatch) pastStable(lso map[int32]int64) []provenance.Source {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []provenance.Source
	for _, s := range w.buffered {
		if s.Offset >= lso[s.Partition] {
			out = append(out, s)
		}
	}
	return out
}

type lambdaHandlerFunc func(ctx context.Context, payload []byte) ([]byte, error)

func (f lambdaHandlerFunc) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return f(ctx, payload)
}

func testTransactionsAt(t *testing.T, e *env, iso esm.Isolation) {
	const parts = 3
	tp := e.tn("orders")
	r := newRigOn(t, e, map[string]int32{"orders": parts}, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	src := r.pair.Source
	ledger := apps.NewLedger()
	app, err := apps.NewTxnProducer(src, src.AdminCredentials(), ledger, tp, parts, tp+"-app")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	plainN := 0
	plain := func(n int) { // non-transactional records between the transactions
		t.Helper()
		var recs []*kgo.Record
		for range n {
			for p := range int32(parts) {
				plainN++
				recs = append(recs, &kgo.Record{Topic: tp, Partition: p, Key: fmt.Appendf(nil, "plain-%d", plainN),
					Value: fmt.Appendf(nil, "plain value %d", plainN), Headers: []kgo.RecordHeader{{Key: "plain", Value: []byte{byte(plainN)}}}})
			}
		}
		if err := src.ProduceSync(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	step(app.Commit(ctx, 9))
	plain(3)
	step(app.Abort(ctx, 6))
	step(app.Commit(ctx, 3))
	plain(2)
	step(app.Abort(ctx, 9))
	step(app.Commit(ctx, 6))

	var d deliveries
	poller := &pollerWatch{}
	m := r.mappingFor(t, tp, 7, 1, d.wrap(t, r.repl), func(c *esm.Config) {
		c.Isolation = iso
		// Short fetch waits, so the poller comes back for more soon
		// after the last stable offset.
		c.ClientOptions = append(c.ClientOptions, kgo.WithHooks(poller), kgo.FetchMaxWait(100*time.Millisecond))
		// A short function timeout: waiting for the open transaction
		// ends before it, the batch fails and is retried.
		c.InvokeTimeout = 3 * time.Second
	})
	r.waitCaughtUp(t, m, time.Minute)

	// A transaction held open across batches, records behind it.
	open, err := app.Begin(ctx, 12)
	step(err)
	plain(2)
	lso := stableOffsets(t, ctx, src, tp)
	if iso == esm.ReadCommitted {
		// The poller receives nothing past the open transaction. A kgo
		// consumer writes a broker's next fetch only once the previous
		// one's records are buffered and taken: by the second fetch it
		// writes to each broker from here on, the first one's records
		// are all in poller.buffered.
		from := poller.fetchCounts()
		waitFor(t, ctx, "the poller fetched twice more from each broker", func() bool {
			now := poller.fetchCounts()
			for node, n := range from {
				if now[node] < n+2 {
					return false
				}
			}
			return len(from) > 0
		})
		if past := poller.pastStable(lso); len(past) > 0 {
			t.Fatalf("the read_committed poller received source records past the last stable offset: %v", past)
		}
	} else {
		waitFor(t, ctx, "the poller delivered the open transaction's records in two invocations", func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.pastStable(lso) >= 2
		})
	}
	for p, recs := range readAll(t, r.pair.Target, tp) {
		for _, rec := range recs {
			pv, err := provenance.Of(rec)
			step(err)
			if pv.Offset >= lso[p] {
				t.Fatalf("while the transaction is open the target holds source %s (last stable offset %d)", pv, lso[p])
			}
		}
	}
	step(open.Commit(ctx))
	step(app.Commit(ctx, 3))
	step(app.Abort(ctx, 3)) // the partitions end with an abort marker
	r.waitCaughtUp(t, m, time.Minute)

	// The target is what a read_committed consumer of the source reads.
	source, target := readAll(t, src, tp), readAll(t, r.pair.Target, tp)
	exactlyOnce(t, source, target, tp)
	seen := map[string]int{} // values on the target

	for _, recs := range target {
		for _, rec := range recs {
			seen[string(rec.Value)]++
		}
	}
	produced, _, _ := ledger.Check()
	for n := range produced {
		if c := seen[fmt.Sprint(n)]; c != 1 {
			t.Errorf("committed number %d is on the target %d times", n, c)
		}
	}
	for v, c := range seen {
		if n, err := strconv.Atoi(v); err == nil && n >= produced {
			t.Errorf("number %d, never committed, is on the target %d times", n, c)
		}
	}

	// Every aborted record the poller delivered was counted, retries
	// included; read_committed delivers none.
	aborted := abortedOffsets(t, ctx, src, tp, source)
	total := 0
	for _, offs := range aborted {
		total += len(offs)
	}
	delivered := 0
	d.mu.Lock()
	for _, s := range d.offsets {
		if aborted[s.Partition][s.Offset] {
			delivered++
		}
	}
	opens, others := d.open, d.other
	d.mu.Unlock()
	tot := r.totals()
	if tot.RecordsAborted != int64(delivered) {
		t.Errorf("RecordsAborted %d, the poller delivered %d aborted records", tot.RecordsAborted, delivered)
	}
	switch iso {
	case esm.ReadCommitted:
		if delivered != 0 || opens != 0 {
			t.Errorf("read_committed delivered %d aborted records and %d batches stopped at an open transaction; want none", delivered, opens)
		}
	default:
		if delivered < total || opens == 0 {
			t.Errorf("read_uncommitted delivered %d aborted records (of %d on the source) and %d batches stopped at an open transaction", delivered, total, opens)
		}
	}
	if len(others) > 0 {
		t.Errorf("invocations failed: %v", others)
	}
	if !strings.Contains(r.emf.String(), `"RecordsAborted"`) {
		t.Error("the EMF lines lack RecordsAborted")
	}
}

// stableOffsets returns each partition's last stable offset.
func stableOffsets(t *testing.T, ctx context.Context, c *kafkalocal.Cluster, topic string) map[int32]int64 {
	t.Helper()
	adm, err := c.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	lso, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = lso.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	lso.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// readUncommitted returns every data record of topic, by partition, as a
// read_uncommitted consumer (and the default poller) reads them.
func readUncommitted(t *testing.T, ctx context.Context, c *kafkalocal.Cluster, topic string) map[int32][]*kgo.Record {
	t.Helper()
	cl, err := c.NewClient(kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32][]*kgo.Record{}
	for {
		// Everything is written: read until a poll finds no more.
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			return out
		}
		fs.EachRecord(func(r *kgo.Record) { out[r.Partition] = append(out[r.Partition], r) })
	}
}

// abortedOffsets returns, per partition, the offsets of data records a
// read_uncommitted consumer reads and a read_committed one (committed)
// does not.
func abortedOffsets(t *testing.T, ctx context.Context, c *kafkalocal.Cluster, topic string, committed map[int32][]*kgo.Record) map[int32]map[int64]bool {
	t.Helper()
	out := map[int32]map[int64]bool{}
	all := readUncommitted(t, ctx, c, topic)
	for p, recs := range committed {
		keep := map[int64]bool{}
		for _, r := range recs {
			keep[r.Offset] = true
		}
		out[p] = map[int64]bool{}
		for _, r := range all[p] {
			if !keep[r.Offset] {
				out[p][r.Offset] = true
			}
		}
		if len(out[p]) == 0 {
			t.Fatalf("partition %d has no aborted record", p)
		}
	}
	return out
}

// waitFor polls cond until it holds, for at most 30 s.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting until %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestSourceRecordsGone: records the source deleted between the poll and
// the invocation cannot be checked. They fail permanently, as transform
// errors do: the batch fails under fail-batch, and under dead-letter they
// go to the dead-letter topic (never to the target topic), and a retry
// neither rewrites nor loses anything.
func TestSourceRecordsGone(t *testing.T) {
	for _, policy := range []Policy{FailBatch, DeadLetter} {
		t.Run(string(policy), func(t *testing.T) {
			r := newRig(t, map[string]int32{"t": 1}, nil, func(c *Config) { c.OnRecordError = policy })
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			seed(t, r.pair.Source, "t", 1, 10, 5)
			src := readAll(t, r.pair.Source, "t")[0]
			adm, err := r.pair.Source.AdminClient()
			if err != nil {
				t.Fatal(err)
			}
			defer adm.Close()
			del := kadm.Offsets{}
			del.AddOffset("t", 0, 4, -1)
			if _, err := adm.DeleteRecords(ctx, del); err != nil {
				t.Fatal(err)
			}
			res, err := r.repl.Handle(ctx, encodeEvent(t, src))
			if policy == FailBatch {
				var rf *RecordFailuresError
				if !errors.As(err, &rf) || len(rf.Failures) != 4 || !strings.Contains(err.Error(), "no longer holds") {
					t.Fatalf("err = %v, want 4 record failures", err)
				}
				if got := readAll(t, r.pair.Target, "t")[0]; len(got) != 0 {
					t.Fatalf("%d records written", len(got))
				}
				return
			}
			if err != nil || res.RecordsWritten != 6 || res.RecordsDeadLettered != 4 {
				t.Fatalf("result %+v, %v; want 6 written and 4 dead-lettered", res, err)
			}
			if res, err = r.repl.Handle(ctx, encodeEvent(t, src)); err != nil || res.RecordsWritten != 0 || res.RecordsDeadLettered != 0 {
				t.Fatalf("retry: %+v, %v; want nothing written again", res, err)
			}
			exactlyOnce(t, map[int32][]*kgo.Record{0: src[4:]}, readAll(t, r.pair.Target, "t"), "t")
			dl := readAll(t, r.pair.Target, DefaultDeadLetterTopic)[0]
			if len(dl) != 4 {
				t.Fatalf("%d dead letters, want 4", len(dl))
			}
			for i, d := range dl {
				var kind, src string
				for _, h := range d.Headers {
					switch h.Key {
					case HeaderErrorType:
						kind = string(h.Value)
					case provenance.HeaderKey:
						src = string(h.Value)
					}
				}
				if kind != "source-gone" || src != fmt.Sprintf("t/0/%d", i) {
					t.Errorf("dead letter %d: type %q, provenance %q", i, kind, src)
				}
			}
		})
	}
}

// TestOpenTransaction hands the replicator a batch whose one partition
// ends in a transaction still open: it writes the other partition whole
// and this one up to the open transaction, fails with a typed
// *OpenTransactionError before the deadline, and once the transaction
// commits the retry writes the rest, skipping what is there.
func TestOpenTransaction(t *testing.T) {
	r := newRig(t, map[string]int32{"t": 2}, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := r.pair.Source
	app, err := apps.NewTxnProducer(src, src.AdminCredentials(), apps.NewLedger(), "t", 2, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if err := app.Commit(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if err := app.Abort(ctx, 2); err != nil {
		t.Fatal(err)
	}
	open, err := app.Begin(ctx, 1) // number 6: partition 0
	if err != nil {
		t.Fatal(err)
	}
	seed(t, src, "t", 2, 2, 3) // behind it on partition 0
	all := readUncommitted(t, ctx, src, "t")
	var recs []*kgo.Record
	for _, p := range []int32{0, 1} {
		recs = append(recs, all[p]...)
	}
	ev := encodeEvent(t, recs)
	openAt := all[0][4].Offset // 3 committed, 1 aborted, then the open one
	if string(all[0][4].Value) != "6" {
		t.Fatalf("record %d of partition 0 is %q, want the open transaction's", openAt, all[0][4].Value)
	}

	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	// The wait's end as of now: the replicator computes it later, so no
	// earlier (how it is set before the deadline is TestWaitUntil's).
	until := r.repl.waitUntil(dctx)
	_, err = r.repl.Invoke(dctx, slices.Clone(ev))
	returned := time.Now()
	dcancel()
	var ot *OpenTransactionError
	if !errors.As(err, &ot) || errorType(err) != "OpenTransactionError" || ot.Topic != "t" || ot.Partition != 0 || ot.Offset != openAt {
		t.Fatalf("err = %T %v; want *OpenTransactionError at t/0@%d", err, err, openAt)
	}
	if returned.Before(until) {
		t.Fatalf("gave up %v before the end of the wait", until.Sub(returned))
	}
	if !strings.Contains(err.Error(), "retried") {
		t.Fatalf("message %q does not say the batch is retried", err)
	}
	got := readAll(t, r.pair.Target, "t")
	if len(got[0]) != 3 || len(got[1]) != len(all[1])-1 {
		t.Fatalf("target holds %d and %d records; want partition 0 up to the open transaction (3) and partition 1 less its aborted record (%d)",
			len(got[0]), len(got[1]), len(all[1])-1)
	}
	if tot := r.repl.Totals(); tot.RecordsAborted != 2 {
		t.Fatalf("aborted %d, want 2", tot.RecordsAborted)
	}

	// The retry finds the transaction still open (a source fetch
	// answered), then it commits.
	fetched := r.repl.SourceStats().Fetches
	type result struct {
		res Result
		err error
	}
	handled := make(chan result, 1)
	go func() {
		res, err := r.repl.Handle(ctx, slices.Clone(ev))
		handled <- result{res, err}
	}()
	waitFor(t, ctx, "the retry read the source", func() bool { return len(handled) > 0 || r.repl.SourceStats().Fetches > fetched })
	if err := open.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	h := <-handled
	res, err := h.res, h.err
	if err != nil || res.RecordsWritten != 3 || res.DuplicatesSkipped != len(recs)-2-3 || res.RecordsAborted != 2 {
		t.Fatalf("after the commit: %+v, %v; want the 3 records from the open transaction on written", res, err)
	}
	exactlyOnce(t, readAll(t, src, "t"), readAll(t, r.pair.Target, "t"), "t")
}

// TestWaitUntil: waiting for an open transaction ends a margin before the
// function's deadline, never after it.
func TestWaitUntil(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := &Replicator{now: func() time.Time { return now }}
	for _, tc := range []struct {
		left, want time.Duration // deadline and expected end, from now; left 0: no deadline
	}{
		{0, maxOpenTxnWait},
		{300 * time.Second, 290 * time.Second},
		{4 * time.Second, 3 * time.Second},
		{-time.Second, -time.Second},
	} {
		ctx := context.Background()
		if tc.left != 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, now.Add(tc.left))
			defer cancel()
		}
		if got := r.waitUntil(ctx).Sub(now); got != tc.want {
			t.Errorf("deadline in %v: wait until %v, want %v", tc.left, got, tc.want)
		}
	}
}
