// Package lambdaenv emulates a Lambda execution environment's lifecycle
// around a handler: an invocation that outlives the function timeout is
// abandoned and the environment is torn down and built again, as Lambda
// does after "Task timed out". Local runs and tests only.
package lambdaenv

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// Init builds a fresh environment: the handler and a shutdown func that
// releases what it holds (closing clients ends their in-flight work, as a
// killed process would).
type Init func() (h lambda.Handler, shutdown func(), err error)

// TimeoutError is what an invocation that ran past the function timeout
// returns, like Lambda's "Task timed out".
type TimeoutError struct{ Timeout time.Duration }

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("Task timed out after %.2f seconds", e.Timeout.Seconds())
}

// Env is a lambda.Handler that runs invocations one at a time, each with
// the function timeout as its deadline, in an environment built by Init.
type Env struct {
	init    Init
	timeout time.Duration

	mu       sync.Mutex // one invocation at a time, as in one environment
	h        lambda.Handler
	shutdown func()
	resets   atomic.Int64
}

// New returns an Env; the first environment is built on first use.
func New(init Init, timeout time.Duration) *Env { return &Env{init: init, timeout: timeout} }

// Resets is how many environments were torn down after a timeout.
func (e *Env) Resets() int64 { return e.resets.Load() }

// Invoke runs one invocation. The payload is copied, as it would arrive
// over the network, so an abandoned invocation never shares memory with
// the next one.
func (e *Env) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		h, shutdown, err := e.init()
		if err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		e.h, e.shutdown = h, shutdown
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	data := append([]byte(nil), payload...)
	go func() {
		out, err := e.h.Invoke(ctx, data)
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
	}
	// Past the timeout (or the caller gave up): the environment dies with
	// whatever it had in flight. Shut it down, let the abandoned call
	// unwind, and start the next invocation in a new environment.
	if e.shutdown != nil {
		e.shutdown()
	}
	<-done
	e.h, e.shutdown = nil, nil
	e.resets.Add(1)
	return nil, &TimeoutError{Timeout: e.timeout}
}

// Pool is n environments of one function, as Lambda scales a function out:
// each invocation runs in a free environment.
type Pool struct{ free chan *Env }

// NewPool returns n environments built by init, each with the timeout.
func NewPool(n int, init Init, timeout time.Duration) *Pool {
	p := &Pool{free: make(chan *Env, n)}
	for i := 0; i < n; i++ {
		p.free <- New(init, timeout)
	}
	return p
}

// Invoke runs one invocation in a free environment.
func (p *Pool) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var e *Env
	select {
	case e = <-p.free:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { p.free <- e }()
	return e.Invoke(ctx, payload)
}

// Resets is how many environments were torn down after a timeout.
func (p *Pool) Resets() int64 {
	var n int64
	for i := 0; i < cap(p.free); i++ {
		e := <-p.free
		n += e.Resets()
		p.free <- e
	}
	return n
}
