package shardkvtest

import "runtime"

// Mallocs runs op n times and returns the heap allocations made meanwhile
// (runtime.MemStats.Mallocs), unrounded, with GOMAXPROCS(1) as
// testing.AllocsPerRun sets it. Unlike AllocsPerRun it makes no warm-up
// call and does not divide, so a test can pin an exact total ("want 1"
// fails at 1.99 a call). Mallocs counts every goroutine's allocations:
// noise from elsewhere only adds to a total, so a test may measure again
// when it is over, never when it is under.
func Mallocs(n int, op func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		op()
	}
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs
}
