package cutover

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

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

// iamFenceDocument returns the policy document for topics: their exact
// topic ARNs when that fits in IAM's inline policy limit; else topic ARNs
// compressed to prefix wildcards where that is exact now, that is where no
// other topic on the source (internal ones included) shares the prefix
// (compressTopics). A wildcard also denies a topic created later under its
// prefix. When even that does not fit it is a *FencePolicyTooLargeError.
func (h *Handler) iamFenceDocument(ctx context.Context, topics []string) (string, error) {
	if h.d.SourceClusterArn == "" {
		return "", &FenceUnavailableError{Kind: FenceKindIAM, Use: FenceKindNone,
			Reason: "the cutover function has no SOURCE_CLUSTER_ARN, which names the topics' ARNs"}
	}
	arns, err := iamfence.TopicARNs(h.d.SourceClusterArn, topics)
	if err != nil {
		return "", &FenceUnavailableError{Kind: FenceKindIAM, Use: FenceKindNone, Reason: err.Error()}
	}
	doc, err := iamfence.Document(arns)
	var tl *iamfence.TooLargeError
	switch {
	case err == nil:
		return doc, nil
	case !errors.As(err, &tl):
		return "", &FenceUnavailableError{Kind: FenceKindIAM, Use: FenceKindNone, Reason: err.Error()}
	}
	listed, err := h.src.ListTopicsWithInternal(ctx)
	if err != nil {
		return "", &ClusterError{Op: "listing source topics to compress the iam fence's topic ARNs", Err: err}
	}
	names, prefixes := compressTopics(topics, listed.Names())
	doc, err = iamfence.DocumentWithPrefixes(h.d.SourceClusterArn, names, prefixes)
	if errors.As(err, &tl) {
		return "", &FencePolicyTooLargeError{Topics: len(topics), Resources: len(names) + len(prefixes), Chars: tl.Chars, Limit: tl.Limit}
	}
	if err != nil {
		return "", &FenceUnavailableError{Kind: FenceKindIAM, Use: FenceKindNone, Reason: err.Error()}
	}
	return doc, nil
}

// compressTopics covers selected with as few resources as exactness
// allows: every selected topic is named, or covered by a prefix, and no
// topic of existing that is not selected starts with any prefix. For each
// selected topic it takes the shortest prefix that only selected topics
// share (such prefixes never nest, so each topic has one), groups the
// topics by it, and names a group of one topic exactly and a larger group
// by its members' longest common prefix (longer than or equal to the
// shared one, so it is exact too and catches fewer future topics).
func compressTopics(selected, existing []string) (names, prefixes []string) {
	sel := make(map[string]bool, len(selected))
	for _, t := range selected {
		sel[t] = true
	}
	all := slices.Clone(existing)
	all = append(all, selected...)
	slices.Sort(all)
	all = slices.Compact(all)
	// unsel[i] counts the topics of all[:i] that are not selected.
	unsel := make([]int, len(all)+1)
	for i, t := range all {
		unsel[i+1] = unsel[i]
		if !sel[t] {
			unsel[i+1]++
		}
	}
	// pure reports whether only selected topics start with p.
	pure := func(p string) bool {
		lo, _ := slices.BinarySearch(all, p)
		hi := lo + sort.Search(len(all)-lo, func(i int) bool { return !strings.HasPrefix(all[lo+i], p) })
		return unsel[hi] == unsel[lo]
	}
	groups := map[string][]string{}
	for _, t := range slices.Sorted(maps.Keys(sel)) {
		l := 0
		for l < len(t) && !pure(t[:l]) {
			l++
		}
		if !pure(t[:l]) {
			// An unselected topic starts with t's whole name.
			names = append(names, t)
			continue
		}
		groups[t[:l]] = append(groups[t[:l]], t)
	}
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		g := groups[k]
		if len(g) == 1 {
			names = append(names, g[0])
			continue
		}
		// g is sorted: its first and last share the longest prefix.
		first, last := g[0], g[len(g)-1]
		n := 0
		for n < len(first) && n < len(last) && first[n] == last[n] {
			n++
		}
		prefixes = append(prefixes, first[:n])
	}
	return names, prefixes
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
	doc, err := h.iamFenceDocument(ctx, cfg.Topics)
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
	doc, err := h.iamFenceDocument(ctx, st.Config.Topics)
	if err != nil {
		return err
	}
	created, existing, err := iamfence.Apply(ctx, h.d.IAM, h.d.Clock, st.Config.ProducerRoles, doc)
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
	f.Policies, f.Applied = fencePolicies(ours), true
	if len(ours) > 0 {
		f.PolicyDocument = doc
	}
	return nil
}
