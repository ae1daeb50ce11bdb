// Package telemetry gives the functions structured logs, CloudWatch metrics
// as Embedded Metric Format lines, and X-Ray subsegments.
//
// It never logs record contents or secrets; callers log coordinates and
// counts only.
package telemetry

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-xray-sdk-go/v2/strategy/ctxmissing"
	"github.com/aws/aws-xray-sdk-go/v2/xray"
)

func init() {
	// Outside Lambda (tests, local runs) there is no trace segment; a
	// missing one must not be logged as an error on every batch.
	if os.Getenv("AWS_XRAY_CONTEXT_MISSING") == "" {
		_ = xray.Configure(xray.Config{ContextMissingStrategy: ctxmissing.NewDefaultIgnoreErrorStrategy()})
	}
}

// NewLogger returns the JSON logger the functions use: aws-lambda-go's
// lambdacontext handler, which adds the request ID and function ARN to
// every line and takes its level from the function's logging
// configuration (AWS_LAMBDA_LOG_LEVEL).
func NewLogger() *slog.Logger {
	return lambdacontext.NewLogger(lambdacontext.WithFunctionARN())
}

// Trace runs fn inside an X-Ray subsegment named name, recording fn's
// error on it. Without a trace (outside Lambda) it just runs fn.
func Trace(ctx context.Context, name string, fn func(context.Context) error) error {
	sctx, seg := xray.BeginSubsegment(ctx, name)
	if seg == nil {
		return fn(ctx)
	}
	err := fn(sctx)
	seg.Close(err)
	return err
}
