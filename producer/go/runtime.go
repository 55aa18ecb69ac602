// SPDX-License-Identifier: MIT

package rtm

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RuntimeMetrics publishes every metric runtime/metrics offers into a
// segment (docs/go.md): one metrics.Read per sample.
//
// Names: the OpenTelemetry Go runtime semantic conventions where they define
// one (semconv below); every other key K = "/path/to/x:unit" becomes
// "go.runtime." + path with '/' as '.' (go.runtime.gc.cycles.total), with
// the unit as the OTel unit (bytes → By, seconds and cpu-seconds → s,
// percent → %, anything else → {unit}); where two keys share a path, the one
// not in bytes gets ".<unit>" appended (go.runtime.gc.heap.frees.objects).
// Cumulative values are counters; others up-down counters (integers) or
// gauges (floats); Float64Histograms are exponential histograms at the
// scale that fits the runtime's buckets (publishHistogram).
type RuntimeMetrics struct {
	seg     *Segment
	samples []metrics.Sample
	pubs    []publisher
	used    [2]UpDownCounter // go.memory.used{go.memory.type=stack|other}
	lastUse [2]int64
	limit   UpDownCounter // go.memory.limit (runtime/debug before Go 1.21)
	lastLim int64
	gcFrac  Gauge // go.runtime.gc.cpu_fraction
	cpuGC   int   // sample index of /cpu/classes/gc/total:cpu-seconds, or -1
	cpuAll  int
	lastCPU [2]float64
	idx     map[string]int

	// The seed's heap hint (FAQ Q2): the idle share of the heap, and
	// debug.FreeOSMemory() above RTM_TRIM_IDLE_RATIO, as for C programs.
	idleRatio Gauge
	trims     Counter
	trimAt    float64 // 0: off
	above     int     // samples in a row above trimAt
	sites     *lockSites

	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
}

type publisher struct {
	integral bool // a histogram of whole bytes
	kind   uint8
	float  bool
	c      Counter
	u      UpDownCounter
	g      Gauge
	h      Histogram
	lastU  uint64
	lastF  float64
	lastH  []uint64 // runtime bucket counts
}

// The OTel Go runtime semantic conventions that map one key to one metric.
var semconv = map[string]Def{
	"/gc/heap/allocs:bytes":        {Name: "go.memory.allocated", Unit: "By", Description: "Memory allocated to the heap by the application."},
	"/gc/heap/allocs:objects":      {Name: "go.memory.allocations", Unit: "{allocation}", Description: "Count of allocations to the heap by the application."},
	"/gc/heap/goal:bytes":          {Name: "go.memory.gc.goal", Unit: "By", Description: "Heap size target for the end of the GC cycle."},
	"/sched/goroutines:goroutines": {Name: "go.goroutine.count", Unit: "{goroutine}", Description: "Count of live goroutines."},
	"/sched/gomaxprocs:threads":    {Name: "go.processor.limit", Unit: "{thread}", Description: "The number of OS threads that can execute user-level Go code simultaneously."},
	"/gc/gogc:percent":             {Name: "go.config.gogc", Unit: "%", Description: "Heap size target percentage configured by the user, otherwise 100."},
	"/gc/gomemlimit:bytes":         {Name: "go.memory.limit", Unit: "By", Description: "Go runtime memory limit configured by the user, if a limit exists."},
	"/sched/latencies:seconds":     {Name: "go.schedule.duration", Unit: "s", Description: "The time goroutines have spent in the scheduler in a runnable state before actually running."},
}

// RuntimeName is the metric name and unit a runtime/metrics key is
// published under, and whether the key's path is shared with another key
// of the running Go version.
func RuntimeName(key string, sharedPath bool) (name, unit string) {
	if d, ok := semconv[key]; ok {
		return d.Name, d.Unit
	}
	path, u := key, ""
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		path, u = key[:i], key[i+1:]
	}
	var b strings.Builder
	b.WriteString("go.runtime")
	for _, r := range strings.ReplaceAll(path, "/", ".") {
		if r == '.' || r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteRune('_')
		}
	}
	switch u {
	case "bytes":
		unit = "By"
	case "seconds", "cpu-seconds":
		unit = "s"
	case "percent":
		unit = "%"
	default:
		unit = "{" + u + "}"
	}
	if sharedPath && u != "bytes" {
		b.WriteString("." + strings.ReplaceAll(u, "-", "_"))
	}
	return b.String(), unit
}

// StartRuntimeMetrics registers the running Go version's runtime metrics in
// seg, publishes them once now and then every interval from a goroutine of
// its own, until Stop.
func StartRuntimeMetrics(seg *Segment, every time.Duration) (*RuntimeMetrics, error) {
	if seg == nil || every <= 0 {
		return nil, ErrInvalid
	}
	all := metrics.All()
	rm := &RuntimeMetrics{seg: seg, idx: map[string]int{}, cpuGC: -1, cpuAll: -1,
		stop: make(chan struct{}), done: make(chan struct{})}
	paths := map[string]int{}
	for _, d := range all {
		paths[strings.SplitN(d.Name, ":", 2)[0]]++
	}
	rm.samples = make([]metrics.Sample, len(all))
	rm.pubs = make([]publisher, len(all))
	for i, d := range all {
		rm.samples[i].Name = d.Name
		rm.idx[d.Name] = i
		if err := rm.register(i, d, paths[strings.SplitN(d.Name, ":", 2)[0]] > 1); err != nil {
			return nil, fmt.Errorf("rtm: %s: %w", d.Name, err)
		}
	}
	var err error
	for k, typ := range []string{"stack", "other"} {
		rm.used[k], err = seg.UpDownCounter(Def{Name: "go.memory.used", Unit: "By",
			Description: "Memory used by the Go runtime.", Attrs: []Attr{{"go.memory.type", typ}}})
		if err != nil {
			return nil, err
		}
	}
	if rm.gcFrac, err = seg.Gauge(Def{Name: "go.runtime.gc.cpu_fraction", Unit: "1", Float: true,
		Description: "Fraction of this program's CPU time used by the GC since the last sample " +
			"(since start where runtime/metrics has no CPU classes, from MemStats.GCCPUFraction)."}); err != nil {
		return nil, err
	}
	if i, ok := rm.idx["/cpu/classes/gc/total:cpu-seconds"]; ok {
		rm.cpuGC, rm.cpuAll = i, rm.idx["/cpu/classes/total:cpu-seconds"]
	}
	// The names the C producer uses: one alert and one dashboard panel
	// serve both (no OTel convention names it).
	if rm.idleRatio, err = seg.Gauge(Def{Name: "runtime.native.mem.heap.idle_ratio", Unit: "1",
		Float: true, Description: "Idle share of the heap: (free + released) / all heap memory " +
			"(MemStats HeapIdle / HeapSys); above 0.5 with much free, debug.FreeOSMemory() " +
			"could give memory back"}); err != nil {
		return nil, err
	}
	if rm.trims, err = seg.Counter(Def{Name: "runtime.native.mem.heap.trims", Unit: "{trim}",
		Description: "debug.FreeOSMemory() calls made because of RTM_TRIM_IDLE_RATIO"}); err != nil {
		return nil, err
	}
	if rm.trimAt, err = trimSetting(); err != nil {
		return nil, err
	}
	rm.sites = startLockSites(seg)
	rm.Publish()
	go rm.loop(every)
	return rm, nil
}

func (rm *RuntimeMetrics) register(i int, d metrics.Description, shared bool) error {
	name, unit := RuntimeName(d.Name, shared)
	def := Def{Name: name, Unit: unit, Description: d.Description}
	if sc, ok := semconv[d.Name]; ok {
		def.Description = sc.Description
	}
	if len(def.Description) > descMax {
		def.Description = def.Description[:descMax]
		for !validText(def.Description) { // cut on a rune boundary
			def.Description = def.Description[:len(def.Description)-1]
		}
	}
	p := &rm.pubs[i]
	var err error
	switch {
	case d.Name == "/gc/gomemlimit:bytes":
		// go.memory.limit only while a limit exists (semconv), for
		// every Go version alike: Publish, from runtime/debug.
		p.kind = 0
	case d.Kind == metrics.KindFloat64Histogram:
		p.kind = kindHistogram
		// The runtime's bounds are only known from a sample.
		s := []metrics.Sample{{Name: d.Name}}
		metrics.Read(s)
		h := s[0].Value.Float64Histogram()
		p.lastH = make([]uint64, len(h.Counts))
		// Exponential, at the scale that fits the runtime's buckets:
		// sizes (integers, classes split at each power of two) exactly
		// at scale 0; times (16 linear sub-buckets an octave of
		// nanoseconds, which are not octaves of seconds) at scale 3, each
		// by its geometric middle.  No sum, min or max: the runtime
		// keeps none, and rtm does not make them up.
		x := expDef{size: 80, scale: 3, noSum: true}
		if unit == "By" {
			x = expDef{size: 24, scale: 0, noSum: true}
			p.integral = true
		}
		p.h, err = rm.seg.expHistogram(def, x)
	case d.Cumulative:
		p.kind, p.float = kindCounter, d.Kind == metrics.KindFloat64
		def.Float = p.float
		p.c, err = rm.seg.Counter(def)
	case d.Kind == metrics.KindUint64:
		p.kind = kindUpDown
		p.u, err = rm.seg.UpDownCounter(def)
	default:
		p.kind, p.float = kindGauge, true
		def.Float = true
		p.g, err = rm.seg.Gauge(def)
	}
	return err
}

// Publish takes one sample now (the goroutine does this every interval;
// tests and a program about to close its segment may call it too).
func (rm *RuntimeMetrics) Publish() {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	// A sign of life each publication: HEARTBEAT in rtm-shmdump is its age.
	defer rm.seg.Heartbeat()
	metrics.Read(rm.samples)
	for i := range rm.pubs {
		rm.pubs[i].publish(rm.samples[i].Value)
	}
	rm.memoryUsed()
	rm.heapIdle()
	if rm.sites != nil {
		rm.sites.fold()
	}
	// go.memory.limit: "if a limit exists" (OTel semconv), so the series
	// is created at the first limit set; a limit removed again reads as
	// the runtime says, math.MaxInt64 (a series cannot leave a segment).
	if lim := debug.SetMemoryLimit(-1); rm.limit.s != nil || lim != math.MaxInt64 {
		if rm.limit.s == nil {
			rm.limit, _ = rm.seg.UpDownCounter(semconv["/gc/gomemlimit:bytes"])
		}
		rm.limit.Add(lim - rm.lastLim)
		rm.lastLim = lim
	}
	if rm.cpuGC >= 0 && rm.cpuAll >= 0 {
		gc, all := rm.samples[rm.cpuGC].Value.Float64(), rm.samples[rm.cpuAll].Value.Float64()
		if all > rm.lastCPU[1] {
			rm.gcFrac.SetFloat((gc - rm.lastCPU[0]) / (all - rm.lastCPU[1]))
		}
		rm.lastCPU = [2]float64{gc, all}
	} else {
		// Go before 1.20 has no CPU classes: MemStats's fraction since
		// start, at the price of a short stop-the-world once per sample.
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rm.gcFrac.SetFloat(ms.GCCPUFraction)
	}
	rm.seg.Heartbeat()
}

func (rm *RuntimeMetrics) value(key string) int64 {
	if i, ok := rm.idx[key]; ok && rm.samples[i].Value.Kind() == metrics.KindUint64 {
		return int64(rm.samples[i].Value.Uint64())
	}
	return 0
}

// go.memory.used (semconv): memory mapped by the runtime, less what it
// returned to the system; "stack" is goroutine and OS-thread stacks.
func (rm *RuntimeMetrics) memoryUsed() {
	used := rm.value("/memory/classes/total:bytes") - rm.value("/memory/classes/heap/released:bytes")
	stack := rm.value("/memory/classes/heap/stacks:bytes") + rm.value("/memory/classes/os-stacks:bytes")
	now := [2]int64{stack, used - stack}
	for k := range now {
		rm.used[k].Add(now[k] - rm.lastUse[k])
		rm.lastUse[k] = now[k]
	}
}

// trimMinFree is the free heap below which a FreeOSMemory (a full GC) is
// not worth it; trimEvery the samples between two while the ratio stays
// above the setting.
const (
	trimMinFree = 1 << 20
	trimEvery   = 10
)

// trimSetting is RTM_TRIM_IDLE_RATIO, a ratio in (0, 1), or 0 when unset.
func trimSetting() (float64, error) {
	v := os.Getenv("RTM_TRIM_IDLE_RATIO")
	if v == "" {
		return 0, nil
	}
	r, err := strconv.ParseFloat(v, 64)
	if err != nil || !(r > 0 && r < 1) {
		return 0, fmt.Errorf("%w: RTM_TRIM_IDLE_RATIO=%q is not a ratio between 0 and 1", ErrInvalid, v)
	}
	return r, nil
}

// heapIdle publishes the idle ratio and, with RTM_TRIM_IDLE_RATIO, gives
// the free heap back once the ratio has stayed above it for two samples,
// and again every trimEvery samples while it stays there (as C does).
func (rm *RuntimeMetrics) heapIdle() {
	free := rm.value("/memory/classes/heap/free:bytes")
	released := rm.value("/memory/classes/heap/released:bytes")
	all := free + released + rm.value("/memory/classes/heap/objects:bytes") +
		rm.value("/memory/classes/heap/unused:bytes")
	if all <= 0 {
		return
	}
	ratio := float64(free+released) / float64(all)
	rm.idleRatio.SetFloat(ratio)
	if rm.trimAt == 0 || ratio <= rm.trimAt || free < trimMinFree {
		rm.above = 0
		return
	}
	rm.above++
	if rm.above == 2 || (rm.above > 2 && (rm.above-2)%trimEvery == 0) {
		debug.FreeOSMemory()
		rm.trims.Add(1)
	}
}

func (p *publisher) publish(v metrics.Value) {
	switch v.Kind() {
	case metrics.KindUint64:
		x := v.Uint64()
		switch p.kind {
		case kindCounter:
			if x >= p.lastU { // cumulative: never goes back
				p.c.Add(x - p.lastU)
			}
		case kindUpDown:
			p.u.Add(int64(x - p.lastU))
		}
		p.lastU = x
	case metrics.KindFloat64:
		x := v.Float64()
		switch p.kind {
		case kindCounter:
			if x >= p.lastF {
				p.c.AddFloat(x - p.lastF)
			}
		case kindGauge:
			p.g.SetFloat(x)
		}
		p.lastF = x
	case metrics.KindFloat64Histogram:
		p.publishHistogram(v.Float64Histogram())
	}
}

// publishHistogram adds the runtime buckets' new counts to the exponential
// histogram: a bucket [lo, hi) goes where its values go — lo for sizes
// (whole bytes) and for the open-ended last one, the geometric middle for
// times; [0, hi) is the zero count (durations are whole nanoseconds), and
// negative durations, which the runtime never measures, are left out.
func (p *publisher) publishHistogram(h *metrics.Float64Histogram) {
	if p.h.s == nil || len(h.Counts) != len(p.lastH) {
		return
	}
	x, q, shared := p.h.begin()
	for j, n := range h.Counts {
		if n <= p.lastH[j] {
			continue
		}
		d := n - p.lastH[j]
		p.lastH[j] = n
		lo, hi := h.Buckets[j], h.Buckets[j+1]
		v := lo
		switch {
		case hi <= 0:
			continue
		case lo <= 0:
			*x.u64(xsCount) += d
			*x.u64(xsZero) += d
			continue
		case !p.integral && !math.IsInf(hi, 1):
			v = math.Sqrt(lo * hi)
		}
		if x.add(false, expIndex8(math.Float64bits(v)), expScaleMax, d) {
			*x.u64(xsCount) += d
		}
	}
	p.h.end(x, q, shared)
}

func (rm *RuntimeMetrics) loop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	defer close(rm.done)
	for {
		select {
		case <-rm.stop:
			return
		case <-t.C:
			rm.Publish()
		}
	}
}

// Stop ends the publishing goroutine (after a last sample) and waits for it.
func (rm *RuntimeMetrics) Stop() {
	select {
	case <-rm.stop:
		return
	default:
	}
	close(rm.stop)
	<-rm.done
	rm.Publish()
}
