package cutoverrun

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/apps"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// TestHappyPath runs the whole cutover through the interpreter while a
// producer and a consumer app number their messages: the run succeeds with
// the report, writes to the source are denied while fenced, and the
// consumer reads every message exactly once across the switch.
func TestHappyPath(t *testing.T) {
	const partitions = 3
	testHappyPath(t, newRig(t, kafkalocal.SecuritySCRAMACL, partitions), partitions)
}

// switched moves the numbered apps to the target through lambda hooks:
// stop-consumers runs the caller's stop, start-consumers starts a consumer
// on the target, start-producers a numbered producer there.
type switched struct {
	funcs map[string]lambda.Handler
	mu    sync.Mutex
	prod  *apps.App
}

func (r *rig) switchApps(t *testing.T, l *ledger, partitions int32, stop func(ctx context.Context)) *switched {
	sw := &switched{}
	sw.funcs = map[string]lambda.Handler{
		"stop-consumers":  hookFunc(func(ctx context.Context) error { stop(ctx); return nil }),
		"start-consumers": hookFunc(func(context.Context) error { r.startConsumer(t, r.pair.Target, l); return nil }),
		"start-producers": hookFunc(func(context.Context) error {
			sw.mu.Lock()
			defer sw.mu.Unlock()
			sw.prod = r.startProducer(t, r.pair.Target, l, partitions, false)
			return nil
		}),
	}
	return sw
}

// hooks is the input's hooks: StopProducers by approval, the rest by the
// functions above.
func (sw *switched) hooks() map[string]any {
	return map[string]any{
		"stopProducers":  map[string]any{"type": "approval"},
		"stopConsumers":  lambdaHook("stop-consumers"),
		"startConsumers": lambdaHook("start-consumers"),
		"startProducers": lambdaHook("start-producers"),
	}
}

// producer is the target producer StartProducers started.
func (sw *switched) producer(t *testing.T) *apps.App {
	t.Helper()
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.prod == nil {
		t.Fatal("StartProducers hook did not run")
	}
	return sw.prod
}

// finish lets the target producer write 20 numbers, stops it, and waits
// (up to 20 s) for the consumer to read every number; it returns the
// ledger's counts.
func (sw *switched) finish(t *testing.T, l *ledger) (produced, missing, dup int) {
	t.Helper()
	p := sw.producer(t)
	before, _, _ := l.Check()
	waitFor(t, time.Minute, "the target producer to write 20 numbers", func() bool {
		if err := p.Err(); err != nil {
			t.Fatalf("target producer: %v", err)
		}
		n, _, _ := l.Check()
		return n >= before+20
	})
	p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return l.WaitConsumed(ctx)
}

// testHappyPath is TestHappyPath's body on r, whose topic has partitions
// partitions (embedded or real brokers).
func testHappyPath(t *testing.T, r *rig, partitions int32) {
	ctx := ctxFor(t, 120*time.Second)
	l := newLedger()

	srcProd := r.startProducer(t, r.pair.Source, l, partitions, true)
	srcCons := r.startConsumer(t, r.pair.Source, l)
	r.waitFlowing(ctx, l, 20, partitions)

	var (
		mu                 sync.Mutex
		fencedErr, readErr error
		stopProducersCalls int
	)
	sw := r.switchApps(t, l, partitions, func(ctx context.Context) {
		// The source is fenced here: the application user's writes must
		// be refused, its reads not.
		err := r.appWrite(ctx)
		rerr := r.appRead(ctx)
		mu.Lock()
		fencedErr, readErr = err, rerr
		mu.Unlock()
		srcCons.Stop()
	})
	funcs, in := sw.funcs, r.baseInput()
	in["hooks"] = sw.hooks()
	res := r.run(ctx, in, Options{
		Functions: funcs,
		Approve: func(ctx context.Context, m cutover.ApprovalMessage) error {
			if m.Hook != "StopProducers" || m.TaskToken == "" {
				return errors.New("unexpected approval " + m.Hook)
			}
			mu.Lock()
			stopProducersCalls++
			mu.Unlock()
			srcProd.Stop()
			return nil
		},
	})
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
	}
	if err := srcProd.Err(); err != nil {
		t.Fatalf("source producer failed before it was stopped: %v", err)
	}
	mu.Lock()
	if !errors.Is(fencedErr, kerr.TopicAuthorizationFailed) {
		t.Errorf("write to the fenced source: %v, want TOPIC_AUTHORIZATION_FAILED", fencedErr)
	}
	if readErr != nil {
		t.Errorf("read from the fenced source: %v", readErr)
	}
	if stopProducersCalls != 1 || len(res.Approvals) != 1 {
		t.Errorf("approvals: %d calls, %d requests", stopProducersCalls, len(res.Approvals))
	}
	mu.Unlock()
	produced, missing, dup := sw.finish(t, l)
	t.Logf("produced %d, consumed exactly once: missing %d, duplicated %d", produced, missing, dup)
	if missing != 0 || dup != 0 || produced == 0 {
		t.Errorf("produced %d, missing %d, duplicated %d", produced, missing, dup)
	}

	rep := res.Report
	var created []string
	for _, a := range rep.Fence.Created {
		created = append(created, a.String())
	}
	wantFence := []string{"DENY WRITE User:* on topic " + r.topic}
	if r.input["allowEveryoneIfNoAclFound"] == true {
		wantFence = []string{"ALLOW ALL User:* on topic " + r.topic, "DENY WRITE User:* on topic " + r.topic}
	}
	if rep.Outcome != "succeeded" || !rep.Fence.Applied || !slices.Equal(created, wantFence) || len(rep.Fence.Remains) != len(wantFence) {
		t.Errorf("fence in report: %+v, want created %v", rep.Fence, wantFence)
	}
	if len(rep.Partitions) != int(partitions) {
		t.Errorf("report has %d partitions, want %d", len(rep.Partitions), partitions)
	}
	for _, pr := range rep.Partitions {
		if pr.TargetTailSource != pr.SourceLast || pr.SourceEnd != pr.TargetEnd {
			t.Errorf("partition not drained in report: %+v", pr)
		}
	}
	if len(rep.Groups) != 1 || rep.Groups[0].Status != cutover.GroupTranslated || !rep.Groups[0].Verified {
		t.Errorf("groups in report: %+v", rep.Groups)
	}
	for _, s := range rep.Steps {
		if s.Skipped || s.StartedAt.IsZero() || s.EndedAt.IsZero() || s.EndedAt.Before(s.StartedAt) {
			t.Errorf("step times: %+v", s)
		}
	}
	if st := r.mapping.State(); st != esm.StateDisabled {
		t.Errorf("replicator mapping is %s after the cutover, want Disabled", st)
	}
	t.Logf("cutover StopProducers→VerifyTarget %d ms, of which waiting (loops and hooks) %d ms", rep.CutoverMs, rep.WaitingMs)
	for _, s := range rep.Steps {
		t.Logf("  %-22s %6d ms polls=%d derived=%v", s.Step, s.DurationMs, s.Polls, s.Derived)
	}
}
