// Command gcprobe measures what one forced GC cycle costs in process CPU
// with n live pointer-free objects of a given size, against the same cycle
// with nothing live: the measurement behind the table size in the README's
// storage design (the collector's cost follows heap spans, and an object of
// 16 KiB is a span of its own).
//
//	go run ./docs/bench/gcprobe 17000 16384
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

var keep [][]byte

// gcCPU is the least process CPU time (user+system, all threads) of three
// forced cycles.
func gcCPU() time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 3 {
		var a, b syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &a)
		runtime.GC()
		syscall.Getrusage(syscall.RUSAGE_SELF, &b)
		best = min(best, time.Duration(b.Utime.Nano()+b.Stime.Nano()-a.Utime.Nano()-a.Stime.Nano()))
	}
	return best
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gcprobe objects bytes")
		os.Exit(2)
	}
	n, err1 := strconv.Atoi(os.Args[1])
	size, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || n <= 0 || size <= 0 {
		fmt.Fprintln(os.Stderr, "gcprobe: objects and bytes must be positive integers")
		os.Exit(2)
	}
	empty := gcCPU()
	keep = make([][]byte, 0, n)
	for range n {
		b := make([]byte, size)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	runtime.GC()
	fmt.Printf("%d objects of %d B (%d MiB): GC CPU a cycle %v, with nothing live %v\n", n, size, n*size>>20, gcCPU(), empty)
}
