package cutover

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTranslateCommitFails: the target refuses the group's offset commit,
// or answers it without committing. TranslateOffsets fails with
// *OffsetCommitError naming the group (the refusal, or the partition that
// did not read back), nothing is committed on the target, and Rollback
// undoes exactly the fence and the pause.
func TestTranslateCommitFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		// code answers the commit of each partition.
		code int16
		want string
	}{
		{name: "refused", code: kerr.GroupAuthorizationFailed.Code, want: "GROUP_AUTHORIZATION_FAILED"},
		{name: "not applied", code: 0, want: "orders/0 reads back nothing, want 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProc(t)
			p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
			st := p.validate(procInput(""))
			for _, step := range []string{StepVerifySourceQuiet, StepFenceSource, StepWaitForDrain, StepPauseReplication, StepWaitForConsumersGone} {
				st = p.mustRun(step, st)
			}
			p.tgtC.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
				p.tgtC.KeepControl()
				r := req.(*kmsg.OffsetCommitRequest)
				if r.Group != procGroup {
					return nil, nil, false
				}
				resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
				for _, rt := range r.Topics {
					t := kmsg.NewOffsetCommitResponseTopic()
					t.Topic, t.TopicID = rt.Topic, rt.TopicID
					for _, rp := range rt.Partitions {
						pp := kmsg.NewOffsetCommitResponseTopicPartition()
						pp.Partition, pp.ErrorCode = rp.Partition, tc.code
						t.Partitions = append(t.Partitions, pp)
					}
					resp.Topics = append(resp.Topics, t)
				}
				return resp, nil, true
			})
			in, err := p.run(StepTranslateOffsets, st)
			var oc *OffsetCommitError
			if !errors.As(err, &oc) || oc.Group != procGroup || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("TranslateOffsets: %v, want *OffsetCommitError for %s saying %q", err, procGroup, tc.want)
			}
			if got := p.targetCommits(procGroup); got != [2]int64{-1, -1} {
				t.Errorf("target commits %v, want none", got)
			}
			p.wantRolledBack(p.rollback(StepTranslateOffsets, in, err), StepTranslateOffsets, "OffsetCommitError", wantFence, []string{"m1", "m2"})
		})
	}
}

// TestFenceRetriedAfterLostAnswer: FenceSource created the fence but its
// answer was lost, and Step Functions runs the task again with the same
// input. The retry creates nothing more, records every planned ACL as
// this run's (none was there at Validate), and Rollback removes them all.
func TestFenceRetriedAfterLostAnswer(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	st := p.validate(procInput(""))
	st = p.mustRun(StepVerifySourceQuiet, st)
	p.mustRun(StepFenceSource, st) // its answer is lost
	var creates atomic.Int32
	p.srcC.ControlKey(int16(kmsg.CreateACLs), func(kmsg.Request) (kmsg.Response, error, bool) {
		p.srcC.KeepControl()
		creates.Add(1)
		return nil, nil, false
	})
	out := p.mustRun(StepFenceSource, st)
	if n := creates.Load(); n != 0 {
		t.Errorf("the retry sent %d CreateAcls requests, want none", n)
	}
	if !slices.Equal(out.Run.Fence.Created, wantFence) || len(p.acls()) != len(wantFence) {
		t.Fatalf("the retry recorded %v, source has %v; want exactly %v", out.Run.Fence.Created, p.acls(), wantFence)
	}
	err := &DrainTimeoutError{Lagging: []string{"orders/0"}}
	p.wantRolledBack(p.rollback(StepWaitForDrain, out, err), StepWaitForDrain, "DrainTimeoutError", wantFence, nil)
}

// TestIAMFenceRetriedAfterLostAnswer: the same for the iam fence: the
// retry puts nothing, records a's and b's policies (put by the lost
// attempt) as this run's but not c's (there at Validate), and Rollback
// leaves every role as before the run.
func TestIAMFenceRetriedAfterLostAnswer(t *testing.T) {
	p, f := iamProc(t)
	before := f.policies()
	st := p.validate(iamInput(""))
	st = p.mustRun(StepVerifySourceQuiet, st)
	p.mustRun(StepFenceSource, st) // its answer is lost
	out := p.mustRun(StepFenceSource, st)
	if c := f.changed(); !slices.Equal(c, []string{"put " + roleA, "put " + roleB}) {
		t.Errorf("IAM changes %v, want the first attempt's two puts only", c)
	}
	if !reflect.DeepEqual(out.Run.Fence.Policies, []FencePolicy{fencePolicy(roleA), fencePolicy(roleB)}) {
		t.Fatalf("the retry recorded %v, want a's and b's policies", out.Run.Fence.Policies)
	}
	err := &DrainTimeoutError{Lagging: []string{"orders/0"}}
	p.wantRolledBack(p.rollback(StepWaitForDrain, out, err), StepWaitForDrain, "DrainTimeoutError", nil, nil)
	if after := f.policies(); !reflect.DeepEqual(after, before) {
		t.Errorf("roles' policies after rollback %v, want as before %v", after, before)
	}
}

// TestRollbackReportsRefusedACLDeletion: the source refuses to delete the
// fence's DENY ACLs (an authorizer's answer per deletion filter). Rollback
// fails with *RollbackIncompleteError giving the broker's reason for each
// topic, not only that the ACLs still read back, and the DENYs are still
// there for the operator to remove.
func TestRollbackReportsRefusedACLDeletion(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	st := p.validate(procInput(""))
	st = p.mustRun(StepVerifySourceQuiet, st)
	st = p.mustRun(StepFenceSource, st)
	var refused atomic.Int32
	p.srcC.ControlKey(int16(kmsg.DeleteACLs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		p.srcC.KeepControl()
		r := req.(*kmsg.DeleteACLsRequest)
		if len(r.Filters) == 0 || r.Filters[0].PermissionType != kmsg.ACLPermissionTypeDeny {
			return nil, nil, false
		}
		refused.Add(1)
		resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
		for range r.Filters {
			res := kmsg.NewDeleteACLsResponseResult()
			res.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			resp.Results = append(resp.Results, res)
		}
		return resp, nil, true
	})
	st = roundTrip(t, st)
	st.Failures = map[string]Failure{StepWaitForDrain: {Error: "DrainTimeoutError", Cause: "drain timed out"}}
	_, err := p.run(StepRollback, st)
	var ri *RollbackIncompleteError
	if !errors.As(err, &ri) {
		t.Fatalf("Rollback: %v, want *RollbackIncompleteError", err)
	}
	if refused.Load() == 0 {
		t.Fatal("no DENY deletion was refused: the test proves nothing")
	}
	for _, topic := range []string{procOrders, procPayments} {
		want := "deleting DENY ACLs on topic " + topic + ": the source refused: " + kerr.ClusterAuthorizationFailed.Error()
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Rollback's error does not give the broker's reason for %s (%q):\n%v", topic, want, err)
		}
	}
	var denies int
	for _, a := range p.acls() {
		if strings.HasPrefix(a, "DENY") {
			denies++
		}
	}
	if denies == 0 {
		t.Error("the DENY ACLs are gone although their deletion was refused")
	}
}
