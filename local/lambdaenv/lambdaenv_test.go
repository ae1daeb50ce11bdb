package lambdaenv

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// TestTimeoutResetsTheEnvironment checks the lifecycle the replicator's
// fault tests rely on: a slow invocation times out, its environment is shut
// down (which unblocks it), and the next invocation gets a new one.
func TestTimeoutResetsTheEnvironment(t *testing.T) {
	var inits, shutdowns atomic.Int64
	init := func() (lambda.Handler, func(), error) {
		n := inits.Add(1)
		release := make(chan struct{})
		h := lambda.NewHandler(func(ctx context.Context, in string) (int64, error) {
			if in == "slow" {
				<-release // only a shutdown ends it, as a killed process would
				return 0, errors.New("killed")
			}
			return n, nil
		})
		return h, func() { shutdowns.Add(1); close(release) }, nil
	}
	e := New(init, 50*time.Millisecond)
	if out, err := e.Invoke(context.Background(), []byte(`"fast"`)); err != nil || string(out) != "1" {
		t.Fatalf("first invocation: %s, %v", out, err)
	}
	_, err := e.Invoke(context.Background(), []byte(`"slow"`))
	var te *TimeoutError
	if !errors.As(err, &te) || shutdowns.Load() != 1 || e.Resets() != 1 {
		t.Fatalf("slow invocation: %v; shutdowns %d, resets %d", err, shutdowns.Load(), e.Resets())
	}
	if out, err := e.Invoke(context.Background(), []byte(`"fast"`)); err != nil || string(out) != "2" {
		t.Fatalf("after the timeout: %s, %v (want a new environment)", out, err)
	}
}
