package templatetest

import (
	"strconv"
	"testing"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provision"
)

// TestTargetTopicsChecksConsumerGroupIDs: the mappings' consumer group is
// ConsumerGroupIdPrefix + topic, CloudFormation cannot compute its length,
// so the prefix goes to the provisioner, which refuses a group ID Lambda
// would refuse before any mapping exists (the mappings DependsOn it).
func TestTargetTopicsChecksConsumerGroupIDs(t *testing.T) {
	tpl := loadTemplate(t)
	props := findResource(t, tpl, "TargetTopics").Node.get("Properties")
	fn, arg := props.get(provision.PropConsumerGroupIDPrefix).intrinsic()
	if fn != "Ref" || arg.str() != "ConsumerGroupIdPrefix" {
		t.Errorf("TargetTopics.%s must be !Ref ConsumerGroupIdPrefix, got %s", provision.PropConsumerGroupIDPrefix, dump(props.get(provision.PropConsumerGroupIDPrefix)))
	}
	// The group IDs the provisioner checks are the ones the mappings use.
	esm := findResource(t, tpl, "Mapping&{TopicName}").Node.get("Properties")
	for _, k := range []string{"AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig"} {
		found := false
		for _, b := range branches(esm.get(k)) {
			fn, arg := b.get("ConsumerGroupId").intrinsic()
			if fn == "Fn::Sub" && arg.str() == "${ConsumerGroupIdPrefix}${TopicName}" {
				found = true
			}
		}
		if !found {
			t.Errorf("the mapping's %s.ConsumerGroupId must be ${ConsumerGroupIdPrefix}${TopicName}, as the provisioner checks", k)
		}
	}
	if esm := findResource(t, tpl, "Mapping&{TopicName}"); esm.Node.get("DependsOn").str() != "TargetTopics" {
		t.Error("each mapping must depend on TargetTopics, so the check runs first")
	}
	// Every property the template passes is one the provisioner accepts.
	raw := map[string]any{}
	for _, k := range props.Keys {
		raw[k] = "x"
	}
	raw[provision.PropTopics] = []any{"orders"}
	raw[provision.PropConsumerGroupIDPrefix] = "kmig-"
	raw[provision.PropCopyAcls] = "false"
	raw[provision.PropTopicConfigOverrides] = "{}"
	raw[provision.PropReplicationFactor] = "-1"
	raw[provision.PropDeadLetterTopic] = ""
	if _, err := provision.ParseProperties(raw); err != nil {
		t.Errorf("the provisioner refuses the template's properties %v: %v", props.Keys, err)
	}
}

// TestTargetTopicsServiceTimeout: the provisioner answers through a
// pre-signed S3 URL. When its subnets cannot reach S3 no answer comes, and
// without ServiceTimeout CloudFormation waits an hour. The bound must stay
// above the provisioner's own timeout (it answers 20 s before it) and
// below CloudFormation's default of 3600 s.
func TestTargetTopicsServiceTimeout(t *testing.T) {
	tpl := loadTemplate(t)
	st := findResource(t, tpl, "TargetTopics").Node.get("Properties", "ServiceTimeout").str()
	timeout, err := strconv.Atoi(st)
	if err != nil {
		t.Fatalf("TargetTopics.ServiceTimeout %q is not an integer number of seconds", st)
	}
	fnTimeout, err := strconv.Atoi(findResource(t, tpl, "ProvisionerFunction").Node.get("Properties", "Timeout").str())
	if err != nil {
		t.Fatal(err)
	}
	if timeout < 2*fnTimeout || timeout > 1800 {
		t.Errorf("ServiceTimeout %d s: want at least two provisioner runs (%d s each) and at most 1800 s", timeout, fnTimeout)
	}
}
