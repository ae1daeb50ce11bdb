// Package customresource holds what the stack's CloudFormation custom
// resources share.
package customresource

import (
	"strings"

	"github.com/aws/aws-lambda-go/cfn"
)

// PhysicalID is a custom resource's physical ID, stable for the life of
// the resource: Create derives it from kind, the stack's name and the
// logical ID; Update and Delete keep the one CloudFormation sends, so an
// Update never looks like a replacement (CloudFormation deletes the old
// resource when the physical ID an Update returns differs).
func PhysicalID(ev cfn.Event, kind string) string {
	if ev.RequestType != cfn.RequestCreate && ev.PhysicalResourceID != "" {
		return ev.PhysicalResourceID
	}
	stack := ev.StackID
	// arn:aws:cloudformation:region:account:stack/NAME/uuid
	if parts := strings.Split(ev.StackID, "/"); len(parts) >= 2 {
		stack = parts[1]
	}
	return kind + "/" + stack + "/" + ev.LogicalResourceID
}
