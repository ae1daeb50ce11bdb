package cutover

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// clusterView is what a dry run must leave as it found it: the source's
// ACLs, every mapping's state and the updates the Lambda API accepted,
// the groups' commits on both clusters, and both clusters' end offsets of
// the migrated topics.
type clusterView struct {
	acls       []string
	mappings   map[string]string
	updates    []string
	srcCommits map[string]map[string]int64
	tgtCommits map[string]map[string]int64
	srcEnds    map[string]int64
	tgtEnds    map[string]int64
}

func (p *proc) view() clusterView {
	p.t.Helper()
	v := clusterView{acls: p.acls(), mappings: map[string]string{}, srcCommits: map[string]map[string]int64{}, tgtCommits: map[string]map[string]int64{}}
	for _, u := range []string{"m1", "m2"} {
		v.mappings[u] = p.f.state(u)
	}
	p.f.mu.Lock()
	v.updates = slices.Clone(p.f.updates)
	p.f.mu.Unlock()
	for _, g := range []string{procGroup, "m1", "m2"} {
		v.srcCommits[g] = p.commitsOf(p.srcAdm, g)
		v.tgtCommits[g] = p.commitsOf(p.tgtAdm, g)
	}
	v.srcEnds, v.tgtEnds = p.ends(p.srcAdm), p.ends(p.tgtAdm)
	return v
}

func (p *proc) commitsOf(adm *kadm.Client, group string) map[string]int64 {
	p.t.Helper()
	o, err := adm.FetchOffsets(p.ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		p.t.Fatal(err)
	}
	out := map[string]int64{}
	o.Each(func(r kadm.OffsetResponse) { out[tp(r.Topic, r.Partition)] = r.At })
	return out
}

func (p *proc) ends(adm *kadm.Client) map[string]int64 {
	p.t.Helper()
	l, err := adm.ListEndOffsets(p.ctx, procOrders, procPayments)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[string]int64{}
	l.Each(func(o kadm.ListedOffset) { out[tp(o.Topic, o.Partition)] = o.Offset })
	return out
}

func (p *proc) wantUnchanged(what string, before clusterView) {
	p.t.Helper()
	after := p.view()
	if !slices.Equal(after.acls, before.acls) {
		p.t.Errorf("%s changed the source's ACLs: %v, were %v", what, after.acls, before.acls)
	}
	if !maps.Equal(after.mappings, before.mappings) || !slices.Equal(after.updates, before.updates) {
		p.t.Errorf("%s changed mappings: %v (updates %v), were %v (updates %v)", what, after.mappings, after.updates, before.mappings, before.updates)
	}
	for g := range before.srcCommits {
		if !maps.Equal(after.srcCommits[g], before.srcCommits[g]) || !maps.Equal(after.tgtCommits[g], before.tgtCommits[g]) {
			p.t.Errorf("%s changed group %s's commits: source %v target %v, were source %v target %v", what, g,
				after.srcCommits[g], after.tgtCommits[g], before.srcCommits[g], before.tgtCommits[g])
		}
	}
	if !maps.Equal(after.srcEnds, before.srcEnds) || !maps.Equal(after.tgtEnds, before.tgtEnds) {
		p.t.Errorf("%s wrote to a migrated topic: ends source %v target %v, were %v %v", what, after.srcEnds, after.tgtEnds, before.srcEnds, before.tgtEnds)
	}
}

// planned returns the report's translation of each group partition.
func planned(r *Report) map[string]int64 {
	out := map[string]int64{}
	for _, g := range r.Groups {
		for _, gp := range g.Partitions {
			out[g.Group+" "+tp(gp.TargetTopic, gp.Partition)] = gp.TargetOffset
		}
	}
	return out
}

// TestDryRunChangesNothingAndNamesTheRun: Validate and Plan of a dry run
// leave both clusters and the mappings exactly as they were (ACLs, mapping
// states, accepted updates, every group's commits, the migrated topics'
// ends), and the plan names what a real run then does: the ACLs it
// creates, the mappings it disables and the offsets it commits on the
// target.
func TestDryRunChangesNothingAndNamesTheRun(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 8, 1: 4})
	before := p.view()
	st := p.validate(procInput(`,"allowLaggingGroups":true,"dryRun":true`))
	if !st.Config.DryRun {
		t.Fatal("dryRun not in the config the state machine's Choice reads")
	}
	out, err := p.h.Handle(p.ctx, Request{Step: StepPlan, State: roundTrip(t, st)})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	p.wantUnchanged("a dry run", before)
	r := out.(*Report)
	if r.Outcome != "dry-run" || !r.DryRun || r.Plan == nil {
		t.Fatalf("report outcome %q, dryRun %v, plan %v", r.Outcome, r.DryRun, r.Plan)
	}
	pl := r.Plan
	if !slices.Equal(pl.ACLsToCreate, wantFence) || len(pl.ACLsExisting) != 0 || len(pl.PoliciesToCreate) != 0 {
		t.Errorf("plan's ACLs to create %v (existing %v, policies %v), want exactly %v", pl.ACLsToCreate, pl.ACLsExisting, pl.PoliciesToCreate, wantFence)
	}
	if !slices.Equal(pl.MappingsToDisable, []string{"m1", "m2"}) {
		t.Errorf("plan's mappings to disable %v, want [m1 m2]", pl.MappingsToDisable)
	}
	// The replicator copied everything; the group's lag (8 of 10) is
	// allowed (allowLaggingGroups), so nothing lags.
	if len(pl.Lagging) != 0 || pl.LaggingPartitions != 0 {
		t.Errorf("plan's lagging %v (%d), want none", pl.Lagging, pl.LaggingPartitions)
	}
	wantOffsets := map[string]int64{"billing orders/0": 5, "billing orders/1": 4, "billing payments/0": -1, "billing payments/1": -1}
	if got := planned(r); !maps.Equal(got, wantOffsets) {
		t.Errorf("plan's offsets %v, want %v", got, wantOffsets)
	}

	// The same run for real does exactly what the plan said.
	st = p.validate(procInput(`,"allowLaggingGroups":true`))
	for _, step := range []string{StepVerifySourceQuiet, StepFenceSource, StepWaitForDrain, StepPauseReplication, StepWaitForConsumersGone, StepTranslateOffsets} {
		st = p.mustRun(step, st)
	}
	if !slices.Equal(st.Run.Fence.Created, pl.ACLsToCreate) {
		t.Errorf("the run created %v, the plan said %v", st.Run.Fence.Created, pl.ACLsToCreate)
	}
	if !slices.Equal(st.Run.Disabled, pl.MappingsToDisable) {
		t.Errorf("the run disabled %v, the plan said %v", st.Run.Disabled, pl.MappingsToDisable)
	}
	if got := p.targetCommits(procGroup); got != [2]int64{wantOffsets["billing orders/0"], wantOffsets["billing orders/1"]} {
		t.Errorf("the run committed %v on the target, the plan said %v", got, wantOffsets)
	}
}

// TestDryRunWithTheFenceInPlace: a dry run after a run that left its fence
// (a successful cutover keeps it) plans to create nothing: the DENYs are
// there already (existing, left alone), and the topics, which ACLs now
// match, need no ALLOW. It still changes nothing.
func TestDryRunWithTheFenceInPlace(t *testing.T) {
	p := newProc(t)
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	st := p.validate(procInput(""))
	st = p.mustRun(StepVerifySourceQuiet, st)
	p.mustRun(StepFenceSource, st)
	before := p.view()
	if len(before.acls) != len(wantFence) {
		t.Fatalf("source ACLs %v, want the fence", before.acls)
	}
	st = p.validate(procInput(`,"dryRun":true`))
	out, err := p.h.Handle(p.ctx, Request{Step: StepPlan, State: roundTrip(t, st)})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	p.wantUnchanged("a dry run", before)
	pl := out.(*Report).Plan
	if want := []FenceACL{denyWrite(procOrders), denyWrite(procPayments)}; len(pl.ACLsToCreate) != 0 || !slices.Equal(pl.ACLsExisting, want) {
		t.Errorf("plan: to create %v, existing %v; want none to create and %v existing", pl.ACLsToCreate, pl.ACLsExisting, want)
	}
}

// TestValidateFindsTheGroups: an input that names no groups moves every
// source group with commits on the migrated topics except the
// replicator's own (m1's): Validate finds billing and reports, and the
// run translates both exactly. With no such group Validate refuses with
// *NothingSelectedError.
func TestValidateFindsTheGroups(t *testing.T) {
	noGroups := func(extra string) string {
		return strings.Replace(procInput(extra), `"groups":["billing"],`, "", 1)
	}
	p := newProc(t)
	_, err := p.h.Handle(p.ctx, Request{Step: StepValidate, Input: []byte(noGroups(""))})
	var ns *NothingSelectedError
	if !errors.As(err, &ns) || ns.Field != "groups" {
		t.Fatalf("Validate with no application group: %v, want *NothingSelectedError on groups", err)
	}
	p.commit(p.srcAdm, procGroup, map[int32]int64{0: 10, 1: 4})
	p.commit(p.srcAdm, "reports", map[int32]int64{0: 8, 1: 4})
	st := p.validate(noGroups(`,"allowLaggingGroups":true`))
	if !slices.Equal(st.Config.Groups, []string{procGroup, "reports"}) || !st.Config.GroupsFound {
		t.Fatalf("Validate found groups %v (found %v), want [billing reports]", st.Config.Groups, st.Config.GroupsFound)
	}
	for _, step := range []string{StepVerifySourceQuiet, StepFenceSource, StepWaitForDrain, StepPauseReplication, StepWaitForConsumersGone, StepTranslateOffsets} {
		st = p.mustRun(step, st)
	}
	if b, r := p.targetCommits(procGroup), p.targetCommits("reports"); b != [2]int64{7, 4} || r != [2]int64{5, 4} {
		t.Errorf("target commits: billing %v, reports %v; want [7 4] and [5 4]", b, r)
	}
	if m := p.targetCommits("m1"); m != [2]int64{-1, -1} {
		t.Errorf("the replicator's group m1 was translated: %v", m)
	}
}
