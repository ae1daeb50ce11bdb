package templatetest

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamscope"
)

// targetTopicsProperties are the properties TargetTopics passes: the
// settings that decide the first reconcile, so that changing one of them
// makes CloudFormation send an Update. The reconciler must accept them
// (it reads its configuration from its environment).
var targetTopicsProperties = []string{
	"ServiceToken", "ServiceTimeout", "ReplicatorFunctionName", "TopicPatterns", "ExcludedTopicPatterns",
	"ConsumerGroupIdPrefix", "CopyAcls", "TopicConfigOverrides", "ReplicationFactor", "DeadLetterTopic", "Transforms",
}

// TestTargetTopicsRunsTheFirstReconcile: the first reconcile runs at
// deploy time, after the scoped IAM policies exist, with properties that
// change whenever what it does changes; the schedule starts after it, and
// the reconciler's environment carries the same selection.
func TestTargetTopicsRunsTheFirstReconcile(t *testing.T) {
	tpl := loadTemplate(t)
	tt := findResource(t, tpl, "TargetTopics")
	props := tt.Node.get("Properties")
	if !slices.Equal(props.Keys, targetTopicsProperties) {
		t.Errorf("TargetTopics properties %v, want %v", props.Keys, targetTopicsProperties)
	}
	for prop, param := range map[string]string{"TopicPatterns": "TopicPatterns", "ExcludedTopicPatterns": "ExcludedTopicPatterns", "ConsumerGroupIdPrefix": "ConsumerGroupIdPrefix", "Transforms": "Transforms"} {
		if got := refName(props.get(prop)); got != param {
			t.Errorf("TargetTopics.%s must be !Ref %s, got %s", prop, param, dump(props.get(prop)))
		}
	}
	var deps []string
	for _, d := range listOf(tt.Node.get("DependsOn")) {
		deps = append(deps, d.str())
	}
	for _, p := range []string{"ReplicatorScopePolicy", "CutoverScopePolicy", "ProvisionerScopePolicy"} {
		if !slices.Contains(deps, p) {
			t.Errorf("TargetTopics must DependsOn %s, so mappings poll with their rights attached", p)
		}
	}
	if findResource(t, tpl, "ReconcileSchedule").Node.get("DependsOn").str() != "TargetTopics" {
		t.Error("ReconcileSchedule must DependsOn TargetTopics: scheduled runs start after the first reconcile")
	}

	vars := findResource(t, tpl, "ProvisionerFunction").Node.get("Properties", "Environment", "Variables")
	for env, param := range map[string]string{"TOPIC_PATTERNS": "TopicPatterns", "EXCLUDED_TOPIC_PATTERNS": "ExcludedTopicPatterns"} {
		fn, arg := vars.get(env).intrinsic()
		if fn != "Fn::Join" || arg.List[0].str() != "," || refName(arg.List[1]) != param {
			t.Errorf("%s must be !Join [\",\", !Ref %s], got %s", env, param, dump(vars.get(env)))
		}
	}
	for env, param := range map[string]string{"CONSUMER_GROUP_ID_PREFIX": "ConsumerGroupIdPrefix", "DEAD_LETTER_TOPIC": "DeadLetterTopic", "CUTOVER_DETAILS_TOPIC": "CutoverDetailsTopic", "TRANSFORMS": "Transforms", "METRICS_NAMESPACE": "MetricsNamespace"} {
		if got := refName(vars.get(env)); got != param {
			t.Errorf("%s must be !Ref %s, got %s", env, param, dump(vars.get(env)))
		}
	}
	if got := refName(vars.get("REPLICATOR_FUNCTION_NAME")); got != "ReplicatorFunction" {
		t.Errorf("REPLICATOR_FUNCTION_NAME must be !Ref ReplicatorFunction, got %q", got)
	}
}

// TestTopicScopeProperties: TopicScope gets the selection, the clusters,
// the transforms and the reserved topics as the reconciler does, and its
// handler accepts the template's properties.
func TestTopicScopeProperties(t *testing.T) {
	tpl := loadTemplate(t)
	props := findResource(t, tpl, "TopicScope").Node.get("Properties")
	for prop, param := range map[string]string{
		iamscope.PropSourceClusterArn: "SourceClusterArn", iamscope.PropTargetClusterArn: "TargetClusterArn",
		iamscope.PropTopicPatterns: "TopicPatterns", iamscope.PropExcludedTopicPatterns: "ExcludedTopicPatterns",
		iamscope.PropTransforms: "Transforms", iamscope.PropDeadLetterTopic: "DeadLetterTopic",
		iamscope.PropCutoverDetailsTopic: "CutoverDetailsTopic", iamscope.PropConsumerGroupIDPrefix: "ConsumerGroupIdPrefix",
	} {
		if got := refName(props.get(prop)); got != param {
			t.Errorf("TopicScope.%s must be !Ref %s, got %s", prop, param, dump(props.get(prop)))
		}
	}
	// Every attribute a policy reads is one the handler returns.
	want := map[string]bool{iamscope.AttrSourceTopicArns: true, iamscope.AttrSourceGroupArns: true, iamscope.AttrTargetTopicArns: true, iamscope.AttrTargetTransactionalIDArns: true, iamscope.AttrScope: true}
	var walk func(n *node)
	walk = func(n *node) {
		if n == nil {
			return
		}
		if fn, arg := n.intrinsic(); fn == "Fn::GetAtt" && len(arg.List) == 2 && arg.List[0].str() == "TopicScope" && !want[arg.List[1].str()] {
			t.Errorf("line %d: TopicScope.%s is not an attribute iamscope returns", n.Line, arg.List[1].str())
		}
		for _, k := range n.Keys {
			walk(n.Map[k])
		}
		for _, e := range n.List {
			walk(e)
		}
	}
	walk(tpl)
}

// TestTargetTopicsServiceTimeout: the reconciler answers through a
// pre-signed S3 URL. When its subnets cannot reach S3 no answer comes, and
// without ServiceTimeout CloudFormation waits an hour. The bound must stay
// above two runs of the function (a scheduled run in progress, then the
// custom resource's own; it answers 20 s before its timeout) and at most
// 1800 s; the asynchronous event may wait in Lambda's queue no longer
// than that bound.
func TestTargetTopicsServiceTimeout(t *testing.T) {
	tpl := loadTemplate(t)
	fn := findResource(t, tpl, "ProvisionerFunction").Node.get("Properties")
	fnTimeout, err := strconv.Atoi(fn.get("Timeout").str())
	if err != nil {
		t.Fatal(err)
	}
	maxAge, err := strconv.Atoi(fn.get("EventInvokeConfig", "MaximumEventAgeInSeconds").str())
	if err != nil {
		t.Fatalf("ProvisionerFunction.EventInvokeConfig.MaximumEventAgeInSeconds: %v", err)
	}
	for _, id := range []string{"TargetTopics", "TopicScope"} {
		st := findResource(t, tpl, id).Node.get("Properties", "ServiceTimeout").str()
		timeout, err := strconv.Atoi(st)
		if err != nil {
			t.Fatalf("%s.ServiceTimeout %q is not an integer number of seconds", id, st)
		}
		if timeout < 2*fnTimeout || timeout > 1800 {
			t.Errorf("%s.ServiceTimeout %d s: want at least two runs (%d s each) and at most 1800 s", id, timeout, fnTimeout)
		}
		if maxAge < 2*fnTimeout || maxAge > timeout {
			t.Errorf("MaximumEventAgeInSeconds %d: want at least two runs (%d s each) and at most %s's ServiceTimeout %d", maxAge, fnTimeout, id, timeout)
		}
	}
}

// TestReconcilerSchedule: one run at a time, every DiscoveryIntervalMinutes,
// with EventBridge Scheduler's singular unit for 1 ("rate(1 minute)";
// rate(1 minutes) is refused), and no retry of a missed tick.
func TestReconcilerSchedule(t *testing.T) {
	tpl := loadTemplate(t)
	fn := findResource(t, tpl, "ProvisionerFunction").Node.get("Properties")
	if got := fn.get("ReservedConcurrentExecutions").str(); got != "1" {
		t.Errorf("ProvisionerFunction.ReservedConcurrentExecutions %q, want 1 (runs never overlap)", got)
	}
	p := tpl.get("Parameters", "DiscoveryIntervalMinutes")
	if p.get("Default").str() != "1" || p.get("MinValue").str() != "1" || p.get("MaxValue").str() != "1440" {
		t.Errorf("DiscoveryIntervalMinutes must default to 1 within 1..1440: %s", dump(p))
	}
	s := findResource(t, tpl, "ReconcileSchedule")
	if s.Type != "AWS::Scheduler::Schedule" {
		t.Fatalf("ReconcileSchedule is %s", s.Type)
	}
	sp := s.Node.get("Properties")
	for _, tc := range []struct{ minutes, want string }{{"1", "rate(1 minute)"}, {"2", "rate(2 minutes)"}, {"1440", "rate(1440 minutes)"}} {
		d := deploy(t, tpl, map[string]string{"DiscoveryIntervalMinutes": tc.minutes})
		expr := d.resolve(sp.get("ScheduleExpression"))
		got := expr.str()
		if fn, arg := expr.intrinsic(); fn == "Fn::Sub" {
			got = strings.ReplaceAll(arg.str(), "${DiscoveryIntervalMinutes}", tc.minutes)
		}
		if got != tc.want {
			t.Errorf("DiscoveryIntervalMinutes %s: ScheduleExpression %q, want %q", tc.minutes, got, tc.want)
		}
	}
	target := sp.get("Target")
	if !strings.Contains(dump(target.get("Arn")), "ProvisionerFunction") {
		t.Errorf("the schedule must invoke ProvisionerFunction, got %s", dump(target.get("Arn")))
	}
	if in := target.get("Input").str(); !strings.Contains(in, `"action":"reconcile"`) || !strings.Contains(in, "<aws.scheduler.scheduled-time>") {
		t.Errorf("schedule Input %q must carry the action and the scheduled time", in)
	}
	if target.get("RetryPolicy", "MaximumRetryAttempts").str() != "0" {
		t.Error("the schedule must not retry (the next run is the retry)")
	}
}
