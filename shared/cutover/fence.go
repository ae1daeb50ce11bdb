package cutover

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync"
)

// The ACL fence changes nothing on the source but writes. Kafka's authorizer
// grants a request when an ALLOW ACL matches and no DENY does; on a cluster
// with allow.everyone.if.no.acl.found=true it also grants every request on a
// resource that no ACL matches at all. So the DENY WRITE for User:* alone
// would end that open access for every other operation on the topic: readers
// would be refused too. For such a topic the fence also adds ALLOW ALL for
// User:* (DENY wins over ALLOW, so writes stay refused). A topic that some
// ACL already matches (literal, prefixed or wildcard, any principal) gets
// only the DENY: its access is decided by those ACLs, fenced or not.

// ACL fields of a FenceACL, as Kafka names them.
const (
	fencePrincipal = topicsync.FencePrincipal
	fenceHost      = topicsync.FenceHost
	opWrite        = "WRITE"
	opAll          = "ALL"
	permDeny       = "DENY"
	permAllow      = "ALLOW"
)

// The broker setting that makes a resource no ACL matches open to everyone.
// Kafka reports it as sensitive (its value is hidden) because it is not a
// broker config of its own but the authorizer's.
const allowEveryoneConfig = "allow.everyone.if.no.acl.found"

// FenceACL is one ACL of the fence: a literal topic ACL for principal
// User:* on host *, either DENY WRITE or (on a topic no ACL matched, on a
// source open to everyone) ALLOW ALL.
type FenceACL struct {
	Topic      string `json:"topic"`
	Principal  string `json:"principal"`
	Host       string `json:"host"`
	Operation  string `json:"operation"`
	Permission string `json:"permission"`
}

func (a FenceACL) String() string {
	return fmt.Sprintf("%s %s %s on topic %s", a.Permission, a.Operation, a.Principal, a.Topic)
}

func denyWrite(topic string) FenceACL {
	return FenceACL{Topic: topic, Principal: fencePrincipal, Host: fenceHost, Operation: opWrite, Permission: permDeny}
}

func allowAll(topic string) FenceACL {
	return FenceACL{Topic: topic, Principal: fencePrincipal, Host: fenceHost, Operation: opAll, Permission: permAllow}
}

// aclBuilder returns the builder that creates, or matches exactly, acls,
// which must share permission and operation (one batch of the fence).
func aclBuilder(acls []FenceACL) *kadm.ACLBuilder {
	topics := make([]string, len(acls))
	for i, a := range acls {
		topics[i] = a.Topic
	}
	b := kadm.NewACLs().Topics(topics...).ResourcePatternType(kadm.ACLPatternLiteral)
	op := kadm.OpWrite
	if acls[0].Operation == opAll {
		op = kadm.OpAll
	}
	if acls[0].Permission == permAllow {
		return b.Allow(fencePrincipal).AllowHosts(fenceHost).Operations(op)
	}
	return b.Deny(fencePrincipal).DenyHosts(fenceHost).Operations(op)
}

// aclFence is what the ACL fence needs on the source right now.
type aclFence struct {
	toCreate []FenceACL // in creation order: every ALLOW before any DENY
	existing []FenceACL // identical ACLs already present, left alone
	// closed lists topics no ACL matches on a source that denies by
	// default: only super users use them, and ACLs bind no super user.
	closed []string
}

// planACLFence works out the fence's ACLs for topics. It only reads.
// allowEveryone is the input's allowEveryoneIfNoAclFound (nil if absent).
func (h *Handler) planACLFence(ctx context.Context, topics []string, allowEveryone *bool) (aclFence, error) {
	var f aclFence
	unmatched, err := h.topicsWithoutACLs(ctx, topics)
	if err != nil {
		return f, err
	}
	var open bool
	if len(unmatched) > 0 {
		if open, err = h.allowsEveryone(ctx, unmatched, allowEveryone); err != nil {
			return f, err
		}
	}
	var allows, denies []FenceACL
	for _, t := range topics {
		denies = append(denies, denyWrite(t))
		if slices.Contains(unmatched, t) {
			if open {
				allows = append(allows, allowAll(t))
			} else {
				f.closed = append(f.closed, t)
			}
		}
	}
	want := append(allows, denies...)
	present, err := h.presentACLs(ctx, topics, want)
	if err != nil {
		return f, err
	}
	for _, a := range want {
		if present[a] {
			f.existing = append(f.existing, a)
		} else {
			f.toCreate = append(f.toCreate, a)
		}
	}
	return f, nil
}

// topicsWithoutACLs returns the topics no ACL matches: no literal,
// prefixed or wildcard topic ACL, for any principal, host or operation.
// It reads every topic ACL and matches them by Kafka's rules here, rather
// than trusting a broker's MATCH filter.
func (h *Handler) topicsWithoutACLs(ctx context.Context, topics []string) ([]string, error) {
	res, err := h.src.DescribeACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).
		Allow().AllowHosts().Deny().DenyHosts().Operations())
	if err != nil {
		return nil, fmt.Errorf("describing source ACLs: %w", err)
	}
	var acls []kadm.DescribedACL
	for _, r := range res {
		if r.Err != nil {
			return nil, fmt.Errorf("describing source ACLs: %w", r.Err)
		}
		for _, d := range r.Described {
			if d.Type == kmsg.ACLResourceTypeTopic {
				acls = append(acls, d)
			}
		}
	}
	var out []string
	for _, t := range topics {
		if !slices.ContainsFunc(acls, func(d kadm.DescribedACL) bool { return aclMatchesTopic(d, t) }) {
			out = append(out, t)
		}
	}
	return out, nil
}

// aclMatchesTopic applies Kafka's resource pattern rules: a literal ACL
// matches its name or, named *, every topic; a prefixed one every topic
// starting with its name.
func aclMatchesTopic(d kadm.DescribedACL, topic string) bool {
	switch d.Pattern {
	case kadm.ACLPatternLiteral:
		return d.Name == topic || d.Name == "*"
	case kadm.ACLPatternPrefixed:
		return strings.HasPrefix(topic, d.Name)
	}
	return false
}

// allowsEveryone returns the source's allow.everyone.if.no.acl.found: the
// brokers' value where they show it, else the input's. Where neither tells,
// or they disagree, it is an *InvalidInputError naming the input field,
// because guessing wrong either refuses readers or opens the topics to
// everyone.
func (h *Handler) allowsEveryone(ctx context.Context, unmatched []string, input *bool) (bool, error) {
	broker, known, err := h.brokerAllowsEveryone(ctx)
	if err != nil {
		return false, err
	}
	switch {
	case known && input != nil && *input != broker:
		return false, &InvalidInputError{Field: "allowEveryoneIfNoAclFound", Problem: fmt.Sprintf(
			"is %v, but the source brokers report %s=%v", *input, allowEveryoneConfig, broker)}
	case known:
		return broker, nil
	case input != nil:
		return *input, nil
	}
	return false, &InvalidInputError{Field: "allowEveryoneIfNoAclFound", Problem: fmt.Sprintf(
		"must be set to the source brokers' %s (true or false): no ACL matches topic(s) %s, and the brokers do not show the setting (Kafka reports it as sensitive)",
		allowEveryoneConfig, strings.Join(unmatched, ", "))}
}

// brokerAllowsEveryone reads allow.everyone.if.no.acl.found from one source
// broker; known is false where the broker hides or omits it.
func (h *Handler) brokerAllowsEveryone(ctx context.Context) (value, known bool, err error) {
	brokers, err := h.src.ListBrokers(ctx)
	if err != nil {
		return false, false, &ClusterError{Op: "listing source brokers", Err: err}
	}
	if len(brokers) == 0 {
		return false, false, nil
	}
	rc, err := h.src.DescribeBrokerConfigs(ctx, brokers[0].NodeID)
	if err != nil {
		// A principal without DESCRIBE_CONFIGS on the cluster: the
		// input must say.
		return false, false, nil
	}
	for _, r := range rc {
		for _, c := range r.Configs {
			if c.Key == allowEveryoneConfig && !c.Sensitive && c.Value != nil {
				switch strings.TrimSpace(strings.ToLower(*c.Value)) {
				case "true":
					return true, true, nil
				case "false":
					return false, true, nil
				}
			}
		}
	}
	return false, false, nil
}

// presentACLs reports which of want exist on the source, exactly. It
// describes every literal topic ACL of the fence's principal and host
// with one filter per permission, whatever the number of topics (a
// DescribeAcls request takes one filter), and matches them here.
func (h *Handler) presentACLs(ctx context.Context, _ []string, want []FenceACL) (map[FenceACL]bool, error) {
	res, err := h.src.DescribeACLs(ctx, kadm.NewACLs().Topics().ResourcePatternType(kadm.ACLPatternLiteral).
		Allow(fencePrincipal).AllowHosts(fenceHost).Deny(fencePrincipal).DenyHosts(fenceHost).Operations())
	if err != nil {
		return nil, fmt.Errorf("describing source ACLs: %w", err)
	}
	wanted := make(map[FenceACL]bool, len(want))
	for _, a := range want {
		wanted[a] = true
	}
	out := map[FenceACL]bool{}
	for _, r := range res {
		if r.Err != nil {
			return nil, fmt.Errorf("describing source ACLs: %w", r.Err)
		}
		for _, d := range r.Described {
			if d.Type != kmsg.ACLResourceTypeTopic || d.Pattern != kadm.ACLPatternLiteral {
				continue
			}
			a := FenceACL{Topic: d.Name, Principal: d.Principal, Host: d.Host, Operation: d.Operation.String(), Permission: d.Permission.String()}
			if wanted[a] {
				out[a] = true
			}
		}
	}
	return out, nil
}

// ---- FenceSource ----

func (h *Handler) fenceSource(ctx context.Context, st *State) error {
	f := &st.Run.Fence
	switch st.Config.Fence {
	case FenceKindNone:
		f.Applied = false
		return nil
	case FenceKindIAM:
		return h.fenceIAM(ctx, st)
	}
	// Validate planned the fence: Planned are the ACLs that were missing
	// then, Existing those already there. Every planned ACL present now
	// is this run's, also when an earlier attempt of this task created it
	// before its answer was lost and Step Functions retried the task.
	plan := aclFence{toCreate: f.Planned, existing: f.Existing}
	var created []FenceACL
	undo := func(cause error) error {
		if rest := h.deleteACLs(ctx, st.Config.Topics, created); len(rest) > 0 {
			return &RollbackIncompleteError{Remaining: append(rest, "after: "+cause.Error())}
		}
		return cause
	}
	present, err := h.presentACLs(ctx, st.Config.Topics, plan.toCreate)
	if err != nil {
		return &FenceFailedError{Err: err}
	}
	// Every ALLOW lands before any DENY, so no reader is refused in
	// between.
	for _, perm := range []string{permAllow, permDeny} {
		var batch, missing []FenceACL
		for _, a := range plan.toCreate {
			switch {
			case a.Permission != perm:
			case present[a]:
				batch, created = append(batch, a), append(created, a)
			default:
				batch, missing = append(batch, a), append(missing, a)
			}
		}
		if len(missing) > 0 {
			made, err := h.createACLs(ctx, st.Config.Topics, missing)
			created = append(created, made...)
			if err != nil {
				return undo(&FenceFailedError{Err: err})
			}
		}
		if len(batch) == 0 {
			continue
		}
		if differ, err := h.awaitACLs(ctx, st.Config.Topics, batch, true); err != nil {
			return undo(&FenceFailedError{Err: err})
		} else if len(differ) > 0 {
			return undo(&FenceFailedError{Err: fmt.Errorf("%s did not read back within %v", differ[0], fenceReadBackAttempts*fenceReadBackInterval)})
		}
	}
	f.Created, f.Planned, f.Applied = created, nil, true
	return nil
}

// remains says what a successful run leaves on the source: the ACLs and
// policies the fence added, the first 20 of them and how many more. The report computes it, so the execution state
// does not carry it twice.
func (f FenceRecord) remains() []string {
	var out []string
	for _, a := range f.Created {
		s := a.String()
		if a.Permission == permAllow {
			s += " (keeps every other operation open while the DENY stands; remove it with the DENY)"
		}
		out = append(out, s)
	}
	for _, p := range f.Policies {
		out = append(out, p.String()+" (denies kafka-cluster:WriteData on the migrated topics)")
	}
	// fence.created and fence.policies list them all; the report must
	// stay small whatever the number of topics.
	if shown, more := firstListed(out); more > 0 {
		return append(shown, fmt.Sprintf("… and %d more, listed in fence.created and fence.policies", more))
	}
	return out
}

// How long FenceSource and Rollback wait for ACL changes to read back.
const (
	fenceReadBackAttempts = 50
	fenceReadBackInterval = 200 * time.Millisecond
)

// createACLs creates acls (one batch: same permission and operation) and
// returns those created, even when it also returns an error.
func (h *Handler) createACLs(ctx context.Context, topics []string, acls []FenceACL) ([]FenceACL, error) {
	res, err := h.src.CreateACLs(ctx, aclBuilder(acls))
	if err != nil {
		// Some may have been created: find out by describing.
		var made []FenceACL
		if now, derr := h.presentACLs(ctx, topics, acls); derr == nil {
			for _, a := range acls {
				if now[a] {
					made = append(made, a)
				}
			}
		}
		return made, fmt.Errorf("creating %s: %w", acls[0], err)
	}
	failed := map[string]error{}
	for _, r := range res {
		if r.Err != nil {
			failed[r.Name] = r.Err
		}
	}
	var made []FenceACL
	var first error
	for _, a := range acls {
		if e, ok := failed[a.Topic]; ok {
			if first == nil {
				first = fmt.Errorf("creating %s: %w", a, e)
			}
			continue
		}
		made = append(made, a)
	}
	return made, first
}

// deleteACLs deletes exactly acls, every DENY before any ALLOW (so readers
// are never refused in between), and returns what could not be removed.
func (h *Handler) deleteACLs(ctx context.Context, topics []string, acls []FenceACL) []string {
	var remaining []string
	for _, perm := range []string{permDeny, permAllow} {
		var batch []FenceACL
		for _, a := range acls {
			if a.Permission == perm {
				batch = append(batch, a)
			}
		}
		if len(batch) == 0 {
			continue
		}
		// A broker answers each deletion filter on its own: a refusal
		// there (an authorizer's, a broker without one) is reported with
		// its reason, not only as an ACL still read back.
		res, err := h.src.DeleteACLs(ctx, aclBuilder(batch))
		if err != nil {
			remaining = append(remaining, fmt.Sprintf("deleting %d %s ACL(s): %v", len(batch), perm, err))
		}
		refused := map[string]bool{}
		for _, r := range res {
			if r.Err == nil {
				continue
			}
			name := ""
			if r.Name != nil {
				name = *r.Name
			}
			msg := fmt.Sprintf("deleting %s ACLs on topic %s: the source refused: %v", perm, name, r.Err)
			if !refused[msg] {
				refused[msg] = true
				remaining = append(remaining, msg)
			}
		}
		left, err := h.awaitACLs(ctx, topics, batch, false)
		if err != nil {
			return append(remaining, err.Error())
		}
		for _, a := range left {
			remaining = append(remaining, a.String())
		}
	}
	return remaining
}

// awaitACLs reads acls back until each is present (want) or absent
// (!want), for a bounded time: a KRaft cluster applies ACL changes on each
// broker shortly after the controller commits them. It returns the ACLs
// that still differ.
func (h *Handler) awaitACLs(ctx context.Context, topics []string, acls []FenceACL, want bool) ([]FenceACL, error) {
	for attempt := 0; ; attempt++ {
		now, err := h.presentACLs(ctx, topics, acls)
		if err != nil {
			return nil, err
		}
		var differ []FenceACL
		for _, a := range acls {
			if now[a] != want {
				differ = append(differ, a)
			}
		}
		if len(differ) == 0 || attempt == fenceReadBackAttempts {
			return differ, nil
		}
		if err := h.d.Clock.Sleep(ctx, fenceReadBackInterval); err != nil {
			return differ, err
		}
	}
}
