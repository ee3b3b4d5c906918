// Command stallprobe shows what the machine alone does to a timed loop:
// one goroutine reads the clock for -d and counts the gaps between two
// reads above 10 µs, 20 µs, 50 µs, 100 µs and 1 ms, and prints the ten
// longest and the steal time /proc/stat reports for the run. Nothing is
// allocated and no store exists, so every gap is the machine's (the
// hypervisor, the kernel, another process), not Go's or shardkv's. A
// latency percentile over a loop this long can be no lower than what these
// gaps make it: see workload.StallFloor, which kvbench's scale section
// uses.
//
//	go run ./docs/bench/stallprobe -d 12s
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
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
	limits := []time.Duration{10 * time.Microsecond, 20 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, time.Millisecond}
	over := make([]int, len(limits))
	var top []time.Duration // the longest gaps, at most 10, longest first
	st0 := steal()
	t0 := time.Now()
	last, reads := time.Duration(0), 0
	for last < *d {
		now := time.Since(t0)
		gap := now - last
		last = now
		reads++
		if gap < limits[0] {
			continue
		}
		for i, l := range limits {
			if gap > l {
				over[i]++
			}
		}
		if len(top) < 10 || gap > top[len(top)-1] {
			top = append(top, gap)
			slices.SortFunc(top, func(a, b time.Duration) int { return int(b - a) })
			top = top[:min(len(top), 10)]
		}
	}
	fmt.Printf("%s, GOMAXPROCS %d, %s spin, %d clock reads (%.0f ns each):", time.Now().UTC().Format(time.RFC3339),
		runtime.GOMAXPROCS(0), last.Round(time.Millisecond), reads, float64(last)/float64(reads))
	for i, l := range limits {
		fmt.Printf(" >%v %d,", l, over[i])
	}
	fmt.Printf(" steal %d ticks; longest %v\n", steal()-st0, top)
}
