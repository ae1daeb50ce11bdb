package cutover

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamfence"
)

// The iam fence: for MSK sources that authenticate with IAM, where Kafka
// ACLs bind nobody. FenceSource puts an explicit-deny inline policy for
// kafka-cluster:WriteData on the migrated topics' ARNs onto each producer
// role the input names (package iamfence), reads it back, and Rollback
// deletes exactly the policies it put. A successful run leaves them, so the
// old cluster takes no writes by mistake.

// FencePolicy is one inline policy of the iam fence on one role.
type FencePolicy struct {
	Role       string `json:"role"`
	PolicyName string `json:"policyName"`
}

func (p FencePolicy) String() string {
	return fmt.Sprintf("IAM policy %s on role %s", p.PolicyName, p.Role)
}

func fencePolicies(ps []iamfence.Policy) []FencePolicy {
	out := make([]FencePolicy, len(ps))
	for i, p := range ps {
		out[i] = FencePolicy{Role: p.Role, PolicyName: p.PolicyName}
	}
	return out
}

func iamPolicies(ps []FencePolicy, doc string) []iamfence.Policy {
	out := make([]iamfence.Policy, len(ps))
	for i, p := range ps {
		out[i] = iamfence.Policy{Role: p.Role, PolicyName: p.PolicyName, Document: doc}
	}
	return out
}

// iamFenceDocument returns the policy document for topics.
func (h *Handler) iamFenceDocument(topics []string) (string, error) {
	if h.d.SourceClusterArn == "" {
		return "", &FenceUnavailableError{Kind: FenceKindIAM, Use: FenceKindNone,
			Reason: "the cutover function has no SOURCE_CLUSTER_ARN, which names the topics' ARNs"}
	}
	arns, err := iamfence.TopicARNs(h.d.SourceClusterArn, topics)
	if err != nil {
		return "", &FenceUnavailableError{Kind: FenceKindIAM, Use: FenceKindNone, Reason: err.Error()}
	}
	doc, err := iamfence.Document(arns)
	if err != nil {
		var tl *iamfence.TooLargeError
		if errors.As(err, &tl) {
			return "", &InvalidInputError{Field: "topics", Problem: err.Error()}
		}
		return "", &FenceUnavailableError{Kind: FenceKindIAM, Use: FenceKindNone, Reason: err.Error()}
	}
	return doc, nil
}

// planIAMFence checks that the iam fence can be put on the input's roles
// and returns what it would put and what is already there. It only reads.
func (h *Handler) planIAMFence(ctx context.Context, cfg Config) (toCreate, existing []iamfence.Policy, err error) {
	if h.d.IAM == nil {
		return nil, nil, &FenceUnavailableError{Kind: FenceKindIAM, Use: FenceKindNone, Reason: "the cutover function has no IAM client"}
	}
	for i, r := range cfg.ProducerRoles {
		name, err := iamfence.RoleName(r)
		if err != nil {
			return nil, nil, &InvalidInputError{Field: fmt.Sprintf("producerRoles[%d]", i), Problem: err.Error()}
		}
		if !slices.ContainsFunc(h.d.ProducerRoleArns, func(a string) bool { n, _ := iamfence.RoleName(a); return n == name }) {
			return nil, nil, &InvalidInputError{Field: fmt.Sprintf("producerRoles[%d]", i), Problem: fmt.Sprintf(
				"role %s is not one the stack lets the cutover fence (its ProducerRoleArns parameter: %v)", name, h.d.ProducerRoleArns)}
		}
	}
	doc, err := h.iamFenceDocument(cfg.Topics)
	if err != nil {
		return nil, nil, err
	}
	toCreate, existing, err = iamfence.Plan(ctx, h.d.IAM, cfg.ProducerRoles, doc)
	if err != nil {
		var nf *iamfence.RoleNotFoundError
		var ce *iamfence.ConflictError
		if errors.As(err, &nf) || errors.As(err, &ce) {
			return nil, nil, &InvalidInputError{Field: "producerRoles", Problem: err.Error()}
		}
		return nil, nil, &ClusterError{Op: "reading the producer roles' policies", Err: err}
	}
	return toCreate, existing, nil
}

func (h *Handler) fenceIAM(ctx context.Context, st *State) error {
	f := &st.Run.Fence
	doc, err := h.iamFenceDocument(st.Config.Topics)
	if err != nil {
		return err
	}
	created, existing, err := iamfence.Apply(ctx, h.d.IAM, st.Config.ProducerRoles, doc)
	if err != nil {
		var ae *iamfence.ApplyError
		if errors.As(err, &ae) && len(ae.Remaining) > 0 {
			return &RollbackIncompleteError{Remaining: append(ae.Remaining, "after: "+err.Error())}
		}
		return &FenceFailedError{Err: err}
	}
	// A policy Validate did not find is this run's, also when an earlier
	// attempt of this task put it before its answer was lost and Step
	// Functions retried the task.
	ours := created
	for _, p := range existing {
		if !slices.ContainsFunc(f.ExistingPolicies, func(e FencePolicy) bool { return e.Role == p.Role }) {
			ours = append(ours, p)
		}
	}
	if err := h.fault(StepFenceSource); err != nil {
		if rest := iamfence.Remove(ctx, h.d.IAM, ours); len(rest) > 0 {
			return &RollbackIncompleteError{Remaining: append(rest, "after: "+err.Error())}
		}
		return err
	}
	f.Policies, f.Applied = fencePolicies(ours), true
	if len(ours) > 0 {
		f.PolicyDocument = doc
	}
	return nil
}
