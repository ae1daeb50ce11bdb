// Package clock is the one source of time for code whose waits and
// deadlines tests must drive: the cutover's steps and the IAM fence read
// the time and wait only through a Clock, so a test can run a 90-second
// mapping transition or a 10-second read-back bound without waiting for
// it, and without asserting on the wall clock.
//
// System is the wall clock. Fake is a clock that moves only when a test
// moves it or when code sleeps on it.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// Sleep returns nil once d has passed on this clock, or ctx.Err() if
	// ctx ends first (or has already ended). A d of zero or less returns
	// at once, with ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
}

// System is the wall clock: time.Now and a timer.
var System Clock = system{}

type system struct{}

func (system) Now() time.Time { return time.Now() }

func (system) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Or returns c, or System when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return System
	}
	return c
}

// Fake is a Clock that stands still until Advance moves it. Its Sleep does
// not block: it moves the clock forward by d and returns, as if the
// sleeper were the only thing waiting, so code that polls on a Fake runs
// its whole schedule at once and deterministically. Fake is safe for
// concurrent use; concurrent sleepers each move it by their own d.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	slept  time.Duration
	sleeps int
}

// NewFake returns a Fake reading t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now is the Fake's time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d (not at all for d <= 0).
func (f *Fake) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// Sleep moves the clock forward by d and returns nil, or returns ctx.Err()
// without moving it when ctx has ended.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d > 0 {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.now = f.now.Add(d)
		f.slept += d
		f.sleeps++
	}
	return nil
}

// Slept is how long, and how many times, code has slept on the Fake.
func (f *Fake) Slept() (total time.Duration, sleeps int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slept, f.sleeps
}
