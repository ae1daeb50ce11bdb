package esm

import "time"

// clock is the time source of the delays the mapping emulates: the
// batching window, StartDelay and Transition (and the pause before
// restarting a session that failed to start). Config.clock injects one
// (a test's fake clock); nil means the real clock. RetryBackoff,
// Overlap.Lead, InvokeTimeout and the durations in Stats use real time.
type clock interface {
	Now() time.Time
	// NewTimer returns a started timer that fires once d has passed.
	NewTimer(d time.Duration) timer
}

// timer is the part of *time.Timer the mapping uses. As with Go's timers,
// after Stop or Reset returns, no value from before can be received.
type timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.Timer.C }
