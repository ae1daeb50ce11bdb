package iamfence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/clock"
)

// API is the part of the IAM client the fence uses; *iam.Client satisfies
// it. GetRole tells a missing role from a missing policy, which
// GetRolePolicy answers alike (NoSuchEntity). The caller needs
// iam:GetRole, iam:GetRolePolicy, iam:PutRolePolicy and
// iam:DeleteRolePolicy on the producer roles.
type API interface {
	GetRole(ctx context.Context, params *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	GetRolePolicy(ctx context.Context, params *iam.GetRolePolicyInput, optFns ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(ctx context.Context, params *iam.PutRolePolicyInput, optFns ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(ctx context.Context, params *iam.DeleteRolePolicyInput, optFns ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
}

var _ API = (*iam.Client)(nil)

// Policy is one inline policy on one role: what Apply put or found.
type Policy struct {
	Role       string `json:"role"` // the role name
	PolicyName string `json:"policyName"`
	Document   string `json:"document"` // JSON, not URL-encoded
}

func (p Policy) String() string {
	return fmt.Sprintf("inline policy %s on role %s", p.PolicyName, p.Role)
}

// The read-back bound: IAM is eventually consistent, so a policy just put
// (or deleted) may read back as it was for a few seconds. Reads are
// retried with doubling waits from verifyFirstWait up to verifyMaxWait,
// for at most verifyTimeout, all on the caller's clock.Clock (nil: the
// wall clock). rollbackTimeout bounds the removal Apply runs on failure,
// which goes on even when ctx is done.
var (
	verifyTimeout   = 10 * time.Second
	verifyFirstWait = 100 * time.Millisecond
	verifyMaxWait   = 2 * time.Second
	rollbackTimeout = 30 * time.Second
)

// Plan reports, without changing anything, what Apply would do with the
// same arguments: the roles that lack the policy (toCreate) and those that
// already have it with an equal document (existing), in the order of
// roles, once per role. roles are role names or role ARNs (see RoleName).
// A missing role is a *RoleNotFoundError, a role with a different policy
// named PolicyName a *ConflictError.
func Plan(ctx context.Context, api API, roles []string, doc string) (toCreate, existing []Policy, err error) {
	names, err := checkArgs(roles, doc)
	if err != nil {
		return nil, nil, err
	}
	return plan(ctx, api, names, doc)
}

// Apply puts the inline policy PolicyName with document doc on every role
// that lacks it, and returns those (created) and the roles that already
// had it with an equal document (existing, left alone). roles are role
// names or role ARNs (see RoleName); doc is typically from Document.
//
// Guarantees:
//   - It checks every role before it writes anything: a missing role
//     (*RoleNotFoundError) or a policy named PolicyName with a different
//     document (*ConflictError, never overwritten) fails the call with
//     nothing changed.
//   - When it returns nil, every created policy has read back from IAM
//     with doc (compared as JSON, not byte for byte).
//   - When it fails after writing, it removes the policies it put in this
//     call (and only those) before returning an *ApplyError, which says
//     what, if anything, could not be removed. The removal runs even when
//     ctx is done, bounded by its own timeout.
//
// Invalid arguments (a bad role, no roles, a doc that is not a JSON
// object) are returned as they are, before any IAM call. Any other failure
// is an *ApplyError wrapping the cause.
//
// IAM has no conditional put: a policy of the same name created by someone
// else between the check and the put would be overwritten.
func Apply(ctx context.Context, api API, clk clock.Clock, roles []string, doc string) (created, existing []Policy, err error) {
	names, err := checkArgs(roles, doc)
	if err != nil {
		return nil, nil, err
	}
	toCreate, existing, err := plan(ctx, api, names, doc)
	if err != nil {
		return nil, nil, &ApplyError{Err: err}
	}
	var put []Policy
	undo := func(cause error) error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		return &ApplyError{Err: cause, Put: put, Remaining: Remove(rctx, api, clk, put)}
	}
	for _, p := range toCreate {
		_, err := api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
			RoleName:       aws.String(p.Role),
			PolicyName:     aws.String(p.PolicyName),
			PolicyDocument: aws.String(p.Document),
		})
		if isNoSuchEntity(err) {
			return nil, nil, undo(&RoleNotFoundError{Role: p.Role, Err: err})
		}
		// A put that failed in transit may still have been made, so it is
		// removed with the others.
		put = append(put, p)
		if err != nil {
			return nil, nil, undo(fmt.Errorf("putting %s: %w", p, err))
		}
	}
	if err := awaitPut(ctx, api, clk, put); err != nil {
		return nil, nil, undo(err)
	}
	return put, existing, nil
}

// Remove deletes exactly the given policies and verifies that each is gone
// (GetRolePolicy answers NoSuchEntity, within the read-back bound). A
// policy that is already gone counts as removed, so Remove can be retried.
// It deletes a policy only if it still has the recorded Document (or does
// not read back yet): one whose document has changed since is left in
// place and reported. It returns one human-readable line for each policy
// that may still be in place; none means all are gone.
func Remove(ctx context.Context, api API, clk clock.Clock, policies []Policy) (remaining []string) {
	seen := map[Policy]bool{}
	var deleted []Policy
	for _, p := range policies {
		if seen[p] {
			continue
		}
		seen[p] = true
		if p.Role == "" || p.PolicyName == "" {
			remaining = append(remaining, fmt.Sprintf("%s: no role or policy name recorded, nothing deleted", p))
			continue
		}
		found, ok, err := getPolicy(ctx, api, p.Role, p.PolicyName)
		if err != nil {
			remaining = append(remaining, fmt.Sprintf("%s: reading it before deleting: %v", p, err))
			continue
		}
		if ok && !sameDocument(found, p.Document) {
			remaining = append(remaining, fmt.Sprintf("%s: its document is not the one recorded, left in place", p))
			continue
		}
		_, err = api.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{
			RoleName:   aws.String(p.Role),
			PolicyName: aws.String(p.PolicyName),
		})
		if err != nil && !isNoSuchEntity(err) {
			remaining = append(remaining, fmt.Sprintf("%s: deleting: %v", p, err))
			continue
		}
		deleted = append(deleted, p)
	}
	return append(remaining, awaitGone(ctx, api, clk, deleted)...)
}

// checkArgs validates Plan's and Apply's arguments and returns the role
// names, deduplicated, in the order given.
func checkArgs(roles []string, doc string) ([]string, error) {
	var obj map[string]any
	if err := json.Unmarshal([]byte(doc), &obj); err != nil || obj == nil {
		if err == nil {
			err = errors.New("null")
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidDocument, err)
	}
	if len(roles) == 0 {
		return nil, ErrNoRoles
	}
	seen := map[string]bool{}
	var names []string
	for _, r := range roles {
		n, err := RoleName(r)
		if err != nil {
			return nil, err
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names, nil
}

func plan(ctx context.Context, api API, names []string, doc string) (toCreate, existing []Policy, err error) {
	for _, r := range names {
		if _, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(r)}); err != nil {
			if isNoSuchEntity(err) {
				return nil, nil, &RoleNotFoundError{Role: r, Err: err}
			}
			return nil, nil, fmt.Errorf("reading IAM role %s: %w", r, err)
		}
		p := Policy{Role: r, PolicyName: PolicyName, Document: doc}
		found, ok, err := getPolicy(ctx, api, r, PolicyName)
		switch {
		case err != nil:
			return nil, nil, fmt.Errorf("reading %s: %w", p, err)
		case !ok:
			toCreate = append(toCreate, p)
		case sameDocument(found, doc):
			existing = append(existing, p)
		default:
			return nil, nil, &ConflictError{Role: r, PolicyName: PolicyName, Found: found}
		}
	}
	return toCreate, existing, nil
}

// getPolicy reads one inline policy; ok is false when IAM answers
// NoSuchEntity (no such policy, or no such role).
func getPolicy(ctx context.Context, api API, role, name string) (doc string, ok bool, err error) {
	out, err := api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
	if isNoSuchEntity(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return decodeDocument(aws.ToString(out.PolicyDocument)), true, nil
}

// awaitPut reads each policy back until it has its Document, within the
// read-back bound.
func awaitPut(ctx context.Context, api API, clk clock.Clock, ps []Policy) error {
	problems, waited := await(ctx, clk, ps, func(p Policy) string {
		doc, ok, err := getPolicy(ctx, api, p.Role, p.PolicyName)
		switch {
		case err != nil:
			return fmt.Sprintf("%s: %v", p, err)
		case !ok:
			return fmt.Sprintf("%s: absent", p)
		case !sameDocument(doc, p.Document):
			return fmt.Sprintf("%s: a different document", p)
		}
		return ""
	})
	if len(problems) > 0 {
		return &NotVerifiedError{Problems: problems, Waited: waited}
	}
	return nil
}

// awaitGone reads each policy until IAM answers NoSuchEntity, within the
// read-back bound, and describes those still there.
func awaitGone(ctx context.Context, api API, clk clock.Clock, ps []Policy) []string {
	problems, waited := await(ctx, clk, ps, func(p Policy) string {
		_, ok, err := getPolicy(ctx, api, p.Role, p.PolicyName)
		switch {
		case err != nil:
			return fmt.Sprintf("%s: deleted, but reading it back failed: %v", p, err)
		case ok:
			return fmt.Sprintf("%s: deleted, but still read back", p)
		}
		return ""
	})
	for i := range problems {
		problems[i] += fmt.Sprintf(" (after %v)", waited.Round(time.Millisecond))
	}
	return problems
}

// await calls check on each pending policy, with backoff, until check
// returns "" for all of them, the read-back bound passes or ctx is done.
// It returns the last problem of each policy still pending.
func await(ctx context.Context, clk clock.Clock, ps []Policy, check func(Policy) string) (problems []string, waited time.Duration) {
	clk = clock.Or(clk)
	start := clk.Now()
	deadline := start.Add(verifyTimeout)
	wait := verifyFirstWait
	pending := ps
	for {
		var still []Policy
		problems = problems[:0]
		for _, p := range pending {
			if msg := check(p); msg != "" {
				still = append(still, p)
				problems = append(problems, msg)
			}
		}
		if len(still) == 0 {
			return nil, clk.Now().Sub(start)
		}
		if clk.Now().Add(wait).After(deadline) || clk.Sleep(ctx, wait) != nil {
			return problems, clk.Now().Sub(start)
		}
		pending = still
		wait = min(2*wait, verifyMaxWait)
	}
}

func isNoSuchEntity(err error) bool {
	var e *types.NoSuchEntityException
	return errors.As(err, &e)
}
