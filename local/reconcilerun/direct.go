package reconcilerun

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
)

// DirectAPI serves the reconciler's Lambda API calls in process, straight
// on an esm.Registry: every created mapping is an emulated mapping
// invoking Handler. It answers as the Lambda API documents: at most 100
// mappings per ListEventSourceMappings page, ResourceInUseException for
// an update of a mapping in transition, ResourceNotFoundException for an
// unknown UUID, and, every ThrottleEvery-th call when set,
// TooManyRequestsException.
type DirectAPI struct {
	Registry *esm.Registry
	Handler  lambda.Handler
	// Mapping completes the esm.Config of a created mapping (bootstrap
	// servers, client options, transition); it gets the config built from
	// the request.
	Mapping func(*esm.Config)
	// ThrottleEvery, when > 0, answers every n-th call with
	// TooManyRequestsException.
	ThrottleEvery int64

	calls, throttled atomic.Int64
	mu               sync.Mutex
	tags             map[string]map[string]string // by mapping ARN
}

var _ reconcile.LambdaAPI = (*DirectAPI)(nil)

// Throttled reports how many calls were answered TooManyRequestsException.
func (d *DirectAPI) Throttled() int64 { return d.throttled.Load() }

// Calls reports how many calls were made.
func (d *DirectAPI) Calls() int64 { return d.calls.Load() }

func (d *DirectAPI) throttle() error {
	n := d.calls.Add(1)
	if d.ThrottleEvery > 0 && n%d.ThrottleEvery == 0 {
		d.throttled.Add(1)
		return &types.TooManyRequestsException{Message: aws.String("Rate exceeded"), Reason: types.ThrottleReasonCallerRateLimitExceeded}
	}
	return nil
}

// MappingArn is a local mapping's ARN.
func MappingArn(uuid string) string {
	return "arn:aws:lambda:us-east-1:000000000000:event-source-mapping:" + uuid
}

func configuration(m *esm.Mapping) types.EventSourceMappingConfiguration {
	c := types.EventSourceMappingConfiguration{
		UUID: aws.String(m.UUID()), EventSourceMappingArn: aws.String(MappingArn(m.UUID())),
		FunctionArn: aws.String(m.FunctionArn()), State: aws.String(string(m.State())),
		LastModified: aws.Time(m.LastModified()), Topics: m.Topics(),
		StartingPosition: types.EventSourcePosition(m.StartingPosition()),
	}
	cg := aws.String(m.ConsumerGroupID())
	if m.EventSourceArn() != "" {
		c.EventSourceArn = aws.String(m.EventSourceArn())
		c.AmazonManagedKafkaEventSourceConfig = &types.AmazonManagedKafkaEventSourceConfig{ConsumerGroupId: cg}
	} else {
		c.SelfManagedKafkaEventSourceConfig = &types.SelfManagedKafkaEventSourceConfig{ConsumerGroupId: cg}
	}
	return c
}

// ListEventSourceMappings lists a function's mappings, 100 per page; the
// marker is the index of the page's first mapping.
func (d *DirectAPI) ListEventSourceMappings(_ context.Context, in *awslambda.ListEventSourceMappingsInput, _ ...func(*awslambda.Options)) (*awslambda.ListEventSourceMappingsOutput, error) {
	if err := d.throttle(); err != nil {
		return nil, err
	}
	ms := d.Registry.ListByFunction(aws.ToString(in.FunctionName))
	from := 0
	if m := aws.ToString(in.Marker); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || n > len(ms) {
			return nil, &types.InvalidParameterValueException{Message: aws.String("invalid Marker")}
		}
		from = n
	}
	size := 100
	if in.MaxItems != nil && int(*in.MaxItems) < size && *in.MaxItems > 0 {
		size = int(*in.MaxItems)
	}
	to := min(from+size, len(ms))
	out := &awslambda.ListEventSourceMappingsOutput{}
	for _, m := range ms[from:to] {
		out.EventSourceMappings = append(out.EventSourceMappings, configuration(m))
	}
	if to < len(ms) {
		out.NextMarker = aws.String(strconv.Itoa(to))
	}
	return out, nil
}

func (d *DirectAPI) get(uuid string) (*esm.Mapping, error) {
	m, err := d.Registry.Get(uuid)
	if err != nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("The resource you requested does not exist.")}
	}
	return m, nil
}

// GetEventSourceMapping reads one mapping.
func (d *DirectAPI) GetEventSourceMapping(_ context.Context, in *awslambda.GetEventSourceMappingInput, _ ...func(*awslambda.Options)) (*awslambda.GetEventSourceMappingOutput, error) {
	if err := d.throttle(); err != nil {
		return nil, err
	}
	m, err := d.get(aws.ToString(in.UUID))
	if err != nil {
		return nil, err
	}
	c := configuration(m)
	return &awslambda.GetEventSourceMappingOutput{UUID: c.UUID, State: c.State, Topics: c.Topics, LastModified: c.LastModified,
		EventSourceMappingArn: c.EventSourceMappingArn, SelfManagedKafkaEventSourceConfig: c.SelfManagedKafkaEventSourceConfig,
		AmazonManagedKafkaEventSourceConfig: c.AmazonManagedKafkaEventSourceConfig}, nil
}

// CreateEventSourceMapping starts an emulated mapping for the request.
func (d *DirectAPI) CreateEventSourceMapping(_ context.Context, in *awslambda.CreateEventSourceMappingInput, _ ...func(*awslambda.Options)) (*awslambda.CreateEventSourceMappingOutput, error) {
	if err := d.throttle(); err != nil {
		return nil, err
	}
	cfg := esm.Config{
		FunctionName:          aws.ToString(in.FunctionName),
		Topics:                in.Topics,
		StartingPosition:      esm.StartingPosition(in.StartingPosition),
		BatchSize:             int(aws.ToInt32(in.BatchSize)),
		MaximumBatchingWindow: time.Duration(aws.ToInt32(in.MaximumBatchingWindowInSeconds)) * time.Second,
		StartDisabled:         in.Enabled != nil && !*in.Enabled,
	}
	if in.SelfManagedKafkaEventSourceConfig != nil {
		cfg.ConsumerGroupID = aws.ToString(in.SelfManagedKafkaEventSourceConfig.ConsumerGroupId)
	}
	if in.AmazonManagedKafkaEventSourceConfig != nil {
		cfg.ConsumerGroupID = aws.ToString(in.AmazonManagedKafkaEventSourceConfig.ConsumerGroupId)
		cfg.EventSourceArn = aws.ToString(in.EventSourceArn)
	}
	if in.SelfManagedEventSource != nil {
		cfg.BootstrapServers = in.SelfManagedEventSource.Endpoints[string(types.EndPointTypeKafkaBootstrapServers)]
	}
	if d.Mapping != nil {
		d.Mapping(&cfg)
	}
	for _, m := range d.Registry.ListByFunction(cfg.FunctionName) {
		if slices.Equal(m.Topics(), cfg.Topics) {
			return nil, &types.ResourceConflictException{Message: aws.String(fmt.Sprintf("An event source mapping with the topic %v already exists: %s", cfg.Topics, m.UUID()))}
		}
	}
	m, err := d.Registry.Create(cfg, d.Handler)
	if err != nil {
		return nil, &types.InvalidParameterValueException{Message: aws.String(err.Error())}
	}
	if len(in.Tags) > 0 {
		d.mu.Lock()
		if d.tags == nil {
			d.tags = map[string]map[string]string{}
		}
		d.tags[MappingArn(m.UUID())] = in.Tags
		d.mu.Unlock()
	}
	c := configuration(m)
	return &awslambda.CreateEventSourceMappingOutput{UUID: c.UUID, State: c.State, Topics: c.Topics, EventSourceMappingArn: c.EventSourceMappingArn}, nil
}

// UpdateEventSourceMapping sets Enabled.
func (d *DirectAPI) UpdateEventSourceMapping(_ context.Context, in *awslambda.UpdateEventSourceMappingInput, _ ...func(*awslambda.Options)) (*awslambda.UpdateEventSourceMappingOutput, error) {
	if err := d.throttle(); err != nil {
		return nil, err
	}
	m, err := d.get(aws.ToString(in.UUID))
	if err != nil {
		return nil, err
	}
	if in.Enabled != nil {
		if err := m.SetEnabled(*in.Enabled); err != nil {
			return nil, &types.ResourceInUseException{Message: aws.String(err.Error())}
		}
	}
	c := configuration(m)
	return &awslambda.UpdateEventSourceMappingOutput{UUID: c.UUID, State: c.State}, nil
}

// DeleteEventSourceMapping deletes a mapping.
func (d *DirectAPI) DeleteEventSourceMapping(_ context.Context, in *awslambda.DeleteEventSourceMappingInput, _ ...func(*awslambda.Options)) (*awslambda.DeleteEventSourceMappingOutput, error) {
	if err := d.throttle(); err != nil {
		return nil, err
	}
	if err := d.Registry.Delete(aws.ToString(in.UUID)); err != nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("The resource you requested does not exist.")}
	}
	return &awslambda.DeleteEventSourceMappingOutput{UUID: in.UUID, State: aws.String(reconcile.StateDeleting)}, nil
}

// ListTags returns a mapping's tags.
func (d *DirectAPI) ListTags(_ context.Context, in *awslambda.ListTagsInput, _ ...func(*awslambda.Options)) (*awslambda.ListTagsOutput, error) {
	if err := d.throttle(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return &awslambda.ListTagsOutput{Tags: d.tags[aws.ToString(in.Resource)]}, nil
}

// LateStart makes a created mapping start a partition that has no commit
// in its group from the partition's end, not its start: one of the two
// behaviours AWS leaves open for a partition added to a topic whose group
// already has commits.
func LateStart(cfg *esm.Config) {
	cfg.ClientOptions = append(cfg.ClientOptions, kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
}
