package reconcilerun

import (
	"context"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
)

// CountingAPI is a reconcile.LambdaAPI that counts the calls it passes on.
type CountingAPI struct {
	reconcile.LambdaAPI
	calls, creates atomic.Int64
}

// Calls reports how many calls were made.
func (c *CountingAPI) Calls() int64 { return c.calls.Load() }

// Creates reports how many CreateEventSourceMapping calls were made.
func (c *CountingAPI) Creates() int64 { return c.creates.Load() }

func (c *CountingAPI) ListEventSourceMappings(ctx context.Context, in *lambda.ListEventSourceMappingsInput, opts ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error) {
	c.calls.Add(1)
	return c.LambdaAPI.ListEventSourceMappings(ctx, in, opts...)
}

func (c *CountingAPI) GetEventSourceMapping(ctx context.Context, in *lambda.GetEventSourceMappingInput, opts ...func(*lambda.Options)) (*lambda.GetEventSourceMappingOutput, error) {
	c.calls.Add(1)
	return c.LambdaAPI.GetEventSourceMapping(ctx, in, opts...)
}

func (c *CountingAPI) CreateEventSourceMapping(ctx context.Context, in *lambda.CreateEventSourceMappingInput, opts ...func(*lambda.Options)) (*lambda.CreateEventSourceMappingOutput, error) {
	c.calls.Add(1)
	c.creates.Add(1)
	return c.LambdaAPI.CreateEventSourceMapping(ctx, in, opts...)
}

func (c *CountingAPI) UpdateEventSourceMapping(ctx context.Context, in *lambda.UpdateEventSourceMappingInput, opts ...func(*lambda.Options)) (*lambda.UpdateEventSourceMappingOutput, error) {
	c.calls.Add(1)
	return c.LambdaAPI.UpdateEventSourceMapping(ctx, in, opts...)
}

func (c *CountingAPI) DeleteEventSourceMapping(ctx context.Context, in *lambda.DeleteEventSourceMappingInput, opts ...func(*lambda.Options)) (*lambda.DeleteEventSourceMappingOutput, error) {
	c.calls.Add(1)
	return c.LambdaAPI.DeleteEventSourceMapping(ctx, in, opts...)
}

func (c *CountingAPI) ListTags(ctx context.Context, in *lambda.ListTagsInput, opts ...func(*lambda.Options)) (*lambda.ListTagsOutput, error) {
	c.calls.Add(1)
	return c.LambdaAPI.ListTags(ctx, in, opts...)
}
