package txnstate

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// spec describes a v2 record batch to encode.
type spec struct {
	base    int64
	n       int // records (offsets base .. base+n-1)
	pid     int64
	txn     bool
	control bool
	marker  uint16 // control record type: 0 abort, 1 commit
	lz4     bool   // set the compression bits (the records stay plain: only headers are read)
	value   []byte // each data record's value (default "value")
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// encode writes s as a well-formed record batch, CRC included, that
// kgo.ProcessFetchPartition decodes (unless lz4 is set).
func encode(dst []byte, s spec) []byte {
	var recs []byte
	for i := 0; i < s.n; i++ {
		var body []byte
		body = append(body, 0) // attributes
		body = kbin.AppendVarlong(body, 0)
		body = kbin.AppendVarint(body, int32(i))
		key, value := []byte{'k', byte(i)}, []byte("value")
		if s.value != nil {
			value = s.value
		}
		if s.control {
			key = binary.BigEndian.AppendUint16([]byte{0, 0}, s.marker)
			value = []byte{0, 0, 0, 0, 0, 0}
		}
		body = kbin.AppendVarintBytes(body, key)
		body = kbin.AppendVarintBytes(body, value)
		body = kbin.AppendVarint(body, 0) // headers
		recs = kbin.AppendVarint(recs, int32(len(body)))
		recs = append(recs, body...)
	}
	var attrs int16
	if s.txn {
		attrs |= attrTransactional
	}
	if s.control {
		attrs |= attrControl
	}
	if s.lz4 {
		attrs |= 3
	}
	pid := s.pid
	if !s.txn && pid == 0 {
		pid = -1
	}
	b := kmsg.RecordBatch{
		FirstOffset:          s.base,
		Length:               int32(49 + len(recs)),
		PartitionLeaderEpoch: 0,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(s.n - 1),
		FirstTimestamp:       1_700_000_000_000,
		MaxTimestamp:         1_700_000_000_000,
		ProducerID:           pid,
		ProducerEpoch:        0,
		FirstSequence:        0,
		NumRecords:           int32(s.n),
		Records:              recs,
	}
	start := len(dst)
	dst = b.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start+17:], crc32.Checksum(dst[start+21:], crc32c))
	return dst
}

// aborts builds AbortedTransactions entries: pid, first offset pairs.
func aborts(pairs ...int64) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	var out []kmsg.FetchResponseTopicPartitionAbortedTransaction
	for i := 0; i+1 < len(pairs); i += 2 {
		a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		a.ProducerID, a.FirstOffset = pairs[i], pairs[i+1]
		out = append(out, a)
	}
	return out
}
