// Command replicator is the Lambda function that Kafka event source
// mappings invoke with batches of source records; it writes them to the
// target MSK cluster, reading from the source only the outcome of the
// records' transactions. All logic lives in shared/replicate.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-xray-sdk-go/v2/instrumentation/awsv2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/config"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/kafkaconn"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/replicate"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/telemetry"
)

func main() {
	log := telemetry.NewLogger()
	cfg, err := replicate.LoadConfig(config.Env(nil))
	if err != nil {
		log.Error("invalid configuration", "error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		log.Error("loading AWS configuration", "error", err)
		os.Exit(1)
	}
	awsv2.AWSV2Instrumentor(&awsCfg.APIOptions)
	secrets := kafkaconn.NewSecretsManager(awsCfg)
	newClient := func() (*kgo.Client, error) {
		return replicate.NewTargetClient(ctx, cfg, secrets)
	}
	cl, err := newClient()
	if err != nil {
		log.Error("building target client", "error", err)
		os.Exit(1)
	}
	src, err := replicate.NewSourceClient(ctx, cfg, secrets)
	if err != nil {
		log.Error("building source client", "error", err)
		os.Exit(1)
	}
	newFenceClient := func(transactionalID string) (*kgo.Client, error) {
		return replicate.NewFenceClient(ctx, cfg, secrets, transactionalID)
	}
	r, err := replicate.New(cfg, cl, src, replicate.WithLogger(log), replicate.WithClientFactory(newClient),
		replicate.WithFenceClientFactory(newFenceClient))
	if err != nil {
		log.Error("invalid configuration", "error", err)
		os.Exit(1)
	}
	lambda.StartWithOptions(r, lambda.WithEnableSIGTERM(func() { shutdown(log, r, src) }))
}

// shutdown flushes what is buffered, within the SIGTERM grace period, and
// closes the target and source clients.
func shutdown(log *slog.Logger, r *replicate.Replicator, src *kgo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		log.Warn("flush on shutdown", "error", err)
	}
	src.Close()
}
