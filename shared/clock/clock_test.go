package clock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestFakeMovesOnlyWhenTold(t *testing.T) {
	f := NewFake(t0)
	if !f.Now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", f.Now(), t0)
	}
	f.Advance(2 * time.Second)
	f.Advance(-time.Second) // ignored
	if err := f.Sleep(context.Background(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(5 * time.Second); !f.Now().Equal(want) {
		t.Fatalf("Now = %v, want %v", f.Now(), want)
	}
	total, n := f.Slept()
	if total != 3*time.Second || n != 1 {
		t.Errorf("Slept = %v, %d; want 3s, 1", total, n)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := NewFake(t0)
	if err := f.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Fake.Sleep on an ended context = %v, want context.Canceled", err)
	}
	if !f.Now().Equal(t0) {
		t.Errorf("Fake moved to %v on a refused sleep", f.Now())
	}
	// The system clock: an ended context returns at once, however long
	// the sleep asked for.
	if err := System.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("System.Sleep on an ended context = %v, want context.Canceled", err)
	}
	if err := System.Sleep(context.Background(), 0); err != nil {
		t.Errorf("System.Sleep(0) = %v", err)
	}
}

func TestConcurrentSleepersEachMoveTheClock(t *testing.T) {
	f := NewFake(t0)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _ = f.Sleep(context.Background(), time.Second) })
	}
	wg.Wait()
	if want := t0.Add(50 * time.Second); !f.Now().Equal(want) {
		t.Errorf("Now = %v, want %v", f.Now(), want)
	}
}

func TestOr(t *testing.T) {
	if Or(nil) != System {
		t.Error("Or(nil) is not System")
	}
	f := NewFake(t0)
	if Or(f) != Clock(f) {
		t.Error("Or(f) is not f")
	}
}
