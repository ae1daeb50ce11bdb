package templatetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var functions = []string{"ReplicatorFunction", "CutoverFunction", "ProvisionerFunction"}

// TestTemplateShape pins what the deploy steps and the Makefile rely on: logical
// IDs, the makefile build, runtime, tracing, JSON logs to an explicit log
// group with retention, the state machine, no per-topic resource (the
// reconciler makes the mappings), the custom resources, alarms and outputs.
func TestTemplateShape(t *testing.T) {
	tpl := loadTemplate(t)
	makefile, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	globals := tpl.get("Globals", "Function")
	for k, want := range map[string]string{"CodeUri": ".", "Runtime": "provided.al2023", "Handler": "bootstrap", "Tracing": "Active"} {
		if got := globals.get(k).str(); got != want {
			t.Errorf("Globals.Function.%s = %q, want %q", k, got, want)
		}
	}
	if a := globals.get("Architectures"); a == nil || len(a.List) != 1 || a.List[0].str() != "arm64" {
		t.Error("Globals.Function.Architectures must be [arm64]")
	}
	for _, id := range functions {
		fn := findResource(t, tpl, id)
		if fn.Type != "AWS::Serverless::Function" {
			t.Errorf("%s is %s", id, fn.Type)
		}
		if fn.Node.get("Metadata", "BuildMethod").str() != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod must be makefile", id)
		}
		if !strings.Contains(string(makefile), "build-"+id+":") {
			t.Errorf("Makefile has no build-%s target", id)
		}
		lc := fn.Node.get("Properties", "LoggingConfig")
		if lc.get("LogFormat").str() != "JSON" {
			t.Errorf("%s: LoggingConfig.LogFormat must be JSON", id)
		}
		ref, arg := lc.get("LogGroup").intrinsic()
		if ref != "Ref" {
			t.Errorf("%s: LoggingConfig.LogGroup must reference a log group of the stack", id)
			continue
		}
		lg := findResource(t, tpl, arg.str())
		if lg.Type != "AWS::Logs::LogGroup" || lg.Node.get("Properties", "RetentionInDays") == nil {
			t.Errorf("%s: log group %s must be an AWS::Logs::LogGroup with RetentionInDays", id, arg.str())
		}
	}

	sm := findResource(t, tpl, "CutoverStateMachine")
	if sm.Node.get("Properties", "DefinitionUri").str() != "statemachine/cutover.asl.json" {
		t.Error("CutoverStateMachine.DefinitionUri must be statemachine/cutover.asl.json")
	}
	if sm.Node.get("Properties", "Tracing", "Enabled").str() != "true" || sm.Node.get("Properties", "Logging", "Destinations") == nil {
		t.Error("CutoverStateMachine needs tracing and logging to a log group")
	}
	if findResource(t, tpl, "ApprovalTopic").Type != "AWS::SNS::Topic" {
		t.Error("ApprovalTopic must be an SNS topic")
	}

	// No event source mapping is a resource: the reconciler creates them.
	for _, r := range resources(tpl) {
		if r.Type == "AWS::Lambda::EventSourceMapping" || strings.HasPrefix(r.ID, "Fn::ForEach") || strings.Contains(r.ID, "&{") {
			t.Errorf("%s: the template must not make per-topic resources", r)
		}
	}
	for id, typ := range map[string]string{"TargetTopics": "Custom::TargetTopics", "TopicScope": "Custom::TopicScope"} {
		if cr := findResource(t, tpl, id); cr.Type != typ || !strings.Contains(dump(cr.Node.get("Properties", "ServiceToken")), "ProvisionerFunction") {
			t.Errorf("%s must be a %s backed by ProvisionerFunction", id, typ)
		}
	}
	for _, id := range []string{"OffsetLagAlarm", "ReplicatorErrorsAlarm", "DeadLetterAlarm", "ReconcilerErrorsAlarm", "MappingsNotPollingAlarm"} {
		if findResource(t, tpl, id).Type != "AWS::CloudWatch::Alarm" {
			t.Errorf("%s must be an alarm", id)
		}
	}
	if !strings.Contains(dump(findResource(t, tpl, "DeadLetterAlarm").Node), "RecordsDeadLettered") {
		t.Error("DeadLetterAlarm must watch RecordsDeadLettered")
	}
	if findResource(t, tpl, "Dashboard").Type != "AWS::CloudWatch::Dashboard" {
		t.Error("Dashboard must be a CloudWatch dashboard")
	}
	for _, o := range []string{"CutoverStateMachineArn", "ReplicatorFunctionName", "CutoverFunctionName", "ProvisionerFunctionName", "ApprovalTopicArn"} {
		if out := tpl.get("Outputs", o); out == nil || out.get("Description").str() == "" {
			t.Errorf("output %s missing or without a description", o)
		}
	}
	for _, name := range tpl.get("Parameters").Keys {
		if tpl.get("Parameters", name, "Description").str() == "" {
			t.Errorf("parameter %s has no description", name)
		}
	}
}

// dump flattens a node to text for containment checks.
func dump(n *node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*node)
	walk = func(n *node) {
		b.WriteString(n.Scalar + " ")
		for _, k := range n.Keys {
			b.WriteString(k + " ")
			walk(n.Map[k])
		}
		for _, e := range n.List {
			walk(e)
		}
	}
	walk(n)
	return b.String()
}
