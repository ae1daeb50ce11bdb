package b64

import "encoding/binary"

// b64dec maps a standard base64 character to its value, or 0xff.
var b64dec = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range stdAlphabet {
		t[c] = byte(i)
	}
	return t
}()

// b64at[k][c] is the value of base64 character c at position k of a
// four-character quantum, shifted into place (18, 12, 6, 0 bits), or
// 0xffffffff if c is not in the alphabet.
var b64at = func() (t [4][256]uint32) {
	for k := range t {
		for c := range t[k] {
			t[k][c] = 0xffffffff
			if v := b64dec[c]; v != 0xff {
				t[k][c] = uint32(v) << (18 - 6*k)
			}
		}
	}
	return t
}()

// DecodeInPlace decodes padded standard base64 in b into b's own prefix
// and returns the decoded length. It never writes ahead of what it has
// read, so the decoded bytes can replace their own text (in an event
// buffer, say). It reports false for any character outside the alphabet
// (CR and LF included) or misplaced padding; b may then be partly
// overwritten.
func DecodeInPlace(b []byte) (int, bool) {
	if len(b)%4 != 0 {
		return 0, false
	}
	n, i := 0, 0
	if useSIMD && len(b) >= simdMin {
		// All but the last quantum (which may hold padding). Each step of
		// the vector loops loads 32 characters, then stores their 24 bytes
		// (amd64 stores 32, the last 8 zero) at three quarters of the
		// load's offset, so with dst and src at one address no store
		// passes the reader; encoding/base64, which finishes the prefix,
		// reads each 8 characters before it stores their 6 bytes (8 with
		// scratch). TestDecodeInPlaceMatchesStdlib and FuzzDecodeInPlace
		// check this on amd64, and make test-arm64 under qemu on arm64.
		// encoding/base64 skips CR and LF: a short count means the text
		// held one.
		m := len(b) - 4
		got, err := vector.Decode(b[:m], b[:m])
		if err != nil || got != m/4*3 {
			return 0, false
		}
		n, i = got, m
	}
	// Eight characters to six bytes at a time while no padding can be
	// involved: each character's value comes pre-shifted from the table
	// for its position in the quantum. The eight bytes stored at n (six
	// decoded, two scratch) never pass the next read at i+8.
	for ; i+12 <= len(b); i += 8 {
		q := b[i : i+8 : i+8]
		x := b64at[0][q[0]] | b64at[1][q[1]] | b64at[2][q[2]] | b64at[3][q[3]]
		y := b64at[0][q[4]] | b64at[1][q[5]] | b64at[2][q[6]] | b64at[3][q[7]]
		if (x|y)&^0xffffff != 0 {
			break // the four-at-a-time loop below says what is wrong
		}
		binary.BigEndian.PutUint64(b[n:], uint64(x)<<40|uint64(y)<<16)
		n += 6
	}
	for ; i < len(b); i += 4 {
		c0, c1, c2, c3 := b64dec[b[i]], b64dec[b[i+1]], b64dec[b[i+2]], b64dec[b[i+3]]
		if c0|c1|c2|c3 != 0xff && (c0|c1|c2|c3)&0xc0 == 0 {
			v := uint(c0)<<18 | uint(c1)<<12 | uint(c2)<<6 | uint(c3)
			b[n], b[n+1], b[n+2] = byte(v>>16), byte(v>>8), byte(v)
			n += 3
			continue
		}
		if i != len(b)-4 || c0 == 0xff || c1 == 0xff {
			return 0, false
		}
		switch {
		// Like encoding/base64's StdEncoding (not Strict), bits left
		// over before the padding are ignored.
		case b[i+2] == '=' && b[i+3] == '=':
			b[n] = c0<<2 | c1>>4
			n++
		case c2 != 0xff && b[i+3] == '=':
			v := uint(c0)<<18 | uint(c1)<<12 | uint(c2)<<6
			b[n], b[n+1] = byte(v>>16), byte(v>>8)
			n += 2
		default:
			return 0, false
		}
	}
	return n, true
}
