package iamfence

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNoRoles is returned when no role is named: a fence on no role would
// stop no producer.
var ErrNoRoles = errors.New("no producer roles to fence")

// ErrInvalidDocument is returned (wrapped) when the document given to Plan
// or Apply is not a JSON object.
var ErrInvalidDocument = errors.New("the policy document is not a JSON object")

// RoleNotFoundError says a named role does not exist (IAM answered
// NoSuchEntity).
type RoleNotFoundError struct {
	Role string
	Err  error
}

func (e *RoleNotFoundError) Error() string {
	return fmt.Sprintf("IAM role %s does not exist: %v", e.Role, e.Err)
}

func (e *RoleNotFoundError) Unwrap() error { return e.Err }

// ConflictError says a role already has an inline policy named PolicyName
// whose document differs from the fence's. It is never overwritten: it may
// be the operator's, or a fence from an earlier run over other topics.
type ConflictError struct {
	Role       string
	PolicyName string
	Found      string // the document on the role, URL-decoded
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("IAM role %s already has an inline policy %s with a different document; it is left as it is (if it is an old fence, delete it and run again)",
		e.Role, e.PolicyName)
}

// NotVerifiedError says policies that were put did not read back with the
// document put within the read-back bound.
type NotVerifiedError struct {
	Problems []string // one per policy: which, and what was read last
	Waited   time.Duration
}

func (e *NotVerifiedError) Error() string {
	return fmt.Sprintf("not read back after %v: %s", e.Waited.Round(time.Millisecond), strings.Join(e.Problems, "; "))
}

// ApplyError says Apply failed after it began to read or write IAM. Err
// is the cause (a *RoleNotFoundError, *ConflictError, *NotVerifiedError or
// an IAM error, wrapped). Before returning, Apply tried to remove every
// policy it put (or may have put) in that call: those are Put, and
// Remaining describes the ones that may still be in place (empty when the
// rollback was complete). Remove(ctx, api, Put) can be retried safely.
type ApplyError struct {
	Err       error
	Put       []Policy
	Remaining []string
}

func (e *ApplyError) Error() string {
	var b strings.Builder
	b.WriteString("fencing with IAM policies: ")
	b.WriteString(e.Err.Error())
	switch {
	case len(e.Remaining) > 0:
		fmt.Fprintf(&b, "; NOT removed again: %s", strings.Join(e.Remaining, "; "))
	case len(e.Put) > 0:
		fmt.Fprintf(&b, "; the %d policies put were removed again", len(e.Put))
	default:
		b.WriteString("; nothing was changed")
	}
	return b.String()
}

func (e *ApplyError) Unwrap() error { return e.Err }
