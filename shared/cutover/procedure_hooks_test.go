package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// The tests in this file drive the hook steps and the approval request
// step by step, as the state machine calls them: a hook Task's result is
// discarded (ResultPath null), so the next step gets the state the hook
// got; a failed hook's Catch records its error under $.failures.<hook> and
// goes to Rollback.

// handlerWith returns a Handler on p's clusters and fakeLambda (unless d
// names other clients), replicator and clock, with d's other fields. It is
// the only place these tests build a Handler's Deps.
func (p *proc) handlerWith(d Deps) *Handler {
	if d.Source == nil {
		d.Source = p.src
	}
	if d.Target == nil {
		d.Target = p.tgt
	}
	if d.Lambda == nil {
		d.Lambda = p.f
	}
	d.ReplicatorFunction = "replicator"
	d.Clock = p.f.clk
	d.Log = slog.New(slog.DiscardHandler)
	return New(d)
}

// hookLambda is fakeLambda whose Invoke records each call and answers with
// answer (a nil answer returns an empty success), and whose
// GetEventSourceMapping reads the fake's state with a last processing
// result of OK.
type hookLambda struct {
	*fakeLambda
	mu     sync.Mutex
	calls  []lambda.InvokeInput
	answer func(ctx context.Context, in *lambda.InvokeInput) (*lambda.InvokeOutput, error)
}

func (l *hookLambda) Invoke(ctx context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	l.mu.Lock()
	l.calls = append(l.calls, *in)
	answer := l.answer
	l.mu.Unlock()
	if answer == nil {
		return &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`null`)}, nil
	}
	return answer(ctx, in)
}

func (l *hookLambda) GetEventSourceMapping(_ context.Context, in *lambda.GetEventSourceMappingInput, _ ...func(*lambda.Options)) (*lambda.GetEventSourceMappingOutput, error) {
	u := aws.ToString(in.UUID)
	l.fakeLambda.mu.Lock()
	_, ok := l.maps[u]
	l.fakeLambda.mu.Unlock()
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no mapping " + u)}
	}
	return &lambda.GetEventSourceMappingOutput{UUID: aws.String(u), State: aws.String(l.state(u)), LastProcessingResult: aws.String("OK")}, nil
}

// invoked returns, for each Invoke so far, the function named and the
// payload decoded as a HookEvent.
func (l *hookLambda) invoked(t *testing.T) (functions []string, events []HookEvent) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.calls {
		if c.InvocationType != types.InvocationTypeRequestResponse {
			t.Errorf("hook %s invoked as %q, want RequestResponse (the step waits for the hook's answer)", aws.ToString(c.FunctionName), c.InvocationType)
		}
		var ev HookEvent
		if err := json.Unmarshal(c.Payload, &ev); err != nil {
			t.Fatalf("hook payload %s: %v", c.Payload, err)
		}
		functions = append(functions, aws.ToString(c.FunctionName))
		events = append(events, ev)
	}
	return functions, events
}

const (
	stopProducersFn = "arn:aws:lambda:us-east-1:123456789012:function:stop-producers"
	stopConsumersFn = "arn:aws:lambda:us-east-1:123456789012:function:stop-consumers"
)

// lambdaHooks is the input's hooks: StopProducers and StopConsumers are
// lambda hooks with payloads of their own.
const lambdaHooks = `,"hooks":{"stopProducers":{"type":"lambda","functionArn":"` + stopProducersFn + `","payload":{"fleet":"orders-writers"}},` +
	`"stopConsumers":{"type":"lambda","functionArn":"` + stopConsumersFn + `","payload":{"fleet":"billing"}}}`

// hookStep runs a hook step as its Invoke Task does and returns the state
// the next step gets (the hook's own, its result discarded), or the error.
func (p *proc) hookStep(step string, st *State) (*State, error) {
	p.t.Helper()
	in := roundTrip(p.t, st)
	out, err := p.h.Handle(p.ctx, Request{Step: step, State: in})
	if err != nil {
		return st, err
	}
	if ack, ok := out.(*HookAck); !ok || ack.Hook != step {
		p.t.Fatalf("%s returned %#v, want its *HookAck", step, out)
	}
	return st, nil
}

// wantHookEvents checks the hooks invoked so far, in order: each with the
// run's topics and groups and its own payload.
func wantHookEvents(t *testing.T, l *hookLambda, want ...string) {
	t.Helper()
	fns, evs := l.invoked(t)
	fnOf := map[string]string{StepStopProducers: stopProducersFn, StepStopConsumers: stopConsumersFn}
	payloadOf := map[string]string{StepStopProducers: `{"fleet":"orders-writers"}`, StepStopConsumers: `{"fleet":"billing"}`}
	var wantFns []string
	for _, h := range want {
		wantFns = append(wantFns, fnOf[h])
	}
	if !slices.Equal(fns, wantFns) {
		t.Fatalf("invoked %v, want exactly %v in this order", fns, wantFns)
	}
	for i, ev := range evs {
		w := HookEvent{Hook: want[i], Topics: []string{procOrders, procPayments}, Groups: []string{procGroup}, Payload: json.RawMessage(payloadOf[want[i]])}
		if ev.Hook != w.Hook || !slices.Equal(ev.Topics, w.Topics) || !slices.Equal(ev.Groups, w.Groups) || string(ev.Payload) != string(w.Payload) || ev.Renames != nil {
			t.Errorf("hook %d got %+v (payload %s), want %+v (payload %s)", i, ev, ev.Payload, w, w.Payload)
		}
	}
}

// stoppedProducers is a run with lambda hooks, validated, whose
// StopProducers hook has run.
func stoppedProducers(t *testing.T) (*proc, *hookLambda, *State) {
	t.Helper()
	p := newProc(t)
	l := &hookLambda{fakeLambda: p.f}
	p.h = p.handlerWith(Deps{Lambda: l})
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	st, err := p.hookStep(StepStopProducers, p.validate(procInput(lambdaHooks)))
	if err != nil {
		t.Fatal(err)
	}
	return p, l, st
}

// TestHooksInvokedInOrder: a run whose StopProducers and StopConsumers are
// lambda hooks invokes each once, synchronously, at its place in the
// procedure, with the run's topics and groups and the hook's own payload,
// and goes on to translate exactly.
func TestHooksInvokedInOrder(t *testing.T) {
	p, l, st := stoppedProducers(t)
	var err error
	wantHookEvents(t, l, StepStopProducers)
	for _, step := range []string{StepVerifySourceQuiet, StepFenceSource, StepWaitForDrain, StepPauseReplication} {
		st = p.mustRun(step, st)
	}
	wantHookEvents(t, l, StepStopProducers) // no step but a hook invokes
	if st, err = p.hookStep(StepStopConsumers, st); err != nil {
		t.Fatal(err)
	}
	// StartConsumers and StartProducers are none: they invoke nothing.
	for _, step := range []string{StepWaitForConsumersGone, StepTranslateOffsets} {
		st = p.mustRun(step, st)
	}
	for _, step := range []string{StepStartConsumers, StepStartProducers} {
		if st, err = p.hookStep(step, st); err != nil {
			t.Fatal(err)
		}
	}
	wantHookEvents(t, l, StepStopProducers, StepStopConsumers)
	if got := p.targetCommits(procGroup); got != [2]int64{7, 4} {
		t.Errorf("target commits of %s %v, want [7 4]", procGroup, got)
	}
}

// TestHookFailureRolledBack: a StopConsumers hook that fails, by a
// function error, by an Invoke the Lambda API refuses, or by running past
// the step's deadline, fails with the typed error its Catch names, and
// Rollback removes exactly the fence and re-enables exactly the mappings
// the run changed before it, and invokes no hook.
func TestHookFailureRolledBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(ctx context.Context, in *lambda.InvokeInput) (*lambda.InvokeOutput, error)
		// late: Step Functions entered the Task a whole timeout ago, so
		// the step's deadline has passed.
		late    bool
		errName string
		// want checks the error.
		want func(t *testing.T, err error)
	}{
		{name: "function error", errName: "HookFailedError",
			answer: func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
				return &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"),
					Payload: []byte(`{"errorType":"FleetBusy","errorMessage":"billing fleet is deploying"}`)}, nil
			},
			want: func(t *testing.T, err error) {
				var hf *HookFailedError
				if !errors.As(err, &hf) || *hf != (HookFailedError{Hook: StepStopConsumers, Function: stopConsumersFn, ErrorType: "FleetBusy", Message: "billing fleet is deploying"}) {
					t.Fatalf("%#v, want the hook's error type and message", err)
				}
			}},
		{name: "function error without a body", errName: "HookFailedError",
			answer: func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
				return &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"), Payload: []byte(`"timed out"`)}, nil
			},
			want: func(t *testing.T, err error) {
				var hf *HookFailedError
				if !errors.As(err, &hf) || hf.ErrorType != "Unhandled" || hf.Function != stopConsumersFn {
					t.Fatalf("%#v, want ErrorType Unhandled from X-Amz-Function-Error", err)
				}
			}},
		{name: "invoke refused", errName: "HookFailedError",
			answer: func(context.Context, *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
				return nil, &types.ResourceNotFoundException{Message: aws.String("Function not found: " + stopConsumersFn)}
			},
			want: func(t *testing.T, err error) {
				var hf *HookFailedError
				if !errors.As(err, &hf) || !strings.Contains(hf.Message, "Function not found") || hf.Hook != StepStopConsumers {
					t.Fatalf("%#v, want *HookFailedError with the API's message", err)
				}
			}},
		{name: "past the deadline", errName: "StepDeadlineError",
			// The hook answers only when the step's context ends.
			late: true,
			answer: func(ctx context.Context, _ *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
			want: func(t *testing.T, err error) {
				var de *StepDeadlineError
				if !errors.As(err, &de) || de.Step != StepStopConsumers {
					t.Fatalf("%#v, want *StepDeadlineError for StopConsumers", err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, l, st := stoppedProducers(t)
			var err error
			for _, step := range []string{StepVerifySourceQuiet, StepFenceSource, StepWaitForDrain, StepPauseReplication} {
				st = p.mustRun(step, st)
			}
			l.answer = tc.answer
			var entered time.Time
			if tc.late {
				entered = p.f.clock().Add(-TaskTimeouts[StepStopConsumers])
			}
			_, err = p.h.Handle(p.ctx, Request{Step: StepStopConsumers, State: roundTrip(t, st), EnteredTime: entered})
			if err == nil || reflect.TypeOf(err).Elem().Name() != tc.errName {
				t.Fatalf("StopConsumers: %v, want *%s", err, tc.errName)
			}
			tc.want(t, err)
			wantHookEvents(t, l, StepStopProducers, StepStopConsumers)
			p.wantRolledBack(p.rollback(StepStopConsumers, st, err), StepStopConsumers, tc.errName, wantFence, []string{"m1", "m2"})
			wantHookEvents(t, l, StepStopProducers, StepStopConsumers) // Rollback invokes no hook
		})
	}
}

// fakeSNS records what is published.
type fakeSNS struct {
	published []sns.PublishInput
	err       error
}

func (s *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.published = append(s.published, *in)
	return &sns.PublishOutput{MessageId: aws.String("msg-1")}, nil
}

const (
	approvalTopic = "arn:aws:sns:us-east-1:123456789012:cutover-approvals"
	approvalExec  = "arn:aws:states:us-east-1:123456789012:execution:cutover:run-1"
	approvalToken = "AQCEAAAAKgAAAAMAAAAAAAAAAe1Bt0ken"
	// hookSecret is a value only the StopProducers lambda hook's payload
	// carries: no approval message may repeat it.
	hookSecret = "sk-live-0123456789abcdef"
)

// approvalHooks: StopProducers is a lambda hook whose payload holds a
// credential, StopConsumers waits for an operator's approval.
const approvalHooks = `,"hooks":{"stopProducers":{"type":"lambda","functionArn":"` + stopProducersFn + `","payload":{"apiKey":"` + hookSecret + `"}},` +
	`"stopConsumers":{"type":"approval"}}`

// approvalProc is a run at StopConsumers's approval: fenced, paused, its
// StopProducers hook done.
func approvalProc(t *testing.T, s *fakeSNS) (*proc, *hookLambda, *State) {
	t.Helper()
	p := newProc(t)
	l := &hookLambda{fakeLambda: p.f}
	p.h = p.handlerWith(Deps{Lambda: l, SNS: s, ApprovalTopicArn: approvalTopic})
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	st := p.validate(procInput(approvalHooks))
	if st.Config.Hooks.StopConsumers.Type != HookApproval {
		t.Fatalf("stopConsumers hook %+v, want approval", st.Config.Hooks.StopConsumers)
	}
	st, err := p.hookStep(StepStopProducers, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{StepVerifySourceQuiet, StepFenceSource, StepWaitForDrain, StepPauseReplication} {
		st = p.mustRun(step, st)
	}
	return p, l, st
}

// requestApproval runs the approval Task's invocation for hook.
func (p *proc) requestApproval(hook string, st *State) (any, error) {
	return p.h.Handle(p.ctx, Request{Step: StepRequestApproval, Hook: hook, TaskToken: approvalToken, Execution: approvalExec, State: roundTrip(p.t, st)})
}

// TestApprovalPublishesTokenAndNoSecret: the approval request publishes
// to the approval topic exactly one message holding the hook, the
// execution, the task token the operator answers with, the run's topics
// and groups and what to run; it holds nothing else (no hook payload, so
// no credential a lambda hook carries). Once approved (SendTaskSuccess:
// the state machine goes on with the state unchanged), the run completes
// and translates exactly.
func TestApprovalPublishesTokenAndNoSecret(t *testing.T) {
	s := &fakeSNS{}
	p, l, st := approvalProc(t, s)
	out, err := p.requestApproval(StepStopConsumers, st)
	if err != nil {
		t.Fatal(err)
	}
	if ack := out.(*HookAck); *ack != (HookAck{Hook: StepStopConsumers, Type: HookApproval}) {
		t.Errorf("ack %+v", ack)
	}
	if len(s.published) != 1 {
		t.Fatalf("%d messages published, want 1", len(s.published))
	}
	m := s.published[0]
	if aws.ToString(m.TopicArn) != approvalTopic || aws.ToString(m.Subject) != "kafka-msk-migrator cutover: approve StopConsumers" {
		t.Errorf("published to %s with subject %q", aws.ToString(m.TopicArn), aws.ToString(m.Subject))
	}
	body := aws.ToString(m.Message)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &fields); err != nil {
		t.Fatalf("message %s: %v", body, err)
	}
	if keys := slices.Sorted(maps.Keys(fields)); !slices.Equal(keys, []string{"execution", "groups", "hook", "instructions", "taskToken", "topics"}) {
		t.Errorf("message fields %v, want exactly execution, groups, hook, instructions, taskToken, topics", keys)
	}
	var msg ApprovalMessage
	if err := json.Unmarshal([]byte(body), &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Hook != StepStopConsumers || msg.Execution != approvalExec || msg.TaskToken != approvalToken ||
		!slices.Equal(msg.Topics, []string{procOrders, procPayments}) || !slices.Equal(msg.Groups, []string{procGroup}) ||
		!strings.Contains(msg.Instructions, "send-task-success --task-token <taskToken>") || !strings.Contains(msg.Instructions, "send-task-failure") {
		t.Errorf("message %+v", msg)
	}
	for _, secret := range []string{hookSecret, "apiKey", stopProducersFn} {
		if strings.Contains(body, secret) || strings.Contains(aws.ToString(m.Subject), secret) {
			t.Errorf("the approval message repeats %q from another hook's configuration: %s", secret, body)
		}
	}
	wantInvoked := []string{stopProducersFn}
	if fns, _ := l.invoked(t); !slices.Equal(fns, wantInvoked) {
		t.Errorf("invoked %v, want %v: an approval hook invokes nothing", fns, wantInvoked)
	}

	// Approved: the state machine goes on with the state it had.
	for _, step := range []string{StepWaitForConsumersGone, StepTranslateOffsets} {
		st = p.mustRun(step, st)
	}
	if got := p.targetCommits(procGroup); got != [2]int64{7, 4} {
		t.Errorf("target commits of %s %v after approval, want [7 4]", procGroup, got)
	}
}

// TestApprovalRefusedRollsBack: an operator's SendTaskFailure (any error
// name) or the approval's timeout (States.Timeout) is caught into
// $.failures.StopConsumers, and Rollback undoes exactly the fence and the
// pause, naming the refusal in its cause.
func TestApprovalRefusedRollsBack(t *testing.T) {
	for _, refusal := range []Failure{
		{Error: "Rejected", Cause: "not now"},
		{Error: "States.Timeout", Cause: "Task timed out."},
	} {
		t.Run(refusal.Error, func(t *testing.T) {
			p, _, st := approvalProc(t, &fakeSNS{})
			if _, err := p.requestApproval(StepStopConsumers, st); err != nil {
				t.Fatal(err)
			}
			in := roundTrip(t, st)
			in.Failures = map[string]Failure{StepStopConsumers: refusal}
			out, err := p.run(StepRollback, in)
			if err != nil {
				t.Fatalf("Rollback: %v", err)
			}
			p.wantRolledBack(out, StepStopConsumers, refusal.Error, wantFence, []string{"m1", "m2"})
			if want := "cutover failed in step StopConsumers: " + refusal.Error + ": " + refusal.Cause + ". "; !strings.HasPrefix(out.Rollback.Cause, want) {
				t.Errorf("cause %q, want it to start %q", out.Rollback.Cause, want)
			}
			if got := p.targetCommits(procGroup); got != [2]int64{-1, -1} {
				t.Errorf("target commits %v after a refused approval, want none", got)
			}
		})
	}
}

// TestApprovalCannotBePublished: without an approval topic, or when SNS
// refuses the publish, the approval step fails with *HookFailedError
// (which its Catch sends to Rollback) naming the cause; a request without
// a task token is *InvalidInputError.
func TestApprovalCannotBePublished(t *testing.T) {
	p, _, st := approvalProc(t, &fakeSNS{err: errors.New("AuthorizationError: not authorized to perform SNS:Publish")})
	_, err := p.requestApproval(StepStopConsumers, st)
	var hf *HookFailedError
	if !errors.As(err, &hf) || hf.Function != approvalTopic || !strings.Contains(hf.Message, "publishing approval request: AuthorizationError") {
		t.Errorf("refused publish: %#v, want *HookFailedError naming the topic and the refusal", err)
	}
	p.h = p.handlerWith(Deps{SNS: &fakeSNS{}})
	_, err = p.requestApproval(StepStopConsumers, st)
	if !errors.As(err, &hf) || !strings.Contains(hf.Message, "APPROVAL_TOPIC_ARN is not configured") {
		t.Errorf("no topic: %#v, want *HookFailedError saying APPROVAL_TOPIC_ARN is not configured", err)
	}
	_, err = p.h.Handle(p.ctx, Request{Step: StepRequestApproval, Hook: StepStopConsumers, State: roundTrip(t, st)})
	var ie *InvalidInputError
	if !errors.As(err, &ie) || ie.Field != "taskToken" {
		t.Errorf("no token: %#v, want *InvalidInputError on taskToken", err)
	}
}

// TestApprovalSaysWhatARefusalDoes: the approval message tells the
// operator what send-task-failure does, as the state machine's definition
// has it: a refusal rolls the run back where the hook's approval Task is
// caught into Rollback, and at StartProducers, whose Catch ends the run
// without rolling back (consumers already read from the target), the
// message must not promise a rollback.
func TestApprovalSaysWhatARefusalDoes(t *testing.T) {
	raw, err := os.ReadFile("../../statemachine/cutover.asl.json")
	if err != nil {
		t.Fatal(err)
	}
	var def struct {
		States map[string]struct {
			Catch []struct {
				ErrorEquals []string
				Next        string
			}
		}
	}
	if err := json.Unmarshal(raw, &def); err != nil {
		t.Fatal(err)
	}
	p := newProc(t)
	for _, hook := range []string{StepStopProducers, StepStopConsumers, StepStartConsumers, StepStartProducers} {
		s := &fakeSNS{}
		p.h = p.handlerWith(Deps{SNS: s, ApprovalTopicArn: approvalTopic})
		st := &State{Config: Config{Topics: []string{procOrders}, Groups: []string{procGroup}}}
		if _, err := p.requestApproval(hook, st); err != nil {
			t.Fatal(err)
		}
		var msg ApprovalMessage
		if err := json.Unmarshal([]byte(aws.ToString(s.published[0].Message)), &msg); err != nil {
			t.Fatal(err)
		}
		var refused string
		for _, c := range def.States[hook+"Approval"].Catch {
			if slices.Contains(c.ErrorEquals, "States.ALL") {
				refused = c.Next
			}
		}
		if refused == "" {
			t.Fatalf("%sApproval has no States.ALL Catch", hook)
		}
		rollsBack := strings.Contains(msg.Instructions, "send-task-failure to roll back")
		if rollsBack != (refused == "Rollback") {
			t.Errorf("%s: a refusal goes to %s, but the message says %q", hook, refused, msg.Instructions)
		}
		if refused != "Rollback" && !strings.Contains(msg.Instructions, "without rolling back") {
			t.Errorf("%s: a refusal goes to %s, and the message does not say it is not rolled back: %q", hook, refused, msg.Instructions)
		}
	}
}
