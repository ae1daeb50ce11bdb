// Command provisioner is the reconciler function: it serves the stack's
// custom resources (Custom::TargetTopics runs a reconciliation, and on
// Delete removes the stack's event source mappings; Custom::TopicScope
// computes the IAM scope) and the schedule's invocations (one
// reconciliation each). All logic is in shared/provision,
// shared/reconcile and shared/iamscope; this file only wires them.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-xray-sdk-go/v2/instrumentation/awsv2"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/iamscope"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provision"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/telemetry"
)

func main() {
	// A configuration error does not stop the function: it answers every
	// Create and Update with FAILED and the reason, so the stack never waits
	// an hour for a response that cannot come.
	cfg, cfgErr := provision.LoadConfig(nil)
	p := &provision.Provisioner{
		Config:       cfg,
		TopicScope:   iamscope.Handle,
		FunctionName: os.Getenv("AWS_LAMBDA_FUNCTION_NAME"),
		Logger:       telemetry.NewLogger(),
	}
	var secrets kafkaconn.Secrets
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		cfgErr = errors.Join(cfgErr, fmt.Errorf("loading AWS SDK config: %w", err))
	} else {
		awsv2.AWSV2Instrumentor(&awsCfg.APIOptions)
		secrets = kafkaconn.NewSecretsManager(awsCfg)
		p.Lambda = awslambda.NewFromConfig(awsCfg)
	}
	p.ConfigErr = cfgErr
	p.Connect = provision.Connect(cfg, secrets)
	lambda.Start(p) // p is a lambda.Handler: it reads the raw event itself
}
