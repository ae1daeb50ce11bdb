// Command cutover is the cutover state machine's task function: one binary
// for every step, the step named in the task input. All logic lives in
// shared/cutover.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-xray-sdk-go/v2/instrumentation/awsv2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/telemetry"
)

func main() {
	log := telemetry.NewLogger()
	cfg, err := cutover.LoadConfig(config.Env(nil))
	if err != nil {
		fatal(log, "invalid configuration", err)
	}
	ctx := context.Background()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fatal(log, "loading AWS configuration", err)
	}
	awsv2.AWSV2Instrumentor(&awsCfg.APIOptions)
	secrets := kafkaconn.NewSecretsManager(awsCfg)
	// A secret that cannot be read (no Secrets Manager endpoint in the
	// subnets, a missing grant) must not stop the function: the Preflight
	// step reports it, and every other step fails with it.
	initCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	src, srcErr := cfg.Source.NewClient(initCtx, secrets)
	tgt, tgtErr := cfg.Target.NewClient(initCtx, secrets)
	cancel()
	clientsErr := errors.Join(srcErr, tgtErr)
	if clientsErr != nil {
		log.Error("building the Kafka clients", "error", clientsErr)
	}
	secretArns := map[string]string{}
	for v, arn := range map[string]string{"SOURCE_SECRET_ARN": cfg.Source.SecretARN, "TARGET_SECRET_ARN": cfg.Target.SecretARN} {
		if arn != "" {
			secretArns[v] = arn
		}
	}
	h := cutover.New(cutover.Deps{
		Source: src, Target: tgt,
		Lambda:             awslambda.NewFromConfig(awsCfg),
		SNS:                sns.NewFromConfig(awsCfg),
		ReplicatorFunction: cfg.ReplicatorFunction,
		ApprovalTopicArn:   cfg.ApprovalTopicArn,
		SourceAuth:         cfg.Source.Auth,
		IAM:                iam.NewFromConfig(awsCfg),
		SourceClusterArn:   cfg.SourceClusterArn,
		ProducerRoleArns:   cfg.ProducerRoleArns,
		DetailsTopic:       cfg.DetailsTopic,
		Renames:            cfg.Renames,
		Log:                log,
		Preflight: cutover.PreflightDeps{
			STS: sts.NewFromConfig(awsCfg), Secrets: secretsmanager.NewFromConfig(awsCfg), SecretArns: secretArns,
			SNS: sns.NewFromConfig(awsCfg), SourceBootstrap: cfg.Source.Bootstrap, TargetBootstrap: cfg.Target.Bootstrap,
			Region: awsCfg.Region, ClientsErr: clientsErr,
		},
	})
	lambda.StartWithOptions(h.Handle, lambda.WithEnableSIGTERM(func() { closeAll(src, tgt) }))
}

func closeAll(cls ...*kgo.Client) {
	for _, c := range cls {
		if c != nil {
			c.Close()
		}
	}
}

func fatal(log *slog.Logger, msg string, err error) {
	log.Error(msg, "error", err)
	os.Exit(1)
}
