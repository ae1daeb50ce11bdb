package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestValueRoundTripAndChecker(t *testing.T) {
	for _, size := range []int{24, 100, 1024} {
		v := AppendValue(nil, size, 7, 42, 99)
		if len(v) != size {
			t.Fatalf("size %d: got %d bytes", size, len(v))
		}
		p, err := ParseValue(v)
		if err != nil || p.Seq != 42 || p.Partition != 7 || p.SentNanos != 99 {
			t.Fatalf("size %d: %+v %v", size, p, err)
		}
		if size > headerLen {
			v[len(v)-1] ^= 1
			if _, err := ParseValue(v); err == nil {
				t.Fatalf("size %d: corrupted value passed", size)
			}
		}
	}
	rec := func(seq int64) *kgo.Record {
		return &kgo.Record{Partition: 0, Key: AppendKey(nil, seq), Value: AppendValue(nil, 100, 0, seq, 0)}
	}
	k := newChecker("t", false)
	for _, s := range []int64{0, 1, 1, 3} { // 1 duplicated, 2 lost, 4 never arrives
		k.add(rec(s))
	}
	c := k.finish(map[int32]int64{0: 5})
	if c.Duplicated != 1 || c.Lost != 2 || c.Bad != 0 || c.OK() {
		t.Fatalf("check: %+v", c)
	}
}

func TestCPUSeconds(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := CPUSeconds(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestPlacement(t *testing.T) {
	if _, err := NewPlacement(1); !errors.Is(err, ErrTooFewCPUs) {
		t.Fatalf("1 CPU: %v, want ErrTooFewCPUs", err)
	}
	for n, want := range map[int]Placement{2: {Tool: "1", Rest: "0", All: "0-1"}, 8: {Tool: "7", Rest: "0-6", All: "0-7"}} {
		p, err := NewPlacement(n)
		if err != nil || *p != want {
			t.Fatalf("%d CPUs: %+v %v, want %+v", n, p, err, want)
		}
	}
	var none *Placement
	if name, args := none.command("x", "y"); name != "x" || !slices.Equal(args, []string{"y"}) {
		t.Fatalf("no placement: %s %v", name, args)
	}
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("no taskset")
	}
	p, err := NewPlacement(0)
	if err != nil {
		t.Fatal(err)
	}
	// A process started on the tool's CPU stays there, and pin moves it.
	name, args := p.command("sleep", "30")
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	allowed := func() string {
		t.Helper()
		// taskset execs sleep: wait until it has (the bound only
		// guards against an exec that never comes).
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("Name:\tsleep")) {
				_, v, _ := strings.Cut(string(b), "Cpus_allowed_list:\t")
				return strings.TrimSpace(strings.SplitN(v, "\n", 2)[0])
			}
		}
		t.Fatal("waited 10s for taskset to exec sleep")
		return ""
	}
	if got := allowed(); got != p.Tool {
		t.Fatalf("started on CPUs %s, want %s", got, p.Tool)
	}
	if err := pin(cmd.Process.Pid, p.Rest); err != nil {
		t.Fatal(err)
	}
	if got := allowed(); got != p.Rest {
		t.Fatalf("pinned to CPUs %s, want %s", got, p.Rest)
	}
	if err := pin(1<<30, p.Rest); err == nil {
		t.Fatal("pinning a PID that does not exist did not fail")
	}
}

// TestParseCPUTimes checks the reading of /proc/stat's first line that
// settle uses: idle is idle + iowait, total excludes guest time (already
// in user), and a busy fraction comes out of two readings.
func TestParseCPUTimes(t *testing.T) {
	a, err := parseCPUTimes("cpu  100 0 50 800 50 0 0 0 7 7\ncpu0 1 2 3 4 5 6 7 8\n")
	if err != nil {
		t.Fatal(err)
	}
	if a.total != 1000 || a.idle != 850 {
		t.Fatalf("got %+v, want total 1000, idle 850", a)
	}
	b, err := parseCPUTimes("cpu  160 0 70 820 50 0 0 0 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := b.busySince(a); got != 0.8 {
		t.Fatalf("busy %v, want 0.8 (80 of 100 ticks)", got)
	}
	if _, err := parseCPUTimes("intr 1 2 3\n"); err == nil {
		t.Fatal("no error for a first line that is not cpu")
	}
	if _, err := parseCPUTimes("cpu  1 x 3 4 5\n"); err == nil {
		t.Fatal("no error for a non-numeric field")
	}
	if now, err := readCPUTimes(); err != nil || now.total == 0 {
		t.Fatalf("reading this machine's /proc/stat: %+v, %v", now, err)
	}
}

// TestGoalsTable checks the goals table against runs whose ratios are
// known: per-round (b)/(a) at 1 KB of 0.8, 0.6 and 0.75 (median 0.75, a
// pass), a run that failed verification counted as such, and the 100 B
// ratios shown beside the goals.
func TestGoalsTable(t *testing.T) {
	r := &Results{Backlogs: []Backlog{{ValueSize: 1024}, {ValueSize: 100}}}
	add := func(tool string, size int, secs ...float64) {
		for i, s := range secs {
			r.Drains = append(r.Drains, DrainResult{Tool: tool, ValueSize: size, Round: i, Records: 1000, Bytes: 1e9, Seconds: s,
				CPU: map[string]float64{}, Check: Check{Records: 1000}})
		}
	}
	add(ToolRaw, 1024, 2, 2, 2)
	add(ToolReplicator, 1024, 2.5, 2/0.6, 2/0.75)
	add(ToolRaw, 100, 1, 1, 1)
	add(ToolReplicator, 100, 2, 2, 2)
	r.Drains[0].Check.Lost = 1
	var b strings.Builder
	r.writeGoals(&b)
	out := b.String()
	for _, want := range []string{
		"| (b) throughput vs (a) raw pipe | ≥ 0.7× | 0.75 (0.60–0.80)× | PASS |",
		"| (informational) 100 B records: (b) throughput vs (a) | | 0.50 (0.50–0.50)× | |",
		"| zero lost, zero duplicated, every run | all runs | 11/12 runs | MISS |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("goals table lacks %q:\n%s", want, out)
		}
	}
}
