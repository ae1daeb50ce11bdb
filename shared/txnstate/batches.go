package txnstate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// headerSize is the size of a v2 record batch header: baseOffset (8),
// batchLength (4), partitionLeaderEpoch (4), magic (1), crc (4),
// attributes (2), lastOffsetDelta (4), baseTimestamp (8), maxTimestamp (8),
// producerId (8), producerEpoch (2), baseSequence (4), recordCount (4).
const headerSize = 61

// legacyHeaderSize is the smallest v0/v1 message: offset (8), size (4),
// crc (4), magic (1), attributes (1), key length (4), value length (4).
const legacyHeaderSize = 26

// Attribute bits of a v2 record batch.
const (
	attrTransactional = 0x10
	attrControl       = 0x20
	attrCompression   = 0x07
)

// Control record types, in the key of a transaction marker.
const (
	markerAbort  = 0
	markerCommit = 1
	markerOther  = -1 // unreadable, or not a transaction marker
)

// ErrMalformed is wrapped by every error about bytes that are not record
// batches.
var ErrMalformed = errors.New("txnstate: malformed record batches")

// batch is what the oracle reads of one record batch (or, for the legacy
// formats, one message).
type batch struct {
	base, last    int64 // first and last offset covered
	transactional bool
	control       bool
	producerID    int64
	marker        int // markerAbort, markerCommit or markerOther (control batches only)
	size          int // bytes of the whole batch, length field included
}

// parseBatch reads the batch at the start of in. It returns n = 0 when in
// holds only the start of a batch (a fetch response may end with a
// truncated one); want is then the batch's whole size, or, before its
// length can be read, the size of a header.
// Only the header is read, and for a transaction marker the first
// record's key when the batch is not compressed (Kafka never compresses
// markers). Nothing is decompressed.
func parseBatch(in []byte) (b batch, n, want int, err error) {
	if len(in) < 17 {
		return b, 0, headerSize, nil // the start of a batch: at least a header more
	}
	b.base = int64(binary.BigEndian.Uint64(in))
	length := int64(int32(binary.BigEndian.Uint32(in[8:])))
	magic := in[16]
	size := length + 12
	switch {
	case b.base < 0:
		return b, 0, 0, fmt.Errorf("%w: negative offset %d", ErrMalformed, b.base)
	case magic == 2 && length < headerSize-12, magic < 2 && length < legacyHeaderSize-12, magic > 2:
		return b, 0, 0, fmt.Errorf("%w: batch at offset %d: magic %d, length %d", ErrMalformed, b.base, magic, length)
	case size > int64(len(in)):
		return b, 0, int(min(size, 1<<31-1)), nil
	}
	b.size = int(size)
	if magic < 2 {
		// A v0/v1 message (a compressed wrapper's offset is its last
		// inner record's). These formats have no transactions.
		b.last = b.base
		b.marker = markerOther
		return b, b.size, 0, nil
	}
	attrs := binary.BigEndian.Uint16(in[21:])
	lastDelta := int32(binary.BigEndian.Uint32(in[23:]))
	if lastDelta < 0 || b.base > 1<<62 {
		return b, 0, 0, fmt.Errorf("%w: batch at offset %d: last offset delta %d", ErrMalformed, b.base, lastDelta)
	}
	b.last = b.base + int64(lastDelta)
	b.transactional = attrs&attrTransactional != 0
	b.control = attrs&attrControl != 0
	b.producerID = int64(binary.BigEndian.Uint64(in[43:]))
	b.marker = markerOther
	if b.control && attrs&attrCompression == 0 {
		b.marker = markerType(in[headerSize:b.size])
	}
	return b, b.size, 0, nil
}

// markerType reads the type in the key of the first record of an
// uncompressed control batch's records: version (int16) then type (int16).
func markerType(recs []byte) int {
	length, n := kbin.Varint(recs)
	if n <= 0 || length < 0 || int(length) > len(recs)-n {
		return markerOther
	}
	rec := recs[n : n+int(length)]
	if len(rec) < 1 {
		return markerOther
	}
	rec = rec[1:] // attributes
	if _, n = kbin.Varlong(rec); n <= 0 {
		return markerOther
	}
	rec = rec[n:] // timestamp delta
	if _, n = kbin.Varint(rec); n <= 0 {
		return markerOther
	}
	rec = rec[n:] // offset delta
	keyLen, n := kbin.Varint(rec)
	if n <= 0 || keyLen < 4 || int(keyLen) > len(rec)-n {
		return markerOther
	}
	key := rec[n:]
	switch binary.BigEndian.Uint16(key[2:]) {
	case markerAbort:
		return markerAbort
	case markerCommit:
		return markerCommit
	}
	return markerOther
}

// span is a run of offsets with one verdict, ending before end; it starts
// where the span before it ends.
type span struct {
	end int64
	v   Verdict
}

// learned is what one fetch response taught: verdicts for [from, end), as
// spans, and the bytes a retry must ask for when the response held only
// the start of a batch (want > 0, no spans).
type learned struct {
	spans []span
	end   int64
	want  int
}

func (l *learned) add(end int64, v Verdict) {
	if end <= l.end {
		return
	}
	if n := len(l.spans); n > 0 && l.spans[n-1].v == v {
		l.spans[n-1].end = end
	} else {
		l.spans = append(l.spans, span{end, v})
	}
	l.end = end
}

// learn applies Kafka's read_committed algorithm, as the Java client and
// franz-go's kgo.ProcessFetchPartition apply it, to the record batches of a
// read_committed fetch from offset from: a transactional batch of producer
// P is aborted when one of P's aborted transactions (aborted, from the
// response's AbortedTransactions) starts at or before the batch, until P's
// ABORT marker ends it. Non-transactional and committed batches are
// Committed, markers Aborted (no consumer ever reads them).
//
// Offsets from from on that no batch covers (compaction or retention
// removed them after they were read) are Committed when no aborted
// transaction overlaps them, else Unknown. Batches at or past stable are
// not decided. An empty response below stable decides [from, stable) as
// Unknown: without batches the broker's AbortedTransactions cannot be
// trusted to cover the range. A response holding only the start of a
// batch decides nothing and sets want.
func learn(from int64, raw []byte, aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction, stable int64) (learned, error) {
	l := learned{end: from}
	// Each producer's aborted transactions, by first offset.
	var open map[int64][]int64
	if len(aborted) > 0 {
		open = make(map[int64][]int64, len(aborted))
		for _, a := range aborted {
			open[a.ProducerID] = append(open[a.ProducerID], a.FirstOffset)
		}
		for pid := range open {
			slices.Sort(open[pid])
		}
	}
	// mayBeAborted reports whether an aborted transaction overlaps
	// offsets before end that no batch covers.
	mayBeAborted := func(end int64) bool {
		for _, firsts := range open {
			if len(firsts) > 0 && firsts[0] < end {
				return true
			}
		}
		return false
	}
	batches, used, atStable := 0, 0, false
	for in := raw; len(in) > 0; {
		b, n, want, err := parseBatch(in)
		if err != nil {
			return l, err
		}
		if n == 0 {
			if used == 0 {
				l.want = want
			}
			break
		}
		in = in[n:]
		batches++
		if b.last < from {
			continue // before what was asked for (kgo skips it too)
		}
		if b.last >= stable {
			atStable = true
			break // not stable yet
		}
		if used > 0 && b.base < l.end {
			return l, fmt.Errorf("%w: batch at offset %d overlaps the one before, which ends at %d", ErrMalformed, b.base, l.end)
		}
		used++
		if b.base > l.end {
			v := Committed
			if mayBeAborted(b.base) {
				v = Unknown
			}
			l.add(b.base, v)
		}
		v := Committed
		switch firsts := open[b.producerID]; {
		case b.control:
			v = Aborted
			if b.transactional && len(firsts) > 0 && b.base >= firsts[0] && b.marker != markerCommit {
				open[b.producerID] = firsts[1:]
			}
		case b.transactional && len(firsts) > 0 && b.base >= firsts[0]:
			v = Aborted
		}
		l.add(b.last+1, v)
	}
	switch {
	case len(raw) == 0 && from < stable:
		l.add(stable, Unknown)
	case batches > 0 && used == 0 && l.want == 0 && !atStable && from < stable:
		return l, fmt.Errorf("%w: no batch at or after offset %d", ErrMalformed, from)
	}
	return l, nil
}
