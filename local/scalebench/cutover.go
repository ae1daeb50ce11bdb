package scalebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/cutoverrun"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/lambdaendpoint"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/shared/cutover"
)

// CutoverOptions configure Cutover. Zero values take the defaults.
type CutoverOptions struct {
	// Topics are the run sizes, in topics (default 50, 100, 250, 500).
	Topics []int
	// Partitions per topic (default 3) and application groups that
	// committed on every partition (default 50).
	Partitions int32
	Groups     int
	// Timeout bounds each run's execution (default 12 minutes).
	Timeout time.Duration
	// ControlPlaneRate is the emulated Lambda API's limit on mapping
	// calls per second: 0 means Lambda's quota
	// (lambdaendpoint.ControlPlaneRate), negative means none.
	ControlPlaneRate float64
}

// CutoverRun is one measured run.
type CutoverRun struct {
	Topics, Partitions, Groups int
	// Overhead is the cutover function's own time: see Overhead.
	Overhead time.Duration
	// Wall is the whole execution under the interpreter, Wait states and
	// hooks included.
	Wall time.Duration
	// LargestState is the largest state, task input or task result of
	// the execution, in bytes of JSON.
	LargestState cutoverrun.StateSize
	// ByStep is the cutover function's time per step, as in Overhead.
	ByStep map[string]time.Duration
}

// Overhead is the time the cutover function worked in a run: the sum, over
// every invocation of the cutover function (res.Steps: Validate, each poll
// of a polling step, each one-shot step, Report), of the time from the
// handler's start to its return. It leaves out what is waiting, not work:
// the Wait states between polls (pollSeconds, the quiet window of
// quietSeconds, the mappings' transitions while PauseReplication waits for
// Disabled, the drain waiting for lag), the hooks (lambda hooks run in
// functions of their own; approvals wait for an operator), and the
// interpreter's own transitions. Each poll's work is counted, so a drain
// that polls while lag remains adds each poll's reading time; the
// benchmark's fleet is fully replicated before the cutover starts, so its
// drain ends in its first poll. ByStep splits it by step.
func Overhead(res *cutoverrun.Result) (total time.Duration, byStep map[string]time.Duration) {
	byStep = map[string]time.Duration{}
	for _, s := range res.Steps {
		if s.Step == cutover.StepRequestApproval || s.Ended.IsZero() {
			continue
		}
		d := s.Ended.Sub(s.Started)
		byStep[s.Step] += d
		total += d
	}
	return total, byStep
}

// Cutover runs the cutover state machine (statemachine/cutover.asl.json,
// under the real interpreter) on embedded kfake clusters for each size in
// opts: N topics of Partitions partitions, one replicator mapping each
// (found by the replicator's function name: the input names no topics),
// Groups groups that committed at the source end of every partition, and
// lambda hooks that start the groups on the target. It prints, per size,
//
//	RESULT: cutover-<N>-topics overhead <seconds> s
//	RESULT: cutover-<N>-topics largest-state <bytes> bytes
//	RESULT: cutover-<N>-topics wall <seconds> s
//
// (wall: the whole execution, Wait states and hooks included, with the
// emulated Lambda API held to Lambda's control plane rate unless
// opts.ControlPlaneRate says otherwise), then how the overhead grew from the smallest size to the largest, and a
// table of the cutover function's time per step. Overhead is defined by
// Overhead. A run that does not succeed is an error.
func Cutover(ctx context.Context, w io.Writer, opts CutoverOptions) error {
	if len(opts.Topics) == 0 {
		opts.Topics = []int{50, 100, 250, 500}
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 3
	}
	if opts.Groups <= 0 {
		opts.Groups = 50
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 12 * time.Minute
	}
	sizes := slices.Clone(opts.Topics)
	slices.Sort(sizes)
	var runs []CutoverRun
	for _, n := range sizes {
		r, err := cutoverOnce(ctx, n, opts)
		if err != nil {
			return fmt.Errorf("cutover of %d topics: %w", n, err)
		}
		runs = append(runs, r)
		fmt.Fprintf(w, "RESULT: cutover-%d-topics overhead %.2f s\n", n, r.Overhead.Seconds())
		fmt.Fprintf(w, "RESULT: cutover-%d-topics largest-state %d bytes\n", n, r.LargestState.Bytes)
		fmt.Fprintf(w, "RESULT: cutover-%d-topics wall %.1f s\n", n, r.Wall.Seconds())
	}
	if len(runs) > 2 {
		fmt.Fprintln(w, growth(runs))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	steps := []string{cutover.StepValidate, cutover.StepVerifySourceQuiet, cutover.StepFenceSource, cutover.StepWaitForDrain,
		cutover.StepPauseReplication, cutover.StepWaitForConsumersGone, cutover.StepTranslateOffsets, cutover.StepVerifyTarget, cutover.StepReport}
	fmt.Fprintf(tw, "topics\tpartitions\tgroups\toverhead s\twall s\tlargest state B\t%s\t\n", strings.Join(steps, " s\t")+" s")
	for _, r := range runs {
		var cols []string
		for _, s := range steps {
			cols = append(cols, fmt.Sprintf("%.2f", r.ByStep[s].Seconds()))
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f\t%.1f\t%d\t%s\t\n", r.Topics, r.Partitions, r.Groups, r.Overhead.Seconds(), r.Wall.Seconds(),
			r.LargestState.Bytes, strings.Join(cols, "\t"))
	}
	return tw.Flush()
}

// cutoverOnce measures one size.
func cutoverOnce(ctx context.Context, n int, opts CutoverOptions) (CutoverRun, error) {
	topics := make([]string, n)
	for i := range topics {
		topics[i] = fmt.Sprintf("bench.orders.%04d", i)
	}
	groups := make([]string, opts.Groups)
	for i := range groups {
		groups[i] = fmt.Sprintf("bench-group-%03d", i)
	}
	f, err := cutoverrun.StartFleet(ctx, cutoverrun.FleetOptions{Topics: topics, Partitions: opts.Partitions})
	if err != nil {
		return CutoverRun{}, err
	}
	defer f.Close()
	for _, g := range groups {
		if err := f.Commit(ctx, g, topics); err != nil {
			return CutoverRun{}, err
		}
	}
	funcs, hooks := f.Hooks(ctx, groups, topics[0])
	in := map[string]any{
		"groups": groups, "fence": "acl",
		"quietSeconds": 1, "drainTimeoutSeconds": 600, "consumersTimeoutSeconds": 60, "verifySeconds": 300, "pollSeconds": 1,
		"hooks": hooks,
	}
	rate := opts.ControlPlaneRate
	if rate == 0 {
		rate = lambdaendpoint.ControlPlaneRate
	}
	res, err := f.Run(ctx, in, cutoverrun.Options{Functions: funcs, Timeout: opts.Timeout,
		Endpoint: func(s *lambdaendpoint.Server) { s.SetControlPlaneRate(max(rate, 0)) }})
	if err != nil {
		return CutoverRun{}, err
	}
	if res.Status != "SUCCEEDED" {
		return CutoverRun{}, errors.New("execution " + res.Status + ": " + res.Error + ": " + res.Cause)
	}
	total, by := Overhead(res)
	return CutoverRun{Topics: n, Partitions: int(opts.Partitions), Groups: opts.Groups, Overhead: total, Wall: res.Duration,
		LargestState: res.LargestState, ByStep: by}, nil
}

// growth says how the overhead grew with the topics: the ratio from the
// smallest run to the largest, and whether it is linear. A fixed cost (the
// rate limiter's burst, the interpreter) bends the plain ratio, so
// linearity is judged by the cost of each added topic: in the first step
// between sizes and in the last. Worse than linear is a last step that
// costs over 1.5 times as much per added topic as the first.
func growth(runs []CutoverRun) string {
	first, last := runs[0], runs[len(runs)-1]
	perTopic := func(a, b CutoverRun) float64 {
		return (b.Overhead.Seconds() - a.Overhead.Seconds()) / float64(b.Topics-a.Topics)
	}
	early, late := perTopic(runs[0], runs[1]), perTopic(runs[len(runs)-2], last)
	verdict := "linear"
	switch {
	case late > 1.5*early:
		verdict = "worse than linear"
	case late < early/1.5:
		verdict = "better than linear"
	}
	return fmt.Sprintf("RESULT: cutover-growth-%d-to-%d-topics overhead-ratio %.2f x for %.0f x the topics; per added topic %.1f ms (%d to %d) and %.1f ms (%d to %d): %s",
		first.Topics, last.Topics, last.Overhead.Seconds()/first.Overhead.Seconds(), float64(last.Topics)/float64(first.Topics),
		early*1000, runs[0].Topics, runs[1].Topics, late*1000, runs[len(runs)-2].Topics, last.Topics, verdict)
}
