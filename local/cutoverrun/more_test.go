package cutoverrun

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// TestDryRunChangesNothing proves a dry run returns the plan and leaves
// ACLs, mappings and committed offsets on both clusters byte-for-byte
// unchanged.
func TestDryRunChangesNothing(t *testing.T) {
	testDryRunChangesNothing(t, newRig(t, kafkalocal.SecuritySCRAMACL, 2))
}

func testDryRunChangesNothing(t *testing.T, r *rig) {
	ctx := ctxFor(t, 60*time.Second)
	r.produce(ctx, 0, 30, 2)
	r.waitReplicated(ctx)
	if _, err := r.srcAdm.CommitOffsets(ctx, r.group, r.endOffsets(t, ctx, r.srcAdm)); err != nil {
		t.Fatal(err)
	}
	before := r.snapshot(ctx)
	in := r.baseInput()
	in["dryRun"] = true
	res := r.run(ctx, in, Options{})
	if res.Status != "SUCCEEDED" || res.Report == nil || !res.Report.DryRun || res.Report.Plan == nil {
		t.Fatalf("status %s %s %s", res.Status, res.Error, res.Cause)
	}
	if got := res.Entered(); !reflect.DeepEqual(got, []string{"Validate", "IsDryRun", "Plan"}) {
		t.Errorf("states %v", got)
	}
	p := res.Report.Plan
	if len(p.ACLsToCreate) != 1 || p.ACLsToCreate[0].Topic != r.topic || !reflect.DeepEqual(p.MappingsToDisable, []string{r.mapping.UUID()}) {
		t.Errorf("plan %+v", p)
	}
	g := res.Report.Groups
	if len(g) != 1 || g[0].Status != cutover.GroupWouldTranslate || len(g[0].Partitions) != 2 || g[0].Partitions[0].TargetOffset != 15 {
		t.Errorf("groups %+v", g)
	}
	if after := r.snapshot(ctx); !reflect.DeepEqual(before, after) {
		t.Errorf("dry run changed state:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestLaggingGroup proves translation of a group behind on the source is
// exact record for record with allowLaggingGroups, and refused without it.
// The source partition's log start is moved so that source and target
// offsets differ.
func TestLaggingGroup(t *testing.T) { testLaggingGroup(t, newRig(t, kafkalocal.SecuritySCRAMACL, 2)) }

func testLaggingGroup(t *testing.T, r *rig) {
	ctx := ctxFor(t, 90*time.Second)
	// A mapping is updated once created (the API refuses an update while
	// it is Creating).
	if err := r.mapping.WaitState(ctx, esm.StateEnabled); err != nil {
		t.Fatal(err)
	}
	if err := r.mapping.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if err := r.mapping.WaitState(ctx, esm.StateDisabled); err != nil {
		t.Fatal(err)
	}
	var rs []*kgo.Record
	for i := 0; i < 30; i++ {
		rs = append(rs, &kgo.Record{Topic: r.topic, Partition: 0, Value: []byte(strconv.Itoa(i))})
	}
	if err := r.pair.Source.ProduceSync(ctx, rs...); err != nil {
		t.Fatal(err)
	}
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: r.topic, Partition: 0, At: 10, LeaderEpoch: -1})
	if resp, err := r.srcAdm.DeleteRecords(ctx, del); err != nil || resp.Error() != nil {
		t.Fatalf("DeleteRecords: %v %v", err, resp.Error())
	}
	if err := r.mapping.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	r.waitTargetEnd(ctx, 20) // source 10..29 → target 0..19
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: r.topic, Partition: 0, At: 15, LeaderEpoch: -1})
	if _, err := r.srcAdm.CommitOffsets(ctx, r.group, commit); err != nil {
		t.Fatal(err)
	}

	t.Run("refused without allowLaggingGroups", func(t *testing.T) {
		res := r.run(ctx, r.baseInput(), Options{})
		if res.Status != "FAILED" || res.Error != "LaggingGroupError" || !strings.Contains(res.Cause, r.group) || !strings.Contains(res.Cause, r.topic+"/0") {
			t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
		}
	})
	t.Run("exact with allowLaggingGroups", func(t *testing.T) {
		l := newLedger()
		funcs := map[string]lambda.Handler{"start-consumers": hookFunc(func(context.Context) error {
			r.startConsumer(t, r.pair.Target, l)
			return nil
		})}
		in := r.baseInput()
		in["allowLaggingGroups"] = true
		in["hooks"] = map[string]any{"startConsumers": lambdaHook("start-consumers")}
		res := r.run(ctx, in, Options{Functions: funcs})
		if res.Status != "SUCCEEDED" {
			t.Fatalf("status %s: %s: %s", res.Status, res.Error, res.Cause)
		}
		gp := res.Report.Groups[0].Partitions[0]
		if gp.SourceOffset != 15 || gp.TargetOffset != 5 || gp.Method != "search" {
			t.Errorf("translation %+v, want source 15 → target 5 by search", gp)
		}
		// The target consumer read exactly source records 15..29, once.
		eventually(30*time.Second, func() bool { return l.Distinct() >= 15 }) // the checks below say what is missing
		for i := 0; i < 30; i++ {
			want := 0
			if i >= 15 {
				want = 1
			}
			if got := l.Times(i); got != want {
				t.Errorf("record %d read %d times on the target, want %d", i, got, want)
			}
		}
	})
}

func (r *rig) waitTargetEnd(ctx context.Context, want int64) {
	r.t.Helper()
	for {
		l, err := r.tgtAdm.ListEndOffsets(ctx, r.tgtTopic())
		if err == nil {
			if o, ok := l.Lookup(r.tgtTopic(), 0); ok && o.Offset >= want {
				return
			}
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("target did not reach %d", want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestSourceWithoutAuthorizer proves that fence acl stops in Validate with
// a clear error before any change, and fence none proceeds with a report
// that says the cutover was unfenced.
func TestSourceWithoutAuthorizer(t *testing.T) {
	testSourceWithoutAuthorizer(t, newRig(t, kafkalocal.SecurityPlaintext, 2))
}

// testSourceWithoutAuthorizer is TestSourceWithoutAuthorizer's body on r,
// whose source has no authorizer.
func testSourceWithoutAuthorizer(t *testing.T, r *rig) {
	ctx := ctxFor(t, 60*time.Second)
	r.produce(ctx, 0, 10, 2)
	r.waitReplicated(ctx)
	before := r.snapshot(ctx)
	in := r.baseInput()
	in["fence"] = "acl"
	res := r.run(ctx, in, Options{})
	if res.Status != "FAILED" || res.Error != "FenceUnavailableError" || !strings.Contains(res.Cause, "no authorizer") {
		t.Fatalf("fence acl: %s %s %s", res.Status, res.Error, res.Cause)
	}
	if got := res.Entered(); !reflect.DeepEqual(got, []string{"Validate", "InvalidInput"}) {
		t.Errorf("states %v", got)
	}
	if after := r.snapshot(ctx); !reflect.DeepEqual(before, after) {
		t.Errorf("changed:\nbefore %+v\nafter  %+v", before, after)
	}
	in = r.baseInput()
	in["fence"] = "none"
	res = r.run(ctx, in, Options{})
	if res.Status != "SUCCEEDED" || res.Report == nil {
		t.Fatalf("fence none: %s %s %s", res.Status, res.Error, res.Cause)
	}
	f := res.Report.Fence
	if f.Applied || !strings.Contains(f.Note, "unfenced") || len(res.Report.Warnings) == 0 {
		t.Errorf("report fence %+v warnings %v", f, res.Report.Warnings)
	}
	if g := res.Report.Groups; len(g) != 1 || g[0].Status != cutover.GroupNoCommit {
		t.Errorf("groups %+v", g)
	}
}

// TestDefinitionValid runs asl-validator on the definition, as written
// and with the ARN substituted.
func TestDefinitionValid(t *testing.T) {
	root := requireTools(t)
	node, dir, _ := Tools(root)
	def := filepath.Join(root, "statemachine", "cutover.asl.json")
	raw, err := os.ReadFile(def)
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(t.TempDir(), "sub.json")
	if err := os.WriteFile(sub, []byte(strings.ReplaceAll(string(raw), "${CutoverFunctionArn}", lambdaendpoint.FunctionArn(CutoverFunction))), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{def, sub} {
		out, err := exec.Command(node, filepath.Join(dir, "node_modules", "asl-validator", "dist", "bin", "asl-validator.js"), "--json-path", p).CombinedOutput()
		if err != nil {
			t.Errorf("asl-validator %s: %v\n%s", p, err, out)
		}
	}
}
