// Command cutover is the cutover state machine's task function: one binary
// for every step, the step named in the task input. All logic lives in
// shared/cutover.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
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

// secretsTimeout bounds reading the clusters' secrets when the clients are
// built, well inside Lambda's 10 s initialization limit.
const secretsTimeout = 5 * time.Second

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
	f := &function{cfg: cfg, awsCfg: awsCfg, log: log, secrets: kafkaconn.NewSecretsManager(awsCfg)}
	f.connect(ctx)
	lambda.StartWithOptions(f.handle, lambda.WithEnableSIGTERM(func() { f.mu.Lock(); defer f.mu.Unlock(); f.close() }))
}

// function holds the handler. When its Kafka clients could not be built
// (typically a secret it could not read), it does not exit: the Preflight
// step reports why, every other step fails with it, and each invocation
// tries to build them again.
type function struct {
	cfg     cutover.FunctionConfig
	awsCfg  aws.Config
	log     *slog.Logger
	secrets *kafkaconn.SecretsManager

	mu         sync.Mutex
	h          *cutover.Handler
	clients    []*kgo.Client
	clientsErr error
}

func (f *function) handle(ctx context.Context, req cutover.Request) (any, error) {
	f.mu.Lock()
	if f.clientsErr != nil {
		f.close()
		f.connect(ctx)
	}
	h := f.h
	f.mu.Unlock()
	return h.Handle(ctx, req)
}

// connect builds the clients and the handler.
func (f *function) connect(ctx context.Context) {
	cfg, awsCfg := f.cfg, f.awsCfg
	sctx, cancel := context.WithTimeout(ctx, secretsTimeout)
	src, srcErr := cfg.Source.NewClient(sctx, f.secrets)
	tgt, tgtErr := cfg.Target.NewClient(sctx, f.secrets)
	cancel()
	f.clients, f.clientsErr = []*kgo.Client{src, tgt}, errors.Join(srcErr, tgtErr)
	if f.clientsErr != nil {
		f.log.Error("building the Kafka clients", "error", f.clientsErr)
	}
	secretArns := map[string]string{}
	for v, arn := range map[string]string{"SOURCE_SECRET_ARN": cfg.Source.SecretARN, "TARGET_SECRET_ARN": cfg.Target.SecretARN,
		"SOURCE_CA_SECRET_ARN": cfg.Source.CASecretARN, "TARGET_CA_SECRET_ARN": cfg.Target.CASecretARN} {
		if arn != "" {
			secretArns[v] = arn
		}
	}
	snsClient := sns.NewFromConfig(awsCfg)
	f.h = cutover.New(cutover.Deps{
		Source: src, Target: tgt,
		Lambda:             awslambda.NewFromConfig(awsCfg),
		SNS:                snsClient,
		ReplicatorFunction: cfg.ReplicatorFunction,
		ApprovalTopicArn:   cfg.ApprovalTopicArn,
		SourceAuth:         cfg.Source.Auth,
		IAM:                iam.NewFromConfig(awsCfg),
		SourceClusterArn:   cfg.SourceClusterArn,
		ProducerRoleArns:   cfg.ProducerRoleArns,
		DetailsTopic:       cfg.DetailsTopic,
		Renames:            cfg.Renames,
		Log:                f.log,
		Preflight: cutover.PreflightDeps{
			STS: sts.NewFromConfig(awsCfg), Secrets: secretsmanager.NewFromConfig(awsCfg), SecretArns: secretArns,
			SNS: snsClient, SourceBootstrap: cfg.Source.Bootstrap, TargetBootstrap: cfg.Target.Bootstrap,
			Region: awsCfg.Region, ClientsErr: f.clientsErr,
		},
	})
}

func (f *function) close() {
	for _, c := range f.clients {
		if c != nil {
			c.Close()
		}
	}
	f.clients = nil
}

func fatal(log *slog.Logger, msg string, err error) {
	log.Error(msg, "error", err)
	os.Exit(1)
}
