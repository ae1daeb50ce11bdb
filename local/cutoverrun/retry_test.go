package cutoverrun

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// handler is the cutover function's handler on the rig's clusters and
// mappings, as Run builds it, called directly rather than through the
// state machine.
func (r *rig) handler(t *testing.T, o Options) *cutover.Handler {
	t.Helper()
	o.Source, o.Target, o.Mappings = r.pair.Source, r.pair.Target, r.reg
	fn, err := startFunction(o, r.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fn.close)
	return fn.h
}

// TestFenceSourceRetried: Step Functions runs a task again when its answer
// is lost (a Lambda service error, a timed-out invocation that went on
// working). FenceSource run twice on the same state must still record
// every ACL the run added, so that Rollback removes exactly those.
func TestFenceSourceRetried(t *testing.T) {
	testFenceSourceRetried(t, newRig(t, kafkalocal.SecuritySCRAMACL, 1), 1, Options{})
}

// TestRealKafkaOpenSourceFenceRetried: the same on the open source, where
// the fence's own ALLOW makes the topic look as if it had ACLs of its own.
func TestRealKafkaOpenSourceFenceRetried(t *testing.T) {
	testFenceSourceRetried(t, newRealProfileRig(t, realkafka.ProfileOpen, 1), 2, Options{})
}

// TestIAMFenceRetried: the same for the iam fence, whose first attempt's
// policies look, to the retry, like an operator's identical ones.
func TestIAMFenceRetried(t *testing.T) {
	ir := newIAMRig(t)
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 1)
	r.input = map[string]any{"fence": "iam", "producerRoles": []string{"orders-producer", "billing-producer"}}
	testFenceSourceRetried(t, r, 0, ir.options())
	ir.wantFence(t) // rollback removed both policies
}

func testFenceSourceRetried(t *testing.T, r *rig, wantACLs int, o Options) {
	ctx := ctxFor(t, time.Minute)
	before := r.snapshot(ctx)
	h := r.handler(t, o)
	in, _ := json.Marshal(r.baseInput())
	out, err := h.Handle(ctx, cutover.Request{Step: cutover.StepValidate, Input: in})
	if err != nil {
		t.Fatal(err)
	}
	validated, _ := json.Marshal(out) // the state as the state machine carries it
	fence := func() *cutover.State {
		t.Helper()
		var st cutover.State
		if err := json.Unmarshal(validated, &st); err != nil {
			t.Fatal(err)
		}
		out, err := h.Handle(ctx, cutover.Request{Step: cutover.StepFenceSource, State: &st})
		if err != nil {
			t.Fatal(err)
		}
		return out.(*cutover.State)
	}
	fence() // its answer is lost
	st := fence()
	if f := st.Run.Fence; !f.Applied || len(f.Created) != wantACLs || len(f.Existing) != 0 || len(f.ExistingPolicies) != 0 ||
		(f.Kind == cutover.FenceKindIAM && len(f.Policies) != 2) {
		t.Fatalf("retried FenceSource recorded %+v, want what the run added (%d ACLs, or 2 policies for iam) as created", f, wantACLs)
	}
	st.Failures = map[string]cutover.Failure{cutover.StepWaitForDrain: {Error: "DrainTimeoutError", Cause: "test"}}
	if _, err := h.Handle(ctx, cutover.Request{Step: cutover.StepRollback, State: st}); err != nil {
		t.Fatal(err)
	}
	if after := r.snapshot(ctx); !reflect.DeepEqual(before.ACLs, after.ACLs) {
		t.Errorf("ACLs after rollback:\nbefore %v\nafter  %v", before.ACLs, after.ACLs)
	}
}
