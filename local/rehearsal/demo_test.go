package rehearsal

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the whole rehearsal `make demo` runs and checks its verdict.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, _, err := toolsReady(); err != nil && os.Getenv("KMIG_REQUIRE_TOOLS") != "1" {
		t.Skipf("local state machine tools missing: %v", err)
	}
	var out bytes.Buffer
	if err := Demo(ctx, &out); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "exactly once, in order, equal") || !strings.Contains(out.String(), "missing 0, duplicated 0") {
		t.Fatalf("unexpected report:\n%s", out.String())
	}
}
