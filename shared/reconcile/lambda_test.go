package reconcile

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// An update refused because the mapping is in transition is retried,
// whichever of the two documented answers AWS gives, and so is a throttled
// call; any other error is returned at once.
func TestRetryBusyAnswers(t *testing.T) {
	// On synctest's fake clock the backoffs cost no time, and the retry
	// that runs into its deadline ends exactly at it.
	synctest.Test(t, testRetryBusyAnswers)
}

func testRetryBusyAnswers(t *testing.T) {
	for _, busyErr := range []error{
		&types.ResourceInUseException{Message: aws.String("in use")},
		&types.ResourceConflictException{Message: aws.String("in progress")},
		&types.TooManyRequestsException{Message: aws.String("Rate exceeded")},
	} {
		n := 0
		err := Retry(context.Background(), Busy, func() error {
			if n++; n < 3 {
				return busyErr
			}
			return nil
		})
		if err != nil || n != 3 {
			t.Errorf("%T: %v after %d calls, want success on the 3rd", busyErr, err, n)
		}
	}
	n := 0
	denied := &types.InvalidParameterValueException{Message: aws.String("no")}
	if err := Retry(context.Background(), Busy, func() error { n++; return denied }); !errors.Is(err, denied) || n != 1 {
		t.Errorf("InvalidParameterValueException: %v after %d calls, want it at once", err, n)
	}
	// Within the run's deadline only.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Retry(ctx, Busy, func() error { return &types.ResourceInUseException{} })
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 300*time.Millisecond {
		t.Errorf("retrying until the deadline: %v after %v, want the last refusal and the deadline after exactly 300ms", err, time.Since(start))
	}
}
