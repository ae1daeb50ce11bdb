package lambdaendpoint

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	alambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/kafkalocal"
)

// start serves one mapping (Enabled, with transition) and returns an AWS
// SDK client pointed at the endpoint.
func start(t *testing.T, transition time.Duration) (*Server, *esm.Mapping, *awslambda.Client) {
	t.Helper()
	src, err := kafkalocal.StartSource(kafkalocal.ClusterOptions{Topics: []kafkalocal.Topic{{Name: "t", Partitions: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	reg := esm.NewRegistry()
	t.Cleanup(reg.Close)
	m, err := reg.Create(esm.Config{
		UUID: "u1", FunctionName: "f", Topics: []string{"t"},
		BootstrapServers: src.Bootstrap(), ClientOptions: src.ClientOpts(kafkalocal.App()),
		Transition: transition,
	}, alambda.NewHandler(func(context.Context, map[string]any) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	s := New(reg)
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	cl := awslambda.New(awslambda.Options{Region: Region, BaseEndpoint: aws.String(url), Credentials: aws.AnonymousCredentials{}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.WaitState(ctx, esm.StateEnabled); err != nil {
		t.Fatal(err)
	}
	return s, m, cl
}

func update(ctx context.Context, cl *awslambda.Client, enabled bool) (*awslambda.UpdateEventSourceMappingOutput, error) {
	return cl.UpdateEventSourceMapping(ctx, &awslambda.UpdateEventSourceMappingInput{UUID: aws.String("u1"), Enabled: aws.Bool(enabled)})
}

// TestUpdateInTransition: the AWS SDK for Go gets the typed error AWS
// documents for an update of a mapping in transition, under either answer,
// and the update goes through once the transition is over.
func TestUpdateInTransition(t *testing.T) {
	for _, tc := range []struct {
		answer APIError
		is     func(error) bool
	}{
		{ResourceInUse, func(err error) bool { var e *types.ResourceInUseException; return errors.As(err, &e) }},
		{ResourceConflict, func(err error) bool { var e *types.ResourceConflictException; return errors.As(err, &e) }},
	} {
		t.Run(tc.answer.Type, func(t *testing.T) {
			s, m, cl := start(t, time.Second)
			s.SetInTransitionError(tc.answer)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := update(ctx, cl, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(out.State); got != "Disabling" {
				t.Fatalf("update answered State %s, want Disabling", got)
			}
			_, err = update(ctx, cl, true)
			if !tc.is(err) {
				t.Fatalf("update while Disabling: %T %v, want %s", err, err, tc.answer.Type)
			}
			if !strings.Contains(err.Error(), "u1") {
				t.Errorf("error %q does not name the mapping", err)
			}
			if n := s.Errors(tc.answer.Type); n != 1 {
				t.Errorf("Errors(%s) = %d, want 1", tc.answer.Type, n)
			}
			if err := m.WaitState(ctx, esm.StateDisabled); err != nil {
				t.Fatal(err)
			}
			got, err := cl.GetEventSourceMapping(ctx, &awslambda.GetEventSourceMappingInput{UUID: aws.String("u1")})
			if err != nil || aws.ToString(got.State) != "Disabled" {
				t.Fatalf("get after the transition: %v %v", err, got)
			}
			if _, err := update(ctx, cl, true); err != nil {
				t.Fatalf("update once Disabled: %v", err)
			}
		})
	}
}

// TestUpdateFault: an injected answer reaches the SDK as its typed error
// and leaves the mapping unchanged.
func TestUpdateFault(t *testing.T) {
	s, m, cl := start(t, 0)
	s.SetUpdateFault(func(uuid string, enabled bool) *APIError {
		if uuid == "u1" && !enabled {
			return &APIError{Status: 400, Type: "InvalidParameterValueException"}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ip *types.InvalidParameterValueException
	if _, err := update(ctx, cl, false); !errors.As(err, &ip) {
		t.Fatalf("faulted update: %T %v", err, err)
	}
	if st := m.State(); st != esm.StateEnabled {
		t.Fatalf("state %s after a refused update, want Enabled", st)
	}
}
