package rehearsal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/apps"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/cutoverrun"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
)

// AppTopic and AppGroup are where the demo's numbered-message apps
// produce and consume.
const (
	AppTopic = "orders"
	AppGroup = "billing"
)

// CutoverOutcome is what the rehearsal's cutover showed.
type CutoverOutcome struct {
	Status       string
	Error, Cause string
	// States are the states entered, in order.
	States []string
	// Produced counts the numbers the producer apps wrote; Missing those
	// never consumed, Duplicated the extra times any was consumed. After a
	// failed cutover they count what the apps did up to the failure and, if
	// the apps were not switched, a consumer resumed on the source after it.
	Produced, Missing, Duplicated int
	CutoverMs, WaitingMs          int64
	// Topics counts the topics a successful cutover migrated.
	Topics int
}

// Succeeded reports whether the execution succeeded.
func (o *CutoverOutcome) Succeeded() bool { return o.Status == "SUCCEEDED" }

// Summary is the failure in one line: the state the execution ended in,
// the error name and its cause. It is empty for a successful execution.
func (o *CutoverOutcome) Summary() string {
	if o.Succeeded() {
		return ""
	}
	last := "?"
	if n := len(o.States); n > 0 {
		last = o.States[n-1]
	}
	cause := causeText(o.Cause)
	if !strings.HasPrefix(cause, o.Error+": ") {
		cause = o.Error + ": " + cause
	}
	return fmt.Sprintf("cutover %s in state %s: %s", o.Status, last, cause)
}

// causeText is a Fail state's cause on one line: the message of a Lambda
// error's JSON cause, else the cause itself.
func causeText(cause string) string {
	var le struct{ ErrorMessage string }
	if json.Unmarshal([]byte(cause), &le) == nil && le.ErrorMessage != "" {
		cause = le.ErrorMessage
	}
	cause = strings.Join(strings.Fields(cause), " ")
	if len(cause) > 600 {
		cause = cause[:600] + "…"
	}
	return cause
}

// CutoverOptions say how RunCutover migrates: every topic the
// replicator's mappings read, as the cutover input leaves "topics" out.
type CutoverOptions struct {
	// AppTopic is where the apps produce and consume; it has
	// AppPartitions partitions.
	AppTopic      string
	AppPartitions int32
	// Group is the apps' consumer group; empty means AppGroup.
	Group string
	// Input holds cutover input fields that replace the rehearsal's
	// defaults (no "topics": every mapped topic; "groups": [Group];
	// "fence": "acl"; short loop timings), for example {"fence": "none"}
	// or {"topics": ["orders"]}; a nil value removes the field.
	Input map[string]any
	Log   *slog.Logger
}

// RunCutover runs the real state machine under the local interpreter while
// a producer and a consumer app number their messages. Its lambda hooks
// stop the apps on the source and restart them against the target. It
// writes the report to w. A failed execution is an outcome, not an error.
func RunCutover(ctx context.Context, w io.Writer, pair *kafkalocal.Pair, repl *Replication, o CutoverOptions) (*CutoverOutcome, error) {
	topic, group, partitions := o.AppTopic, o.Group, o.AppPartitions
	if group == "" {
		group = AppGroup
	}
	app := pair.Source.AppCredentials()
	ledger := apps.NewLedger()
	srcProd, err := apps.StartProducer(pair.Source, app, ledger, topic, partitions)
	if err != nil {
		return nil, err
	}
	defer srcProd.Stop()
	srcCons, err := apps.StartConsumer(pair.Source, app, ledger, topic, group)
	if err != nil {
		return nil, err
	}
	defer srcCons.Stop()
	// Live traffic before the cutover: the source's consumer has read
	// some of it, and the replicator copies it as it flows.
	if err := waitDistinct(ctx, ledger, liveNumbers); err != nil {
		return nil, fmt.Errorf("apps on the source: %w", err)
	}

	var tgtProd, tgtCons *apps.App
	hook := func(f func() error) lambda.Handler {
		return lambda.NewHandler(func(ctx context.Context, _ json.RawMessage) (map[string]string, error) {
			if err := f(); err != nil {
				return nil, err
			}
			return map[string]string{"ok": "true"}, nil
		})
	}
	funcs := map[string]lambda.Handler{
		"stop-producers": hook(func() error { srcProd.Stop(); return srcProd.Err() }),
		"stop-consumers": hook(func() error { srcCons.Stop(); return nil }),
		"start-consumers": hook(func() error {
			var err error
			tgtCons, err = apps.StartConsumer(pair.Target, pair.Target.AppCredentials(), ledger, topic, group)
			return err
		}),
		"start-producers": hook(func() error {
			var err error
			tgtProd, err = apps.StartProducer(pair.Target, pair.Target.AppCredentials(), ledger, topic, partitions)
			return err
		}),
	}
	hookRef := func(name string) map[string]any {
		return map[string]any{"type": "lambda", "functionArn": lambdaendpoint.FunctionArn(name)}
	}
	in := map[string]any{
		"groups": []string{group}, "fence": "acl",
		"hooks": map[string]any{
			"stopProducers": hookRef("stop-producers"), "stopConsumers": hookRef("stop-consumers"),
			"startConsumers": hookRef("start-consumers"), "startProducers": hookRef("start-producers"),
		},
		"quietSeconds": 1, "drainTimeoutSeconds": 60, "consumersTimeoutSeconds": 30, "verifySeconds": 30, "pollSeconds": 1,
	}
	for k, v := range o.Input {
		if v == nil {
			delete(in, k)
		} else {
			in[k] = v
		}
	}
	input, _ := json.Marshal(in)
	fmt.Fprintf(w, "   cutover input: %s\n", input)
	res, err := cutoverrun.Run(ctx, cutoverrun.Options{
		Source: pair.Source, Target: pair.Target, Mappings: repl.Registry,
		ReplicatorFunction: FunctionName, Replicator: repl.Replicator,
		Functions: funcs, Input: input, Timeout: 3 * time.Minute, Log: o.Log,
	})
	if err != nil {
		return nil, err
	}
	out := &CutoverOutcome{Status: res.Status, Error: res.Error, Cause: res.Cause, States: res.Entered()}
	fmt.Fprintf(w, "   states: %v\n", out.States)
	if !out.Succeeded() {
		fmt.Fprintf(w, "   %s\n", out.Summary())
		// Count what the apps did. A cutover that failed before the
		// switch rolled back to the source: the consumer resumes there
		// and must still read every number exactly once.
		srcProd.Stop()
		if tgtProd != nil {
			tgtProd.Stop()
		}
		cons := tgtCons
		if cons == nil {
			srcCons.Stop()
			fmt.Fprintf(w, "   resuming the consumer on the source to count what the apps kept\n")
			if cons, err = apps.StartConsumer(pair.Source, app, ledger, topic, group); err != nil {
				return nil, err
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		out.Produced, out.Missing, out.Duplicated = ledger.WaitConsumed(wctx)
		cons.Stop()
		return out, nil
	}
	// The apps run on the target until its consumer has read numbers
	// written there, then stop; the consumer must then have read every
	// number exactly once.
	if err := waitDistinct(ctx, ledger, ledger.Distinct()+liveNumbers); err != nil {
		return nil, fmt.Errorf("apps on the target: %w", err)
	}
	if tgtProd != nil {
		tgtProd.Stop()
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out.Produced, out.Missing, out.Duplicated = ledger.WaitConsumed(wctx)
	if tgtCons != nil {
		tgtCons.Stop()
	}
	if r := res.Report; r != nil {
		out.CutoverMs, out.WaitingMs, out.Topics = r.CutoverMs, r.WaitingMs, len(r.Topics)
		// With many topics the lists are long: they are counted, and
		// the rest of the report printed whole.
		var short map[string]any
		b, _ := json.Marshal(r)
		_ = json.Unmarshal(b, &short)
		for _, k := range []string{"topics", "mappings", "pausedMappings", "partitions"} {
			delete(short, k)
		}
		rep, _ := json.MarshalIndent(short, "   ", "  ")
		fmt.Fprintf(w, "   report, its lists counted: %d topics (%s … %s), %d mappings (%d paused), %d partitions; the rest:\n   %s\n",
			len(r.Topics), first(r.Topics), last(r.Topics), r.MappingCount, len(r.Paused), len(r.Partitions), rep)
	}
	return out, nil
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

func last(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[len(ss)-1]
}

// toolsReady finds the repository root and the local interpreter tools.
func toolsReady() (string, string, error) {
	root, err := cutoverrun.Root()
	if err != nil {
		return "", "", err
	}
	return cutoverrun.Tools(root)
}

// liveNumbers is how many numbers the apps' consumer reads on each cluster
// before the rehearsal moves on: before the cutover on the source, after
// it on the target.
const liveNumbers = 50

// waitDistinct waits, at most 30 s, until the ledger's consumer has read n
// distinct numbers.
func waitDistinct(ctx context.Context, l *apps.Ledger, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return l.WaitDistinct(ctx, n)
}
