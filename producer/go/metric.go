// SPDX-License-Identifier: MIT

package rtm

import (
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"time"
	"unsafe"
)

// Attr is one attribute of a series.
type Attr struct{ Key, Value string }

// Def describes an instrument.  A series is its name plus its attribute
// set: creating the same series twice returns the same slot.
type Def struct {
	Name        string    // OTel syntax: a letter, then letters, digits, '_', '.', '-', '/'; <= 255 bytes
	Unit        string    // UCUM as OTel uses it: "By", "s", "{request}"; printable ASCII, <= 63 bytes
	Description string    // UTF-8, <= 1023 bytes
	Attrs       []Attr    // <= 64, keys unique and non-empty
	Float       bool      // float64 values (counters, up-down counters, gauges); else int64
	Bounds      []float64 // histograms: finite, strictly increasing, <= 254; default: seconds (1µs..10s)
}

// DefaultSecondsBounds are the histogram bounds used when Def.Bounds is
// empty: the seed's GC pause buckets, as rtm_default_seconds_bounds in C.
var DefaultSecondsBounds = []float64{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1}

// Counter is a monotonic sum.  The zero value drops updates.
type Counter struct {
	s   *Segment
	off uintptr
}

// UpDownCounter is a sum that may go down.
type UpDownCounter struct {
	s   *Segment
	off uintptr
}

// Gauge holds the last value set.
type Gauge struct {
	s   *Segment
	off uintptr
}

// Histogram counts observations into explicit buckets, or into base-2
// exponential ones (ExponentialHistogram).
type Histogram struct {
	s      *Segment
	off    uintptr
	bounds []float64
	exp    uint16 // exponential: buckets per side
}

// ---- hot paths: no allocation, no system call, no lock ----

// pinned pins the calling goroutine to its P until procUnpin and returns
// that P's own shard (stripe id+1), which the goroutines of that P write one
// at a time, never preempted mid-update: plain loads and stores, as a C
// thread's shard.  A P whose id is past the stripes (GOMAXPROCS raised after
// Open) gets shared shard 0 and atomic updates (FORMAT.md §7).
func (s *Segment) pinned() (unsafe.Pointer, bool) {
	pid := uintptr(procPin())
	if pid <= s.mask {
		return unsafe.Add(s.data, (pid+1)*s.shard), false
	}
	return s.shared(), true
}

// shared is shard 0, for a P past the shards (the caller is pinned).
func (s *Segment) shared() unsafe.Pointer {
	if atomic.LoadUint32(&s.fellBack) == 0 {
		atomic.StoreUint32(&s.fellBack, 1)
		// Before the first shard-0 update; pairs with the reader's
		// acquire load (FORMAT.md §4, shard_fallbacks).
		atomic.AddUint32(s.p32(hShardFallbacks), 1)
	}
	return s.data
}

// Add adds n.  Safe from any goroutine.
func (c Counter) Add(n uint64) {
	if c.s == nil {
		return
	}
	// Segment.pinned, by hand: the inliner would not take it here.
	if pid := uintptr(procPin()); pid <= c.s.mask {
		ownAdd((*uint64)(unsafe.Add(c.s.data, (pid+1)*c.s.shard+c.off)), n)
	} else {
		atomic.AddUint64((*uint64)(unsafe.Add(c.s.shared(), c.off)), n)
	}
	procUnpin()
}

// AddFloat adds v (>= 0) to a Float counter.
func (c Counter) AddFloat(v float64) {
	if c.s != nil {
		addWord(c.s, c.off, v)
	}
}

func addWord(s *Segment, off uintptr, v float64) {
	sh, shared := s.pinned()
	p := (*uint64)(unsafe.Add(sh, off))
	if shared {
		addFloat(p, v)
	} else {
		ownStore(p, math.Float64bits(math.Float64frombits(*p)+v))
	}
	procUnpin()
}

// Add adds n (negative to subtract).
func (u UpDownCounter) Add(n int64) {
	Counter(u).Add(uint64(n)) // two's complement: readers sum int64
}

// AddFloat adds v to a Float up-down counter.
func (u UpDownCounter) AddFloat(v float64) {
	if u.s != nil {
		addWord(u.s, u.off, v)
	}
}

// Set stores v.
func (g Gauge) Set(v int64) {
	if g.s != nil {
		// Gauges live in shard 0 only (FORMAT.md §7).
		atomic.StoreUint64((*uint64)(unsafe.Add(g.s.data, g.off)), uint64(v))
	}
}

// SetFloat stores v in a Float gauge.
func (g Gauge) SetFloat(v float64) {
	if g.s != nil {
		atomic.StoreUint64((*uint64)(unsafe.Add(g.s.data, g.off)), math.Float64bits(v))
	}
}

// Record counts v into its bucket (bounds[i-1] < v <= bounds[i]) and adds
// it to the sum, min and max.  NaN is not recorded.
func (h Histogram) Record(v float64) {
	if h.exp != 0 {
		h.recordExp(v)
		return
	}
	if h.s == nil || v != v {
		return
	}
	lo, hi := 0, len(h.bounds)
	for lo < hi { // first bound >= v
		mid := int(uint(lo+hi) >> 1)
		if h.bounds[mid] < v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	// Segment.pinned, by hand: the inliner would not take it here.
	pid, shared := uintptr(procPin()), false
	var slot unsafe.Pointer
	if pid <= h.s.mask {
		slot = unsafe.Add(h.s.data, (pid+1)*h.s.shard+h.off)
	} else {
		slot, shared = unsafe.Add(h.s.shared(), h.off), true
	}
	b := (*uint64)(unsafe.Add(slot, hsBuckets+lo*8))
	sum, mn, mx := (*uint64)(unsafe.Add(slot, hsSum)), (*uint64)(unsafe.Add(slot, hsMin)),
		(*uint64)(unsafe.Add(slot, hsMax))
	if shared {
		// Shard 0: every field with its own atomic operation; seq stays
		// 0, so the sum may lag the buckets by a record (FORMAT.md §7).
		atomic.AddUint64(b, 1)
		addFloat(sum, v)
		minFloat(mn, v)
		maxFloat(mx, v)
	} else {
		// The P's own slot: the seqlock, as a C thread's.
		seq := (*uint64)(slot)
		q := ownSeqBegin(seq)
		ownStore(b, *b+1)
		ownStore(sum, math.Float64bits(math.Float64frombits(*sum)+v))
		if v < math.Float64frombits(*mn) {
			ownStore(mn, math.Float64bits(v))
		}
		if v > math.Float64frombits(*mx) {
			ownStore(mx, math.Float64bits(v))
		}
		ownSeqEnd(seq, q)
	}
	procUnpin()
}

func addFloat(p *uint64, v float64) {
	for {
		old := atomic.LoadUint64(p)
		if atomic.CompareAndSwapUint64(p, old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func minFloat(p *uint64, v float64) {
	for {
		old := atomic.LoadUint64(p)
		if !(v < math.Float64frombits(old)) || atomic.CompareAndSwapUint64(p, old, math.Float64bits(v)) {
			return
		}
	}
}

func maxFloat(p *uint64, v float64) {
	for {
		old := atomic.LoadUint64(p)
		if !(v > math.Float64frombits(old)) || atomic.CompareAndSwapUint64(p, old, math.Float64bits(v)) {
			return
		}
	}
}

// ---- registration (cold path) ----

// Counter creates (or finds) a counter series.
func (s *Segment) Counter(d Def) (Counter, error) {
	off, _, err := s.create(kindCounter, d, expDef{})
	if err != nil {
		return Counter{}, err
	}
	return Counter{s, off}, nil
}

// UpDownCounter creates (or finds) an up-down counter series.
func (s *Segment) UpDownCounter(d Def) (UpDownCounter, error) {
	off, _, err := s.create(kindUpDown, d, expDef{})
	if err != nil {
		return UpDownCounter{}, err
	}
	return UpDownCounter{s, off}, nil
}

// Gauge creates (or finds) a gauge series.
func (s *Segment) Gauge(d Def) (Gauge, error) {
	off, _, err := s.create(kindGauge, d, expDef{})
	if err != nil {
		return Gauge{}, err
	}
	return Gauge{s, off}, nil
}

// Histogram creates (or finds) a histogram series.  Without Bounds it
// takes DefaultSecondsBounds, or is exponential (with the defaults of
// ExponentialHistogram) when OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION
// is base2_exponential_bucket_histogram, as in the OpenTelemetry SDKs.
func (s *Segment) Histogram(d Def) (Histogram, error) {
	if len(d.Bounds) == 0 {
		if os.Getenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION") ==
			"base2_exponential_bucket_histogram" {
			return s.ExponentialHistogram(d, 0, 0)
		}
		d.Bounds = DefaultSecondsBounds
	}
	off, bounds, err := s.create(kindHistogram, d, expDef{})
	if err != nil {
		return Histogram{}, err
	}
	return Histogram{s: s, off: off, bounds: bounds}, nil
}

// ExponentialHistogram creates (or finds) a base-2 exponential histogram
// (the OpenTelemetry data model: no bounds to choose).  It starts at
// maxScale (-10..8; 0 means 8, a bucket 0.27 % wide) and halves its
// resolution whenever its values span more than maxSize buckets on one
// side (4..1024; 0 means 160).  d.Bounds must be empty.  Record finds the
// bucket from the value's bits; NaN and ±Inf are not recorded.
func (s *Segment) ExponentialHistogram(d Def, maxSize, maxScale int) (Histogram, error) {
	if maxSize == 0 {
		maxSize = expSizeDefault
	}
	if maxScale == 0 {
		maxScale = expScaleMax
	}
	if len(d.Bounds) != 0 || maxSize < 4 || maxSize > expSizeMax || maxScale < expScaleMin ||
		maxScale > expScaleMax {
		return Histogram{}, fmt.Errorf("%w: exponential histogram %q", ErrInvalid, d.Name)
	}
	return s.expHistogram(d, expDef{size: maxSize, scale: maxScale})
}

func (s *Segment) expHistogram(d Def, x expDef) (Histogram, error) {
	expOnce.Do(expTables)
	off, _, err := s.create(kindHistogram, d, x)
	if err != nil {
		return Histogram{}, err
	}
	return Histogram{s: s, off: off, exp: uint16(x.size)}, nil
}

// expDef is an exponential histogram's shape; size 0: not one.
type expDef struct {
	size, scale int
	noSum       bool // the producer knows no sum, min or max (runtime histograms)
}

func validName(n string) bool {
	if len(n) == 0 || len(n) > nameMax {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '/')) {
			return false
		}
	}
	return true
}

func validUnit(u string) bool {
	if len(u) > unitMax {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x20 || u[i] > 0x7e {
			return false
		}
	}
	return true
}

func (s *Segment) create(kind uint8, d Def, x expDef) (uintptr, []float64, error) {
	attrs := make(map[string]string, len(d.Attrs))
	for _, a := range d.Attrs {
		if _, dup := attrs[a.Key]; dup {
			return 0, nil, fmt.Errorf("%w: attribute %q twice", ErrInvalid, a.Key)
		}
		attrs[a.Key] = a.Value
	}
	enc, count, err := encodeAttrs(attrs)
	if err != nil || count > attrCountMax || !validName(d.Name) || !validUnit(d.Unit) ||
		len(d.Description) > descMax || !validText(d.Description) {
		return 0, nil, fmt.Errorf("%w: %q", ErrInvalid, d.Name)
	}
	nb := 0
	if kind == kindHistogram {
		nb = len(d.Bounds)
		if nb > boundsMax {
			return 0, nil, fmt.Errorf("%w: more than %d bounds", ErrInvalid, boundsMax)
		}
		for i, b := range d.Bounds {
			if math.IsInf(b, 0) || b != b || (i > 0 && !(b > d.Bounds[i-1])) {
				return 0, nil, fmt.Errorf("%w: bounds must be finite and increasing", ErrInvalid)
			}
		}
	}
	vtype := uint8(valueInt)
	if d.Float || kind == kindHistogram {
		vtype = valueDouble
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, nil, ErrClosed
	}
	defer s.store64(hHeartbeat, uint64(time.Now().UnixNano()))
	key := d.Name + "\x00" + string(enc)
	if i, ok := s.series[key]; ok {
		e := uint64(s.load32(hDescOffset)) + uint64(i)*descSize
		bounds := s.boundsAt(e)
		flags := *s.p32(e + dFlags)
		same := s.mem[e+dKind] == kind && s.mem[e+dValueType] == vtype &&
			s.str(e+dUnitOff, e+dUnitLen) == d.Unit && len(bounds) == nb &&
			(flags&descExponential != 0) == (x.size != 0) &&
			(x.size == 0 || int(*s.p16(e+dExpSize)) == x.size && int(int8(s.mem[e+dExpScale])) == x.scale)
		for j := 0; same && j < nb; j++ {
			same = bounds[j] == d.Bounds[j]
		}
		if !same {
			return 0, nil, ErrExists
		}
		return uintptr(*s.p32(e + dSlotOffset)), bounds, nil
	}

	count32, capacity := s.load32(hDescCount), *s.p32(hDescCapacity)
	strEnd := uint64(*s.p32(hStringsOffset)) + uint64(*s.p32(hStringsSize))
	need := uint64(len(d.Name)+1+len(d.Unit)+1+len(d.Description)+1+len(enc)) + 8 + uint64(nb)*8
	slotSize, alignTo := uint64(8), uint64(8)
	switch kind {
	case kindHistogram:
		slotSize, alignTo = histSlotSize(nb), cacheLine
		if x.size != 0 {
			slotSize = expSlotSize(x.size)
		}
	case kindGauge:
		alignTo = cacheLine // its own line: any goroutine stores to it
	}
	off := align(s.dataUsed, alignTo)
	if count32 >= capacity || s.stringsUsed+need > strEnd || off+slotSize > uint64(s.shard) {
		atomic.AddUint32(s.p32(hDropped), 1) // a statistic, ordered against nothing
		return 0, nil, ErrNoSpace
	}
	used := slotSize
	if kind == kindGauge {
		used = cacheLine
	}
	// Pages for the descriptor, its strings and its slot in every shard,
	// before any is stored to (Segment.reserve).
	if err := s.reserveFor(uint64(count32)+1, s.stringsUsed+need+8, off+used); err != nil {
		atomic.AddUint32(s.p32(hDropped), 1)
		return 0, nil, ErrNoSpace
	}
	s.dataUsed = off + used

	e := uint64(s.load32(hDescOffset)) + uint64(count32)*descSize
	s.mem[e+dKind] = kind
	s.mem[e+dValueType] = vtype
	s.put16(e+dBoundCount, uint16(nb))
	s.put32(e+dSlotOffset, uint32(off))
	s.put32(e+dSlotSize, uint32(slotSize))
	s.put32(e+dNameOff, s.putString(d.Name, 1))
	s.put16(e+dNameLen, uint16(len(d.Name)))
	s.put32(e+dUnitOff, s.putString(d.Unit, 1))
	s.put16(e+dUnitLen, uint16(len(d.Unit)))
	s.put32(e+dDescOff, s.putString(d.Description, 1))
	s.put32(e+dDescLen, uint32(len(d.Description)))
	s.put32(e+dAttrsOff, s.putBytes(enc, 1))
	s.put32(e+dAttrsLen, uint32(len(enc)))
	s.put16(e+dAttrCount, uint16(count))
	bb := make([]byte, 8*nb)
	for j := 0; j < nb; j++ {
		*(*uint64)(unsafe.Pointer(&bb[8*j])) = math.Float64bits(d.Bounds[j])
	}
	s.put32(e+dBoundsOff, s.putBytes(bb, 8))
	s.put64(e+dStartUnix, uint64(time.Now().UnixNano()))
	if x.size != 0 {
		flags := uint32(descExponential)
		if x.noSum {
			flags |= descNoSum
		}
		s.put32(e+dFlags, flags)
		s.put16(e+dExpSize, uint16(x.size))
		s.mem[e+dExpScale] = byte(int8(x.scale))
	}
	if kind == kindHistogram {
		// min = +Inf, max = -Inf in every shard before readers see it;
		// an exponential slot's windows empty (top below base).
		shards := uint64(*s.p32(hShardCount))
		for sh := uint64(0); sh < shards; sh++ {
			slot := uint64(s.dataOff) + sh*uint64(s.shard) + off
			s.put64(slot+hsMin, math.Float64bits(math.Inf(1)))
			s.put64(slot+hsMax, math.Float64bits(math.Inf(-1)))
			if x.size != 0 {
				s.put32(slot+xsScale, uint32(int32(x.scale)))
				s.put32(slot+xsPosTop, ^uint32(0))
				s.put32(slot+xsNegTop, ^uint32(0))
			}
		}
	}
	s.store32(hStringsUsed, uint32(s.stringsUsed-uint64(*s.p32(hStringsOffset))))
	s.store32(hDataUsed, uint32(s.dataUsed))
	// At least release: the descriptor, its strings and slots are visible
	// to a reader whose acquire load sees the new count (FORMAT.md §8) ...
	s.store32(hDescCount, count32+1)
	// ... and to one that acquire-loads the new generation.
	atomic.AddUint64(s.p64(hGeneration), 1)
	s.series[key] = count32
	return uintptr(off), s.boundsAt(e), nil
}

// reserveFor reserves descriptors [0, descs), strings up to strEnd and
// every shard's first dataEnd bytes.
func (s *Segment) reserveFor(descs, strEnd, dataEnd uint64) error {
	descOff := uint64(s.load32(hDescOffset))
	if err := s.reserve(&s.resMeta, 0, descOff+descs*descSize); err != nil {
		return err
	}
	if err := s.reserve(&s.resStrings, s.resStrings, strEnd); err != nil {
		return err
	}
	if dataEnd <= s.resData {
		return nil
	}
	want := align(dataEnd, page)
	shards := uint64(*s.p32(hShardCount))
	for sh := uint64(0); sh < shards; sh++ {
		at := uint64(s.dataOff) + sh*uint64(s.shard)
		upto := at + s.resData
		if err := s.reserve(&upto, at, at+want); err != nil {
			return err
		}
	}
	s.resData = want
	return nil
}

// putString stores str NUL-terminated at the next free, aligned byte.
func (s *Segment) putString(str string, alignTo uint64) uint32 {
	off := align(s.stringsUsed, alignTo)
	copy(s.mem[off:], str)
	s.mem[off+uint64(len(str))] = 0
	s.stringsUsed = off + uint64(len(str)) + 1
	return uint32(off)
}

func (s *Segment) putBytes(b []byte, alignTo uint64) uint32 {
	off := align(s.stringsUsed, alignTo)
	copy(s.mem[off:], b)
	s.stringsUsed = off + uint64(len(b))
	return uint32(off)
}

// str is the string a descriptor's u32 offset and u16 length fields name.
func (s *Segment) str(offField, lenField uint64) string {
	o := uint64(*s.p32(offField))
	n := uint64(*s.p16(lenField))
	return string(s.mem[o : o+n])
}

// boundsAt is the descriptor's bounds, read from the segment.
func (s *Segment) boundsAt(e uint64) []float64 {
	n := int(*s.p16(e + dBoundCount))
	o := uint64(*s.p32(e + dBoundsOff))
	b := make([]float64, n)
	for i := range b {
		b[i] = math.Float64frombits(*s.p64(o + 8*uint64(i)))
	}
	return b
}
