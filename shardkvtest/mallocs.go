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

// MallocAttempts is how many times MallocsUpTo measures.
const MallocAttempts = 3

// MallocsUpTo measures Mallocs(n, op) until a total is at most max, at most
// MallocAttempts times, and returns every total; the last is the verdict.
// Another goroutine's allocations (the runtime's, a store's background
// work, an earlier test's goroutines winding down) can only add to a
// total, so a total over max is measured again; an op that allocates more
// than it should is over on every attempt, and one under max is not
// measured again.
func MallocsUpTo(n int, max uint64, op func()) []uint64 {
	var totals []uint64
	for range MallocAttempts {
		got := Mallocs(n, op)
		totals = append(totals, got)
		if got <= max {
			break
		}
	}
	return totals
}
