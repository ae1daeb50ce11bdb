package templatetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamscope"
)

// topicActions act on a topic ARN (MSK IAM "topic" resource).
var topicActions = []string{
	"kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopic", "kafka-cluster:AlterTopic", "kafka-cluster:DeleteTopic",
	"kafka-cluster:ReadData", "kafka-cluster:WriteData",
	"kafka-cluster:DescribeTopicDynamicConfiguration", "kafka-cluster:AlterTopicDynamicConfiguration",
}

// topicScopeAttr returns the TopicScope attribute n reads through
// !Split [",", !GetAtt TopicScope.X], or "".
func topicScopeAttr(n *node) string {
	fn, arg := n.intrinsic()
	if fn != "Fn::Split" || len(arg.List) != 2 || arg.List[0].str() != "," {
		return ""
	}
	fn, ga := arg.List[1].intrinsic()
	if fn != "Fn::GetAtt" || len(ga.List) != 2 || ga.List[0].str() != "TopicScope" {
		return ""
	}
	return ga.List[1].str()
}

// TestTopicRightsOnlyThroughTopicScope: the template names no topic. Every
// topic-level right is on TopicScope's lists (the selection), except the
// stack's own dead-letter and cutover details topics, named exactly.
func TestTopicRightsOnlyThroughTopicScope(t *testing.T) {
	_, stmts := collectStatements(loadTemplate(t))
	scoped := 0
	for _, s := range stmts {
		if s.Effect != "Allow" || !slices.ContainsFunc(s.Actions, func(a string) bool { return slices.Contains(topicActions, a) }) {
			continue
		}
		for _, r := range s.Resources {
			attr := topicScopeAttr(r)
			switch {
			case attr == iamscope.AttrSourceTopicArns || attr == iamscope.AttrTargetTopicArns:
				scoped++
			case attr != "":
				t.Errorf("%s: topic actions %v on TopicScope.%s, which lists no topics", s.Where, s.Actions, attr)
			default:
				f := flatten(r)
				if !strings.Contains(f, "topic/${Cluster}/${DeadLetterTopic}") && !strings.Contains(f, "topic/${Cluster}/${CutoverDetailsTopic}") {
					t.Errorf("%s: topic actions %v on %q: topics are granted through TopicScope only", s.Where, s.Actions, f)
				}
			}
		}
	}
	if scoped < 6 {
		t.Errorf("only %d topic statements use TopicScope's lists; the walk missed the scope policies", scoped)
	}
}

// policyChars is an upper bound of the characters n takes in a policy
// document as JSON without white space, which is what IAM counts. A
// TopicScope list counts 0 (it is budgeted by iamscope.ListBudget), Fn::If
// its longer branch, and any other intrinsic 200 (an ARN or a parameter,
// quoted; CommaDelimitedList parameters are counted as one such value).
func policyChars(n *node, lists map[string]int) int {
	if n == nil {
		return 0
	}
	if attr := topicScopeAttr(n); attr != "" {
		lists[attr]++
		return 0
	}
	switch fn, arg := n.intrinsic(); fn {
	case "":
	case "Fn::If":
		a, b := map[string]int{}, map[string]int{}
		ca, cb := policyChars(arg.List[1], a), policyChars(arg.List[2], b)
		for k, v := range a {
			lists[k] = max(lists[k], v)
		}
		for k, v := range b {
			lists[k] = max(lists[k], v)
		}
		return max(ca, cb)
	case "Ref":
		if arg.str() == "AWS::NoValue" {
			return 0
		}
		return 200
	default:
		return 200
	}
	switch {
	case n.Map != nil:
		c := 2 + len(n.Keys) - 1
		for _, k := range n.Keys {
			c += len(k) + 3 + policyChars(n.Map[k], lists)
		}
		return c
	case n.List != nil:
		c := 2 + len(n.List) - 1
		for _, e := range n.List {
			c += policyChars(e, lists)
		}
		return c
	}
	return len(n.Scalar) + 2
}

// TestRolePolicySizeBudget: IAM limits the inline policies of a role to
// iamscope.MaxRolePolicyChars together ("Role policy size cannot exceed
// 10,240 characters", white space not counted). TopicScope keeps its lists
// within iamscope.ListBudget; every role references each list at most
// once, and the rest of each role's policies (an upper bound, every
// condition taken) leaves room for ListBudget.
func TestRolePolicySizeBudget(t *testing.T) {
	tpl := loadTemplate(t)
	for _, role := range resources(tpl) {
		if role.Type != "AWS::IAM::Role" {
			continue
		}
		lists := map[string]int{}
		chars := 0
		for _, pol := range role.Node.get("Properties", "Policies").List {
			chars += policyChars(pol, lists)
		}
		for _, r := range resources(tpl) {
			if r.Type != "AWS::IAM::Policy" {
				continue
			}
			for _, ref := range r.Node.get("Properties", "Roles").List {
				if refName(ref) == role.ID {
					chars += policyChars(r.Node.get("Properties", "PolicyName"), lists) + policyChars(r.Node.get("Properties", "PolicyDocument"), lists)
				}
			}
		}
		for attr, n := range lists {
			if n > 1 {
				t.Errorf("%s references TopicScope.%s %d times; the budget assumes once", role.ID, attr, n)
			}
		}
		if chars+iamscope.ListBudget > iamscope.MaxRolePolicyChars {
			t.Errorf("%s: %d characters of policies besides TopicScope's lists, + ListBudget %d > %d", role.ID, chars, iamscope.ListBudget, iamscope.MaxRolePolicyChars)
		}
		t.Logf("%s: at most %d characters + TopicScope lists (%d references)", role.ID, chars, len(lists))
	}
}

// scaleParams are deployable parameters with the given TopicPatterns.
func scaleParams(patterns string) map[string]string {
	return map[string]string{
		"TopicPatterns":          patterns,
		"SourceBootstrapServers": "kafka-1.example.internal:9096",
		"SourceSecretArn":        sampleSecret,
		"TargetClusterArn":       "arn:aws:kafka:eu-west-1:123456789012:cluster/target/0123abcd-ab12-cd34-ef56-abcdef123456-2",
		"TargetBootstrapServers": "b-1.target.abc123.c2.kafka.eu-west-1.amazonaws.com:9098",
		"SubnetIds":              "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
		"SecurityGroupIds":       "sg-0123456789abcdef0",
	}
}

// topicNames returns n topic names, comma-joined: t000,t001,... (short
// enough that 500 fit CloudFormation's 4,096-byte parameter value).
func topicNames(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("t%03d", i)
	}
	return strings.Join(names, ",")
}

// TestResourceCountIndependentOfTopics: the resources CloudFormation
// creates (after the SAM transform, and AWS::LanguageExtensions when the
// template declares it) are the same for 1, 50 and 500 selected topics.
func TestResourceCountIndependentOfTopics(t *testing.T) {
	python := requireTool(t, "python")
	var first []string
	for _, n := range []int{1, 50, 500} {
		patterns := topicNames(n)
		if len(patterns) > 4096 {
			t.Fatalf("%d names take %d characters, over CloudFormation's 4,096-byte parameter value", n, len(patterns))
		}
		params, err := json.Marshal(scaleParams(patterns))
		if err != nil {
			t.Fatal(err)
		}
		out, err := run(t, 2*time.Minute, python, "templatetest/testdata/resources.py", "template.yaml", string(params))
		if err != nil {
			t.Fatalf("%d topics: resources.py: %v\n%s", n, err, out)
		}
		res := strings.Split(strings.TrimSpace(out), "\n")
		if len(res) < 20 {
			t.Fatalf("%d topics: only %d resources:\n%s", n, len(res), out)
		}
		if first == nil {
			first = res
			t.Logf("%d resources for every selection:\n%s", len(res), out)
			continue
		}
		if !slices.Equal(res, first) {
			t.Errorf("%d topics: %d resources, 1 topic: %d; the template grows with the topics:\n%s", n, len(res), len(first), out)
		}
	}
}

// lambdaEnvLimit is Lambda's quota on a function's environment: "4 KB, for
// all environment variables associated with the function, in aggregate"
// (Lambda quotas).
const lambdaEnvLimit = 4096

// TestReconcilerEnvironmentLeavesRoomForPatterns: TOPIC_PATTERNS,
// EXCLUDED_TOPIC_PATTERNS and TRANSFORMS share the reconciler's 4 KB
// environment with its other variables. With realistic values (three
// brokers per cluster, secrets, a cluster ARN, two subnets) the others
// leave at least minPatternRoom characters, which the README promises.
func TestReconcilerEnvironmentLeavesRoomForPatterns(t *testing.T) {
	const minPatternRoom = 1500
	realistic := map[string]string{
		"SOURCE_BOOTSTRAP_SERVERS": "kafka-1.source.example.internal:9096,kafka-2.source.example.internal:9096,kafka-3.source.example.internal:9096",
		"TARGET_BOOTSTRAP_SERVERS": "b-1.target.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.target.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-3.target.abc123.c2.kafka.eu-west-1.amazonaws.com:9098",
		"TARGET_SECRET_ARN":        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_target-AbCdEf",
		"TARGET_CA_SECRET_ARN":     "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kmig-target-ca-AbCdEf",
		"REPLICATOR_FUNCTION_NAME": "kafka-msk-migrator-ReplicatorFunction-AbCdEfGhIjKl",
		"STACK_NAME":               "kafka-msk-migrator-production",
	}
	vars := findResource(t, loadTemplate(t), "ProvisionerFunction").Node.get("Properties", "Environment", "Variables")
	size := 0
	for _, k := range vars.Keys {
		if k == "TOPIC_PATTERNS" || k == "EXCLUDED_TOPIC_PATTERNS" || k == "TRANSFORMS" {
			size += len(k)
			continue
		}
		v, ok := realistic[k]
		if !ok {
			v, ok = sampleValues[k]
		}
		if !ok {
			t.Fatalf("no sample value for %s", k)
		}
		size += len(k) + len(v)
	}
	if room := lambdaEnvLimit - size; room < minPatternRoom {
		t.Errorf("the reconciler's other variables take %d bytes: %d left for the patterns and transforms, want at least %d", size, room, minPatternRoom)
	} else {
		t.Logf("the reconciler's other variables take %d bytes: %d left for TOPIC_PATTERNS, EXCLUDED_TOPIC_PATTERNS and TRANSFORMS", size, room)
	}
}
