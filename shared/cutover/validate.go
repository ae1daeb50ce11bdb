package cutover

import (
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/rundetails"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
	"github.com/twmb/franz-go/pkg/kadm"
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
	all, err := h.listMappings(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.resolveTopics(&cfg, all); err != nil {
		return nil, err
	}
	if err := h.d.Renames.Check(cfg.Topics, transform.CheckOptions{}); err != nil {
		return nil, &InvalidInputError{Field: "topics", Problem: "with the replicator's TRANSFORMS: " + err.Error()}
	}
	cfg.Renames = h.d.Renames.For(cfg.Topics)
	if err := h.checkTopics(ctx, cfg); err != nil {
		return nil, err
	}
	maps := readingAny(all, cfg.Topics)
	if err := h.resolveGroups(ctx, &cfg, all); err != nil {
		return nil, err
	}
	fence, warnings, err := h.validateFence(ctx, cfg)
	if err != nil {
		return nil, err
	}
	st := &State{
		Config: cfg,
		Run:    Run{ID: newRunID(execution), StartedAt: start, Mappings: maps, MappingCount: len(maps), Fence: fence, Warnings: warnings},
		Steps:  map[string]*StepTime{StepValidate: {StartedAt: start, EndedAt: h.now()}},
	}
	inline := mappingsFit(maps)
	if !inline {
		st.Run.Mappings, st.Run.MappingDetails = []Mapping{}, &rundetails.Ref{}
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
	if !inline {
		ref, err := h.putDetails(ctx, st, "mappings", maps)
		if err != nil {
			return nil, err
		}
		st.Run.MappingDetails = &ref
	}
	st.Steps[StepValidate].EndedAt = h.now()
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
// topics, with their consumer group IDs, sorted by UUID.
func (h *Handler) mappings(ctx context.Context, topics []string) ([]Mapping, error) {
	all, err := h.listMappings(ctx)
	if err != nil {
		return nil, err
	}
	return readingAny(all, topics), nil
}

// mappingsInlineBytes bounds the mappings the state carries itself; more
// go to the details topic.
const mappingsInlineBytes = 8 * 1024

// mappingsFit reports whether maps stay in the state (mappingsInlineBytes).
func mappingsFit(maps []Mapping) bool {
	b, _ := json.Marshal(maps)
	return len(b) <= mappingsInlineBytes
}

// runMappings returns the run's mappings, from the state or, when there
// are many, the details topic.
func (h *Handler) runMappings(ctx context.Context, st *State) ([]Mapping, error) {
	if st.Run.MappingDetails == nil {
		return st.Run.Mappings, nil
	}
	var maps []Mapping
	if err := h.getDetails(ctx, *st.Run.MappingDetails, &maps); err != nil {
		return nil, err
	}
	return maps, nil
}

// readingAny returns the mappings of all that read any of topics.
func readingAny(all []Mapping, topics []string) []Mapping {
	want := make(map[string]bool, len(topics))
	for _, t := range topics {
		want[t] = true
	}
	var out []Mapping
	for _, m := range all {
		if slices.ContainsFunc(m.Topics, func(t string) bool { return want[t] }) {
			out = append(out, m)
		}
	}
	return out
}

// listMappings lists every event source mapping of the replicator, with
// its consumer group ID, sorted by UUID. It follows NextMarker: AWS returns
// at most 100 mappings per page.
func (h *Handler) listMappings(ctx context.Context) ([]Mapping, error) {
	if h.d.Lambda == nil || h.d.ReplicatorFunction == "" {
		return nil, &InvalidInputError{Field: "REPLICATOR_FUNCTION_NAME", Problem: "the cutover function has no replicator configured"}
	}
	var out []Mapping
	seen := map[string]bool{}
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
			if !seen[mp.UUID] { // a mapping created between two pages may show twice
				seen[mp.UUID] = true
				out = append(out, mp)
			}
		}
		next := aws.ToString(resp.NextMarker)
		if next == "" {
			break
		}
		if marker != nil && *marker == next {
			return nil, &ClusterError{Op: "listing event source mappings of " + h.d.ReplicatorFunction, Err: errors.New("the API returned the same NextMarker twice")}
		}
		marker = aws.String(next)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UUID < out[j].UUID })
	return out, nil
}

// resolveTopics sets cfg.Topics, sorted: with no input topics, every topic
// a mapping of the replicator reads; else the mapped topics the input's
// names and patterns select (package selection). An entry that is a topic
// name and that no mapping reads is a *ReplicationNotFoundError, as is a
// pattern that selects no mapped topic a *NothingSelectedError naming the
// entry; an empty result is a *NothingSelectedError.
func (h *Handler) resolveTopics(cfg *Config, all []Mapping) error {
	mappedSet := map[string]bool{}
	for _, m := range all {
		for _, t := range m.Topics {
			mappedSet[t] = true
		}
	}
	mapped := sortedKeys(mappedSet)
	if len(cfg.TopicPatterns) == 0 {
		if len(mapped) == 0 {
			return &NothingSelectedError{Field: "topics", Problem: fmt.Sprintf("the input names no topics, and no event source mapping of %s reads any topic", h.d.ReplicatorFunction)}
		}
		cfg.Topics = mapped
		return nil
	}
	var uncovered []string
	for i, p := range cfg.TopicPatterns {
		sel, err := topicSelection([]string{p}, h.detailsTopic())
		if err != nil {
			var ie *InvalidInputError
			if errors.As(err, &ie) {
				ie.Field = fmt.Sprintf("topics[%d]", i)
			}
			return err
		}
		if validTopic(p) == "" {
			// A topic name names that topic, which must be mapped.
			if !mappedSet[p] {
				uncovered = append(uncovered, p)
			}
			continue
		}
		if len(sel.Select(mapped)) > 0 {
			continue
		}
		return &NothingSelectedError{Field: fmt.Sprintf("topics[%d]", i), Problem: fmt.Sprintf(
			"pattern %q selects none of the %d topic(s) the event source mappings of %s read", p, len(mapped), h.d.ReplicatorFunction)}
	}
	if len(uncovered) > 0 {
		return &ReplicationNotFoundError{Function: h.d.ReplicatorFunction, Topics: uncovered}
	}
	sel, err := topicSelection(cfg.TopicPatterns, h.detailsTopic())
	if err != nil {
		return err
	}
	cfg.Topics = sel.Select(mapped)
	return nil
}

// detailsTopic is the details topic's name, which no cutover migrates.
func (h *Handler) detailsTopic() string {
	if h.d.DetailsTopic != "" {
		return h.d.DetailsTopic
	}
	return rundetails.DefaultTopic
}

// resolveGroups leaves the input's groups as they are (sorted); with none
// it sets cfg.Groups to every source group with a committed offset on a
// partition of cfg.Topics, except the consumer groups of the replicator's
// mappings (all of them, not only those of cfg.Topics) and any group with
// the mappings' prefix (Deps.ConsumerGroupIDPrefix, else
// mappingGroupPrefix). None found is a *NothingSelectedError.
func (h *Handler) resolveGroups(ctx context.Context, cfg *Config, all []Mapping) error {
	if len(cfg.Groups) > 0 {
		return nil
	}
	own := map[string]bool{}
	for _, m := range all {
		own[m.ConsumerGroup] = true
	}
	prefix := h.d.ConsumerGroupIDPrefix
	if prefix == "" {
		prefix = mappingGroupPrefix(all)
	}
	listed, err := h.src.ListGroups(ctx)
	if err != nil {
		return &ClusterError{Op: "listing source consumer groups", Err: err}
	}
	var candidates []string
	for _, g := range listed.Groups() {
		if own[g] || (prefix != "" && strings.HasPrefix(g, prefix)) {
			continue
		}
		candidates = append(candidates, g)
	}
	topics := make(map[string]bool, len(cfg.Topics))
	for _, t := range cfg.Topics {
		topics[t] = true
	}
	var found []string
	for start := 0; start < len(candidates); start += groupBatch {
		batch := candidates[start:min(start+groupBatch, len(candidates))]
		fetched := h.src.FetchManyOffsets(ctx, batch...)
		for _, g := range batch {
			r, ok := fetched[g]
			if !ok || errors.Is(r.Err, kerr.GroupIDNotFound) {
				continue
			}
			if r.Err != nil {
				return &ClusterError{Op: "fetching source offsets of group " + g, Err: r.Err}
			}
			has := false
			r.Fetched.Each(func(o kadm.OffsetResponse) {
				has = has || (topics[o.Topic] && o.Err == nil && o.At >= 0)
			})
			if has {
				found = append(found, g)
			}
		}
	}
	if len(found) == 0 {
		return &NothingSelectedError{Field: "groups", Problem: fmt.Sprintf(
			"the input names no groups, and no source consumer group but the replicator's has committed offsets on the %d migrated topic(s)", len(cfg.Topics))}
	}
	sort.Strings(found)
	cfg.Groups, cfg.GroupsFound = found, true
	return nil
}

// mappingGroupPrefix returns the prefix the mappings' consumer groups share
// as the reconciler names them (CONSUMER_GROUP_ID_PREFIX + topic): the
// group of every mapping is its one topic's name after the same non-empty
// prefix. Otherwise (a mapping of several topics, a group that does not
// end in its topic, prefixes that differ, no mapping) it is "".
func mappingGroupPrefix(all []Mapping) string {
	prefix := ""
	for i, m := range all {
		if len(m.Topics) != 1 || !strings.HasSuffix(m.ConsumerGroup, m.Topics[0]) {
			return ""
		}
		p := strings.TrimSuffix(m.ConsumerGroup, m.Topics[0])
		if p == "" || (i > 0 && p != prefix) {
			return ""
		}
		prefix = p
	}
	return prefix
}

// groupBatch bounds how many groups one OffsetFetch request asks for.
const groupBatch = 100

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
