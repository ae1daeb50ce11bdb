package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestPreflightWithoutClients: a function that could not build its Kafka
// clients (a secret it could not read at start-up) still answers the
// preflight, with the failure and its fix, and refuses every other step
// with a ClusterError naming the cause.
func TestPreflightWithoutClients(t *testing.T) {
	cause := errors.New("reading SOURCE_SECRET_ARN: operation error Secrets Manager: GetSecretValue: context deadline exceeded")
	h := New(Deps{ReplicatorFunction: "kmig-replicator", Preflight: PreflightDeps{ClientsErr: cause, SourceBootstrap: []string{"b-1.src:9096"}}})
	out, err := h.Handle(context.Background(), Request{Step: StepPreflight, Input: json.RawMessage(`{"topics":["orders"],"groups":["billing"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	rep := out.(*PreflightReport)
	if rep.Passed {
		t.Fatal("passed without clients")
	}
	want := map[string]string{"kafka clients": CheckFail, "source cluster reachable": CheckFail, "target cluster reachable": CheckFail, "input": CheckPass}
	for _, c := range rep.Checks {
		if w, ok := want[c.Name]; ok {
			if c.Status != w {
				t.Errorf("%s: %s, want %s", c.Name, c.Status, w)
			}
			delete(want, c.Name)
		}
		if c.Name == "kafka clients" && (!strings.Contains(c.Detail, "SOURCE_SECRET_ARN") || !strings.Contains(c.Fix, "Secrets Manager")) {
			t.Errorf("kafka clients check: %+v", c)
		}
	}
	if len(want) > 0 {
		t.Errorf("checks missing: %v", want)
	}
	_, err = h.Handle(context.Background(), Request{Step: StepValidate, Input: json.RawMessage(`{"topics":["orders"],"groups":["billing"]}`)})
	var ce *ClusterError
	if !errors.As(err, &ce) || !errors.Is(err, cause) {
		t.Errorf("Validate without clients: %v (%T), want a ClusterError wrapping the start-up error", err, err)
	}
}

// TestPreflightReportBounds: however many checks fail, and however long
// their texts, the report stays far below Step Functions' 256 KiB payload
// limit and the Fail cause below its 32,768 characters, and the omitted
// failures still fail the preflight.
func TestPreflightReportBounds(t *testing.T) {
	p := &preflight{}
	long := strings.Repeat("é", 5000)
	for i := range 3 * maxPreflightChecks {
		p.fail(fmt.Sprintf("check %d %s", i, long[:100]), long, long)
	}
	p.finish()
	b, err := json.Marshal(p.rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 160<<10 {
		t.Errorf("report is %d bytes", len(b))
	}
	if len(p.rep.Checks) != maxPreflightChecks || p.rep.OmittedFailed != 2*maxPreflightChecks || p.rep.Passed {
		t.Errorf("checks %d, omitted failures %d, passed %v", len(p.rep.Checks), p.rep.OmittedFailed, p.rep.Passed)
	}
	if n := utf8.RuneCountInString(p.rep.Cause); n > 32768 || !utf8.ValidString(p.rep.Cause) || !strings.HasPrefix(p.rep.Cause, fmt.Sprintf("%d preflight check(s) failed", 3*maxPreflightChecks)) {
		t.Errorf("cause: %d characters, valid UTF-8 %v, starts %q", n, utf8.ValidString(p.rep.Cause), p.rep.Cause[:60])
	}
	for _, c := range p.rep.Checks {
		if !utf8.ValidString(c.Detail) || !utf8.ValidString(c.Fix) || len(c.Detail) > maxCheckDetail || len(c.Fix) > maxCheckFix {
			t.Fatalf("check texts not bounded: %d/%d bytes", len(c.Detail), len(c.Fix))
		}
	}
}

type stubSTS struct{ calls int }

func (s *stubSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	s.calls++
	return &sts.GetCallerIdentityOutput{Arn: aws.String("arn:aws:sts::123456789012:assumed-role/cutover/fn")}, nil
}

// TestPreflightBudget: the step ends inside its invocation's deadline: a
// check that could not finish in the time left is not started, and is
// reported as skipped, not as failed.
func TestPreflightBudget(t *testing.T) {
	st := &stubSTS{}
	h := New(Deps{ReplicatorFunction: "kmig-replicator", Preflight: PreflightDeps{STS: st}})
	for _, tc := range []struct {
		left   time.Duration
		status string
	}{{time.Minute, CheckPass}, {3 * time.Second, CheckSkip}} {
		ctx, cancel := context.WithTimeout(context.Background(), tc.left)
		out, err := h.Handle(ctx, Request{Step: StepPreflight, Input: json.RawMessage(`{"topics":["orders"],"groups":["billing"]}`)})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range out.(*PreflightReport).Checks {
			if c.Name == "sts" && (c.Status != tc.status || tc.status == CheckSkip && !strings.Contains(c.Detail, "budget")) {
				t.Errorf("%v left: sts check %+v, want %s", tc.left, c, tc.status)
			}
		}
	}
	if st.calls != 1 {
		t.Errorf("GetCallerIdentity called %d times, want once (not when no time was left)", st.calls)
	}
}
