package bench

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
)

// A benchmark record's value starts with a 24-byte header, so every copy on
// the target can be checked on its own and against its place:
//
//	[0:8]   sequence number within the source partition (= source offset)
//	[8:12]  source partition
//	[12:16] CRC-32C of value[16:]
//	[16:24] send time, Unix ns (latency runs; 0 in backlogs)
//	[24:]   filler: words from a fixed dictionary, compressible like text
//
// The key is "k" + the sequence number in decimal.
const headerLen = 24

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// filler is 256 KiB of text-like bytes; a record takes a window of it.
var filler = func() []byte {
	words := []string{"order", "id", "customer", "amount", "currency", "EUR", "USD", "status", "shipped",
		"pending", "sku", "quantity", "price", "warehouse", "region", "eu-west-1", "us-east-1", "true", "false",
		"created", "updated", "2025-11-25T09:12:00Z", "null", "items", "discount", "tax", "total", "note"}
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, 256<<10)
	for len(b) < cap(b)-64 {
		b = append(b, '"')
		b = append(b, words[rng.IntN(len(words))]...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, int64(rng.IntN(100000)), 10)
		b = append(b, ',')
	}
	return b
}()

// AppendValue appends a value of size bytes (≥ headerLen) for record seq of
// partition p, sent at sentNanos.
func AppendValue(dst []byte, size int, p int32, seq int64, sentNanos int64) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(seq))
	dst = binary.BigEndian.AppendUint32(dst, uint32(p))
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(sentNanos))
	n := size - headerLen
	off := int((uint64(seq)*7919 + uint64(p)*104729) % uint64(len(filler)-n))
	dst = append(dst, filler[off:off+n]...)
	v := dst[start:]
	binary.BigEndian.PutUint32(v[12:16], crc32.Checksum(v[16:], castagnoli))
	return dst
}

// AppendKey appends record seq's key.
func AppendKey(dst []byte, seq int64) []byte {
	return strconv.AppendInt(append(dst, 'k'), seq, 10)
}

// Parsed is what a value's header says.
type Parsed struct {
	Seq       int64
	Partition int32
	SentNanos int64
}

// ParseValue checks a value's checksum and returns its header.
func ParseValue(v []byte) (Parsed, error) {
	if len(v) < headerLen {
		return Parsed{}, fmt.Errorf("value of %d bytes, shorter than the %d-byte header", len(v), headerLen)
	}
	if got, want := crc32.Checksum(v[16:], castagnoli), binary.BigEndian.Uint32(v[12:16]); got != want {
		return Parsed{}, fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	return Parsed{
		Seq:       int64(binary.BigEndian.Uint64(v[0:8])),
		Partition: int32(binary.BigEndian.Uint32(v[8:12])),
		SentNanos: int64(binary.BigEndian.Uint64(v[16:24])),
	}, nil
}
