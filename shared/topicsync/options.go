// Package topicsync makes the target cluster's topics fit to receive a
// partition-preserving copy of the source's topics, and checks that they do.
//
// For every migrated topic it compares the source and the target and plans:
// create the target topic with the source's partition count and the configs
// that matter; add partitions where the target has fewer; set configs that
// differ. It refuses a target that has more partitions than the source,
// since target partition = source partition could then not hold. Optionally
// it copies literal topic ACLs from source to target, following MirrorMaker
// 2's rules (no WRITE; ALLOW ALL becomes ALLOW READ).
//
// [Check] only reads and never changes either cluster: the cutover's
// Validate step calls it. [Apply] changes only the target, never the
// source, never deletes a topic, partition, config or ACL, and is a no-op
// when [Check] finds nothing to do.
package topicsync

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// CopiedConfigs are topic configs whose effective source value (explicit,
// broker default or static) is copied to the target whenever the target's
// effective value differs. min.insync.replicas is capped (see Plan).
var CopiedConfigs = []string{
	"cleanup.policy",
	"compression.type",
	"max.message.bytes",
	"min.insync.replicas",
	"retention.bytes",
	"retention.ms",
	"segment.bytes",
	"segment.ms",
}

// ExplicitConfigs are topic configs copied only when the source topic sets
// them itself (a dynamic topic config); otherwise the target's own default
// stands.
var ExplicitConfigs = []string{
	"delete.retention.ms",
	"index.interval.bytes",
	"max.compaction.lag.ms",
	"message.timestamp.after.max.ms",
	"message.timestamp.before.max.ms",
	"min.cleanable.dirty.ratio",
	"min.compaction.lag.ms",
	"segment.index.bytes",
	"segment.jitter.ms",
}

// TimestampTypeConfig is always planned as CreateTime on the target, whatever
// the source uses: the replicator writes each record with its source
// timestamp, and a LogAppendTime target would overwrite it. A source on
// LogAppendTime gets a note in the plan.
const TimestampTypeConfig = "message.timestamp.type"

// Options says what to synchronise.
type Options struct {
	// Topics are the source topics to migrate, by name. Required.
	Topics []string
	// TargetOnlyTopics are created on the target if missing (with
	// TargetOnlyPartitions partitions) and otherwise left alone; the source
	// is not consulted. The replicator's dead-letter topic goes here.
	TargetOnlyTopics []string
	// TargetOnlyPartitions is the partition count for a missing target-only
	// topic; 0 means the largest source partition count among Topics (so a
	// partition-preserving writer always has its partition).
	TargetOnlyPartitions int32
	// ConfigOverrides are set on every migrated target topic instead of
	// the source's value. Keys must be in CopiedConfigs or ExplicitConfigs.
	ConfigOverrides map[string]string
	// ReplicationFactor for topics this creates; 0 or -1 means the target
	// cluster's default.replication.factor.
	ReplicationFactor int16
	// CopyACLs copies the source's literal topic ACLs for Topics to the
	// target, without WRITE, as MirrorMaker 2 does. A renamed topic's ACLs
	// are copied onto its target name.
	CopyACLs bool
	// Renames maps a source topic to the name it has on the target (the
	// replicator's rename transforms, transform.TopicMap); topics not in
	// it keep their name. Every target-side read and change uses the
	// target name.
	Renames map[string]string
}

// TargetTopic returns the target name of source topic src.
func (o Options) TargetTopic(src string) string {
	if t, ok := o.Renames[src]; ok {
		return t
	}
	return src
}

// OptionsError is an invalid option; Field names it.
type OptionsError struct {
	Field   string
	Problem string
}

func (e *OptionsError) Error() string { return fmt.Sprintf("topicsync: %s: %s", e.Field, e.Problem) }

var legalTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// ValidTopicName reports whether name is a legal Kafka topic name.
func ValidTopicName(name string) bool {
	return legalTopic.MatchString(name) && name != "." && name != ".."
}

// Validate reports the first invalid option as an *OptionsError.
func (o Options) Validate() error {
	if len(o.Topics) == 0 {
		return &OptionsError{Field: "Topics", Problem: "at least one topic is required"}
	}
	seen := map[string]bool{}
	for _, list := range [][]string{o.Topics, o.TargetOnlyTopics} {
		for _, t := range list {
			if !ValidTopicName(t) {
				return &OptionsError{Field: "Topics", Problem: fmt.Sprintf("%q is not a legal Kafka topic name ([a-zA-Z0-9._-], 1 to 249 characters)", t)}
			}
			if seen[t] {
				return &OptionsError{Field: "Topics", Problem: fmt.Sprintf("%q is listed twice", t)}
			}
			seen[t] = true
		}
	}
	// Each target topic receives one source topic: target names are
	// distinct, and legal.
	onTarget := map[string]string{}
	for _, t := range o.TargetOnlyTopics {
		onTarget[t] = t + " (target only)"
	}
	for _, src := range o.Topics {
		dst := o.TargetTopic(src)
		if !ValidTopicName(dst) {
			return &OptionsError{Field: "Renames", Problem: fmt.Sprintf("%q (the target name of %q) is not a legal Kafka topic name", dst, src)}
		}
		if other, dup := onTarget[dst]; dup {
			return &OptionsError{Field: "Renames", Problem: fmt.Sprintf("%q and %s would both be written to target topic %q", src, other, dst)}
		}
		onTarget[dst] = fmt.Sprintf("%q", src)
	}
	if o.TargetOnlyPartitions < 0 {
		return &OptionsError{Field: "TargetOnlyPartitions", Problem: "must not be negative"}
	}
	allowed := map[string]bool{}
	for _, k := range append(append([]string{}, CopiedConfigs...), ExplicitConfigs...) {
		allowed[k] = true
	}
	for _, k := range sortedKeys(o.ConfigOverrides) {
		if !allowed[k] {
			return &OptionsError{Field: "ConfigOverrides", Problem: fmt.Sprintf("%q cannot be overridden; allowed: %s", k, strings.Join(sortedKeysBool(allowed), ", "))}
		}
		if strings.TrimSpace(o.ConfigOverrides[k]) == "" {
			return &OptionsError{Field: "ConfigOverrides", Problem: fmt.Sprintf("%q has an empty value", k)}
		}
	}
	if o.ReplicationFactor < -1 {
		return &OptionsError{Field: "ReplicationFactor", Problem: "must be -1 (cluster default) or positive"}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeysBool(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
