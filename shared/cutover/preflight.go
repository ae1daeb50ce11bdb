package cutover

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamfence"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
)

// The preflight (statemachine/preflight.asl.json) checks, from inside the
// deployed cutover function (same subnets, same role, same clients), what a
// first deployment most often gets wrong: a cluster or an AWS API the
// function cannot reach, a permission a cutover step will need, a mapping
// that is not running, a consumer group that does not exist. Each check
// reports pass, fail or skip, with the concrete fix for a failure.
//
// Guarantees: it changes nothing on either cluster, on any event source
// mapping or in AWS (it only describes, lists and fetches; it reads the
// configured secrets but never logs or returns their contents); every
// check has its own deadline, so an unreachable endpoint is a failed
// check, not a hung step; the input is parsed by ParseInput, so a passing
// preflight also validated the cutover input; the report stays far below
// Step Functions' 256 KiB payload limit (at most maxPreflightChecks checks,
// each text bounded).

// StepPreflight is the preflight state machine's only step.
const StepPreflight = "Preflight"

// Check statuses.
const (
	CheckPass = "pass"
	CheckFail = "fail"
	// CheckSkip is a check that was not run, or cannot be tried without a
	// change; Detail says why. A skip does not fail the preflight.
	CheckSkip = "skip"
)

// Bounds that keep the report small.
const (
	maxPreflightChecks = 100
	maxCheckName       = 160
	maxCheckDetail     = 600
	maxCheckFix        = 400
	maxPreflightCause  = 16000 // bytes; a Fail cause may hold 32,768 characters
	// DefaultCheckTimeout bounds each check that contacts something.
	DefaultCheckTimeout = 10 * time.Second
	// preflightBudget bounds the whole step, well inside the Preflight
	// task's TimeoutSeconds (300) in preflight.asl.json: checks that would
	// start later are skipped and say so.
	preflightBudget = 240 * time.Second
)

// CallerIdentityAPI is STS GetCallerIdentity; *sts.Client implements it.
type CallerIdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// SecretValueAPI is Secrets Manager GetSecretValue; *secretsmanager.Client
// implements it.
type SecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// TopicAttributesAPI is SNS GetTopicAttributes; *sns.Client implements it.
type TopicAttributesAPI interface {
	GetTopicAttributes(ctx context.Context, in *sns.GetTopicAttributesInput, opts ...func(*sns.Options)) (*sns.GetTopicAttributesOutput, error)
}

// PreflightDeps are what only the preflight uses. Every field is optional:
// a check whose client is missing is skipped and says so.
type PreflightDeps struct {
	STS     CallerIdentityAPI
	Secrets SecretValueAPI
	// SecretArns are the configured secrets (SOURCE_SECRET_ARN,
	// TARGET_SECRET_ARN, SOURCE_CA_SECRET_ARN, TARGET_CA_SECRET_ARN),
	// keyed by their variable.
	SecretArns map[string]string
	SNS        TopicAttributesAPI
	// SourceBootstrap and TargetBootstrap are the brokers the clients were
	// given; the report names them.
	SourceBootstrap, TargetBootstrap []string
	// Region names the VPC endpoints a fix asks for.
	Region string
	// CheckTimeout bounds each check; default DefaultCheckTimeout.
	CheckTimeout time.Duration
	// ClientsErr is why the function could not build its Kafka clients at
	// start-up (typically a secret it could not read); the preflight
	// reports it, and every other step fails with it.
	ClientsErr error
}

// Check is one preflight check.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Fix is the concrete action for a failed check.
	Fix string `json:"fix,omitempty"`
}

// PreflightReport is the Preflight step's output.
type PreflightReport struct {
	// Passed is true when every check passed or was skipped.
	Passed bool    `json:"passed"`
	Checks []Check `json:"checks"`
	// Failed names the failed checks.
	Failed []string `json:"failed,omitempty"`
	// Cause lists each failed check with its fix; the state machine's
	// Fail state shows it.
	Cause string `json:"cause,omitempty"`
	// Omitted counts checks left out to bound the report, and
	// OmittedFailed how many of those failed.
	Omitted       int `json:"omitted,omitempty"`
	OmittedFailed int `json:"omittedFailed,omitempty"`
}

type preflight struct {
	h        *Handler
	pd       PreflightDeps
	timeout  time.Duration
	deadline time.Time     // of the whole step
	budget   time.Duration // from the step's start to deadline
	// notRun is set when call refused to start for want of time; the next
	// check added becomes a skip.
	notRun bool
	rep    PreflightReport
}

// errNoTime is what call returns once the step's budget is spent.
var errNoTime = errors.New("the preflight's time budget is spent")

func (p *preflight) add(name, status, detail, fix string) {
	if len(p.rep.Checks) >= maxPreflightChecks {
		p.rep.Omitted++
		if status == CheckFail {
			p.rep.OmittedFailed++
		}
		return
	}
	if p.notRun {
		p.notRun = false
		status, fix = CheckSkip, ""
		detail = fmt.Sprintf("not run: the preflight's %v budget was spent on the checks above", p.budget.Round(time.Second))
	}
	if status != CheckFail {
		fix = ""
	}
	name = clipTo(name, maxCheckName)
	p.rep.Checks = append(p.rep.Checks, Check{Name: name, Status: status, Detail: clipTo(detail, maxCheckDetail), Fix: clipTo(fix, maxCheckFix)})
	if status == CheckFail {
		p.rep.Failed = append(p.rep.Failed, name)
	}
}

func (p *preflight) pass(name, detail string)      { p.add(name, CheckPass, detail, "") }
func (p *preflight) skip(name, why string)         { p.add(name, CheckSkip, why, "") }
func (p *preflight) fail(name, detail, fix string) { p.add(name, CheckFail, detail, fix) }

// clipTo returns s cut to at most n bytes, ending in "…" when cut.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return prefixUTF8(s, n-len("…")) + "…"
}

// call runs f with the per-check deadline, or not at all once the step's
// budget is spent.
func (p *preflight) call(ctx context.Context, f func(ctx context.Context) error) error {
	left := p.timeout
	if !p.deadline.IsZero() {
		left = min(left, p.deadline.Sub(p.h.d.Clock.Now()))
	}
	if left < time.Second {
		p.notRun = true
		return errNoTime
	}
	cctx, cancel := context.WithTimeout(ctx, left)
	defer cancel()
	return f(cctx)
}

// preflight runs every check. It returns an error only for a request it
// cannot read at all; everything else is a check.
func (h *Handler) preflight(ctx context.Context, raw json.RawMessage) (*PreflightReport, error) {
	p := &preflight{h: h, pd: h.d.Preflight, timeout: h.d.Preflight.CheckTimeout}
	if p.timeout <= 0 {
		p.timeout = DefaultCheckTimeout
	}
	// The invocation's deadline (Lambda's) is read on the Clock, like
	// every other time in a step.
	start := h.d.Clock.Now()
	p.deadline = start.Add(preflightBudget)
	if d, ok := ctx.Deadline(); ok && d.Add(-5*time.Second).Before(p.deadline) {
		p.deadline = d.Add(-5 * time.Second)
	}
	p.budget = p.deadline.Sub(start)
	cfg, inputOK := p.input(raw)
	srcOK, tgtOK := p.clusters(ctx)
	p.awsAPIs(ctx)
	maps, lambdaOK := p.lambdaAPI(ctx)
	if inputOK {
		cfg, maps, inputOK = p.selection(ctx, cfg, maps, lambdaOK, srcOK)
	}
	if inputOK {
		p.kafkaPermissions(ctx, cfg, srcOK, tgtOK)
		p.fence(ctx, cfg, srcOK)
		p.mappings(ctx, cfg, maps, lambdaOK, srcOK)
		p.groups(ctx, cfg, srcOK)
		p.approval(ctx, cfg)
	}
	p.finish()
	return &p.rep, nil
}

// finish sets Passed and Cause.
func (p *preflight) finish() {
	failed := len(p.rep.Failed) + p.rep.OmittedFailed
	p.rep.Passed = failed == 0
	if !p.rep.Passed {
		var b strings.Builder
		fmt.Fprintf(&b, "%d preflight check(s) failed:", failed)
		for _, c := range p.rep.Checks {
			if c.Status == CheckFail {
				fmt.Fprintf(&b, " [%s] %s Fix: %s", c.Name, c.Detail, c.Fix)
			}
		}
		if p.rep.OmittedFailed > 0 {
			fmt.Fprintf(&b, " (and %d more, left out of the report)", p.rep.OmittedFailed)
		}
		p.rep.Cause = clipTo(b.String(), maxPreflightCause)
	}
}

// ---- input ----

func (p *preflight) input(raw json.RawMessage) (Config, bool) {
	if len(raw) == 0 {
		p.fail("input", "the execution input is empty", "start the execution with the cutover input, e.g. --input file://events/cutover-input.json")
		return Config{}, false
	}
	cfg, err := ParseInput(raw, p.h.d.ApprovalTopicArn != "")
	if err != nil {
		p.fail("input", err.Error(), "correct the named field of the cutover input (see the README's cutover input table)")
		p.skip("checks that need the input", "topics, groups, mappings, fence and hooks are checked once the input parses")
		return cfg, false
	}
	topics, groups := "every mapped topic", "the groups found on the source"
	if len(cfg.TopicPatterns) > 0 {
		topics = fmt.Sprintf("%d topic name(s) or pattern(s)", len(cfg.TopicPatterns))
	}
	if len(cfg.Groups) > 0 {
		groups = fmt.Sprintf("%d group(s)", len(cfg.Groups))
	}
	p.pass("input", fmt.Sprintf("%s, %s, fence %s", topics, groups, cfg.Fence))
	return cfg, true
}

// ---- reachability ----

// clusters sends a metadata request to each cluster.
func (p *preflight) clusters(ctx context.Context) (srcOK, tgtOK bool) {
	if err := p.pd.ClientsErr; err != nil {
		p.fail("kafka clients", "the cutover function could not build its Kafka clients at start-up: "+err.Error(),
			"read the secrets check below; the function needs its SOURCE_SECRET_ARN and TARGET_SECRET_ARN secrets (Secrets Manager reachable from SubnetIds, secretsmanager:GetSecretValue and kms:Decrypt granted)")
	}
	srcOK = p.reach(ctx, "source", p.h.src, p.pd.SourceBootstrap, "SourceBootstrapServers")
	tgtOK = p.reach(ctx, "target", p.h.tgt, p.pd.TargetBootstrap, "TargetBootstrapServers")
	return srcOK, tgtOK
}

func (p *preflight) reach(ctx context.Context, side string, adm *kadm.Client, bootstrap []string, param string) bool {
	name := side + " cluster reachable"
	tried := strings.Join(bootstrap, ",")
	if tried == "" {
		tried = "(not configured)"
	}
	if adm == nil {
		p.fail(name, "no "+side+" client (tried nothing)", "fix the start-up error reported by the kafka clients check")
		return false
	}
	var md kadm.Metadata
	err := p.call(ctx, func(ctx context.Context) (err error) {
		md, err = adm.BrokerMetadata(ctx)
		return err
	})
	if err != nil {
		auth, listener := strings.ToUpper(side)+"_AUTH", param
		credentials := fmt.Sprintf("the credentials in %s_SECRET_ARN", strings.ToUpper(side))
		switch {
		case errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) || errors.Is(err, kerr.UnsupportedSaslMechanism):
			p.fail(name, fmt.Sprintf("tried %s: authentication failed: %v", tried, err),
				fmt.Sprintf("the %s refused the cutover's credentials: check %s and that %s is the mechanism of the %s listener", side, credentials, auth, listener))
		case errors.As(err, new(*tls.CertificateVerificationError)) || errors.As(err, new(x509.UnknownAuthorityError)):
			p.fail(name, fmt.Sprintf("tried %s: the brokers' TLS certificate is not trusted: %v", tried, err),
				fmt.Sprintf("give the stack the root CA that signed the brokers' certificates (the %sCaSecretArn parameter, %s_CA_SECRET_ARN), or check %s names the cluster you mean", strings.ToUpper(side[:1])+side[1:], strings.ToUpper(side), listener))
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			p.fail(name, fmt.Sprintf("tried %s: the broker accepted the connection and closed it: %v", tried, err),
				fmt.Sprintf("the address is reachable but the handshake failed: check that %s (TLS or not, SASL mechanism) matches the %s listener, and %s", auth, listener, credentials))
		case errors.Is(err, syscall.ECONNREFUSED):
			p.fail(name, fmt.Sprintf("tried %s: connection refused: %v", tried, err),
				fmt.Sprintf("nothing listens there: check %s (host and port of the listener for %s)", listener, auth))
		default:
			p.fail(name, fmt.Sprintf("tried %s: no answer to a metadata request within %v: %v", tried, p.timeout, err),
				fmt.Sprintf("let the cutover function reach the brokers tried: the security groups in SecurityGroupIds must allow outbound TCP to them, the brokers' security groups must allow inbound from SecurityGroupIds, and the subnets in SubnetIds must route to the cluster's network; check %s names the listener for %s", listener, auth))
		}
		return false
	}
	var ids []string
	for _, b := range md.Brokers {
		ids = append(ids, fmt.Sprintf("%d=%s:%d", b.NodeID, b.Host, b.Port))
	}
	p.pass(name, fmt.Sprintf("tried %s; %d broker(s) answered: %s", tried, len(md.Brokers), strings.Join(ids, ", ")))
	return true
}

// awsAPIs checks Secrets Manager and STS.
func (p *preflight) awsAPIs(ctx context.Context) {
	if len(p.pd.SecretArns) == 0 {
		p.skip("secrets manager", "no secret is configured (SOURCE_SECRET_ARN, TARGET_SECRET_ARN and their _CA_SECRET_ARN are empty)")
	} else if p.pd.Secrets == nil {
		p.skip("secrets manager", "the cutover function has no Secrets Manager client")
	} else {
		for _, v := range sortedKeys(p.pd.SecretArns) {
			arn := p.pd.SecretArns[v]
			name := "secrets manager: " + v
			err := p.call(ctx, func(ctx context.Context) error {
				out, err := p.pd.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
				if err == nil && out.SecretString == nil {
					err = errors.New("the secret has no string value")
				}
				return err
			})
			switch {
			case err == nil:
				p.pass(name, "read "+arn+" (contents not shown)")
			case unreachable(err):
				p.fail(name, fmt.Sprintf("GetSecretValue on %s got no answer within %v: %v", arn, p.timeout, err), p.endpointFix("Secrets Manager", "secretsmanager"))
			case denied(err):
				p.fail(name, fmt.Sprintf("GetSecretValue on %s was denied: %v", arn, err),
					fmt.Sprintf("grant the cutover role secretsmanager:GetSecretValue on %s, and kms:Decrypt on the secret's customer managed key through Secrets Manager (the stack's SecretsKmsKeyArn parameter)", arn))
			default:
				p.fail(name, fmt.Sprintf("GetSecretValue on %s failed: %v", arn, err), fmt.Sprintf("check that %s names an existing secret in this account and region", v))
			}
		}
	}
	if p.pd.STS == nil {
		p.skip("sts", "the cutover function has no STS client")
		return
	}
	var who string
	err := p.call(ctx, func(ctx context.Context) error {
		out, err := p.pd.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err == nil {
			who = aws.ToString(out.Arn)
		}
		return err
	})
	switch {
	case err == nil:
		p.pass("sts", "GetCallerIdentity: the cutover runs as "+who)
	case unreachable(err):
		p.fail("sts", fmt.Sprintf("GetCallerIdentity got no answer within %v: %v", p.timeout, err), p.endpointFix("AWS STS", "sts"))
	default:
		// GetCallerIdentity needs no permission, so an answer other than
		// success is about credentials or the endpoint.
		p.fail("sts", "GetCallerIdentity failed: "+err.Error(), "check the function's execution role and that the regional STS endpoint answers from SubnetIds")
	}
}

// endpointFix is the fix for an AWS API the function cannot reach.
func (p *preflight) endpointFix(service, endpoint string) string {
	region := p.pd.Region
	if region == "" {
		region = "<region>"
	}
	return fmt.Sprintf("the functions run in SubnetIds, which reach no %s endpoint: add an interface VPC endpoint com.amazonaws.%s.%s (private DNS on) whose security group admits HTTPS (443) from SecurityGroupIds, or route SubnetIds to a NAT gateway", service, region, endpoint)
}

// unreachable reports whether err means no answer came (deadline, network).
func unreachable(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout())
}

// denied reports whether an AWS API refused for want of a permission.
func denied(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "AccessDenied", "AccessDeniedException", "AuthorizationError", "AuthorizationErrorException", "UnauthorizedOperation":
		return true
	}
	return false
}

// lambdaAPI lists every mapping of the replicator, as Validate does.
func (p *preflight) lambdaAPI(ctx context.Context) ([]Mapping, bool) {
	const name = "lambda api: list mappings"
	if p.h.d.Lambda == nil || p.h.d.ReplicatorFunction == "" {
		p.fail(name, "the cutover function has no replicator configured", "set REPLICATOR_FUNCTION_NAME (the stack does)")
		return nil, false
	}
	var maps []Mapping
	err := p.call(ctx, func(ctx context.Context) (err error) {
		maps, err = p.h.listMappings(ctx)
		return err
	})
	switch {
	case err == nil:
		p.pass(name, fmt.Sprintf("ListEventSourceMappings for %s: %d mapping(s)", p.h.d.ReplicatorFunction, len(maps)))
		return maps, true
	case unreachable(err):
		p.fail(name, fmt.Sprintf("ListEventSourceMappings got no answer within %v: %v", p.timeout, err), p.endpointFix("Lambda", "lambda"))
	case denied(err):
		p.fail(name, "ListEventSourceMappings was denied: "+err.Error(), "grant the cutover role lambda:ListEventSourceMappings (Resource \"*\": the action has no resource-level permission)")
	default:
		p.fail(name, "ListEventSourceMappings failed: "+err.Error(), "check REPLICATOR_FUNCTION_NAME names the replicator function of this stack")
	}
	return nil, false
}

// selection resolves the input's topics and groups as Validate does, from
// all (every mapping of the replicator) and the source's groups, and
// returns the mappings that read the chosen topics. It is false when the
// selection cannot be resolved (the checks that need it are skipped).
func (p *preflight) selection(ctx context.Context, cfg Config, all []Mapping, lambdaOK, srcOK bool) (Config, []Mapping, bool) {
	const name = "input: topics and groups"
	if !lambdaOK {
		p.skip(name, "the topics are chosen among the mappings' topics, which could not be listed")
		return cfg, nil, false
	}
	if err := p.h.resolveTopics(&cfg, all); err != nil {
		p.fail(name, err.Error(), "name topics (or patterns) that the replicator's event source mappings read")
		return cfg, nil, false
	}
	maps := readingAny(all, cfg.Topics)
	if len(cfg.Groups) == 0 {
		if !srcOK {
			p.skip(name, fmt.Sprintf("%d topic(s) chosen; the groups are found on the source, which is not reachable", len(cfg.Topics)))
			return cfg, maps, false
		}
		err := p.call(ctx, func(ctx context.Context) error { return p.h.resolveGroups(ctx, &cfg, all) })
		if err != nil {
			p.fail(name, err.Error(), "name the groups to move in the input's groups")
			return cfg, maps, false
		}
	}
	p.pass(name, fmt.Sprintf("%d topic(s) and %d group(s) chosen; %d mapping(s) read the topics", len(cfg.Topics), len(cfg.Groups), len(maps)))
	return cfg, maps, true
}

// ---- Kafka permissions ----

// kafkaPermissions tries, read-only, what the cutover's steps do on each
// cluster: list offsets (quiet check, drain), describe topic configs
// (Validate), describe groups (consumers gone, target verification).
func (p *preflight) kafkaPermissions(ctx context.Context, cfg Config, srcOK, tgtOK bool) {
	for _, side := range []struct {
		name string
		adm  *kadm.Client
		ok   bool
	}{{"source", p.h.src, srcOK}, {"target", p.h.tgt, tgtOK}} {
		if !side.ok {
			p.skip(side.name+": list offsets, describe configs, describe groups", "the "+side.name+" cluster is not reachable (see above)")
			continue
		}
		adm, sideName := side.adm, side.name
		p.kafkaCheck(ctx, sideName, "list offsets", cfg.Topics, func(ctx context.Context) (string, error) {
			l, err := adm.ListEndOffsets(ctx, cfg.Topics...)
			if err == nil {
				err = l.Error()
			}
			n := 0
			l.Each(func(kadm.ListedOffset) { n++ })
			return fmt.Sprintf("end offsets of %d partition(s) of %s", n, strings.Join(cfg.Topics, ", ")), err
		})
		p.kafkaCheck(ctx, sideName, "describe configs", cfg.Topics, func(ctx context.Context) (string, error) {
			rc, err := adm.DescribeTopicConfigs(ctx, cfg.Topics...)
			if err == nil {
				for _, r := range rc {
					if r.Err != nil {
						return "", fmt.Errorf("topic %s: %w", r.Name, r.Err)
					}
				}
			}
			return fmt.Sprintf("configs of %d topic(s)", len(rc)), err
		})
		p.kafkaCheck(ctx, sideName, "describe groups", cfg.Groups, func(ctx context.Context) (string, error) {
			dg, err := adm.DescribeGroups(ctx, cfg.Groups...)
			if err != nil {
				return "", err
			}
			var states []string
			for _, g := range dg.Sorted() {
				switch {
				case errors.Is(g.Err, kerr.GroupIDNotFound):
					// Kafka answers a group it does not know as Dead, some
					// brokers with this error: not a refusal.
					states = append(states, g.Group+" (none yet)")
				case g.Err != nil:
					return "", fmt.Errorf("group %s: %w", g.Group, g.Err)
				default:
					states = append(states, fmt.Sprintf("%s (%s, %d members)", g.Group, g.State, len(g.Members)))
				}
			}
			return strings.Join(states, ", "), nil
		})
	}
	if tgtOK {
		p.targetCommit(ctx, cfg)
		p.detailsTopic(ctx)
	}
}

// detailsTopic checks the target's details topic, which Validate creates
// when missing (rundetails.Store.Ensure) and every run writes: an existing
// one must have exactly one partition; a missing one needs the right to
// create it, as far as the target reports the principal's cluster
// operations.
func (p *preflight) detailsTopic(ctx context.Context) {
	if p.h.details == nil {
		return
	}
	topic := p.h.details.Topic()
	name := "target: details topic " + topic
	var td kadm.TopicDetails
	err := p.call(ctx, func(ctx context.Context) (err error) {
		td, err = p.h.tgt.ListTopics(ctx, topic)
		return err
	})
	if err != nil {
		p.fail(name, "looking it up: "+err.Error(), "the cutover's target principal must be able to describe topic "+topic+" (for MSK IAM kafka-cluster:DescribeTopic on its ARN)")
		return
	}
	if t, ok := td[topic]; ok && t.Err == nil {
		if n := len(t.Partitions); n != 1 {
			p.fail(name, fmt.Sprintf("it has %d partitions; the run's details need exactly 1", n),
				"delete the topic (it only holds past runs' details) or set the stack's CutoverDetailsTopic parameter to a new name")
			return
		}
		p.pass(name, "exists with 1 partition")
		return
	}
	ops, reported, err := p.clusterOps(ctx, p.h.d.Target)
	switch {
	case err == nil && reported && (slices.Contains(ops, kmsg.ACLOperationCreate) || slices.Contains(ops, kmsg.ACLOperationAll)):
		p.pass(name, "missing; Validate creates it, and the target reports CREATE on the cluster for the cutover's principal")
	case err == nil && reported:
		p.fail(name, "missing, and the target reports no CREATE on the cluster for the cutover's principal, so Validate cannot create it",
			"create the topic (1 partition) or grant the cutover's principal CREATE on it or on the target cluster")
	default:
		p.skip(name, "missing; Validate creates it, which cannot be tried without creating it, and the target did not report the principal's cluster operations")
	}
}

// clusterOps returns the operations the cluster reports the client's
// principal may perform on it (DescribeCluster, KIP-430); reported is false
// when the cluster did not say.
func (p *preflight) clusterOps(ctx context.Context, cl *kgo.Client) (ops []kadm.ACLOperation, reported bool, err error) {
	err = p.call(ctx, func(ctx context.Context) error {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeClusterAuthorizedOperations = true
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return err
		}
		reported = resp.ClusterAuthorizedOperations != math.MinInt32
		ops = kadm.DecodeACLOperations(resp.ClusterAuthorizedOperations)
		return nil
	})
	return ops, reported, err
}

// kafkaCheck runs f, the check "<side>: <op>" (side "source" or
// "target", op the Kafka request), and turns a Kafka refusal into a fix
// naming the grant.
func (p *preflight) kafkaCheck(ctx context.Context, side, op string, resources []string, f func(ctx context.Context) (string, error)) {
	p.kafkaCheckFix(ctx, side, op, resources, nil, f)
}

// kafkaCheckFix is kafkaCheck whose fix comes from fixFor when it returns
// one.
func (p *preflight) kafkaCheckFix(ctx context.Context, side, op string, resources []string, fixFor func(error) string, f func(ctx context.Context) (string, error)) {
	name := side + ": " + op
	var detail string
	err := p.call(ctx, func(ctx context.Context) (err error) {
		// A broker's retriable answer (a group coordinator still loading
		// after a restart, a leader moving) is asked again within the
		// check's deadline, as the steps' own requests would be.
		for {
			if detail, err = f(ctx); err == nil || !kerr.IsRetriable(err) {
				return err
			}
			if p.h.d.Clock.Sleep(ctx, 250*time.Millisecond) != nil {
				return err
			}
		}
	})
	if err == nil {
		p.pass(name, detail)
		return
	}
	var fix string
	if fixFor != nil {
		fix = fixFor(err)
	}
	switch {
	case fix != "":
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		fix = fmt.Sprintf("grant the cutover's principal DESCRIBE and READ on topic(s) %s on the %s (Kafka ACLs; for MSK IAM kafka-cluster:DescribeTopic, ReadData and DescribeTopicDynamicConfiguration on the topic ARNs)", strings.Join(resources, ", "), side)
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		fix = fmt.Sprintf("grant the cutover's principal DESCRIBE (and on the target READ) on group(s) %s on the %s (Kafka ACLs; for MSK IAM kafka-cluster:DescribeGroup and AlterGroup on the group ARNs)", strings.Join(resources, ", "), side)
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		fix = fmt.Sprintf("grant the cutover's principal DESCRIBE on the %s cluster resource", side)
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		fix = fmt.Sprintf("create the topic(s) on the %s (the stack's provisioner creates them on the target from its Topics parameter)", side)
	case unreachable(err):
		fix = fmt.Sprintf("the %s answered the metadata request but not this %s request within %v: check that every broker it names is reachable from SubnetIds", side, op, p.timeout)
	default:
		fix = fmt.Sprintf("see the error; the cutover's %s request must succeed on the %s", op, side)
	}
	p.fail(name, err.Error(), fix)
}

// targetCommit checks the right to commit the groups' offsets on the
// target (TranslateOffsets) as far as Kafka tells without committing: the
// group's authorized operations (KIP-430) name READ, which OffsetCommit
// needs.
func (p *preflight) targetCommit(ctx context.Context, cfg Config) {
	const name = "target: commit offsets"
	var dg kadm.DescribedGroups
	err := p.call(ctx, func(ctx context.Context) (err error) {
		dg, err = p.h.tgt.DescribeGroups(ctx, cfg.Groups...)
		return err
	})
	if err != nil {
		p.skip(name, "cannot be tried without committing, and the groups' authorized operations could not be read: "+err.Error())
		return
	}
	var missing, unknown []string
	for _, g := range dg.Sorted() {
		switch {
		case g.Err != nil:
			unknown = append(unknown, g.Group)
		case len(g.AuthorizedOperations) == 0:
			unknown = append(unknown, g.Group)
		case !slices.Contains(g.AuthorizedOperations, kmsg.ACLOperationRead) && !slices.Contains(g.AuthorizedOperations, kmsg.ACLOperationAll):
			missing = append(missing, g.Group)
		}
	}
	switch {
	case len(missing) > 0:
		p.fail(name, "the target reports no READ for the cutover's principal on group(s) "+strings.Join(missing, ", "),
			"grant the cutover's principal READ on these groups on the target (Kafka ACLs; for MSK IAM kafka-cluster:AlterGroup and DescribeGroup on the group ARNs)")
	case len(unknown) > 0:
		p.skip(name, "cannot be tried without committing, and the target did not report the authorized operations of group(s) "+strings.Join(unknown, ", "))
	default:
		p.pass(name, "the target reports READ for the cutover's principal on every group")
	}
}

// ---- fence ----

// fence checks what FenceSource will need: for acl the right to create
// ACLs, for iam the producer roles; for any kind, Validate's own fence
// check (read-only).
func (p *preflight) fence(ctx context.Context, cfg Config, srcOK bool) {
	switch cfg.Fence {
	case FenceKindACL:
		if !srcOK {
			p.skip("fence acl", "the source cluster is not reachable (see above)")
			return
		}
		p.aclRights(ctx, cfg)
	case FenceKindIAM:
		p.iamRoles(ctx, cfg)
	}
	if !srcOK && p.h.d.SourceAuth != kafkaconn.AuthIAM {
		return
	}
	var f FenceRecord
	var warnings []string
	err := p.call(ctx, func(ctx context.Context) (err error) {
		f, warnings, err = p.h.validateFence(ctx, cfg)
		return err
	})
	name := "fence " + cfg.Fence + ": plan"
	var fu *FenceUnavailableError
	var ie *InvalidInputError
	switch {
	case err == nil:
		detail := fmt.Sprintf("%d ACL(s) to add, %d already there", len(f.Planned), len(f.Existing))
		switch cfg.Fence {
		case FenceKindIAM:
			detail = fmt.Sprintf("%d role(s) already carry the fence policy", len(f.ExistingPolicies))
		case FenceKindNone:
			detail = f.Note
		}
		if len(warnings) > 0 {
			detail += "; warnings: " + strings.Join(warnings, "; ")
		}
		p.pass(name, detail)
	case errors.As(err, &fu):
		p.fail(name, err.Error(), fmt.Sprintf("remove the cause (%s), or set \"fence\": %q in the input", fu.Reason, fu.Use))
	case errors.As(err, &ie):
		p.fail(name, err.Error(), "correct the input field "+ie.Field)
	default:
		p.fail(name, err.Error(), "the fence planning request must succeed: see the error")
	}
}

// aclRights checks the principal may create ACLs on the source. CreateAcls
// needs ALTER on the cluster; Kafka reports the requesting principal's
// authorized cluster operations in DescribeCluster (KIP-430), which also
// covers super users. DescribeAcls needs DESCRIBE on the cluster.
func (p *preflight) aclRights(ctx context.Context, cfg Config) {
	p.kafkaCheckFix(ctx, "source", "describe ACLs", cfg.Topics, func(err error) string {
		if errors.Is(err, kerr.ClusterAuthorizationFailed) {
			return "grant the cutover's principal DESCRIBE on the source cluster resource (kafka-acls --add --allow-principal User:<cutover user> --operation Describe --cluster), or make it a super user; without it the acl fence cannot be planned"
		}
		return ""
	}, func(ctx context.Context) (string, error) {
		res, err := p.h.src.DescribeACLs(ctx, aclBuilder([]FenceACL{denyWrite(cfg.Topics[0])}))
		if err == nil {
			for _, r := range res {
				if r.Err != nil {
					return "", r.Err
				}
			}
		}
		return "DescribeAcls answered", err
	})
	const name = "source: create ACLs (fence acl)"
	ops, reported, err := p.clusterOps(ctx, p.h.d.Source)
	switch {
	case err != nil:
		p.skip(name, "creating ACLs cannot be tried without creating one, and the source did not report the principal's authorized cluster operations: "+err.Error())
	case !reported:
		p.skip(name, "creating ACLs cannot be tried without creating one, and the source did not report the principal's authorized cluster operations")
	case slices.Contains(ops, kmsg.ACLOperationAlter) || slices.Contains(ops, kmsg.ACLOperationAll):
		p.pass(name, "the source reports ALTER on the cluster for the cutover's principal (CreateAcls needs it)")
	default:
		names := "no operation"
		if len(ops) > 0 {
			var l []string
			for _, o := range ops {
				l = append(l, o.String())
			}
			names = strings.Join(l, ", ")
		}
		p.fail(name, "the source reports the cutover's principal may perform "+names+" on the cluster; CreateAcls needs ALTER",
			"grant the cutover's principal ALTER on the source cluster resource (kafka-acls --add --allow-principal User:<cutover user> --operation Alter --cluster) or make it a super user; or use \"fence\": \"none\"")
	}
}

// iamRoles checks iam:GetRole on each producer role of the iam fence.
func (p *preflight) iamRoles(ctx context.Context, cfg Config) {
	if p.h.d.IAM == nil {
		p.skip("fence iam: roles", "the cutover function has no IAM client")
		return
	}
	for _, r := range cfg.ProducerRoles {
		role, _ := iamfence.RoleName(r)
		name := "fence iam: role " + role
		err := p.call(ctx, func(ctx context.Context) error {
			_, err := p.h.d.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)})
			return err
		})
		var nse interface{ ErrorCode() string }
		switch {
		case err == nil:
			p.pass(name, "iam:GetRole answered")
		case unreachable(err):
			p.fail(name, fmt.Sprintf("iam:GetRole got no answer within %v: %v", p.timeout, err), "IAM's API is a global endpoint: give SubnetIds a route to it (a NAT gateway), or use \"fence\": \"none\"")
		case denied(err):
			p.fail(name, "iam:GetRole was denied: "+err.Error(), "list the role's ARN in the stack's ProducerRoleArns parameter (the cutover role may touch only those)")
		case errors.As(err, &nse) && nse.ErrorCode() == "NoSuchEntity":
			p.fail(name, "the role does not exist: "+err.Error(), "correct producerRoles in the input")
		default:
			p.fail(name, "iam:GetRole failed: "+err.Error(), "see the error")
		}
	}
}

// ---- mappings and groups ----

func (p *preflight) mappings(ctx context.Context, cfg Config, maps []Mapping, lambdaOK, srcOK bool) {
	if !lambdaOK {
		p.skip("mappings", "the Lambda API is not reachable (see above)")
		return
	}
	for _, t := range cfg.Topics {
		if !slices.ContainsFunc(maps, func(m Mapping) bool { return slices.Contains(m.Topics, t) }) {
			p.fail("mapping for "+t, fmt.Sprintf("no event source mapping of %s reads topic %s", p.h.d.ReplicatorFunction, t),
				"add the topic to the stack's Topics parameter and deploy, or remove it from the input")
		}
	}
	// The source's end offsets tell which partitions hold records, so
	// must have a commit of the mapping's group.
	var ends kadm.ListedOffsets
	if srcOK {
		if err := p.call(ctx, func(ctx context.Context) (err error) {
			ends, err = p.h.src.ListEndOffsets(ctx, cfg.Topics...)
			if err == nil {
				err = ends.Error()
			}
			return err
		}); err != nil {
			srcOK = false
		}
	}
	for _, m := range maps {
		name := fmt.Sprintf("mapping %s (%s)", m.UUID, strings.Join(m.Topics, ","))
		var state, result string
		err := p.call(ctx, func(ctx context.Context) error {
			out, err := p.h.d.Lambda.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: aws.String(m.UUID)})
			if err == nil {
				state, result = aws.ToString(out.State), aws.ToString(out.LastProcessingResult)
			}
			return err
		})
		switch {
		case unreachable(err):
			p.fail(name, fmt.Sprintf("GetEventSourceMapping got no answer within %v: %v", p.timeout, err), p.endpointFix("Lambda", "lambda"))
		case denied(err):
			p.fail(name, "GetEventSourceMapping was denied: "+err.Error(), "grant the cutover role lambda:GetEventSourceMapping on this mapping's ARN (the stack's per-topic policy does)")
		case err != nil:
			p.fail(name, "GetEventSourceMapping failed: "+err.Error(), "see the error")
		case state == "Creating" || state == "Enabling" || state == "Updating":
			p.fail(name, "state "+state+": the mapping is changing",
				"wait until the mapping reads Enabled (aws lambda get-event-source-mapping --uuid "+m.UUID+") and run the preflight again")
		case state != "Enabled":
			p.fail(name, "state "+state+", last processing result "+quote(result),
				fmt.Sprintf("enable the mapping (aws lambda update-event-source-mapping --uuid %s --enabled) and let it catch up; the cutover drains only through Enabled mappings", m.UUID))
		case strings.HasPrefix(result, "PROBLEM"):
			p.fail(name, "Enabled, but the last processing result is "+quote(result), mappingFix(result))
		case result != "OK":
			p.fail(name, "Enabled, but the last processing result is "+quote(result)+", not OK",
				"wait until the mapping has delivered a batch (LastProcessingResult OK); if it stays so, check the replicator's logs and the mapping's access to the source")
		default:
			p.pass(name, "Enabled, last processing result OK")
		}
		if srcOK {
			p.mappingGroup(ctx, m, ends)
		} else {
			p.skip("mapping group "+m.ConsumerGroup+" on source", "the source's end offsets could not be read (see above)")
		}
	}
}

func quote(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}

func mappingFix(result string) string {
	switch r := strings.ToLower(result); {
	case strings.Contains(r, "sasl") || strings.Contains(r, "authentic") || strings.Contains(r, "secret"):
		return "the mapping cannot authenticate to the source: check the SourceSecretArn secret and SourceAuth"
	case strings.Contains(r, "connection") || strings.Contains(r, "timeout") || strings.Contains(r, "network"):
		return "the mapping cannot reach the source: its subnets and security groups (SubnetIds, SecurityGroupIds) must reach the brokers"
	case strings.Contains(r, "function call failed"):
		return "the replicator fails on its batches: read its log group (/kmig/<stack>/replicator) and fix the cause"
	}
	return "read the mapping's LastProcessingResult and the replicator's logs, and fix the cause"
}

// mappingGroup checks the mapping's consumer group exists on the source and
// has committed offsets for every partition of its topics that holds data.
func (p *preflight) mappingGroup(ctx context.Context, m Mapping, ends kadm.ListedOffsets) {
	name := "mapping group " + m.ConsumerGroup + " on source"
	var o kadm.OffsetResponses
	err := p.call(ctx, func(ctx context.Context) (err error) {
		o, err = p.h.fetchOffsets(ctx, p.h.src, m.ConsumerGroup)
		return err
	})
	if err != nil {
		p.fail(name, "fetching its offsets: "+err.Error(), fmt.Sprintf("grant the cutover's principal DESCRIBE on group %s on the source", m.ConsumerGroup))
		return
	}
	var missing []string
	parts := 0
	for _, t := range m.Topics {
		for _, e := range ends[t] {
			parts++
			if e.Err != nil || e.Offset == 0 {
				continue
			}
			if _, ok := committed(o, t, e.Partition); !ok {
				missing = append(missing, tp(t, e.Partition))
			}
		}
	}
	switch {
	case len(missing) > 0:
		p.fail(name, fmt.Sprintf("no committed offset for %s (the partitions hold records)", listed(missing, ", ")),
			fmt.Sprintf("let mapping %s deliver its first batches (it commits after each); if it does not, read its LastProcessingResult", m.UUID))
	default:
		p.pass(name, fmt.Sprintf("committed offsets for every non-empty partition of %d", parts))
	}
}

// groups checks each application group has committed offsets for the
// migrated topics on the source; a group without is left alone by the
// cutover, which is usually a misspelt name.
func (p *preflight) groups(ctx context.Context, cfg Config, srcOK bool) {
	if !srcOK {
		p.skip("groups", "the source cluster is not reachable (see above)")
		return
	}
	for _, g := range cfg.Groups {
		name := "group " + g + " on source"
		var o kadm.OffsetResponses
		err := p.call(ctx, func(ctx context.Context) (err error) {
			o, err = p.h.fetchOffsets(ctx, p.h.src, g)
			return err
		})
		if err != nil {
			p.fail(name, "fetching its offsets: "+err.Error(), fmt.Sprintf("grant the cutover's principal DESCRIBE on group %s on the source", g))
			continue
		}
		n := 0
		o.Each(func(r kadm.OffsetResponse) {
			if r.Err == nil && slices.Contains(cfg.Topics, r.Topic) {
				n++
			}
		})
		if n == 0 {
			p.fail(name, "the group has no committed offset for "+strings.Join(cfg.Topics, ", ")+" on the source, so the cutover would leave it alone",
				"correct the group name in the input, or remove it if it does not read these topics")
			continue
		}
		p.pass(name, fmt.Sprintf("committed offsets for %d partition(s)", n))
	}
}

// ---- approval ----

// approval checks the approval topic answers when an approval hook is set.
// GetTopicAttributes needs sns:GetTopicAttributes on that one topic; the
// publish right (sns:Publish) cannot be tried without sending a message.
func (p *preflight) approval(ctx context.Context, cfg Config) {
	const name = "approval topic"
	used := false
	for _, hc := range []HookConfig{cfg.Hooks.StopProducers, cfg.Hooks.StopConsumers, cfg.Hooks.StartConsumers, cfg.Hooks.StartProducers} {
		used = used || hc.Type == HookApproval
	}
	switch {
	case !used:
		p.skip(name, "no approval hook in the input")
		return
	case p.pd.SNS == nil:
		p.skip(name, "the cutover function has no SNS client")
		return
	}
	arn := p.h.d.ApprovalTopicArn
	err := p.call(ctx, func(ctx context.Context) error {
		_, err := p.pd.SNS.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
		return err
	})
	switch {
	case err == nil:
		p.pass(name, "GetTopicAttributes on "+arn+" answered (publishing is not tried: it would send a message)")
	case unreachable(err):
		p.fail(name, fmt.Sprintf("GetTopicAttributes got no answer within %v: %v", p.timeout, err), p.endpointFix("Amazon SNS", "sns"))
	case denied(err):
		p.fail(name, "GetTopicAttributes was denied: "+err.Error(), "grant the cutover role sns:GetTopicAttributes and sns:Publish on "+arn+" (the stack does)")
	default:
		p.fail(name, "GetTopicAttributes failed: "+err.Error(), "check APPROVAL_TOPIC_ARN names an existing topic")
	}
}
