// Command provisioner is the CloudFormation custom resource that prepares
// the target topics before replication starts. All logic is in
// shared/provision and shared/topicsync; this file only wires them.
package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-xray-sdk-go/v2/instrumentation/awsv2"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/provision"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/telemetry"
)

func main() {
	// A configuration error does not stop the function: it answers every
	// Create and Update with FAILED and the reason, so the stack never waits
	// an hour for a response that cannot come.
	cfg, cfgErr := provision.LoadConfig(nil)
	logger := telemetry.NewLogger()

	var secrets kafkaconn.Secrets
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		cfgErr = errors.Join(cfgErr, fmt.Errorf("loading AWS SDK config: %w", err))
	} else {
		awsv2.AWSV2Instrumentor(&awsCfg.APIOptions)
		secrets = kafkaconn.NewSecretsManager(awsCfg)
	}

	p := &provision.Provisioner{
		Connect:   provision.Connect(cfg, secrets),
		ConfigErr: cfgErr,
		Renames:   cfg.Renames,
		Logger:    logger,
	}
	lambda.Start(p.Handler())
}
