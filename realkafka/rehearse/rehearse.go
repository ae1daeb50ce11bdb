// Package rehearse runs the local migration rehearsal (local/rehearsal:
// seeded topics selected by pattern and mapped by the reconciler through
// the emulated Lambda API, a topic found by its next run, then the cutover
// of every mapped topic through the real state machine while
// numbered-message apps produce and consume)
// on real Apache Kafka brokers, once per source profile
// (realkafka.Profile), for the command kmig-rehearse (`make
// rehearse-real`). Each profile's source is started with brokers.sh if
// needed; the TARGET is shared. Brokers are left running.
package rehearse

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/cutoverrun"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/rehearsal"
	"github.com/kafka-msk-migrator/kafka-msk-migrator/realkafka"
)

// Options configure Run.
type Options struct {
	// Profiles are rehearsed in order; empty means realkafka.Profiles().
	Profiles []realkafka.Profile
	// Input holds cutover input fields set over each profile's
	// (realkafka.Profile.CutoverInput) and the rehearsal's defaults; a
	// nil value removes the field.
	Input map[string]any
	// LogDir receives each profile's transcript as <profile>.txt; empty
	// means a new temporary directory.
	LogDir string
	// Verbose also writes the transcripts to Out.
	Verbose bool
	// Out receives the progress and the RESULT lines; nil means stdout.
	Out io.Writer
}

// Result is one profile's rehearsal.
type Result struct {
	Profile realkafka.Profile
	// Fence is the cutover input's fence kind.
	Fence string
	// Outcome is the rehearsal's verdict; nil when it could not run.
	Outcome *rehearsal.Outcome
	// Err says why the rehearsal could not run (or could not finish).
	Err error
	// Duration is the profile's wall time, connecting included.
	Duration time.Duration
}

// OK reports whether the profile's rehearsal passed.
func (r Result) OK() bool { return r.Err == nil && r.Outcome != nil && r.Outcome.OK() }

// Line is the profile's RESULT line: the apps' tally and, on failure, why.
func (r Result) Line() string {
	counts := "produced 0, consumed 0, missing 0, duplicated 0"
	if r.Outcome != nil {
		counts = r.Outcome.Counts()
	}
	line := fmt.Sprintf("RESULT: profile=%s fence=%s %s", r.Profile, r.Fence, counts)
	switch o := r.Outcome; {
	case r.Err != nil:
		line += "; error: " + strings.Join(strings.Fields(r.Err.Error()), " ")
	case o == nil:
	case o.Selection != "":
		line += "; selection: " + o.Selection
	case !o.Replicated:
		line += "; replication: " + rehearsal.ErrMismatch.Error()
	case o.Cutover != nil && !o.Cutover.Succeeded():
		line += "; " + o.Cutover.Summary()
	case !o.OK():
		line += "; the apps did not read every number exactly once"
	}
	return line
}

// Run rehearses each profile in turn and prints, per profile, a header,
// its time and transcript file, and its RESULT line. It returns how many
// profiles failed; an error means nothing could be rehearsed (tools or
// brokers unavailable).
func Run(ctx context.Context, o Options) (failed int, err error) {
	if len(o.Profiles) == 0 {
		o.Profiles = realkafka.Profiles()
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	root, err := cutoverrun.Root()
	if err != nil {
		return 0, err
	}
	if _, _, err := cutoverrun.Tools(root); err != nil {
		return 0, err
	}
	if _, err := realkafka.Start(); err != nil {
		return 0, err
	}
	if o.LogDir == "" {
		if o.LogDir, err = os.MkdirTemp("", "kmig-rehearse-"); err != nil {
			return 0, err
		}
	} else if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
		return 0, err
	}
	for _, p := range o.Profiles {
		if ctx.Err() != nil {
			return failed, ctx.Err()
		}
		path := filepath.Join(o.LogDir, string(p)+".txt")
		f, err := os.Create(path)
		if err != nil {
			return failed, err
		}
		var w io.Writer = f
		if o.Verbose {
			w = io.MultiWriter(f, o.Out)
		}
		fmt.Fprintf(o.Out, "== profile %s (%s)\n", p, p.Description())
		r := Profile(ctx, w, p, o.Input)
		f.Close()
		fmt.Fprintf(o.Out, "   %s in %s; transcript %s\n", verdict(r), r.Duration.Round(100*time.Millisecond), path)
		fmt.Fprintln(o.Out, r.Line())
		if !r.OK() {
			failed++
		}
	}
	return failed, nil
}

func verdict(r Result) string {
	if r.OK() {
		return "passed"
	}
	return "FAILED"
}

// BulkTopics is how many bulk topics each profile's plan has
// (rehearsal.NewPlan): few, to keep CI short; the demo has many.
const BulkTopics = 3

// Profile rehearses one profile, writing the transcript to w: it connects
// to the profile's source (starting it if needed) and the shared TARGET,
// runs the rehearsal on a plan (rehearsal.NewPlan) and a group whose names
// are unique to the run, its topics selected by the reconciler with a
// pattern, with the profile's cutover input (input's fields set over it),
// and deletes the run's topics and groups if it passed.
func Profile(ctx context.Context, w io.Writer, p realkafka.Profile, input map[string]any) (r Result) {
	start := time.Now()
	in := p.CutoverInput()
	for k, v := range input {
		in[k] = v
	}
	r = Result{Profile: p, Fence: "acl"} // the cutover's default
	if f, ok := in["fence"].(string); ok && f != "" {
		r.Fence = f
	}
	defer func() { r.Duration = time.Since(start) }()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	pair, err := realkafka.ConnectProfile(cctx, p)
	cancel()
	if err != nil {
		r.Err = err
		return r
	}
	defer pair.Close()
	// Every name is unique to the run, so the patterns select this run's
	// topics only on brokers other runs share.
	ns := realkafka.UniqueName("kmig-rehearse-"+string(p)) + "."
	group := realkafka.UniqueName("kmig-rehearse-" + string(p) + "." + rehearsal.AppGroup)
	fmt.Fprintf(w, "== 1. Real Kafka brokers, source profile %s (%s): source %s, target %s\n",
		p, p.Description(), pair.Source.BootstrapServers(), pair.Target.BootstrapServers())
	r.Outcome, r.Err = rehearsal.Rehearse(ctx, w, pair, rehearsal.Options{
		Plan: rehearsal.NewPlan(ns, BulkTopics), Group: group, BulkPerPartition: 50, Cutover: in, Cleanup: true,
		Log: slog.New(slog.DiscardHandler),
	})
	r.Duration = time.Since(start)
	fmt.Fprintf(w, "Rehearsal took %s.\n", r.Duration.Round(time.Millisecond))
	fmt.Fprintln(w, r.Line())
	return r
}
