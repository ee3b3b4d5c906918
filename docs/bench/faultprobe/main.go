// Command faultprobe times the first write to each page of freshly
// allocated memory, the page fault a writer pays when it is the first to
// touch a chunk or table: the measurement behind spares.go (the spare
// memory the background goroutine pre-faults off the write path).
//
//	go run ./docs/bench/faultprobe [blocks]
package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"
)

var keep [][]byte

func main() {
	blocks := 2000
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n <= 0 {
			fmt.Fprintln(os.Stderr, "usage: faultprobe [blocks]")
			os.Exit(2)
		}
		blocks = n
	}
	const size, page = 256 << 10, 4096
	first := make([]time.Duration, 0, blocks*size/page)
	again := make([]time.Duration, 0, blocks*size/page)
	for range blocks {
		b := make([]byte, size)
		keep = append(keep, b) // fresh memory every time: nothing is freed
		for p := 0; p < len(b); p += page {
			t := time.Now()
			b[p] = 1
			first = append(first, time.Since(t))
		}
		for p := 0; p < len(b); p += page { // the same writes, pages now mapped
			t := time.Now()
			b[p] = 2
			again = append(again, time.Since(t))
		}
	}
	for _, c := range []struct {
		what string
		d    []time.Duration
	}{{"first write to a page", first}, {"a write to a mapped page (the clock's own cost)", again}} {
		slices.Sort(c.d)
		n := len(c.d)
		fmt.Printf("%s: p50 %v p90 %v p99 %v p99.9 %v max %v (n=%d)\n", c.what, c.d[n/2], c.d[n*9/10], c.d[n*99/100], c.d[n*999/1000], c.d[n-1], n)
	}
}
