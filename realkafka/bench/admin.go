package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Admin is a kadm client that owns its kgo client.
type Admin struct {
	*kadm.Client
	cl *kgo.Client
}

// NewAdmin connects an admin client with opts.
func NewAdmin(opts []kgo.Opt) (*Admin, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &Admin{Client: kadm.NewClient(cl), cl: cl}, nil
}

// Close closes the client.
func (a *Admin) Close() { a.cl.Close() }

// EndOffsets returns the end offset of every partition of topic.
func (a *Admin) EndOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	ends, err := a.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// TopicExists reports whether topic exists.
func (a *Admin) TopicExists(ctx context.Context, topic string) (bool, error) {
	td, err := a.ListTopics(ctx, topic)
	if err != nil {
		return false, err
	}
	d, ok := td[topic]
	return ok && d.Err == nil, nil
}

// DeleteTopicsAndWait deletes the topics that exist and waits until the
// metadata no longer lists them.
func (a *Admin) DeleteTopicsAndWait(ctx context.Context, topics ...string) error {
	resp, err := a.DeleteTopics(ctx, topics...)
	if err != nil {
		return err
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("deleting %s: %w", r.Topic, r.Err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		left := 0
		td, err := a.ListTopics(ctx, topics...)
		if err != nil {
			return err
		}
		for _, t := range topics {
			if d, ok := td[t]; ok && d.Err == nil {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v still listed 60s after deletion", topics)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RecreateTopic deletes topic if it exists and creates it with partitions
// and configs, retrying while the deletion completes.
func (a *Admin) RecreateTopic(ctx context.Context, topic string, partitions int32, configs map[string]*string) error {
	if err := a.DeleteTopicsAndWait(ctx, topic); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := a.CreateTopic(ctx, partitions, 1, configs, topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.TopicAlreadyExists) || time.Now().After(deadline) {
			return fmt.Errorf("creating %s: %w", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Wait until every partition has a leader and answers ListOffsets.
	for {
		ends, err := a.EndOffsets(ctx, topic)
		if err == nil && len(ends) == int(partitions) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s not ready: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DeleteGroupIfAny deletes a consumer group, ignoring a missing one.
// The coordinator is not available while the cluster has no
// __consumer_offsets topic yet: then there is no group to delete.
func (a *Admin) DeleteGroupIfAny(ctx context.Context, group string) error {
	resp, err := a.DeleteGroups(ctx, group)
	if errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.CoordinatorLoadInProgress) {
		if ok, _ := a.TopicExists(ctx, "__consumer_offsets"); !ok {
			return nil
		}
		time.Sleep(time.Second)
		resp, err = a.DeleteGroups(ctx, group)
	}
	if err != nil {
		return err
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
			return fmt.Errorf("deleting group %s: %w", group, r.Err)
		}
	}
	return nil
}

func strp(s string) *string { return &s }
