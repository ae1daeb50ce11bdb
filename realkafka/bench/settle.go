package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Settling before each timed run: the previous run leaves work behind
// that would otherwise land on the next one, whichever tool it is. sync
// writes back now the dirty page-cache pages of the topic it wrote (the
// kernel would write them up to 30 s later); the wait lets whatever is
// still running finish (broker log flushes and deletions under way, JVM
// compilation and GC). Work deferred beyond the wait can still land on a
// run: a deleted topic's files go file.delete.delay.ms (a minute by
// default) after the delete.
const (
	settleBusy   = 0.10 // machine busy fraction counted as quiet
	settleWindow = 500 * time.Millisecond
	settleQuiet  = 2                // quiet windows in a row needed
	settleMax    = 90 * time.Second // give up waiting after this long
)

// settle writes dirty pages back (sync), then waits until the whole
// machine has been quiet for settleQuiet windows in a row, or settleMax
// has passed. It returns how long it waited and whether the machine got
// quiet.
func settle(ctx context.Context) (time.Duration, bool, error) {
	start := time.Now()
	syscall.Sync()
	prev, err := readCPUTimes()
	if err != nil {
		return 0, false, err
	}
	quiet := 0
	for time.Since(start) < settleMax {
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-time.After(settleWindow):
		}
		cur, err := readCPUTimes()
		if err != nil {
			return time.Since(start), false, err
		}
		if busy := cur.busySince(prev); busy <= settleBusy {
			quiet++
		} else {
			quiet = 0
		}
		prev = cur
		if quiet >= settleQuiet {
			return time.Since(start), true, nil
		}
	}
	return time.Since(start), false, nil
}

// cpuTimes is the machine's aggregate CPU time from /proc/stat, in ticks.
type cpuTimes struct{ total, idle uint64 }

// busySince is the fraction of CPU time spent neither idle nor waiting for
// I/O between p and t.
func (t cpuTimes) busySince(p cpuTimes) float64 {
	total := t.total - p.total
	if total == 0 {
		return 0
	}
	return 1 - float64(t.idle-p.idle)/float64(total)
}

func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseCPUTimes(string(b))
}

// parseCPUTimes reads the first ("cpu ") line of /proc/stat: user nice
// system idle iowait irq softirq steal ...; idle here is idle + iowait.
func parseCPUTimes(stat string) (cpuTimes, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var t cpuTimes
	for i, s := range f[1:] {
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: field %d of %q: %w", i+1, line, err)
		}
		t.total += v
		if i == 3 || i == 4 {
			t.idle += v
		}
	}
	return t, nil
}
