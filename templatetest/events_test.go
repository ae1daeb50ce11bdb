package templatetest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamscope"
)

func readEvent(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
}

// TestScheduledReconcileEvent: events/reconcile-scheduled.json is what the
// schedule sends, with the scheduled time filled in as EventBridge
// Scheduler does (<aws.scheduler.scheduled-time>, e.g.
// 2022-03-22T18:59:43Z).
func TestScheduledReconcileEvent(t *testing.T) {
	input := findResource(t, loadTemplate(t), "ReconcileSchedule").Node.get("Properties", "Target", "Input").str()
	var want, got map[string]any
	if err := json.Unmarshal([]byte(input), &want); err != nil {
		t.Fatalf("the schedule's Input is not JSON: %v", err)
	}
	readEvent(t, "reconcile-scheduled.json", &got)
	for k, v := range want {
		if v == "<aws.scheduler.scheduled-time>" {
			s, _ := got[k].(string)
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				t.Errorf("%s = %q, want a scheduled time like 2022-03-22T18:59:43Z", k, s)
			}
			continue
		}
		if got[k] != v {
			t.Errorf("%s = %v, want %v (the schedule's Input)", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("event keys %v, schedule Input keys %v", keys(got), keys(want))
	}
}

// TestTopicScopeEvents: events/topic-scope-*.json carry exactly the
// template's TopicScope properties, and the handler answers them.
func TestTopicScopeEvents(t *testing.T) {
	props := findResource(t, loadTemplate(t), "TopicScope").Node.get("Properties")
	for _, name := range []string{"topic-scope-create.json", "topic-scope-update.json", "topic-scope-delete.json"} {
		var ev cfn.Event
		readEvent(t, name, &ev)
		if ev.ResourceType != iamscope.ResourceType || ev.LogicalResourceID != "TopicScope" {
			t.Errorf("%s: %s %s, want %s TopicScope", name, ev.ResourceType, ev.LogicalResourceID, iamscope.ResourceType)
		}
		if got, want := keys(ev.ResourceProperties), slices.Sorted(slices.Values(props.Keys)); !slices.Equal(got, want) {
			t.Errorf("%s: properties %v, template's %v", name, got, want)
		}
		_, data, err := iamscope.Handle(context.Background(), ev)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if ev.RequestType != cfn.RequestDelete && !strings.Contains(data[iamscope.AttrTargetTopicArns].(string), "topic/target/") {
			t.Errorf("%s: TargetTopicArns %q", name, data[iamscope.AttrTargetTopicArns])
		}
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
