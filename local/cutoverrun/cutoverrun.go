// Package cutoverrun runs the real cutover state machine
// (statemachine/cutover.asl.json), or the preflight
// (statemachine/preflight.asl.json), locally: it starts the emulated Lambda
// endpoint with the cutover function and the hook functions in process,
// runs the definition under the aws-local-stepfunctions interpreter (Node
// 22, installed by `npm ci` in statemachine/local) with
// AWS_ENDPOINT_URL_LAMBDA pointing at the endpoint, answers approval hooks,
// and returns the execution's final status, output or error.
//
// The procedure itself is not re-implemented here: every transition,
// retry, catch, wait and Task timeout is the interpreter's. As on AWS, an
// invocation whose Task timed out runs on to its end; Run returns only once
// every invocation has ended. Used by tests and by the
// local demo; never by a Lambda binary.
package cutoverrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamfence"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// Names used by a local run.
const (
	// CutoverFunction is the cutover function's local name.
	CutoverFunction = "kmig-cutover"
	// DefaultReplicatorFunction is the replicator's local name.
	DefaultReplicatorFunction = "kmig-replicator"
	// ApprovalTopicArn is the local approval topic.
	ApprovalTopicArn = "arn:aws:sns:us-east-1:000000000000:kmig-cutover-approvals"
)

// ErrToolsMissing says Node ≥ 22 or the npm packages are not installed;
// run `npm ci` in statemachine/local.
var ErrToolsMissing = errors.New("cutoverrun: local state machine tools missing (run: npm ci --prefix statemachine/local)")

// Options configure one local execution.
type Options struct {
	Source, Target *kafkalocal.Cluster
	// Mappings holds the replicator's event source mappings.
	Mappings *esm.Registry
	// ReplicatorFunction is the function name the mappings invoke; empty
	// means DefaultReplicatorFunction.
	ReplicatorFunction string
	// Replicator, when set, is registered at the endpoint under
	// ReplicatorFunction (the mappings invoke their own handler).
	Replicator lambda.Handler
	// Functions are invocable at the endpoint by name or local ARN, for
	// lambda hooks (see lambdaendpoint.FunctionArn).
	Functions map[string]lambda.Handler
	// Approve answers approval hooks: nil approves at once; an error
	// fails the hook (SendTaskFailure with error name ApprovalRejected).
	Approve func(ctx context.Context, m cutover.ApprovalMessage) error
	// Fault, when set, is asked before every invocation of the cutover
	// function with the step it is for; true answers that invocation
	// with *InjectedFaultError instead of running the step, as a
	// failing function would (X-Amz-Function-Error, errorType
	// InjectedFaultError), so the definition's States.ALL catches route
	// it to Rollback. The step changes nothing: Rollback undoes what the
	// steps before it recorded in the state.
	Fault func(step string) bool
	// Input is the execution input.
	Input json.RawMessage
	// Endpoint, when set, is called with the local Lambda endpoint before
	// the run, to set its answers (SetInTransitionError, SetUpdateFault)
	// or keep it to read them afterwards (Errors).
	Endpoint func(*lambdaendpoint.Server)
	// Root is the module root (with statemachine/); empty finds it from
	// the working directory upwards.
	Root string
	// Log receives the cutover function's logs; nil discards them.
	Log *slog.Logger
	// Timeout bounds the whole execution; 0 means 10 minutes.
	Timeout time.Duration
	// SourceAuth is what the cutover function is told of the source's
	// authentication (SOURCE_AUTH); empty means the source's own.
	SourceAuth kafkaconn.Auth
	// IAM, SourceClusterArn and ProducerRoleArns configure the iam
	// fence (cutover.Deps), for example against local/iamlocal.
	IAM              iamfence.API
	SourceClusterArn string
	ProducerRoleArns []string
	// Renames are the replicator's renames, as the cutover function reads
	// them from TRANSFORMS (cutover.Deps.Renames).
	Renames transform.TopicMap
	// TaskTimeouts, for tests only, shortens the TimeoutSeconds of the
	// named Task states (whole seconds, at least one) in the definition
	// this run executes, and gives the cutover function the same Task
	// timeouts, from which it derives its steps' budgets. The definition
	// in statemachine/ is not changed.
	TaskTimeouts map[string]time.Duration
	// DeadlineMargin replaces cutover.DeadlineMargin in the function (see
	// cutover.Deps); tests with short TaskTimeouts need a short one.
	DeadlineMargin time.Duration
	// StartupDelay, for tests only, delays the start of the named steps'
	// invocations, as a cold start or a queued request does on AWS: the
	// function's handler starts that long after the request arrives.
	StartupDelay map[string]time.Duration
	// Definition is the state machine definition in statemachine/ to run:
	// empty means CutoverDefinition; PreflightDefinition runs the
	// preflight.
	Definition string
	// Preflight configures the Preflight step (cutover.Deps.Preflight).
	// Its SourceBootstrap and TargetBootstrap default to the clusters'.
	Preflight cutover.PreflightDeps
	// SourceAs, when set, is who the cutover function's source client
	// authenticates as instead of the superuser: the application user
	// (subject to its ACLs) or a wrong password make a deployment whose
	// cutover principal lacks rights or credentials.
	SourceAs *kafkalocal.Credentials
	// ApprovalTopicArn is the cutover function's APPROVAL_TOPIC_ARN; empty
	// means the local ApprovalTopicArn.
	ApprovalTopicArn string
	// TargetSeeds, when set, replaces the brokers the cutover function's
	// target client is given: a deployment with a wrong or unreachable
	// target address.
	TargetSeeds []string
	// ConsumerGroupIDPrefix sets cutover.Deps.ConsumerGroupIDPrefix;
	// empty lets Validate infer it from the mappings.
	ConsumerGroupIDPrefix string
}

// The definitions in statemachine/ that Run can execute.
const (
	CutoverDefinition   = "cutover.asl.json"
	PreflightDefinition = "preflight.asl.json"
)

// Event is one entry of the interpreter's execution log.
type Event struct {
	Type      string `json:"type"`
	Timestamp int64  `json:"timestamp"` // Unix milliseconds
	State     string `json:"state,omitempty"`
	StateType string `json:"stateType,omitempty"`
	Error     string `json:"error,omitempty"`
	Cause     string `json:"cause,omitempty"`
}

// Time is the event's time.
func (e Event) Time() time.Time { return time.UnixMilli(e.Timestamp) }

// Result is an execution's outcome.
type Result struct {
	// Status is SUCCEEDED or FAILED.
	Status string
	// Output is the execution output (the report) when it succeeded.
	Output json.RawMessage
	// Error and Cause come from the Fail state when it failed.
	Error, Cause string
	// Report is Output decoded, when a cutover succeeded.
	Report *cutover.Report
	// Preflight is Output decoded, when a preflight succeeded.
	Preflight *cutover.PreflightReport
	// Events is the execution's event log, in order.
	Events []Event
	// Duration is the wall time of the interpreter run.
	Duration time.Duration
	// Approvals lists the approval requests answered, in order.
	Approvals []cutover.ApprovalMessage
	// LargestState is the largest task input, task result or state
	// output of the run, in bytes of JSON. The interpreter fails the run
	// with States.DataLimitExceeded past cutover.StateLimitBytes, as Step
	// Functions does.
	LargestState StateSize
	// Steps lists every invocation of the cutover function, in the order
	// they started. Run returns only once each has ended, also those that
	// went on after Step Functions gave up on their Task.
	Steps []StepCall

	mu    sync.Mutex
	steps []StepCall // Steps while the run goes on
}

// StateSize names a state and the size of its largest input or output.
type StateSize struct {
	State string `json:"state"`
	Bytes int    `json:"bytes"`
}

// StepCall is one invocation of the cutover function.
type StepCall struct {
	Step           string
	Started, Ended time.Time
	// ErrorType is the error the invocation returned, empty on success.
	ErrorType string
}

// Ended returns the time of the execution's last event.
func (r *Result) Ended() time.Time {
	if len(r.Events) == 0 {
		return time.Time{}
	}
	return r.Events[len(r.Events)-1].Time()
}

// Entered returns the names of states entered, in order.
func (r *Result) Entered() []string {
	var out []string
	for _, e := range r.Events {
		if e.Type == "StateEntered" {
			out = append(out, e.State)
		}
	}
	return out
}

// Tools returns the Node ≥ 22 binary and the tools directory, or
// ErrToolsMissing.
func Tools(root string) (node, dir string, err error) {
	dir = filepath.Join(root, "statemachine", "local")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "aws-local-stepfunctions", "package.json")); err != nil {
		return "", dir, ErrToolsMissing
	}
	for _, cand := range []string{filepath.Join(dir, "node_modules", "node", "bin", "node"), "node"} {
		out, err := exec.Command(cand, "--version").Output()
		if err != nil {
			continue
		}
		var major int
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "v%d", &major); err == nil && major >= 22 {
			return cand, dir, nil
		}
	}
	return "", dir, ErrToolsMissing
}

// Root finds the module root (the directory holding go.mod and
// statemachine/) from the working directory upwards.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "statemachine", "cutover.asl.json")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cutoverrun: statemachine/cutover.asl.json not found above the working directory")
		}
		dir = parent
	}
}

// function is the cutover function as a local run deploys it: the local
// Lambda endpoint (which also serves the mappings' API), the function's
// clients and its handler, built from o as Run builds them.
type function struct {
	ep      *lambdaendpoint.Server
	url     string
	h       *cutover.Handler
	closers []func()
}

// startFunction starts the endpoint and builds the handler. sns, when not
// nil, makes the approval publisher from the endpoint. close undoes it all.
func startFunction(o Options, log *slog.Logger, sns func(*lambdaendpoint.Server) cutover.Publisher) (*function, error) {
	if o.ReplicatorFunction == "" {
		o.ReplicatorFunction = DefaultReplicatorFunction
	}
	if o.ApprovalTopicArn == "" {
		o.ApprovalTopicArn = ApprovalTopicArn
	}
	if o.SourceAuth == "" {
		o.SourceAuth = kafkaconn.AuthSCRAM512
		if o.Source.Security() == kafkalocal.SecurityPlaintext {
			o.SourceAuth = kafkaconn.AuthPlaintext
		}
	}
	f := &function{ep: lambdaendpoint.New(o.Mappings)}
	url, err := f.ep.Start("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.url = url
	f.closers = append(f.closers, func() { _ = f.ep.Close() })
	if o.Endpoint != nil {
		o.Endpoint(f.ep)
	}
	var cls []*kgo.Client
	for i, c := range []*kafkalocal.Cluster{o.Source, o.Target} {
		opts := []kgo.Opt{kgo.RetryTimeout(10 * time.Second)}
		as := c.AdminCredentials()
		if i == 0 && o.SourceAs != nil {
			as = *o.SourceAs
		}
		if i == 1 && len(o.TargetSeeds) > 0 {
			opts = append(opts, kgo.SeedBrokers(o.TargetSeeds...))
		}
		cl, err := c.NewClientAs(as, opts...)
		if err != nil {
			f.close()
			return nil, err
		}
		f.closers = append(f.closers, cl.Close)
		cls = append(cls, cl)
	}
	lc := awslambda.New(awslambda.Options{
		Region:       lambdaendpoint.Region,
		BaseEndpoint: aws.String(url),
		Credentials:  aws.AnonymousCredentials{},
	})
	d := cutover.Deps{
		Source: cls[0], Target: cls[1], Lambda: lc,
		ReplicatorFunction: o.ReplicatorFunction, ApprovalTopicArn: o.ApprovalTopicArn,
		Log:        log,
		SourceAuth: o.SourceAuth, IAM: o.IAM, SourceClusterArn: o.SourceClusterArn, ProducerRoleArns: o.ProducerRoleArns,
		Renames:               o.Renames,
		DeadlineMargin:        o.DeadlineMargin,
		ConsumerGroupIDPrefix: o.ConsumerGroupIDPrefix,
	}
	if len(o.TaskTimeouts) > 0 {
		def, err := readDefinition(o.Root)
		if err != nil {
			f.close()
			return nil, err
		}
		if d.TaskTimeouts, err = shortenTimeouts(def, o.TaskTimeouts); err != nil {
			f.close()
			return nil, err
		}
	}
	if sns != nil {
		d.SNS = sns(f.ep)
	}
	d.Preflight = o.Preflight
	if d.Preflight.SourceBootstrap == nil {
		d.Preflight.SourceBootstrap = o.Source.Bootstrap()
	}
	if d.Preflight.TargetBootstrap == nil {
		d.Preflight.TargetBootstrap = o.Target.Bootstrap()
		if len(o.TargetSeeds) > 0 {
			d.Preflight.TargetBootstrap = o.TargetSeeds
		}
	}
	f.h = cutover.New(d)
	return f, nil
}

func (f *function) close() {
	for i := len(f.closers) - 1; i >= 0; i-- {
		f.closers[i]()
	}
}

// Run executes the state machine once and returns its outcome. An error
// means the run could not be carried out (tools missing, endpoint or
// interpreter failure); a failed execution is a Result with Status FAILED.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Source == nil || o.Target == nil {
		return nil, errors.New("cutoverrun: Source and Target are required")
	}
	root := o.Root
	if root == "" {
		var err error
		if root, err = Root(); err != nil {
			return nil, err
		}
	}
	node, dir, err := Tools(root)
	if err != nil {
		return nil, err
	}
	if o.ReplicatorFunction == "" {
		o.ReplicatorFunction = DefaultReplicatorFunction
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	res := &Result{}
	var appr *approver
	o.Root = root
	fn, err := startFunction(o, log, func(ep *lambdaendpoint.Server) cutover.Publisher {
		appr = &approver{ep: ep, approve: o.Approve, res: res, ctx: ctx}
		return appr
	})
	if err != nil {
		return nil, err
	}
	defer fn.close()
	ep, url, h := fn.ep, fn.url, fn.h
	// Invocations outlive the interpreter when Step Functions gave up on
	// their Task; the clients they use stay open until they end.
	defer func() { _ = ep.WaitIdle(ctx) }()
	ep.Register(CutoverFunction, lambda.NewHandler(func(ctx context.Context, req cutover.Request) (any, error) {
		if d := o.StartupDelay[req.Step]; d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		c := res.startStep(req.Step)
		var (
			out any
			err error
		)
		if o.Fault != nil && o.Fault(req.Step) {
			err = &InjectedFaultError{Step: req.Step}
		} else {
			out, err = h.Handle(ctx, req)
		}
		res.endStep(c, err)
		return out, err
	}))
	if o.Replicator != nil {
		ep.Register(o.ReplicatorFunction, o.Replicator)
	}
	for name, fn := range o.Functions {
		ep.Register(name, fn)
	}

	defName := o.Definition
	if defName == "" {
		defName = CutoverDefinition
	}
	input := o.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	if !json.Valid(input) {
		return nil, errors.New("cutoverrun: Input is not valid JSON")
	}
	definition := filepath.Join(root, "statemachine", defName)
	if len(o.TaskTimeouts) > 0 && defName != CutoverDefinition {
		return nil, errors.New("cutoverrun: TaskTimeouts apply to the cutover definition only")
	}
	if len(o.TaskTimeouts) > 0 {
		def, err := readDefinition(root)
		if err != nil {
			return nil, err
		}
		if _, err := shortenTimeouts(def, o.TaskTimeouts); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(def)
		df, err := os.CreateTemp("", "kmig-cutover-asl-*.json")
		if err != nil {
			return nil, err
		}
		defer os.Remove(df.Name())
		_, err = df.Write(b)
		if cerr := df.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		definition = df.Name()
	}
	subs := map[string]string{"CutoverFunctionArn": lambdaendpoint.FunctionArn(CutoverFunction)}
	if err := interpret(ctx, node, dir, definition, subs, input, url, res); err != nil {
		return nil, err
	}
	if res.Status == "SUCCEEDED" && defName == PreflightDefinition {
		var rep cutover.PreflightReport
		if err := json.Unmarshal(res.Output, &rep); err == nil {
			res.Preflight = &rep
		}
	} else if res.Status == "SUCCEEDED" {
		var rep cutover.Report
		if err := json.Unmarshal(res.Output, &rep); err == nil {
			res.Report = &rep
		}
	}
	appr.wait()
	if err := ep.WaitIdle(ctx); err != nil {
		return nil, fmt.Errorf("cutoverrun: waiting for invocations that outlived their Task: %w", err)
	}
	res.mu.Lock()
	res.Steps = append([]StepCall(nil), res.steps...)
	res.mu.Unlock()
	return res, nil
}

// interpret runs the definition at path (with substitutions applied) on
// input under aws-local-stepfunctions (statemachine/local/run.mjs), its
// Lambda tasks invoking the endpoint at url, and fills res's Status,
// Output, Error, Cause, Events, LargestState and Duration.
func interpret(ctx context.Context, node, dir, path string, subs map[string]string, input json.RawMessage, url string, res *Result) error {
	cfg, _ := json.Marshal(map[string]any{
		"definition":    path,
		"substitutions": subs,
		"input":         input,
		"endpoint":      url,
		"executionName": fmt.Sprintf("local-%d", time.Now().UnixNano()),
	})
	f, err := os.CreateTemp("", "kmig-cutover-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(cfg); err != nil {
		f.Close()
		return err
	}
	f.Close()

	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "run.mjs"), f.Name())
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(),
		"AWS_ENDPOINT_URL_LAMBDA="+url,
		"AWS_REGION="+lambdaendpoint.Region,
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_EC2_METADATA_DISABLED=true",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	res.Duration = time.Since(start)
	if err != nil {
		return fmt.Errorf("cutoverrun: interpreter failed: %w: %s", err, tail(stderr.String()))
	}
	var out struct {
		Status       string          `json:"status"`
		Output       json.RawMessage `json:"output"`
		Error        string          `json:"error"`
		Cause        string          `json:"cause"`
		Events       []Event         `json:"events"`
		LargestState StateSize       `json:"largestState"`
	}
	if err := json.Unmarshal(lastLine(stdout.Bytes()), &out); err != nil {
		return fmt.Errorf("cutoverrun: reading interpreter output: %w: %s %s", err, tail(stdout.String()), tail(stderr.String()))
	}
	res.Status, res.Output, res.Error, res.Cause, res.Events, res.LargestState = out.Status, out.Output, out.Error, out.Cause, out.Events, out.LargestState
	return nil
}

func (r *Result) startStep(step string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, StepCall{Step: step, Started: time.Now()})
	return len(r.steps) - 1
}

func (r *Result) endStep(i int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps[i].Ended = time.Now()
	if err != nil {
		r.steps[i].ErrorType = lambdaendpoint.ErrorType(err)
	}
}

// readDefinition reads statemachine/cutover.asl.json under root (the
// module root; empty finds it).
func readDefinition(root string) (map[string]any, error) {
	if root == "" {
		var err error
		if root, err = Root(); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "statemachine", "cutover.asl.json"))
	if err != nil {
		return nil, fmt.Errorf("cutoverrun: %w", err)
	}
	var def map[string]any
	if err := json.Unmarshal(b, &def); err != nil {
		return nil, fmt.Errorf("cutoverrun: cutover.asl.json: %w", err)
	}
	return def, nil
}

// shortenTimeouts sets the TimeoutSeconds of the Task states named in
// byState in def, and returns cutover.TaskTimeouts with the steps those
// states run set to the same timeouts.
func shortenTimeouts(def map[string]any, byState map[string]time.Duration) (map[string]time.Duration, error) {
	states, _ := def["States"].(map[string]any)
	steps := make(map[string]time.Duration, len(cutover.TaskTimeouts))
	for k, v := range cutover.TaskTimeouts {
		steps[k] = v
	}
	for name, d := range byState {
		st, _ := states[name].(map[string]any)
		if st == nil || st["Type"] != "Task" {
			return nil, fmt.Errorf("cutoverrun: TaskTimeouts: %s is no Task state of the definition", name)
		}
		if d < time.Second || d%time.Second != 0 {
			return nil, fmt.Errorf("cutoverrun: TaskTimeouts: %s: %v is not a whole number of seconds ≥ 1", name, d)
		}
		params, _ := st["Parameters"].(map[string]any)
		step, _ := params["step"].(string)
		if payload, ok := params["Payload"].(map[string]any); ok && step == "" {
			step, _ = payload["step"].(string)
		}
		if step == "" {
			return nil, fmt.Errorf("cutoverrun: TaskTimeouts: %s names no step", name)
		}
		st["TimeoutSeconds"] = int(d / time.Second)
		steps[step] = d
	}
	return steps, nil
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// approver is the local SNS topic for approval requests: each published
// request is answered by Options.Approve and the task token resolved at
// the endpoint, as an operator calling SendTaskSuccess would.
type approver struct {
	ep      *lambdaendpoint.Server
	approve func(context.Context, cutover.ApprovalMessage) error
	ctx     context.Context
	res     *Result
	mu      sync.Mutex
	wg      sync.WaitGroup
}

func (a *approver) Publish(ctx context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	var m cutover.ApprovalMessage
	if err := json.Unmarshal([]byte(aws.ToString(in.Message)), &m); err != nil {
		return nil, fmt.Errorf("local approval topic: %w", err)
	}
	a.mu.Lock()
	a.res.Approvals = append(a.res.Approvals, m)
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		var err error
		if a.approve != nil {
			err = a.approve(a.ctx, m)
		}
		if err != nil {
			_ = a.ep.SendTaskFailure(m.TaskToken, "ApprovalRejected", err.Error())
			return
		}
		_ = a.ep.SendTaskSuccess(m.TaskToken, json.RawMessage(`{"approved":true}`))
	}()
	return &sns.PublishOutput{MessageId: aws.String(m.TaskToken)}, nil
}

func (a *approver) wait() { a.wg.Wait() }

// InjectedFaultError answers an invocation of the cutover function that
// Options.Fault chose to fail. The deployed definition does not name it:
// its States.ALL catches handle it like any unexpected error.
type InjectedFaultError struct {
	Step string
}

func (e *InjectedFaultError) Error() string { return "fault injected in step " + e.Step }
