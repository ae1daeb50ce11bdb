package bench

import (
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Allocation classes, by who allocated.
const (
	ClassCode   = "replicator" // innermost module frame is ours (decoder, handler)
	ClassClient = "kgo client" // inside franz-go's client (batching, compression, I/O)
	ClassTarget = "kfake"      // inside the in-process kfake clusters (target and source): not in a Lambda
	ClassOther  = "other"
	// ClassHarness is this package's own bookkeeping (profile snapshots),
	// partly outside the measured call; it is shown, never counted.
	ClassHarness = "harness"
)

// Memory is what one call allocated and how high the heap rose during it.
type Memory struct {
	// Alloc is every byte allocated in the process during the call
	// (runtime.MemStats.TotalAlloc delta), the in-process clusters included.
	Alloc uint64
	// ByClass splits allocations by who made them; empty unless the call
	// was profiled. Its ClassTarget entry is what a Lambda would not pay.
	ByClass map[string]uint64
	// Sites are the largest allocation sites outside the clusters, largest
	// first; empty unless profiled.
	Sites []Site
	// PeakHeap is the highest heap object size seen during the call minus
	// the size just before it (after a GC), sampled about every
	// millisecond. It includes what the in-process clusters retain.
	PeakHeap uint64
}

// Process is the allocation a Lambda would see: everything but the
// in-process clusters'. Without profiling it is Alloc.
func (m Memory) Process() uint64 {
	if m.ByClass != nil {
		return m.ByClass[ClassCode] + m.ByClass[ClassClient] + m.ByClass[ClassOther]
	}
	return m.Alloc
}

// Site is one allocation site: the innermost frame outside the runtime and
// standard library.
type Site struct {
	Func  string
	Where string // file:line
	Class string
	Bytes uint64
}

// MeasureMemory runs fn once and reports its allocations and peak heap.
// With profile, every allocation is recorded (MemProfileRate 1, slow) so it
// can be attributed by call stack.
func MeasureMemory(profile bool, fn func() error) (Memory, error) {
	var before []runtime.MemProfileRecord
	if profile {
		old := runtime.MemProfileRate
		runtime.MemProfileRate = 1
		defer func() { runtime.MemProfileRate = old }()
	}
	// One GC, not two: sync.Pools survive a single GC in their victim
	// cache, as they usually do between batches in a warm function.
	runtime.GC()
	if profile {
		before = memProfile()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	startAlloc := ms.TotalAlloc

	sampler := newHeapSampler()
	err := fn()
	peak, base := sampler.stop()

	runtime.ReadMemStats(&ms)
	m := Memory{Alloc: ms.TotalAlloc - startAlloc}
	if peak > base {
		m.PeakHeap = peak - base
	}
	if profile {
		runtime.GC()
		m.ByClass, m.Sites = attribute(before, memProfile())
	}
	return m, err
}

func memProfile() []runtime.MemProfileRecord {
	n, _ := runtime.MemProfile(nil, true)
	for {
		p := make([]runtime.MemProfileRecord, n+256)
		k, ok := runtime.MemProfile(p, true)
		if ok {
			return p[:k]
		}
		n = k
	}
}

const heapMetric = "/memory/classes/heap/objects:bytes"

type heapSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	base uint64
	peak uint64
}

func newHeapSampler() *heapSampler {
	s := &heapSampler{done: make(chan struct{})}
	s.base = readHeap(make([]metrics.Sample, 1))
	s.peak = s.base
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sample := make([]metrics.Sample, 1)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := readHeap(sample); v > s.peak {
				s.peak = v
			}
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *heapSampler) stop() (peak, base uint64) {
	close(s.done)
	s.wg.Wait()
	if v := readHeap(make([]metrics.Sample, 1)); v > s.peak {
		s.peak = v
	}
	return s.peak, s.base
}

func readHeap(s []metrics.Sample) uint64 {
	s[0].Name = heapMetric
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

const (
	modulePrefix = "github.com/kafka-msk-migrator/kafka-msk-migrator/"
	kgoPrefix    = "github.com/twmb/franz-go/pkg/kgo."
	kfakePrefix  = "github.com/twmb/franz-go/pkg/kfake."
	benchPrefix  = modulePrefix + "local/bench."
)

// attribute diffs two memory profiles and classes each stack's new
// allocations: kfake if any frame is kfake's, else by the innermost
// third-party or module frame.
func attribute(before, after []runtime.MemProfileRecord) (map[string]uint64, []Site) {
	// The runtime keeps one record per stack and object size; sum them
	// per stack on both sides before taking the difference.
	type entry struct {
		rec   runtime.MemProfileRecord
		bytes int64
	}
	prev := make(map[[32]uintptr]int64, len(before))
	for _, r := range before {
		prev[r.Stack0] += r.AllocBytes
	}
	now := make(map[[32]uintptr]*entry, len(after))
	for _, r := range after {
		e, ok := now[r.Stack0]
		if !ok {
			e = &entry{rec: r}
			now[r.Stack0] = e
		}
		e.bytes += r.AllocBytes
	}
	byClass := map[string]uint64{}
	sites := map[string]*Site{}
	for stk, e := range now {
		r := e.rec
		d := e.bytes - prev[stk]
		if d <= 0 {
			continue
		}
		class, site := classify(r.Stack())
		byClass[class] += uint64(d)
		if class == ClassTarget || class == ClassHarness {
			continue
		}
		key := site.Func + " " + site.Where
		s, ok := sites[key]
		if !ok {
			s = &Site{Func: site.Func, Where: site.Where, Class: class}
			sites[key] = s
		}
		s.Bytes += uint64(d)
	}
	out := make([]Site, 0, len(sites))
	for _, s := range sites {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bytes > out[j].Bytes })
	return byClass, out
}

func classify(stack []uintptr) (string, Site) {
	frames := runtime.CallersFrames(stack)
	var site Site
	var kgo, ours bool
	for {
		f, more := frames.Next()
		fn := f.Function
		switch {
		case strings.HasPrefix(fn, kfakePrefix):
			return ClassTarget, Site{}
		case strings.HasPrefix(fn, kgoPrefix):
			kgo = true
		}
		if site.Func == "" && strings.HasPrefix(fn, benchPrefix) {
			return ClassHarness, Site{}
		}
		if site.Func == "" && strings.HasPrefix(fn, "github.com/") {
			site = Site{Func: trimFunc(fn), Where: shortFile(f.File) + ":" + strconv.Itoa(f.Line)}
			ours = strings.HasPrefix(fn, modulePrefix)
		}
		if !more {
			break
		}
	}
	switch {
	case ours:
		return ClassCode, site
	case kgo:
		return ClassClient, site
	}
	if site.Func == "" {
		site.Func = "(runtime/std)"
	}
	return ClassOther, site
}

func trimFunc(fn string) string {
	fn = strings.TrimPrefix(fn, modulePrefix)
	return strings.TrimPrefix(fn, "github.com/")
}

// shortFile keeps the path from the module root, or from the module
// cache for dependencies.
func shortFile(file string) string {
	if i := strings.Index(file, "/pkg/mod/"); i >= 0 {
		return file[i+len("/pkg/mod/"):]
	}
	for _, dir := range []string{"/shared/", "/local/", "/functions/"} {
		if i := strings.LastIndex(file, dir); i >= 0 {
			return file[i+1:]
		}
	}
	parts := strings.Split(file, "/")
	if len(parts) > 2 {
		return strings.Join(parts[len(parts)-2:], "/")
	}
	return file
}
