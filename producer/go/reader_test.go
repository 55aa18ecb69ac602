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
			s.buckets = make([]uint64, nb+1)
			s.min, s.max = math.Inf(1), math.Inf(-1)
			for sh := uint32(0); sh < hwm; sh++ {
				if word(sh, hsSeq)%2 != 0 {
					panic("odd seq: the Go producer never writes one")
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
	n := uint64(0)
	for _, b := range s.buckets {
		n += b
	}
	return n
}
