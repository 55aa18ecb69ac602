// SPDX-License-Identifier: MIT

package rtm

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks with their baselines in the same run (docs/go.md):
//   go test -run '^$' -bench . -cpu 1,2
// RunParallel spreads b.N over GOMAXPROCS goroutines: ns/op is wall time
// per update, so a cost that stays flat from -cpu 1 to 2 scales.

func benchSegment(b *testing.B) *Segment {
	s, err := Open(Options{ServiceName: "bench", Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkCounterAdd(b *testing.B) {
	c, _ := benchSegment(b).Counter(Def{Name: "c"})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(1)
		}
	})
}

// Baseline: one word shared by every goroutine.
func BenchmarkSharedAtomicAdd(b *testing.B) {
	var n int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			atomic.AddInt64(&n, 1)
		}
	})
}

// Baseline: a mutex-protected counter.
func BenchmarkMutexCounter(b *testing.B) {
	var mu sync.Mutex
	var n int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			mu.Unlock()
		}
	})
}

func BenchmarkHistogramRecord(b *testing.B) {
	h, _ := benchSegment(b).Histogram(Def{Name: "h", Unit: "s"})
	b.RunParallel(func(pb *testing.PB) {
		v := 0.0
		for pb.Next() {
			h.Record(v)
			v += 1e-4
			if v > 2 {
				v = 0
			}
		}
	})
}

// One runtime/metrics publication: a metrics.Read of every key and the
// updates it causes.
func BenchmarkRuntimePublish(b *testing.B) {
	rm, err := StartRuntimeMetrics(benchSegment(b), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	defer rm.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rm.Publish()
	}
}

// The exponential histogram: its bucket from the value's bits, into the
// slot of the P the goroutine runs on.
func BenchmarkExponentialHistogramRecord(b *testing.B) {
	h, _ := benchSegment(b).ExponentialHistogram(Def{Name: "h", Unit: "s"}, 0, 0)
	b.RunParallel(func(pb *testing.PB) {
		v := 1e-4
		for pb.Next() {
			h.Record(v)
			v *= 1.01
			if v > 2 {
				v = 1e-4
			}
		}
	})
}
