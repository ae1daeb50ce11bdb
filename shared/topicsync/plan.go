package topicsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TooManyPartitionsError refuses a target topic that has more partitions than
// its source topic: records could not keep their partition. The operator must
// delete and re-create the target topic, or leave the topic out.
type TooManyPartitionsError struct {
	Topic string
	// TargetTopic is the topic's name on the target, when renamed.
	TargetTopic      string
	SourcePartitions int32
	TargetPartitions int32
}

func (e *TooManyPartitionsError) Error() string {
	return fmt.Sprintf("topic %s: target has %d partitions but source has %d; "+
		"partitions cannot be preserved (target partition = source partition), "+
		"so delete and re-create the target topic or leave the topic out",
		topicNames(e.Topic, e.TargetTopic), e.TargetPartitions, e.SourcePartitions)
}

// topicNames names a topic in messages: "a", or "a" (target "b") when it
// is renamed.
func topicNames(src, dst string) string {
	if dst == "" || dst == src {
		return fmt.Sprintf("%q", src)
	}
	return fmt.Sprintf("%q (target %q)", src, dst)
}

// SourceTopicError says a migrated topic could not be read on the source
// (usually: it does not exist, or the identity may not describe it).
type SourceTopicError struct {
	Topic string
	Err   error
}

func (e *SourceTopicError) Error() string {
	return fmt.Sprintf("topic %q on the source: %v", e.Topic, e.Err)
}

func (e *SourceTopicError) Unwrap() error { return e.Err }

// NotInSyncError says the target does not yet match the source; Pending
// lists what Apply would change, one line each.
type NotInSyncError struct {
	Pending []string
}

func (e *NotInSyncError) Error() string {
	return "target topics are not in sync with the source: " + strings.Join(e.Pending, "; ")
}

// ConfigChange is one target topic config to set.
type ConfigChange struct {
	Key    string
	Source string // the source's effective value ("" for target-only rules)
	Target string // the target's effective value now ("" if the topic is missing)
	Want   string // what Apply sets
}

// TopicPlan is what the target needs for one topic.
type TopicPlan struct {
	// Topic is the source topic (for target-only topics, the target's).
	Topic string
	// TargetTopic is the topic's name on the target: Topic, unless the
	// topic is renamed (Options.Renames). Apply changes this topic.
	TargetTopic string
	// TargetOnly marks a topic created on the target only (dead letters).
	TargetOnly       bool
	SourcePartitions int32 // 0 for target-only topics
	TargetPartitions int32 // 0 when the topic is missing on the target
	// ReplicationFactor is the target topic's (or, when Create, the one
	// planned; -1 means the cluster default).
	ReplicationFactor int16
	Create            bool
	// PartitionsToAdd is how many partitions Apply adds (never negative).
	PartitionsToAdd int32
	Configs         []ConfigChange
	// Notes are facts the operator should know that need no change.
	Notes []string
	// Err is a *TooManyPartitionsError or *SourceTopicError: this topic
	// cannot be synchronised and Apply refuses to change anything.
	Err error
}

// Changes reports whether Apply would change this topic.
func (t TopicPlan) Changes() bool {
	return t.Create || t.PartitionsToAdd > 0 || len(t.Configs) > 0
}

// ACL is one topic ACL to create on the target.
type ACL struct {
	Topic      string
	Principal  string
	Host       string
	Operation  kadm.ACLOperation
	Permission kmsg.ACLPermissionType
}

func (a ACL) String() string {
	return fmt.Sprintf("%s %s %s on topic %q from %s", a.Permission, a.Principal, a.Operation, a.Topic, a.Host)
}

// Plan is the difference between source and target. It is a value: it
// still holds every good topic when some topics are refused.
type Plan struct {
	Topics []TopicPlan
	// ACLs are source ACLs (already translated by MirrorMaker 2's rules)
	// missing on the target. Empty unless Options.CopyACLs.
	ACLs []ACL
	// SkippedACLs counts source ACLs left out by the rules (WRITE).
	SkippedACLs int
	// TargetBrokers is the number of brokers the target reported.
	TargetBrokers int
	// Notes are cluster-wide facts the operator should know.
	Notes []string
}

// Err joins every topic's refusal (each a *TooManyPartitionsError or
// *SourceTopicError), or returns nil when every topic can be synchronised.
func (p Plan) Err() error {
	var errs []error
	for _, t := range p.Topics {
		if t.Err != nil {
			errs = append(errs, t.Err)
		}
	}
	return errors.Join(errs...)
}

// InSync reports whether the target already matches: no refusals and
// nothing for Apply to do.
func (p Plan) InSync() bool { return p.Err() == nil && len(p.Pending()) == 0 }

// Verify returns nil when the target matches the source, Err() when some
// topic is refused, and otherwise a *NotInSyncError listing what is
// pending. The cutover's Validate step uses it.
func (p Plan) Verify() error {
	if err := p.Err(); err != nil {
		return err
	}
	if pending := p.Pending(); len(pending) > 0 {
		return &NotInSyncError{Pending: pending}
	}
	return nil
}

// Pending describes each change Apply would make, one line each, in a
// stable order.
func (p Plan) Pending() []string {
	var out []string
	for _, t := range p.Topics {
		if t.Err != nil {
			continue
		}
		name := fmt.Sprintf("%q", t.TargetTopic)
		if t.TargetTopic != t.Topic {
			name += fmt.Sprintf(" (renamed from source topic %q)", t.Topic)
		}
		if t.Create {
			out = append(out, fmt.Sprintf("create topic %s with %d partitions", name, t.PartitionsToAdd))
		} else if t.PartitionsToAdd > 0 {
			out = append(out, fmt.Sprintf("add %d partitions to topic %s (%d -> %d)", t.PartitionsToAdd, name, t.TargetPartitions, t.TargetPartitions+t.PartitionsToAdd))
		}
		for _, c := range t.Configs {
			if t.Create {
				continue // part of the create
			}
			out = append(out, fmt.Sprintf("set %s=%s on topic %s (now %s)", c.Key, c.Want, name, orNone(c.Target)))
		}
	}
	for _, a := range p.ACLs {
		out = append(out, "create ACL "+a.String())
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "unset"
	}
	return s
}

// Check compares source and target for opts and returns the plan. It only
// reads: it never changes either cluster. The error is for options and I/O
// failures only; refused topics are in Plan.Err.
func Check(ctx context.Context, source, target *kadm.Client, opts Options) (Plan, error) {
	if err := opts.Validate(); err != nil {
		return Plan{}, err
	}
	var plan Plan

	// Metadata must be fresh, not kgo's cache (up to MetadataMinAge old):
	// asking for authorized operations makes kadm bypass the cache.
	fresh := kadm.WithAuthorizedOps(ctx)
	brokers, err := target.ListBrokers(fresh)
	if err != nil {
		return plan, fmt.Errorf("listing target brokers: %w", err)
	}
	plan.TargetBrokers = len(brokers)

	srcTopics, err := source.ListTopics(fresh, opts.Topics...)
	if err != nil {
		return plan, fmt.Errorf("describing source topics: %w", err)
	}
	var allTarget []string
	for _, t := range opts.Topics {
		allTarget = append(allTarget, opts.TargetTopic(t))
	}
	allTarget = append(allTarget, opts.TargetOnlyTopics...)
	tgtTopics, err := target.ListTopics(fresh, allTarget...)
	if err != nil {
		return plan, fmt.Errorf("describing target topics: %w", err)
	}

	var srcPresent, tgtPresent []string
	for _, t := range opts.Topics {
		if d, ok := srcTopics[t]; ok && d.Err == nil {
			srcPresent = append(srcPresent, t)
		}
	}
	for _, t := range allTarget {
		if d, ok := tgtTopics[t]; ok && d.Err == nil {
			tgtPresent = append(tgtPresent, t)
		}
	}
	srcConfigs, err := describeConfigs(ctx, source, srcPresent)
	if err != nil {
		return plan, fmt.Errorf("describing source topic configs: %w", err)
	}
	tgtConfigs, err := describeConfigs(ctx, target, tgtPresent)
	if err != nil {
		return plan, fmt.Errorf("describing target topic configs: %w", err)
	}

	var maxSourcePartitions int32
	for _, name := range opts.Topics {
		tgtName := opts.TargetTopic(name)
		tp := TopicPlan{Topic: name, TargetTopic: tgtName}
		sd := srcTopics[name]
		switch {
		case sd.Err != nil:
			tp.Err = &SourceTopicError{Topic: name, Err: sd.Err}
		case sd.Topic == "":
			tp.Err = &SourceTopicError{Topic: name, Err: kerr.UnknownTopicOrPartition}
		}
		if tp.Err != nil {
			plan.Topics = append(plan.Topics, tp)
			continue
		}
		tp.SourcePartitions = int32(len(sd.Partitions))
		maxSourcePartitions = max(maxSourcePartitions, tp.SourcePartitions)

		td, exists := tgtTopics[tgtName]
		exists = exists && td.Err == nil && td.Topic != ""
		if exists {
			tp.TargetPartitions = int32(len(td.Partitions))
			tp.ReplicationFactor = replicationFactor(td)
			if tp.TargetPartitions > tp.SourcePartitions {
				tp.Err = &TooManyPartitionsError{Topic: name, TargetTopic: tgtName, SourcePartitions: tp.SourcePartitions, TargetPartitions: tp.TargetPartitions}
				plan.Topics = append(plan.Topics, tp)
				continue
			}
			tp.PartitionsToAdd = tp.SourcePartitions - tp.TargetPartitions
		} else if td.Err != nil && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			return plan, fmt.Errorf("describing target topic %q: %w", tgtName, td.Err)
		} else {
			tp.Create = true
			tp.PartitionsToAdd = tp.SourcePartitions
			tp.ReplicationFactor = plannedRF(opts.ReplicationFactor, plan.TargetBrokers)
		}

		var tgtCfg map[string]kadm.Config
		if exists {
			tgtCfg = tgtConfigs[tgtName]
		}
		tp.Configs, tp.Notes = planConfigs(srcConfigs[name], tgtCfg, exists, tp.ReplicationFactor, opts.ConfigOverrides)
		plan.Topics = append(plan.Topics, tp)
	}

	for _, name := range opts.TargetOnlyTopics {
		tp := TopicPlan{Topic: name, TargetTopic: name, TargetOnly: true}
		td, exists := tgtTopics[name]
		if exists && td.Err == nil && td.Topic != "" {
			tp.TargetPartitions = int32(len(td.Partitions))
			tp.ReplicationFactor = replicationFactor(td)
		} else if td.Err != nil && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			return plan, fmt.Errorf("describing target topic %q: %w", name, td.Err)
		} else {
			tp.Create = true
			tp.PartitionsToAdd = opts.TargetOnlyPartitions
			if tp.PartitionsToAdd == 0 {
				tp.PartitionsToAdd = max(maxSourcePartitions, 1)
			}
			tp.ReplicationFactor = plannedRF(opts.ReplicationFactor, plan.TargetBrokers)
		}
		plan.Topics = append(plan.Topics, tp)
	}

	if opts.CopyACLs {
		acls, skipped, notes, err := planACLs(ctx, source, target, srcPresent, opts.TargetTopic)
		if err != nil {
			return plan, err
		}
		plan.ACLs, plan.SkippedACLs = acls, skipped
		plan.Notes = append(plan.Notes, notes...)
	}
	return plan, nil
}

// describeConfigs returns each topic's configs by key.
func describeConfigs(ctx context.Context, cl *kadm.Client, topics []string) (map[string]map[string]kadm.Config, error) {
	out := map[string]map[string]kadm.Config{}
	if len(topics) == 0 {
		return out, nil
	}
	rcs, err := cl.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, err
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return nil, fmt.Errorf("topic %q: %w", rc.Name, rc.Err)
		}
		m := make(map[string]kadm.Config, len(rc.Configs))
		for _, c := range rc.Configs {
			m[c.Key] = c
		}
		out[rc.Name] = m
	}
	return out, nil
}

// replicationFactor is the smallest replica count among the topic's
// partitions, the one min.insync.replicas must not exceed.
func replicationFactor(td kadm.TopicDetail) int16 {
	rf := int16(0)
	for _, p := range td.Partitions {
		if n := int16(len(p.Replicas)); rf == 0 || n < rf {
			rf = n
		}
	}
	return rf
}

// plannedRF estimates the replication factor of a topic about to be created:
// the requested one, else Kafka's usual default of 3 capped by the broker
// count. Apply re-checks after creating, with the real factor.
func plannedRF(requested int16, brokers int) int16 {
	if requested > 0 {
		return requested
	}
	return int16(min(3, max(brokers, 1)))
}

// planConfigs returns the target config changes for one migrated topic.
func planConfigs(src, tgt map[string]kadm.Config, exists bool, rf int16, overrides map[string]string) ([]ConfigChange, []string) {
	var changes []ConfigChange
	var notes []string
	want := map[string]string{}
	srcVal := map[string]string{}

	for _, k := range CopiedConfigs {
		if c, ok := src[k]; ok && c.Value != nil && !c.Sensitive {
			want[k], srcVal[k] = *c.Value, *c.Value
		}
	}
	for _, k := range ExplicitConfigs {
		if c, ok := src[k]; ok && c.Value != nil && !c.Sensitive && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			want[k], srcVal[k] = *c.Value, *c.Value
		}
	}
	for k, v := range overrides {
		want[k] = v
	}
	if v, ok := want["min.insync.replicas"]; ok && rf > 0 {
		if n, err := strconv.Atoi(v); err == nil && n > int(rf) {
			want["min.insync.replicas"] = strconv.Itoa(int(rf))
			notes = append(notes, fmt.Sprintf("min.insync.replicas %d capped to the target replication factor %d", n, rf))
		}
	}
	if c, ok := src[TimestampTypeConfig]; ok && c.Value != nil && *c.Value != "CreateTime" {
		notes = append(notes, fmt.Sprintf("source uses %s=%s; the target keeps CreateTime so replicated timestamps survive (switch it after cutover if needed)", TimestampTypeConfig, *c.Value))
	}
	want[TimestampTypeConfig] = "CreateTime"

	keys := sortedKeys(want)
	for _, k := range keys {
		cur := ""
		if c, ok := tgt[k]; ok && c.Value != nil {
			cur = *c.Value
		}
		if exists && sameConfig(k, cur, want[k]) {
			continue
		}
		changes = append(changes, ConfigChange{Key: k, Source: srcVal[k], Target: cur, Want: want[k]})
	}
	return changes, notes
}

// sameConfig compares config values, treating list configs as sets.
func sameConfig(key, a, b string) bool {
	if key == "cleanup.policy" {
		return normList(a) == normList(b)
	}
	return strings.TrimSpace(a) == strings.TrimSpace(b)
}

func normList(s string) string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
