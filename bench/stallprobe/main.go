// Command stallprobe shows what the machine alone does to a timed loop: it
// runs workload.MeasureStallFloor (one goroutine reading the clock, as
// kvbench's timing harness does, recording every gap of a microsecond or
// more) for -d, and prints the gaps over 20 µs, 50 µs and 1 ms, the
// longest, and the steal time /proc/stat reports for the run. Nothing is
// allocated and no store exists, so every gap is the machine's (the
// hypervisor, the kernel, another process) or the Go runtime's, not a
// store's. See workload.StallFloor, which kvbench's scale section uses.
//
//	go run ./bench/stallprobe -d 12s
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/shardkv/shardkv/bench/workload"
)

// steal is the steal column of /proc/stat's cpu line (clock ticks), or -1.
func steal() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	var user, nice, sys, idle, iowait, irq, softirq, st int64
	line, _, _ := strings.Cut(string(b), "\n")
	if _, err := fmt.Sscanf(line, "cpu %d %d %d %d %d %d %d %d", &user, &nice, &sys, &idle, &iowait, &irq, &softirq, &st); err != nil {
		return -1
	}
	return st
}

func main() {
	d := flag.Duration("d", 12*time.Second, "how long to spin")
	flag.Parse()
	st := steal()
	f := workload.MeasureStallFloor(*d, 0, *d)
	fmt.Printf("%s, GOMAXPROCS %d, %.1f s spin: gaps >1µs %d, >20µs %d, >50µs %d, >1ms %d, longest %v; steal %d ticks\n",
		time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), f.SpinSeconds, f.Gaps, f.Over20us, f.Over50us, f.Over1ms,
		time.Duration(f.Max), steal()-st)
}
