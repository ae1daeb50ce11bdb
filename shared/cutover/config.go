package cutover

import (
	"fmt"
	"strings"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamfence"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/rundetails"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/transform"
)

// Environment variables the cutover function reads, besides the SOURCE_*
// and TARGET_* connection variables of package kafkaconn.
const (
	EnvReplicatorFunction = "REPLICATOR_FUNCTION_NAME"
	EnvApprovalTopicArn   = "APPROVAL_TOPIC_ARN"
	EnvSourceClusterArn   = "SOURCE_CLUSTER_ARN"
	EnvProducerRoleArns   = "PRODUCER_ROLE_ARNS"
	EnvDetailsTopic       = "CUTOVER_DETAILS_TOPIC"
	// EnvTransforms is the replicator's TRANSFORMS: the cutover reads the
	// target names of renamed topics from its rename transforms.
	EnvTransforms = "TRANSFORMS"
)

// FunctionConfig is the cutover function's configuration.
type FunctionConfig struct {
	Source kafkaconn.Config
	Target kafkaconn.Config
	// ReplicatorFunction is the replicator's name or ARN, whose event
	// source mappings the cutover drains and pauses.
	ReplicatorFunction string
	// ApprovalTopicArn is the SNS topic for approval hooks; empty
	// disables approval hooks (Validate rejects them).
	ApprovalTopicArn string
	// SourceClusterArn is the source MSK cluster's ARN (empty for a
	// self-managed source); the iam fence names topic ARNs from it.
	SourceClusterArn string
	// ProducerRoleArns are the roles the iam fence may put its policy
	// on (the stack grants IAM rights on these only).
	ProducerRoleArns []string
	// DetailsTopic is the target topic that keeps runs' details
	// (rundetails.DefaultTopic when unset).
	DetailsTopic string
	// Renames are the rename transforms of TRANSFORMS: the target name of
	// each renamed topic.
	Renames transform.TopicMap
}

// LoadConfig reads SOURCE_BOOTSTRAP_SERVERS, SOURCE_AUTH, SOURCE_SECRET_ARN,
// SOURCE_CA_SECRET_ARN, TARGET_BOOTSTRAP_SERVERS, TARGET_AUTH,
// TARGET_SECRET_ARN, TARGET_CA_SECRET_ARN,
// REPLICATOR_FUNCTION_NAME (required), APPROVAL_TOPIC_ARN, SOURCE_CLUSTER_ARN
// PRODUCER_ROLE_ARNS (comma-separated), CUTOVER_DETAILS_TOPIC and TRANSFORMS
// (the replicator's, for its renames) (all five optional).
// The log level is the function's logging configuration. kafkaconn also reads
// AWS_REGION for IAM auth. Every problem is a *config.Error naming the
// variable.
func LoadConfig(env config.Env) (FunctionConfig, error) {
	var c FunctionConfig
	var err error
	if c.Source, err = kafkaconn.FromEnv(env, "SOURCE"); err != nil {
		return c, err
	}
	if c.Target, err = kafkaconn.FromEnv(env, "TARGET"); err != nil {
		return c, err
	}
	if c.ReplicatorFunction, err = env.Required(EnvReplicatorFunction, "the replicator function's name or ARN"); err != nil {
		return c, err
	}
	c.ApprovalTopicArn = env.String(EnvApprovalTopicArn, "")
	if c.ApprovalTopicArn != "" && !strings.HasPrefix(c.ApprovalTopicArn, "arn:") {
		return c, &config.Error{Variable: EnvApprovalTopicArn, Problem: "must be an SNS topic ARN"}
	}
	c.SourceClusterArn = env.String(EnvSourceClusterArn, "")
	if c.SourceClusterArn != "" && !strings.Contains(c.SourceClusterArn, ":kafka:") {
		return c, &config.Error{Variable: EnvSourceClusterArn, Problem: "must be an MSK cluster ARN (arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID)"}
	}
	for _, a := range strings.Split(env.String(EnvProducerRoleArns, ""), ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if _, err := iamfence.RoleName(a); err != nil || !strings.HasPrefix(a, "arn:") {
			return c, &config.Error{Variable: EnvProducerRoleArns, Problem: fmt.Sprintf("%q is not an IAM role ARN", a), Err: err}
		}
		c.ProducerRoleArns = append(c.ProducerRoleArns, a)
	}
	c.DetailsTopic = env.String(EnvDetailsTopic, rundetails.DefaultTopic)
	if c.DetailsTopic == "" || validTopic(c.DetailsTopic) != "" {
		return c, &config.Error{Variable: EnvDetailsTopic, Problem: fmt.Sprintf("%q is not a valid Kafka topic name", c.DetailsTopic)}
	}
	raw, _ := env.Lookup(EnvTransforms)
	if c.Renames, err = transform.ParseTopicMap([]byte(raw)); err != nil {
		return c, &config.Error{Variable: EnvTransforms, Problem: "invalid transforms", Err: err}
	}
	return c, nil
}
