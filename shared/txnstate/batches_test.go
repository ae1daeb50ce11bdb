package txnstate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// verdicts expands what learn returned into one verdict per offset of
// [from, l.end).
func verdicts(from int64, l learned) map[int64]Verdict {
	out := map[int64]Verdict{}
	at := from
	for _, s := range l.spans {
		for ; at < s.end; at++ {
			out[at] = s.v
		}
	}
	return out
}

func TestLearn(t *testing.T) {
	const P, Q, N = 7, 9, -1 // transactional producers P and Q; N non-transactional
	cases := []struct {
		name    string
		from    int64
		batches []spec
		aborted []int64 // pid, first offset pairs
		stable  int64
		want    string // verdict letter per offset from from on: c committed, a aborted, u unknown
	}{
		{name: "plain", batches: []spec{{base: 0, n: 3}, {base: 3, n: 2}}, stable: 5, want: "ccccc"},
		{
			name: "commit and abort interleaved",
			batches: []spec{
				{base: 0, n: 2, pid: P, txn: true}, // P's first transaction: committed at 5
				{base: 2, n: 2, pid: Q, txn: true}, // Q's: aborted at 6
				{base: 4, n: 1, pid: N},
				{base: 5, n: 1, pid: P, txn: true, control: true, marker: markerCommit},
				{base: 6, n: 1, pid: Q, txn: true, control: true, marker: markerAbort},
				{base: 7, n: 2, pid: Q, txn: true}, // Q again, committed at 9
				{base: 9, n: 1, pid: Q, txn: true, control: true, marker: markerCommit},
			},
			aborted: []int64{Q, 2},
			stable:  10,
			want:    "ccaacaacca",
		},
		{
			name: "two aborted transactions of one producer",
			batches: []spec{
				{base: 0, n: 2, pid: P, txn: true},
				{base: 2, n: 1, pid: P, txn: true, control: true, marker: markerAbort},
				{base: 3, n: 1, pid: P, txn: true},
				{base: 4, n: 1, pid: P, txn: true, control: true, marker: markerCommit},
				{base: 5, n: 2, pid: P, txn: true},
				{base: 7, n: 1, pid: P, txn: true, control: true, marker: markerAbort},
			},
			aborted: []int64{P, 5, P, 0}, // out of order, as Redpanda may send them
			stable:  8,
			want:    "aaacaaaa",
		},
		{
			name: "fetch from inside a batch and inside an aborted transaction",
			from: 3,
			batches: []spec{
				{base: 0, n: 2, pid: N},
				{base: 2, n: 3, pid: P, txn: true},
				{base: 5, n: 1, pid: P, txn: true, control: true, marker: markerAbort},
				{base: 6, n: 1, pid: N},
			},
			aborted: []int64{P, 2},
			stable:  7,
			want:    "aaac",
		},
		{
			name: "a commit marker does not end an aborted run (as in kgo)",
			batches: []spec{
				{base: 0, n: 1, pid: P, txn: true},
				{base: 1, n: 1, pid: P, txn: true, control: true, marker: markerCommit},
				{base: 2, n: 1, pid: P, txn: true},
			},
			aborted: []int64{P, 0},
			stable:  3,
			want:    "aaa",
		},
		{
			name: "a compressed marker ends the aborted run by its producer",
			batches: []spec{
				{base: 0, n: 1, pid: P, txn: true},
				{base: 1, n: 1, pid: P, txn: true, control: true, marker: markerCommit, lz4: true},
				{base: 2, n: 1, pid: P, txn: true},
			},
			aborted: []int64{P, 0},
			stable:  3,
			want:    "aac",
		},
		{
			name: "gaps: committed where no aborted transaction overlaps, else unknown",
			batches: []spec{
				{base: 2, n: 1, pid: N}, // 0-1 gone: nothing aborted there
				{base: 5, n: 1, pid: P, txn: true},
				{base: 8, n: 1, pid: P, txn: true, control: true, marker: markerAbort}, // P aborted from 4: 3 is before it, 4, 6-7 gone inside it
				{base: 10, n: 1, pid: N}, // 9 gone after the marker
			},
			aborted: []int64{P, 4},
			stable:  11,
			want:    "cccuuauuacc",
		},
		{
			name:    "batches at or past the last stable offset are undecided",
			batches: []spec{{base: 0, n: 2, pid: N}, {base: 2, n: 2, pid: P, txn: true}, {base: 4, n: 1, pid: N}},
			stable:  2,
			want:    "cc",
		},
		{name: "empty below the last stable offset", from: 4, stable: 6, want: "uu"},
		{name: "empty at the last stable offset", from: 4, stable: 4, want: ""},
		{name: "a batch wholly before from is skipped", from: 3, batches: []spec{{base: 0, n: 2}, {base: 2, n: 3}}, stable: 5, want: "cc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var raw []byte
			for _, s := range c.batches {
				raw = encode(raw, s)
			}
			l, err := learn(c.from, raw, aborts(c.aborted...), c.stable)
			if err != nil {
				t.Fatal(err)
			}
			if want := c.from + int64(len(c.want)); l.end != want {
				t.Fatalf("learned up to %d, want %d (spans %+v)", l.end, want, l.spans)
			}
			vs := verdicts(c.from, l)
			letters := map[Verdict]byte{Committed: 'c', Aborted: 'a', Unknown: 'u', Undecided: '?'}
			got := make([]byte, len(c.want))
			for i := range got {
				got[i] = letters[vs[c.from+int64(i)]]
			}
			if string(got) != c.want {
				t.Fatalf("verdicts %s, want %s", got, c.want)
			}
		})
	}
}

func TestLearnTruncated(t *testing.T) {
	one := encode(nil, spec{base: 0, n: 3})
	two := encode(append([]byte(nil), one...), spec{base: 3, n: 3})
	// The second batch cut short: only the first is learned.
	l, err := learn(0, two[:len(two)-5], nil, 10)
	if err != nil || l.end != 3 || l.want != 0 {
		t.Fatalf("learned %+v, %v; want [0,3) and no retry", l, err)
	}
	// Only the start of the first batch: learn nothing, ask for all of it.
	l, err = learn(0, one[:30], nil, 10)
	if err != nil || l.end != 0 || l.want != len(one) {
		t.Fatalf("learned %+v, %v; want nothing and want=%d", l, err, len(one))
	}
	l, err = learn(0, one[:10], nil, 10)
	if err != nil || l.end != 0 || l.want != headerSize {
		t.Fatalf("learned %+v, %v; want nothing and want=%d", l, err, headerSize)
	}
}

func TestLearnMalformed(t *testing.T) {
	a := encode(nil, spec{base: 0, n: 3})
	overlap := encode(append([]byte(nil), a...), spec{base: 1, n: 3})
	badMagic := append([]byte(nil), a...)
	badMagic[16] = 7
	short := append([]byte(nil), a...)
	short[11] = 20 // length below a v2 header
	negative := encode(nil, spec{base: -5, n: 1})
	for name, raw := range map[string][]byte{"overlap": overlap, "magic": badMagic, "short": short, "negative": negative} {
		if _, err := learn(0, raw, nil, 10); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v, want ErrMalformed", name, err)
		}
	}
}

// TestLearnMatchesKgo runs learn and kgo.ProcessFetchPartition on the same
// fetch bytes of random logs: interleaved transactional producers that
// commit and abort, non-transactional ones, batches removed as compaction
// does, a transaction left open, fetches from random offsets with random
// size limits. learn must keep exactly what kgo keeps, and must never call
// a removed aborted offset Committed.
func TestLearnMatchesKgo(t *testing.T) {
	for seed := range uint64(400) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkRandomLog(t, rand.New(rand.NewPCG(seed, 7))) })
	}
}

// simLog is a generated partition log.
type simLog struct {
	batches []spec
	truth   map[int64]Verdict // per data offset: Committed or Aborted; markers Aborted
	removed map[int64]bool    // offsets of batches compaction removed
	txns    []simTxn          // aborted transactions
	stable  int64
	end     int64
}

type simTxn struct {
	pid         int64
	first, last int64 // last: the abort marker
}

func genLog(rng *rand.Rand) *simLog {
	l := &simLog{truth: map[int64]Verdict{}, removed: map[int64]bool{}}
	type producer struct {
		pid    int64
		txn    bool
		open   bool
		first  int64
		member []int // indexes of its batches in the open transaction
	}
	ps := []*producer{{pid: -1}, {pid: 100}, {pid: 1, txn: true}, {pid: 2, txn: true}, {pid: 3, txn: true}}
	off := int64(0)
	steps := 5 + rng.IntN(40)
	for range steps {
		p := ps[rng.IntN(len(ps))]
		switch {
		case p.txn && p.open && rng.IntN(3) == 0:
			abort := rng.IntN(2) == 0
			marker := uint16(markerCommit)
			if abort {
				marker = markerAbort
				l.txns = append(l.txns, simTxn{p.pid, p.first, off})
			}
			for _, i := range p.member {
				b := l.batches[i]
				for o := b.base; o < b.base+int64(b.n); o++ {
					if abort {
						l.truth[o] = Aborted
					} else {
						l.truth[o] = Committed
					}
				}
			}
			l.batches = append(l.batches, spec{base: off, n: 1, pid: p.pid, txn: true, control: true, marker: marker})
			l.truth[off] = Aborted
			off++
			p.open, p.member = false, nil
		default:
			n := 1 + rng.IntN(4)
			if p.txn && !p.open {
				p.open, p.first = true, off
			}
			if p.txn {
				p.member = append(p.member, len(l.batches))
			} else {
				for o := off; o < off+int64(n); o++ {
					l.truth[o] = Committed
				}
			}
			l.batches = append(l.batches, spec{base: off, n: n, pid: p.pid, txn: p.txn})
			off += int64(n)
		}
	}
	l.end, l.stable = off, off
	for _, p := range ps {
		if p.open && p.first < l.stable {
			l.stable = p.first
		}
	}
	// Compaction removes some data batches below the last stable offset.
	for _, b := range l.batches {
		if !b.control && b.base+int64(b.n) <= l.stable && rng.IntN(6) == 0 {
			for o := b.base; o < b.base+int64(b.n); o++ {
				l.removed[o] = true
			}
		}
	}
	return l
}

// fetch returns what a read_committed fetch from offset from with a byte
// limit returns: the batches from the one holding from, below the last
// stable offset, at least one, the last possibly cut short, and the
// aborted transactions overlapping the returned range.
func (l *simLog) fetch(from int64, limit int) (raw []byte, aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction) {
	upper := from
	for _, b := range l.batches {
		last := b.base + int64(b.n) - 1
		if last < from || b.base >= l.stable || l.removed[b.base] {
			continue
		}
		enc := encode(nil, b)
		if len(raw) > 0 && len(raw)+len(enc) > limit {
			if len(raw) < limit {
				raw = append(raw, enc[:limit-len(raw)]...) // cut short, as brokers may
			}
			break
		}
		raw = append(raw, enc...)
		upper = last + 1
	}
	for _, tx := range l.txns {
		if tx.last >= from && tx.first < upper {
			aborted = append(aborted, aborts(tx.pid, tx.first)...)
		}
	}
	return raw, aborted
}

func checkRandomLog(t *testing.T, rng *rand.Rand) {
	l := genLog(rng)
	from := rng.Int64N(l.end + 1)
	limit := 40 + rng.IntN(600)
	raw, aborted := l.fetch(from, limit)
	got, err := learn(from, raw, aborted, l.stable)
	if err != nil {
		t.Fatal(err)
	}
	if got.end > max(from, l.stable) {
		t.Fatalf("learned up to %d, past the last stable offset %d", got.end, l.stable)
	}
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = l.end, l.stable, 0
	rp.RecordBatches, rp.AbortedTransactions = raw, aborted
	kept := func(level kgo.IsolationLevel) map[int64]bool {
		fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: from, Topic: "t", IsolationLevel: level}, &rp, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			t.Fatal(fp.Err)
		}
		out := map[int64]bool{}
		for _, r := range fp.Records {
			out[r.Offset] = true
		}
		return out
	}
	committed, all := kept(kgo.ReadCommitted()), kept(kgo.ReadUncommitted())
	vs := verdicts(from, got)
	for o := range all {
		if o >= got.end {
			if committed[o] {
				t.Errorf("kgo keeps %d, past what learn decided (%d)", o, got.end)
			}
			continue
		}
		want := Aborted
		if committed[o] {
			want = Committed
		}
		if vs[o] != want {
			t.Errorf("offset %d: %v, kgo says %v", o, vs[o], want)
		}
	}
	for o := from; o < got.end; o++ {
		truth, ok := l.truth[o]
		switch {
		case !ok:
			t.Errorf("offset %d decided past the generated log", o)
		case l.removed[o] && truth == Aborted && vs[o] != Unknown:
			t.Errorf("removed aborted offset %d: %v, want unknown", o, vs[o])
		case l.removed[o] && vs[o] == Aborted:
			t.Errorf("removed offset %d: aborted, but only batches read can be aborted", o)
		case !l.removed[o] && vs[o] != truth:
			t.Errorf("offset %d: %v, the log says %v", o, vs[o], truth)
		}
	}
	if t.Failed() {
		t.Logf("log %+v\ntxns %+v removed %v stable %d; fetch from %d limit %d", l.batches, l.txns, l.removed, l.stable, from, limit)
	}
}

// FuzzHeaders feeds arbitrary bytes to the header parser and the abort
// algorithm: they never panic, never read past a batch, agree with
// kmsg.RecordBatch on every header field they read, and return contiguous
// spans that never pass the last stable offset.
func FuzzHeaders(f *testing.F) {
	var seed []byte
	for _, s := range []spec{{base: 0, n: 2, pid: 1, txn: true}, {base: 2, n: 1, pid: -1}, {base: 3, n: 1, pid: 1, txn: true, control: true, marker: markerAbort}} {
		seed = encode(seed, s)
	}
	f.Add(seed, int64(0), int64(4), int64(1), int64(0))
	f.Add(seed[:40], int64(1), int64(2), int64(-1), int64(0))
	f.Add(encode(nil, spec{base: 5, n: 3, lz4: true, control: true, txn: true, pid: 4}), int64(6), int64(9), int64(4), int64(5))
	f.Fuzz(func(t *testing.T, raw []byte, from, stable, pid, first int64) {
		for in := raw; len(in) > 0; {
			b, n, want, err := parseBatch(in)
			if err != nil || n == 0 {
				if n == 0 && err == nil && want != 0 && want <= len(in) {
					t.Fatalf("asks for %d bytes to complete a batch, %d are there", want, len(in))
				}
				break
			}
			if n > len(in) || n < 17 || b.last < b.base {
				t.Fatalf("batch of %d bytes from %d: %+v", n, len(in), b)
			}
			if in[16] == 2 {
				var kb kmsg.RecordBatch
				if err := kb.ReadFrom(in[:n]); err != nil {
					t.Fatalf("kmsg rejects a batch parseBatch accepted: %v", err)
				}
				if kb.FirstOffset != b.base || kb.FirstOffset+int64(kb.LastOffsetDelta) != b.last || kb.ProducerID != b.producerID ||
					(kb.Attributes&attrTransactional != 0) != b.transactional || (kb.Attributes&attrControl != 0) != b.control {
					t.Fatalf("parseBatch %+v, kmsg %+v", b, kb)
				}
			}
			in = in[n:]
		}
		from, stable = from&(1<<40-1), stable&(1<<40-1)
		l, err := learn(from, raw, aborts(pid, first), stable)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		at := from
		for _, s := range l.spans {
			if s.end <= at || s.v == Undecided {
				t.Fatalf("spans %+v from %d", l.spans, from)
			}
			at = s.end
		}
		if at != l.end || (l.end > from && l.end > stable) {
			t.Fatalf("learned up to %d (spans end %d), from %d, stable %d", l.end, at, from, stable)
		}
	})
}

// BenchmarkLearn is the oracle's own CPU per fetched byte: walking the
// headers of a 4 MB fetch response of 1 KB records, in batches of 100
// records, in batches of 1 (the most headers per byte), and in
// transactions of 25 records per batch with a marker after each, one in
// ten aborted.
func BenchmarkLearn(b *testing.B) {
	value := make([]byte, 1024)
	build := func(perBatch int, txn bool) ([]byte, []kmsg.FetchResponseTopicPartitionAbortedTransaction, int64) {
		var raw []byte
		var aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction
		off := int64(0)
		for i := 0; len(raw) < 4<<20; i++ {
			raw = encode(raw, spec{base: off, n: perBatch, pid: 7, txn: txn, value: value})
			first := off
			off += int64(perBatch)
			if txn {
				marker := uint16(markerCommit)
				if i%10 == 9 {
					marker = markerAbort
					aborted = append(aborted, aborts(7, first)...)
				}
				raw = encode(raw, spec{base: off, n: 1, pid: 7, txn: true, control: true, marker: marker})
				off++
			}
		}
		return raw, aborted, off
	}
	for _, c := range []struct {
		name     string
		perBatch int
		txn      bool
	}{{"batches-of-100", 100, false}, {"batches-of-1", 1, false}, {"transactions-of-25", 25, true}} {
		raw, aborted, end := build(c.perBatch, c.txn)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				l, err := learn(0, raw, aborted, end)
				if err != nil || l.end != end {
					b.Fatalf("learned up to %d of %d: %v", l.end, end, err)
				}
			}
		})
	}
}
