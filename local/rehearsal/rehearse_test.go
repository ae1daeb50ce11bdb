package rehearsal

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// rehearseOn runs Rehearse on an embedded pair whose source has security
// sec, with small topics and the given cutover input fields.
func rehearseOn(t *testing.T, sec kafkalocal.Security, input map[string]any) (*Outcome, string) {
	t.Helper()
	if _, _, err := toolsReady(); err != nil && os.Getenv("KMIG_REQUIRE_TOOLS") != "1" {
		t.Skipf("local state machine tools missing: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topics := []kafkalocal.Topic{{Name: "t.orders", Partitions: 3}, {Name: "t.payments", Partitions: 1}}
	pair, err := kafkalocal.StartPair(kafkalocal.PairOptions{
		Source: kafkalocal.ClusterOptions{Security: sec},
		Target: kafkalocal.ClusterOptions{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pair.Close()
	var w bytes.Buffer
	out, err := Rehearse(ctx, &w, pair, Options{Topics: topics, Group: "t.billing", PerPartition: 50, CreateTopics: true, Cutover: input, Cleanup: true})
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
