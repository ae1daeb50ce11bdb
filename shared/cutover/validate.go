package cutover

import (
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync"

	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
	"github.com/twmb/franz-go/pkg/kerr"
)

// validate parses the input and checks the clusters and mappings, and
// refuses a run whose state could outgrow StateLimitBytes. It changes
// nothing but creating the details topic on the target when it is missing.
func (h *Handler) validate(ctx context.Context, raw []byte, execution string) (*State, error) {
	start := h.now()
	if len(raw) == 0 {
		return nil, &InvalidInputError{Field: "$", Problem: "missing execution input"}
	}
	cfg, err := ParseInput(raw, h.d.ApprovalTopicArn != "")
	if err != nil {
		return nil, err
	}
	if err := h.d.Renames.Check(cfg.Topics, transform.CheckOptions{}); err != nil {
		return nil, &InvalidInputError{Field: "topics", Problem: "with the replicator's TRANSFORMS: " + err.Error()}
	}
	cfg.Renames = h.d.Renames.For(cfg.Topics)
	if err := h.checkTopics(ctx, cfg); err != nil {
		return nil, err
	}
	maps, err := h.mappings(ctx, cfg.Topics)
	if err != nil {
		return nil, err
	}
	var uncovered []string
	for _, t := range cfg.Topics {
		if !slices.ContainsFunc(maps, func(m Mapping) bool { return slices.Contains(m.Topics, t) }) {
			uncovered = append(uncovered, t)
		}
	}
	if len(uncovered) > 0 {
		return nil, &ReplicationNotFoundError{Function: h.d.ReplicatorFunction, Topics: uncovered}
	}
	fence, warnings, err := h.validateFence(ctx, cfg)
	if err != nil {
		return nil, err
	}
	st := &State{
		Config: cfg,
		Run:    Run{ID: newRunID(execution), StartedAt: start, Mappings: maps, Fence: fence, Warnings: warnings},
		Steps:  map[string]*StepTime{StepValidate: {StartedAt: start, EndedAt: h.now()}},
	}
	bound, err := boundState(st)
	if err != nil {
		return nil, err
	}
	if bound.Total > StateLimitBytes {
		return nil, &StateTooLargeError{Bound: bound.String(), Limit: StateLimitBytes}
	}
	if err := h.details.Ensure(ctx); err != nil {
		return nil, &ClusterError{Op: "preparing the details topic on the target", Err: err}
	}
	return st, nil
}

// checkTopics verifies, with the same checks the provisioner applies
// (shared/topicsync), that every topic exists on both clusters (a renamed
// one under its target name on the target) with the same partition count
// and the configs that matter. It changes nothing.
func (h *Handler) checkTopics(ctx context.Context, cfg Config) error {
	plan, err := topicsync.Check(ctx, h.src, h.tgt, topicsync.Options{Topics: cfg.Topics, Renames: cfg.Renames})
	if err != nil {
		return &ClusterError{Op: "comparing source and target topics", Err: err}
	}
	if err := plan.Verify(); err != nil {
		var problems []string
		var nis *topicsync.NotInSyncError
		if errors.As(err, &nis) {
			problems = append(problems, nis.Pending...)
		} else {
			problems = append(problems, err.Error())
		}
		return &TopicMismatchError{Problems: problems}
	}
	return nil
}

// mappings lists the replicator's event source mappings that read any of
// topics, with their consumer group IDs.
func (h *Handler) mappings(ctx context.Context, topics []string) ([]Mapping, error) {
	if h.d.Lambda == nil || h.d.ReplicatorFunction == "" {
		return nil, &InvalidInputError{Field: "REPLICATOR_FUNCTION_NAME", Problem: "the cutover function has no replicator configured"}
	}
	var out []Mapping
	var marker *string
	for {
		resp, err := h.d.Lambda.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{
			FunctionName: aws.String(h.d.ReplicatorFunction),
			Marker:       marker,
		})
		if err != nil {
			return nil, &ClusterError{Op: "listing event source mappings of " + h.d.ReplicatorFunction, Err: err}
		}
		for _, m := range resp.EventSourceMappings {
			mp := Mapping{UUID: aws.ToString(m.UUID), State: aws.ToString(m.State), Topics: m.Topics}
			switch {
			case m.AmazonManagedKafkaEventSourceConfig != nil && aws.ToString(m.AmazonManagedKafkaEventSourceConfig.ConsumerGroupId) != "":
				mp.ConsumerGroup = aws.ToString(m.AmazonManagedKafkaEventSourceConfig.ConsumerGroupId)
			case m.SelfManagedKafkaEventSourceConfig != nil && aws.ToString(m.SelfManagedKafkaEventSourceConfig.ConsumerGroupId) != "":
				mp.ConsumerGroup = aws.ToString(m.SelfManagedKafkaEventSourceConfig.ConsumerGroupId)
			default:
				// Lambda's default consumer group ID is the mapping's UUID.
				mp.ConsumerGroup = mp.UUID
			}
			if slices.ContainsFunc(mp.Topics, func(t string) bool { return slices.Contains(topics, t) }) {
				out = append(out, mp)
			}
		}
		if aws.ToString(resp.NextMarker) == "" {
			break
		}
		marker = resp.NextMarker
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UUID < out[j].UUID })
	return out, nil
}

// validateFence refuses a fence kind that cannot work on this source, and
// names the kind that would. For acl and iam it plans the fence: what is
// missing now is what FenceSource adds and Rollback removes, and what is
// there already is left alone, however often FenceSource runs. It only
// reads.
func (h *Handler) validateFence(ctx context.Context, cfg Config) (FenceRecord, []string, error) {
	f := FenceRecord{Kind: cfg.Fence}
	if h.d.SourceAuth == kafkaconn.AuthIAM {
		switch cfg.Fence {
		case FenceKindACL:
			return f, nil, &FenceUnavailableError{Kind: FenceKindACL, Use: FenceKindIAM,
				Reason: "the source authenticates with IAM (SOURCE_AUTH=iam), and Kafka ACLs bind no IAM principal"}
		case FenceKindNone:
			f.Note = "unfenced: input fence=none"
			return f, nil, nil
		}
		_, existing, err := h.planIAMFence(ctx, cfg)
		f.ExistingPolicies = fencePolicies(existing)
		return f, nil, err
	}
	reason, err := h.authorizerProblem(ctx, cfg.Topics)
	if err != nil {
		return f, nil, err
	}
	switch cfg.Fence {
	case FenceKindIAM:
		use := FenceKindACL
		if reason != "" {
			use = FenceKindNone
		}
		return f, nil, &FenceUnavailableError{Kind: FenceKindIAM, Use: use,
			Reason: fmt.Sprintf("the source does not authenticate with IAM (SOURCE_AUTH=%q), so IAM policies bind none of its producers", h.d.SourceAuth)}
	case FenceKindACL:
		if reason != "" {
			return f, nil, &FenceUnavailableError{Kind: FenceKindACL, Use: FenceKindNone, Reason: reason}
		}
		plan, err := h.planACLFence(ctx, cfg.Topics, cfg.AllowEveryoneIfNoAclFound)
		if err != nil {
			var ie *InvalidInputError
			if errors.As(err, &ie) {
				return f, nil, ie
			}
			return f, nil, &ClusterError{Op: "planning the ACL fence", Err: err}
		}
		f.Planned, f.Existing = plan.toCreate, plan.existing
		var warnings []string
		for _, t := range plan.closed {
			warnings = append(warnings, fmt.Sprintf(
				"no ACL matches topic %s and the source denies by default, so only super users use it; ACLs do not bind super users, so the fence does not stop them", t))
		}
		return f, warnings, nil
	case FenceKindNone:
		f.Note = "unfenced: input fence=none"
		if reason != "" {
			f.Note = "unfenced: input fence=none, and the source could not be fenced with ACLs anyway (" + reason + ")"
		}
	}
	return f, nil, nil
}

// authorizerProblem returns "" when the source accepts ACL administration,
// or why not. Only a broker-level refusal (no authorizer, not authorized
// to administer ACLs) is a reason; a network error is an error.
func (h *Handler) authorizerProblem(ctx context.Context, topics []string) (string, error) {
	res, err := h.src.DescribeACLs(ctx, aclBuilder([]FenceACL{denyWrite(topics[0])}))
	if err != nil {
		var ke *kerr.Error
		if errors.As(err, &ke) {
			return describeRefusal(err), nil
		}
		return "", &ClusterError{Op: "describing source ACLs", Err: err}
	}
	for _, r := range res {
		if r.Err != nil {
			return describeRefusal(r.Err), nil
		}
	}
	return "", nil
}

func describeRefusal(err error) string {
	switch {
	case errors.Is(err, kerr.SecurityDisabled):
		return "the source has no authorizer (SECURITY_DISABLED)"
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return "the migrator's principal may not administer ACLs on the source (CLUSTER_AUTHORIZATION_FAILED)"
	}
	return "the source refused ACL administration: " + strings.TrimSpace(err.Error())
}
