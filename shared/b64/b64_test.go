package b64

import (
	"fmt"
	"testing"
)

// paths runs fn once per code path this machine has: the scalar code,
// then the vector code where the CPU has it.
func paths(t testing.TB, fn func(t testing.TB)) {
	defer func(v bool) { useSIMD = v }(useSIMD)
	for _, v := range []bool{false, true} {
		if v && !haveSIMD {
			t.Logf("no vector code on this CPU; scalar path only")
			continue
		}
		useSIMD = v
		fn(t)
	}
}

// TestVectorCodeRunsWhereExpected guards the switch itself: on amd64 with
// AVX2 and on arm64 (the Lambda architectures) the vector path must be on,
// or the scalar half of every test here would be all that runs.
func TestVectorCodeRunsWhereExpected(t *testing.T) {
	if useSIMD != haveSIMD {
		t.Fatalf("useSIMD %v, haveSIMD %v", useSIMD, haveSIMD)
	}
	t.Logf("vector code: %v", haveSIMD)
}

// benchPaths runs op as a sub-benchmark per code path this machine has,
// "<size>B/scalar" and "<size>B/vector", each op counting bytes.
func benchPaths(b *testing.B, size, bytes int, op func()) {
	for _, v := range []bool{false, true} {
		if v && !haveSIMD {
			continue
		}
		name := map[bool]string{false: "scalar", true: "vector"}[v]
		b.Run(fmt.Sprintf("%dB/%s", size, name), func(b *testing.B) {
			defer func(old bool) { useSIMD = old }(useSIMD)
			useSIMD = v
			b.SetBytes(int64(bytes))
			for b.Loop() {
				op()
			}
		})
	}
}
