package topicsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ApplyError is one target change that failed. Changes before it stay
// made; re-running Apply picks up where it stopped.
type ApplyError struct {
	Topic string // the topic, or "" for a cluster-wide step
	Step  string // "create topic", "add partitions", "set configs", "create ACL"
	Err   error
}

func (e *ApplyError) Error() string {
	if e.Topic == "" {
		return fmt.Sprintf("%s on the target: %v", e.Step, e.Err)
	}
	return fmt.Sprintf("%s for topic %q on the target: %v", e.Step, e.Topic, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

// Result is what Apply did.
type Result struct {
	// Planned is the first plan: what the target lacked when Apply began.
	Planned Plan
	// Final is the check after the last change. When Apply returns nil,
	// Final.InSync() is true.
	Final Plan

	// The target topics changed, by their target names.
	TopicsCreated   []string
	PartitionsAdded map[string]int32    // target topic -> partitions added
	ConfigsSet      map[string][]string // target topic -> keys set after creation
	ACLsCreated     []ACL
}

// Changed reports whether Apply changed the target at all.
func (r Result) Changed() bool {
	return len(r.TopicsCreated)+len(r.PartitionsAdded)+len(r.ConfigsSet)+len(r.ACLsCreated) > 0
}

// settle is how long Apply waits before re-checking after a change, so
// that a real cluster's metadata has caught up.
var settle = 250 * time.Millisecond

// maxRounds bounds the plan/apply rounds: the first makes the changes, a
// second fixes what only the created topic could tell (its real
// replication factor), a third would mean the target does not converge.
const maxRounds = 3

// Apply makes the target match the source for opts and verifies it.
//
// If any topic is refused (Plan.Err), Apply changes nothing and returns that
// error (a join of *TooManyPartitionsError / *SourceTopicError). Otherwise
// it creates missing topics, adds partitions, sets configs and creates
// ACLs, then checks again; it returns nil only when the final check is in
// sync, else a *NotInSyncError or an *ApplyError. Apply never touches the
// source and never deletes anything. Re-running it is a no-op.
func Apply(ctx context.Context, source, target *kadm.Client, opts Options) (Result, error) {
	res := Result{PartitionsAdded: map[string]int32{}, ConfigsSet: map[string][]string{}}
	for round := 0; ; round++ {
		if round > 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(settle):
			}
		}
		plan, err := Check(ctx, source, target, opts)
		if err != nil {
			return res, err
		}
		if round == 0 {
			res.Planned = plan
		}
		res.Final = plan
		if err := plan.Err(); err != nil {
			return res, err
		}
		if plan.InSync() {
			return res, nil
		}
		if round == maxRounds-1 {
			return res, plan.Verify()
		}
		if err := apply(ctx, target, opts, plan, &res); err != nil {
			return res, err
		}
	}
}

func apply(ctx context.Context, target *kadm.Client, opts Options, plan Plan, res *Result) error {
	rf := opts.ReplicationFactor
	if rf <= 0 {
		rf = -1
	}
	for _, t := range plan.Topics {
		switch {
		case t.Create:
			configs := make(map[string]*string, len(t.Configs))
			for _, c := range t.Configs {
				configs[c.Key] = kadm.StringPtr(c.Want)
			}
			r, err := target.CreateTopic(ctx, t.PartitionsToAdd, rf, configs, t.TargetTopic)
			if err == nil {
				err = r.Err
				if err != nil && r.ErrMessage != "" {
					err = fmt.Errorf("%w: %s", err, r.ErrMessage)
				}
			}
			if errors.Is(err, kerr.TopicAlreadyExists) {
				continue // created meanwhile; the next check compares it
			}
			if err != nil {
				return &ApplyError{Topic: t.TargetTopic, Step: "create topic", Err: err}
			}
			res.TopicsCreated = append(res.TopicsCreated, t.TargetTopic)
			continue
		case t.PartitionsToAdd > 0:
			rs, err := target.CreatePartitions(ctx, int(t.PartitionsToAdd), t.TargetTopic)
			if err == nil {
				err = rs.Error()
			}
			if err != nil {
				return &ApplyError{Topic: t.TargetTopic, Step: "add partitions", Err: err}
			}
			res.PartitionsAdded[t.TargetTopic] += t.PartitionsToAdd
		}
		if len(t.Configs) > 0 {
			alter := make([]kadm.AlterConfig, len(t.Configs))
			keys := make([]string, len(t.Configs))
			for i, c := range t.Configs {
				alter[i] = kadm.AlterConfig{Op: kadm.SetConfig, Name: c.Key, Value: kadm.StringPtr(c.Want)}
				keys[i] = c.Key
			}
			rs, err := target.AlterTopicConfigs(ctx, alter, t.TargetTopic)
			if err == nil {
				for _, r := range rs {
					if r.Err != nil {
						err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
						break
					}
				}
			}
			if err != nil {
				return &ApplyError{Topic: t.TargetTopic, Step: "set configs", Err: err}
			}
			res.ConfigsSet[t.TargetTopic] = append(res.ConfigsSet[t.TargetTopic], keys...)
		}
	}
	for _, a := range plan.ACLs {
		if err := createACL(ctx, target, a); err != nil {
			return &ApplyError{Topic: a.Topic, Step: "create ACL", Err: err}
		}
		res.ACLsCreated = append(res.ACLsCreated, a)
	}
	return nil
}
