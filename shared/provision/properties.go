package provision

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// Property names of the custom resource (Custom::TargetTopics).
const (
	PropServiceToken = "ServiceToken" // set by CloudFormation; ignored
	// PropServiceTimeout is how long CloudFormation waits for the answer.
	// AWS does not say whether CloudFormation passes it on with the other
	// properties; it is accepted and ignored.
	PropServiceTimeout       = "ServiceTimeout"
	PropTopics               = "Topics"
	PropCopyAcls             = "CopyAcls"
	PropTopicConfigOverrides = "TopicConfigOverrides"
	PropReplicationFactor    = "ReplicationFactor"
	PropDeadLetterTopic      = "DeadLetterTopic"
	// PropConsumerGroupIDPrefix is the event source mappings' consumer
	// group prefix: each mapping's group is this prefix + its topic.
	PropConsumerGroupIDPrefix = "ConsumerGroupIdPrefix"
	PropRenamedTopics         = "RenamedTopics"
	// PropTopicPolicies only references the per-topic IAM policies in
	// template.yaml so CloudFormation attaches them first; ignored.
	PropTopicPolicies = "TopicPolicies"
	// PropRenamedTopicPolicies likewise references the renamed topics'
	// IAM policies; ignored.
	PropRenamedTopicPolicies = "RenamedTopicPolicies"
)

// Properties are the custom resource's validated properties.
type Properties struct {
	// Topics to migrate (required): a list, or one comma-separated string.
	Topics []string
	// CopyAcls copies literal topic ACLs without WRITE ("true"/"false").
	CopyAcls bool
	// TopicConfigOverrides are target topic configs set instead of the
	// source's: an object, or a JSON object string ("" and "{}" mean none).
	TopicConfigOverrides map[string]string
	// ReplicationFactor for created topics; -1 (default) is the target's.
	ReplicationFactor int16
	// DeadLetterTopic, when not empty, is created on the target if missing.
	DeadLetterTopic string
	// ConsumerGroupIDPrefix is the prefix of the mappings' consumer group
	// IDs. When the property is present, ParseProperties has checked every
	// prefix + topic against Lambda's ConsumerGroupId limits. A resource
	// created by an earlier template has no such property, so it is
	// optional: a rollback to that template must still succeed.
	ConsumerGroupIDPrefix string
	// RenamedTopics, when given, are the target names of the renamed
	// topics as the stack's IAM policies name them (a list, or one
	// comma-separated string). They must be exactly the targets of the
	// renames in TRANSFORMS, so that the stack grants its rights on the
	// topics the functions use. Nil when the property is absent.
	RenamedTopics []string
}

// PropertyError is an invalid custom resource property. The resource
// fails with its message as the reason.
type PropertyError struct {
	Property string
	Problem  string
}

func (e *PropertyError) Error() string {
	return fmt.Sprintf("invalid property %s: %s", e.Property, e.Problem)
}

// ParseProperties validates raw ResourceProperties. CloudFormation passes
// every scalar as a string, so booleans and numbers are accepted as
// strings too. Unknown properties are refused, so a typo cannot pass
// silently.
func ParseProperties(raw map[string]any) (Properties, error) {
	p := Properties{ReplicationFactor: -1}
	known := map[string]bool{PropServiceToken: true, PropServiceTimeout: true, PropTopics: true, PropCopyAcls: true,
		PropTopicConfigOverrides: true, PropReplicationFactor: true, PropDeadLetterTopic: true, PropTopicPolicies: true,
		PropConsumerGroupIDPrefix: true, PropRenamedTopics: true, PropRenamedTopicPolicies: true}
	var unknown []string
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return p, &PropertyError{Property: strings.Join(unknown, ", "), Problem: "unknown property (known: Topics, CopyAcls, TopicConfigOverrides, ReplicationFactor, DeadLetterTopic, ConsumerGroupIdPrefix, RenamedTopics)"}
	}

	if raw[PropTopics] == nil {
		return p, &PropertyError{Property: PropTopics, Problem: "is required: a list of topic names"}
	}
	var err error
	if p.Topics, err = topicList(PropTopics, raw[PropTopics]); err != nil {
		return p, err
	}
	if raw[PropRenamedTopics] != nil {
		if p.RenamedTopics, err = topicList(PropRenamedTopics, raw[PropRenamedTopics]); err != nil {
			return p, err
		}
		if p.RenamedTopics == nil {
			p.RenamedTopics = []string{}
		}
	}
	if len(p.Topics) == 0 {
		return p, &PropertyError{Property: PropTopics, Problem: "lists no topic"}
	}
	for _, t := range p.Topics {
		if !topicsync.ValidTopicName(t) {
			return p, &PropertyError{Property: PropTopics, Problem: fmt.Sprintf("%q is not a legal Kafka topic name", t)}
		}
	}

	switch v := raw[PropCopyAcls].(type) {
	case nil:
	case bool:
		p.CopyAcls = v
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return p, &PropertyError{Property: PropCopyAcls, Problem: fmt.Sprintf("%q is not true or false", v)}
		}
		p.CopyAcls = b
	default:
		return p, &PropertyError{Property: PropCopyAcls, Problem: fmt.Sprintf("is %T, not true or false", v)}
	}

	switch v := raw[PropTopicConfigOverrides].(type) {
	case nil:
	case string:
		if s := strings.TrimSpace(v); s != "" {
			var m map[string]any
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				return p, &PropertyError{Property: PropTopicConfigOverrides, Problem: "is not a JSON object of config name to value: " + err.Error()}
			}
			if err := p.setOverrides(m); err != nil {
				return p, err
			}
		}
	case map[string]any:
		if err := p.setOverrides(v); err != nil {
			return p, err
		}
	default:
		return p, &PropertyError{Property: PropTopicConfigOverrides, Problem: fmt.Sprintf("is %T, not an object", v)}
	}

	switch v := raw[PropReplicationFactor].(type) {
	case nil:
	case string, float64:
		s := strings.TrimSpace(fmt.Sprint(v))
		if s == "" {
			break
		}
		n, err := strconv.ParseInt(s, 10, 16)
		if err != nil || (n < 1 && n != -1) {
			return p, &PropertyError{Property: PropReplicationFactor, Problem: fmt.Sprintf("%q is not -1 or a positive integer", s)}
		}
		p.ReplicationFactor = int16(n)
	default:
		return p, &PropertyError{Property: PropReplicationFactor, Problem: fmt.Sprintf("is %T, not a number", v)}
	}

	switch v := raw[PropDeadLetterTopic].(type) {
	case nil:
	case string:
		p.DeadLetterTopic = strings.TrimSpace(v)
		if p.DeadLetterTopic != "" && !topicsync.ValidTopicName(p.DeadLetterTopic) {
			return p, &PropertyError{Property: PropDeadLetterTopic, Problem: fmt.Sprintf("%q is not a legal Kafka topic name", v)}
		}
	default:
		return p, &PropertyError{Property: PropDeadLetterTopic, Problem: fmt.Sprintf("is %T, not a string", v)}
	}

	switch v := raw[PropConsumerGroupIDPrefix].(type) {
	case nil:
	case string:
		p.ConsumerGroupIDPrefix = v
		for _, t := range p.Topics {
			if err := CheckConsumerGroupID(t, v+t); err != nil {
				return p, err
			}
		}
	default:
		return p, &PropertyError{Property: PropConsumerGroupIDPrefix, Problem: fmt.Sprintf("is %T, not a string", v)}
	}

	if err := p.Options().Validate(); err != nil {
		if oe, ok := err.(*topicsync.OptionsError); ok {
			return p, &PropertyError{Property: propertyFor(oe.Field), Problem: oe.Problem}
		}
		return p, err
	}
	return p, nil
}

// topicList reads a list of topic names: a list, or one comma-separated
// string. Empty items are dropped.
func topicList(prop string, v any) ([]string, error) {
	var out []string
	switch v := v.(type) {
	case string:
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	case []any:
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, &PropertyError{Property: prop, Problem: fmt.Sprintf("item %d is %T, not a string", i, e)}
			}
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	default:
		return nil, &PropertyError{Property: prop, Problem: fmt.Sprintf("is %T, not a list of topic names", v)}
	}
	return out, nil
}

func (p *Properties) setOverrides(m map[string]any) error {
	p.TopicConfigOverrides = map[string]string{}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			p.TopicConfigOverrides[k] = v
		case float64, bool:
			p.TopicConfigOverrides[k] = fmt.Sprint(v)
		default:
			return &PropertyError{Property: PropTopicConfigOverrides, Problem: fmt.Sprintf("value of %q is %T, not a string", k, v)}
		}
	}
	return nil
}

func propertyFor(field string) string {
	switch field {
	case "ConfigOverrides":
		return PropTopicConfigOverrides
	case "ReplicationFactor":
		return PropReplicationFactor
	}
	return PropTopics
}

// Options turns the properties into topic-sync options.
func (p Properties) Options() topicsync.Options {
	o := topicsync.Options{
		Topics:            p.Topics,
		ConfigOverrides:   p.TopicConfigOverrides,
		ReplicationFactor: p.ReplicationFactor,
		CopyACLs:          p.CopyAcls,
	}
	if p.DeadLetterTopic != "" {
		o.TargetOnlyTopics = []string{p.DeadLetterTopic}
	}
	return o
}

// MaxConsumerGroupIDLength is Lambda's limit on an event source mapping's
// ConsumerGroupId (AmazonManagedKafkaEventSourceConfig and
// SelfManagedKafkaEventSourceConfig: "Maximum length of 200").
const MaxConsumerGroupIDLength = 200

// consumerGroupIDPattern is Lambda's documented pattern for ConsumerGroupId,
// [a-zA-Z0-9-\/*:_+=.@-]*, anchored.
var consumerGroupIDPattern = regexp.MustCompile(`^[a-zA-Z0-9\-/*:_+=.@]*$`)

// ConsumerGroupIDError is a mapping consumer group ID (ConsumerGroupIdPrefix
// + topic) that Lambda would refuse when CloudFormation creates the
// mapping: longer than MaxConsumerGroupIDLength, or with a character
// outside Lambda's pattern. The custom resource fails with it before it
// changes anything, so no mapping and no target topic is created.
type ConsumerGroupIDError struct {
	Topic   string
	GroupID string
	// Length is GroupID's length in characters.
	Length int
	// Limit is MaxConsumerGroupIDLength.
	Limit int
	// BadChar is the first character Lambda does not allow; 0 when the
	// ID is only too long.
	BadChar rune
}

func (e *ConsumerGroupIDError) Error() string {
	if e.BadChar != 0 {
		return fmt.Sprintf("invalid property %s: the consumer group ID %q of topic %q contains %q, which Lambda does not allow in a ConsumerGroupId (allowed: letters, digits and - / * : _ + = . @)",
			PropConsumerGroupIDPrefix, e.GroupID, e.Topic, e.BadChar)
	}
	return fmt.Sprintf("invalid property %s: the consumer group ID of topic %q (prefix + topic) is %d characters, over Lambda's ConsumerGroupId limit of %d; use a shorter %s",
		PropConsumerGroupIDPrefix, e.Topic, e.Length, e.Limit, PropConsumerGroupIDPrefix)
}

// CheckConsumerGroupID returns a *ConsumerGroupIDError when id, the
// consumer group ID of topic's mapping, breaks Lambda's limits.
func CheckConsumerGroupID(topic, id string) error {
	if n := utf8.RuneCountInString(id); n > MaxConsumerGroupIDLength {
		return &ConsumerGroupIDError{Topic: topic, GroupID: id, Length: n, Limit: MaxConsumerGroupIDLength}
	}
	if !consumerGroupIDPattern.MatchString(id) {
		e := &ConsumerGroupIDError{Topic: topic, GroupID: id, Length: utf8.RuneCountInString(id), Limit: MaxConsumerGroupIDLength}
		for _, r := range id {
			if !consumerGroupIDPattern.MatchString(string(r)) {
				e.BadChar = r
				break
			}
		}
		return e
	}
	return nil
}

// options are the topic-sync options with the renames of TRANSFORMS. It
// refuses, with a *transform.TopicMapError, a rename of a topic not in
// Topics (it would never apply: a misspelt name), onto another migrated
// topic or onto the dead-letter topic; and, with a *PropertyError, a
// RenamedTopics that differs from the renames' targets.
func (p Properties) options(renames transform.TopicMap) (topicsync.Options, error) {
	o := p.Options()
	if err := renames.Check(p.Topics, transform.CheckOptions{Strict: true, TargetOnly: o.TargetOnlyTopics}); err != nil {
		return o, fmt.Errorf("TRANSFORMS: %w", err)
	}
	if len(renames) > 0 {
		o.Renames = renames
	}
	if p.RenamedTopics != nil {
		var want []string
		for _, t := range p.Topics {
			if renames.Renamed(t) {
				want = append(want, renames[t])
			}
		}
		got := append([]string{}, p.RenamedTopics...)
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return o, &PropertyError{Property: PropRenamedTopics, Problem: fmt.Sprintf(
				"lists [%s] but the renames in TRANSFORMS give the target topics [%s]; the stack's IAM policies must name the topics the functions write", strings.Join(got, ","), strings.Join(want, ","))}
		}
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o, nil
}
