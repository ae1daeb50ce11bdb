package customresource

import (
	"testing"

	"github.com/aws/aws-lambda-go/cfn"
)

func TestPhysicalID(t *testing.T) {
	const stackID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/kmig-prod/4b1c0f10-0000-11ef-9c5c-0a1b2c3d4e5f"
	for _, tc := range []struct {
		name string
		ev   cfn.Event
		want string
	}{
		{"create derives it", cfn.Event{RequestType: cfn.RequestCreate, StackID: stackID, LogicalResourceID: "Scope", PhysicalResourceID: "ignored"}, "kind/kmig-prod/Scope"},
		{"update keeps CloudFormation's", cfn.Event{RequestType: cfn.RequestUpdate, StackID: stackID, LogicalResourceID: "Scope", PhysicalResourceID: "kind/old/Scope"}, "kind/old/Scope"},
		{"delete keeps CloudFormation's", cfn.Event{RequestType: cfn.RequestDelete, StackID: stackID, LogicalResourceID: "Scope", PhysicalResourceID: "kind/old/Scope"}, "kind/old/Scope"},
		{"delete of a failed create has none", cfn.Event{RequestType: cfn.RequestDelete, StackID: stackID, LogicalResourceID: "Scope"}, "kind/kmig-prod/Scope"},
		{"a stack ID that is not an ARN is used whole", cfn.Event{RequestType: cfn.RequestCreate, StackID: "local", LogicalResourceID: "Scope"}, "kind/local/Scope"},
	} {
		if got := PhysicalID(tc.ev, "kind"); got != tc.want {
			t.Errorf("%s: PhysicalID = %q, want %q", tc.name, got, tc.want)
		}
	}
}
