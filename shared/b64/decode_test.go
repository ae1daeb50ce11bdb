package b64

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"testing"
)

// TestDecodeInPlaceMatchesStdlib checks the in-place decoder against
// encoding/base64, on both code paths, for every decoded length up to 600
// (every alignment of the 32-character vector steps, the 8-character
// scalar steps and the tail), and with a bad character (CR and LF
// included) at every position of the shorter ones and a spread of
// positions of the longer.
func TestDecodeInPlaceMatchesStdlib(t *testing.T) {
	src := make([]byte, 600)
	for i := range src {
		src[i] = byte(i*37 + 11 + i>>5)
	}
	paths(t, func(t testing.TB) {
		for n := 0; n <= len(src); n++ {
			enc := []byte(base64.StdEncoding.EncodeToString(src[:n]))
			got, ok := DecodeInPlace(enc)
			if !ok || !bytes.Equal(enc[:got], src[:n]) {
				t.Fatalf("simd %v, length %d: ok %v, got %x", useSIMD, n, ok, enc[:got])
			}
			step := 1
			if n > 120 {
				step = 7
			}
			for _, bad := range []byte{'!', '-', '_', '=', ' ', '\r', '\n', 0x80, 0} {
				for pos := 0; pos < len(enc); pos += step {
					b := []byte(base64.StdEncoding.EncodeToString(src[:n]))
					b[pos] = bad
					_, stdErr := base64.StdEncoding.DecodeString(string(b))
					wantOK := stdErr == nil && bad != '\r' && bad != '\n'
					if _, ok := DecodeInPlace(b); ok != wantOK {
						t.Fatalf("simd %v, length %d, %q at %d: ok %v, stdlib err %v", useSIMD, n, bad, pos, ok, stdErr)
					}
				}
			}
		}
	})
}

// TestDecodeInPlaceInsideBuffer decodes a value where the Lambda event
// holds it, between other bytes of the buffer, and checks that nothing
// outside the value's own text changed.
func TestDecodeInPlaceInsideBuffer(t *testing.T) {
	value := bytes.Repeat([]byte("payload-0123456789-"), 90)
	enc := base64.StdEncoding.EncodeToString(value)
	paths(t, func(t testing.TB) {
		buf := []byte(`{"value":"` + enc + `","headers":[]}`)
		before := bytes.Clone(buf)
		start, end := 10, 10+len(enc)
		n, ok := DecodeInPlace(buf[start:end])
		if !ok || !bytes.Equal(buf[start:start+n], value) {
			t.Fatalf("simd %v: ok %v, decoded %q", useSIMD, ok, buf[start:start+n])
		}
		if !bytes.Equal(buf[:start], before[:start]) || !bytes.Equal(buf[end:], before[end:]) {
			t.Fatalf("simd %v: bytes outside the value changed", useSIMD)
		}
	})
}

// FuzzDecodeInPlace checks the in-place decoder against encoding/base64 on
// arbitrary input, on both code paths: the same verdict and the same
// bytes, except that it refuses the CR and LF encoding/base64 skips (the
// event decoder then falls back to encoding/base64).
func FuzzDecodeInPlace(f *testing.F) {
	f.Add([]byte("aGVsbG8sIHdvcmxkIQ=="))
	f.Add([]byte("AAAAAAAAAAAA////////!!=="))
	f.Add([]byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xef, 0x01}, 50))))
	f.Fuzz(func(t *testing.T, in []byte) {
		want, stdErr := base64.StdEncoding.DecodeString(string(in))
		paths(t, func(t testing.TB) {
			b := bytes.Clone(in)
			n, ok := DecodeInPlace(b)
			if ok != (stdErr == nil) && !(stdErr == nil && bytes.ContainsAny(in, "\r\n")) {
				t.Fatalf("simd %v, %q: in place ok %v, stdlib err %v", useSIMD, in, ok, stdErr)
			}
			if ok && !bytes.Equal(b[:n], want) {
				t.Fatalf("simd %v, %q: in place %x, stdlib %x", useSIMD, in, b[:n], want)
			}
		})
	})
}

// BenchmarkDecodeInPlace compares encoding/base64 with the in-place
// decoder's scalar and vector paths, side by side, on 100 B and 1 KB
// values (each op restores the encoded text first, in all three).
func BenchmarkDecodeInPlace(b *testing.B) {
	for _, size := range []int{100, 1024} {
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(i*131 + i>>3)
		}
		enc := []byte(base64.StdEncoding.EncodeToString(src))
		work := make([]byte, len(enc))
		out := make([]byte, len(src))
		b.Run(fmt.Sprintf("%dB/stdlib", size), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				copy(work, enc)
				if _, err := base64.StdEncoding.Decode(out, work); err != nil {
					b.Fatal(err)
				}
			}
		})
		benchPaths(b, size, len(src), func() {
			copy(work, enc)
			if _, ok := DecodeInPlace(work); !ok {
				b.Fatal("rejected")
			}
		})
	}
}
