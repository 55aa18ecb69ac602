// SPDX-License-Identifier: MIT

package rtm

import (
	"errors"
	"math"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func open(t *testing.T, svc string) *Segment {
	t.Helper()
	s, err := Open(Options{ServiceName: svc, ServiceVersion: "1.2", Dir: t.TempDir(),
		Resource: map[string]string{"team": "core"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSegmentIsPublishedCompleteUnderItsName(t *testing.T) {
	s := open(t, "svc")
	defer s.Close()
	base := filepath.Base(s.Path())
	if !strings.HasPrefix(base, "rtm.") || !strings.HasSuffix(base, ".rtm") {
		t.Fatalf("name %s", base)
	}
	st, err := os.Lstat(s.Path())
	if err != nil || st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	f := readSegment(t, s.Path())
	h := f.hdr
	if string(h[hServiceName:hServiceName+3]) != "svc" || h[hServiceName+3] != 0 ||
		!strings.HasPrefix(string(h[hProducer:]), "rtm-go/"+Version+"\x00") {
		t.Fatalf("header strings wrong")
	}
	if *s.p32(hState) != stateLive || int(*s.p32(hPid)) != os.Getpid() {
		t.Fatalf("state/pid wrong")
	}
	// Nothing is left under a temporary name.
	ents, _ := os.ReadDir(filepath.Dir(s.Path()))
	if len(ents) != 1 {
		t.Fatalf("%d files in the directory", len(ents))
	}
}

// The directory's security model (FORMAT.md §1): a symbolic link, or a
// directory others may write without the sticky bit, is refused.
func TestUnsafeDirectoriesAreRefused(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777) // past the umask: world-writable, not sticky
	link := filepath.Join(base, "link")
	os.Symlink(base, link)
	for dir, want := range map[string]error{open: syscall.EPERM, link: syscall.ELOOP} {
		if _, err := Open(Options{ServiceName: "svc", Dir: dir}); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", dir, err, want)
		}
	}
	os.Chmod(open, 0o777|os.ModeSticky)
	s, err := Open(Options{ServiceName: "svc", Dir: open})
	if err != nil {
		t.Fatalf("sticky directory refused: %v", err)
	}
	s.Close()
}

func TestValuesArriveExactly(t *testing.T) {
	s := open(t, "svc")
	defer s.Close()
	c, _ := s.Counter(Def{Name: "app.requests", Unit: "{request}", Attrs: []Attr{{"route", "/a"}}})
	cf, _ := s.Counter(Def{Name: "app.cpu", Unit: "s", Float: true})
	u, _ := s.UpDownCounter(Def{Name: "app.active", Unit: "{request}"})
	g, _ := s.Gauge(Def{Name: "app.temp", Unit: "Cel", Float: true})
	gi, _ := s.Gauge(Def{Name: "app.level", Unit: "1"})
	h, _ := s.Histogram(Def{Name: "app.latency", Unit: "s", Bounds: []float64{0.01, 0.1, 1}})
	c.Add(100)
	c.Add(5)
	cf.AddFloat(0.25)
	cf.AddFloat(0.5)
	u.Add(7)
	u.Add(-10)
	g.SetFloat(21.5)
	gi.Set(-4)
	for _, v := range []float64{0.005, 0.01, 0.5, 2, 3, math.NaN()} {
		h.Record(v)
	}
	f := readSegment(t, s.Path())
	if v := f.find(t, "app.requests", "route=/a").value; v != 105 {
		t.Errorf("counter %v", v)
	}
	if v := f.find(t, "app.cpu").value; v != 0.75 {
		t.Errorf("float counter %v", v)
	}
	if v := f.find(t, "app.active").value; v != -3 {
		t.Errorf("up-down %v", v)
	}
	if v := f.find(t, "app.temp").value; v != 21.5 {
		t.Errorf("gauge %v", v)
	}
	if v := f.find(t, "app.level").value; v != -4 {
		t.Errorf("int gauge %v", v)
	}
	hs := f.find(t, "app.latency")
	// (-Inf,0.01] gets 0.005 and 0.01 (upper bound inclusive); NaN is dropped.
	if want := []uint64{2, 0, 1, 2}; !equalU(hs.buckets, want) || math.Abs(hs.sum-5.515) > 1e-12 || hs.min != 0.005 || hs.max != 3 {
		t.Errorf("histogram %v sum %v min %v max %v", hs.buckets, hs.sum, hs.min, hs.max)
	}
	if hs.start == 0 || hs.kind != kindHistogram || hs.vtype != valueDouble {
		t.Errorf("histogram descriptor")
	}
}

func equalU(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSameSeriesSameSlotOtherKindRefused(t *testing.T) {
	s := open(t, "svc")
	defer s.Close()
	a, _ := s.Counter(Def{Name: "x", Attrs: []Attr{{"k", "1"}, {"j", "2"}}})
	b, err := s.Counter(Def{Name: "x", Attrs: []Attr{{"j", "2"}, {"k", "1"}}})
	if err != nil || a.off != b.off {
		t.Fatalf("same series: %v, offsets %d %d", err, a.off, b.off)
	}
	if _, err := s.Gauge(Def{Name: "x", Attrs: []Attr{{"k", "1"}, {"j", "2"}}}); !errors.Is(err, ErrExists) {
		t.Fatalf("other kind: %v", err)
	}
	for _, d := range []Def{{Name: ""}, {Name: "9x"}, {Name: "a b"}, {Name: "x", Unit: "\n"},
		{Name: "x", Attrs: []Attr{{"", "v"}}}, {Name: "x", Attrs: []Attr{{"k", "\xff"}}},
		{Name: "x", Attrs: []Attr{{"k", "1"}, {"k", "2"}}}} {
		if _, err := s.Counter(d); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v accepted: %v", d, err)
		}
	}
	if _, err := s.Histogram(Def{Name: "h", Bounds: []float64{1, 1}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("non-increasing bounds accepted")
	}
}

func TestFullSegmentCountsDroppedAndHandlesStayUsable(t *testing.T) {
	s, err := Open(Options{ServiceName: "svc", Dir: t.TempDir(), MaxMetrics: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Counter(Def{Name: "a"})
	s.Counter(Def{Name: "b"})
	c, err := s.Counter(Def{Name: "c"})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("third metric: %v", err)
	}
	c.Add(1) // the zero handle drops it
	if *s.p32(hDropped) != 1 {
		t.Fatalf("dropped %d", *s.p32(hDropped))
	}
}

func TestCloseMarksClosedAndDetaches(t *testing.T) {
	s := open(t, "svc")
	c, _ := s.Counter(Def{Name: "a"})
	c.Add(3)
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c.Add(1000) // lands in private memory
	f := readSegment(t, path)
	if f.hdr[hState] != stateClosed || f.find(t, "a").value != 3 {
		t.Fatalf("after close: state %d value %v", f.hdr[hState], f.find(t, "a").value)
	}
	if !errors.Is(s.Close(), ErrClosed) {
		t.Fatal("second close")
	}
}

// Many goroutines on every instrument: exact totals (run with -race).
func TestConcurrentUpdatesAreExact(t *testing.T) {
	s := open(t, "svc")
	defer s.Close()
	exactUnderLoad(t, s)
}

// With more Ps than stripes, the Ps past them share shard 0 (atomic
// updates, shard_fallbacks raised), and totals stay exact.
func TestPsPastTheStripesShareShardZero(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	s, err := Open(Options{ServiceName: "svc", Dir: t.TempDir(), Stripes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exactUnderLoad(t, s)
	if *s.p32(hShardFallbacks) == 0 {
		t.Errorf("no shard_fallbacks with 4 Ps and 1 stripe")
	}
}

func exactUnderLoad(t *testing.T, s *Segment) {
	c, _ := s.Counter(Def{Name: "c"})
	u, _ := s.UpDownCounter(Def{Name: "u"})
	h, _ := s.Histogram(Def{Name: "h", Bounds: []float64{1, 2}})
	const G, N = 16, 5000
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < N; i++ {
				c.Add(1)
				u.Add(int64(g%2*2 - 1))
				h.Record(float64(i % 3))
			}
		}(g)
	}
	wg.Wait()
	f := readSegment(t, s.Path())
	hs := f.find(t, "h")
	if f.find(t, "c").value != G*N || f.find(t, "u").value != 0 || hs.count() != G*N {
		t.Fatalf("c %v u %v h %v", f.find(t, "c").value, f.find(t, "u").value, hs.count())
	}
	var per float64 // the sum of i%3 over i < N: one goroutine's observations
	for i := 0; i < N; i++ {
		per += float64(i % 3)
	}
	if hs.sum != per*G || hs.min != 0 || hs.max != 2 {
		t.Fatalf("sum %v (want %v) min %v max %v", hs.sum, per*G, hs.min, hs.max)
	}
}

// ---- runtime metrics ----

// A segment publishing runtime metrics only when the test calls Publish.
func startRuntime(t *testing.T) (*Segment, *RuntimeMetrics) {
	t.Helper()
	s := open(t, "svc")
	t.Cleanup(func() { s.Close() })
	rm, err := StartRuntimeMetrics(s, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rm.Stop) // before the segment closes
	return s, rm
}

func TestEveryRuntimeMetricIsPublished(t *testing.T) {
	s, rm := startRuntime(t)
	f := readSegment(t, s.Path())
	paths := map[string]int{}
	for _, k := range rm.samples {
		paths[strings.SplitN(k.Name, ":", 2)[0]]++
	}
	for _, k := range rm.samples {
		if k.Name == "/gc/gomemlimit:bytes" { // only with a limit: below
			continue
		}
		name, unit := RuntimeName(k.Name, paths[strings.SplitN(k.Name, ":", 2)[0]] > 1)
		got := f.find(t, name)
		if got.unit != unit {
			t.Errorf("%s: unit %q, want %q", k.Name, got.unit, unit)
		}
	}
	for _, n := range []string{"go.memory.allocated", "go.memory.allocations", "go.memory.gc.goal",
		"go.goroutine.count", "go.processor.limit", "go.schedule.duration",
		"go.runtime.gc.cycles.total", "go.runtime.gc.pauses", "go.runtime.gc.cpu_fraction"} {
		f.find(t, n)
	}
	f.find(t, "go.memory.used", "go.memory.type=stack")
	f.find(t, "go.memory.used", "go.memory.type=other")
	if f.find(t, "go.processor.limit").value != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("go.processor.limit")
	}
	// go.memory.limit only once a limit exists (OTel semconv).
	for _, x := range f.series {
		if x.name == "go.memory.limit" {
			t.Errorf("go.memory.limit without a limit: %v", x.value)
		}
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(1 << 40))
	rm.Publish()
	if v := readSegment(t, s.Path()).find(t, "go.memory.limit").value; v != 1<<40 {
		t.Errorf("go.memory.limit %v, want %v", v, 1<<40)
	}
	if strings.Contains(string(f.hdr), "process.runtime.version") {
		t.Errorf("resource attributes belong in the string region, not the header")
	}
}

func TestRuntimeGroundTruth(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // hold the GC still
	s, rm := startRuntime(t)
	var prevAlloc float64
	for round := 0; round < 3; round++ {
		runtime.GC()
		block := make(chan struct{})
		for i := 0; i < 10*(round+1); i++ {
			go func() { <-block }()
		}
		sink = make([]byte, 1<<20)
		rm.Publish()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		goroutines := runtime.NumGoroutine()
		f := readSegment(t, s.Path())
		close(block)
		if v := f.find(t, "go.runtime.gc.cycles.total").value; v != float64(ms.NumGC) {
			t.Errorf("round %d: gc cycles %v, NumGC %d", round, v, ms.NumGC)
		}
		if v := f.find(t, "go.goroutine.count").value; v != float64(goroutines) {
			t.Errorf("round %d: goroutines %v, NumGoroutine %d", round, v, goroutines)
		}
		alloc := f.find(t, "go.memory.allocated").value
		if alloc < prevAlloc || alloc < 1<<20 {
			t.Errorf("round %d: allocated %v after %v", round, alloc, prevAlloc)
		}
		prevAlloc = alloc
		for key, n := range map[string]string{"/gc/pauses:seconds": "go.runtime.gc.pauses",
			"/sched/latencies:seconds": "go.schedule.duration"} {
			hs := f.find(t, n)
			if hs.flags != descExponential|descNoSum || hs.sum != 0 {
				t.Errorf("%s: flags %d, sum %v: exponential, and no sum made up", n, hs.flags, hs.sum)
			}
			// Loses no observation: the runtime's own count at the sample
			// equals the exported zero count and buckets.
			var runtimeCount uint64
			for _, c := range rm.samples[rm.idx[key]].Value.Float64Histogram().Counts {
				runtimeCount += c
			}
			if hs.count() != runtimeCount {
				t.Errorf("%s: %d observations exported, the runtime counted %d", n, hs.count(), runtimeCount)
			}
			if n == "go.runtime.gc.pauses" && hs.count() == 0 {
				t.Errorf("no GC pause recorded after runtime.GC()")
			}
		}
		time.Sleep(10 * time.Millisecond) // let the blocked goroutines exit
	}
}

var sink []byte

// The index from a double's bits against the definition, exactly:
// 2^(i/256) < v <= 2^((i+1)/256), that is 2^i < v^256 <= 2^(i+1).
func TestExpIndexFollowsTheDefinition(t *testing.T) {
	expOnce.Do(expTables)
	check := func(v float64) {
		i := expIndex8(math.Float64bits(v))
		x := new(big.Float).SetPrec(60 * 256).SetFloat64(v)
		for k := 0; k < 8; k++ {
			x.Mul(x, x)
		}
		lo := new(big.Float).SetMantExp(big.NewFloat(1), int(i))
		hi := new(big.Float).SetMantExp(big.NewFloat(1), int(i)+1)
		if !(x.Cmp(lo) > 0 && x.Cmp(hi) <= 0) {
			t.Fatalf("%v (%x): index %d", v, math.Float64bits(v), i)
		}
	}
	for e := -1074; e <= 1023; e += 7 {
		check(math.Ldexp(1, e))
	}
	r := rand.New(rand.NewSource(1))
	for n := 0; n < 3000; n++ {
		v := math.Float64frombits(r.Uint64() &^ (1 << 63))
		if v != 0 && !math.IsInf(v, 0) && v == v {
			check(v)
		}
	}
	for j := 1; j < 256; j++ { // each side of every boundary of one octave
		b := math.Exp2(float64(j) / 256)
		check(math.Nextafter(b, 0))
		check(b)
		check(math.Nextafter(b, 2))
	}
}

// Goroutines on every P record over a range wide enough to coarsen the
// scale; every value is in the bucket the definition gives it.
func TestExponentialRecordsExactly(t *testing.T) {
	s := open(t, "exp")
	h, err := s.ExponentialHistogram(Def{Name: "x.latency", Unit: "s"}, 20, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExponentialHistogram(Def{Name: "x.bad"}, 3, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("size 3: %v", err)
	}
	if _, err := s.Histogram(Def{Name: "x.latency", Unit: "s"}); !errors.Is(err, ErrExists) {
		t.Errorf("the same name explicit: %v", err)
	}
	const G, N = 4, 5000
	vals := make([]float64, G*N)
	r := rand.New(rand.NewSource(7))
	for i := range vals {
		switch i % 50 {
		case 0:
			vals[i] = 0
		case 1:
			vals[i] = -math.Ldexp(1+r.Float64(), r.Intn(20)-10)
		default:
			vals[i] = math.Ldexp(1+r.Float64(), r.Intn(60)-30)
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(part []float64) {
			defer wg.Done()
			for _, v := range part {
				h.Record(v)
			}
		}(vals[g*N : (g+1)*N])
	}
	wg.Wait()
	h.Record(math.NaN())
	h.Record(math.Inf(1))
	f := readSegment(t, s.Path())
	got := f.find(t, "x.latency")
	if got.kind != kindHistogram || got.flags != descExponential {
		t.Fatalf("kind %d flags %d", got.kind, got.flags)
	}
	if got.scale > 0 { // 60 octaves in 20 buckets
		t.Errorf("scale %d", got.scale)
	}
	pos, neg := map[int32]uint64{}, map[int32]uint64{}
	var zero uint64
	sum, mn, mx := 0.0, math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		sum += v
		mn, mx = math.Min(mn, v), math.Max(mx, v)
		if v == 0 {
			zero++
			continue
		}
		i := expIndex8(math.Float64bits(math.Abs(v))) >> (expScaleMax - got.scale)
		if v < 0 {
			neg[i]++
		} else {
			pos[i]++
		}
	}
	if got.zero != zero || !reflect.DeepEqual(got.pos, pos) || !reflect.DeepEqual(got.neg, neg) {
		t.Errorf("zero %d/%d\npos %v\nwant %v\nneg %v\nwant %v", got.zero, zero, got.pos, pos, got.neg, neg)
	}
	if got.count() != G*N || math.Abs(got.sum-sum) > 1e-9*math.Abs(sum) || got.min != mn || got.max != mx {
		t.Errorf("count %d sum %v/%v min %v/%v max %v/%v", got.count(), got.sum, sum, got.min, mn, got.max, mx)
	}
}

func TestLockSitesTable(t *testing.T) {
	t.Setenv("RTM_LOCK_SAMPLE", "")
	s := open(t, "plain")
	if *s.p32(hCompat) != 0 || s.sitesCap != 0 {
		t.Fatalf("a table without lock profiling")
	}
	s.Close()
	t.Setenv("RTM_LOCK_SAMPLE", "often")
	if _, err := Open(Options{ServiceName: "bad", Dir: t.TempDir()}); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "RTM_LOCK_SAMPLE") {
		t.Fatalf("RTM_LOCK_SAMPLE=often: %v", err)
	}
	t.Setenv("RTM_LOCK_SAMPLE", "1")
	s = open(t, "profiled")
	defer s.Close()
	size := *s.p64(hSegmentSize)
	off, n := uint64(*s.p32(hSitesOffset)), uint64(*s.p32(hSitesCapacity))
	if *s.p32(hCompat)&compatSites == 0 || n != 128 || off%64 != 0 || off+n*siteSize > size ||
		*s.p32(hSitesSample) != 0 {
		t.Fatalf("table at %d, %d entries, segment %d bytes", off, n, size)
	}
}
