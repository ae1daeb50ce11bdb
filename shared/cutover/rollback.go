package cutover

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamfence"
)

// RollbackResult says what Rollback undid. Error and Cause feed the final
// Fail state; they are set once Rollback is done.
type RollbackResult struct {
	FailedStep      string        `json:"failedStep"`
	Error           string        `json:"error"`
	Cause           string        `json:"cause"`
	RemovedACLs     []FenceACL    `json:"removedAcls"`
	RemovedPolicies []FencePolicy `json:"removedPolicies"`
	// ReenabledMappings are the mappings the run disabled (Run.Disabled)
	// that Rollback read back as Enabled.
	ReenabledMappings []string `json:"reenabledMappings"`
	// GoneMappings are mappings the run disabled that no longer exist
	// (deleted during the run): nothing to re-enable.
	GoneMappings []string `json:"goneMappings,omitempty"`
}

// failedStep finds the step whose failure the state machine recorded.
func failedStep(st *State) (string, Failure) {
	for _, name := range append(append([]string{}, StepOrder...), StepRequestApproval) {
		if f, ok := st.Failures[name]; ok && name != StepRollback {
			return name, f
		}
	}
	for _, k := range sortedKeys(st.Failures) {
		if k != StepRollback {
			return k, st.Failures[k]
		}
	}
	return "unknown", Failure{Error: "unknown", Cause: "no failure recorded"}
}

// rollback is one poll of Rollback. The first poll removes exactly the
// fence the run added; every poll then moves the mappings the run
// disabled (Run.Disabled) toward Enabled (resumeMappings). It is done
// when each of them reads Enabled or no longer exists, and fails with
// *RollbackIncompleteError, naming every mapping not confirmed Enabled,
// when an update fails or the deadline (twice mappingTimeoutSeconds: a
// mapping may first have to finish disabling) passes.
func (h *Handler) rollback(ctx context.Context, st *State, first bool) (bool, error) {
	now := h.now()
	step, f := failedStep(st)
	var remaining []string
	if first || st.Rollback == nil {
		st.Loop.Deadline = now.Add(2 * mappingTimeout(st.Config))
		remaining = append(remaining, h.deleteACLs(ctx, st.Config.Topics, st.Run.Fence.Created)...)
		if len(st.Run.Fence.Policies) > 0 {
			remaining = append(remaining, iamfence.Remove(ctx, h.d.IAM, h.d.Clock, iamPolicies(st.Run.Fence.Policies, st.Run.Fence.PolicyDocument))...)
		}
		st.Rollback = &RollbackResult{FailedStep: step, Error: f.Error, RemovedACLs: st.Run.Fence.Created,
			RemovedPolicies: st.Run.Fence.Policies, ReenabledMappings: []string{}}
		if st.Rollback.RemovedACLs == nil {
			st.Rollback.RemovedACLs = []FenceACL{}
		}
		if st.Rollback.RemovedPolicies == nil {
			st.Rollback.RemovedPolicies = []FencePolicy{}
		}
	}
	res, err := h.resumeMappings(ctx, st)
	if err != nil {
		return false, err
	}
	st.Rollback.ReenabledMappings = append([]string{}, res.enabled...)
	st.Rollback.GoneMappings = res.gone
	failed := "after: cutover failed in step " + step + ": " + strings.TrimSpace(causeText(f))
	elapsed := now.Sub(st.Steps[StepRollback].StartedAt)
	if len(remaining) > 0 || len(res.failed) > 0 {
		return false, h.rollbackIncomplete(append(append(append(remaining, res.unconfirmed(elapsed)...), confirmedNote(res)...), failed))
	}
	st.Run.Fence.Applied = false
	if len(res.waiting) > 0 {
		if !now.Before(st.Loop.Deadline) {
			remaining := res.unconfirmed(elapsed)
			if undone := undoneNote(st.Rollback); len(undone) > 0 {
				remaining = append(remaining, "done: "+listed(undone, ", "))
			}
			return false, h.rollbackIncomplete(append(remaining, failed))
		}
		return false, nil
	}
	undone := undoneNote(st.Rollback)
	if f.Error == rollbackIncompleteName {
		// The failed step could not undo its own partial change (a fence
		// half applied whose removal failed). What it left is named only
		// in its cause: the state it hands Rollback is its input, which
		// does not hold it. So the run must not end as rolled back.
		remaining := []string{"left in place by " + step + ", whose own undo failed: " + strings.TrimSpace(causeText(f))}
		if len(undone) > 0 {
			remaining = append(remaining, "done: "+listed(undone, ", "))
		}
		return false, h.rollbackIncomplete(remaining)
	}
	if len(undone) == 0 {
		undone = []string{"nothing had been changed"}
	}
	resumes := "replication resumes: every mapping the run disabled reads Enabled"
	switch {
	case len(st.Run.Disabled) == 0:
		resumes = "replication was not paused"
	case len(res.gone) > 0:
		resumes = "replication resumes through the mappings that read Enabled; deleted mappings replicate nothing"
	}
	st.Rollback.Cause = fmt.Sprintf("cutover failed in step %s: %s. Rolled back: %s. The source accepts writes and %s.",
		step, strings.TrimSpace(causeText(f)), listed(undone, "; "), resumes)
	return true, nil
}

// rollbackIncompleteName is RollbackIncompleteError's name as the state
// machine records it in $.failures (the Lambda runtime's errorType).
var rollbackIncompleteName = reflect.TypeFor[RollbackIncompleteError]().Name()

// rollbackIncomplete logs everything that remains (the error's message
// lists the first maxListed) and returns the error.
func (h *Handler) rollbackIncomplete(remaining []string) error {
	h.d.Log.Error("rollback incomplete: undo by hand", "remaining", remaining)
	return &RollbackIncompleteError{Remaining: remaining}
}

// undoneNote lists what r undid, in the words of the final cause.
func undoneNote(r *RollbackResult) []string {
	var out []string
	for _, a := range r.RemovedACLs {
		out = append(out, "removed "+a.String())
	}
	for _, p := range r.RemovedPolicies {
		out = append(out, "removed "+p.String())
	}
	for _, u := range r.ReenabledMappings {
		out = append(out, "mapping "+u+" reads Enabled")
	}
	for _, u := range r.GoneMappings {
		out = append(out, "mapping "+u+" was deleted during the run")
	}
	return out
}

// confirmedNote names the mappings res confirmed, for an incomplete
// rollback's error.
func confirmedNote(res resumed) []string {
	if len(res.enabled) == 0 {
		return nil
	}
	return []string{"confirmed Enabled: mapping " + listed(res.enabled, ", mapping ")}
}

func causeText(f Failure) string {
	// A Lambda error's Cause is the JSON {"errorMessage","errorType"}.
	var le struct{ ErrorMessage, ErrorType string }
	if json.Unmarshal([]byte(f.Cause), &le) == nil && le.ErrorMessage != "" {
		return f.Error + ": " + le.ErrorMessage
	}
	if strings.HasPrefix(f.Cause, f.Error+": ") {
		return f.Cause // the local interpreter's "errorType: errorMessage"
	}
	return f.Error + ": " + f.Cause
}
