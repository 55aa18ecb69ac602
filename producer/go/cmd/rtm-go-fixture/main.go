// SPDX-License-Identifier: MIT

// rtm-go-fixture writes, with the Go producer, the same definitions and
// values as tests/gen_fixture.c writes with the C one (the golden segment
// tests/fixtures/layout-1.0.seg), plus a second segment with the Go
// runtime's metrics; prints both paths, one a line, and holds them open
// until its standard input closes.  tests/test_go.c compares and exports
// them.
package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	rtm "rtm.invalid/rtm"
)

func must[T any](v T, err error) T {
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm-go-fixture:", err)
		os.Exit(1)
	}
	return v
}

func main() {
	seg := must(rtm.Open(rtm.Options{ServiceName: "fixture", ServiceVersion: "1.0.0",
		Resource: map[string]string{"fixture": "yes"}, MaxMetrics: 8, Stripes: 2,
		ShardBytes: 512, StringBytes: 1024}))
	requests := must(seg.Counter(rtm.Def{Name: "fx.requests", Unit: "{request}",
		Description: "Requests", Attrs: []rtm.Attr{{Key: "method", Value: "GET"}}}))
	cpu := must(seg.Counter(rtm.Def{Name: "fx.cpu", Unit: "s", Float: true}))
	active := must(seg.UpDownCounter(rtm.Def{Name: "fx.active"}))
	queue := must(seg.Gauge(rtm.Def{Name: "fx.queue"}))
	ratio := must(seg.Gauge(rtm.Def{Name: "fx.ratio", Unit: "1", Float: true}))
	latency := must(seg.Histogram(rtm.Def{Name: "fx.latency", Unit: "s", Bounds: []float64{0.1, 1, 10}}))
	requests.Add(40)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { requests.Add(2); wg.Done() }()
	wg.Wait()
	cpu.AddFloat(1.25)
	active.Add(-3)
	queue.Set(17)
	ratio.SetFloat(0.5)
	for _, v := range []float64{0.05, 0.5, 5, 50} {
		latency.Record(v)
	}

	rt := must(rtm.Open(rtm.Options{ServiceName: "fixture-runtime"}))
	rm := must(rtm.StartRuntimeMetrics(rt, 100*time.Millisecond))
	fmt.Println(seg.Path())
	fmt.Println(rt.Path())
	io.Copy(io.Discard, os.Stdin)
	rm.Stop()
	rt.Close()
	seg.Close()
}
