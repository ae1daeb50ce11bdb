package esm

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when the test calls Advance, so a
// test drives the batching window, StartDelay and Transition itself. Its
// timers fire during Advance, once their deadline is reached.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	armed   map[*fakeTimer]struct{}
	changed chan struct{} // closed and replaced whenever a timer is armed
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		now:     time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		armed:   map[*fakeTimer]struct{}{},
		changed: make(chan struct{}),
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves the clock on by d and fires every timer due by then.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.armed {
		if !t.at.After(c.now) {
			delete(c.armed, t)
			t.ch <- c.now // drained when armed: never blocks
		}
	}
}

// waitArmed waits until a timer is armed to fire exactly at at: the
// code under test has decided to wait until then. It fails the test,
// naming what, if none is within a generous real-time bound.
func (c *fakeClock) waitArmed(t *testing.T, at time.Time, what string) {
	t.Helper()
	guard := time.NewTimer(30 * time.Second)
	defer guard.Stop()
	for {
		c.mu.Lock()
		var deadlines []time.Time
		for tm := range c.armed {
			if tm.at.Equal(at) {
				c.mu.Unlock()
				return
			}
			deadlines = append(deadlines, tm.at)
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-guard.C:
			t.Fatalf("no timer armed for %s at %v (armed: %v)", what, at, deadlines)
		}
	}
}

type fakeTimer struct {
	c  *fakeClock
	ch chan time.Time
	at time.Time // deadline while armed
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.disarmLocked()
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	was := t.disarmLocked()
	t.at = c.now.Add(d)
	if d <= 0 {
		t.ch <- c.now
		return was
	}
	c.armed[t] = struct{}{}
	close(c.changed)
	c.changed = make(chan struct{})
	return was
}

// disarmLocked stops t and drops a value it sent but nobody received, as
// Go's timers do, and reports whether it was armed.
func (t *fakeTimer) disarmLocked() bool {
	_, was := t.c.armed[t]
	delete(t.c.armed, t)
	select {
	case <-t.ch:
	default:
	}
	return was
}

// waitFor polls cond every few milliseconds until it holds. It is a
// bounded wait for a condition, not a pause: it fails the test, naming
// what it waited for, after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("waited %v for %s", d, what)
		}
	}
}

// pending is how many polled records the mapping's current session
// holds, not yet cut into a batch (0 when it is not polling).
func pending(m *Mapping) int {
	s := m.sess.Load()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}
