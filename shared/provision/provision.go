// Package provision is the provisioner function: the reconciler
// (shared/reconcile) behind two entry points.
//
//   - CloudFormation custom resources. Custom::TargetTopics: Create and
//     Update run one reconciliation and answer SUCCESS only when it
//     succeeded (bad configuration, a bad selection, an unreachable
//     cluster or a failed topic answer FAILED with the reason, sent before
//     the Lambda deadline); Delete deletes the replicator's event source
//     mappings that this stack's reconciler created (tag kmig:stack =
//     STACK_NAME) and never a target topic. Custom::TopicScope goes to the
//     TopicScope handler. The resource's properties are not read: the
//     configuration is the function's environment, and properties only
//     make CloudFormation send an Update when they change.
//   - Scheduled invocations (EventBridge Scheduler): any event that is not
//     a CloudFormation custom resource event, for example
//     {"reconcile": true}, runs one reconciliation and returns its report.
//
// It always answers CloudFormation, so a stack never hangs waiting for it.
package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/customresource"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
)

// Custom resource types the function serves.
const (
	ResourceTargetTopics = "Custom::TargetTopics"
	ResourceTopicScope   = "Custom::TopicScope"
)

// LoadConfig reads the function's environment: reconcile.LoadConfig.
func LoadConfig(env config.Env) (reconcile.Config, error) { return reconcile.LoadConfig(env) }

// Connector opens the source and target clients for one run; close
// releases both.
type Connector func(ctx context.Context) (source, target *kgo.Client, close func(), err error)

// Connect returns a Connector for cfg. Clients are built per invocation:
// a fresh client never carries stale metadata, and a run is rare enough.
func Connect(cfg reconcile.Config, secrets kafkaconn.Secrets) Connector {
	return func(ctx context.Context) (*kgo.Client, *kgo.Client, func(), error) {
		src, err := cfg.Source.NewClient(ctx, secrets, kgo.MetadataMinAge(time.Second))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("source client: %w", err)
		}
		tgt, err := cfg.Target.NewClient(ctx, secrets, kgo.MetadataMinAge(time.Second))
		if err != nil {
			src.Close()
			return nil, nil, nil, fmt.Errorf("target client: %w", err)
		}
		return src, tgt, func() { src.Close(); tgt.Close() }, nil
	}
}

// CustomResource handles one custom resource event: the physical ID, the
// response Data, and the error that makes the response FAILED.
type CustomResource func(ctx context.Context, ev cfn.Event) (physicalID string, data map[string]any, err error)

// Provisioner is the function's handler. It implements lambda.Handler.
type Provisioner struct {
	Config reconcile.Config
	// ConfigErr, when set, fails every reconciliation with it as the
	// reason; a Delete still answers SUCCESS (leaving the mappings).
	ConfigErr error
	Connect   Connector
	Lambda    reconcile.LambdaAPI
	// TopicScope serves Custom::TopicScope; nil answers FAILED.
	TopicScope CustomResource
	// Options are the reconciler's run options.
	Options reconcile.Options
	// FunctionName is the metrics' FunctionName dimension.
	FunctionName string
	// Logger receives the report lines; nil discards.
	Logger *slog.Logger
	// Margin is kept free before the Lambda deadline to answer; 0 means
	// 20 seconds.
	Margin time.Duration
}

// MaxReasonBytes bounds a FAILED reason: CloudFormation refuses a response
// body over 4096 bytes.
const MaxReasonBytes = 2048

// Invoke dispatches one event: a CloudFormation custom resource event
// (it has a RequestType and a ResponseURL) is answered at its ResponseURL;
// any other event runs one reconciliation and returns the report as JSON.
func (p *Provisioner) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var probe struct {
		RequestType string `json:"RequestType"`
		ResponseURL string `json:"ResponseURL"`
	}
	_ = json.Unmarshal(payload, &probe)
	if probe.RequestType != "" && probe.ResponseURL != "" {
		var ev cfn.Event
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("custom resource event: %w", err)
		}
		reasonText, err := cfn.LambdaWrap(p.HandleCustomResource)(ctx, ev)
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string]string{"reason": reasonText})
	}
	rep, err := p.reconcile(ctx)
	out, merr := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	return out, merr
}

// HandleCustomResource handles one custom resource event by its type.
func (p *Provisioner) HandleCustomResource(ctx context.Context, ev cfn.Event) (string, map[string]any, error) {
	switch ev.ResourceType {
	case ResourceTopicScope:
		if p.TopicScope == nil {
			return PhysicalID(ev), nil, reason(errors.New("this provisioner does not serve " + ResourceTopicScope))
		}
		id, data, err := p.TopicScope(ctx, ev)
		if err != nil {
			err = reason(err)
		}
		return id, data, err
	case ResourceTargetTopics, "":
		return p.targetTopics(ctx, ev)
	}
	return PhysicalID(ev), nil, reason(fmt.Errorf("unknown resource type %q (served: %s, %s)", ev.ResourceType, ResourceTargetTopics, ResourceTopicScope))
}

// PhysicalID is a Custom::TargetTopics resource's physical ID: stable for
// the life of the resource (Create derives it from the stack and logical
// ID; Update and Delete keep the one CloudFormation sends), so an Update
// never looks like a replacement.
func PhysicalID(ev cfn.Event) string { return customresource.PhysicalID(ev, "kmig-target-topics") }

func (p *Provisioner) log() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

func (p *Provisioner) targetTopics(ctx context.Context, ev cfn.Event) (string, map[string]any, error) {
	id := PhysicalID(ev)
	log := p.log().With("requestType", string(ev.RequestType), "logicalResourceId", ev.LogicalResourceID, "physicalResourceId", id)
	ctx, cancel := p.withMargin(ctx)
	defer cancel()
	switch ev.RequestType {
	case cfn.RequestDelete:
		if p.ConfigErr != nil {
			log.WarnContext(ctx, "delete with a bad configuration: the mappings are left in place", "error", p.ConfigErr)
			return id, map[string]any{"Summary": "configuration invalid; mappings and target topics left in place"}, nil
		}
		deleted, kept, err := DeleteMappings(ctx, p.Lambda, p.Config)
		log.InfoContext(ctx, "delete: target topics are left in place", "mappingsDeleted", deleted, "mappingsKept", kept, "error", err)
		if err != nil {
			return id, nil, reason(err)
		}
		return id, map[string]any{"Summary": fmt.Sprintf("deleted %d event source mappings; target topics left in place", len(deleted))}, nil
	case cfn.RequestCreate, cfn.RequestUpdate:
	default:
		return id, nil, reason(fmt.Errorf("unknown RequestType %q", ev.RequestType))
	}
	rep, err := p.reconcile(ctx)
	data := map[string]any{
		"TopicsSelected":  fmt.Sprint(rep.TopicsSelected),
		"MappingsCreated": fmt.Sprint(len(rep.MappingsCreated)),
		"Summary":         summary(rep),
	}
	if err != nil {
		return id, data, reason(err)
	}
	return id, data, nil
}

func summary(rep reconcile.Report) string {
	return fmt.Sprintf("%d topics selected, %d mappings created, %d polling, %d not polling, %d partitions added, %d skipped, %d gaps",
		rep.TopicsSelected, len(rep.MappingsCreated), rep.MappingsPolling, len(rep.MappingsNotPolling), rep.PartitionsAdded, len(rep.Skipped), len(rep.Gaps))
}

// reconcile runs one reconciliation with fresh clients.
func (p *Provisioner) reconcile(ctx context.Context) (reconcile.Report, error) {
	if p.ConfigErr != nil {
		p.log().ErrorContext(ctx, "bad configuration", "error", p.ConfigErr)
		return reconcile.Report{Error: p.ConfigErr.Error()}, fmt.Errorf("provisioner configuration: %w", p.ConfigErr)
	}
	src, tgt, closeFn, err := p.Connect(ctx)
	if err != nil {
		p.log().ErrorContext(ctx, "connect", "error", err)
		return reconcile.Report{Error: err.Error()}, err
	}
	defer closeFn()
	r := &reconcile.Reconciler{Config: p.Config, Source: src, Target: tgt, Lambda: p.Lambda, Options: p.Options,
		FunctionName: p.FunctionName, Log: p.Logger}
	return r.Run(ctx)
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
