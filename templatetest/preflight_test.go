package templatetest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPreflightStateMachine: the preflight state machine runs
// statemachine/preflight.asl.json with the cutover function substituted,
// under a role of its own, and the stack outputs its ARN.
func TestPreflightStateMachine(t *testing.T) {
	tpl := loadTemplate(t)
	sm := findResource(t, tpl, "PreflightStateMachine")
	if sm.Type != "AWS::Serverless::StateMachine" {
		t.Fatalf("PreflightStateMachine is %s", sm.Type)
	}
	p := sm.Node.get("Properties")
	if got := p.get("DefinitionUri").str(); got != "statemachine/preflight.asl.json" {
		t.Errorf("DefinitionUri %q", got)
	}
	if fn, arg := p.get("Role").intrinsic(); fn != "Fn::GetAtt" || arg.List[0].str() != "PreflightStateMachineRole" {
		t.Errorf("Role must be !GetAtt PreflightStateMachineRole.Arn")
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "statemachine", "preflight.asl.json"))
	if err != nil {
		t.Fatal(err)
	}
	var def struct {
		States map[string]struct {
			Type, Resource string
			Parameters     map[string]any
		}
	}
	if err := json.Unmarshal(b, &def); err != nil {
		t.Fatalf("preflight.asl.json is not JSON: %v", err)
	}
	subs := p.get("DefinitionSubstitutions")
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`).FindAllStringSubmatch(string(b), -1) {
		if subs.get(m[1]) == nil {
			t.Errorf("the definition uses ${%s}, which DefinitionSubstitutions does not set", m[1])
		}
	}
	if len(subs.Keys) != 1 {
		t.Errorf("DefinitionSubstitutions %v: the preflight needs the cutover function only", subs.Keys)
	}
	if fn, arg := subs.get("CutoverFunctionArn").intrinsic(); fn != "Fn::GetAtt" || len(arg.List) != 2 || arg.List[0].str() != "CutoverFunction" {
		t.Errorf("CutoverFunctionArn must be !GetAtt CutoverFunction.Arn")
	}
	// Every task calls the cutover function's Preflight step: the role
	// needs nothing but that invocation.
	tasks := 0
	for name, s := range def.States {
		if s.Type != "Task" {
			continue
		}
		tasks++
		if s.Resource != "${CutoverFunctionArn}" || s.Parameters["step"] != "Preflight" {
			t.Errorf("task %s calls %s step %v, want the cutover function's Preflight step", name, s.Resource, s.Parameters["step"])
		}
	}
	if tasks == 0 || tasks > 2 {
		t.Errorf("%d task states, want one or two", tasks)
	}
	out := tpl.get("Outputs", "PreflightStateMachineArn", "Value")
	if fn, arg := out.intrinsic(); fn != "Ref" || arg.str() != "PreflightStateMachine" {
		t.Errorf("output PreflightStateMachineArn must be !Ref PreflightStateMachine")
	}
}

// TestPreflightIAM: the preflight state machine's role may invoke the
// cutover function and nothing else, and may be assumed by Step Functions
// of this account only; the preflight's one new right on the cutover role
// (sns:GetTopicAttributes) names the approval topic alone.
func TestPreflightIAM(t *testing.T) {
	tpl := loadTemplate(t)
	role := findResource(t, tpl, "PreflightStateMachineRole")
	trust := flatten(role.Node.get("Properties", "AssumeRolePolicyDocument"))
	for _, w := range []string{"states.amazonaws.com", "sts:AssumeRole", "aws:SourceAccount"} {
		if !strings.Contains(trust, w) {
			t.Errorf("trust policy lacks %s: %s", w, trust)
		}
	}
	if role.Node.get("Properties", "ManagedPolicyArns") != nil {
		t.Error("PreflightStateMachineRole has managed policies")
	}
	_, stmts := collectStatements(tpl)
	var mine []statement
	for _, s := range stmts {
		if strings.HasPrefix(s.Where, "PreflightStateMachineRole ") {
			mine = append(mine, s)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("PreflightStateMachineRole has %d statements, want exactly one", len(mine))
	}
	s := mine[0]
	if s.Effect != "Allow" || !slices.Equal(s.Actions, []string{"lambda:InvokeFunction"}) {
		t.Errorf("statement allows %v (%s), want lambda:InvokeFunction only", s.Actions, s.Effect)
	}
	if len(s.Resources) == 0 {
		t.Fatal("no resources")
	}
	for _, r := range s.Resources {
		if f := flatten(r); !strings.Contains(f, "CutoverFunction") || strings.Contains(f, "*") && !strings.Contains(f, "CutoverFunction.Arn}:*") {
			t.Errorf("resource %q is not the cutover function (or its versions)", f)
		}
	}
	found := false
	for _, s := range stmts {
		if !slices.Contains(s.Actions, "sns:GetTopicAttributes") {
			continue
		}
		found = true
		if !strings.HasPrefix(s.Where, "CutoverRole") {
			t.Errorf("%s grants sns:GetTopicAttributes", s.Where)
		}
		for _, r := range s.Resources {
			if fn, arg := r.intrinsic(); fn != "Ref" || arg.str() != "ApprovalTopic" {
				t.Errorf("sns:GetTopicAttributes on %q, want the approval topic only", flatten(r))
			}
		}
	}
	if !found {
		t.Error("CutoverRole lacks sns:GetTopicAttributes on the approval topic (the preflight's approval check)")
	}
}

func TestPreflightASLValidator(t *testing.T) {
	v := requireTool(t, "asl-validator")
	out, err := run(t, 2*time.Minute, v, "--json-path", "statemachine/preflight.asl.json")
	if err != nil || !strings.Contains(out, "is valid") {
		t.Fatalf("asl-validator: %v\n%s", err, out)
	}
}
