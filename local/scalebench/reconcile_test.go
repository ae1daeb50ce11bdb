package scalebench

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestReconcileSmall runs the reconcile benchmark at a small size and
// checks it prints both RESULT lines. KMIG_BENCH_SCALE=1 runs the full
// 500 topics x 3 partitions and requires the steady state under 10 s.
func TestReconcileSmall(t *testing.T) {
	opts := ReconcileOptions{Topics: 20, Partitions: 3, SteadyRuns: 2}
	if os.Getenv("KMIG_BENCH_SCALE") == "1" {
		opts = ReconcileOptions{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := Reconcile(ctx, &out, opts); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	if !regexp.MustCompile(`(?m)^RESULT: reconcile-first-run-[0-9]+x3 seconds [0-9]+\.[0-9]{2} s$`).Match(out.Bytes()) {
		t.Error("no first-run RESULT line")
	}
	m := regexp.MustCompile(`(?m)^RESULT: reconcile-steady-state-[0-9]+x3 seconds ([0-9]+\.[0-9]{2}) s$`).FindSubmatch(out.Bytes())
	if m == nil {
		t.Fatal("no steady-state RESULT line")
	}
	if s, _ := strconv.ParseFloat(string(m[1]), 64); s >= 10 {
		t.Errorf("steady state took %.2f s, over 10 s", s)
	}
}
