package templatetest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// iamStarAllowed lists the only actions that may be granted on Resource
// "*", each with the reason: these actions support no resource-level
// permissions, so no narrower resource exists. Everything else must name
// ARNs (cluster, topic, group, mapping, log group, secret, topic ARN...).
var iamStarAllowed = map[string]string{
	"ec2:DescribeNetworkInterfaces":   "EC2 Describe* actions support no resource-level permissions (Lambda VPC networking and Kafka mappings need them)",
	"ec2:DescribeSubnets":             "EC2 Describe* actions support no resource-level permissions",
	"ec2:DescribeSecurityGroups":      "EC2 Describe* actions support no resource-level permissions",
	"ec2:DescribeVpcs":                "EC2 Describe* actions support no resource-level permissions",
	"xray:PutTraceSegments":           "X-Ray trace upload has no resource-level permissions (Tracing: Active)",
	"xray:PutTelemetryRecords":        "X-Ray telemetry upload has no resource-level permissions",
	"xray:GetSamplingRules":           "X-Ray sampling rule reads have no resource-level permissions",
	"xray:GetSamplingTargets":         "X-Ray sampling target reads have no resource-level permissions",
	"lambda:ListEventSourceMappings":  "ListEventSourceMappings supports no resource-level permissions; the cutover and the reconciler list the replicator's mappings",
	"lambda:CreateEventSourceMapping": "no mapping ARN exists before creation; the statement's lambda:FunctionArn condition (required, see iamConditionRequired) limits it to the replicator",
	"logs:CreateLogDelivery":          "CloudWatch Logs vended log delivery (state machine logging) supports no resource-level permissions",
	"logs:GetLogDelivery":             "vended log delivery, as above",
	"logs:UpdateLogDelivery":          "vended log delivery, as above",
	"logs:DeleteLogDelivery":          "vended log delivery, as above",
	"logs:ListLogDeliveries":          "vended log delivery, as above",
	"logs:PutResourcePolicy":          "vended log delivery, as above",
	"logs:DescribeResourcePolicies":   "vended log delivery, as above",
	"logs:DescribeLogGroups":          "vended log delivery, as above",
}

// iamConditionRequired lists actions that may only be granted with a
// condition on the given key: the Lambda documentation ("Fine-tuning the
// Resources and Conditions sections of policies") says event source
// mapping actions can be restricted "by associated function" with the
// lambda:FunctionArn condition, and mapping ARNs are not known when the
// reconciler creates mappings at run time, so the function is what
// scopes them.
var iamConditionRequired = map[string]string{
	"lambda:CreateEventSourceMapping": "lambda:FunctionArn",
	"lambda:UpdateEventSourceMapping": "lambda:FunctionArn",
	"lambda:DeleteEventSourceMapping": "lambda:FunctionArn",
}

// statement is one IAM policy statement found in the template.
type statement struct {
	Where     string
	Effect    string
	Actions   []string
	Resources []*node // literal strings or intrinsics
	Node      *node
}

// branches expands Fn::If into both branches and drops AWS::NoValue.
func branches(n *node) []*node {
	if fn, arg := n.intrinsic(); fn == "Fn::If" && len(arg.List) == 3 {
		return append(branches(arg.List[1]), branches(arg.List[2])...)
	}
	if fn, arg := n.intrinsic(); fn == "Ref" && arg.str() == "AWS::NoValue" {
		return nil
	}
	return []*node{n}
}

func listOf(n *node) []*node {
	var out []*node
	for _, b := range branches(n) {
		if b.Kind == yaml.SequenceNode && b.List != nil {
			for _, e := range b.List {
				out = append(out, branches(e)...)
			}
			continue
		}
		out = append(out, b)
	}
	return out
}

func policyStatements(where string, doc *node) []statement {
	var out []statement
	for _, s := range listOf(doc.get("Statement")) {
		st := statement{Where: where, Effect: s.get("Effect").str(), Node: s}
		for _, a := range listOf(s.get("Action")) {
			st.Actions = append(st.Actions, a.str())
		}
		st.Resources = listOf(s.get("Resource"))
		out = append(out, st)
	}
	return out
}

// iamFindings returns every least-privilege violation in tpl.
func iamFindings(tpl *node) []string {
	bad, stmts := collectStatements(tpl)
	return append(bad, checkStatements(stmts)...)
}

// collectStatements returns every IAM statement in tpl, and the problems
// with roles and SAM resources found on the way.
func collectStatements(tpl *node) (bad []string, stmts []statement) {
	for _, r := range resources(tpl) {
		p := r.Node.get("Properties")
		switch r.Type {
		case "AWS::IAM::Role":
			for i, pol := range listOf(p.get("Policies")) {
				stmts = append(stmts, policyStatements(fmt.Sprintf("%s policy %d", r.ID, i), pol.get("PolicyDocument"))...)
			}
			if m := p.get("ManagedPolicyArns"); m != nil {
				bad = append(bad, r.ID+": ManagedPolicyArns are not allowed (their statements cannot be checked here)")
			}
		case "AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy":
			stmts = append(stmts, policyStatements(r.ID, p.get("PolicyDocument"))...)
		case "AWS::Serverless::Function", "AWS::Serverless::StateMachine":
			// Without an explicit Role, SAM generates one and attaches
			// managed policies (AWSLambdaBasicExecutionRole: logs on "*").
			if p.get("Role") == nil {
				bad = append(bad, r.ID+": needs an explicit Role (SAM's generated role attaches managed policies with Resource \"*\")")
			}
			if p.get("Policies") != nil {
				bad = append(bad, r.ID+": Policies are not allowed; put permissions on its explicit Role")
			}
		}
	}
	return bad, stmts
}

func checkStatements(stmts []statement) []string {
	var bad []string
	for _, s := range stmts {
		if s.Node.get("NotAction") != nil || s.Node.get("NotResource") != nil {
			bad = append(bad, s.Where+": NotAction/NotResource are not allowed")
		}
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range s.Actions {
			if strings.Contains(a, "*") {
				bad = append(bad, fmt.Sprintf("%s (line %d): wildcard action %q", s.Where, s.Node.Line, a))
			}
			if key := iamConditionRequired[a]; key != "" && !conditionHasKey(s.Node.get("Condition"), key) {
				bad = append(bad, fmt.Sprintf("%s (line %d): %s without a %s condition", s.Where, s.Node.Line, a, key))
			}
		}
		for _, res := range s.Resources {
			if res.Kind != yaml.ScalarNode || res.Scalar != "*" {
				continue
			}
			for _, a := range s.Actions {
				if iamStarAllowed[a] == "" {
					bad = append(bad, fmt.Sprintf("%s (line %d): %s on Resource \"*\" (the action has resource-level permissions; name the ARNs)", s.Where, res.Line, a))
				}
			}
			if res.Comment == "" {
				bad = append(bad, fmt.Sprintf("%s (line %d): Resource \"*\" without a comment explaining it", s.Where, res.Line))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// conditionHasKey reports whether a Condition block tests key.
func conditionHasKey(cond *node, key string) bool {
	if cond == nil {
		return false
	}
	for _, op := range cond.Keys {
		if cond.Map[op].get(key) != nil {
			return true
		}
	}
	return false
}

func TestIAMLeastPrivilege(t *testing.T) {
	tpl := loadTemplate(t)
	for _, f := range iamFindings(tpl) {
		t.Error(f)
	}
	// Guard against a vacuous pass: the walk must see the roles' and the
	// per-topic policies' statements, including the explained "*" ones.
	_, stmts := collectStatements(tpl)
	stars, kafka := 0, 0
	for _, s := range stmts {
		for _, r := range s.Resources {
			if r.Kind == yaml.ScalarNode && r.Scalar == "*" {
				stars++
			}
		}
		for _, a := range s.Actions {
			if strings.HasPrefix(a, "kafka-cluster:") {
				kafka++
				break
			}
		}
	}
	if len(stmts) < 30 || stars == 0 || kafka < 10 {
		t.Errorf("found %d statements (%d on \"*\", %d with kafka-cluster actions): the walk missed policies", len(stmts), stars, kafka)
	}
	t.Logf("%d statements, %d on Resource \"*\" (all explained)", len(stmts), stars)
}

// TestIAMCheckCatchesStar proves the check fails on what it must refuse.
func TestIAMCheckCatchesStar(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"star on kafka data", `
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyDocument:
            Statement:
              - Effect: Allow
                Action: kafka-cluster:WriteData
                Resource: "*" # convenient
`, `kafka-cluster:WriteData on Resource "*"`},
		{"star inside Fn::If in a ForEach policy", `
Resources:
  Fn::ForEach::L:
    - T
    - !Ref Topics
    - P&{T}:
        Type: AWS::IAM::Policy
        Properties:
          PolicyDocument:
            Statement:
              - !If
                - C
                - Effect: Allow
                  Action: [secretsmanager:GetSecretValue]
                  Resource: ["*"]
                - !Ref AWS::NoValue
`, `secretsmanager:GetSecretValue on Resource "*"`},
		{"allowed action without comment", `
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyDocument:
            Statement:
              - Effect: Allow
                Action: xray:PutTraceSegments
                Resource: "*"
`, `without a comment`},
		{"wildcard action", `
Resources:
  R:
    Type: AWS::IAM::Policy
    Properties:
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: kafka-cluster:*
            Resource: !Ref ClusterArn
`, `wildcard action "kafka-cluster:*"`},
		{"mapping creation without the function condition", `
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyDocument:
            Statement:
              - Effect: Allow
                Action: lambda:CreateEventSourceMapping
                Resource: "*" # any mapping
`, `lambda:CreateEventSourceMapping without a lambda:FunctionArn condition`},
		{"mapping update on wildcard ARN without the function condition", `
Resources:
  R:
    Type: AWS::IAM::Policy
    Properties:
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: [lambda:UpdateEventSourceMapping]
            Resource: !Sub arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:event-source-mapping:*
`, `lambda:UpdateEventSourceMapping without a lambda:FunctionArn condition`},
		{"generated role", `
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Policies: [AWSLambdaBasicExecutionRole]
`, `needs an explicit Role`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(iamFindings(parseTemplate(t, []byte(tc.yaml))), "\n")
			if !strings.Contains(got, tc.want) {
				t.Errorf("findings %q lack %q", got, tc.want)
			}
		})
	}
}

// flatten renders a node's scalars, in order, for matching resources.
func flatten(n *node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(n.Scalar)
	for _, k := range n.Keys {
		b.WriteString(" " + k + " " + flatten(n.Map[k]))
	}
	for _, e := range n.List {
		b.WriteString(" " + flatten(e))
	}
	return b.String()
}

// TestIAMGrantsWhatTheCodeNeeds: each call a function makes is granted on
// the resource it touches, so a deployed stack does not fail where the
// local runs pass. Each row names the code that needs it.
func TestIAMGrantsWhatTheCodeNeeds(t *testing.T) {
	_, stmts := collectStatements(loadTemplate(t))
	for _, tc := range []struct {
		where, action, resource, why string
	}{
		{"CutoverRole", "iam:GetRole", "ProducerRoleArns", "iamfence.Plan/Apply tell a missing role from a missing policy"},
		{"CutoverRole", "iam:GetRolePolicy", "ProducerRoleArns", "the iam fence reads its policy back"},
		{"CutoverRole", "iam:PutRolePolicy", "ProducerRoleArns", "the iam fence puts its deny policy"},
		{"CutoverRole", "iam:DeleteRolePolicy", "ProducerRoleArns", "rollback removes the iam fence"},
		{"CutoverScopePolicy", "kafka-cluster:DescribeTopicDynamicConfiguration", "SourceTopicArns", "Validate compares source and target topic configs"},
		{"CutoverScopePolicy", "kafka-cluster:ReadData", "SourceTopicArns", "drain and translation read source records"},
		{"CutoverScopePolicy", "kafka-cluster:ReadData", "TargetTopicArns", "drain and translation read the (renamed) target topic"},
		{"CutoverScopePolicy", "kafka-cluster:DescribeTopicDynamicConfiguration", "TargetTopicArns", "Validate compares configs with the (renamed) target topic"},
		{"CutoverRole", "lambda:ListEventSourceMappings", "*", "the cutover finds the replicator's mappings by function"},
		{"CutoverRole", "lambda:GetEventSourceMapping", "event-source-mapping:*", "the cutover reads each mapping's state"},
		{"CutoverRole", "lambda:UpdateEventSourceMapping", "event-source-mapping:*", "the cutover disables and re-enables the mappings"},
		{"ReplicatorRole", "kafka-cluster:Connect", "SourceClusterArn", "the replicator's transaction check connects to the source"},
		{"ReplicatorScopePolicy", "kafka-cluster:ReadData", "SourceTopicArns", "the mappings poll, and the transaction check fetches the batch's range, with the function's role"},
		{"ReplicatorScopePolicy", "kafka-cluster:AlterGroup", "SourceGroupArns", "the mappings commit in their own groups"},
		{"ReplicatorScopePolicy", "kafka-cluster:WriteData", "TargetTopicArns", "the replicator writes each topic under its (renamed) target name"},
		{"ReplicatorScopePolicy", "kafka-cluster:ReadData", "TargetTopicArns", "dedup reads the target topic's tail"},
		{"ReplicatorScopePolicy", "kafka-cluster:DescribeTransactionalId", "TargetTransactionalIdArns", "the fence's transactional producers find their coordinator"},
		{"ReplicatorScopePolicy", "kafka-cluster:AlterTransactionalId", "TargetTransactionalIdArns", "the fence's transactional producers init, add partitions and commit"},
		{"ProvisionerScopePolicy", "kafka-cluster:CreateTopic", "TargetTopicArns", "the reconciler creates the (renamed) target topic"},
		{"ProvisionerScopePolicy", "kafka-cluster:AlterTopic", "TargetTopicArns", "the reconciler adds partitions on the target"},
		{"ProvisionerScopePolicy", "kafka-cluster:AlterTopicDynamicConfiguration", "TargetTopicArns", "the reconciler sets the target topic's configs"},
		{"ProvisionerScopePolicy", "kafka-cluster:DescribeTopic", "SourceTopicArns", "the reconciler lists and describes the selected source topics"},
		{"ProvisionerScopePolicy", "kafka-cluster:ReadData", "SourceTopicArns", "seeding a group commits offsets on the topic (OffsetCommit)"},
		{"ProvisionerScopePolicy", "kafka-cluster:AlterGroup", "SourceGroupArns", "the reconciler seeds each mapping's group"},
		{"ProvisionerScopePolicy", "kafka-cluster:DescribeGroup", "SourceGroupArns", "the reconciler checks each mapping's group has a member"},
		{"ProvisionerRole", "lambda:ListEventSourceMappings", "*", "the reconciler lists the replicator's mappings"},
		{"ProvisionerRole", "lambda:CreateEventSourceMapping", "*", "the reconciler creates one mapping per selected topic"},
		{"ProvisionerRole", "lambda:UpdateEventSourceMapping", "event-source-mapping:*", "the reconciler pauses and resumes a mapping to seed new partitions"},
		{"ProvisionerRole", "lambda:DeleteEventSourceMapping", "event-source-mapping:*", "stack deletion deletes the mappings the reconciler created"},
		{"ProvisionerRole", "lambda:GetEventSourceMapping", "event-source-mapping:*", "the reconciler waits for a mapping's state"},
		{"ProvisionerRole", "lambda:TagResource", "event-source-mapping:*", "mappings are tagged kmig:topic and kmig:stack on create"},
		{"ReconcileScheduleRole", "lambda:InvokeFunction", "ProvisionerFunction", "the schedule invokes the reconciler"},
	} {
		found := false
		for _, s := range stmts {
			if !strings.HasPrefix(s.Where, tc.where) || s.Effect != "Allow" || !slices.Contains(s.Actions, tc.action) {
				continue
			}
			for _, r := range s.Resources {
				if f := flatten(r); strings.Contains(f, tc.resource) || tc.resource == "*" && f == "*" {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s lacks %s on %s (%s)", tc.where, tc.action, tc.resource, tc.why)
		}
	}
	// The iam fence's rights exist only when roles are listed.
	for _, s := range stmts {
		if slices.Contains(s.Actions, "iam:PutRolePolicy") && !strings.Contains(flatten(s.Node), "ProducerRoleArns") {
			t.Errorf("%s grants iam:PutRolePolicy beyond ProducerRoleArns", s.Where)
		}
	}
}
