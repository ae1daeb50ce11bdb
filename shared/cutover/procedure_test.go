package cutover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provenance"
)

// The tests in this file drive the Handler step by step, as the state
// machine calls it, against two kfake clusters and fakeLambda, with no
// interpreter: each step gets the previous step's output after a JSON
// round trip, a polling step is polled until done with the clock moved to
// $.loop.next in between, and a failed step's Catch hands Rollback the
// failed task's input with the failure recorded under $.failures.<step>.
//
// The data: topic orders has two partitions. Source partition 0 holds
// offsets 0-9 and the replicator copied 3-9 to target offsets 0-6 (its
// mapping started after offset 2), so source offset s is target offset
// s-3; partition 1 holds 0-3 on both. Topic payments is empty and read by
// a second mapping. Each mapping's group is its UUID.

const (
	procOrders   = "orders"
	procPayments = "payments"
	procGroup    = "billing"
)

type proc struct {
	t              *testing.T
	ctx            context.Context
	srcC, tgtC     *kfake.Cluster
	src, tgt       *kgo.Client
	srcAdm, tgtAdm *kadm.Client
	f              *fakeLambda
	h              *Handler
	// between, when set, runs between two polls of a polling step.
	between func()
}

func newProc(t *testing.T) *proc {
	t.Helper()
	p := &proc{t: t, ctx: context.Background()}
	p.srcC, p.src, p.srcAdm = procCluster(t)
	p.tgtC, p.tgt, p.tgtAdm = procCluster(t)
	p.f = newFakeLambda(t0)
	p.f.topics = map[string][]string{"m1": {procOrders}, "m2": {procPayments}}
	p.f.add("m1", "Enabled", 10*time.Second)
	p.f.add("m2", "Enabled", 10*time.Second)
	p.h = New(Deps{Source: p.src, Target: p.tgt, Lambda: p.f, ReplicatorFunction: "replicator", Clock: p.f.clk,
		Log: slog.New(slog.DiscardHandler)})

	for i := range 10 {
		p.produce(p.src, procOrders, 0, fmt.Sprint("o0-", i), nil)
	}
	for i := range 4 {
		p.produce(p.src, procOrders, 1, fmt.Sprint("o1-", i), nil)
	}
	for s := 3; s < 10; s++ {
		p.produce(p.tgt, procOrders, 0, fmt.Sprint("o0-", s), &provenance.Source{Topic: procOrders, Partition: 0, Offset: int64(s)})
	}
	for s := range 4 {
		p.produce(p.tgt, procOrders, 1, fmt.Sprint("o1-", s), &provenance.Source{Topic: procOrders, Partition: 1, Offset: int64(s)})
	}
	p.commit(p.srcAdm, "m1", map[int32]int64{0: 10, 1: 4})
	return p
}

func procCluster(t *testing.T) (*kfake.Cluster, *kgo.Client, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, procOrders, procPayments))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl, kadm.NewClient(cl)
}

func (p *proc) produce(cl *kgo.Client, topic string, part int32, value string, from *provenance.Source) {
	p.t.Helper()
	r := &kgo.Record{Topic: topic, Partition: part, Value: []byte(value)}
	if from != nil {
		r.Headers = []kgo.RecordHeader{{Key: provenance.HeaderKey, Value: from.Append(nil)}}
	}
	if err := cl.ProduceSync(p.ctx, r).FirstErr(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *proc) commit(adm *kadm.Client, group string, at map[int32]int64) {
	p.t.Helper()
	os := kadm.Offsets{}
	for part, o := range at {
		os.Add(kadm.Offset{Topic: procOrders, Partition: part, At: o, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(p.ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		p.t.Fatal(err)
	}
}

// member joins group on c as a consumer of orders that never commits, and
// leaves when the test ends.
func (p *proc) member(c *kfake.Cluster, group string) {
	p.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(procOrders),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	for range 200 {
		poll(p.ctx, cl)
		d, err := adm.DescribeGroups(p.ctx, group)
		if err == nil && len(d[group].Members) > 0 && d[group].State == "Stable" {
			return
		}
	}
	p.t.Fatalf("group %s never became Stable", group)
}

// poll polls cl for at most 50 ms.
func poll(ctx context.Context, cl *kgo.Client) kgo.Fetches {
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	return cl.PollFetches(ctx)
}

// validate runs Validate on input.
func (p *proc) validate(input string) *State {
	p.t.Helper()
	out, err := p.h.Handle(p.ctx, Request{Step: StepValidate, Input: []byte(input), Execution: "run-1"})
	if err != nil {
		p.t.Fatalf("Validate: %v", err)
	}
	return out.(*State)
}

// run runs step to its end (every poll of a polling step) on st and
// returns its output, or the failed task's input and its error.
func (p *proc) run(step string, st *State) (*State, error) {
	p.t.Helper()
	switch step {
	case StepFenceSource, StepTranslateOffsets:
		out, err := p.h.Handle(p.ctx, Request{Step: step, State: roundTrip(p.t, st)})
		if err != nil {
			return st, err
		}
		return out.(*State), nil
	}
	out, err, _ := p.drive(step, st)
	return out, err
}

// drive polls step as the state machine's Task + Choice + Wait loop does
// (see drive), running p.between in each Wait, and returns the last good
// state, the error that ended the loop and the number of polls.
func (p *proc) drive(step string, st *State) (*State, error, int) {
	p.t.Helper()
	for polls := 1; polls <= 200; polls++ {
		out, err := p.h.Handle(p.ctx, Request{Step: step, State: roundTrip(p.t, st)})
		if err != nil {
			return st, err, polls
		}
		st = out.(*State)
		if st.Loop.Done {
			return st, nil, polls
		}
		if p.between != nil {
			p.between()
		}
		p.f.advanceTo(st.Loop.Next)
	}
	p.t.Fatalf("%s not done after 200 polls", step)
	return nil, nil, 0
}

// mustRun runs step and fails the test if it fails.
func (p *proc) mustRun(step string, st *State) *State {
	p.t.Helper()
	out, err := p.run(step, st)
	if err != nil {
		p.t.Fatalf("%s: %v", step, err)
	}
	return out
}

// rollback records err as step's failure, as the Catch does, and runs
// Rollback to its end.
func (p *proc) rollback(step string, st *State, err error) *State {
	p.t.Helper()
	st = roundTrip(p.t, st)
	st.Failures = map[string]Failure{step: {Error: reflect.TypeOf(err).Elem().Name(), Cause: err.Error()}}
	st, rerr := p.run(StepRollback, st)
	if rerr != nil {
		p.t.Fatalf("Rollback after %s: %v", step, rerr)
	}
	return st
}

// acls lists every ACL on the source.
func (p *proc) acls() []string {
	p.t.Helper()
	res, err := p.srcAdm.DescribeACLs(p.ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).
		Allow().AllowHosts().Deny().DenyHosts().Operations())
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, r := range res {
		if r.Err != nil {
			p.t.Fatal(r.Err)
		}
		for _, d := range r.Described {
			out = append(out, fmt.Sprintf("%v %v %s %s %v", d.Permission, d.Operation, d.Principal, d.Name, d.Pattern))
		}
	}
	slices.Sort(out)
	return out
}

// targetCommits is group's commits on the target's orders partitions (-1:
// none).
func (p *proc) targetCommits(group string) [2]int64 {
	p.t.Helper()
	o, err := p.tgtAdm.FetchOffsets(p.ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		p.t.Fatal(err)
	}
	out := [2]int64{-1, -1}
	for part := range int32(2) {
		if c, ok := committed(o, procOrders, part); ok {
			out[part] = c
		}
	}
	return out
}

func procInput(extra string) string {
	return `{"topics":["orders","payments"],"groups":["billing"],"fence":"acl","allowEveryoneIfNoAclFound":true,` +
		`"quietSeconds":2,"pollSeconds":1,"drainTimeoutSeconds":10,"consumersTimeoutSeconds":5,"mappingTimeoutSeconds":30` + extra + `}`
}

// wantRolledBack checks what every rollback must leave: no ACL on the
// source, both mappings Enabled, exactly the fence ACLs and mappings the
// run recorded undone, and the cause naming the failed step.
func (p *proc) wantRolledBack(st *State, step string, errName string, created []FenceACL, disabled []string) {
	p.t.Helper()
	if a := p.acls(); len(a) != 0 {
		p.t.Errorf("ACLs left on the source after rollback: %v", a)
	}
	for _, u := range []string{"m1", "m2"} {
		if s := p.f.state(u); s != "Enabled" {
			p.t.Errorf("mapping %s reads %s after rollback, want Enabled", u, s)
		}
	}
	r := st.Rollback
	if r.FailedStep != step || r.Error != errName {
		p.t.Errorf("rollback of %s (%s), want %s (%s)", r.FailedStep, r.Error, step, errName)
	}
	if !reflect.DeepEqual(r.RemovedACLs, append([]FenceACL{}, created...)) {
		p.t.Errorf("removed ACLs %v, want exactly %v", r.RemovedACLs, created)
	}
	if !slices.Equal(r.ReenabledMappings, append([]string{}, disabled...)) {
		p.t.Errorf("re-enabled mappings %v, want exactly %v", r.ReenabledMappings, disabled)
	}
	if !strings.HasPrefix(r.Cause, "cutover failed in step "+step+": ") {
		p.t.Errorf("cause %q does not name step %s", r.Cause, step)
	}
}

// wantFence is the fence Validate plans on the data above: an ALLOW
// (no ACL matches the topics and the input says the source allows
// everyone then) and a DENY WRITE per topic.
var wantFence = []FenceACL{allowAll(procOrders), allowAll(procPayments), denyWrite(procOrders), denyWrite(procPayments)}

// TestProcedureTranslatesExactly: Validate through Report on kfake. The
// fence is exactly the planned ACLs, both mappings end Disabled, and the
// group's source commits land on the target exactly:
// a lagging commit (8 of 10, allowed by allowLaggingGroups) at target
// offset 5, where source offset 8 was copied; a caught-up commit (4 of
// 4) at the target's end. The group then resumes on the target at the
// record after its last one on the source, VerifyTarget sees it commit
// past the translated point, and the report says so.
func TestProcedureTranslatesExactly(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 8, 1: 4})
	st := p.validate(procInput(`,"allowLaggingGroups":true`))
	if !slices.Equal(st.Config.Topics, []string{procOrders, procPayments}) || !slices.Equal(st.Run.Fence.Planned, wantFence) {
		t.Fatalf("Validate: topics %v, planned fence %v", st.Config.Topics, st.Run.Fence.Planned)
	}
	for _, step := range []string{StepVerifySourceQuiet, StepFenceSource, StepWaitForDrain, StepPauseReplication, StepWaitForConsumersGone, StepTranslateOffsets} {
		st = p.mustRun(step, st)
	}
	if !slices.Equal(st.Run.Fence.Created, wantFence) || len(p.acls()) != len(wantFence) {
		t.Errorf("fence created %v, source ACLs %v; want exactly %v", st.Run.Fence.Created, p.acls(), wantFence)
	}
	if p.f.state("m1") != "Disabled" || p.f.state("m2") != "Disabled" || !slices.Equal(st.Run.Disabled, []string{"m1", "m2"}) {
		t.Errorf("mappings m1 %s, m2 %s, recorded %v; want both Disabled and recorded", p.f.state("m1"), p.f.state("m2"), st.Run.Disabled)
	}
	if got := p.targetCommits(procGroup); got != [2]int64{5, 4} {
		t.Errorf("target commits of %s %v, want [5 4]", procGroup, got)
	}
	if len(st.Run.Groups) != 1 || st.Run.Groups[0].Status != GroupTranslated {
		t.Errorf("groups %+v, want %s translated", st.Run.Groups, procGroup)
	}

	// The group starts on the target where it stopped on the source: it
	// reads source offsets 8 and 9 (target 5 and 6) and commits past the
	// translated point, which VerifyTarget waits for; the report follows,
	// with payments, where the group never committed, left alone (-1).
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.tgtC.ListenAddrs()...), kgo.ConsumerGroup(procGroup), kgo.ConsumeTopics(procOrders), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var read []string
	for i := 0; len(read) < 2 && i < 200; i++ {
		poll(p.ctx, cl).EachRecord(func(r *kgo.Record) { read = append(read, string(r.Value)) })
	}
	if !slices.Equal(read, []string{"o0-8", "o0-9"}) {
		t.Fatalf("the group read %v on the target, want [o0-8 o0-9]", read)
	}
	if err := cl.CommitUncommittedOffsets(p.ctx); err != nil {
		t.Fatal(err)
	}
	st = p.mustRun(StepVerifyTarget, st)
	out, err := p.h.Handle(p.ctx, Request{Step: StepReport, State: roundTrip(t, st)})
	if err != nil {
		t.Fatal(err)
	}
	r := out.(*Report)
	if r.Outcome != "succeeded" || !slices.Equal(r.Paused, []string{"m1", "m2"}) || len(r.Fence.Remains) != len(wantFence) ||
		len(r.Groups) != 1 || !r.Groups[0].Verified {
		t.Errorf("report: outcome %s, paused %v, fence remains %v, groups %+v", r.Outcome, r.Paused, r.Fence.Remains, r.Groups)
	}
	translated := map[string]int64{}
	for _, g := range r.Groups {
		for _, gp := range g.Partitions {
			translated[tp(gp.Topic, gp.Partition)] = gp.TargetOffset
		}
	}
	if want := map[string]int64{"orders/0": 5, "orders/1": 4, "payments/0": -1, "payments/1": -1}; !maps.Equal(translated, want) {
		t.Errorf("report's translations %v, want %v", translated, want)
	}
}

// TestProcedureCaughtUpGroup: a group that read everything (10 of 10 and
// 4 of 4) is committed at the target's ends, 7 and 4, and the drain does
// not need allowLaggingGroups.
func TestProcedureCaughtUpGroup(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	st := p.validate(procInput(""))
	for _, step := range []string{StepVerifySourceQuiet, StepFenceSource, StepWaitForDrain, StepPauseReplication, StepWaitForConsumersGone, StepTranslateOffsets} {
		st = p.mustRun(step, st)
	}
	if got := p.targetCommits(procGroup); got != [2]int64{7, 4} {
		t.Errorf("target commits of %s %v, want [7 4]", procGroup, got)
	}
}

// TestProcedureLaggingGroupRefused: without allowLaggingGroups, a group
// that lags (8 of 10) with no member on the source can never catch up, so
// WaitForDrain refuses at its first poll, naming the group and partition,
// and Rollback removes the fence.
func TestProcedureLaggingGroupRefused(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 8, 1: 4})
	st := p.validate(procInput(""))
	for _, step := range []string{StepVerifySourceQuiet, StepFenceSource} {
		st = p.mustRun(step, st)
	}
	st, err := p.run(StepWaitForDrain, st)
	var lg *LaggingGroupError
	if !errors.As(err, &lg) || lg.Group != procGroup || !slices.Equal(lg.Partitions, []string{"orders/0 committed 8 of 10"}) {
		t.Fatalf("WaitForDrain: %v, want *LaggingGroupError for %s on orders/0 committed 8 of 10", err, procGroup)
	}
	if st.Loop != nil && st.Loop.Step == StepWaitForDrain {
		t.Errorf("WaitForDrain polled %d times before refusing; want the first poll", st.Loop.Polls)
	}
	p.wantRolledBack(p.rollback(StepWaitForDrain, st, err), StepWaitForDrain, "LaggingGroupError", wantFence, nil)
	if got := p.targetCommits(procGroup); got != [2]int64{-1, -1} {
		t.Errorf("target commits %v after a refused run, want none", got)
	}
}

// TestRollbackFromEveryStepInGo makes each step from VerifySourceQuiet
// through TranslateOffsets fail for a real reason and proves that
// Rollback, given what the state machine gives it, removes exactly the
// ACLs the run created, re-enables exactly the mappings it disabled, and
// leaves the source with no ACL and both mappings Enabled.
func TestRollbackFromEveryStepInGo(t *testing.T) {
	for _, tc := range []struct {
		step    string
		errName string
		// before makes step fail; it runs after the steps before step.
		before func(p *proc)
		// failed, when set, checks the clusters and mappings as the
		// failed step left them.
		failed   func(t *testing.T, p *proc, err error)
		created  []FenceACL
		disabled []string
	}{
		{step: StepVerifySourceQuiet, errName: "SourceNotQuietError", before: func(p *proc) {
			// A producer writes in every quiet window.
			p.between = func() { p.produce(p.src, procOrders, 1, "late", nil) }
		}},
		{step: StepFenceSource, errName: "FenceFailedError", before: func(p *proc) { refuseDenies(p, new(atomic.Int32), new(atomic.Int32)) }},
		{step: StepWaitForDrain, errName: "DrainTimeoutError", created: wantFence, before: func(p *proc) {
			p.commit(p.srcAdm, "m1", map[int32]int64{0: 7, 1: 4}) // the replicator lags
		}},
		{step: StepPauseReplication, errName: "PauseFailedError", created: wantFence, disabled: []string{"m1", "m2"}, before: func(p *proc) {
			p.f.refuse["m2"] = errors.New("AccessDeniedException: not authorized to perform lambda:UpdateEventSourceMapping")
		}, failed: func(t *testing.T, p *proc, err error) {
			// A half-finished pause: m1 was disabled, m2 refused.
			if s1, s2 := p.f.state("m1"), p.f.state("m2"); s1 != "Disabling" || s2 != "Enabled" || !strings.Contains(err.Error(), "mapping m2 could not be disabled") {
				t.Fatalf("m1 %s, m2 %s, %v; want m1 Disabling, m2 Enabled and refused", s1, s2, err)
			}
		}},
		{step: StepWaitForConsumersGone, errName: "ConsumersActiveError", created: wantFence, disabled: []string{"m1", "m2"}, before: func(p *proc) {
			p.member(p.srcC, procGroup)
		}, failed: func(t *testing.T, _ *proc, err error) {
			if !strings.Contains(err.Error(), procGroup+" (Stable, 1 members)") {
				t.Errorf("%v does not name the active group", err)
			}
		}},
		{step: StepTranslateOffsets, errName: "GroupActiveOnTargetError", created: wantFence, disabled: []string{"m1", "m2"}, before: func(p *proc) {
			p.member(p.tgtC, procGroup)
		}},
	} {
		t.Run(tc.step, func(t *testing.T) {
			p := newProc(t)
			p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
			st := p.validate(procInput(""))
			order := []string{StepVerifySourceQuiet, StepFenceSource, StepWaitForDrain, StepPauseReplication, StepWaitForConsumersGone, StepTranslateOffsets}
			for _, step := range order[:slices.Index(order, tc.step)] {
				st = p.mustRun(step, st)
			}
			tc.before(p)
			in, err := p.run(tc.step, st)
			if err == nil || reflect.TypeOf(err).Elem().Name() != tc.errName {
				t.Fatalf("%s: %v, want *%s", tc.step, err, tc.errName)
			}
			if tc.failed != nil {
				tc.failed(t, p, err)
			}
			p.between = nil
			p.wantRolledBack(p.rollback(tc.step, in, err), tc.step, tc.errName, tc.created, tc.disabled)
		})
	}
}

// refuseDenies makes the source refuse every CreateAcls request that
// creates a DENY, as a broker whose authorizer refuses it would, counting
// in allows the requests creating ALLOWs (served) and in denies those
// refused.
func refuseDenies(p *proc, allows, denies *atomic.Int32) {
	p.srcC.ControlKey(int16(kmsg.CreateACLs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		p.srcC.KeepControl()
		r := req.(*kmsg.CreateACLsRequest)
		if len(r.Creations) == 0 || r.Creations[0].PermissionType != kmsg.ACLPermissionTypeDeny {
			allows.Add(1)
			return nil, nil, false
		}
		denies.Add(1)
		resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
		for range r.Creations {
			c := kmsg.NewCreateACLsResponseResult()
			c.ErrorCode = kerr.PolicyViolation.Code
			resp.Results = append(resp.Results, c)
		}
		return resp, nil, true
	})
}

// TestHalfCreatedFence: the source creates the fence's ALLOW ACLs, then
// refuses its DENY ACLs. FenceSource removes the ALLOWs it created before
// failing with *FenceFailedError, so the source is as before and Rollback
// has nothing to remove.
func TestHalfCreatedFence(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	st := p.validate(procInput(""))
	st = p.mustRun(StepVerifySourceQuiet, st)
	var allows, refused atomic.Int32
	refuseDenies(p, &allows, &refused)
	in, err := p.run(StepFenceSource, st)
	var ff *FenceFailedError
	if !errors.As(err, &ff) || !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("FenceSource: %v, want *FenceFailedError wrapping POLICY_VIOLATION", err)
	}
	if allows.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("%d ALLOW and %d DENY creations seen; the test needs the ALLOWs created and the DENYs refused", allows.Load(), refused.Load())
	}
	if a := p.acls(); len(a) != 0 {
		t.Errorf("FenceSource failed and left %v on the source", a)
	}
	p.wantRolledBack(p.rollback(StepFenceSource, in, err), StepFenceSource, "FenceFailedError", nil, nil)
}

// TestDrainTimeout: the replicator's group committed 7 of 10 on orders/0
// and does not move; WaitForDrain polls until drainTimeoutSeconds by the
// injected clock, then fails with *DrainTimeoutError naming the
// partition and the group, and saves the partitions for the operator.
func TestDrainTimeout(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	p.commit(p.srcAdm, "m1", map[int32]int64{0: 7, 1: 4})
	st := p.validate(procInput(""))
	st = p.mustRun(StepVerifySourceQuiet, st)
	st = p.mustRun(StepFenceSource, st)
	began := p.f.clock()
	out, err, polls := p.drive(StepWaitForDrain, st)
	var dt *DrainTimeoutError
	if !errors.As(err, &dt) || !slices.Equal(dt.Lagging, []string{"orders/0: replicator group m1 committed 7 of 10"}) {
		t.Fatalf("WaitForDrain: %v, want *DrainTimeoutError naming orders/0 and group m1", err)
	}
	if waited := p.f.clock().Sub(began); waited != 10*time.Second || polls != 11 {
		t.Errorf("timed out after %v in %d polls, want 10s in 11 (drainTimeoutSeconds 10, pollSeconds 1)", waited, polls)
	}
	p.wantRolledBack(p.rollback(StepWaitForDrain, out, err), StepWaitForDrain, "DrainTimeoutError", wantFence, nil)
}
