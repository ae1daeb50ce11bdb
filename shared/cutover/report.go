package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/rundetails"
)

// StepSummary is one step's timing in the report.
type StepSummary struct {
	Step       string    `json:"step"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	EndedAt    time.Time `json:"endedAt,omitzero"`
	DurationMs int64     `json:"durationMs"`
	Polls      int       `json:"polls,omitempty"`
	Derived    bool      `json:"derived,omitempty"`
	Skipped    bool      `json:"skipped,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// Report is the final output of a run (and, with DryRun, of a dry run).
type Report struct {
	Outcome string   `json:"outcome"` // succeeded | dry-run
	DryRun  bool     `json:"dryRun"`
	Topics  []string `json:"topics"`
	// Renames maps each renamed topic to its target name; partitions and
	// groups name both.
	Renames   map[string]string `json:"renames,omitempty"`
	StartedAt time.Time         `json:"startedAt"`
	EndedAt   time.Time         `json:"endedAt"`
	Fence     FenceRecord       `json:"fence"`
	// Mappings lists the replicator's mappings of the topics, unless
	// the report is too large (Details.Mappings then references them);
	// MappingCount counts them.
	Mappings     []Mapping `json:"mappings"`
	MappingCount int       `json:"mappingCount"`
	Paused       []string  `json:"pausedMappings,omitempty"`
	// Partitions and Groups list every partition and every group's
	// offsets when the report stays under ReportInlineBytes. A larger
	// report leaves Partitions empty and Groups without their partitions;
	// Details then says where the complete lists are.
	Partitions []PartitionReport `json:"partitions"`
	Groups     []GroupReport     `json:"groups"`
	Drain      *DrainSummary     `json:"drain,omitempty"`
	Details    *ReportDetails    `json:"details,omitempty"`
	Steps      []StepSummary     `json:"steps"`
	// Cutover is the time from the start of StopProducers to the end of
	// VerifyTarget, and Waiting the part of it spent in polling loops and
	// hooks.
	CutoverMs int64    `json:"cutoverMs,omitempty"`
	WaitingMs int64    `json:"waitingMs,omitempty"`
	Plan      *Plan    `json:"plan,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

// ReportDetails says where a run's complete details are: records of the
// details topic on the target (shared/rundetails), one JSON value each,
// split over consecutive records' values when large. Inline is true when
// the report itself lists them all.
type ReportDetails struct {
	Inline     bool            `json:"inline"`
	RunID      string          `json:"runId"`
	Partitions *rundetails.Ref `json:"partitions,omitempty"`
	Groups     *rundetails.Ref `json:"groups,omitempty"`
	// Mappings references the run's mappings when the execution state
	// kept them in the details topic (many mappings).
	Mappings *rundetails.Ref `json:"mappings,omitempty"`
}

// Plan is what a dry run would do.
type Plan struct {
	// ACLsToCreate are the fence ACLs a real run would create now: a
	// DENY WRITE per topic, and an ALLOW ALL beside it on a topic no ACL
	// matches on a source open to everyone.
	ACLsToCreate []FenceACL `json:"aclsToCreate"`
	// ACLsExisting are identical fence ACLs already present (left alone).
	ACLsExisting []FenceACL `json:"aclsExisting"`
	// PoliciesToCreate are the iam fence's inline policies a real run
	// would put; PoliciesExisting identical ones already there.
	PoliciesToCreate []FencePolicy `json:"policiesToCreate"`
	PoliciesExisting []FencePolicy `json:"policiesExisting"`
	// MappingsToDisable are the mappings a real run would pause: those
	// that read Enabled, or Creating, Enabling or Updating, at Validate.
	MappingsToDisable []string `json:"mappingsToDisable"`
	// Lagging lists partitions not drained right now (expected while
	// producers run), the first 20 of LaggingPartitions.
	Lagging           []string `json:"lagging"`
	LaggingPartitions int      `json:"laggingPartitions"`
}

func (h *Handler) plan(ctx context.Context, st *State) (*Report, error) {
	start := h.now()
	p := &Plan{ACLsToCreate: []FenceACL{}, ACLsExisting: []FenceACL{}, PoliciesToCreate: []FencePolicy{}, PoliciesExisting: []FencePolicy{},
		MappingsToDisable: []string{}, Lagging: []string{}}
	if st.Config.Fence == FenceKindIAM {
		toCreate, existing, err := h.planIAMFence(ctx, st.Config)
		if err != nil {
			return nil, err
		}
		p.PoliciesToCreate = append(p.PoliciesToCreate, fencePolicies(toCreate)...)
		p.PoliciesExisting = append(p.PoliciesExisting, fencePolicies(existing)...)
	}
	if st.Config.Fence == FenceKindACL {
		f, err := h.planACLFence(ctx, st.Config.Topics, st.Config.AllowEveryoneIfNoAclFound)
		if err != nil {
			var ie *InvalidInputError
			if errors.As(err, &ie) {
				return nil, ie
			}
			return nil, &ClusterError{Op: "planning the fence", Err: err}
		}
		p.ACLsToCreate = append(p.ACLsToCreate, f.toCreate...)
		p.ACLsExisting = append(p.ACLsExisting, f.existing...)
	}
	maps, err := h.runMappings(ctx, st)
	if err != nil {
		return nil, err
	}
	for _, m := range maps {
		if polls(m.State) {
			p.MappingsToDisable = append(p.MappingsToDisable, m.UUID)
		}
	}
	parts, err := h.drainStatus(ctx, st, !st.Config.AllowLaggingGroups)
	if err != nil {
		return nil, err
	}
	for _, pr := range parts {
		if len(pr.Lag) > 0 {
			p.LaggingPartitions++
		}
		for _, l := range pr.Lag {
			if len(p.Lagging) < maxListed {
				p.Lagging = append(p.Lagging, tp(pr.Topic, pr.Partition)+": "+l.String())
			}
		}
	}
	groups, err := h.planGroups(ctx, st, true)
	if err != nil {
		return nil, err
	}
	if err := h.saveDrain(ctx, st, parts); err != nil {
		return nil, err
	}
	if err := h.saveGroups(ctx, st, groups); err != nil {
		return nil, err
	}
	st.Steps[StepPlan] = &StepTime{StartedAt: start, EndedAt: h.now()}
	r, err := h.reportWith(st, maps, parts, groups)
	if err != nil {
		return nil, err
	}
	r.Outcome, r.DryRun, r.Plan = "dry-run", true, p
	return r, h.fitReport(r, parts, groups)
}

// report builds the final report, with the details read back from the
// details topic.
func (h *Handler) report(ctx context.Context, st *State) (*Report, error) {
	var parts []PartitionReport
	if st.Run.Drain != nil {
		if err := h.getDetails(ctx, st.Run.Drain.Details, &parts); err != nil {
			return nil, err
		}
	}
	groups, err := h.loadGroups(ctx, st)
	if err != nil {
		return nil, err
	}
	maps, err := h.runMappings(ctx, st)
	if err != nil {
		return nil, err
	}
	r, err := h.reportWith(st, maps, parts, groups)
	if err != nil {
		return nil, err
	}
	return r, h.fitReport(r, parts, groups)
}

// fitReport keeps the report under ReportInlineBytes: past it, the
// partitions and the groups' partitions stay in the details topic only.
func (h *Handler) fitReport(r *Report, parts []PartitionReport, groups []GroupReport) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(b) <= ReportInlineBytes {
		return nil
	}
	r.Details.Inline = false
	r.Partitions, r.Groups = []PartitionReport{}, groupSummaries(groups)
	if r.Details.Mappings != nil {
		r.Mappings = []Mapping{}
	}
	r.Warnings = append(r.Warnings, fmt.Sprintf("the report lists summaries only (%d partitions, %d groups, %d mappings): the complete lists are in topic %s on the target, see details",
		len(parts), len(groups), r.MappingCount, h.details.Topic()))
	return nil
}

// reportWith builds the report of st with the given details inline.
func (h *Handler) reportWith(st *State, maps []Mapping, parts []PartitionReport, groups []GroupReport) (*Report, error) {
	end := h.now()
	r := &Report{
		Outcome: "succeeded", Topics: st.Config.Topics, Renames: st.Config.Renames, StartedAt: st.Run.StartedAt, EndedAt: end,
		Fence: st.Run.Fence, Mappings: maps, MappingCount: len(maps), Paused: st.Run.Disabled,
		Partitions: parts, Groups: groups, Drain: st.Run.Drain, Warnings: st.Run.Warnings,
		Details: &ReportDetails{Inline: true, RunID: st.Run.ID, Groups: st.Run.GroupDetails, Mappings: st.Run.MappingDetails},
	}
	if st.Run.Drain != nil {
		r.Details.Partitions = &st.Run.Drain.Details
	}
	if r.Partitions == nil {
		r.Partitions = []PartitionReport{}
	}
	if r.Groups == nil {
		r.Groups = []GroupReport{}
	}
	if st.Config.DryRun {
		r.Steps = append(r.Steps, stepReport(StepValidate, st.Steps[StepValidate]), stepReport(StepPlan, st.Steps[StepPlan]))
		return r, nil
	}
	order := StepOrder[:len(StepOrder)-1]
	var prevEnd time.Time
	for i, name := range order {
		t := st.Steps[name]
		if t == nil && isHook(name) {
			// Hooks record no times of their own (their result is
			// discarded): they ran between the previous step's end and
			// the next step's start.
			var next time.Time
			for _, n := range order[i+1:] {
				if nt := st.Steps[n]; nt != nil {
					next = nt.StartedAt
					break
				}
			}
			hc := st.hookConfig(name)
			t = &StepTime{StartedAt: prevEnd, EndedAt: next, Derived: true, Note: "hook type " + hc.Type}
		}
		sr := stepReport(name, t)
		if !sr.EndedAt.IsZero() {
			prevEnd = sr.EndedAt
		}
		r.Steps = append(r.Steps, sr)
	}
	r.Steps = append(r.Steps, StepSummary{Step: StepReport, StartedAt: end, EndedAt: end})
	if sp, vt := r.stepAt(StepStopProducers), st.Steps[StepVerifyTarget]; sp != nil && vt != nil && !sp.StartedAt.IsZero() && !vt.EndedAt.IsZero() {
		r.CutoverMs = vt.EndedAt.Sub(sp.StartedAt).Milliseconds()
		for _, s := range r.Steps {
			if s.Polls > 0 || s.Derived {
				r.WaitingMs += s.DurationMs
			}
		}
	}
	if !st.Run.Fence.Applied {
		r.Warnings = append(r.Warnings, "the source was not fenced: "+st.Run.Fence.Note)
	} else {
		r.Fence.Remains = st.Run.Fence.remains()
	}
	return r, nil
}

func (r *Report) stepAt(name string) *StepSummary {
	for i := range r.Steps {
		if r.Steps[i].Step == name {
			return &r.Steps[i]
		}
	}
	return nil
}

func isHook(name string) bool {
	switch name {
	case StepStopProducers, StepStopConsumers, StepStartConsumers, StepStartProducers:
		return true
	}
	return false
}

func stepReport(name string, t *StepTime) StepSummary {
	if t == nil {
		return StepSummary{Step: name, Skipped: true}
	}
	sr := StepSummary{Step: name, StartedAt: t.StartedAt, EndedAt: t.EndedAt, Polls: t.Polls, Derived: t.Derived, Note: t.Note}
	if !t.EndedAt.IsZero() && !t.StartedAt.IsZero() {
		sr.DurationMs = t.EndedAt.Sub(t.StartedAt).Milliseconds()
	}
	return sr
}
