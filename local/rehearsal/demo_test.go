package rehearsal

import (
	"bytes"
	"context"
	"fmt"
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
	// The reconciler selected the plan by pattern (Demo fails otherwise:
	// ErrSelection), the discovered topic included, and every selected
	// topic's records are on the target; the apps lost nothing.
	want := fmt.Sprintf("RESULT: %d topics selected by pattern, %d mappings created by the reconciler, ", DemoBulkTopics+4, DemoBulkTopics+4)
	for _, s := range []string{want, "lost 0, duplicated 0; apps produced", "missing 0, duplicated 0\n",
		"exactly once, in order, equal", "cutover of 64 topics", "demo.returns-00: mapping created"} {
		if !strings.Contains(out.String(), s) {
			t.Fatalf("report without %q:\n%s", s, out.String())
		}
	}
}
