// Package cutover holds the logic of every step of the cutover state
// machine (statemachine/cutover.asl.json): validation, the source quiet
// check, the fence (Kafka ACLs, or IAM deny policies for IAM-authenticated
// MSK sources), the drain wait, pausing replication, waiting for
// source consumers to leave, exact offset translation, hooks, target
// verification, the report, and rollback; and the read-only preflight
// (statemachine/preflight.asl.json, preflight.go).
//
// The state machine calls one Lambda function for every step; Handler.Handle
// dispatches on Request.Step. Each step receives the whole execution state
// and returns it updated, so every decision the procedure made (which ACLs
// it created, which mappings it disabled, deadlines) travels in the state
// and Rollback can undo exactly those things, without reading anything but
// the state. Details whose size grows with partitions times groups (each
// partition's drain report, each group's translated offsets, the quiet
// window's end offsets) go to the details topic on the target
// (shared/rundetails); the state carries references to them. Validate
// refuses a run whose state could exceed Step Functions' 256 KiB limit
// (StateLimitBytes), which no Catch can handle. The drain and offset
// translation treat transaction markers and aborted records as nothing to
// read (offsets.Consumed).
//
// Validate resolves the input's topics, names or patterns (package
// selection), among the topics the replicator's event source mappings read
// (every one when the input names none), and, when the input names no
// groups, finds the application groups on the source; every later step
// works on those lists. Steps that touch many mappings, partitions or
// groups do so concurrently within fixed bounds (mappingParallelism,
// partitionParallelism, commitParallelism).
//
// Guarantees: Preflight changes nothing on either cluster or on any event
// source mapping; Validate and Plan (dry run) change nothing either, but for
// writing the run's details to the details topic (created on first use);
// FenceSource, failing after a partial change, undoes its own change before
// returning, and says what it could not undo (RollbackIncompleteError);
// PauseReplication records every mapping it will disable in the state
// before it disables any, so Rollback re-enables exactly those; errors
// returned at the boundary are the typed errors in errors.go, whose type
// names are the names the state machine catches. It never deletes an ACL or IAM policy it did not
// create and never enables a mapping it did not disable.
package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/clock"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamfence"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/peek"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/rundetails"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// Step names, as sent by the state machine in Request.Step. Hook steps use
// the hook's name.
const (
	StepValidate             = "Validate"
	StepPlan                 = "Plan"
	StepStopProducers        = "StopProducers"
	StepVerifySourceQuiet    = "VerifySourceQuiet"
	StepFenceSource          = "FenceSource"
	StepWaitForDrain         = "WaitForDrain"
	StepPauseReplication     = "PauseReplication"
	StepStopConsumers        = "StopConsumers"
	StepWaitForConsumersGone = "WaitForConsumersGone"
	StepTranslateOffsets     = "TranslateOffsets"
	StepStartConsumers       = "StartConsumers"
	StepStartProducers       = "StartProducers"
	StepVerifyTarget         = "VerifyTarget"
	StepReport               = "Report"
	StepRollback             = "Rollback"
	StepRequestApproval      = "RequestApproval"
)

// StepOrder is the procedure's order; the report lists steps in it.
var StepOrder = []string{
	StepValidate, StepStopProducers, StepVerifySourceQuiet, StepFenceSource, StepWaitForDrain,
	StepPauseReplication, StepStopConsumers, StepWaitForConsumersGone, StepTranslateOffsets,
	StepStartConsumers, StepStartProducers, StepVerifyTarget, StepReport,
}

// LambdaAPI is the part of the Lambda API the cutover uses;
// *lambda.Client implements it.
type LambdaAPI interface {
	ListEventSourceMappings(ctx context.Context, in *lambda.ListEventSourceMappingsInput, opts ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error)
	GetEventSourceMapping(ctx context.Context, in *lambda.GetEventSourceMappingInput, opts ...func(*lambda.Options)) (*lambda.GetEventSourceMappingOutput, error)
	UpdateEventSourceMapping(ctx context.Context, in *lambda.UpdateEventSourceMappingInput, opts ...func(*lambda.Options)) (*lambda.UpdateEventSourceMappingOutput, error)
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Publisher publishes approval requests; *sns.Client implements it.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Deps are the long-lived things the steps use. Source and Target are
// clients authorized to administer their clusters (describe and commit
// groups; on the source also create and delete ACLs).
type Deps struct {
	Source, Target *kgo.Client
	Lambda         LambdaAPI
	// SNS is needed only for approval hooks.
	SNS Publisher
	// ReplicatorFunction names the replicator (name or ARN) whose event
	// source mappings are drained, paused and re-enabled.
	ReplicatorFunction string
	// ApprovalTopicArn receives approval requests.
	ApprovalTopicArn string
	// SourceAuth is how the source authenticates clients (SOURCE_AUTH);
	// Validate refuses fence kinds that cannot work with it.
	SourceAuth kafkaconn.Auth
	// IAM, SourceClusterArn and ProducerRoleArns serve the iam fence: the
	// IAM API, the source MSK cluster whose topic ARNs the deny names,
	// and the roles the stack lets the cutover fence.
	IAM              iamfence.API
	SourceClusterArn string
	ProducerRoleArns []string
	// Renames are the replicator's renames (TRANSFORMS): a renamed topic
	// is read, committed and reported on the target under its target
	// name. Validate records the ones of the run's topics in
	// Config.Renames, which every later step uses.
	Renames transform.TopicMap
	// ConsumerGroupIDPrefix is the prefix of the mappings' consumer
	// groups (the reconciler's CONSUMER_GROUP_ID_PREFIX); when Validate
	// finds the groups itself it never takes one with this prefix. Empty:
	// Validate infers it from the mappings (mappingGroupPrefix).
	ConsumerGroupIDPrefix string
	// Clock is where every step reads the time and waits: step
	// deadlines, mapping polls, read-back pauses, preflight budgets.
	// Nil means clock.System.
	Clock clock.Clock
	// Log defaults to slog.Default().
	Log *slog.Logger
	// DetailsTopic is the topic on the target that keeps the run's
	// details (rundetails.DefaultTopic if empty).
	DetailsTopic string
	// TaskTimeouts and DeadlineMargin replace the package's TaskTimeouts
	// and DeadlineMargin, from which each step's time budget is derived.
	// Local runs that shorten Task timeouts in the definition set both;
	// deployed functions leave them empty.
	TaskTimeouts   map[string]time.Duration
	DeadlineMargin time.Duration
	// Preflight holds what only the Preflight step uses.
	Preflight PreflightDeps
}

// Handler runs steps. It is safe for concurrent use.
type Handler struct {
	d     Deps
	src   *kadm.Client
	tgt   *kadm.Client
	srcPk *peek.Reader
	tgtPk *peek.Reader
	// details keeps what the state only references (nil without Target).
	details *rundetails.Store
	// timeouts and margin give each step's budget (Budget).
	timeouts map[string]time.Duration
	margin   time.Duration
}

// New returns a Handler. It does not contact anything.
func New(d Deps) *Handler {
	d.Clock = clock.Or(d.Clock)
	if d.Log == nil {
		d.Log = slog.Default()
	}
	h := &Handler{d: d}
	h.timeouts, h.margin = TaskTimeouts, DeadlineMargin
	if d.TaskTimeouts != nil {
		h.timeouts = d.TaskTimeouts
	}
	if d.DeadlineMargin > 0 {
		h.margin = d.DeadlineMargin
	}
	if d.Source != nil {
		h.src = kadm.NewClient(d.Source)
		h.srcPk = peek.New(d.Source)
	}
	if d.Target != nil {
		h.tgt = kadm.NewClient(d.Target)
		h.tgtPk = peek.New(d.Target)
		h.details = rundetails.New(d.Target, d.DetailsTopic)
	}
	return h
}

// Request is what the state machine sends for every step.
type Request struct {
	Step string `json:"step"`
	// Input is the raw execution input (Validate and Preflight only).
	Input json.RawMessage `json:"input,omitempty"`
	// State is the execution state (every other step).
	State *State `json:"state,omitempty"`
	// Hook and TaskToken are set for RequestApproval.
	Hook      string `json:"hook,omitempty"`
	TaskToken string `json:"taskToken,omitempty"`
	// Execution names the execution ($$.Execution.Name for Validate, which
	// makes it the run's ID; $$.Execution.Id for RequestApproval).
	Execution string `json:"execution,omitempty"`
	// EnteredTime is when Step Functions entered the step's Task state
	// ($$.State.EnteredTime), by Step Functions' clock. The step's
	// deadline is never later than EnteredTime plus its Task's timeout
	// less DeadlineMargin, however late the invocation started.
	EnteredTime time.Time `json:"enteredTime,omitzero"`
}

// State is the execution state carried between steps ($ in the state
// machine).
type State struct {
	Config Config               `json:"config"`
	Run    Run                  `json:"run"`
	Loop   *Loop                `json:"loop,omitempty"`
	Steps  map[string]*StepTime `json:"steps"`
	// Failures is written by the state machine's Catch (ResultPath
	// $.failures.<Step>): the failed step's error name and cause.
	Failures map[string]Failure `json:"failures,omitempty"`
	Rollback *RollbackResult    `json:"rollback,omitempty"`
}

// Failure is what a Catch records.
type Failure struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// Loop is the state of the current polling step. The state machine's
// Choice reads Done and its Wait reads Next (RFC 3339).
type Loop struct {
	Step     string    `json:"step"`
	Done     bool      `json:"done"`
	Next     time.Time `json:"next"`
	Deadline time.Time `json:"deadline"`
	Polls    int       `json:"polls"`
}

// StepTime records when a step ran.
type StepTime struct {
	StartedAt time.Time `json:"startedAt"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	Polls     int       `json:"polls,omitempty"`
	// Derived is true for hooks of type none or lambda, whose times are
	// the end of the previous step and the start of the next.
	Derived bool   `json:"derived,omitempty"`
	Note    string `json:"note,omitempty"`
}

// Run is everything the run decided and changed. Its size grows with the
// topics, groups and mappings of the input, never with partitions times
// groups: those details are in the details topic, referenced here.
type Run struct {
	// ID names the run in the details topic: the execution's name, or a
	// generated one when the caller gave none.
	ID        string    `json:"id"`
	StartedAt time.Time `json:"startedAt"`
	// Mappings are the replicator's event source mappings reading the
	// migrated topics, as found by Validate, when they take at most
	// mappingsInlineBytes; more are kept in the details topic, referenced
	// by MappingDetails (a []Mapping), and Mappings is empty.
	// MappingCount counts them either way.
	Mappings       []Mapping       `json:"mappings"`
	MappingDetails *rundetails.Ref `json:"mappingDetails,omitempty"`
	MappingCount   int             `json:"mappingCount"`
	// Disabled lists the UUIDs of the mappings this run disabled (they
	// polled before: Enabled, or Creating, Enabling or Updating);
	// Rollback re-enables exactly these. PauseReplication adds a mapping
	// here in the poll before the one that updates it, so the list also
	// holds mappings whose update failed, was lost or is in transition.
	Disabled []string    `json:"disabled,omitempty"`
	Fence    FenceRecord `json:"fence"`
	// Quiet references the end offsets at the start of the current quiet
	// window (map topic/partition → offset) in the details topic.
	Quiet *rundetails.Ref `json:"quiet,omitempty"`
	// Drain summarises the last drain status; its partitions are in the
	// details topic.
	Drain *DrainSummary `json:"drain,omitempty"`
	// Groups are the groups' translations without their partitions;
	// GroupDetails references the complete []GroupReport.
	Groups       []GroupReport   `json:"groups,omitempty"`
	GroupDetails *rundetails.Ref `json:"groupDetails,omitempty"`
	Warnings     []string        `json:"warnings,omitempty"`
}

// DrainSummary is the drain status carried in the state.
type DrainSummary struct {
	Partitions        int   `json:"partitions"`
	Lagging           int   `json:"lagging"`
	RecordsReplicated int64 `json:"recordsReplicated"`
	// Details references the []PartitionReport.
	Details rundetails.Ref `json:"details"`
}

// Mapping is a replicator event source mapping.
type Mapping struct {
	UUID          string   `json:"uuid"`
	State         string   `json:"state"`
	ConsumerGroup string   `json:"consumerGroup"`
	Topics        []string `json:"topics"`
}

// FenceRecord says how the source was fenced.
type FenceRecord struct {
	Kind    string `json:"kind"`
	Applied bool   `json:"applied"`
	// Created lists exactly the ACLs this run created (not identical
	// ones that existed before); Rollback deletes exactly these.
	Created []FenceACL `json:"created,omitempty"`
	// Planned lists the ACLs Validate found missing, which FenceSource
	// adds; it is cleared once they are Created. Existing lists fence ACLs
	// that were already present at Validate and are left alone.
	Planned  []FenceACL `json:"planned,omitempty"`
	Existing []FenceACL `json:"existing,omitempty"`
	// Policies lists exactly the iam fence's inline policies this run
	// put; Rollback deletes exactly these. ExistingPolicies were there
	// already at Validate (identical) and are left alone.
	Policies         []FencePolicy `json:"policies,omitempty"`
	ExistingPolicies []FencePolicy `json:"existingPolicies,omitempty"`
	// PolicyDocument is the iam fence's policy, the same on every role.
	// Rollback deletes a policy only while it still reads this document.
	PolicyDocument string `json:"policyDocument,omitempty"`
	// Remains, set in the final report only, says what a successful run
	// leaves on the source: the fence stays, so nothing writes to the old
	// cluster by mistake.
	Remains []string `json:"remains,omitempty"`
	Note    string   `json:"note,omitempty"`
}

func (h *Handler) now() time.Time { return h.d.Clock.Now().UTC().Truncate(time.Millisecond) }

// Handle runs one step. It returns the updated *State for every step but
// Report and Plan (which return the report), Preflight (which returns a
// *PreflightReport) and the hook steps (which return a small
// acknowledgement the state machine discards).
//
// Each step runs under a deadline of its own, so that it ends before its
// Task's TimeoutSeconds: Step Functions does not stop an invocation it has
// given up on. The deadline is Budget from when Handle starts, and no later
// than req.EnteredTime plus the Task's timeout less DeadlineMargin, so an
// invocation that started late (a cold start, a queued request) has only
// what is left of its Task's time. A step that reaches its deadline fails
// with *StepDeadlineError (Rollback keeps its own error, so that the state
// machine retries it). Preflight keeps its own budget (preflightBudget).
func (h *Handler) Handle(ctx context.Context, req Request) (any, error) {
	log := h.d.Log.With("step", req.Step)
	if req.Step == StepPreflight {
		out, err := h.preflight(ctx, req.Input)
		return ret(log, out, err)
	}
	if err := h.d.Preflight.ClientsErr; err != nil {
		return ret(log, nil, &ClusterError{Op: "building the Kafka clients at start-up", Err: err})
	}
	budget, ok := h.budget(req.Step)
	if !ok {
		out, err := h.step(ctx, req)
		return ret(log, out, err)
	}
	start := h.d.Clock.Now()
	deadline := start.Add(budget)
	if !req.EnteredTime.IsZero() {
		deadline = minTime(deadline, req.EnteredTime.Add(budget))
	}
	// The context's timer runs for what is left on the Clock, so that
	// requests to the clusters end with it; steps that must not start
	// something late read the deadline on the Clock (stepDeadline.at).
	sd := stepDeadline{step: req.Step, budget: budget, at: deadline}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, stepDeadlineKey{}, sd), deadline.Sub(start))
	defer cancel()
	out, err := h.step(ctx, req)
	var de *StepDeadlineError
	if err != nil && req.Step != StepRollback && !errors.As(err, &de) {
		if de := deadlineErr(ctx, err); de != nil {
			out, err = nil, de
		}
	}
	return ret(log, out, err)
}

// step dispatches req to its step.
func (h *Handler) step(ctx context.Context, req Request) (any, error) {
	if req.Step == StepValidate {
		return h.validate(ctx, req.Input, req.Execution)
	}
	if req.Step == StepRequestApproval {
		if req.State == nil {
			return nil, &InvalidInputError{Field: "state", Problem: "missing"}
		}
		return h.requestApproval(ctx, req)
	}
	st := req.State
	if st == nil {
		return nil, &InvalidInputError{Field: "state", Problem: "missing from the step request"}
	}
	if st.Steps == nil {
		st.Steps = map[string]*StepTime{}
	}
	switch req.Step {
	case StepPlan:
		return h.plan(ctx, st)
	case StepStopProducers, StepStopConsumers, StepStartConsumers, StepStartProducers:
		return h.hook(ctx, req.Step, st)
	case StepVerifySourceQuiet:
		return h.loop(ctx, st, StepVerifySourceQuiet, h.verifySourceQuiet)
	case StepFenceSource:
		return h.once(ctx, st, StepFenceSource, h.fenceSource)
	case StepWaitForDrain:
		return h.loop(ctx, st, StepWaitForDrain, h.waitForDrain)
	case StepPauseReplication:
		return h.loop(ctx, st, StepPauseReplication, h.pauseReplication)
	case StepWaitForConsumersGone:
		return h.loop(ctx, st, StepWaitForConsumersGone, h.waitForConsumersGone)
	case StepTranslateOffsets:
		return h.once(ctx, st, StepTranslateOffsets, h.translateOffsets)
	case StepVerifyTarget:
		return h.loop(ctx, st, StepVerifyTarget, h.verifyTarget)
	case StepReport:
		return h.report(ctx, st)
	case StepRollback:
		return h.loop(ctx, st, StepRollback, h.rollback)
	}
	return nil, &InvalidInputError{Field: "step", Problem: fmt.Sprintf("unknown step %q", req.Step)}
}

// budget is step's time budget (see Budget), and false for a step that has
// no Task.
func (h *Handler) budget(step string) (time.Duration, bool) {
	if _, ok := h.timeouts[step]; !ok {
		return 0, false
	}
	return Budget(h.timeouts, h.margin, step), true
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func ret(log *slog.Logger, out any, err error) (any, error) {
	if err != nil {
		log.Error("step failed", "errorType", errorType(err), "error", err.Error())
		return nil, err
	}
	log.Info("step done")
	return out, nil
}

func errorType(err error) string { return fmt.Sprintf("%T", err) }

// once runs a one-shot step and records its times.
func (h *Handler) once(ctx context.Context, st *State, name string, f func(context.Context, *State) error) (*State, error) {
	t := &StepTime{StartedAt: h.now()}
	if err := f(ctx, st); err != nil {
		return nil, err
	}
	t.EndedAt = h.now()
	st.Steps[name] = t
	return st, nil
}

// loop runs one poll of a polling step. f reports whether the condition
// holds; on the first poll it is given a fresh Loop whose Deadline f sets.
// f may set Loop.Next (now polls again at once); by default the next poll
// is one pollSeconds later.
func (h *Handler) loop(ctx context.Context, st *State, name string, f func(ctx context.Context, st *State, first bool) (bool, error)) (*State, error) {
	now := h.now()
	first := st.Loop == nil || st.Loop.Step != name
	if first {
		st.Loop = &Loop{Step: name}
		st.Steps[name] = &StepTime{StartedAt: now}
	}
	st.Loop.Polls++
	t := st.Steps[name]
	if t == nil {
		t = &StepTime{StartedAt: now}
		st.Steps[name] = t
	}
	t.Polls = st.Loop.Polls
	st.Loop.Next = time.Time{} // f may set it; else one pollSeconds on
	done, err := f(ctx, st, first)
	if err != nil {
		return nil, err
	}
	st.Loop.Done = done
	if done {
		t.EndedAt = h.now()
		st.Loop.Next = t.EndedAt
	} else if st.Loop.Next.IsZero() {
		st.Loop.Next = now.Add(time.Duration(max(st.Config.PollSeconds, 1)) * time.Second)
	}
	return st, nil
}

func tp(topic string, p int32) string { return fmt.Sprintf("%s/%d", topic, p) }
