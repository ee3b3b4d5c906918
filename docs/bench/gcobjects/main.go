// Command gcobjects shows what one object costs a forced GC cycle on this
// machine, with no store: it allocates -objs pointer-free byte slices of
// -size bytes, referenced from -ptrs places each, and prints the process
// CPU time (getrusage) of a forced runtime.GC with them live, against the
// same with nothing built, and the difference per object.
//
//	go run ./docs/bench/gcobjects -objs 10000 -size 65536
package main

import (
	"flag"
	"fmt"
	"runtime"
	"syscall"
	"time"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
func cost(n int) time.Duration {
	c := cpu()
	for range n {
		runtime.GC()
	}
	return (cpu() - c) / time.Duration(n)
}

var keep [][]byte
var refs [][]byte

func main() {
	objs := flag.Int("objs", 10000, "objects")
	size := flag.Int("size", 100<<10, "bytes an object")
	ptrs := flag.Int("ptrs", 1, "pointers per object")
	flag.Parse()
	base := cost(20)
	keep = make([][]byte, *objs)
	for i := range keep {
		keep[i] = make([]byte, *size)
	}
	for p := 1; p < *ptrs; p++ {
		for i := range keep {
			refs = append(refs, keep[(i*7919)%len(keep)])
		}
	}
	runtime.GC()
	live := cost(30)
	fmt.Printf("objs %d x %d KiB, %d ptrs each: empty %v, live %v, per object %.0f ns\n", *objs, *size>>10, *ptrs, base, live, float64(live-base)/float64(*objs))
}
