package cutover

import (
	"strings"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
)

// Environment variables the cutover function reads, besides the SOURCE_*
// and TARGET_* connection variables of package kafkaconn.
const (
	EnvReplicatorFunction = "REPLICATOR_FUNCTION_NAME"
	EnvApprovalTopicArn   = "APPROVAL_TOPIC_ARN"
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
}

// LoadConfig reads SOURCE_BOOTSTRAP_SERVERS, SOURCE_AUTH, SOURCE_SECRET_ARN,
// TARGET_BOOTSTRAP_SERVERS, TARGET_AUTH, TARGET_SECRET_ARN,
// REPLICATOR_FUNCTION_NAME (required) and APPROVAL_TOPIC_ARN (optional).
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
	return c, nil
}
