package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/clock"
)

// fakeLambda serves event source mappings whose updates take effect only
// after a transition, on a clock the test moves, as AWS documents for
// Kafka mappings (up to 90 s). An update of a mapping in transition gets
// busyErr.
type fakeLambda struct {
	mu sync.Mutex
	// clk is the clock the mappings' transitions follow and the Handler
	// reads: a clock.Fake, or clock.System inside a synctest bubble.
	clk      clock.Clock
	maps     map[string]*fakeMapping
	order    []string
	busyErr  func(uuid string) error
	refuse   map[string]error // uuid → error for Enabled=false
	updates  []string         // "uuid=true|false", accepted
	busyHits int
	// pageSize, when set, pages ListEventSourceMappings as AWS does (at
	// most 100 per page), with Marker/NextMarker; lists counts the calls.
	pageSize int
	lists    int
	// topics names a mapping's topics; by default t-<uuid>.
	topics map[string][]string
}

type fakeMapping struct {
	state      string
	until      time.Time // end of the transition
	transition time.Duration
}

func newFakeLambda(start time.Time) *fakeLambda {
	return newFakeLambdaOn(clock.NewFake(start))
}

// newFakeLambdaOn is a fakeLambda on clk.
func newFakeLambdaOn(clk clock.Clock) *fakeLambda {
	return &fakeLambda{clk: clk, maps: map[string]*fakeMapping{}, refuse: map[string]error{},
		busyErr: func(u string) error {
			return &types.ResourceInUseException{Message: aws.String("mapping " + u + " is in use")}
		}}
}

func (f *fakeLambda) add(uuid, state string, transition time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maps[uuid] = &fakeMapping{state: state, transition: transition}
	f.order = append(f.order, uuid)
}

// settle ends transitions due by now. Called with f.mu held.
func (f *fakeLambda) settle() {
	for _, m := range f.maps {
		if m.until.IsZero() || f.clk.Now().Before(m.until) {
			continue
		}
		switch m.state {
		case "Disabling":
			m.state = "Disabled"
		case "Enabling", "Creating":
			m.state = "Enabled"
		}
		m.until = time.Time{}
	}
}

func (f *fakeLambda) clock() time.Time { return f.clk.Now() }

// advanceTo moves the clock to t (a clock.Fake) or sleeps until t (the
// system clock, in a synctest bubble).
func (f *fakeLambda) advanceTo(t time.Time) {
	_ = f.clk.Sleep(context.Background(), t.Sub(f.clk.Now()))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle()
}

func (f *fakeLambda) state(uuid string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle()
	return f.maps[uuid].state
}

func (f *fakeLambda) ListEventSourceMappings(_ context.Context, in *lambda.ListEventSourceMappingsInput, _ ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle()
	f.lists++
	out := &lambda.ListEventSourceMappingsOutput{}
	order := f.order
	if f.pageSize > 0 {
		from := 0
		if in.Marker != nil {
			fmt.Sscan(aws.ToString(in.Marker), &from)
		}
		to := min(from+f.pageSize, len(order))
		if to < len(order) {
			out.NextMarker = aws.String(fmt.Sprint(to))
		}
		order = order[from:to]
	}
	for _, u := range order {
		topics := f.topics[u]
		if topics == nil {
			topics = []string{"t-" + u}
		}
		out.EventSourceMappings = append(out.EventSourceMappings, types.EventSourceMappingConfiguration{
			UUID: aws.String(u), State: aws.String(f.maps[u].state), Topics: topics,
		})
	}
	return out, nil
}

func (f *fakeLambda) GetEventSourceMapping(context.Context, *lambda.GetEventSourceMappingInput, ...func(*lambda.Options)) (*lambda.GetEventSourceMappingOutput, error) {
	return nil, errors.New("the cutover reads mapping states by listing them")
}

func (f *fakeLambda) UpdateEventSourceMapping(_ context.Context, in *lambda.UpdateEventSourceMappingInput, _ ...func(*lambda.Options)) (*lambda.UpdateEventSourceMappingOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle()
	u, en := aws.ToString(in.UUID), aws.ToBool(in.Enabled)
	m, ok := f.maps[u]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no mapping " + u)}
	}
	if err := f.refuse[u]; err != nil && !en {
		return nil, err
	}
	switch m.state {
	case "Creating", "Enabling", "Disabling", "Updating":
		f.busyHits++
		return nil, f.busyErr(u)
	case "Enabled":
		if !en {
			m.state, m.until = "Disabling", f.clk.Now().Add(m.transition)
		}
	case "Disabled":
		if en {
			m.state, m.until = "Enabling", f.clk.Now().Add(m.transition)
		}
	}
	f.updates = append(f.updates, fmt.Sprintf("%s=%v", u, en))
	return &lambda.UpdateEventSourceMappingOutput{UUID: aws.String(u), State: aws.String(m.state)}, nil
}

func (f *fakeLambda) Invoke(context.Context, *lambda.InvokeInput, ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	return nil, errors.New("not used")
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newFakeHandler(f *fakeLambda) *Handler {
	return New(Deps{Lambda: f, ReplicatorFunction: "replicator", Clock: f.clk, Log: slog.New(slog.DiscardHandler)})
}

func stateFor(uuids []string, mappingTimeout int) *State {
	cfg := Config{PollSeconds: 5, MappingTimeoutSeconds: mappingTimeout}
	for _, u := range uuids {
		cfg.Topics = append(cfg.Topics, "t-"+u)
	}
	return &State{Config: cfg, Steps: map[string]*StepTime{}}
}

// roundTrip is what Step Functions does to the state between tasks.
func roundTrip(t *testing.T, st *State) *State {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var out State
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// drive runs step as the state machine's Task + Choice + Wait loop does:
// each poll gets the previous poll's output, and the clock moves to
// $.loop.next in between. It returns the last good state, the error that
// ended the loop (nil when done) and the number of polls.
func drive(t *testing.T, h *Handler, f *fakeLambda, step string, st *State, maxPolls int) (*State, error, int) {
	t.Helper()
	for polls := 1; polls <= maxPolls; polls++ {
		out, err := h.Handle(context.Background(), Request{Step: step, State: roundTrip(t, st)})
		if err != nil {
			return st, err, polls
		}
		st = out.(*State)
		if st.Loop.Done {
			return st, nil, polls
		}
		f.advanceTo(st.Loop.Next)
	}
	t.Fatalf("%s not done after %d polls", step, maxPolls)
	return nil, nil, 0
}

// TestPauseInTransition: PauseReplication records the mappings to disable
// before it updates any, updates them all at once, retries a mapping
// whose update is refused while it is in transition (under either answer
// AWS documents), leaves a mapping the operator disabled alone, and is
// done only when every mapping reads Disabled, which takes a 90 s
// transition, not more.
func TestPauseInTransition(t *testing.T) {
	for _, busy := range []func(string) error{
		func(u string) error { return &types.ResourceInUseException{Message: aws.String(u)} },
		func(u string) error { return &types.ResourceConflictException{Message: aws.String(u)} },
	} {
		t.Run(fmt.Sprintf("%T", busy("x")), func(t *testing.T) {
			f := newFakeLambda(t0)
			f.busyErr = busy
			f.add("a", "Enabled", 90*time.Second)
			f.add("b", "Enabled", 90*time.Second)
			f.add("c", "Disabled", 90*time.Second) // disabled by the operator
			f.add("d", "Enabling", 90*time.Second) // enabled just before
			f.maps["d"].until = t0.Add(20 * time.Second)
			h := newFakeHandler(f)
			st := stateFor([]string{"a", "b", "c", "d"}, 150)

			out, err := h.Handle(context.Background(), Request{Step: StepPauseReplication, State: roundTrip(t, st)})
			if err != nil {
				t.Fatal(err)
			}
			first := out.(*State)
			if len(f.updates) != 0 || !slices.Equal(first.Run.Disabled, []string{"a", "b", "d"}) || first.Loop.Done || !first.Loop.Next.Equal(t0) {
				t.Fatalf("first poll: updates %v, recorded %v, loop %+v; want no update, a b d recorded, next poll at once", f.updates, first.Run.Disabled, first.Loop)
			}
			st, err, polls := drive(t, h, f, StepPauseReplication, first, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range []string{"a", "b", "c", "d"} {
				if s := f.state(u); s != "Disabled" {
					t.Errorf("mapping %s reads %s after the pause, want Disabled", u, s)
				}
			}
			if !slices.Equal(st.Run.Disabled, []string{"a", "b", "d"}) {
				t.Errorf("Run.Disabled %v, want a b d (c was disabled by the operator)", st.Run.Disabled)
			}
			if f.busyHits == 0 {
				t.Error("the mapping in transition was never refused: the test did not exercise the retry")
			}
			if !slices.Equal(slices.Sorted(slices.Values(f.updates)), []string{"a=false", "b=false", "d=false"}) {
				t.Errorf("accepted updates %v, want one disable each of a, b, d", f.updates)
			}
			// d is Enabling until 20 s, then disabled on the next poll
			// (5 s grid): Disabled 90 s later.
			took := st.Steps[StepPauseReplication].EndedAt.Sub(t0)
			if took < 110*time.Second || took > 120*time.Second {
				t.Errorf("pause took %v (%d polls), want 20 s of Enabling + at most one poll + 90 s", took, polls)
			}
		})
	}
}

// TestPauseManyMappings measures, on the injected clock, how long a pause
// of 100 mappings takes when each needs the full 90 s AWS documents: all
// are updated in the same poll, so the pause takes one transition plus at
// most one poll interval.
func TestPauseManyMappings(t *testing.T) {
	f := newFakeLambda(t0)
	var uuids []string
	for i := range 100 {
		u := fmt.Sprintf("m%03d", i)
		uuids = append(uuids, u)
		f.add(u, "Enabled", 90*time.Second)
	}
	st, err, polls := drive(t, newFakeHandler(f), f, StepPauseReplication, stateFor(uuids, 150), 1000)
	if err != nil {
		t.Fatal(err)
	}
	took := st.Steps[StepPauseReplication].EndedAt.Sub(t0)
	t.Logf("100 mappings, 90 s transitions, pollSeconds 5: paused in %v of mapping time, %d polls", took, polls)
	if took > 95*time.Second || len(st.Run.Disabled) != 100 {
		t.Errorf("paused in %v with %d recorded, want at most 95 s and 100", took, len(st.Run.Disabled))
	}
}

// TestHalfFailedPauseRolledBack: the second poll disables a, then the
// update of b fails for good. Step Functions hands Rollback the state of
// the last poll that succeeded (the failed poll's output is lost); it
// names a and b, so Rollback re-enables a (after its disable finished)
// and confirms b, and says exactly that.
func TestHalfFailedPauseRolledBack(t *testing.T) {
	f := newFakeLambda(t0)
	f.add("a", "Enabled", 90*time.Second)
	f.add("b", "Enabled", 90*time.Second)
	f.refuse["b"] = errors.New("AccessDeniedException: not authorized to perform lambda:UpdateEventSourceMapping")
	h := newFakeHandler(f)
	st, err, _ := drive(t, h, f, StepPauseReplication, stateFor([]string{"a", "b"}, 150), 10)
	var pf *PauseFailedError
	if !errors.As(err, &pf) || !strings.Contains(err.Error(), "mapping b could not be disabled") {
		t.Fatalf("pause: %v, want *PauseFailedError naming b", err)
	}
	if f.state("a") != "Disabling" {
		t.Fatalf("a reads %s, want Disabling: the test needs a half-done pause", f.state("a"))
	}
	st.Failures = map[string]Failure{StepPauseReplication: {Error: "PauseFailedError", Cause: err.Error()}}
	st, err, _ = drive(t, h, f, StepRollback, st, 100)
	if err != nil {
		t.Fatal(err)
	}
	if f.state("a") != "Enabled" || f.state("b") != "Enabled" {
		t.Fatalf("after rollback a reads %s, b %s; want both Enabled", f.state("a"), f.state("b"))
	}
	r := st.Rollback
	if !slices.Equal(r.ReenabledMappings, []string{"a", "b"}) || r.FailedStep != StepPauseReplication || r.Error != "PauseFailedError" {
		t.Errorf("rollback result %+v", r)
	}
	if !strings.Contains(r.Cause, "every mapping the run disabled reads Enabled") || !strings.Contains(r.Cause, "mapping a reads Enabled") {
		t.Errorf("cause %q", r.Cause)
	}
}

// TestRollbackUnconfirmed: a mapping still Disabling past Rollback's
// deadline is named in a *RollbackIncompleteError with what to run; the
// mapping that was re-enabled is named as confirmed; nothing claims that
// replication resumes.
func TestRollbackUnconfirmed(t *testing.T) {
	f := newFakeLambda(t0)
	f.add("a", "Enabled", 5*time.Second)
	f.add("b", "Enabled", 90*time.Second)
	h := newFakeHandler(f)
	st, err, _ := drive(t, h, f, StepPauseReplication, stateFor([]string{"a", "b"}, 20), 100)
	var pf *PauseFailedError
	if !errors.As(err, &pf) || !strings.Contains(err.Error(), "mapping b reads Disabling, not Disabled") || strings.Contains(err.Error(), "mapping a") {
		t.Fatalf("pause: %v, want *PauseFailedError naming b not Disabled", err)
	}
	st.Failures = map[string]Failure{StepPauseReplication: {Error: "PauseFailedError", Cause: err.Error()}}
	_, err, _ = drive(t, h, f, StepRollback, st, 100)
	var ri *RollbackIncompleteError
	if !errors.As(err, &ri) {
		t.Fatalf("rollback: %v, want *RollbackIncompleteError", err)
	}
	msg := err.Error()
	for _, want := range []string{"mapping b reads Disabling, not Enabled", "--uuid b --enabled", "done: mapping a reads Enabled", "failed in step PauseReplication"} {
		if !strings.Contains(msg, want) {
			t.Errorf("rollback error lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "resumes") {
		t.Errorf("rollback error claims replication resumes: %s", msg)
	}
	if f.state("a") != "Enabled" {
		t.Errorf("a reads %s, want Enabled", f.state("a"))
	}
}
