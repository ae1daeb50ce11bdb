package templatetest

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// topicKey returns the logical ID of the AWS::KMS::Key of the stack that
// encrypts topic, or a description of what the topic uses instead.
func topicKey(t *testing.T, tpl *node, topic resource) (string, bool) {
	t.Helper()
	k := topic.Node.get("Properties", "KmsMasterKeyId")
	if k == nil {
		return "no KmsMasterKeyId (unencrypted)", false
	}
	fn, arg := k.intrinsic()
	var id string
	switch fn {
	case "Ref":
		id = arg.str()
	case "Fn::GetAtt":
		if len(arg.List) > 0 {
			id = arg.List[0].str()
		}
	default:
		return "KmsMasterKeyId " + strings.TrimSpace(dump(k)), false
	}
	for _, r := range resources(tpl) {
		if r.ID == id && r.Type == "AWS::KMS::Key" {
			return id, true
		}
	}
	return "KmsMasterKeyId referencing " + id + ", not a key of the stack", false
}

// TestTopicsUseTheStacksKey: CloudWatch alarms can publish to an encrypted
// topic only if the key policy lets cloudwatch.amazonaws.com use the key,
// and the AWS managed key's policy (alias/aws/sns) cannot be changed. So
// every topic is encrypted with a customer managed key of the stack, and
// every alarm action goes to such a topic.
func TestTopicsUseTheStacksKey(t *testing.T) {
	tpl := loadTemplate(t)
	topics := 0
	for _, r := range resources(tpl) {
		if r.Type != "AWS::SNS::Topic" {
			continue
		}
		topics++
		if what, ok := topicKey(t, tpl, r); !ok {
			t.Errorf("%s: %s; it needs a customer managed key of the stack", r.ID, what)
		}
		if strings.Contains(dump(r.Node), "alias/aws/") {
			t.Errorf("%s uses an AWS managed key", r.ID)
		}
	}
	if topics < 2 {
		t.Fatalf("found %d SNS topics, want the alarm and approval topics", topics)
	}
	alarms := 0
	for _, r := range resources(tpl) {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		alarms++
		for _, prop := range []string{"AlarmActions", "OKActions", "InsufficientDataActions"} {
			actions := r.Node.get("Properties", prop)
			if actions == nil {
				continue
			}
			for _, a := range listOf(actions) {
				fn, arg := a.intrinsic()
				if fn != "Ref" {
					t.Errorf("%s %s: %s is not a topic of the stack", r.ID, prop, dump(a))
					continue
				}
				if key, ok := topicKey(t, tpl, findResource(t, tpl, arg.str())); !ok || key != "NotificationKey" {
					t.Errorf("%s %s: topic %s is not encrypted with NotificationKey (%s)", r.ID, prop, arg.str(), key)
				}
			}
		}
	}
	if alarms < 4 {
		t.Errorf("found %d alarms", alarms)
	}
}

// TestNotificationKeyPolicy pins the key policy: rotation on; the account
// administers the key (which also lets IAM policies grant its use); and
// CloudWatch alarms may only kms:Decrypt and kms:GenerateDataKey*, as the
// SNS guide's "Enable compatibility between event sources from AWS services
// and encrypted topics" asks, scoped to this account's alarms.
func TestNotificationKeyPolicy(t *testing.T) {
	tpl := loadTemplate(t)
	key := findResource(t, tpl, "NotificationKey")
	if key.Type != "AWS::KMS::Key" {
		t.Fatalf("NotificationKey is %s", key.Type)
	}
	p := key.Node.get("Properties")
	if p.get("EnableKeyRotation").str() != "true" {
		t.Error("NotificationKey: EnableKeyRotation must be true")
	}
	if s := p.get("KeySpec").str(); s != "" && s != "SYMMETRIC_DEFAULT" {
		t.Errorf("KeySpec %s: SNS supports symmetric encryption keys only", s)
	}
	stmts := listOf(p.get("KeyPolicy", "Statement"))
	if len(stmts) != 2 {
		t.Fatalf("key policy has %d statements, want exactly 2 (account, CloudWatch alarms)", len(stmts))
	}
	var sawAccount, sawCloudWatch bool
	for _, st := range stmts {
		if st.get("Effect").str() != "Allow" || st.get("NotAction") != nil || st.get("NotPrincipal") != nil || st.get("NotResource") != nil {
			t.Errorf("statement %s: only plain Allow statements expected", dump(st))
		}
		var actions []string
		for _, a := range listOf(st.get("Action")) {
			actions = append(actions, a.str())
		}
		sort.Strings(actions)
		principal := st.get("Principal")
		switch {
		case principal.get("AWS") != nil:
			sawAccount = true
			fn, arg := principal.get("AWS").intrinsic()
			if fn != "Fn::Sub" || arg.str() != "arn:${AWS::Partition}:iam::${AWS::AccountId}:root" || len(principal.Keys) != 1 {
				t.Errorf("account statement principal %s, want only this account's root", dump(principal))
			}
			if !slices.Equal(actions, []string{"kms:*"}) || st.get("Condition") != nil {
				t.Errorf("account statement: actions %v, condition %s", actions, dump(st.get("Condition")))
			}
		case principal.get("Service") != nil:
			sawCloudWatch = true
			if principal.get("Service").str() != "cloudwatch.amazonaws.com" || len(principal.Keys) != 1 {
				t.Errorf("service principal %s, want only cloudwatch.amazonaws.com", dump(principal))
			}
			if want := []string{"kms:Decrypt", "kms:GenerateDataKey*"}; !slices.Equal(actions, want) {
				t.Errorf("CloudWatch may %v, want exactly %v", actions, want)
			}
			cond := st.get("Condition")
			if fn, arg := cond.get("StringEqualsIfExists", "aws:SourceAccount").intrinsic(); fn != "Ref" || arg.str() != "AWS::AccountId" {
				t.Errorf("CloudWatch statement: aws:SourceAccount must be this account, got %s", dump(cond))
			}
			fn, arg := cond.get("ArnLikeIfExists", "aws:SourceArn").intrinsic()
			if fn != "Fn::Sub" || arg.str() != "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*" {
				t.Errorf("CloudWatch statement: aws:SourceArn must be this account's alarms in this region, got %s", dump(cond))
			}
			if len(cond.Keys) != 2 {
				t.Errorf("CloudWatch statement conditions %v", cond.Keys)
			}
		default:
			t.Errorf("statement with principal %s", dump(principal))
		}
		if r := st.get("Resource").str(); r != "*" {
			t.Errorf("key policy statement resource %q, want \"*\" (this key)", r)
		}
	}
	if !sawAccount || !sawCloudWatch {
		t.Errorf("account statement %v, CloudWatch statement %v", sawAccount, sawCloudWatch)
	}
}

// TestApprovalPublisherMayUseTheKey: the cutover function publishes the
// approval requests, and a publisher to an encrypted topic needs
// kms:GenerateDataKey and kms:Decrypt on its key. No other role gets any
// KMS right on it.
func TestApprovalPublisherMayUseTheKey(t *testing.T) {
	_, stmts := collectStatements(loadTemplate(t))
	var got []string
	for _, s := range stmts {
		if !strings.Contains(flatten(s.Node), "NotificationKey") {
			continue
		}
		for _, a := range s.Actions {
			got = append(got, strings.Fields(s.Where)[0]+" "+a)
		}
		if len(s.Resources) != 1 || strings.Join(strings.Fields(flatten(s.Resources[0])), " ") != "Fn::GetAtt NotificationKey Arn" {
			t.Errorf("%s: the key grant must name exactly NotificationKey.Arn: %s", s.Where, flatten(s.Node))
		}
	}
	sort.Strings(got)
	if want := []string{"CutoverRole kms:Decrypt", "CutoverRole kms:GenerateDataKey"}; !slices.Equal(got, want) {
		t.Errorf("KMS grants on NotificationKey: %v, want %v", got, want)
	}
}

// TestOnlyTheCutoverPublishesApprovals: the cutover function publishes the
// approval requests; the state machine only invokes it (its definition has
// no SNS task). So only the cutover role may publish to the approval
// topic, and only it may use the topic's key for that.
func TestOnlyTheCutoverPublishesApprovals(t *testing.T) {
	asl, err := os.ReadFile(filepath.Join(repoRoot(t), "statemachine", "cutover.asl.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(string(asl)), ":sns:publish") {
		t.Fatal("the state machine publishes to SNS itself: its role then needs sns:Publish on the topic and kms:GenerateDataKey/kms:Decrypt on NotificationKey")
	}
	_, stmts := collectStatements(loadTemplate(t))
	var publishers []string
	for _, s := range stmts {
		if s.Effect == "Allow" && slices.Contains(s.Actions, "sns:Publish") && strings.Contains(flatten(s.Node), "ApprovalTopic") {
			publishers = append(publishers, strings.Fields(s.Where)[0])
		}
	}
	if !slices.Equal(publishers, []string{"CutoverRole"}) {
		t.Errorf("roles that may publish to ApprovalTopic: %v, want [CutoverRole]", publishers)
	}
}
