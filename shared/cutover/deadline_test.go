package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// TestTaskTimeoutsMatchDefinition: every Task state that calls the cutover
// function has its step in TaskTimeouts with exactly its TimeoutSeconds
// (approval Tasks wait for their answer, not for the function, so their
// RequestApproval invocation is bounded by the function timeout), every
// step's budget plus DeadlineMargin fits in its Task's TimeoutSeconds and in
// the function timeout, every Task that runs a step directly passes its
// EnteredTime, and TaskTimeouts names no step the definition does not run.
func TestTaskTimeoutsMatchDefinition(t *testing.T) {
	raw, err := os.ReadFile("../../statemachine/cutover.asl.json")
	if err != nil {
		t.Fatal(err)
	}
	var def struct {
		States map[string]struct {
			Type           string
			Resource       string
			TimeoutSeconds int
			Parameters     struct {
				Step        string `json:"step"`
				EnteredTime string `json:"enteredTime.$"`
				Payload     struct {
					Step string `json:"step"`
				}
			}
		}
	}
	if err := json.Unmarshal(raw, &def); err != nil {
		t.Fatal(err)
	}
	if DeadlineMargin <= 0 {
		t.Fatalf("DeadlineMargin %v", DeadlineMargin)
	}
	seen := map[string]bool{}
	for name, s := range def.States {
		if s.Type != "Task" {
			continue
		}
		step, timeout := s.Parameters.Step, time.Duration(s.TimeoutSeconds)*time.Second
		if step != "" && s.Parameters.EnteredTime != "$$.State.EnteredTime" {
			t.Errorf("Task %s does not pass enteredTime.$ = $$.State.EnteredTime, so its step cannot count from it", name)
		}
		if step == "" {
			step = s.Parameters.Payload.Step
		}
		if step == "" {
			t.Errorf("Task %s names no step", name)
			continue
		}
		if s.TimeoutSeconds <= 0 {
			t.Errorf("Task %s has no TimeoutSeconds", name)
			continue
		}
		seen[step] = true
		want, ok := TaskTimeouts[step]
		switch {
		case !ok:
			t.Errorf("Task %s runs step %s, which TaskTimeouts lacks", name, step)
			continue
		case step == StepRequestApproval:
			if want != FunctionTimeout || timeout < FunctionTimeout {
				t.Errorf("Task %s: RequestApproval bounded by %v, want the function timeout %v (Task waits %v)", name, want, FunctionTimeout, timeout)
			}
		case want != timeout:
			t.Errorf("Task %s: TimeoutSeconds %v, TaskTimeouts[%s] %v", name, timeout, step, want)
		}
		b := Budget(TaskTimeouts, DeadlineMargin, step)
		if b <= 0 || b+DeadlineMargin > timeout || b+DeadlineMargin > FunctionTimeout {
			t.Errorf("Task %s (%v): step %s budget %v + margin %v does not fit", name, timeout, step, b, DeadlineMargin)
		}
	}
	for step := range TaskTimeouts {
		if !seen[step] {
			t.Errorf("TaskTimeouts names %s, which no Task runs", step)
		}
	}
}

// TestStepRunsUnderItsDeadline: Handle gives a step a context whose
// deadline is its budget from the start, and an error the step returns once
// that deadline has passed is a *StepDeadlineError naming the step and
// wrapping what the step was doing. The step here is a lambda hook whose
// function never answers.
func TestStepRunsUnderItsDeadline(t *testing.T) {
	// In a synctest bubble the clock is fake: the deadline is exact.
	synctest.Test(t, testStepRunsUnderItsDeadline)
}

func testStepRunsUnderItsDeadline(t *testing.T) {
	h := New(Deps{
		Lambda:         blockingLambda{},
		Log:            slog.New(slog.DiscardHandler),
		TaskTimeouts:   map[string]time.Duration{StepStopProducers: 1200 * time.Millisecond},
		DeadlineMargin: time.Second,
	})
	st := &State{}
	st.Config.Hooks.StopProducers = HookConfig{Type: HookLambda, FunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:slow"}
	start := time.Now()
	_, err := h.Handle(context.Background(), Request{Step: StepStopProducers, State: st})
	elapsed := time.Since(start)
	var de *StepDeadlineError
	if !errors.As(err, &de) || de.Step != StepStopProducers || de.Budget != 200*time.Millisecond {
		t.Fatalf("err %v (%T), want *StepDeadlineError for %s with budget 200ms", err, err, StepStopProducers)
	}
	var hf *HookFailedError
	if !errors.As(err, &hf) {
		t.Errorf("err %v does not wrap what the step was doing", err)
	}
	if elapsed != 200*time.Millisecond {
		t.Errorf("step ended after %v, want its 200ms budget", elapsed)
	}
	if _, ok := h.budget("NoSuchStep"); ok {
		t.Error("a step without a Task has a budget")
	}
}

// blockingLambda is a Lambda API whose calls return only when their
// context ends; it counts the calls made with a live context.
type blockingLambda struct {
	LambdaAPI
	calls *int
}

func (b blockingLambda) Invoke(ctx context.Context, _ *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if b.calls != nil {
		*b.calls++
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestStepCountsFromEnteredTime: an invocation that starts late has only
// what is left of its Task's time. Entered 700ms ago with a 1.2s timeout
// and a 200ms margin, the step has 300ms left, not its 1s budget; entered
// longer ago than that, it fails at once without calling anything.
func TestStepCountsFromEnteredTime(t *testing.T) {
	synctest.Test(t, testStepCountsFromEnteredTime)
}

func testStepCountsFromEnteredTime(t *testing.T) {
	calls := 0
	h := New(Deps{
		Lambda:         blockingLambda{calls: &calls},
		Log:            slog.New(slog.DiscardHandler),
		TaskTimeouts:   map[string]time.Duration{StepStopProducers: 1200 * time.Millisecond},
		DeadlineMargin: 200 * time.Millisecond,
	})
	for _, tc := range []struct {
		ago, took  time.Duration
		wantCalled int
	}{
		{ago: 700 * time.Millisecond, took: 300 * time.Millisecond, wantCalled: 1},
		{ago: 2 * time.Second, took: 0, wantCalled: 0},
	} {
		calls = 0
		st := &State{}
		st.Config.Hooks.StopProducers = HookConfig{Type: HookLambda, FunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:slow"}
		start := time.Now()
		_, err := h.Handle(context.Background(), Request{Step: StepStopProducers, State: st, EnteredTime: start.Add(-tc.ago)})
		elapsed := time.Since(start)
		var de *StepDeadlineError
		if !errors.As(err, &de) {
			t.Errorf("entered %v ago: err %v (%T), want *StepDeadlineError", tc.ago, err, err)
		}
		if elapsed != tc.took {
			t.Errorf("entered %v ago: step ended after %v, want %v", tc.ago, elapsed, tc.took)
		}
		if calls != tc.wantCalled {
			t.Errorf("entered %v ago: the hook was called %d times, want %d", tc.ago, calls, tc.wantCalled)
		}
	}
}
