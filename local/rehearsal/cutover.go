package rehearsal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/apps"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/cutoverrun"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
)

// AppTopic and AppGroup are where the rehearsal's numbered-message apps
// produce and consume.
const (
	AppTopic = "orders"
	AppGroup = "billing"
)

// CutoverOutcome is what the rehearsal's cutover showed.
type CutoverOutcome struct {
	Status                        string
	Error, Cause                  string
	Produced, Missing, Duplicated int
	CutoverMs, WaitingMs          int64
}

// RunCutover runs the real state machine under the local interpreter while
// a producer and a consumer app number their messages. Its lambda hooks
// stop the apps on the source and restart them against the target. It
// writes the report to w.
func RunCutover(ctx context.Context, w io.Writer, pair *kafkalocal.Pair, repl *Replication, topics []string, partitions int32, log *slog.Logger) (*CutoverOutcome, error) {
	ledger := apps.NewLedger()
	srcProd, err := apps.StartProducer(pair.Source, kafkalocal.App(), ledger, AppTopic, partitions)
	if err != nil {
		return nil, err
	}
	defer srcProd.Stop()
	srcCons, err := apps.StartConsumer(pair.Source, kafkalocal.App(), ledger, AppTopic, AppGroup)
	if err != nil {
		return nil, err
	}
	defer srcCons.Stop()
	time.Sleep(time.Second) // live traffic, replicated as it flows

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
			tgtCons, err = apps.StartConsumer(pair.Target, kafkalocal.App(), ledger, AppTopic, AppGroup)
			return err
		}),
		"start-producers": hook(func() error {
			var err error
			tgtProd, err = apps.StartProducer(pair.Target, kafkalocal.App(), ledger, AppTopic, partitions)
			return err
		}),
	}
	hookRef := func(name string) map[string]any {
		return map[string]any{"type": "lambda", "functionArn": lambdaendpoint.FunctionArn(name)}
	}
	input, _ := json.Marshal(map[string]any{
		"topics": topics, "groups": []string{AppGroup}, "fence": "acl",
		"hooks": map[string]any{
			"stopProducers": hookRef("stop-producers"), "stopConsumers": hookRef("stop-consumers"),
			"startConsumers": hookRef("start-consumers"), "startProducers": hookRef("start-producers"),
		},
		"quietSeconds": 1, "drainTimeoutSeconds": 60, "consumersTimeoutSeconds": 30, "verifySeconds": 30, "pollSeconds": 1,
	})
	fmt.Fprintf(w, "   cutover input: %s\n", input)
	res, err := cutoverrun.Run(ctx, cutoverrun.Options{
		Source: pair.Source, Target: pair.Target, Mappings: repl.Registry,
		ReplicatorFunction: FunctionName, Replicator: repl.Replicator,
		Functions: funcs, Input: input, Timeout: 3 * time.Minute, Log: log,
	})
	if err != nil {
		return nil, err
	}
	out := &CutoverOutcome{Status: res.Status, Error: res.Error, Cause: res.Cause}
	fmt.Fprintf(w, "   states: %v\n", res.Entered())
	if res.Status != "SUCCEEDED" {
		return out, nil
	}
	// The apps run on the target for a moment, then stop; the consumer
	// must then have read every number exactly once.
	time.Sleep(500 * time.Millisecond)
	if tgtProd != nil {
		tgtProd.Stop()
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out.Produced, out.Missing, out.Duplicated = ledger.WaitConsumed(wctx)
	if tgtCons != nil {
		tgtCons.Stop()
	}
	if res.Report != nil {
		out.CutoverMs, out.WaitingMs = res.Report.CutoverMs, res.Report.WaitingMs
		rep, _ := json.MarshalIndent(res.Report, "   ", "  ")
		fmt.Fprintf(w, "   report:\n   %s\n", rep)
	}
	return out, nil
}

// toolsReady finds the repository root and the local interpreter tools.
func toolsReady() (string, string, error) {
	root, err := cutoverrun.Root()
	if err != nil {
		return "", "", err
	}
	return cutoverrun.Tools(root)
}
