// SPDX-License-Identifier: MIT

// rtm-go-profiles is what tests/test_go.c runs for the Go producer's lock
// sites and heap hint, with known truths:
//
//	rtm-go-profiles locks  two goroutines contend on one sync.Mutex: the
//	                       waiter's Lock (in waiter, at the line printed)
//	                       waits while the holder sleeps; prints the
//	                       segment, the line and the total wait it measured
//	rtm-go-profiles heap   allocates 448 MiB in 64 KiB pieces, drops 256
//	                       MiB of them and collects; prints the segment
//
// Both then publish until their standard input closes.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	rtm "rtm.invalid/rtm"
)

func must[T any](v T, err error) T {
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtm-go-profiles:", err)
		os.Exit(1)
	}
	return v
}

var mu sync.Mutex

// waiter takes the lock once the holder has it: every wait is the
// holder's sleep.  Returns the time it spent in Lock.
func waiter(held <-chan struct{}) time.Duration {
	<-held
	t0 := time.Now()
	_, _, line, _ := runtime.Caller(0)
	mu.Lock() // the site: the line after the one runtime.Caller names
	waited := time.Since(t0)
	mu.Unlock()
	lockLine = line + 1
	return waited
}

var lockLine int

func locks() {
	var total time.Duration
	held := make(chan struct{})
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10; i++ {
			mu.Lock()
			held <- struct{}{}
			time.Sleep(50 * time.Millisecond)
			mu.Unlock()
			<-done
		}
	}()
	for i := 0; i < 10; i++ {
		total += waiter(held)
		done <- struct{}{}
	}
	fmt.Printf("line %d\nwaited %d\n", lockLine, total.Nanoseconds())
}

var live, garbage [][]byte

// heap keeps 192 MiB live, so the runtime's scavenger, which returns only
// what lies beyond the heap goal, leaves the 256 MiB freed beside it idle.
func heap() {
	for i := 0; i < 7168; i++ {
		b := make([]byte, 64<<10)
		for k := 0; k < len(b); k += 4096 {
			b[k] = 1
		}
		if i < 3072 {
			live = append(live, b)
		} else {
			garbage = append(garbage, b)
		}
	}
	garbage = nil
	runtime.GC()
	fmt.Println("freed")
}

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "locks" && os.Args[1] != "heap") {
		fmt.Fprintln(os.Stderr, "usage: rtm-go-profiles locks|heap")
		os.Exit(2)
	}
	seg := must(rtm.Open(rtm.Options{ServiceName: "go-" + os.Args[1]}))
	rm := must(rtm.StartRuntimeMetrics(seg, 100*time.Millisecond))
	fmt.Println(seg.Path())
	if os.Args[1] == "locks" {
		locks()
	} else {
		heap()
	}
	io.Copy(io.Discard, os.Stdin)
	runtime.KeepAlive(live)
	rm.Stop()
	seg.Close()
}
