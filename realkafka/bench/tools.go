package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Tool names.
const (
	ToolRaw        = "raw"        // (a)
	ToolReplicator = "replicator" // (b)
	ToolMM2        = "mm2"        // (c)
)

// toolLabel is a tool's name in reports: its tag, then what it is.
func toolLabel(t string) string {
	switch t {
	case ToolRaw:
		return toolTag(t) + " raw franz-go pipe"
	case ToolReplicator:
		return toolTag(t) + " replicator via ESM emulator"
	case ToolMM2:
		return toolTag(t) + " MirrorMaker 2"
	}
	return t
}

// toolTag is the report's letter for a tool: (a), (b) or (c).
func toolTag(t string) string {
	switch t {
	case ToolRaw:
		return "(a)"
	case ToolReplicator:
		return "(b)"
	case ToolMM2:
		return "(c)"
	}
	return t
}

// running is one started tool: its processes by role.
type running struct {
	tool     string
	children []*child // Go children (raw: pipe; replicator: function, esm)
	roles    map[string]int
	mm2Dir   string
	mm2      string // realkafka/mm2.sh
	env      Env
	stats    map[string]ChildStats
}

// MM2 state lives on the target (Connect group source-mm2 and these
// topics); it is removed before every MM2 run so each starts afresh.
var mm2Internal = []string{"mm2-configs.source.internal", "mm2-offsets.source.internal", "mm2-status.source.internal"}

const mm2Group = "source-mm2"

func (o *Options) startTool(ctx context.Context, tool, topic, runID string) (*running, error) {
	rn := &running{tool: tool, roles: map[string]int{}, stats: map[string]ChildStats{}, env: o.Env,
		mm2: filepath.Join(o.Env.RepoRoot, "realkafka", "mm2.sh")}
	logf := func(role string) string { return filepath.Join(o.WorkDir, runID+"-"+role+".log") }
	switch tool {
	case ToolRaw:
		c, err := startChild(o.Placement, o.Exe, o.Env, logf("pipe"), ChildPipe, "-topic", topic, "-group", "bench-"+runID, "-compression", o.Compression)
		if err != nil {
			return nil, err
		}
		rn.children = append(rn.children, c)
		rn.roles["pipe"] = c.pid()
	case ToolReplicator:
		sock := filepath.Join(o.WorkDir, runID+".sock")
		fn, err := startChild(o.Placement, o.Exe, o.Env, logf("function"), ChildFunction, "-socket", sock, "-compression", o.Compression)
		if err != nil {
			return nil, err
		}
		rn.children = append(rn.children, fn)
		rn.roles["function"] = fn.pid()
		e, err := startChild(nil, o.Exe, o.Env, logf("esm"), ChildESM, "-topic", topic, "-group", "bench-"+runID, "-socket", sock,
			"-concurrency", strconv.Itoa(o.Concurrency), "-batch-size", strconv.Itoa(o.BatchSize), "-window", o.Window.String())
		if err != nil {
			rn.stop()
			return nil, err
		}
		rn.children = append(rn.children, e)
		rn.roles["esm"] = e.pid()
	case ToolMM2:
		rn.mm2Dir = filepath.Join(o.WorkDir, "mm2-"+runID)
		if err := os.MkdirAll(rn.mm2Dir, 0o755); err != nil {
			return nil, err
		}
		extra := filepath.Join(rn.mm2Dir, "extra.properties")
		// Batching comparable to franz-go's: up to 1 MB per partition batch, requests carrying
		// several partitions' batches (franz-go's ProducerBatchMaxBytes is per partition too).
		props := "target.producer.batch.size = 1048576\ntarget.producer.max.request.size = 16777216\n"
		if err := os.WriteFile(extra, []byte(props), 0o644); err != nil {
			return nil, err
		}
		vars := []string{
			"KMIG_REAL_RUN_DIR=" + rn.mm2Dir, "KMIG_MM2_TOPICS=" + topic, "KMIG_MM2_TASKS_MAX=" + strconv.Itoa(o.MM2Tasks),
			"KMIG_MM2_COMPRESSION=" + o.Compression, "KMIG_MM2_SYNC_TOPIC_CONFIGS=false", "KMIG_MM2_EXTRA=" + extra,
		}
		mm2 := rn.mm2
		cfg, err := script(ctx, nil, o.Env, vars, mm2, "render", filepath.Join(rn.mm2Dir, "mm2.properties"))
		if err != nil {
			return nil, err
		}
		if _, err := script(ctx, o.Placement, o.Env, vars, mm2, "start", cfg); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(filepath.Join(rn.mm2Dir, "mm2.pid"))
		if err != nil {
			return nil, err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, err
		}
		rn.roles["mm2"] = pid
	default:
		return nil, fmt.Errorf("unknown tool %q", tool)
	}
	return rn, nil
}

// alive reports an error if a process of the tool has exited.
func (rn *running) alive() error {
	for _, c := range rn.children {
		if c.exited() {
			return fmt.Errorf("%s exited early: %v; stderr: %s", c.name, c.err, tail(c.errLog))
		}
	}
	if pid := rn.roles["mm2"]; pid != 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return fmt.Errorf("MirrorMaker 2 (pid %d) exited; log: %s", pid, tail(filepath.Join(rn.mm2Dir, "mm2", "mm2.log")))
		}
	}
	return nil
}

// stop stops the tool's processes: the ESM before the function it invokes.
func (rn *running) stop() error {
	var first error
	for i := len(rn.children) - 1; i >= 0; i-- {
		c := rn.children[i]
		st, err := c.stop()
		if err != nil && first == nil {
			first = err
		}
		rn.stats[c.name] = st
	}
	if rn.mm2Dir != "" {
		vars := []string{"KMIG_REAL_RUN_DIR=" + rn.mm2Dir}
		if _, err := script(context.Background(), nil, rn.env, vars, rn.mm2, "stop"); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// cpu samples the CPU seconds of every role.
func (rn *running) cpu(out map[string]float64) {
	for role, pid := range rn.roles {
		if s, err := CPUSeconds(pid); err == nil {
			out[role] = s
		}
	}
}

// resetMM2 removes MM2's state from the target (MM2 must not be running).
func resetMM2(ctx context.Context, tadm *Admin) error {
	if err := tadm.DeleteGroupIfAny(ctx, mm2Group); err != nil {
		return err
	}
	return tadm.DeleteTopicsAndWait(ctx, mm2Internal...)
}

// waitTarget polls the target topic's summed end offsets until they reach
// total, sampling CPU at each tick. It returns the snapshot of the last
// tick before the first record landed, and the one at which all had.
func (o *Options) waitTarget(ctx context.Context, tadm *Admin, rn *running, topic string, total int64) (start, end snap, err error) {
	prev := o.snap(ctx, tadm, rn, topic)
	started := false
	if prev.landed > 0 {
		start, started = prev, true
	}
	last, lastN := time.Now(), prev.landed
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return start, end, ctx.Err()
		case <-tick.C:
		}
		if err := rn.alive(); err != nil {
			return start, end, err
		}
		s := o.snap(ctx, tadm, rn, topic)
		if !started {
			if s.landed > 0 {
				start, started = prev, true
			} else {
				prev = s
			}
		}
		if s.landed >= total {
			return start, s, nil
		}
		if s.landed != lastN {
			last, lastN = time.Now(), s.landed
		} else if time.Since(last) > o.StallTimeout {
			return start, end, fmt.Errorf("no progress for %v at %d of %d records on the target", o.StallTimeout, s.landed, total)
		}
	}
}

// snap is one sample: time, CPU seconds by role, records on the target.
type snap struct {
	at     time.Time
	cpu    map[string]float64
	landed int64
}

func (o *Options) snap(ctx context.Context, tadm *Admin, rn *running, topic string) snap {
	s := snap{at: time.Now(), cpu: map[string]float64{}}
	rn.cpu(s.cpu)
	for _, b := range []string{"source", "target"} {
		if pid := o.Env.BrokerPID(b); pid != 0 {
			if v, err := CPUSeconds(pid); err == nil {
				s.cpu[b+"-broker"] = v
			}
		}
	}
	if ends, err := tadm.EndOffsets(ctx, topic); err == nil {
		s.landed = sum(ends)
	}
	return s
}
