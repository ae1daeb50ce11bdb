package scalebench

import (
	"bytes"
	"context"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/cutoverrun"
)

// TestCutoverSmall runs the cutover benchmark at two small sizes and
// checks it prints every RESULT line, with a positive overhead and a
// state under Step Functions' limit.
func TestCutoverSmall(t *testing.T) {
	root, err := cutoverrun.Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cutoverrun.Tools(root); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := Cutover(ctx, &out, CutoverOptions{Topics: []int{4, 2, 3}, Partitions: 1, Groups: 3}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, re := range []string{
		`(?m)^RESULT: cutover-2-topics overhead [0-9]+\.[0-9]{2} s$`,
		`(?m)^RESULT: cutover-4-topics overhead [0-9]+\.[0-9]{2} s$`,
		`(?m)^RESULT: cutover-2-topics largest-state [0-9]{4,6} bytes$`,
		`(?m)^RESULT: cutover-4-topics largest-state [0-9]{4,6} bytes$`,
		`(?m)^RESULT: cutover-4-topics wall [0-9]+\.[0-9] s$`,
		`(?m)^RESULT: cutover-growth-2-to-4-topics overhead-ratio [-0-9.]+ x for 2 x the topics; per added topic [-0-9.]+ ms \(2 to 3\) and [-0-9.]+ ms \(3 to 4\): (linear|worse than linear|better than linear)$`,
	} {
		if !regexp.MustCompile(re).Match(out.Bytes()) {
			t.Errorf("output lacks %s", re)
		}
	}
}

// TestGrowthVerdict: a fixed cost plus a constant cost per topic is
// linear, however the fixed cost bends the plain ratio; a cost per topic
// that grows with the topics is worse than linear.
func TestGrowthVerdict(t *testing.T) {
	runs := func(cost func(n float64) float64) []CutoverRun {
		var out []CutoverRun
		for _, n := range []int{50, 100, 250, 500} {
			out = append(out, CutoverRun{Topics: n, Overhead: time.Duration(cost(float64(n)) * float64(time.Second))})
		}
		return out
	}
	for _, c := range []struct {
		name string
		cost func(n float64) float64
		want string
	}{
		{"affine", func(n float64) float64 { return 2 + 0.07*n }, ": linear"},
		{"burst then rate", func(n float64) float64 { return max(0, (n-15)/15) }, ": linear"},
		{"quadratic", func(n float64) float64 { return 0.0002 * n * n }, ": worse than linear"},
		{"levelling off", func(n float64) float64 { return 10 * math.Sqrt(n) }, ": better than linear"},
	} {
		if got := growth(runs(c.cost)); !strings.HasSuffix(got, c.want) {
			t.Errorf("%s: %s, want it to end %q", c.name, got, c.want)
		}
	}
}
