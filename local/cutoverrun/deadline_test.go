package cutoverrun

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// TestTimedOutTranslateCommitsNothing: the target answers every fetch late
// from the StopConsumers hook on, so TranslateOffsets' binary search of a
// lagging group takes far longer than its Task's TimeoutSeconds (shortened
// to 3 s for the test). Step Functions gives up on the Task and rolls the
// run back, and the invocation is not stopped by that. Once every
// invocation has ended (Run waits for them at the endpoint), the target
// must hold no offsets of the group: nothing may commit after Step
// Functions gave up on the step, least of all after Rollback.
func TestTimedOutTranslateCommitsNothing(t *testing.T) {
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 2)
	ctx := ctxFor(t, 120*time.Second)
	r.produce(ctx, 0, 2000, 2)
	r.waitReplicated(ctx)
	// The group read the first 500 records of each partition: a lagging
	// group, translated by binary search on the target.
	commit := kadm.Offsets{}
	for p := int32(0); p < 2; p++ {
		commit.Add(kadm.Offset{Topic: r.topic, Partition: p, At: 500, LeaderEpoch: -1})
	}
	if _, err := r.srcAdm.CommitOffsets(ctx, r.group, commit); err != nil {
		t.Fatal(err)
	}

	const fetchDelay = 400 * time.Millisecond
	var slow atomic.Bool
	kc := r.pair.Target.Kfake()
	kc.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		if slow.Load() {
			kc.SleepControl(func() { time.Sleep(fetchDelay) })
		}
		return nil, nil, false // then answered as usual
	})
	t.Cleanup(func() { slow.Store(false) })
	funcs := map[string]lambda.Handler{"slow-target": hookFunc(func(context.Context) error {
		slow.Store(true)
		return nil
	})}
	in := r.baseInput()
	in["allowLaggingGroups"] = true
	in["hooks"] = map[string]any{"stopConsumers": lambdaHook("slow-target")}
	res := r.run(ctx, in, Options{
		Functions:      funcs,
		TaskTimeouts:   map[string]time.Duration{"TranslateOffsets": 3 * time.Second},
		DeadlineMargin: time.Second,
	})
	slow.Store(false)

	states := res.Entered()
	if res.Status != "FAILED" || len(states) < 2 || states[len(states)-1] != "RolledBack" || !slices.Contains(states, "Rollback") {
		t.Fatalf("status %s, states %v", res.Status, states)
	}
	if !strings.Contains(res.Cause, "failed in step "+cutover.StepTranslateOffsets+":") {
		t.Errorf("cause does not name TranslateOffsets: %s", res.Cause)
	}
	var rollbackAt time.Time
	for _, e := range res.Events {
		if e.Type == "StateEntered" && e.State == "Rollback" {
			rollbackAt = e.Time() // the first poll of the Rollback loop
			break
		}
	}
	var translates []StepCall
	for _, c := range res.Steps {
		if c.Step == cutover.StepTranslateOffsets {
			translates = append(translates, c)
			t.Logf("TranslateOffsets invocation ran %v, ended %v after Rollback started, %v after the execution ended: %q",
				c.Ended.Sub(c.Started).Round(time.Millisecond), c.Ended.Sub(rollbackAt).Round(time.Millisecond),
				c.Ended.Sub(res.Ended()).Round(time.Millisecond), c.ErrorType)
		}
	}
	if len(translates) == 0 {
		t.Fatal("TranslateOffsets was never invoked")
	}

	// Every invocation has ended: read what the target holds.
	o, err := r.tgtAdm.FetchOffsets(ctx, r.group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) { // not found: nothing committed
		t.Fatal(err)
	}
	o.Each(func(x kadm.OffsetResponse) {
		if x.Err == nil && x.At >= 0 {
			t.Errorf("group %s has offset %d committed on target %s/%d after its Task timed out", r.group, x.At, x.Topic, x.Partition)
		}
	})

	// The step stopped itself before Step Functions gave up on it.
	if res.Error != "StepDeadlineError" {
		t.Errorf("error %q, want StepDeadlineError", res.Error)
	}
	for _, c := range translates {
		if c.ErrorType != "StepDeadlineError" || !c.Ended.Before(rollbackAt) {
			t.Errorf("TranslateOffsets invocation ended %v after Rollback started with %q, want before it with StepDeadlineError",
				c.Ended.Sub(rollbackAt).Round(time.Millisecond), c.ErrorType)
		}
	}
}

// TestLateTranslateCommitsNothing: the TranslateOffsets invocation starts
// only after its Task's TimeoutSeconds (3 s) have passed, as after a slow
// cold start, so Step Functions has already failed the Task with
// States.Timeout and rolled the run back when the handler begins. Its own
// budget, counted from its start, would still leave it time; counted from
// when Step Functions entered the Task, none is left. It must commit
// nothing.
func TestLateTranslateCommitsNothing(t *testing.T) {
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 2)
	ctx := ctxFor(t, 120*time.Second)
	r.produce(ctx, 0, 40, 2)
	r.waitReplicated(ctx)
	if _, err := r.srcAdm.CommitOffsets(ctx, r.group, r.endOffsets(t, ctx, r.srcAdm)); err != nil {
		t.Fatal(err)
	}
	res := r.run(ctx, r.baseInput(), Options{
		TaskTimeouts:   map[string]time.Duration{"TranslateOffsets": 3 * time.Second},
		DeadlineMargin: time.Second,
		StartupDelay:   map[string]time.Duration{cutover.StepTranslateOffsets: 4 * time.Second},
	})
	states := res.Entered()
	if res.Status != "FAILED" || len(states) < 2 || states[len(states)-1] != "RolledBack" || !slices.Contains(states, "Rollback") {
		t.Fatalf("status %s, states %v", res.Status, states)
	}
	if res.Error != "States.Timeout" || !strings.Contains(res.Cause, "failed in step "+cutover.StepTranslateOffsets+":") {
		t.Errorf("error %q cause %q, want States.Timeout in TranslateOffsets", res.Error, res.Cause)
	}
	var rollbackAt time.Time
	for _, e := range res.Events {
		if e.Type == "StateEntered" && e.State == "Rollback" {
			rollbackAt = e.Time() // the first poll of the Rollback loop
			break
		}
	}
	n := 0
	for _, c := range res.Steps {
		if c.Step != cutover.StepTranslateOffsets {
			continue
		}
		n++
		t.Logf("TranslateOffsets handler started %v after Rollback started, ended with %q", c.Started.Sub(rollbackAt).Round(time.Millisecond), c.ErrorType)
		if !c.Started.After(rollbackAt) {
			t.Errorf("the invocation started before Rollback; the test wants it late")
		}
		if c.ErrorType != "StepDeadlineError" {
			t.Errorf("late TranslateOffsets ended with %q, want StepDeadlineError", c.ErrorType)
		}
	}
	if n == 0 {
		t.Fatal("TranslateOffsets was never invoked")
	}
	o, err := r.tgtAdm.FetchOffsets(ctx, r.group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatal(err)
	}
	o.Each(func(x kadm.OffsetResponse) {
		if x.Err == nil && x.At >= 0 {
			t.Errorf("group %s has offset %d committed on target %s/%d by an invocation that started after Rollback", r.group, x.At, x.Topic, x.Partition)
		}
	})
}
