package shardkv

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestFillProbe is a measuring tool, not a test: with SHARDKV_FILLPROBE=n
// it fills a store with n keys as kvbench's scale section does (12-byte
// keys, 64-byte values, one goroutine), times every Set, and sorts the
// Sets by what their shard did during them (a table split or its halves
// installed, the directory doubled, a new head chunk, from the spares or
// not, or a step of a split), so that the slowest Sets can be told apart
// by cause. Without the variable it skips.
//
//	SHARDKV_FILLPROBE=10000000 go test -run FillProbe -v -timeout 20m .
func TestFillProbe(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SHARDKV_FILLPROBE"))
	if n == 0 {
		t.Skip("a measuring tool: set SHARDKV_FILLPROBE to a number of keys")
	}
	s := New(WithMaxKeys(n + 1))
	defer s.Close()
	// One thread for the whole fill, so that its context switches
	// (threadSwitches, on Linux) are those of the Sets timed.
	// SHARDKV_FILLPROBE_SWITCHES=0 leaves them uncounted: the two
	// syscalls a Set cost time of their own (outside the timed span) and
	// move the tail (docs/evidence/fill-switches.txt).
	countSwitches := os.Getenv("SHARDKV_FILLPROBE_SWITCHES") != "0"
	if countSwitches {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	kinds := map[string][]time.Duration{}
	for i := range n {
		k := fmt.Sprintf("user:%07d", i)
		v := make([]byte, 64)
		// Read without the lock: only this goroutine writes, and the
		// reaper's refills change spares, which are only labels here.
		sh, h := s.s.locate(k)
		d := sh.tab.Load()
		tb := d.table(tagOf(h))
		head, chunks := sh.a.head.no, len(sh.a.chunks)
		stepping := d.pend.of(tb) != nil && !d.pend.of(tb).done() // splitsteps: a commit before them has no d.pend
		spareChunk := sh.sp.chunk != nil
		var vol, invol int64
		switches := false
		if countSwitches {
			vol, invol, switches = threadSwitches()
		}
		t0 := time.Now()
		if err := s.Set(k, v); err != nil {
			t.Fatal(err)
		}
		took := time.Since(t0)
		kind := ""
		if switches {
			vol1, invol1, _ := threadSwitches()
			// Outside the shard's doing: the kernel took the CPU from the
			// thread (involuntary), or the thread slept in it (voluntary:
			// a futex, a page fault that waited for I/O).
			if invol1 != invol {
				kind += "descheduled+"
			}
			if vol1 != vol {
				kind += "slept+"
			}
		}
		named := true // the shard did something the probe names
		switch {
		case sh.tab.Load() != d:
			kind += "directory doubled+"
		case sh.tab.Load().table(tagOf(h)) != tb:
			kind += "split+"
		default:
			named = false
		}
		if head != sh.a.head.no || chunks != len(sh.a.chunks) {
			kind += fmt.Sprintf("new chunk (spare %v)+", spareChunk)
			named = true
		}
		if !named && stepping {
			kind += "split step"
		}
		if kind == "" {
			kind = "none"
		}
		kinds[kind] = append(kinds[kind], took)
	}
	var all []time.Duration
	for _, v := range kinds {
		all = append(all, v...)
	}
	slices.Sort(all)
	p9999 := all[len(all)*9999/10000]
	fmt.Printf("%d Sets: p50 %v, p99 %v, p99.99 %v, max %v\n", len(all), all[len(all)/2], all[len(all)*99/100], p9999, all[len(all)-1])
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := kinds[k]
		slices.Sort(v)
		first, _ := slices.BinarySearch(v, p9999)
		above := len(v) - first
		fmt.Printf("  %-32s %8d Sets: p50 %9v  p99 %9v  max %9v  at or above the p99.99: %d\n", k, len(v), v[len(v)/2], v[len(v)*99/100], v[len(v)-1], above)
	}
}
