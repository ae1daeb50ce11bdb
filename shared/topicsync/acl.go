package topicsync

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrTargetHasNoAuthorizer is returned (wrapped) when ACLs are to be copied
// but the target answers ACL requests with SECURITY_DISABLED. Turn CopyACLs
// off, or enable an authorizer on the target (MSK IAM auth needs no ACLs).
var ErrTargetHasNoAuthorizer = errors.New("the target cluster has no authorizer (SECURITY_DISABLED), so ACLs cannot be copied")

// TranslateACL applies MirrorMaker 2's rules to one source topic ACL: WRITE
// is never copied (ok is false), ALLOW ALL becomes ALLOW READ, and anything
// else is copied as it is. planACLs also leaves out the cutover's fence:
// DENY WRITE for User:* (a WRITE) and, on a topic that carries it, ALLOW ALL
// for User:*.
func TranslateACL(a ACL) (out ACL, ok bool) {
	if a.Operation == kadm.OpWrite {
		return a, false
	}
	if a.Permission == kmsg.ACLPermissionTypeAllow && a.Operation == kadm.OpAll {
		a.Operation = kadm.OpRead
	}
	return a, true
}

// The cutover's fence binds every principal on every host: DENY WRITE, and
// on a topic of an open source ALLOW ALL beside it (package cutover adds
// them). ACL copy leaves both out.
const (
	FencePrincipal = "User:*"
	FenceHost      = "*"
)

// fencedTopics returns the topics carrying the cutover's fence, DENY WRITE
// for User:* on every host.
func fencedTopics(acls []ACL) map[string]bool {
	out := map[string]bool{}
	for _, a := range acls {
		if a.Principal == FencePrincipal && a.Host == FenceHost && a.Operation == kadm.OpWrite && a.Permission == kmsg.ACLPermissionTypeDeny {
			out[a.Topic] = true
		}
	}
	return out
}

// isFenceAllow reports whether a is the ALLOW ALL for User:* that the
// cutover's fence puts beside its DENY on a topic of an open source.
func isFenceAllow(a ACL) bool {
	return a.Principal == FencePrincipal && a.Host == FenceHost && a.Operation == kadm.OpAll && a.Permission == kmsg.ACLPermissionTypeAllow
}

func describeTopicACLs(ctx context.Context, cl *kadm.Client, topics []string) ([]ACL, error) {
	b := kadm.NewACLs().Topics(topics...).ResourcePatternType(kadm.ACLPatternLiteral).
		Allow().AllowHosts().Deny().DenyHosts().Operations()
	res, err := cl.DescribeACLs(ctx, b)
	if err != nil {
		return nil, err
	}
	seen := map[ACL]bool{}
	var out []ACL
	for _, r := range res {
		if r.Err != nil {
			return nil, r.Err
		}
		for _, d := range r.Described {
			if d.Type != kmsg.ACLResourceTypeTopic || d.Pattern != kadm.ACLPatternLiteral {
				continue
			}
			a := ACL{Topic: d.Name, Principal: d.Principal, Host: d.Host, Operation: d.Operation, Permission: d.Permission}
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// planACLs returns the translated source ACLs missing on the target; each
// names the topic's target name (targetOf).
func planACLs(ctx context.Context, source, target *kadm.Client, topics []string, targetOf func(string) string) (acls []ACL, skipped int, notes []string, err error) {
	if len(topics) == 0 {
		return nil, 0, nil, nil
	}
	src, err := describeTopicACLs(ctx, source, topics)
	if errors.Is(err, kerr.SecurityDisabled) {
		return nil, 0, []string{"the source has no authorizer, so it has no ACLs to copy"}, nil
	}
	if err != nil {
		return nil, 0, nil, fmt.Errorf("describing source topic ACLs: %w", err)
	}
	var want []ACL
	seen := map[ACL]bool{}
	fenced := fencedTopics(src)
	for _, a := range src {
		if fenced[a.Topic] && isFenceAllow(a) {
			// The cutover's fence pair: copied, it would become ALLOW
			// READ for everyone and end allow-everyone on the target.
			skipped++
			continue
		}
		t, ok := TranslateACL(a)
		if !ok {
			skipped++
			continue
		}
		t.Topic = targetOf(t.Topic)
		if !seen[t] {
			seen[t] = true
			want = append(want, t)
		}
	}
	if len(want) == 0 {
		return nil, skipped, nil, nil
	}
	tgtTopics := make([]string, len(topics))
	for i, t := range topics {
		tgtTopics[i] = targetOf(t)
	}
	have, err := describeTopicACLs(ctx, target, tgtTopics)
	if errors.Is(err, kerr.SecurityDisabled) {
		return nil, skipped, nil, fmt.Errorf("copying %d topic ACLs: %w", len(want), ErrTargetHasNoAuthorizer)
	}
	if err != nil {
		return nil, skipped, nil, fmt.Errorf("describing target topic ACLs: %w", err)
	}
	exists := map[ACL]bool{}
	for _, a := range have {
		exists[a] = true
	}
	for _, a := range want {
		if !exists[a] {
			acls = append(acls, a)
		}
	}
	sort.Slice(acls, func(i, j int) bool { return acls[i].String() < acls[j].String() })
	return acls, skipped, nil, nil
}

func createACL(ctx context.Context, cl *kadm.Client, a ACL) error {
	b := kadm.NewACLs().Topics(a.Topic).ResourcePatternType(kadm.ACLPatternLiteral).Operations(a.Operation)
	if a.Permission == kmsg.ACLPermissionTypeAllow {
		b.Allow(a.Principal).AllowHosts(a.Host)
	} else {
		b.Deny(a.Principal).DenyHosts(a.Host)
	}
	res, err := cl.CreateACLs(ctx, b)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Err != nil {
			if errors.Is(r.Err, kerr.SecurityDisabled) {
				return ErrTargetHasNoAuthorizer
			}
			return fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
		}
	}
	return nil
}
