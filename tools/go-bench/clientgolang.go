// SPDX-License-Identifier: MIT

//go:build clientgolang

package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// client_golang 1.14's histograms, as an application would use them.
func init() {
	classic := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "classic_seconds"})
	// Factor 1.1: schema 3, the resolution rtm's Go runtime times use.
	native := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "native_seconds",
		NativeHistogramBucketFactor: 1.1})
	benches = append(benches,
		bench{"client_golang classic Observe", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				v := 1e-4
				for pb.Next() {
					classic.Observe(v)
					v = next(v)
				}
			})
		}},
		bench{"client_golang native Observe", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				v := 1e-4
				for pb.Next() {
					native.Observe(v)
					v = next(v)
				}
			})
		}})
}
