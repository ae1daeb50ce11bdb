package cutover

import (
	"fmt"
	"sort"
)

// The errors below are the cutover's domain errors. Each Go type name is the
// exact error name the state machine catches (aws-lambda-go reports the
// type name as errorType, and Step Functions uses errorType as the error
// name), so renaming a type is a breaking change to cutover.asl.json.
// Handlers return them unwrapped at the Lambda boundary.

// InvalidInputError says the execution input is malformed or a value is
// out of range. Field names the offending input field (JSON path form,
// e.g. hooks.stopProducers.type). Nothing has been changed.
type InvalidInputError struct {
	Field   string
	Problem string
}

func (e *InvalidInputError) Error() string {
	return fmt.Sprintf("invalid input: %s: %s", e.Field, e.Problem)
}

// TopicMismatchError says a migrated topic is missing on a cluster or the
// target's partition count differs from the source's. Nothing has been
// changed; prepare the target (the provisioner) and run again.
type TopicMismatchError struct {
	Problems []string // one line per topic
}

func (e *TopicMismatchError) Error() string {
	return "topics do not match between source and target: " + listed(e.Problems, "; ")
}

// FenceUnavailableError says the input's fence kind cannot work on this
// source: acl on a source without an authorizer (or that refuses ACL
// administration) or that authenticates with IAM, iam on a source that does
// not. It is raised by Validate, before any change. Use names the kind
// that would work.
type FenceUnavailableError struct {
	Kind   string // the input's fence kind
	Use    string // the kind that works on this source: acl, iam or none
	Reason string
}

func (e *FenceUnavailableError) Error() string {
	msg := fmt.Sprintf("cannot fence the source with fence %q: %s", e.Kind, e.Reason)
	if e.Use == FenceKindNone {
		return msg + `; use "fence": "none" to accept an unfenced cutover`
	}
	return msg + fmt.Sprintf(`; use "fence": %q`, e.Use)
}

// ReplicationNotFoundError says the replicator function has no event source
// mapping reading a migrated topic, so draining cannot be proven.
type ReplicationNotFoundError struct {
	Function string
	Topics   []string
}

func (e *ReplicationNotFoundError) Error() string {
	return fmt.Sprintf("no event source mapping of %s reads topic(s) %s", e.Function, listed(e.Topics, ", "))
}

// NothingSelectedError says the input's selection, resolved by Validate,
// leaves nothing to cut over: no mapped topic (Field "topics"), a pattern
// that selects no mapped topic (Field "topics[i]"), or, with groups left
// out, no source group with committed offsets on the topics (Field
// "groups"). Nothing has been changed.
type NothingSelectedError struct {
	Field   string
	Problem string
}

func (e *NothingSelectedError) Error() string {
	return fmt.Sprintf("nothing to cut over: %s: %s", e.Field, e.Problem)
}

// FencePolicyTooLargeError says the iam fence's deny policy for the
// topics does not fit in IAM's inline policy size limit per role, even
// with topic ARNs compressed to prefix wildcards where that is exact.
// Nothing has been changed; cut the topics over in subsets.
type FencePolicyTooLargeError struct {
	Topics    int // topics to fence
	Resources int // resources after compression
	Chars     int // the smallest document's length
	Limit     int // IAM's limit
}

func (e *FencePolicyTooLargeError) Error() string {
	return fmt.Sprintf("the iam fence's policy for %d topics is %d characters (%d resources after compressing topic ARNs to exact prefix wildcards), over IAM's %d-character inline policy limit per role; cut the topics over in subsets (each run's topics or patterns selecting fewer topics)",
		e.Topics, e.Chars, e.Resources, e.Limit)
}

// SourceNotQuietError says source end offsets kept moving after the
// StopProducers hook, past the quiet deadline. Partitions lists the ones
// that moved in the last window as topic/partition.
type SourceNotQuietError struct {
	Partitions []string
}

func (e *SourceNotQuietError) Error() string {
	return "source still receiving writes on " + listed(e.Partitions, ", ")
}

// FenceFailedError says creating or verifying the fence (ACLs or IAM
// policies) failed. Whatever this step added has been removed again.
type FenceFailedError struct {
	Err error
}

func (e *FenceFailedError) Error() string { return "fencing the source: " + e.Err.Error() }
func (e *FenceFailedError) Unwrap() error { return e.Err }

// DrainTimeoutError says replication (or a listed group) had not caught up
// by the drain deadline. Lagging names each partition still behind and why.
type DrainTimeoutError struct {
	Lagging []string
}

func (e *DrainTimeoutError) Error() string {
	return "drain timed out; still lagging: " + listed(e.Lagging, "; ")
}

// PauseFailedError says an event source mapping could not be disabled
// (an update answered an error other than busy) or did not read back as
// Disabled by mappingTimeoutSeconds. Mappings lists each mapping not
// Disabled and why. Rollback re-enables every mapping the run recorded in
// Run.Disabled, including those still in transition.
type PauseFailedError struct {
	Mappings []string // one line per mapping: its state and the problem
}

func (e *PauseFailedError) Error() string {
	return "pausing replication: " + listed(e.Mappings, "; ")
}

// MappingResumedError says a mapping PauseReplication left Disabled polls
// again when offsets are about to be translated: something other than
// this run enabled it (an operator, or the reconciler enabling a mapping
// it had paused itself to seed a partition added on the source). Its
// commits would move on after the translation, so the run rolls back.
type MappingResumedError struct {
	Mappings []string // one line per mapping: UUID, topic and state
}

func (e *MappingResumedError) Error() string {
	return "replication resumed during the cutover: " + listed(e.Mappings, "; ")
}

// HookFailedError says a lambda hook returned an error or could not be
// invoked, or an approval could not be requested. The message quotes at
// most 4 KiB of the hook's own error message.
type HookFailedError struct {
	Hook      string // StopProducers, StopConsumers, StartConsumers, StartProducers
	Function  string
	ErrorType string
	Message   string
}

func (e *HookFailedError) Error() string {
	msg := clip(e.Message, maxMessageBytes)
	if e.ErrorType != "" {
		return fmt.Sprintf("%s hook %s failed: %s: %s", e.Hook, e.Function, clip(e.ErrorType, 256), msg)
	}
	return fmt.Sprintf("%s hook %s failed: %s", e.Hook, e.Function, msg)
}

// ConsumersActiveError says listed groups still had members on the source
// at the deadline after the StopConsumers hook.
type ConsumersActiveError struct {
	Groups []string // group (state, n members)
}

func (e *ConsumersActiveError) Error() string {
	return "consumer groups still active on the source: " + listed(e.Groups, ", ")
}

// LaggingGroupError says a group had not read everything on the source and
// the input did not set allowLaggingGroups. Nothing was committed.
type LaggingGroupError struct {
	Group      string
	Partitions []string // topic/partition committed→end
}

func (e *LaggingGroupError) Error() string {
	return fmt.Sprintf("group %s is behind on the source (%s); set allowLaggingGroups to translate it exactly", e.Group, listed(e.Partitions, ", "))
}

// GroupActiveOnTargetError says a group already has members on the target,
// so its offsets cannot be set. Nothing was committed.
type GroupActiveOnTargetError struct {
	Group   string
	State   string
	Members int
}

func (e *GroupActiveOnTargetError) Error() string {
	return fmt.Sprintf("group %s is active on the target (state %s, %d members); stop it before the cutover", e.Group, e.State, e.Members)
}

// ProvenanceMissingError says target records carry no usable kmig-src
// header, so offsets cannot be translated exactly (provenance was turned
// off in the replicator, or another writer used the target topic).
type ProvenanceMissingError struct {
	Detail string
}

func (e *ProvenanceMissingError) Error() string {
	return "exact offset translation unavailable: " + e.Detail
}

// OffsetCommitError says committing translated offsets on the target failed
// or did not read back as committed.
type OffsetCommitError struct {
	Group string
	Err   error
}

func (e *OffsetCommitError) Error() string {
	return fmt.Sprintf("committing offsets for group %s on the target: %v", e.Group, e.Err)
}
func (e *OffsetCommitError) Unwrap() error { return e.Err }

// TargetNotVerifiedError says target consumers did not show members and
// advancing offsets within verifySeconds.
type TargetNotVerifiedError struct {
	Groups []string // group: what was missing
}

func (e *TargetNotVerifiedError) Error() string {
	return "target consumers not verified: " + listed(e.Groups, "; ")
}

// StateTooLargeError says the run's execution state could grow past Step
// Functions' 256 KiB limit, where the execution would fail with
// States.DataLimitExceeded and no rollback. Validate refuses such a run
// before changing anything; split the topics (or groups) over several
// cutovers.
type StateTooLargeError struct {
	Bound string // the computed size and what it is made of
	Limit int
}

func (e *StateTooLargeError) Error() string {
	return fmt.Sprintf("the execution state could reach %s, over Step Functions' %d KiB limit; cut over fewer topics or groups per run", e.Bound, e.Limit/1024)
}

// RollbackIncompleteError says the rollback could not undo everything;
// Remaining lists what is still in place and must be undone by hand (the
// message lists the first 20; the function's log lists them all).
type RollbackIncompleteError struct {
	Remaining []string
}

func (e *RollbackIncompleteError) Error() string {
	return "rollback incomplete, undo by hand: " + listed(e.Remaining, "; ")
}

// ClusterError says a cluster or the Lambda API could not be reached or
// answered with an error. Steps that may retry it do so a few times; it is
// then caught like any domain error: in Validate or Plan the run ends with
// nothing changed, in a later step it rolls the run back.
type ClusterError struct {
	Op  string
	Err error
}

func (e *ClusterError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *ClusterError) Unwrap() error { return e.Err }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
