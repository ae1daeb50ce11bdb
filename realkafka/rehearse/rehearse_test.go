package rehearse

import (
	"errors"
	"testing"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/rehearsal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
)

func TestLine(t *testing.T) {
	ok := &rehearsal.Outcome{Replicated: true, Cutover: &rehearsal.CutoverOutcome{Status: "SUCCEEDED", Produced: 585}}
	failed := &rehearsal.Outcome{Replicated: true, Cutover: &rehearsal.CutoverOutcome{
		Status: "FAILED", Error: "DrainTimeoutError", States: []string{"Validate", "WaitForDrain", "Rollback", "RolledBack"},
		Cause:    "cutover failed in step WaitForDrain: DrainTimeoutError: group lags.\nRolled back.",
		Produced: 585, Missing: 3,
	}}
	for _, c := range []struct {
		r    Result
		want string
		ok   bool
	}{
		{Result{Profile: realkafka.ProfileOpen, Fence: "acl", Outcome: ok},
			"RESULT: profile=open fence=acl produced 585, consumed 585, missing 0, duplicated 0", true},
		{Result{Profile: realkafka.ProfileOpen, Fence: "acl", Outcome: failed},
			"RESULT: profile=open fence=acl produced 585, consumed 582, missing 3, duplicated 0; cutover FAILED in state RolledBack: DrainTimeoutError: cutover failed in step WaitForDrain: DrainTimeoutError: group lags. Rolled back.", false},
		{Result{Profile: realkafka.ProfileNoAuthorizer, Fence: "none", Err: errors.New("brokers.sh start-profile:\nfailed")},
			"RESULT: profile=no-authorizer fence=none produced 0, consumed 0, missing 0, duplicated 0; error: brokers.sh start-profile: failed", false},
		{Result{Profile: realkafka.ProfileOpen, Fence: "acl", Outcome: &rehearsal.Outcome{Selection: "topic a.scratch-00, which the selection must leave alone, got a mapping"}},
			"RESULT: profile=open fence=acl produced 0, consumed 0, missing 0, duplicated 0; selection: topic a.scratch-00, which the selection must leave alone, got a mapping", false},
		{Result{Profile: realkafka.ProfileDenyByDefault, Fence: "acl", Outcome: &rehearsal.Outcome{}},
			"RESULT: profile=deny-by-default fence=acl produced 0, consumed 0, missing 0, duplicated 0; replication: target differs from source", false},
	} {
		if got := c.r.Line(); got != c.want || c.r.OK() != c.ok {
			t.Errorf("Line() = %q, OK %v\n           want %q, OK %v", got, c.r.OK(), c.want, c.ok)
		}
	}
}
