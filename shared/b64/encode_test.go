package b64

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestAppendEncodeMatchesStd compares AppendEncode with encoding/base64 on
// both code paths for every length up to 600 (every alignment of the
// vector and scalar steps and the tail), random, all-ones and zero bytes,
// with and without room in dst.
func TestAppendEncodeMatchesStd(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	paths(t, func(t testing.TB) {
		for n := 0; n <= 600; n++ {
			random := make([]byte, n)
			for i := range random {
				random[i] = byte(r.Uint32())
			}
			for _, src := range [][]byte{random, bytes.Repeat([]byte{0xff}, n), make([]byte, n)} {
				want := base64.StdEncoding.AppendEncode([]byte("prefix"), src)
				if got := AppendEncode([]byte("prefix"), src); !bytes.Equal(got, want) {
					t.Fatalf("simd %v, len %d: got %q, want %q", useSIMD, n, got, want)
				}
				roomy := append(make([]byte, 0, 2048), "prefix"...)
				if got := AppendEncode(roomy, src); !bytes.Equal(got, want) {
					t.Fatalf("simd %v, len %d, spare capacity: got %q, want %q", useSIMD, n, got, want)
				}
			}
		}
	})
}

func FuzzAppendEncode(f *testing.F) {
	f.Add([]byte("hello, world"), []byte("{"))
	f.Add(bytes.Repeat([]byte{0xfb, 0xff, 0x00, 0x3e}, 40), []byte(`"value":"`))
	f.Fuzz(func(t *testing.T, src, prefix []byte) {
		want := base64.StdEncoding.AppendEncode(bytes.Clone(prefix), src)
		paths(t, func(t testing.TB) {
			if got := AppendEncode(bytes.Clone(prefix), src); !bytes.Equal(got, want) {
				t.Fatalf("simd %v: got %q, want %q", useSIMD, got, want)
			}
		})
	})
}

// BenchmarkAppendEncode compares encoding/base64 with AppendEncode's
// scalar and vector paths, side by side, on 100 B and 1 KB values.
func BenchmarkAppendEncode(b *testing.B) {
	for _, size := range []int{100, 1024} {
		src := make([]byte, size)
		r := rand.New(rand.NewPCG(3, 4))
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		dst := make([]byte, 0, 2048)
		b.Run(fmt.Sprintf("%dB/stdlib", size), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				dst = base64.StdEncoding.AppendEncode(dst[:0], src)
			}
		})
		benchPaths(b, size, len(src), func() { dst = AppendEncode(dst[:0], src) })
	}
}
