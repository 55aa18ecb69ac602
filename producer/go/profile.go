// SPDX-License-Identifier: MIT

package rtm

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
)

// Lock profiling (Options.LockSample): the runtime's block profile says
// where goroutines waited and for how long; the waits on sync.Mutex and
// sync.RWMutex are folded, by call site, into the segment's lock-site table
// (FORMAT.md §7), which rtm-shmdump --locks PID prints for C and Go alike.
//
// The site is the return address in the first frame outside the runtime
// and package sync: the caller of Lock, where the C producer records the
// caller of pthread_mutex_lock.  rtm-shmdump resolves it against the live
// process's ELF and DWARF as it does for C (a Go binary carries both unless
// built with -ldflags=-s -w), so the producer stores addresses only, with
// no symbol tables of its own.  The mutex profile is turned on too, for
// go tool pprof, but not folded: it records each contention again at the
// Unlock that ended it, so its waits would count twice.

// lockSample is o (> 0), else $RTM_LOCK_SAMPLE (a whole number >= 1), else 0.
func lockSample(o int) (int, error) {
	if o != 0 {
		if o < 0 {
			return 0, fmt.Errorf("%w: LockSample %d", ErrInvalid, o)
		}
		return o, nil
	}
	v := os.Getenv("RTM_LOCK_SAMPLE")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: RTM_LOCK_SAMPLE=%q is not a whole number >= 1", ErrInvalid, v)
	}
	return n, nil
}

type lockSites struct {
	seg   *Segment
	entry map[uintptr]int // site -> entry index
	// Each stack's site, found once: a fold then costs a map lookup per
	// profile record (the runtime keeps one per distinct blocking stack).
	byStack map[[32]uintptr]stackSite
	next    int     // first never-used entry
	perSec  float64 // the profile's cycles per second
	recs    []runtime.BlockProfileRecord
}

type stackSite struct {
	pc   uintptr
	kind uint32
}

// startLockSites turns the runtime's profiles on at the segment's rate;
// nil when the segment has no lock-site table.
func startLockSites(seg *Segment) *lockSites {
	if seg.sitesCap == 0 {
		return nil
	}
	runtime.SetBlockProfileRate(seg.lockSample)
	runtime.SetMutexProfileFraction(seg.lockSample)
	return &lockSites{seg: seg, entry: map[uintptr]int{}, byStack: map[[32]uintptr]stackSite{},
		perSec: cyclesPerSecond()}
}

// cyclesPerSecond is what the block profile's cycles are worth: the
// runtime says so only in the profile's text form.
func cyclesPerSecond() float64 {
	var b bytes.Buffer

	if p := pprof.Lookup("block"); p != nil && p.WriteTo(&b, 1) == nil {
		for _, line := range strings.Split(b.String(), "\n") {
			if v := strings.TrimPrefix(line, "cycles/second="); v != line {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
					return f
				}
			}
		}
	}
	return 1e9
}

// siteOf is the lock call site of a block-profile stack and its kind, or 0
// when the wait was not for a sync mutex (channels, select, WaitGroup,
// Cond also block).
func siteOf(stk []uintptr) (uintptr, uint32) {
	kind := uint32(0)
	for _, pc := range stk {
		// Inlined calls share one return address: its frames, innermost
		// first, end with the function the code physically lies in.
		frames := runtime.CallersFrames([]uintptr{pc})
		physical := ""
		for {
			f, more := frames.Next()
			switch {
			case strings.HasPrefix(f.Function, "sync.(*Mutex).Lock"):
				kind = siteMutex
			case strings.HasPrefix(f.Function, "sync.(*RWMutex).Lock"),
				strings.HasPrefix(f.Function, "sync.(*RWMutex).RLock"):
				kind = siteRWLock
			}
			physical = f.Function
			if !more {
				break
			}
		}
		if kind == 0 {
			continue
		}
		if !strings.HasPrefix(physical, "runtime.") && !strings.HasPrefix(physical, "sync.") &&
			!strings.HasPrefix(physical, "internal/") {
			return pc, kind
		}
	}
	return 0, 0
}

// fold publishes the block profile's mutex waits, by site: the profile is
// cumulative, so each entry is stored whole, not added to.  One goroutine
// (the runtime metrics publisher) calls it.
func (l *lockSites) fold() {
	n, _ := runtime.BlockProfile(nil)
	if n == 0 {
		return
	}
	if cap(l.recs) < n+16 {
		l.recs = make([]runtime.BlockProfileRecord, n+16)
	}
	n, ok := runtime.BlockProfile(l.recs[:cap(l.recs)])
	if !ok {
		return // grew meanwhile: the next sample has it
	}
	type total struct {
		count, cycles int64
		kind          uint32
	}
	sites := map[uintptr]*total{}
	for i := range l.recs[:n] {
		r := &l.recs[i]
		ss, ok := l.byStack[r.Stack0]
		if !ok {
			ss.pc, ss.kind = siteOf(r.Stack())
			l.byStack[r.Stack0] = ss
		}
		pc, kind := ss.pc, ss.kind
		if pc == 0 {
			continue
		}
		t := sites[pc]
		if t == nil {
			t = &total{kind: kind}
			sites[pc] = t
		}
		t.count += r.Count
		t.cycles += r.Cycles
	}
	s := l.seg
	dropped := uint64(0)
	for pc, t := range sites {
		i, ok := l.entry[pc]
		if !ok {
			if l.next == s.sitesCap {
				dropped += uint64(t.count)
				continue
			}
			i = l.next
			l.next++
			l.entry[pc] = i
		}
		e := s.sitesOff + uint64(i)*siteSize
		// Relaxed in the format's terms (each field stands alone); the
		// address last, so a reader never sees a site without its kind.
		s.store64(e+siteContentions, uint64(t.count))
		s.store64(e+siteWaitNs, uint64(float64(t.cycles)/l.perSec*1e9))
		s.store32(e+siteKind, t.kind)
		s.store64(e+siteAddress, uint64(pc))
	}
	s.store64(hSitesDropped, dropped)
	// Release (FORMAT.md §4): the table is in use, its entries written.
	// Pairs with the reader's acquire load of sites_sample.  The runtime
	// already weighs what it sampled, so the entries are not scaled again.
	if atomic.LoadUint32(s.p32(hSitesSample)) == 0 {
		s.store32(hSitesSample, 1)
	}
}
