// SPDX-License-Identifier: MIT

package rtm

import (
	"encoding/binary"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
)

// A test-only reader, written from FORMAT.md like the producer, so the
// tests check the file, not the producer's own bookkeeping.

type series struct {
	name, unit, desc string
	kind, vtype      uint8
	attrs            map[string]string
	bounds           []float64
	value            float64  // counters, up-down counters, gauges
	buckets          []uint64 // histograms
	sum, min, max    float64
	start            uint64
	flags            uint32
	// exponential histograms, merged at one scale:
	scale    int32
	zero     uint64
	pos, neg map[int32]uint64
}

type file struct {
	hdr    []byte
	series []series
}

func readSegment(t *testing.T, path string) file {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != magic || le.Uint16(b[4:]) != 1 {
		t.Fatalf("%s: not a layout 1 segment", path)
	}
	descOff, descSz := le.Uint32(b[hDescOffset:]), le.Uint32(b[hDescSize:])
	count := le.Uint32(b[hDescCount:])
	dataOff, shards, shardSz := le.Uint32(b[hDataOffset:]), le.Uint32(b[hShardCount:]), le.Uint32(b[hShardSize:])
	hwm := le.Uint32(b[hShardHWM:])
	if hwm == 0 || hwm > shards {
		hwm = shards
	}
	str := func(off uint32, n uint32) string { return string(b[off : off+n]) }
	f := file{hdr: b[:headerSize]}
	for i := uint32(0); i < count; i++ {
		e := b[descOff+i*descSz:]
		s := series{kind: e[dKind], vtype: e[dValueType], attrs: map[string]string{}}
		s.name = str(le.Uint32(e[dNameOff:]), uint32(le.Uint16(e[dNameLen:])))
		s.unit = str(le.Uint32(e[dUnitOff:]), uint32(le.Uint16(e[dUnitLen:])))
		s.desc = str(le.Uint32(e[dDescOff:]), le.Uint32(e[dDescLen:]))
		s.start = le.Uint64(e[dStartUnix:])
		attrs := strings.Split(str(le.Uint32(e[dAttrsOff:]), le.Uint32(e[dAttrsLen:])), "\x00")
		for k := 0; k+1 < len(attrs); k += 2 {
			s.attrs[attrs[k]] = attrs[k+1]
		}
		nb := uint32(le.Uint16(e[dBoundCount:]))
		bo := le.Uint32(e[dBoundsOff:])
		for k := uint32(0); k < nb; k++ {
			s.bounds = append(s.bounds, math.Float64frombits(le.Uint64(b[bo+8*k:])))
		}
		s.flags = le.Uint32(e[dFlags:])
		slot := le.Uint32(e[dSlotOffset:])
		word := func(sh uint32, off uint32) uint64 { return le.Uint64(b[dataOff+sh*shardSz+slot+off:]) }
		switch s.kind {
		case kindGauge:
			s.value = asValue(word(0, 0), s.vtype)
		case kindCounter, kindUpDown:
			var iv uint64
			var fv float64
			for sh := uint32(0); sh < hwm; sh++ {
				iv += word(sh, 0)
				fv += math.Float64frombits(word(sh, 0))
			}
			if s.vtype == valueInt {
				s.value = float64(int64(iv))
			} else {
				s.value = fv
			}
		case kindHistogram:
			if s.flags&descExponential != 0 {
				s.readExp(b, dataOff, shardSz, slot, hwm, int(le.Uint16(e[dExpSize:])))
				break
			}
			s.buckets = make([]uint64, nb+1)
			s.min, s.max = math.Inf(1), math.Inf(-1)
			for sh := uint32(0); sh < hwm; sh++ {
				if word(sh, hsSeq)%2 != 0 {
					panic("odd seq while no goroutine records")
				}
				s.sum += math.Float64frombits(word(sh, hsSum))
				s.min = math.Min(s.min, math.Float64frombits(word(sh, hsMin)))
				s.max = math.Max(s.max, math.Float64frombits(word(sh, hsMax)))
				for k := range s.buckets {
					s.buckets[k] += word(sh, hsBuckets+8*uint32(k))
				}
			}
		}
		f.series = append(f.series, s)
	}
	return f
}

// readExp merges an exponential histogram's shards at the coarsest scale
// among them (FORMAT.md §7), without any window: a map per side.
func (s *series) readExp(b []byte, dataOff, shardSz, slot, hwm uint32, size int) {
	le := binary.LittleEndian
	s.scale, s.pos, s.neg = expScaleMax, map[int32]uint64{}, map[int32]uint64{}
	s.min, s.max = math.Inf(1), math.Inf(-1)
	type side struct {
		base, top int32
		counts    []uint64
	}
	var shards [][3]side
	for sh := uint32(0); sh < hwm; sh++ {
		w := b[dataOff+sh*shardSz+slot:]
		if le.Uint64(w[hsSeq:])%2 != 0 {
			panic("odd seq in a closed or idle segment")
		}
		scale := int32(le.Uint32(w[xsScale:]))
		if scale < s.scale {
			s.scale = scale
		}
		var sd [3]side
		sd[2].base = scale
		for k, at := range []uint32{xsPosBase, xsNegBase} {
			sd[k].base, sd[k].top = int32(le.Uint32(w[at:])), int32(le.Uint32(w[at+4:]))
			for i := 0; i < size; i++ {
				sd[k].counts = append(sd[k].counts, le.Uint64(w[expFixed+8*(k*size+i):]))
			}
		}
		shards = append(shards, sd)
		s.zero += le.Uint64(w[xsZero:])
		if le.Uint64(w[xsCount:]) > 0 {
			s.sum += math.Float64frombits(le.Uint64(w[hsSum:]))
			s.min = math.Min(s.min, math.Float64frombits(le.Uint64(w[hsMin:])))
			s.max = math.Max(s.max, math.Float64frombits(le.Uint64(w[hsMax:])))
		}
	}
	for _, sd := range shards {
		for k, m := range []map[int32]uint64{s.pos, s.neg} {
			for i := int32(0); sd[k].top >= sd[k].base && i <= sd[k].top-sd[k].base; i++ {
				if c := sd[k].counts[i]; c > 0 {
					m[(sd[k].base+i)>>(sd[2].base-s.scale)] += c
				}
			}
		}
	}
}

func asValue(w uint64, vtype uint8) float64 {
	if vtype == valueInt {
		return float64(int64(w))
	}
	return math.Float64frombits(w)
}

// find is the series called name whose attributes include kv ("k=v" pairs).
func (f file) find(t *testing.T, name string, kv ...string) series {
	t.Helper()
	for _, s := range f.series {
		if s.name != name {
			continue
		}
		ok := true
		for _, p := range kv {
			k, v, _ := strings.Cut(p, "=")
			ok = ok && s.attrs[k] == v
		}
		if ok {
			return s
		}
	}
	var names []string
	for _, s := range f.series {
		names = append(names, s.name)
	}
	sort.Strings(names)
	t.Fatalf("no series %s %v among %v", name, kv, names)
	return series{}
}

func (s series) count() uint64 {
	n := s.zero
	for _, c := range s.pos {
		n += c
	}
	for _, c := range s.neg {
		n += c
	}
	for _, b := range s.buckets {
		n += b
	}
	return n
}
