// Command cgprobe is the workload behind the cachegrind counts of the
// write and read paths (docs/evidence/cachegrind): it fills a store with
// 2^20 keys ("key:N", 64-byte values; a third argument sets another
// count), then makes ops Sets or Gets of random keys, or (none) only picks
// the keys, one goroutine. Run under
// valgrind --tool=cachegrind, a mode's count less none's, divided by ops, is
// what one operation costs: instructions and simulated cache misses,
// deterministic, where timings on a shared 2-core machine are not.
//
//	go build -o /tmp/cgprobe ./docs/bench/cgprobe
//	GOMAXPROCS=1 GOGC=off valgrind --tool=cachegrind --cache-sim=yes /tmp/cgprobe set 500000
//
// docs/evidence/cachegrind/run.sh runs it for two commits.
package main

import (
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/shardkv/shardkv"
)

func main() {
	n := 1 << 20
	if len(os.Args) > 3 {
		n, _ = strconv.Atoi(os.Args[3])
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
	}
	s := shardkv.New(shardkv.WithMaxKeys(n))
	val := make([]byte, 64)
	for _, k := range keys {
		s.Set(k, val)
	}
	ops, _ := strconv.Atoi(os.Args[2])
	r := rand.New(rand.NewPCG(1, 2))
	switch os.Args[1] {
	case "set":
		for i := 0; i < ops; i++ {
			s.Set(keys[r.IntN(n)], val)
		}
	case "get":
		for i := 0; i < ops; i++ {
			s.Get(keys[r.IntN(n)])
		}
	case "none":
		for i := 0; i < ops; i++ {
			_ = keys[r.IntN(n)]
		}
	}
}
