package scalebench

import (
	"bytes"
	"context"
	"regexp"
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
	if err := Cutover(ctx, &out, CutoverOptions{Topics: []int{4, 2}, Partitions: 1, Groups: 3}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, re := range []string{
		`(?m)^RESULT: cutover-2-topics overhead [0-9]+\.[0-9]{2} s$`,
		`(?m)^RESULT: cutover-4-topics overhead [0-9]+\.[0-9]{2} s$`,
		`(?m)^RESULT: cutover-2-topics largest-state [0-9]{4,6} bytes$`,
		`(?m)^RESULT: cutover-4-topics largest-state [0-9]{4,6} bytes$`,
		`(?m)^RESULT: cutover-growth-2-to-4-topics overhead-ratio [0-9.]+ x \(topics 2 x: (linear or better|worse than linear)\)$`,
	} {
		if !regexp.MustCompile(re).Match(out.Bytes()) {
			t.Errorf("output lacks %s", re)
		}
	}
}
