// SPDX-License-Identifier: MIT

package rtm

import (
	"math"
	"math/big"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Base-2 exponential histograms (FORMAT.md §7, "Exponential histogram
// slot"): the bucket of a value from its bits, and the slot's window.

// The P the calling goroutine runs on, which it keeps (no preemption)
// until procUnpin: a slot written by the goroutines of one P at a time is
// only ever held by one that cannot be descheduled mid-record.
//
//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

const (
	expSizeDefault = 160
	expSizeMax     = 1024
	expScaleMax    = 8
	expScaleMin    = -10
	expFixed       = 80

	// Slot fields past the first four (§7).
	xsCount   = 32
	xsZero    = 40
	xsScale   = 48
	xsPosBase = 56
	xsPosTop  = 60
	xsNegBase = 64
	xsNegTop  = 68
)

func expSlotSize(size int) uint64 { return align(expFixed+16*uint64(size), cacheLine) }

// expBounds[j], j < 256: the largest 52-bit fraction f with
// 1 + f/2^52 < 2^(j/256); expCells[c]: the bucket holding fraction
// c<<42.  Exact (big integers), once, at the first exponential histogram.
var (
	expOnce   sync.Once
	expBounds [257]uint64
	expCells  [1024]uint8
)

func expTables() {
	one := new(big.Int).Lsh(big.NewInt(1), 52)
	below := func(f uint64, j int) bool { // (2^52 + f)^256 < 2^(52*256 + j)
		x := new(big.Int).Add(one, new(big.Int).SetUint64(f))
		x.Exp(x, big.NewInt(256), nil)
		return x.Cmp(new(big.Int).Lsh(big.NewInt(1), uint(52*256+j))) < 0
	}
	for j := 1; j < 256; j++ {
		f := uint64((math.Exp2(float64(j)/256) - 1) * (1 << 52))
		for below(f+1, j) {
			f++
		}
		for !below(f, j) {
			f--
		}
		expBounds[j] = f
	}
	expBounds[256] = 1 << 52
	j := 0
	for c := 1; c < 1024; c++ {
		at := uint64(c) << 42
		for j < 255 && expBounds[j+1] < at {
			j++
		}
		expCells[c] = uint8(j)
	}
}

// expIndex8 is the scale-8 index of the positive finite double whose bits
// (sign cleared, not 0) are mag.  Small enough for the inliner; subnormals
// go the long way.
func expIndex8(mag uint64) int32 {
	if mag < 1<<52 {
		return expIndex8Subnormal(mag)
	}
	e := int32(mag>>52) - 1023
	f := mag & (1<<52 - 1)
	if f == 0 { // an exact power of two closes the bucket below it
		return e*256 - 1
	}
	j := uint32(expCells[f>>42])
	if f > expBounds[j+1] {
		j++
	}
	return e*256 + int32(j)
}

// expIndex8Subnormal normalises the fraction first (kept out of line, so
// that expIndex8 inlines).
//
//go:noinline
func expIndex8Subnormal(f uint64) int32 {
	top := int32(63 - bits.LeadingZeros64(f))
	e := top - 51 - 1023
	f = f << (52 - top) & (1<<52 - 1)
	if f == 0 {
		return e*256 - 1
	}
	j := uint32(expCells[f>>42])
	if f > expBounds[j+1] {
		j++
	}
	return e*256 + int32(j)
}

// expSlot is one shard's slot of an exponential histogram: only written
// by a holder of its seq (even to odd by compare-and-swap).
type expSlot struct {
	p    unsafe.Pointer
	size int
}

func (x expSlot) u64(off uintptr) *uint64 { return (*uint64)(unsafe.Add(x.p, off)) }
func (x expSlot) i32(off uintptr) *int32  { return (*int32)(unsafe.Add(x.p, off)) }
func (x expSlot) counts(neg bool) unsafe.Pointer {
	if neg {
		return unsafe.Add(x.p, expFixed+8*x.size)
	}
	return unsafe.Add(x.p, expFixed)
}
func (x expSlot) count(neg bool, k int32) *uint64 {
	return (*uint64)(unsafe.Add(x.counts(neg), 8*uintptr(k)))
}

// lock takes a slot of shared shard 0 for a record: its writers are
// goroutines of Ps past the stripes, each pinned to its P and done in a
// few hundred instructions, so a short spin is all a wait costs.
func (x expSlot) lock() uint64 {
	seq := x.u64(hsSeq)
	for {
		q := atomic.LoadUint64(seq)
		if q&1 == 0 && atomic.CompareAndSwapUint64(seq, q, q+1) {
			return q
		}
	}
}

// unlock publishes the record: the even seq a reader's retry compares.
func (x expSlot) unlock(q uint64) { atomic.StoreUint64(x.u64(hsSeq), q+2) }

// Between lock and unlock the holder is the slot's only writer; the
// stores are plain (Go's atomics on seq order them), as the C producer's
// relaxed stores are.

func (x expSlot) downscale(k int32) {
	for _, neg := range [2]bool{false, true} {
		base, top := x.i32(xsPosBase), x.i32(xsPosTop)
		if neg {
			base, top = x.i32(xsNegBase), x.i32(xsNegTop)
		}
		b, t := *base, *top
		if t < b {
			continue
		}
		nb := b >> k
		for i := int32(0); i <= t-b; i++ { // lowest first: counts only move down
			n := *x.count(neg, i)
			to := (b+i)>>k - nb
			if n == 0 || to == i {
				continue
			}
			*x.count(neg, i) = 0
			*x.count(neg, to) += n
		}
		*base, *top = nb, t>>k
	}
	*x.i32(xsScale) -= k
}

// add puts n at index (of scale at) on one side, moving the window or
// coarsening the scale as FORMAT.md §7 says.  false: no double has it.
func (x expSlot) add(neg bool, index, at int32, n uint64) bool {
	scale := *x.i32(xsScale)
	if at < scale {
		x.downscale(scale - at)
		scale = at
	}
	base, top := x.i32(xsPosBase), x.i32(xsPosTop)
	if neg {
		base, top = x.i32(xsNegBase), x.i32(xsNegTop)
	}
	idx := index >> (at - scale)
	b, t := *base, *top
	lo, hi := idx, idx
	if t >= b {
		if b < lo {
			lo = b
		}
		if t > hi {
			hi = t
		}
	}
	k := int32(0)
	for int64(hi>>k)-int64(lo>>k) >= int64(x.size) && scale-k > expScaleMin {
		k++
	}
	if int64(hi>>k)-int64(lo>>k) >= int64(x.size) {
		return false
	}
	if k > 0 {
		x.downscale(k)
		idx >>= k
		b, t = *base, *top
	}
	switch {
	case t < b:
		*base, *top = idx, idx
		b = idx
	case idx < b: // move the window down: the counts up
		by := b - idx
		for i := t - b; i >= 0; i-- {
			*x.count(neg, i+by) = *x.count(neg, i)
			*x.count(neg, i) = 0
		}
		*base = idx
		b = idx
	case idx > t:
		*top = idx
	}
	*x.count(neg, idx-b) += n
	return true
}

// record adds one value (finite; mag its bits without the sign).
func (x expSlot) record(v float64, mag uint64) {
	*x.u64(hsSum) = math.Float64bits(math.Float64frombits(*x.u64(hsSum)) + v)
	if v < math.Float64frombits(*x.u64(hsMin)) {
		*x.u64(hsMin) = math.Float64bits(v)
	}
	if v > math.Float64frombits(*x.u64(hsMax)) {
		*x.u64(hsMax) = math.Float64bits(v)
	}
	*x.u64(xsCount)++
	if mag == 0 {
		*x.u64(xsZero)++
		return
	}
	neg := v < 0
	i8 := expIndex8(mag)
	idx := i8 >> (expScaleMax - *x.i32(xsScale))
	base, top := x.i32(xsPosBase), x.i32(xsPosTop)
	if neg {
		base, top = x.i32(xsNegBase), x.i32(xsNegTop)
	}
	if k := uint32(idx - *base); *top >= *base && k < uint32(x.size) {
		*x.count(neg, int32(k))++
		if idx > *top {
			*top = idx
		}
		return
	}
	x.add(neg, i8, expScaleMax, 1)
}

// recordExp is Record for an exponential histogram: into the slot of the
// P the goroutine is pinned to, under its seqlock (Segment.pinned).
func (h Histogram) recordExp(v float64) {
	mag := math.Float64bits(v) &^ (1 << 63)
	if h.s == nil || mag >= 0x7ff0000000000000 { // NaN and ±Inf are not recorded
		return
	}
	if pid := uintptr(procPin()); pid <= h.s.mask {
		x := expSlot{unsafe.Add(h.s.data, (pid+1)*h.s.shard+h.off), int(h.exp)}
		q := ownSeqBegin(x.u64(hsSeq))
		x.record(v, mag)
		ownSeqEnd(x.u64(hsSeq), q)
	} else {
		x := expSlot{unsafe.Add(h.s.shared(), h.off), int(h.exp)}
		q := x.lock()
		x.record(v, mag)
		x.unlock(q)
	}
	procUnpin()
}

// begin pins the goroutine and takes its P's slot (or shard 0's, locked).
func (h Histogram) begin() (expSlot, uint64, bool) {
	sh, shared := h.s.pinned()
	x := expSlot{unsafe.Add(sh, h.off), int(h.exp)}
	if shared {
		return x, x.lock(), true
	}
	return x, ownSeqBegin(x.u64(hsSeq)), false
}

func (h Histogram) end(x expSlot, q uint64, shared bool) {
	if shared {
		x.unlock(q)
	} else {
		ownSeqEnd(x.u64(hsSeq), q)
	}
	procUnpin()
}
