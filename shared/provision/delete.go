package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/reconcile"
)

// DeleteMappings deletes the replicator's event source mappings that
// this stack's reconciler created: those tagged kmig:stack = STACK_NAME,
// or, without a STACK_NAME, those tagged kmig:topic. Mappings without
// such a tag (made by hand on the stack's function) are kept and
// returned. It never touches a topic. Throttling and a mapping in
// transition are retried until ctx ends; a mapping already gone counts as
// deleted.
func DeleteMappings(ctx context.Context, api reconcile.LambdaAPI, cfg reconcile.Config) (deleted, kept []string, err error) {
	ms, err := reconcile.ListMappings(ctx, api, cfg.ReplicatorFunction)
	if err != nil {
		return nil, nil, fmt.Errorf("listing the event source mappings of %s: %w", cfg.ReplicatorFunction, err)
	}
	var errs []error
	for _, m := range ms {
		var tags map[string]string
		err := reconcile.Retry(ctx, throttled, func() error {
			out, err := api.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(m.Arn)})
			if err == nil {
				tags = out.Tags
			}
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("reading the tags of mapping %s: %w", m.UUID, err))
			continue
		}
		ours := tags[reconcile.TagStack] == cfg.StackName && cfg.StackName != "" || cfg.StackName == "" && tags[reconcile.TagTopic] != ""
		if !ours {
			kept = append(kept, m.UUID)
			continue
		}
		err = reconcile.Retry(ctx, reconcile.Busy, func() error {
			_, err := api.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: aws.String(m.UUID)})
			return err
		})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			errs = append(errs, fmt.Errorf("deleting mapping %s of topic %q: %w", m.UUID, m.Topic, err))
			continue
		}
		deleted = append(deleted, m.UUID)
	}
	return deleted, kept, errors.Join(errs...)
}

func throttled(err error) bool {
	var t *types.TooManyRequestsException
	return errors.As(err, &t)
}
