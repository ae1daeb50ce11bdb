package bench

import (
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestValueRoundTripAndChecker(t *testing.T) {
	for _, size := range []int{24, 100, 1024} {
		v := AppendValue(nil, size, 7, 42, 99)
		if len(v) != size {
			t.Fatalf("size %d: got %d bytes", size, len(v))
		}
		p, err := ParseValue(v)
		if err != nil || p.Seq != 42 || p.Partition != 7 || p.SentNanos != 99 {
			t.Fatalf("size %d: %+v %v", size, p, err)
		}
		if size > headerLen {
			v[len(v)-1] ^= 1
			if _, err := ParseValue(v); err == nil {
				t.Fatalf("size %d: corrupted value passed", size)
			}
		}
	}
	rec := func(seq int64) *kgo.Record {
		return &kgo.Record{Partition: 0, Key: AppendKey(nil, seq), Value: AppendValue(nil, 100, 0, seq, 0)}
	}
	k := newChecker("t", false)
	for _, s := range []int64{0, 1, 1, 3} { // 1 duplicated, 2 lost, 4 never arrives
		k.add(rec(s))
	}
	c := k.finish(map[int32]int64{0: 5})
	if c.Duplicated != 1 || c.Lost != 2 || c.Bad != 0 || c.OK() {
		t.Fatalf("check: %+v", c)
	}
}

func TestCPUSeconds(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := CPUSeconds(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
