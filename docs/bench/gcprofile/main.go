// Command gcprofile fills a store with n keys (12-byte keys, 64-byte
// values, no TTL, as kvbench's scale section does), then profiles forced
// GC cycles with the store live, to show where a cycle's CPU goes.
//
//	go run ./docs/bench/gcprofile -n 10000000 -cycles 20 -out /tmp/gc.prof
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

func main() {
	n := flag.Int("n", 10_000_000, "keys")
	cycles := flag.Int("cycles", 20, "forced GC cycles to profile")
	out := flag.String("out", "gc.prof", "CPU profile")
	flag.Parse()
	base := gcCost(5)
	s := shardkv.New(shardkv.WithMaxKeys(*n + 1))
	for i := range *n {
		if err := s.Set(fmt.Sprintf("user:%07d", i), make([]byte, 64)); err != nil {
			panic(err)
		}
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f, err := os.Create(*out)
	if err != nil {
		panic(err)
	}
	pprof.StartCPUProfile(f)
	live := gcCost(*cycles)
	pprof.StopCPUProfile()
	f.Close()
	fmt.Printf("keys %d: heap %d B (%.1f B/entry), %d objects live; GC CPU a cycle: %v with nothing built, %v with the store live\n",
		*n, ms.HeapAlloc, float64(ms.HeapAlloc)/float64(*n), ms.HeapObjects, base, live)
	runtime.KeepAlive(s)
}
