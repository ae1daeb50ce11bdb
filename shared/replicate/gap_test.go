package replicate

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// TestNonRetriableFaultsNeverLose injects errors the producer does not
// retry. The idempotent producer may then acknowledge records behind a
// failed one (it bumps its epoch and goes on), so a batch can leave a gap
// on the target. The replicator must rewrite from the gap: duplicates are
// possible here, and counted; a lost record is not.
func TestNonRetriableFaultsNeverLose(t *testing.T) {
	const partitions, perPartition = 8, 3000
	r := newRig(t, map[string]int32{"events": partitions}, nil, func(c *Config) { c.MaxMessageBytes = 16 << 10 })
	seed(t, r.pair.Source, "events", partitions, perPartition, 0)
	var seen, fired atomic.Int64
	r.pair.Target.Kfake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Count: -1, Err: kerr.UnknownServerError,
		When: func(kmsg.Request) bool {
			if seen.Add(1)%9 == 4 && fired.Load() < 15 {
				fired.Add(1)
				return true
			}
			return false
		}})
	m := r.mapping(t, "events", 1000, 2)
	r.waitCaughtUp(t, m, 2*time.Minute)
	lost, dups := lostAndDuplicated(t, readAll(t, r.pair.Source, "events"), readAll(t, r.pair.Target, "events"))
	t.Logf("%d non-retriable faults, %d retries: %d lost, %d duplicated", fired.Load(), m.Stats().Retries, lost, dups)
	if fired.Load() == 0 || m.Stats().Retries == 0 {
		t.Fatalf("no fault fired")
	}
	if lost != 0 {
		t.Fatalf("%d records lost", lost)
	}
}

// lostAndDuplicated counts, by provenance, source records missing from the
// target and extra copies on it.
func lostAndDuplicated(t *testing.T, src, dst map[int32][]*kgo.Record) (lost, dups int) {
	t.Helper()
	for p, recs := range src {
		have := map[int64]int{}
		for _, rec := range dst[p] {
			pv, err := provenance.Of(rec)
			if err != nil {
				t.Fatal(err)
			}
			have[pv.Offset]++
		}
		for _, s := range recs {
			switch n := have[s.Offset]; {
			case n == 0:
				lost++
			case n > 1:
				dups += n - 1
			}
		}
	}
	return lost, dups
}
