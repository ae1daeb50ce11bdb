package cutover

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamfence"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
)

// fakeIAM keeps roles' inline policies in memory, reads back at once, and
// fails PutRolePolicy or DeleteRolePolicy on the roles a test names.
type fakeIAM struct {
	mu         sync.Mutex
	roles      map[string]map[string]string // role → policy name → document
	putFail    map[string]error
	deleteFail map[string]error
	// changes logs every PutRolePolicy and DeleteRolePolicy call, as
	// "put|delete role" with " failed" when it failed.
	changes []string
}

func newFakeIAM(roles ...string) *fakeIAM {
	f := &fakeIAM{roles: map[string]map[string]string{}, putFail: map[string]error{}, deleteFail: map[string]error{}}
	for _, r := range roles {
		f.roles[r] = map[string]string{}
	}
	return f
}

func noSuchEntity(what string) error {
	return &iamtypes.NoSuchEntityException{Message: aws.String("The " + what + " cannot be found.")}
}

func (f *fakeIAM) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := aws.ToString(in.RoleName)
	if _, ok := f.roles[r]; !ok {
		return nil, noSuchEntity("role with name " + r)
	}
	return &iam.GetRoleOutput{Role: &iamtypes.Role{RoleName: aws.String(r)}}, nil
}

func (f *fakeIAM) GetRolePolicy(_ context.Context, in *iam.GetRolePolicyInput, _ ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, n := aws.ToString(in.RoleName), aws.ToString(in.PolicyName)
	doc, ok := f.roles[r][n]
	if !ok {
		return nil, noSuchEntity("role policy with name " + n)
	}
	// IAM returns the document URL-encoded.
	return &iam.GetRolePolicyOutput{RoleName: in.RoleName, PolicyName: in.PolicyName, PolicyDocument: aws.String(url.QueryEscape(doc))}, nil
}

func (f *fakeIAM) PutRolePolicy(_ context.Context, in *iam.PutRolePolicyInput, _ ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := aws.ToString(in.RoleName)
	if err := f.putFail[r]; err != nil {
		f.changes = append(f.changes, "put "+r+" failed")
		return nil, err
	}
	if _, ok := f.roles[r]; !ok {
		return nil, noSuchEntity("role with name " + r)
	}
	f.roles[r][aws.ToString(in.PolicyName)] = aws.ToString(in.PolicyDocument)
	f.changes = append(f.changes, "put "+r)
	return &iam.PutRolePolicyOutput{}, nil
}

func (f *fakeIAM) DeleteRolePolicy(_ context.Context, in *iam.DeleteRolePolicyInput, _ ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, n := aws.ToString(in.RoleName), aws.ToString(in.PolicyName)
	if err := f.deleteFail[r]; err != nil {
		f.changes = append(f.changes, "delete "+r+" failed")
		return nil, err
	}
	if _, ok := f.roles[r][n]; !ok {
		return nil, noSuchEntity("role policy with name " + n)
	}
	delete(f.roles[r], n)
	f.changes = append(f.changes, "delete "+r)
	return &iam.DeleteRolePolicyOutput{}, nil
}

// policies copies every role's inline policies.
func (f *fakeIAM) policies() map[string]map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]map[string]string{}
	for r, ps := range f.roles {
		out[r] = maps.Clone(ps)
	}
	return out
}

func (f *fakeIAM) changed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.changes)
}

const (
	iamCluster = "arn:aws:kafka:us-east-1:123456789012:cluster/src-cluster/7d3b2a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b-3"
	roleA      = "producer-a"
	roleB      = "producer-b"
	roleC      = "producer-c"
	// operatorPolicy is an inline policy of the operator's on producer-a,
	// which nothing may touch.
	operatorPolicy = "operator-connect"
	operatorDoc    = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kafka-cluster:Connect"],"Resource":["*"]}]}`
)

func roleARN(r string) string { return "arn:aws:iam::123456789012:role/" + r }

// iamDoc is the fence's document on the run's topics.
func iamDoc(t *testing.T) string {
	t.Helper()
	arns, err := iamfence.TopicARNs(iamCluster, []string{procOrders, procPayments})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := iamfence.Document(arns)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// iamProc is newProc with an IAM-authenticated source fenced by IAM: roles
// a, b and c exist, a carries the operator's policy, c the fence policy
// already (from an earlier run), and the stack lets the cutover fence all
// three.
func iamProc(t *testing.T) (*proc, *fakeIAM) {
	t.Helper()
	p := newProc(t)
	f := newFakeIAM(roleA, roleB, roleC)
	f.roles[roleA][operatorPolicy] = operatorDoc
	f.roles[roleC][iamfence.PolicyName] = iamDoc(t)
	p.h = p.handlerWith(Deps{SourceAuth: kafkaconn.AuthIAM, IAM: f, SourceClusterArn: iamCluster,
		ProducerRoleArns: []string{roleARN(roleA), roleARN(roleB), roleARN(roleC)}})
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	return p, f
}

func iamInput(extra string) string {
	return `{"topics":["orders","payments"],"groups":["billing"],"fence":"iam","producerRoles":["` + roleARN(roleA) + `","` + roleB + `","` + roleC + `"],` +
		`"quietSeconds":2,"pollSeconds":1,"drainTimeoutSeconds":10,"consumersTimeoutSeconds":5,"mappingTimeoutSeconds":30` + extra + `}`
}

func fencePolicy(role string) FencePolicy {
	return FencePolicy{Role: role, PolicyName: iamfence.PolicyName}
}

// TestIAMFenceAppliedAndRolledBack: FenceSource puts the deny policy,
// exactly the fence document, on the roles that lack it (a and b) and
// records exactly those; c's identical policy, there before, is left
// alone and not recorded; a's other policy is untouched. When a later
// step fails, Rollback deletes exactly the two policies it put: every
// role's policies are then exactly as before the run.
func TestIAMFenceAppliedAndRolledBack(t *testing.T) {
	p, f := iamProc(t)
	before := f.policies()
	st := p.validate(iamInput(""))
	if st.Config.Fence != FenceKindIAM || !reflect.DeepEqual(st.Run.Fence.ExistingPolicies, []FencePolicy{fencePolicy(roleC)}) {
		t.Fatalf("Validate: fence %s, existing %v; want iam with c's policy existing", st.Config.Fence, st.Run.Fence.ExistingPolicies)
	}
	if c := f.changed(); len(c) != 0 {
		t.Fatalf("Validate changed IAM: %v", c)
	}
	st = p.mustRun(StepVerifySourceQuiet, st)
	st = p.mustRun(StepFenceSource, st)
	fence := st.Run.Fence
	if !fence.Applied || !reflect.DeepEqual(fence.Policies, []FencePolicy{fencePolicy(roleA), fencePolicy(roleB)}) || fence.PolicyDocument != iamDoc(t) {
		t.Fatalf("fence record %+v; want a's and b's policies recorded with the document", fence)
	}
	now := f.policies()
	for _, r := range []string{roleA, roleB, roleC} {
		if now[r][iamfence.PolicyName] != iamDoc(t) {
			t.Errorf("role %s's fence policy %q, want exactly %s", r, now[r][iamfence.PolicyName], iamDoc(t))
		}
	}
	if now[roleA][operatorPolicy] != operatorDoc || len(now[roleA]) != 2 {
		t.Errorf("role a's policies %v, want the operator's untouched beside the fence", now[roleA])
	}
	if a := p.acls(); len(a) != 0 {
		t.Errorf("the iam fence created ACLs %v", a)
	}
	if c := f.changed(); !slices.Equal(c, []string{"put " + roleA, "put " + roleB}) {
		t.Errorf("IAM changes %v, want exactly a put on a and on b", c)
	}

	// The replicator lags: WaitForDrain times out and Rollback runs.
	p.commit(p.srcAdm, "m1", map[int32]int64{0: 7, 1: 4})
	in, err := p.run(StepWaitForDrain, st)
	var dt *DrainTimeoutError
	if !errors.As(err, &dt) {
		t.Fatalf("WaitForDrain: %v, want *DrainTimeoutError", err)
	}
	out := p.rollback(StepWaitForDrain, in, err)
	p.wantRolledBack(out, StepWaitForDrain, "DrainTimeoutError", nil, nil)
	if !reflect.DeepEqual(out.Rollback.RemovedPolicies, []FencePolicy{fencePolicy(roleA), fencePolicy(roleB)}) {
		t.Errorf("removed policies %v, want exactly a's and b's", out.Rollback.RemovedPolicies)
	}
	if after := f.policies(); !reflect.DeepEqual(after, before) {
		t.Errorf("roles' policies after rollback %v, want exactly as before the run %v", after, before)
	}
	for _, want := range []string{"removed IAM policy " + iamfence.PolicyName + " on role " + roleA, "removed IAM policy " + iamfence.PolicyName + " on role " + roleB} {
		if !strings.Contains(out.Rollback.Cause, want) {
			t.Errorf("cause %q does not say %q", out.Rollback.Cause, want)
		}
	}
	if strings.Contains(out.Rollback.Cause, roleC) {
		t.Errorf("cause %q names role c, whose policy the run did not put", out.Rollback.Cause)
	}
}

// TestHalfAppliedIAMFence: IAM refuses the put on b after the put on a.
// FenceSource removes the policy it put on a before it fails with
// *FenceFailedError, so the roles are as before and Rollback, given the
// failed task's input, has nothing to remove and removes nothing.
func TestHalfAppliedIAMFence(t *testing.T) {
	p, f := iamProc(t)
	before := f.policies()
	st := p.validate(iamInput(""))
	st = p.mustRun(StepVerifySourceQuiet, st)
	f.putFail[roleB] = errors.New("AccessDenied: not authorized to perform iam:PutRolePolicy")
	in, err := p.run(StepFenceSource, st)
	var ff *FenceFailedError
	var ae *iamfence.ApplyError
	if !errors.As(err, &ff) || !errors.As(err, &ae) || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("FenceSource: %v, want *FenceFailedError wrapping the refusal", err)
	}
	if c := f.changed(); !slices.Equal(c, []string{"put " + roleA, "put " + roleB + " failed", "delete " + roleA}) {
		t.Errorf("IAM changes %v, want a put, b refused, a's policy deleted again", c)
	}
	if after := f.policies(); !reflect.DeepEqual(after, before) {
		t.Errorf("roles' policies after the failed fence %v, want as before %v", after, before)
	}
	out := p.rollback(StepFenceSource, in, err)
	p.wantRolledBack(out, StepFenceSource, "FenceFailedError", nil, nil)
	if len(out.Rollback.RemovedPolicies) != 0 || len(f.changed()) != 3 {
		t.Errorf("Rollback removed %v (IAM changes %v), want nothing: FenceSource undid its own change", out.Rollback.RemovedPolicies, f.changed())
	}
	if after := f.policies(); !reflect.DeepEqual(after, before) {
		t.Errorf("roles' policies after rollback %v, want as before %v", after, before)
	}
}

// TestHalfAppliedIAMFenceUndoFails: b's put is refused and a's policy
// cannot be deleted again either. FenceSource fails with
// *RollbackIncompleteError naming a's policy. Rollback, given
// FenceSource's input (which does not record a's policy), fails too, with
// a *RollbackIncompleteError naming what FenceSource left, instead of
// ending the run as rolled back: the operator knows what to remove.
func TestHalfAppliedIAMFenceUndoFails(t *testing.T) {
	p, f := iamProc(t)
	st := p.validate(iamInput(""))
	st = p.mustRun(StepVerifySourceQuiet, st)
	f.putFail[roleB] = errors.New("AccessDenied: not authorized to perform iam:PutRolePolicy")
	f.deleteFail[roleA] = errors.New("AccessDenied: not authorized to perform iam:DeleteRolePolicy")
	in, err := p.run(StepFenceSource, st)
	var ri *RollbackIncompleteError
	if !errors.As(err, &ri) || !strings.Contains(err.Error(), "inline policy "+iamfence.PolicyName+" on role "+roleA+": deleting") {
		t.Fatalf("FenceSource: %v, want *RollbackIncompleteError naming a's policy", err)
	}
	if _, ok := f.policies()[roleA][iamfence.PolicyName]; !ok {
		t.Fatal("a's policy is gone: the test needs the undo to fail")
	}
	// Rollback gets FenceSource's input, which does not record a's
	// policy: it must not end the run as rolled back, and its own
	// RollbackIncompleteError names what FenceSource left.
	in = roundTrip(t, in)
	in.Failures = map[string]Failure{StepFenceSource: {Error: "RollbackIncompleteError", Cause: err.Error()}}
	_, rerr := p.run(StepRollback, in)
	if !errors.As(rerr, &ri) || !strings.Contains(rerr.Error(), "left in place by FenceSource") || !strings.Contains(rerr.Error(), "role "+roleA) {
		t.Errorf("Rollback: %v, want *RollbackIncompleteError naming a's policy left in place by FenceSource", rerr)
	}
}

// TestIAMRollbackLeavesAChangedPolicy: a fence policy whose document was
// changed after FenceSource put it is not the run's any more: Rollback
// deletes the other one, leaves it in place and fails with
// *RollbackIncompleteError naming it.
func TestIAMRollbackLeavesAChangedPolicy(t *testing.T) {
	p, f := iamProc(t)
	st := p.validate(iamInput(""))
	st = p.mustRun(StepVerifySourceQuiet, st)
	st = p.mustRun(StepFenceSource, st)
	f.roles[roleB][iamfence.PolicyName] = operatorDoc
	st = roundTrip(t, st)
	st.Failures = map[string]Failure{StepWaitForDrain: {Error: "DrainTimeoutError", Cause: "drain timed out"}}
	_, err := p.run(StepRollback, st)
	var ri *RollbackIncompleteError
	if !errors.As(err, &ri) || !strings.Contains(err.Error(), "role "+roleB+": its document is not the one recorded, left in place") {
		t.Fatalf("Rollback: %v, want *RollbackIncompleteError naming b's changed policy", err)
	}
	now := f.policies()
	if _, ok := now[roleA][iamfence.PolicyName]; ok || now[roleB][iamfence.PolicyName] != operatorDoc {
		t.Errorf("after rollback a has %v and b %v; want a's fence gone and b's changed policy kept", now[roleA], now[roleB])
	}
}

// TestIAMDryRun: the dry run of an iam fence names the policies a real run
// puts (a, b) and those already there (c), and changes nothing in IAM.
func TestIAMDryRun(t *testing.T) {
	p, f := iamProc(t)
	before := f.policies()
	st := p.validate(iamInput(`,"dryRun":true`))
	out, err := p.h.Handle(p.ctx, Request{Step: StepPlan, State: roundTrip(t, st)})
	if err != nil {
		t.Fatal(err)
	}
	pl := out.(*Report).Plan
	if !reflect.DeepEqual(pl.PoliciesToCreate, []FencePolicy{fencePolicy(roleA), fencePolicy(roleB)}) ||
		!reflect.DeepEqual(pl.PoliciesExisting, []FencePolicy{fencePolicy(roleC)}) || len(pl.ACLsToCreate) != 0 {
		t.Errorf("plan: policies to create %v, existing %v, ACLs %v", pl.PoliciesToCreate, pl.PoliciesExisting, pl.ACLsToCreate)
	}
	if c := f.changed(); len(c) != 0 || !reflect.DeepEqual(f.policies(), before) {
		t.Errorf("the dry run changed IAM: %v", c)
	}
}

// TestIAMFenceRefusedAtValidate: Validate refuses, with
// *InvalidInputError on producerRoles and nothing changed, a role the
// stack does not let the cutover fence, a role that does not exist and a
// role with a different policy under the fence's name.
func TestIAMFenceRefusedAtValidate(t *testing.T) {
	for _, tc := range []struct {
		name, roles, problem string
		setup                func(f *fakeIAM)
	}{
		{name: "role not in the stack", roles: `"producer-x"`, problem: "is not one the stack lets the cutover fence"},
		{name: "role missing", roles: `"` + roleB + `"`, problem: roleB, setup: func(f *fakeIAM) { delete(f.roles, roleB) }},
		{name: "different policy", roles: `"` + roleB + `"`, problem: iamfence.PolicyName, setup: func(f *fakeIAM) {
			f.roles[roleB][iamfence.PolicyName] = operatorDoc
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, f := iamProc(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			in := strings.Replace(iamInput(""), `"producerRoles":["`+roleARN(roleA)+`","`+roleB+`","`+roleC+`"]`, `"producerRoles":[`+tc.roles+`]`, 1)
			_, err := p.h.Handle(p.ctx, Request{Step: StepValidate, Input: []byte(in)})
			var ie *InvalidInputError
			if !errors.As(err, &ie) || !strings.HasPrefix(ie.Field, "producerRoles") || !strings.Contains(ie.Problem, tc.problem) {
				t.Fatalf("Validate: %v, want *InvalidInputError on producerRoles mentioning %q", err, tc.problem)
			}
			if c := f.changed(); len(c) != 0 {
				t.Errorf("Validate changed IAM: %v", c)
			}
		})
	}
}
