package scalebench

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestReconcileSmall runs the reconcile benchmark at a small size and
// checks what it measured and prints: every record of every topic copied
// once, the discovery run creating the new topic's mapping alone, and the
// new topic's first record on the target no sooner than the mapping's
// start delay allows, then all of it. KMIG_BENCH_SCALE=1 runs the full
// 500 topics x 3 partitions and requires the steady state under 10 s
// (the benchmark's goal: make bench-scale).
func TestReconcileSmall(t *testing.T) {
	opts := ReconcileOptions{Topics: 20, Partitions: 3, RecordsPerPartition: 20, SteadyRuns: 2, MappingStartDelay: time.Second}
	if os.Getenv("KMIG_BENCH_SCALE") == "1" {
		opts = ReconcileOptions{}
	}
	full := opts.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := MeasureReconcile(ctx, &out, opts)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())

	perTopic := int(full.Partitions) * full.RecordsPerPartition
	if want := full.Topics * perTopic; res.Replicated != (Copied{Records: want}) {
		t.Errorf("replicated %+v, want %d records, none lost, duplicated or differing", res.Replicated, want)
	}
	d := res.Discovery
	if !slices.Equal(d.Created, []string{DiscoveredTopic}) {
		t.Errorf("discovery run created mappings for %v, want [%s]", d.Created, DiscoveredTopic)
	}
	if d.Copied != (Copied{Records: perTopic}) {
		t.Errorf("%s copied %+v, want %d records, none lost, duplicated or differing", DiscoveredTopic, d.Copied, perTopic)
	}
	// The mapping polls only after its start delay, and the first record
	// arrives only after it polls.
	if d.Creating < full.MappingStartDelay {
		t.Errorf("mapping read Creating %v, under the start delay %v", d.Creating, full.MappingStartDelay)
	}
	if d.FirstBatch <= 0 || d.Total < full.MappingStartDelay {
		t.Errorf("first record %v after polling started, %v after the run started: not after the start delay %v", d.FirstBatch, d.Total, full.MappingStartDelay)
	}

	if !regexp.MustCompile(`(?m)^RESULT: reconcile-first-run-[0-9]+x3 seconds [0-9]+\.[0-9]{2} s$`).Match(out.Bytes()) {
		t.Error("no first-run RESULT line")
	}
	m := regexp.MustCompile(`(?m)^RESULT: reconcile-steady-state-[0-9]+x3 seconds ([0-9]+\.[0-9]{2}) s$`).FindSubmatch(out.Bytes())
	if m == nil {
		t.Fatal("no steady-state RESULT line")
	}
	// A steady-state run's cost does not grow with the work done before:
	// it lists the mappings (a call a page of 100) and changes nothing.
	if pages := (full.Topics + 99) / 100; res.MostSteadyLambdaCalls != pages {
		t.Errorf("a steady-state run made %d Lambda calls, want %d (the mapping list's pages)", res.MostSteadyLambdaCalls, pages)
	}
	// The 10 s goal is the benchmark's (make bench-scale), judged on its
	// own run, not in the test suite on a loaded machine.
	if s, _ := strconv.ParseFloat(string(m[1]), 64); os.Getenv("KMIG_BENCH_SCALE") == "1" && s >= 10 {
		t.Errorf("steady state took %.2f s, over 10 s", s)
	}
	if !regexp.MustCompile(`(?m)^RESULT: reconcile-replicated-[0-9]+x3 lost 0 duplicated 0 records ` + strconv.Itoa(full.Topics*perTopic) + `$`).Match(out.Bytes()) {
		t.Error("no replicated RESULT line with 0 lost and 0 duplicated")
	}
	if !regexp.MustCompile(`(?m)^RESULT: reconcile-discovery-to-first-record seconds [0-9]+\.[0-9]{2} s \(mapping start ` + regexp.QuoteMeta(full.MappingStartDelay.String()) + `\)$`).Match(out.Bytes()) {
		t.Error("no discovery RESULT line")
	}
}
