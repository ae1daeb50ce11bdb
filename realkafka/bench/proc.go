package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clkTck = 100

// CPUSeconds returns user+system CPU seconds of pid (all its threads) from
// /proc/<pid>/stat.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return float64(ut+st) / clkTck, nil
}

// child is a running child process of this binary.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdout bytes.Buffer
	errLog string
	done   chan struct{}
	err    error
}

// startChild runs this binary as a child; with a non-nil place it runs on
// the tool's CPU (taskset execs the binary, so the PID is the child's).
func startChild(place *Placement, exe string, env Env, logPath string, args ...string) (*child, error) {
	c := &child{name: args[0], errLog: logPath, done: make(chan struct{})}
	name, argv := place.command(append([]string{exe}, args...)...)
	c.cmd = exec.Command(name, argv...)
	c.cmd.Env = append(os.Environ(), env.Environ()...)
	c.cmd.Stdout = &c.stdout
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c.cmd.Stderr = f
	if err := c.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { c.err = c.cmd.Wait(); f.Close(); close(c.done) }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to 60 s (then SIGKILL) and decodes the
// child's stats line.
func (c *child) stop() (ChildStats, error) {
	if !c.exited() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(60 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	var st ChildStats
	if c.err != nil {
		return st, fmt.Errorf("%s: %v; stderr: %s", c.name, c.err, tail(c.errLog))
	}
	if err := json.Unmarshal(bytes.TrimSpace(c.stdout.Bytes()), &st); err != nil {
		return st, fmt.Errorf("%s: no stats line (%v); stderr: %s", c.name, err, tail(c.errLog))
	}
	return st, nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// script runs a repo script with env and extra variables; with a non-nil
// place, on the tool's CPU (processes it starts inherit that).
func script(ctx context.Context, place *Placement, env Env, extra []string, path string, args ...string) (string, error) {
	name, argv := place.command(append([]string{path}, args...)...)
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Env = append(append(os.Environ(), env.Environ()...), extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", path, strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}
