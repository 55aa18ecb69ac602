// SPDX-License-Identifier: MIT

// go-demo is the seed's monitor example, publishing through rtm instead of
// an OpenTelemetry SDK: a service name and version on the resource, the Go
// runtime's metrics every interval, a simulated load (1 MB allocated and 10
// short-lived goroutines a second, and requests with a latency histogram),
// and a clean shutdown on SIGINT or SIGTERM.  rtm-reader exports it.
//
//	go-demo [-service NAME] [-version V] [-interval 10s] [-duration 0]
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/signal"
	"syscall"
	"time"

	rtm "rtm.invalid/rtm"
)

func main() {
	service := flag.String("service", "go-demo", "service.name")
	version := flag.String("version", "1.0.0", "service.version")
	interval := flag.Duration("interval", 10*time.Second, "runtime metrics interval")
	duration := flag.Duration("duration", 0, "stop after this long (0: run until a signal)")
	flag.Parse()
	if *interval <= 0 || *duration < 0 {
		fmt.Fprintln(os.Stderr, "go-demo: -interval must be positive and -duration not negative")
		os.Exit(2)
	}

	seg, err := rtm.Open(rtm.Options{ServiceName: *service, ServiceVersion: *version,
		Resource: map[string]string{"deployment.environment.name": "demo"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-demo:", err)
		os.Exit(1)
	}
	rm, err := rtm.StartRuntimeMetrics(seg, *interval)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-demo:", err)
		os.Exit(1)
	}
	requests, _ := seg.Counter(rtm.Def{Name: "demo.requests", Unit: "{request}",
		Description: "Requests handled", Attrs: []rtm.Attr{{Key: "outcome", Value: "ok"}}})
	latency, _ := seg.Histogram(rtm.Def{Name: "demo.request.duration", Unit: "s",
		Description: "Request latency"})
	fmt.Printf("go-demo: pid %d publishing to %s\n", os.Getpid(), seg.Path())

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if *duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	var keep [][]byte
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			rm.Stop() // a last sample
			seg.Close()
			fmt.Println("go-demo: stopped")
			return
		case <-tick.C:
		}
		// 1 MB a second, kept for ten seconds; one short goroutine a tick.
		keep = append(keep, make([]byte, 100_000))
		if len(keep) > 100 {
			keep = keep[1:]
		}
		go func() {
			start := time.Now()
			time.Sleep(time.Duration(rand.Intn(5)) * time.Millisecond)
			requests.Add(1)
			latency.Record(time.Since(start).Seconds())
		}()
	}
}
