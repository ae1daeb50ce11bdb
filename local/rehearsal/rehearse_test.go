package rehearsal

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/selection"
)

// rehearseOn runs Rehearse on an embedded pair whose source has security
// sec, with a small plan and the given cutover input fields.
func rehearseOn(t *testing.T, sec kafkalocal.Security, input map[string]any) (*Outcome, string) {
	t.Helper()
	if _, _, err := toolsReady(); err != nil && os.Getenv("KMIG_REQUIRE_TOOLS") != "1" {
		t.Skipf("local state machine tools missing: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{
		Source: kafkalocal.ClusterOptions{Security: sec},
		Target: kafkalocal.ClusterOptions{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pair.Close()
	var w bytes.Buffer
	out, err := Rehearse(ctx, &w, pair, Options{Plan: NewPlan("t.", 3), Group: "t.billing", PerPartition: 50, BulkPerPartition: 10, Cutover: input, Cleanup: true})
	if err != nil {
		t.Fatalf("Rehearse: %v\n%s", err, w.String())
	}
	return out, w.String()
}

// TestRehearseUnfenced: the rehearsal on a source without an authorizer
// (the no-authorizer profile's stand-in) with "fence": "none" passes, and
// the report says the cutover was unfenced.
func TestRehearseUnfenced(t *testing.T) {
	out, log := rehearseOn(t, kafkalocal.SecuritySCRAMNoACL, map[string]any{"fence": "none"})
	if !out.OK() || !strings.Contains(log, "unfenced: input fence=none") {
		t.Fatalf("outcome %+v %+v, want OK and an unfenced report:\n%s", out, out.Cutover, log)
	}
	if got := out.Counts(); !strings.HasSuffix(got, "missing 0, duplicated 0") {
		t.Fatalf("counts %q", got)
	}
}

// TestRehearseFailedCutover: asking for an ACL fence on a source without
// an authorizer fails the cutover in Validate (FenceUnavailableError), and
// the outcome says so in one line while the apps, resumed on the source,
// still read every number exactly once.
func TestRehearseFailedCutover(t *testing.T) {
	out, log := rehearseOn(t, kafkalocal.SecuritySCRAMNoACL, nil)
	c := out.Cutover
	if out.OK() || !out.Replicated || c == nil || c.Succeeded() {
		t.Fatalf("outcome %+v %+v, want replicated and a failed cutover:\n%s", out, c, log)
	}
	if s := c.Summary(); !strings.Contains(s, "FenceUnavailableError") || strings.Contains(s, "\n") {
		t.Fatalf("summary %q", s)
	}
	if c.Produced == 0 || c.Missing != 0 || c.Duplicated != 0 {
		t.Fatalf("apps after the failed cutover: %s\n%s", out.Counts(), log)
	}
	if !strings.Contains(log, "resuming the consumer on the source") {
		t.Fatalf("no resumed consumer in:\n%s", log)
	}
}

// TestRehearseSelectionChecked: a selection that picks a topic the plan
// says it must not (here the excluded one, with the exclusion dropped)
// fails the rehearsal before replication is compared, naming the topic.
func TestRehearseSelectionChecked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pair.Close()
	plan := NewPlan("t.", 2)
	plan.Excluded = nil
	var w bytes.Buffer
	out, err := Rehearse(ctx, &w, pair, Options{Plan: plan, PerPartition: 5, BulkPerPartition: 5})
	if err != nil {
		t.Fatalf("Rehearse: %v\n%s", err, w.String())
	}
	if out.OK() || out.Replicated || out.Cutover != nil || !strings.Contains(out.Selection, "t.scratch-00") {
		t.Fatalf("outcome %+v, want a selection problem naming t.scratch-00:\n%s", out, w.String())
	}
}

// TestNewPlan: the plan's patterns select its topics, the late one
// included, and none of the unselected ones.
func TestNewPlan(t *testing.T) {
	p := NewPlan("demo.", DemoBulkTopics)
	sel, err := selection.Parse(p.Patterns, p.Excluded, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := names(p.All())
	want := append(names(p.Selected()), p.Late.Name)
	if got := sel.Select(all); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("selected %v, want %v", got, want)
	}
	if len(p.Bulk) != DemoBulkTopics || len(want) < 50 {
		t.Fatalf("%d bulk topics, %d selected", len(p.Bulk), len(want))
	}
	seen := map[string]bool{}
	for _, n := range all {
		if seen[n] {
			t.Fatalf("topic %s twice", n)
		}
		seen[n] = true
	}
}
