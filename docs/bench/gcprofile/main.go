// Command gcprofile fills a store with n keys (12-byte keys, 64-byte
// values, no TTL, as kvbench's scale section does), then profiles forced
// GC cycles with the store live, to show where a cycle's CPU goes.
//
//	go run ./docs/bench/gcprofile -n 10000000 -cycles 20 -out /tmp/gc.prof
//
// With -plain it builds no store: -plain pointer-free byte slices of
// -plain-size bytes, each referenced from -plain-ptrs places, so that what
// an object costs a cycle on this machine, with nothing else live, can be
// set beside the store's objects (the "objects live" it prints).
//
//	go run ./docs/bench/gcprofile -plain 10000 -plain-size 65536 -plain-ptrs 2 -out /dev/null
//
// With -heap it also writes a heap profile of every allocation (the
// objects live after the fill, by where they were made):
//
//	go run ./docs/bench/gcprofile -n 10000000 -out /dev/null -heap /tmp/heap.prof
//	go tool pprof -sample_index=inuse_objects -top /tmp/heap.prof
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/shardkv/shardkv"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func gcCost(cycles int) time.Duration {
	start := cpu()
	for range cycles {
		runtime.GC()
	}
	return (cpu() - start) / time.Duration(cycles)
}

// plain makes n objects of size bytes and ptrs references to each (the
// extra ones in a second slice, in a scattered order).
func plain(n, size, ptrs int) (objs, refs [][]byte) {
	objs = make([][]byte, n)
	for i := range objs {
		objs[i] = make([]byte, size)
	}
	for p := 1; p < ptrs; p++ {
		for i := range objs {
			refs = append(refs, objs[(i*7919)%n])
		}
	}
	return objs, refs
}

func main() {
	n := flag.Int("n", 10_000_000, "keys")
	cycles := flag.Int("cycles", 20, "forced GC cycles to profile")
	out := flag.String("out", "gc.prof", "CPU profile")
	plainN := flag.Int("plain", 0, "build no store: this many plain objects instead")
	plainSize := flag.Int("plain-size", 100<<10, "bytes of each plain object")
	plainPtrs := flag.Int("plain-ptrs", 1, "references to each plain object")
	heap := flag.String("heap", "", "also write a heap profile of every allocation here")
	flag.Parse()
	if *heap != "" {
		runtime.MemProfileRate = 1
	}
	base := gcCost(5)
	var live any
	what, them := fmt.Sprintf("keys %d", *n), "the store"
	if *plainN > 0 {
		objs, refs := plain(*plainN, *plainSize, *plainPtrs)
		live = [2][][]byte{objs, refs}
		what = fmt.Sprintf("plain objects %d x %d KiB, %d references each", *plainN, *plainSize>>10, *plainPtrs)
		*n, them = *plainN, "them"
	} else {
		s := shardkv.New(shardkv.WithMaxKeys(*n + 1))
		for i := range *n {
			if err := s.Set(fmt.Sprintf("user:%07d", i), make([]byte, 64)); err != nil {
				panic(err)
			}
		}
		live = s
	}
	runtime.GC()
	runtime.GC()
	if *heap != "" {
		hf, err := os.Create(*heap)
		if err != nil {
			panic(err)
		}
		if err := pprof.WriteHeapProfile(hf); err != nil {
			panic(err)
		}
		hf.Close()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f, err := os.Create(*out)
	if err != nil {
		panic(err)
	}
	pprof.StartCPUProfile(f)
	cost := gcCost(*cycles)
	pprof.StopCPUProfile()
	f.Close()
	fmt.Printf("%s: heap %d B (%.1f B/entry), %d objects live; GC CPU a cycle: %v with nothing built, %v with %s live\n",
		what, ms.HeapAlloc, float64(ms.HeapAlloc)/float64(*n), ms.HeapObjects, base, cost, them)
	runtime.KeepAlive(live)
}
