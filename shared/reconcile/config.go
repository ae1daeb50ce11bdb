package reconcile

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/rundetails"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/selection"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/topicsync"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// Environment variables the reconciler reads (besides the SOURCE_* and
// TARGET_* connection variables of kafkaconn.FromEnv).
const (
	EnvTopicPatterns          = "TOPIC_PATTERNS"
	EnvExcludedTopicPatterns  = "EXCLUDED_TOPIC_PATTERNS"
	EnvConsumerGroupIDPrefix  = "CONSUMER_GROUP_ID_PREFIX"
	EnvReplicatorFunctionName = "REPLICATOR_FUNCTION_NAME"
	EnvSourceKind             = "SOURCE_KIND"
	EnvSourceClusterArn       = "SOURCE_CLUSTER_ARN"
	EnvSubnetIDs              = "SUBNET_IDS"
	EnvSecurityGroupIDs       = "SECURITY_GROUP_IDS"
	EnvBatchSize              = "BATCH_SIZE"
	EnvMaximumBatchingWindow  = "MAXIMUM_BATCHING_WINDOW_SECONDS"
	EnvStartingPosition       = "STARTING_POSITION"
	EnvStartingPositionTime   = "STARTING_POSITION_TIMESTAMP"
	EnvDeadLetterTopic        = "DEAD_LETTER_TOPIC"
	EnvRecordErrorPolicy      = "RECORD_ERROR_POLICY"
	EnvCutoverDetailsTopic    = "CUTOVER_DETAILS_TOPIC"
	EnvStackName              = "STACK_NAME"
	EnvMetricsNamespace       = "METRICS_NAMESPACE"
	EnvTopicConfigOverrides   = "TOPIC_CONFIG_OVERRIDES"
	EnvTopicReplicationFactor = "TOPIC_REPLICATION_FACTOR"
	EnvCopyACLs               = "COPY_ACLS"
	EnvTransforms             = "TRANSFORMS"
)

// Source kinds (SOURCE_KIND). "SelfManaged", the template parameter's
// spelling, is accepted for SelfManaged too.
const (
	SourceMSK         = "MSK"
	SourceSelfManaged = "SELF_MANAGED"
)

// Starting positions a mapping's group is seeded at (STARTING_POSITION).
// LATEST is not offered: a mapping starting at LATEST can miss records
// written while it is being created.
const (
	TrimHorizon = "TRIM_HORIZON"
	AtTimestamp = "AT_TIMESTAMP"
)

// Defaults, as the template's.
const (
	DefaultConsumerGroupIDPrefix = "kmig-"
	DefaultDeadLetterTopic       = "kmig.dead-letter"
	DefaultMetricsNamespace      = "KafkaMskMigrator"
	DefaultBatchSize             = 500
	DefaultBatchingWindowSeconds = 1
)

// Config is the reconciler's configuration.
type Config struct {
	// Include and Exclude are the topic patterns (TOPIC_PATTERNS,
	// EXCLUDED_TOPIC_PATTERNS); Selection is them parsed, with the
	// dead-letter and details topics reserved.
	Include, Exclude []string
	Selection        *selection.Selection
	// GroupIDPrefix + topic is each mapping's consumer group.
	GroupIDPrefix string
	// ReplicatorFunction is the function the mappings invoke.
	ReplicatorFunction string
	// SourceKind is SourceMSK or SourceSelfManaged.
	SourceKind string
	// SourceClusterArn is the MSK cluster's ARN (MSK only).
	SourceClusterArn string
	// Source and Target are the clusters' connections. Source.Auth,
	// SecretARN and CASecretARN also give the mappings' source access
	// configurations; Source.Bootstrap a self-managed mapping's brokers.
	Source, Target kafkaconn.Config
	// SubnetIDs and SecurityGroupIDs are a self-managed mapping's VPC.
	SubnetIDs, SecurityGroupIDs []string
	// BatchSize (1..10000) and BatchingWindowSeconds (0..300) are every
	// mapping's.
	BatchSize             int32
	BatchingWindowSeconds int32
	// StartingPosition is TrimHorizon or AtTimestamp; StartingTime is the
	// AtTimestamp time (whole seconds).
	StartingPosition string
	StartingTime     time.Time
	// DeadLetterTopic and DetailsTopic are never selected.
	// CreateDeadLetterTopic (RECORD_ERROR_POLICY=dead-letter) also creates
	// the dead-letter topic on the target.
	DeadLetterTopic       string
	CreateDeadLetterTopic bool
	DetailsTopic          string
	// StackName tags each mapping (kmig:stack); may be empty.
	StackName string
	// MetricsNamespace is the EMF namespace of the run's report.
	MetricsNamespace string
	// ConfigOverrides, ReplicationFactor and CopyACLs shape target topics
	// as in topicsync.Options.
	ConfigOverrides   map[string]string
	ReplicationFactor int16
	CopyACLs          bool
	// Renames are the rename transforms of TRANSFORMS.
	Renames transform.TopicMap
}

// GroupID is the consumer group of topic's mapping.
func (c Config) GroupID(topic string) string { return c.GroupIDPrefix + topic }

// mskArn is the documented shape of an MSK cluster ARN.
var mskArn = regexp.MustCompile(`^arn:aws[a-z-]*:kafka:[a-z0-9-]+:\d{12}:cluster/[^/]+/[^/]+$`)

// LoadConfig reads the reconciler's environment. Every problem is a
// *config.Error naming its variable; all of them are returned, joined.
// It never echoes a secret (only ARNs of secrets are read).
func LoadConfig(env config.Env) (Config, error) {
	var c Config
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	c.Source, err = kafkaconn.FromEnv(env, "SOURCE")
	add(err)
	c.Target, err = kafkaconn.FromEnv(env, "TARGET")
	add(err)

	c.Include = env.List(EnvTopicPatterns)
	c.Exclude = env.List(EnvExcludedTopicPatterns)
	c.DeadLetterTopic = env.String(EnvDeadLetterTopic, DefaultDeadLetterTopic)
	c.DetailsTopic = env.String(EnvCutoverDetailsTopic, rundetails.DefaultTopic)
	for _, v := range []struct{ name, topic string }{{EnvDeadLetterTopic, c.DeadLetterTopic}, {EnvCutoverDetailsTopic, c.DetailsTopic}} {
		if !topicsync.ValidTopicName(v.topic) {
			add(&config.Error{Variable: v.name, Problem: fmt.Sprintf("%q is not a legal Kafka topic name", v.topic)})
		}
	}
	if len(c.Include) == 0 {
		add(&config.Error{Variable: EnvTopicPatterns, Problem: "must be set: comma-separated topic names or regular expressions"})
	} else if c.Selection, err = selection.Parse(c.Include, c.Exclude, []string{c.DeadLetterTopic, c.DetailsTopic}); err != nil {
		v := EnvTopicPatterns
		var pe *selection.PatternError
		if errors.As(err, &pe) && pe.List == "exclude" {
			v = EnvExcludedTopicPatterns
		}
		add(&config.Error{Variable: v, Problem: "invalid topic pattern", Err: err})
	}
	policy, err := env.OneOf(EnvRecordErrorPolicy, "fail-batch", "fail-batch", "dead-letter")
	add(err)
	c.CreateDeadLetterTopic = policy == "dead-letter"

	c.GroupIDPrefix = env.String(EnvConsumerGroupIDPrefix, DefaultConsumerGroupIDPrefix)
	if err := CheckGroupID("", c.GroupIDPrefix); err != nil {
		add(&config.Error{Variable: EnvConsumerGroupIDPrefix, Problem: err.Error()})
	}
	c.ReplicatorFunction, err = env.Required(EnvReplicatorFunctionName, "the replicator function the mappings invoke")
	add(err)

	switch k := strings.ToUpper(strings.ReplaceAll(env.String(EnvSourceKind, SourceSelfManaged), "-", "_")); k {
	case SourceMSK:
		c.SourceKind = SourceMSK
	case SourceSelfManaged, "SELFMANAGED":
		c.SourceKind = SourceSelfManaged
	default:
		add(&config.Error{Variable: EnvSourceKind, Problem: fmt.Sprintf("%q is not MSK or SELF_MANAGED", k)})
	}
	c.SourceClusterArn = env.String(EnvSourceClusterArn, "")
	switch {
	case c.SourceKind == SourceMSK && c.SourceClusterArn == "":
		add(&config.Error{Variable: EnvSourceClusterArn, Problem: "must be set when SOURCE_KIND is MSK"})
	case c.SourceKind == SourceMSK && !mskArn.MatchString(c.SourceClusterArn):
		add(&config.Error{Variable: EnvSourceClusterArn, Problem: fmt.Sprintf("%q is not an MSK cluster ARN", c.SourceClusterArn)})
	}
	switch {
	case c.SourceKind == SourceMSK && c.Source.CASecretARN != "":
		add(&config.Error{Variable: "SOURCE_CA_SECRET_ARN", Problem: "SERVER_ROOT_CA_CERTIFICATE is for a self-managed source only; MSK brokers present publicly trusted certificates"})
	case c.SourceKind == SourceMSK && c.Source.Auth == kafkaconn.AuthSCRAM256:
		add(&config.Error{Variable: "SOURCE_AUTH", Problem: "MSK offers SCRAM-SHA-512 only, not scram-sha-256"})
	case c.SourceKind == SourceSelfManaged && c.Source.Auth == kafkaconn.AuthIAM:
		add(&config.Error{Variable: "SOURCE_AUTH", Problem: "iam needs SOURCE_KIND MSK"})
	}
	c.SubnetIDs = env.List(EnvSubnetIDs)
	c.SecurityGroupIDs = env.List(EnvSecurityGroupIDs)

	n, err := env.Int(EnvBatchSize, DefaultBatchSize, 1, 10000)
	add(err)
	c.BatchSize = int32(n)
	n, err = env.Int(EnvMaximumBatchingWindow, DefaultBatchingWindowSeconds, 0, 300)
	add(err)
	c.BatchingWindowSeconds = int32(n)

	pos := strings.ToUpper(env.String(EnvStartingPosition, TrimHorizon))
	ts, hasTS := env.Lookup(EnvStartingPositionTime)
	if hasTS && ts == "0" {
		hasTS = false
	}
	switch pos {
	case TrimHorizon:
		c.StartingPosition = pos
		if hasTS {
			add(&config.Error{Variable: EnvStartingPositionTime, Problem: "is used only with STARTING_POSITION AT_TIMESTAMP"})
		}
	case AtTimestamp:
		c.StartingPosition = pos
		secs, perr := strconv.ParseInt(ts, 10, 64)
		switch {
		case !hasTS:
			add(&config.Error{Variable: EnvStartingPositionTime, Problem: "must be set (Unix seconds) when STARTING_POSITION is AT_TIMESTAMP"})
		case perr != nil || secs <= 0:
			add(&config.Error{Variable: EnvStartingPositionTime, Problem: fmt.Sprintf("%q is not a positive number of Unix seconds", ts)})
		default:
			c.StartingTime = time.Unix(secs, 0).UTC()
		}
	default:
		add(&config.Error{Variable: EnvStartingPosition, Problem: fmt.Sprintf("%q is not TRIM_HORIZON or AT_TIMESTAMP", pos)})
	}

	c.StackName = env.String(EnvStackName, "")
	c.MetricsNamespace = env.String(EnvMetricsNamespace, DefaultMetricsNamespace)

	if raw, ok := env.Lookup(EnvTopicConfigOverrides); ok && raw != "{}" {
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			add(&config.Error{Variable: EnvTopicConfigOverrides, Problem: "is not a JSON object of config name to value", Err: err})
		} else {
			c.ConfigOverrides = map[string]string{}
			for k, v := range m {
				switch v := v.(type) {
				case string:
					c.ConfigOverrides[k] = v
				case float64, bool:
					c.ConfigOverrides[k] = fmt.Sprint(v)
				default:
					add(&config.Error{Variable: EnvTopicConfigOverrides, Problem: fmt.Sprintf("value of %q is %T, not a string", k, v)})
				}
			}
			probe := topicsync.Options{Topics: []string{"probe"}, ConfigOverrides: c.ConfigOverrides}
			if err := probe.Validate(); err != nil {
				add(&config.Error{Variable: EnvTopicConfigOverrides, Problem: "refused", Err: err})
			}
		}
	}
	n, err = env.Int(EnvTopicReplicationFactor, -1, -1, 32767)
	add(err)
	if n == 0 {
		add(&config.Error{Variable: EnvTopicReplicationFactor, Problem: "0 is not -1 (the target's default) or a positive replication factor"})
	}
	c.ReplicationFactor = int16(n)
	c.CopyACLs, err = env.Bool(EnvCopyACLs, false)
	add(err)

	raw, _ := env.Lookup(EnvTransforms)
	if c.Renames, err = transform.ParseTopicMap([]byte(raw)); err != nil {
		add(&config.Error{Variable: EnvTransforms, Problem: "invalid transforms", Err: err})
	}
	return c, errors.Join(errs...)
}
