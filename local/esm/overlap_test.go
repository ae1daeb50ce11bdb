package esm

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// TestOverlap: with Overlap.Every = 2, every second batch the worker cuts
// is also handed, as its own copy of the same event, to the zombie
// handler; the new owner redelivers and commits the batch and goes on with
// the next ones while the zombie is still running, and the mapping's Close
// waits for the zombie.
func TestOverlap(t *testing.T) {
	const topic, perPart = "orders", 40
	src := startSource(t, []kafkalocal.Topic{{Name: topic, Partitions: 2}})
	ctx := testCtx(t, 15*time.Second)
	produce(t, ctx, src, topic, 2, perPart)

	owner := &recorder{}
	gate := make(chan struct{})
	zombie := &recorder{gate: gate}
	m := newMapping(t, src, topic, owner, func(c *Config) {
		c.BatchSize = 10
		c.Overlap = Overlap{Every: 2, Handler: zombie}
	})
	// Every zombie is still blocked: the new owner never waits for one.
	waitCaughtUp(t, m, 10*time.Second)
	want := map[tp]int64{{topic, 0}: perPart, {topic, 1}: perPart}
	checkDelivery(t, owner.snapshot(), want)

	// The new owner's batches, in order; with one worker every second one
	// was overlapped.
	var overlapped []string
	for i, a := range owner.snapshot() {
		if i%2 == 1 {
			overlapped = append(overlapped, fmt.Sprint(a.records))
		}
	}
	zombie.mu.Lock()
	blocked := zombie.inflight
	zombie.mu.Unlock()
	if blocked != len(overlapped) || blocked == 0 {
		t.Fatalf("%d zombie invocations in flight after the new owner caught up with %d overlapped batches", blocked, len(overlapped))
	}
	close(gate)
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the zombies were released")
	}
	// Each zombie event is exactly one overlapped batch, decoded intact.
	var got []string
	for i, a := range zombie.snapshot() {
		if !a.ok {
			t.Fatalf("zombie invocation %d could not decode its event", i)
		}
		got = append(got, fmt.Sprint(a.records))
	}
	slices.Sort(got)
	slices.Sort(overlapped)
	if !slices.Equal(got, overlapped) {
		t.Fatalf("zombie events %v, want the overlapped batches %v", got, overlapped)
	}
}
