// Package provision is the CloudFormation custom resource that prepares the
// target topics before any event source mapping starts: on Create and
// Update it runs topicsync.Apply for the resource's properties and answers
// SUCCESS only when the target is verified in sync; on Delete it answers
// SUCCESS and leaves every target topic alone.
//
// Before it connects to either cluster, it checks each mapping's consumer
// group ID (ConsumerGroupIdPrefix + topic) against Lambda's ConsumerGroupId
// limits, which CloudFormation cannot compute: a group ID Lambda would
// refuse fails the resource with a *ConsumerGroupIDError, before any
// topic or mapping is created.
//
// It never changes the source cluster, never deletes anything on the
// target, and always answers CloudFormation (bad properties, bad
// configuration and unreachable clusters are FAILED with a reason, sent
// before the Lambda deadline), so a stack never hangs waiting for it.
package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// EnvTransforms is the replicator's TRANSFORMS, which the provisioner reads
// for the target names of renamed topics.
const EnvTransforms = "TRANSFORMS"

// Config is the provisioner function's configuration.
type Config struct {
	Source kafkaconn.Config // SOURCE_BOOTSTRAP_SERVERS, SOURCE_AUTH, SOURCE_SECRET_ARN, SOURCE_CA_SECRET_ARN
	Target kafkaconn.Config // TARGET_BOOTSTRAP_SERVERS, TARGET_AUTH, TARGET_SECRET_ARN, TARGET_CA_SECRET_ARN
	// Renames are the rename transforms of TRANSFORMS, the replicator's
	// own configuration: each renamed topic is created under its target
	// name.
	Renames transform.TopicMap
}

// LoadConfig reads the provisioner's environment. Every problem is a
// *config.Error naming its variable; all of them are reported, joined.
func LoadConfig(env config.Env) (Config, error) {
	var cfg Config
	var errs []error
	var err error
	if cfg.Source, err = kafkaconn.FromEnv(env, "SOURCE"); err != nil {
		errs = append(errs, err)
	}
	if cfg.Target, err = kafkaconn.FromEnv(env, "TARGET"); err != nil {
		errs = append(errs, err)
	}
	raw, _ := env.Lookup(EnvTransforms)
	if cfg.Renames, err = transform.ParseTopicMap([]byte(raw)); err != nil {
		errs = append(errs, &config.Error{Variable: EnvTransforms, Problem: "invalid transforms", Err: err})
	}
	return cfg, errors.Join(errs...)
}

// Connector opens admin clients for the source and the target; close
// releases both.
type Connector func(ctx context.Context) (source, target *kadm.Client, close func(), err error)

// Connect returns a Connector for cfg. Clients are built per invocation: the
// custom resource runs rarely, and a fresh client never carries stale
// metadata.
func Connect(cfg Config, secrets kafkaconn.Secrets) Connector {
	return func(ctx context.Context) (*kadm.Client, *kadm.Client, func(), error) {
		src, err := cfg.Source.NewClient(ctx, secrets, kgo.MetadataMinAge(time.Second))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("source client: %w", err)
		}
		tgt, err := cfg.Target.NewClient(ctx, secrets, kgo.MetadataMinAge(time.Second))
		if err != nil {
			src.Close()
			return nil, nil, nil, fmt.Errorf("target client: %w", err)
		}
		return kadm.NewClient(src), kadm.NewClient(tgt), func() { src.Close(); tgt.Close() }, nil
	}
}

// Provisioner handles the custom resource's events.
type Provisioner struct {
	// Connect opens the clusters for Create and Update.
	Connect Connector
	// ConfigErr, when set, fails every Create and Update with it as the
	// reason (Delete still succeeds): the function answers CloudFormation
	// even when its environment is wrong.
	ConfigErr error
	// Renames are the target names of renamed topics (Config.Renames).
	Renames transform.TopicMap
	// Logger receives one line per event; nil discards.
	Logger *slog.Logger
	// Margin is kept free before the Lambda deadline to send the
	// response; 0 means 20 seconds.
	Margin time.Duration
}

// MaxReasonBytes bounds the FAILED reason: CloudFormation rejects a
// response body over 4096 bytes.
const MaxReasonBytes = 2048

// Handler returns the Lambda handler: p.Handle wrapped by cfn.LambdaWrap,
// which PUTs the response to the event's pre-signed ResponseURL.
func (p *Provisioner) Handler() cfn.CustomResourceLambdaFunction {
	return cfn.LambdaWrap(p.Handle)
}

// PhysicalID is the resource's physical ID: stable for the life of the
// resource (Create derives it from the stack and logical ID; Update and
// Delete keep the one CloudFormation sends), so an Update never looks like
// a replacement.
func PhysicalID(ev cfn.Event) string {
	if ev.RequestType != cfn.RequestCreate && ev.PhysicalResourceID != "" {
		return ev.PhysicalResourceID
	}
	stack := ev.StackID
	// arn:aws:cloudformation:region:account:stack/NAME/uuid
	if parts := strings.Split(ev.StackID, "/"); len(parts) >= 2 {
		stack = parts[1]
	}
	return "kmig-target-topics/" + stack + "/" + ev.LogicalResourceID
}

// Handle processes one custom resource event and returns the physical ID,
// the response Data and the error that makes the response FAILED.
func (p *Provisioner) Handle(ctx context.Context, ev cfn.Event) (string, map[string]any, error) {
	id := PhysicalID(ev)
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("requestType", string(ev.RequestType), "logicalResourceId", ev.LogicalResourceID, "physicalResourceId", id)

	if ev.RequestType == cfn.RequestDelete {
		log.InfoContext(ctx, "delete: target topics are left in place")
		return id, map[string]any{"Summary": "target topics left in place"}, nil
	}
	if ev.RequestType != cfn.RequestCreate && ev.RequestType != cfn.RequestUpdate {
		return id, nil, reason(fmt.Errorf("unknown RequestType %q", ev.RequestType))
	}
	props, err := ParseProperties(ev.ResourceProperties)
	if err != nil {
		log.ErrorContext(ctx, "bad properties", "error", err)
		return id, nil, reason(err)
	}
	if p.ConfigErr != nil {
		log.ErrorContext(ctx, "bad configuration", "error", p.ConfigErr)
		return id, nil, reason(fmt.Errorf("provisioner configuration: %w", p.ConfigErr))
	}

	opts, err := props.options(p.Renames)
	if err != nil {
		log.ErrorContext(ctx, "bad renames", "error", err)
		return id, nil, reason(err)
	}

	ctx, cancel := p.withMargin(ctx)
	defer cancel()
	src, tgt, closeFn, err := p.Connect(ctx)
	if err != nil {
		log.ErrorContext(ctx, "connect", "error", err)
		return id, nil, reason(err)
	}
	defer closeFn()

	res, err := topicsync.Apply(ctx, src, tgt, opts)
	data := resultData(res)
	if err != nil {
		log.ErrorContext(ctx, "topic sync failed", "error", err, "pending", res.Final.Pending())
		return id, data, reason(err)
	}
	log.InfoContext(ctx, "target topics in sync", "topicsCreated", res.TopicsCreated,
		"partitionsAdded", res.PartitionsAdded, "configsSet", res.ConfigsSet, "aclsCreated", len(res.ACLsCreated),
		"notes", notes(res.Planned))
	return id, data, nil
}

func (p *Provisioner) withMargin(ctx context.Context) (context.Context, context.CancelFunc) {
	margin := p.Margin
	if margin == 0 {
		margin = 20 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-margin))
	}
	return context.WithCancel(ctx)
}

// reason bounds an error's text for the response; the full text is logged.
func reason(err error) error {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if len(msg) > MaxReasonBytes {
		msg = msg[:MaxReasonBytes-3] + "..."
	}
	return &reasonError{msg: msg, err: err}
}

type reasonError struct {
	msg string
	err error
}

func (e *reasonError) Error() string { return e.msg }
func (e *reasonError) Unwrap() error { return e.err }

// resultData is the response's Data: short strings, readable with
// Fn::GetAtt (TopicsCreated, PartitionsAdded, ConfigsSet, AclsCreated,
// Summary).
func resultData(res topicsync.Result) map[string]any {
	var added, set []string
	for _, t := range sortedTopics(res.PartitionsAdded) {
		added = append(added, fmt.Sprintf("%s+%d", t, res.PartitionsAdded[t]))
	}
	for _, t := range sortedTopicsL(res.ConfigsSet) {
		set = append(set, t+":"+strings.Join(res.ConfigsSet[t], "|"))
	}
	summary := "in sync, nothing changed"
	if res.Changed() {
		summary = fmt.Sprintf("created %d topics, added partitions to %d, set configs on %d, created %d ACLs",
			len(res.TopicsCreated), len(res.PartitionsAdded), len(res.ConfigsSet), len(res.ACLsCreated))
	}
	d := map[string]any{
		"TopicsCreated":   strings.Join(res.TopicsCreated, ","),
		"PartitionsAdded": strings.Join(added, ","),
		"ConfigsSet":      strings.Join(set, ","),
		"AclsCreated":     fmt.Sprint(len(res.ACLsCreated)),
		"Summary":         summary,
	}
	for k, v := range d {
		if s := v.(string); len(s) > 400 {
			d[k] = s[:397] + "..."
		}
	}
	return d
}

func notes(p topicsync.Plan) []string {
	out := append([]string{}, p.Notes...)
	for _, t := range p.Topics {
		for _, n := range t.Notes {
			out = append(out, t.Topic+": "+n)
		}
	}
	return out
}

func sortedTopics(m map[string]int32) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedTopicsL(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
