package cutoverrun

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// operatorACLs are ACLs the operator had before the run: a fence identical
// to the cutover's on another topic, and a grant for another principal.
func (r *rig) addOperatorACLs(ctx context.Context) {
	r.t.Helper()
	for _, b := range []*kadm.ACLBuilder{
		kadm.NewACLs().Topics(r.idle).ResourcePatternType(kadm.ACLPatternLiteral).Deny("User:*").DenyHosts("*").Operations(kadm.OpWrite),
		kadm.NewACLs().Topics(r.topic).ResourcePatternType(kadm.ACLPatternLiteral).Allow("User:auditor").AllowHosts("*").Operations(kadm.OpDescribe),
	} {
		res, err := r.srcAdm.CreateACLs(ctx, b)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, x := range res {
			if x.Err != nil {
				r.t.Fatal(x.Err)
			}
		}
	}
}

// TestRollbackFromEveryStep injects a failure in each state from
// FenceSource through StartConsumers and proves each run ends in the
// RolledBack Fail state naming the step, with the source writable again,
// no fence ACL left, the operator's ACLs untouched, and exactly the
// mappings the run disabled enabled again.
func TestRollbackFromEveryStep(t *testing.T) {
	testRollbackFromEveryStep(t, newRig(t, kafkalocal.SecuritySCRAMACL, 2))
}

func testRollbackFromEveryStep(t *testing.T, r *rig) {
	ctx := ctxFor(t, 150*time.Second)
	r.addOperatorACLs(ctx)
	r.produce(ctx, 0, 40, 2)
	r.waitReplicated(ctx)
	// The group has read everything on the source and has no members.
	if _, err := r.srcAdm.CommitOffsets(ctx, r.group, r.endOffsets(t, ctx, r.srcAdm)); err != nil {
		t.Fatal(err)
	}
	before := r.snapshot(ctx)

	funcs := map[string]lambda.Handler{
		"ok":     hookFunc(func(context.Context) error { return nil }),
		"refuse": hookFunc(func(context.Context) error { return &HookRefusedError{Msg: "consumers would not stop"} }),
	}
	for _, tc := range []struct {
		step   string
		fault  string // injected through Options.Fault
		hooks  map[string]any
		reject bool // the StartConsumers approval is rejected
		errTyp string
	}{
		{step: "FenceSource", fault: "FenceSource", errTyp: "InjectedFaultError"},
		{step: "WaitForDrain", fault: "WaitForDrain", errTyp: "InjectedFaultError"},
		{step: "PauseReplication", fault: "PauseReplication", errTyp: "InjectedFaultError"},
		{step: "StopConsumers", hooks: map[string]any{"stopConsumers": lambdaHook("refuse")}, errTyp: "HookFailedError"},
		{step: "WaitForConsumersGone", fault: "WaitForConsumersGone", errTyp: "InjectedFaultError"},
		{step: "TranslateOffsets", fault: "TranslateOffsets", errTyp: "InjectedFaultError"},
		{step: "StartConsumers", hooks: map[string]any{"startConsumers": map[string]any{"type": "approval"}}, reject: true, errTyp: "ApprovalRejected"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			in := r.baseInput()
			hooks := map[string]any{"stopProducers": lambdaHook("ok")}
			for k, v := range tc.hooks {
				hooks[k] = v
			}
			in["hooks"] = hooks
			o := Options{Functions: funcs}
			if tc.fault != "" {
				o.Fault = func(s string) bool { return s == tc.fault }
			}
			if tc.reject {
				o.Approve = func(context.Context, cutover.ApprovalMessage) error { return errRejected }
			}
			res := r.run(ctx, in, o)
			states := res.Entered()
			if res.Status != "FAILED" || states[len(states)-1] != "RolledBack" || states[len(states)-2] != "RollbackDone" || states[len(states)-3] != "Rollback" {
				t.Fatalf("status %s, states %v", res.Status, states)
			}
			if res.Error != tc.errTyp {
				t.Errorf("error %q, want %q", res.Error, tc.errTyp)
			}
			if !strings.Contains(res.Cause, "failed in step "+tc.step+":") {
				t.Errorf("cause does not name step %s: %s", tc.step, res.Cause)
			}
			if err := r.appWrite(ctx); err != nil {
				t.Errorf("source not writable after rollback: %v", err)
			}
			if st := r.mapping.State(); st != esm.StateEnabled {
				t.Errorf("replicator mapping %s after rollback, want Enabled", st)
			}
			if st := r.idleMap.State(); st != esm.StateDisabled {
				t.Errorf("operator-disabled mapping %s after rollback, want still Disabled", st)
			}
			// The probe write above is replicated; wait so the next
			// subtest starts drained, then compare ACLs and mappings.
			r.waitReplicated(ctx)
			after := r.snapshot(ctx)
			if !reflect.DeepEqual(before.ACLs, after.ACLs) {
				t.Errorf("ACLs changed:\nbefore %v\nafter  %v", before.ACLs, after.ACLs)
			}
			if !reflect.DeepEqual(before.Mappings, after.Mappings) {
				t.Errorf("mappings changed:\nbefore %v\nafter  %v", before.Mappings, after.Mappings)
			}
			// Keep the group caught up with the probe write.
			if _, err := r.srcAdm.CommitOffsets(ctx, r.group, r.endOffsets(t, ctx, r.srcAdm)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func (r *rig) endOffsets(t *testing.T, ctx context.Context, adm *kadm.Client) kadm.Offsets {
	t.Helper()
	l, err := adm.ListEndOffsets(ctx, r.topic)
	if err != nil {
		t.Fatal(err)
	}
	return l.Offsets()
}

// TestDrainTimeoutRollsBack stops replication from making progress and
// proves the run rolls back with an error naming the lagging partitions.
func TestDrainTimeoutRollsBack(t *testing.T) {
	testDrainTimeoutRollsBack(t, newRig(t, kafkalocal.SecuritySCRAMACL, 2))
}

func testDrainTimeoutRollsBack(t *testing.T, r *rig) {
	ctx := ctxFor(t, 60*time.Second)
	r.produce(ctx, 0, 10, 2)
	r.waitReplicated(ctx)
	r.fail.set(true)
	r.produce(ctx, 10, 13, 2) // 10 and 12 on partition 0, 11 on partition 1
	before := r.snapshot(ctx)
	in := r.baseInput()
	in["drainTimeoutSeconds"] = 2
	res := r.run(ctx, in, Options{})
	if res.Status != "FAILED" || res.Error != "DrainTimeoutError" {
		t.Fatalf("status %s error %s", res.Status, res.Error)
	}
	for _, want := range []string{"failed in step WaitForDrain:", r.topic + "/0", r.topic + "/1", "removed DENY WRITE User:* on topic " + r.topic} {
		if !strings.Contains(res.Cause, want) {
			t.Errorf("cause lacks %q: %s", want, res.Cause)
		}
	}
	if err := r.appWrite(ctx); err != nil {
		t.Errorf("source not writable after rollback: %v", err)
	}
	after := r.snapshot(ctx)
	if !reflect.DeepEqual(before.ACLs, after.ACLs) || !reflect.DeepEqual(before.Mappings, after.Mappings) {
		t.Errorf("not restored:\nbefore %+v\nafter  %+v", before, after)
	}
	r.fail.set(false)
	r.waitReplicated(ctx) // replication resumes
}
