package rehearsal

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the whole rehearsal `make demo` runs and checks its verdict.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := Demo(ctx, &out); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "exactly once, in order, equal") || strings.Contains(out.String(), "NO:") {
		t.Fatalf("unexpected report:\n%s", out.String())
	}
}
