package b64

import (
	"encoding/base64"
	"encoding/binary"
)

// b64Pairs[v] is the two alphabet characters of the 12-bit value v, first
// character in the low byte.
var b64Pairs = func() (t [1 << 12]uint16) {
	for v := range t {
		t[v] = uint16(stdAlphabet[v>>6]) | uint16(stdAlphabet[v&63])<<8
	}
	return t
}()

// AppendEncode appends the padded standard base64 of src to dst, exactly
// as base64.StdEncoding.AppendEncode does, growing dst at most once.
func AppendEncode(dst, src []byte) []byte {
	n := base64.StdEncoding.EncodedLen(len(src))
	if cap(dst)-len(dst) < n {
		grown := make([]byte, len(dst), len(dst)+n)
		copy(grown, dst)
		dst = grown
	}
	out := dst[len(dst) : len(dst)+n]
	if useSIMD && len(src) >= simdMin {
		vector.Encode(out, src)
	} else {
		encodeScalar(out, src)
	}
	return dst[:len(dst)+n]
}

// encodeScalar writes the padded base64 of src to out, which has exactly
// its encoded length. It turns twelve bytes into sixteen characters per
// step (two independent six-byte halves, two 12-bit table lookups per
// three bytes), then six into eight, and leaves the tail to
// encoding/base64.
func encodeScalar(out, src []byte) {
	i, o := 0, 0
	// Each half loads eight bytes and encodes the first six of them.
	for ; i+14 <= len(src); i += 12 {
		s := src[i : i+14 : i+14]
		v, w := binary.BigEndian.Uint64(s), binary.BigEndian.Uint64(s[6:])
		d := out[o : o+16 : o+16]
		binary.LittleEndian.PutUint64(d, b64Quad(v))
		binary.LittleEndian.PutUint64(d[8:], b64Quad(w))
		o += 16
	}
	for ; i+8 <= len(src); i += 6 {
		binary.LittleEndian.PutUint64(out[o:], b64Quad(binary.BigEndian.Uint64(src[i:])))
		o += 8
	}
	base64.StdEncoding.Encode(out[o:], src[i:])
}

// b64Quad encodes the top 48 bits of v as eight characters, the first in
// the low byte.
func b64Quad(v uint64) uint64 {
	return uint64(b64Pairs[v>>52&0xfff]) | uint64(b64Pairs[v>>40&0xfff])<<16 |
		uint64(b64Pairs[v>>28&0xfff])<<32 | uint64(b64Pairs[v>>16&0xfff])<<48
}
