package cutoverrun

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/verify"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// Event source mappings take a while to stop or restart polling after an
// update (AWS: up to 90 s), and the Lambda API refuses to update a mapping
// in transition. These tests run the state machine against mappings that
// do both.

// TestPauseInTransition: the replicated topic's mapping needs 1 s to stop
// polling, and the second migrated topic's mapping, enabled by an operator
// as the drain begins, still reads Enabling for a while when
// PauseReplication starts, so its disable is refused with
// ResourceInUseException until it is Enabled. The pause waits for both
// to read Disabled, the cutover succeeds, and the numbered apps read every
// message exactly once across the switch.
func TestPauseInTransition(t *testing.T) {
	const partitions = 2
	r := newRig(t, kafkalocal.SecuritySCRAMACL, partitions, withTransitions(time.Second, 4*time.Second))
	ctx := ctxFor(t, 120*time.Second)
	l := newLedger()
	srcProd := r.startProducer(t, r.pair.Source, l, partitions, true)
	srcCons := r.startConsumer(t, r.pair.Source, l)
	r.waitFlowing(ctx, l, 20, partitions)

	sw := r.switchApps(t, l, partitions, func(context.Context) { srcCons.Stop() })
	in := r.baseInput()
	in["topics"] = []string{r.topic, r.idle}
	in["hooks"] = sw.hooks()
	var (
		ep        *lambdaendpoint.Server
		once      sync.Once
		enableErr error
	)
	res := r.run(ctx, in, Options{
		Functions: sw.funcs,
		Approve:   func(context.Context, cutover.ApprovalMessage) error { srcProd.Stop(); return nil },
		Endpoint:  func(s *lambdaendpoint.Server) { ep = s },
		// No fault: the hook only marks when WaitForDrain begins, where
		// the operator enables the second mapping.
		Fault: func(step string) bool {
			if step == cutover.StepWaitForDrain {
				once.Do(func() { enableErr = r.idleMap.SetEnabled(true) })
			}
			return false
		},
	})
	if enableErr != nil {
		t.Fatalf("enabling the second mapping: %v", enableErr)
	}
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	if n := ep.Errors("ResourceInUseException"); n == 0 {
		t.Error("no update was refused with ResourceInUseException: the test did not meet a mapping in transition")
	}
	for _, m := range []*esm.Mapping{r.mapping, r.idleMap} {
		if st := m.State(); st != esm.StateDisabled {
			t.Errorf("mapping %s (%v) reads %s after the cutover, want Disabled", m.UUID(), m.Topics(), st)
		}
	}
	if want := []string{r.mapping.UUID(), r.idleMap.UUID()}; !slices.Equal(res.Report.Paused, want) {
		t.Errorf("report's paused mappings %v, want %v", res.Report.Paused, want)
	}
	produced, missing, dup := sw.finish(t, l)
	t.Logf("produced %d, missing %d, duplicated %d", produced, missing, dup)
	if missing != 0 || dup != 0 || produced == 0 {
		t.Errorf("produced %d, missing %d, duplicated %d", produced, missing, dup)
	}
	for _, s := range res.Report.Steps {
		if s.Step == cutover.StepPauseReplication {
			t.Logf("PauseReplication took %d ms in %d polls", s.DurationMs, s.Polls)
		}
	}
}

// TestHalfFailedPauseRolledBack: PauseReplication disables the first
// mapping, then the update of the second is refused for good
// (AccessDeniedException, as for a mapping the role may not update). The
// run rolls back: the first mapping, still Disabling when Rollback
// begins, reads Enabled at the end, the second was never disabled, the
// cause says so, and records written afterwards replicate, record for
// record.
func TestHalfFailedPauseRolledBack(t *testing.T) {
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 2, withIdleEnabled())
	ctx := ctxFor(t, 120*time.Second)
	r.produce(ctx, 0, 20, 2)
	r.waitReplicated(ctx)
	if _, err := r.srcAdm.CommitOffsets(ctx, r.group, r.endOffsets(t, ctx, r.srcAdm)); err != nil {
		t.Fatal(err)
	}
	in := r.baseInput()
	in["topics"] = []string{r.topic, r.idle}
	res := r.run(ctx, in, Options{Endpoint: func(s *lambdaendpoint.Server) {
		s.SetUpdateFault(func(uuid string, enabled bool) *lambdaendpoint.APIError {
			if uuid == r.idleMap.UUID() && !enabled {
				return &lambdaendpoint.APIError{Status: http.StatusForbidden, Type: "AccessDeniedException"}
			}
			return nil
		})
	}})
	states := res.Entered()
	if res.Status != "FAILED" || res.Error != "PauseFailedError" || states[len(states)-1] != "RolledBack" {
		t.Fatalf("status %s, error %s, states %v; want FAILED in RolledBack with PauseFailedError", res.Status, res.Error, states)
	}
	for _, want := range []string{
		"failed in step PauseReplication:", "mapping " + r.idleMap.UUID() + " could not be disabled",
		"mapping " + r.mapping.UUID() + " reads Enabled", "mapping " + r.idleMap.UUID() + " reads Enabled",
		"every mapping the run disabled reads Enabled",
	} {
		if !strings.Contains(res.Cause, want) {
			t.Errorf("cause lacks %q: %s", want, res.Cause)
		}
	}
	for _, m := range []*esm.Mapping{r.mapping, r.idleMap} {
		if st := m.State(); st != esm.StateEnabled {
			t.Errorf("mapping %s (%v) reads %s after the rollback, want Enabled", m.UUID(), m.Topics(), st)
		}
	}
	if err := r.appWrite(ctx); err != nil {
		t.Errorf("source not writable after rollback: %v", err)
	}
	// Replication runs again: what is written now reaches the target.
	r.produce(ctx, 20, 40, 2)
	r.waitReplicated(ctx)
	src, err := verify.ReadAll(ctx, r.pair.Source, r.topic)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := verify.ReadAll(ctx, r.pair.Target, r.topic)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range verify.Compare(src, dst, r.topic) {
		n += len(src[p.Partition])
		if !p.OK() {
			t.Errorf("partition %d: %+v", p.Partition, p)
		}
	}
	if n != 41 { // 40 numbered records and the probe write
		t.Errorf("source holds %d records, want 41", n)
	}
}

// TestRollbackSaysWhatItConfirmed: the second mapping needs far longer
// than the run allows to stop polling (mappingTimeoutSeconds 3), so
// PauseReplication fails and Rollback cannot confirm it Enabled by its
// deadline. The run ends in RollbackFailed, naming that mapping, its
// state and the command to finish by hand, and the first mapping as read
// Enabled; it never says replication resumes.
func TestRollbackSaysWhatItConfirmed(t *testing.T) {
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 1, withIdleEnabled(), withTransitions(time.Second, esm.MaxTransition))
	ctx := ctxFor(t, 120*time.Second)
	r.produce(ctx, 0, 10, 1)
	r.waitReplicated(ctx)
	if _, err := r.srcAdm.CommitOffsets(ctx, r.group, r.endOffsets(t, ctx, r.srcAdm)); err != nil {
		t.Fatal(err)
	}
	in := r.baseInput()
	in["topics"] = []string{r.topic, r.idle}
	in["mappingTimeoutSeconds"] = 3
	res := r.run(ctx, in, Options{})
	states := res.Entered()
	if res.Status != "FAILED" || res.Error != "RollbackIncompleteError" || states[len(states)-1] != "RollbackFailed" {
		t.Fatalf("status %s, error %s, states %v; want FAILED in RollbackFailed with RollbackIncompleteError", res.Status, res.Error, states)
	}
	idle, repl := r.idleMap.UUID(), r.mapping.UUID()
	for _, want := range []string{
		"mapping " + idle + " reads Disabling, not Enabled", "--uuid " + idle + " --enabled",
		"mapping " + repl + " reads Enabled", "removed DENY WRITE User:* on topic " + r.topic,
		"failed in step PauseReplication", "mapping " + idle + " reads Disabling, not Disabled",
	} {
		if !strings.Contains(res.Cause, want) {
			t.Errorf("cause lacks %q: %s", want, res.Cause)
		}
	}
	if strings.Contains(res.Cause, "resumes") || strings.Contains(res.Cause, "--uuid "+repl) {
		t.Errorf("cause claims more than was confirmed: %s", res.Cause)
	}
	if st := r.mapping.State(); st != esm.StateEnabled {
		t.Errorf("first mapping reads %s, want Enabled as the cause says", st)
	}
	if st := r.idleMap.State(); st != esm.StateDisabling {
		t.Errorf("second mapping reads %s, want Disabling as the cause says", st)
	}
	if err := r.appWrite(ctx); err != nil {
		t.Errorf("source not writable after the rollback: %v", err)
	}
}

// TestPauseManyMappingsTimed measures, by hand, how long PauseReplication
// and Rollback take for many mappings that each need a long transition:
// KMIG_MEASURE_PAUSE=100 (the number of mappings) and optionally
// KMIG_MEASURE_TRANSITION=90s (the default). The run pauses them all, then
// a StopConsumers hook refuses, so Rollback re-enables them all. It is
// skipped unless KMIG_MEASURE_PAUSE is set: with 90 s transitions it
// takes several minutes.
func TestPauseManyMappingsTimed(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("KMIG_MEASURE_PAUSE"))
	if n < 2 {
		t.Skip("set KMIG_MEASURE_PAUSE to the number of mappings (2 or more) to measure")
	}
	transition := esm.MaxTransition
	if v := os.Getenv("KMIG_MEASURE_TRANSITION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		transition = d
	}
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 1, withIdleEnabled(), withTransitions(transition, transition))
	ctx := ctxFor(t, 4*transition+5*time.Minute)
	// n-2 more mappings read the second topic, each as its own group.
	for i := range n - 2 {
		if _, err := r.reg.Create(esm.Config{
			UUID: fmt.Sprintf("b0000000-0000-4000-8000-%012d", i), FunctionName: DefaultReplicatorFunction,
			Topics: []string{r.idle}, ConsumerGroupID: fmt.Sprintf("kmig-replicator-%s-%d", r.idle, i),
			BootstrapServers: r.pair.Source.Bootstrap(), ClientOptions: r.pair.Source.ClientOpts(r.pair.Source.AppCredentials()),
			MaximumBatchingWindow: 20 * time.Millisecond, Transition: transition,
		}, r.repl); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range r.reg.List() {
		if err := m.WaitState(ctx, esm.StateEnabled); err != nil {
			t.Fatal(err)
		}
	}
	r.produce(ctx, 0, 10, 1)
	r.waitReplicated(ctx)
	if _, err := r.srcAdm.CommitOffsets(ctx, r.group, r.endOffsets(t, ctx, r.srcAdm)); err != nil {
		t.Fatal(err)
	}
	in := r.baseInput()
	in["topics"] = []string{r.topic, r.idle}
	in["pollSeconds"] = cutover.DefaultPollSeconds
	in["hooks"] = map[string]any{"stopConsumers": lambdaHook("refuse")}
	res := r.run(ctx, in, Options{Timeout: 4*transition + 5*time.Minute, Functions: map[string]lambda.Handler{
		"refuse": hookFunc(func(context.Context) error { return &HookRefusedError{Msg: "measurement: roll back"} }),
	}})
	first := func(state string) time.Time {
		for _, e := range res.Events {
			if e.Type == "StateEntered" && e.State == state {
				return e.Time()
			}
		}
		t.Fatalf("state %s never entered: %v", state, res.Entered())
		return time.Time{}
	}
	pause := first("StopConsumers").Sub(first("PauseReplication"))
	rollback := res.Events[len(res.Events)-1].Time().Sub(first("Rollback"))
	polls := strings.Count(strings.Join(res.Entered(), " "), "PauseReplicationWait")
	t.Logf("%d mappings, transition %v, pollSeconds %d: PauseReplication %v (%d waits), Rollback %v; ended %s %s",
		n, transition, cutover.DefaultPollSeconds, pause.Round(100*time.Millisecond), polls, rollback.Round(100*time.Millisecond), res.Status, res.Error)
	if res.Error != "HookFailedError" || !strings.Contains(res.Cause, "every mapping the run disabled reads Enabled") {
		t.Errorf("run ended %s: %s", res.Error, res.Cause)
	}
	for _, m := range r.reg.List() {
		if st := m.State(); st != esm.StateEnabled {
			t.Errorf("mapping %s reads %s after the rollback", m.UUID(), st)
		}
	}
}

// TestMappingResumedBeforeTranslation: a mapping enabled again after
// PauseReplication (as the reconciler does when it paused the mapping
// itself to seed a partition added on the source) is found before any
// offset is translated: the run rolls back with MappingResumedError, the
// fence is removed and no target offset is committed.
func TestMappingResumedBeforeTranslation(t *testing.T) {
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 2)
	ctx := ctxFor(t, 120*time.Second)
	r.produce(ctx, 0, 20, 2)
	r.waitReplicated(ctx)
	if _, err := r.srcAdm.CommitOffsets(ctx, r.group, r.endOffsets(t, ctx, r.srcAdm)); err != nil {
		t.Fatal(err)
	}
	before := r.snapshot(ctx)
	in := r.baseInput()
	in["hooks"] = map[string]any{"stopConsumers": lambdaHook("resume-replication")}
	o := Options{Functions: map[string]lambda.Handler{"resume-replication": hookFunc(func(ctx context.Context) error {
		return r.mapping.SetEnabled(true)
	})}}
	res := r.run(ctx, in, o)
	states := res.Entered()
	if res.Status != "FAILED" || res.Error != "MappingResumedError" || states[len(states)-1] != "RolledBack" {
		t.Fatalf("status %s, error %s, states %v; want FAILED in RolledBack with MappingResumedError", res.Status, res.Error, states)
	}
	if !strings.Contains(res.Cause, "mapping "+r.mapping.UUID()) {
		t.Errorf("cause does not name the mapping: %s", res.Cause)
	}
	after := r.snapshot(ctx)
	if !reflect.DeepEqual(before.ACLs, after.ACLs) {
		t.Errorf("fence left behind:\nbefore %v\nafter  %v", before.ACLs, after.ACLs)
	}
	for _, o := range after.Offsets {
		if strings.HasPrefix(o, "target "+r.group+" ") {
			t.Errorf("target offset committed for %s: %s", r.group, o)
		}
	}
}
