package cutover

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// forEach calls f once for every index, never more than par at a time;
// the first error stops it from starting more calls and is returned; a
// cancelled context that stopped it early is an error, never a success.
func TestForEach(t *testing.T) {
	var running, most atomic.Int64
	seen := make([]atomic.Int64, 100)
	err := forEach(context.Background(), 100, 7, func(ctx context.Context, i int) error {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		seen[i].Add(1)
		running.Add(-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if seen[i].Load() != 1 {
			t.Fatalf("index %d called %d times", i, seen[i].Load())
		}
	}
	if most.Load() > 7 {
		t.Fatalf("%d calls at once; want at most 7", most.Load())
	}

	boom := errors.New("boom")
	var calls atomic.Int64
	err = forEach(context.Background(), 1000, 1, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() > 5 {
		t.Fatalf("err %v after %d calls; want boom, and no call started after it but one in flight", err, calls.Load())
	}

	ctx, cancel := context.WithCancel(context.Background())
	err = forEach(ctx, 10, 1, func(ctx context.Context, i int) error {
		if i == 2 {
			cancel()
		}
		return nil
	})
	var ce *ClusterError
	if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v; want a *ClusterError wrapping context.Canceled", err)
	}
}
