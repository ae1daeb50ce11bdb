package cutover

import (
	"context"
	"errors"
	"time"
)

// Step Functions gives up on a Task when its TimeoutSeconds pass: it fails
// the state with States.Timeout and moves on (to Rollback), but the Lambda
// invocation it started is not stopped and runs on until it returns or
// reaches the function's own timeout. So every step bounds its own work by
// a deadline that falls before its Task's timeout, and a step that reaches
// it stops and fails with *StepDeadlineError instead of acting after Step
// Functions stopped waiting for it.
//
// A deadline counted from the handler's start alone would not do: the
// invocation may start late (a cold start's Init, a queued request), and
// Step Functions counts from when it entered the Task. So each Task passes
// $$.State.EnteredTime (Request.EnteredTime), and the deadline is also no
// later than EnteredTime + TimeoutSeconds - DeadlineMargin. Step Functions
// gives up no earlier than EnteredTime + TimeoutSeconds (a retried attempt
// starts later, and has its own TimeoutSeconds), so a step never starts
// anything after Step Functions gave up on it, provided the Lambda and Step
// Functions clocks differ by less than DeadlineMargin less the time a
// request takes to reach a broker.

// FunctionTimeout is the cutover function's timeout (template.yaml,
// CutoverFunction Timeout); no invocation runs longer.
const FunctionTimeout = 900 * time.Second

// DeadlineMargin is how much of a Task's TimeoutSeconds a step leaves
// unused: the time a request already sent when the deadline passes (a
// commit) takes to be applied, the answer's way back to Step Functions, and
// the difference between the Lambda and Step Functions clocks.
const DeadlineMargin = 15 * time.Second

// TaskTimeouts is the TimeoutSeconds of the Task state that runs each step
// in statemachine/cutover.asl.json, keyed by step name (Request.Step). A
// test checks it against the definition, so the two cannot drift apart.
// Hook steps (StopProducers…) are the …Invoke states; RequestApproval is
// the invocation that publishes an approval request, bounded by the
// function timeout (its Task waits for the answer, not for the function).
var TaskTimeouts = map[string]time.Duration{
	StepValidate:             120 * time.Second,
	StepPlan:                 120 * time.Second,
	StepStopProducers:        900 * time.Second,
	StepVerifySourceQuiet:    120 * time.Second,
	StepFenceSource:          120 * time.Second,
	StepWaitForDrain:         120 * time.Second,
	StepPauseReplication:     120 * time.Second,
	StepStopConsumers:        900 * time.Second,
	StepWaitForConsumersGone: 120 * time.Second,
	StepTranslateOffsets:     120 * time.Second,
	StepStartConsumers:       900 * time.Second,
	StepStartProducers:       900 * time.Second,
	StepVerifyTarget:         120 * time.Second,
	StepReport:               60 * time.Second,
	StepRollback:             300 * time.Second,
	StepRequestApproval:      FunctionTimeout,
}

// Budget returns how long step's work may take, counted from when Step
// Functions entered its Task (or from when the handler starts it, when that
// is earlier or EnteredTime is unknown): its Task's TimeoutSeconds (at most
// the function timeout) less margin. It is 0 for a step with no Task.
func Budget(timeouts map[string]time.Duration, margin time.Duration, step string) time.Duration {
	t, ok := timeouts[step]
	if !ok {
		return 0
	}
	return min(t, FunctionTimeout) - margin
}

// StepDeadlineError says a step ran out of its time budget (Budget) before
// finishing, and stopped so as not to act after Step Functions gave up on
// it. What the step had not yet done it did not do: TranslateOffsets
// commits nothing once its deadline has passed. Like any failure before
// StartProducers, it rolls the run back.
type StepDeadlineError struct {
	Step   string
	Budget time.Duration
	// Err is what the step was doing when the deadline passed.
	Err error
}

func (e *StepDeadlineError) Error() string {
	msg := "step " + e.Step + " passed its deadline, " + e.Budget.String() + " after its Task began, and stopped"
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}
func (e *StepDeadlineError) Unwrap() error { return e.Err }

// stepDeadline is the deadline Handle sets on a step's context, with what
// StepDeadlineError reports. at is the deadline on the Handler's Clock.
type stepDeadline struct {
	step   string
	budget time.Duration
	at     time.Time
}

type stepDeadlineKey struct{}

// deadlineErr returns a *StepDeadlineError when ctx's step deadline has
// passed, else nil. Steps call it right before an action that must not
// happen late (a commit).
func deadlineErr(ctx context.Context, cause error) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	sd, ok := ctx.Value(stepDeadlineKey{}).(stepDeadline)
	if !ok {
		return nil
	}
	if cause == nil {
		cause = context.Cause(ctx)
	}
	return &StepDeadlineError{Step: sd.step, Budget: sd.budget, Err: cause}
}
