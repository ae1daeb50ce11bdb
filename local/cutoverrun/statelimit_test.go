package cutoverrun

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// The execution state stays under Step Functions' 256 KiB limit whatever
// the input: Validate refuses an input whose state could outgrow it,
// before changing anything, and a hook function failing with a huge
// message still ends in Rollback, not in States.DataLimitExceeded.
func TestStateLimit(t *testing.T) {
	r := newRig(t, kafkalocal.SecuritySCRAMACL, 2)
	ctx := ctxFor(t, 120*time.Second)
	r.produce(ctx, 0, 20, 2)
	r.waitReplicated(ctx)
	before := r.snapshot(ctx)

	t.Run("Validate refuses a state that could pass the limit", func(t *testing.T) {
		in := r.baseInput()
		// A 220 KiB hook payload: the input is under the limit, the
		// state it makes could not stay under it.
		in["hooks"] = map[string]any{"stopProducers": map[string]any{"type": "lambda", "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:ok",
			"payload": map[string]any{"note": strings.Repeat("n", 220*1024)}}}
		res := r.run(ctx, in, Options{})
		states := res.Entered()
		if res.Status != "FAILED" || res.Error != "StateTooLargeError" || states[len(states)-1] != "InvalidInput" {
			t.Fatalf("status %s error %s states %v: %s", res.Status, res.Error, states, res.Cause)
		}
		if !strings.Contains(res.Cause, "KiB") || !strings.Contains(res.Cause, "256 KiB limit") {
			t.Errorf("cause does not name the numbers: %s", res.Cause)
		}
		if after := r.snapshot(ctx); !reflect.DeepEqual(before, after) {
			t.Errorf("a refused run changed something:\nbefore %+v\nafter  %+v", before, after)
		}
	})

	t.Run("a hook's huge error message still rolls back", func(t *testing.T) {
		huge := strings.Repeat("consumers would not stop. ", 12*1024) // ~300 KiB
		funcs := map[string]lambda.Handler{
			"refuse": hookFunc(func(context.Context) error { return &HookRefusedError{Msg: huge} }),
		}
		in := r.baseInput()
		in["hooks"] = map[string]any{"stopConsumers": lambdaHook("refuse")}
		res := r.run(ctx, in, Options{Functions: funcs})
		states := res.Entered()
		if res.Status != "FAILED" || res.Error != "HookFailedError" || states[len(states)-1] != "RolledBack" {
			t.Fatalf("status %s error %s states %v (largest state %+v)", res.Status, res.Error, states, res.LargestState)
		}
		if res.LargestState.Bytes > cutover.StateLimitBytes {
			t.Fatalf("largest state %+v over the limit", res.LargestState)
		}
		if err := r.appWrite(ctx); err != nil {
			t.Errorf("source not writable after rollback: %v", err)
		}
		if st := r.mapping.State(); st != esm.StateEnabled {
			t.Errorf("replicator mapping %s after rollback, want Enabled", st)
		}
	})
}
