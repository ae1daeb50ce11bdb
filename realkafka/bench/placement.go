package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
)

// Placement is the CPU layout of the dedicated-core mode: the process
// that does a tool's replicating work (the pipe; the replicator's
// function; MirrorMaker 2's JVM) runs alone on the last CPU, as a
// 1-vCPU Lambda function or a one-core worker would, and everything
// else (both brokers, the ESM emulator standing in for Lambda's pollers,
// this orchestrator) shares the others. A nil *Placement is the default
// mode: no pinning, every process on every CPU.
type Placement struct {
	Tool string // taskset CPU list of the replicating process
	Rest string // taskset CPU list of everything else
	All  string // every CPU, restored afterwards
}

// ErrTooFewCPUs is returned when the dedicated-core mode is asked for on
// a machine with one CPU.
var ErrTooFewCPUs = errors.New("the dedicated-core mode needs at least 2 CPUs")

// NewPlacement lays out n CPUs (runtime.NumCPU() when n is 0).
func NewPlacement(n int) (*Placement, error) {
	if n == 0 {
		n = runtime.NumCPU()
	}
	if n < 2 {
		return nil, ErrTooFewCPUs
	}
	p := &Placement{Tool: strconv.Itoa(n - 1), Rest: "0", All: "0-" + strconv.Itoa(n-1)}
	if n > 2 {
		p.Rest = "0-" + strconv.Itoa(n-2)
	}
	return p, nil
}

// command returns name and args to run argv on the tool's CPU.
func (p *Placement) command(argv ...string) (string, []string) {
	if p == nil {
		return argv[0], argv[1:]
	}
	return "taskset", append([]string{"-c", p.Tool}, argv...)
}

// pin sets the CPU list of every thread of pid (threads it starts later
// inherit it).
func pin(pid int, cpus string) error {
	// taskset -a succeeds on a PID with no threads to visit.
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/task", pid)); err != nil {
		return fmt.Errorf("pinning process %d: %w", pid, err)
	}
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %s %d: %v: %s", cpus, pid, err, bytes.TrimSpace(out))
	}
	return nil
}

// apply moves this process and the local brokers onto the shared CPUs and
// returns a function that gives them every CPU again.
func (p *Placement) apply(env Env) (restore func(), err error) {
	pids := []int{os.Getpid()}
	for _, b := range []string{"source", "target"} {
		if pid := env.BrokerPID(b); pid > 0 {
			pids = append(pids, pid)
		}
	}
	restore = func() {
		for _, pid := range pids {
			_ = pin(pid, p.All)
		}
	}
	for _, pid := range pids {
		if err := pin(pid, p.Rest); err != nil {
			restore()
			return nil, err
		}
	}
	return restore, nil
}
