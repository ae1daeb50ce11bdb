package reconcile

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/clock"
)

// LambdaAPI is the part of the Lambda API the reconciler uses;
// *lambda.Client implements it.
type LambdaAPI interface {
	ListEventSourceMappings(ctx context.Context, in *lambda.ListEventSourceMappingsInput, opts ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error)
	GetEventSourceMapping(ctx context.Context, in *lambda.GetEventSourceMappingInput, opts ...func(*lambda.Options)) (*lambda.GetEventSourceMappingOutput, error)
	CreateEventSourceMapping(ctx context.Context, in *lambda.CreateEventSourceMappingInput, opts ...func(*lambda.Options)) (*lambda.CreateEventSourceMappingOutput, error)
	UpdateEventSourceMapping(ctx context.Context, in *lambda.UpdateEventSourceMappingInput, opts ...func(*lambda.Options)) (*lambda.UpdateEventSourceMappingOutput, error)
	DeleteEventSourceMapping(ctx context.Context, in *lambda.DeleteEventSourceMappingInput, opts ...func(*lambda.Options)) (*lambda.DeleteEventSourceMappingOutput, error)
	ListTags(ctx context.Context, in *lambda.ListTagsInput, opts ...func(*lambda.Options)) (*lambda.ListTagsOutput, error)
}

// Mapping states, as the Lambda API reports them.
const (
	StateCreating  = "Creating"
	StateEnabling  = "Enabling"
	StateEnabled   = "Enabled"
	StateDisabling = "Disabling"
	StateDisabled  = "Disabled"
	StateUpdating  = "Updating"
	StateDeleting  = "Deleting"
)

// Mapping is one of the replicator's event source mappings.
type Mapping struct {
	UUID         string
	Arn          string
	Topic        string // its first (and only) topic
	State        string
	GroupID      string
	LastModified time.Time
}

func mappingOf(c types.EventSourceMappingConfiguration) Mapping {
	m := Mapping{UUID: aws.ToString(c.UUID), Arn: aws.ToString(c.EventSourceMappingArn), State: aws.ToString(c.State),
		LastModified: aws.ToTime(c.LastModified)}
	if len(c.Topics) > 0 {
		m.Topic = c.Topics[0]
	}
	switch {
	case c.AmazonManagedKafkaEventSourceConfig != nil:
		m.GroupID = aws.ToString(c.AmazonManagedKafkaEventSourceConfig.ConsumerGroupId)
	case c.SelfManagedKafkaEventSourceConfig != nil:
		m.GroupID = aws.ToString(c.SelfManagedKafkaEventSourceConfig.ConsumerGroupId)
	}
	return m
}

// throttled reports whether err is the Lambda API's TooManyRequestsException.
func throttled(err error) bool {
	var t *types.TooManyRequestsException
	return errors.As(err, &t)
}

// Busy reports whether err is the Lambda API's answer for a mapping that
// cannot be updated or deleted yet, worth retrying: ResourceInUseException
// (documented for a mapping in transition), ResourceConflictException
// ("another operation is in progress"; AWS does not say which of the two a
// mapping in transition gets), or TooManyRequestsException.
func Busy(err error) bool {
	var (
		inUse    *types.ResourceInUseException
		conflict *types.ResourceConflictException
	)
	return errors.As(err, &inUse) || errors.As(err, &conflict) || throttled(err)
}

// maybeApplied reports whether a failed update may still have taken
// effect: it got no answer from the API (a transport error or the
// context ending mid-request). An API error answer means it did not.
func maybeApplied(err error) bool {
	var ae smithy.APIError
	return !errors.As(err, &ae)
}

func notFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// backoff is the pause before retry n (0-based): 100 ms doubling to 5 s,
// with jitter, so hundreds of parallel calls do not retry in step.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n, 6)
	d = min(d, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}

// Retry calls fn until it succeeds, fails with an error retryable does
// not accept, or ctx ends, pausing with jittered backoff (100 ms doubling
// to 5 s) between calls.
func Retry(ctx context.Context, retryable func(error) bool, fn func() error) error {
	return retry(ctx, retryable, fn)
}

// ListMappings returns every event source mapping of function, reading
// every page (the API returns at most 100 per page) and retrying
// TooManyRequestsException until ctx ends.
func ListMappings(ctx context.Context, api LambdaAPI, function string) ([]Mapping, error) {
	return listMappings(ctx, api, function)
}

// retry calls fn until it succeeds, fails with an error retryable does not
// accept, or ctx ends (then the last error is returned, joined with ctx's).
func retry(ctx context.Context, retryable func(error) bool, fn func() error) error {
	for n := 0; ; n++ {
		err := fn()
		if err == nil || !retryable(err) {
			return err
		}
		if serr := clock.System.Sleep(ctx, backoff(n)); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// listMappings returns every mapping of function, page by page (the API
// returns at most 100 per page).
func listMappings(ctx context.Context, api LambdaAPI, function string) ([]Mapping, error) {
	var out []Mapping
	var marker *string
	for {
		var page *lambda.ListEventSourceMappingsOutput
		err := retry(ctx, throttled, func() error {
			var err error
			page, err = api.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String(function), Marker: marker, MaxItems: aws.Int32(100)})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, c := range page.EventSourceMappings {
			out = append(out, mappingOf(c))
		}
		if aws.ToString(page.NextMarker) == "" {
			return out, nil
		}
		marker = page.NextMarker
	}
}
