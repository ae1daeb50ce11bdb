package cutoverrun

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// The local interpreter enforces Step Functions' 256 KiB payload limit as
// AWS does: a task result, a task input after Parameters, or a state output
// after ResultPath over the limit fails the execution with
// States.DataLimitExceeded, which a Catch on States.ALL does not catch, and
// a function is never invoked with an input over the limit.
func TestInterpreterEnforcesTheStateLimit(t *testing.T) {
	root := requireTools(t)
	node, dir, err := Tools(root)
	if err != nil {
		t.Fatal(err)
	}
	ep := lambdaendpoint.New(esm.NewRegistry())
	defer ep.Close()
	// make returns a string of the asked size, so tasks' results can be
	// sized exactly.
	ep.Register("make", lambda.NewHandler(func(ctx context.Context, in struct {
		Size int `json:"size"`
	}) (string, error) {
		return strings.Repeat("x", in.Size), nil
	}))
	url, err := ep.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fn := lambdaendpoint.FunctionArn("make")
	catchAll := []map[string]any{{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.caught", "Next": "Caught"}}
	def := map[string]any{
		"StartAt": "Choose",
		"States": map[string]any{
			"Choose": map[string]any{"Type": "Choice", "Default": "Result", "Choices": []map[string]any{
				{"Variable": "$.case", "StringEquals": "input", "Next": "BigInput"},
				{"Variable": "$.case", "StringEquals": "output", "Next": "BigOutput"},
			}},
			// The task's result replaces the state.
			"Result": map[string]any{"Type": "Task", "Resource": fn, "Parameters": map[string]any{"size.$": "$.size"},
				"Catch": catchAll, "Next": "Done"},
			// Parameters doubles the input's blob.
			"BigInput": map[string]any{"Type": "Task", "Resource": fn, "Parameters": map[string]any{"size": 1, "a.$": "$.blob", "b.$": "$.blob"},
				"Catch": catchAll, "Next": "Done"},
			// The result is put beside the input's blob.
			"BigOutput": map[string]any{"Type": "Task", "Resource": fn, "Parameters": map[string]any{"size.$": "$.size"},
				"ResultPath": "$.result", "Catch": catchAll, "Next": "Done"},
			"Done":   map[string]any{"Type": "Succeed"},
			"Caught": map[string]any{"Type": "Succeed"},
		},
	}
	b, _ := json.Marshal(def)
	path := filepath.Join(t.TempDir(), "limit.asl.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const limit = cutover.StateLimitBytes
	blob := strings.Repeat("y", 150*1024)
	for _, c := range []struct {
		name     string
		input    map[string]any
		exceeded bool
		invoked  int // invocations of make
	}{
		{"result under the limit", map[string]any{"case": "result", "size": limit - 1024}, false, 1},
		{"result over the limit", map[string]any{"case": "result", "size": limit + 1}, true, 1},
		{"input over the limit after Parameters", map[string]any{"case": "input", "blob": blob}, true, 0},
		{"output over the limit after ResultPath", map[string]any{"case": "output", "blob": blob, "size": 150 * 1024}, true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := ep.Invocations("make")
			in, _ := json.Marshal(c.input)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res := &Result{}
			if err := interpret(ctx, node, dir, path, nil, in, url, res); err != nil {
				t.Fatal(err)
			}
			if got := ep.Invocations("make") - before; got != c.invoked {
				t.Errorf("make invoked %d times; want %d", got, c.invoked)
			}
			if slices.Contains(res.Entered(), "Caught") {
				t.Errorf("the Catch on States.ALL ran: %v", res.Entered())
			}
			if !c.exceeded {
				if res.Status != "SUCCEEDED" || res.LargestState.Bytes < limit-1024 || res.LargestState.Bytes > limit {
					t.Fatalf("status %s %s %s, largest %+v; want SUCCEEDED with a state just under the limit", res.Status, res.Error, res.Cause, res.LargestState)
				}
				return
			}
			if res.Status != "FAILED" || res.Error != "States.DataLimitExceeded" {
				t.Fatalf("status %s error %s (%s); want FAILED States.DataLimitExceeded", res.Status, res.Error, res.Cause)
			}
			if slices.Contains(res.Entered(), "Done") {
				t.Errorf("the run went on after the limit: %v", res.Entered())
			}
		})
	}
}
