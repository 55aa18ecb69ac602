// SPDX-License-Identifier: MIT

// go-bench: the Go producer's histogram records next to their baselines,
// in one run (docs/go.md): a shared atomic add, rtm's explicit and
// exponential records and, built with -tags clientgolang (tools/run-go-bench
// does when Debian's golang-github-prometheus-client-golang-dev is there),
// client_golang's classic and native histograms' Observe.  Each is
// testing.B's RunParallel at GOMAXPROCS 1 and 2, repeated; it prints
// min / median / max ns per update and the ratios of the medians.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync/atomic"
	"testing"

	rtm "rtm.invalid/rtm"
)

type bench struct {
	name string
	fn   func(b *testing.B)
}

var benches []bench

// values a latency histogram sees: 100 µs to 2 s, geometric.
func next(v float64) float64 {
	if v *= 1.01; v > 2 {
		return 1e-4
	}
	return v
}

func main() {
	runs := flag.Int("runs", 5, "repetitions")
	flag.Parse()
	dir, err := os.MkdirTemp("", "go-bench")
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-bench:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	seg, err := rtm.Open(rtm.Options{ServiceName: "go-bench", Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-bench:", err)
		os.Exit(1)
	}
	defer seg.Close()
	explicit, _ := seg.Histogram(rtm.Def{Name: "explicit", Unit: "s"})
	exp, _ := seg.ExponentialHistogram(rtm.Def{Name: "exp", Unit: "s"}, 0, 0)
	var shared int64
	all := append([]bench{
		{"atomic.AddInt64 (shared)", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					atomic.AddInt64(&shared, 1)
				}
			})
		}},
		{"rtm Histogram.Record, explicit", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				v := 1e-4
				for pb.Next() {
					explicit.Record(v)
					v = next(v)
				}
			})
		}},
		{"rtm Histogram.Record, exponential", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				v := 1e-4
				for pb.Next() {
					exp.Record(v)
					v = next(v)
				}
			})
		}},
	}, benches...)
	fmt.Printf("go-bench: %d runs each, ns per update (min / median / max)\n", *runs)
	med := map[string][2]float64{}
	for _, b := range all {
		fmt.Printf("  %-40s", b.name)
		for c, cpus := range []int{1, 2} {
			old := runtime.GOMAXPROCS(cpus)
			var ns []float64
			for r := 0; r < *runs; r++ {
				res := testing.Benchmark(b.fn)
				ns = append(ns, float64(res.T.Nanoseconds())/float64(res.N))
			}
			runtime.GOMAXPROCS(old)
			sort.Float64s(ns)
			m := med[b.name]
			m[c] = ns[len(ns)/2]
			med[b.name] = m
			fmt.Printf("  %d CPU: %5.2f / %5.2f / %5.2f", cpus, ns[0], ns[len(ns)/2], ns[len(ns)-1])
		}
		fmt.Println()
	}
	fmt.Println("ratios of the medians (1 CPU, 2 CPUs):")
	ratio := func(a, b string) {
		if x, ok := med[a]; ok {
			if y, ok := med[b]; ok {
				fmt.Printf("  %s / %s: %.2fx, %.2fx\n", a, b, x[0]/y[0], x[1]/y[1])
			}
		}
	}
	ratio("rtm Histogram.Record, exponential", "rtm Histogram.Record, explicit")
	ratio("rtm Histogram.Record, exponential", "atomic.AddInt64 (shared)")
	ratio("rtm Histogram.Record, exponential", "client_golang native Observe")
	ratio("rtm Histogram.Record, explicit", "client_golang classic Observe")
}
