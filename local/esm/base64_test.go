package esm

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// TestAppendBase64MatchesStd compares appendBase64 with encoding/base64
// for every length up to 300 (every alignment of the 6-byte steps and the
// tail), random and all-ones bytes, with and without room in dst.
func TestAppendBase64MatchesStd(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 300; n++ {
		random := make([]byte, n)
		for i := range random {
			random[i] = byte(r.Uint32())
		}
		for _, src := range [][]byte{random, bytes.Repeat([]byte{0xff}, n), make([]byte, n)} {
			want := base64.StdEncoding.AppendEncode([]byte("prefix"), src)
			if got := appendBase64([]byte("prefix"), src); !bytes.Equal(got, want) {
				t.Fatalf("len %d: got %q, want %q", n, got, want)
			}
			roomy := append(make([]byte, 0, 1024), "prefix"...)
			if got := appendBase64(roomy, src); !bytes.Equal(got, want) {
				t.Fatalf("len %d, spare capacity: got %q, want %q", n, got, want)
			}
		}
	}
}

func FuzzAppendBase64(f *testing.F) {
	f.Add([]byte("hello, world"), []byte("{"))
	f.Fuzz(func(t *testing.T, src, prefix []byte) {
		want := base64.StdEncoding.AppendEncode(bytes.Clone(prefix), src)
		if got := appendBase64(bytes.Clone(prefix), src); !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

// BenchmarkBase64 compares appendBase64 with encoding/base64 on a 1 KB
// value, side by side.
func BenchmarkBase64(b *testing.B) {
	src := make([]byte, 1024)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	dst := make([]byte, 0, 2048)
	b.Run("std", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			dst = base64.StdEncoding.AppendEncode(dst[:0], src)
		}
	})
	b.Run("appendBase64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			dst = appendBase64(dst[:0], src)
		}
	})
}
