package workload

import (
	"runtime"
	"time"

	"github.com/shardkv/shardkv/bench/stores"
)

// OpCost is what one operation costs on one goroutine.
type OpCost struct {
	Op     string
	Allocs float64 // heap allocations per operation (all goroutines; background work included)
	Ns     float64 // wall time per operation, one goroutine
	Runs   int
}

// Op is one operation measured by MeasureOps.
type Op struct {
	Name  string
	Needs stores.Caps
	Reads bool // runs on read-only variants
	// Prepare runs once, untimed, and returns the operation to repeat.
	Prepare func(env *Env) func(i int)
}

// Ops are the operations whose allocations the report lists.
func Ops() []Op {
	return []Op{
		{Name: "get", Reads: true, Prepare: func(env *Env) func(int) {
			read := stores.NewReader(env.Store)
			keys := env.Keys[HotKeys+1:] // not the counters
			return func(i int) { read(keys[i%len(keys)]) }
		}},
		{Name: "get-miss", Reads: true, Prepare: func(env *Env) func(int) {
			read := stores.NewReader(env.Store)
			return func(int) { read("absent:000000") }
		}},
		{Name: "set", Prepare: func(env *Env) func(int) {
			keys := env.Keys[HotKeys+1:]
			return func(i int) { env.Store.Set(keys[i%len(keys)], env.Value) }
		}},
		{Name: "set-ttl", Needs: stores.TTL, Prepare: func(env *Env) func(int) {
			keys := env.Keys[HotKeys+1:]
			return func(i int) { env.Store.SetWithTTL(keys[i%len(keys)], env.Value, time.Hour) }
		}},
		{Name: "increment", Needs: stores.Increment, Prepare: func(env *Env) func(int) {
			k := env.Keys[0]
			env.Store.Set(k, []byte("0"))
			return func(int) { env.Store.Increment(k, 1) }
		}},
		{Name: "cas", Needs: stores.CAS, Prepare: func(env *Env) func(int) {
			k := env.Keys[min(HotKeys, env.N-1)]
			a, b := []byte("a-value"), []byte("b-value")
			env.Store.Set(k, a)
			return func(i int) {
				if i%2 == 0 {
					env.Store.CompareAndSwap(k, a, b)
				} else {
					env.Store.CompareAndSwap(k, b, a)
				}
			}
		}},
		{Name: "list-1pct", Needs: stores.List, Prepare: func(env *Env) func(int) {
			p, _ := ListPrefix(env.N)
			return func(int) { env.Store.ListKeys(p) }
		}},
	}
}

// Applies reports whether op runs on spec.
func (op Op) Applies(spec stores.Spec) bool {
	return spec.Caps.Has(op.Needs) && (!spec.ReadOnlyVariant || op.Reads)
}

// MeasureOp repeats op on one goroutine for about budget (at least 3 and
// at most 5000 times) and returns its allocations and time per call.
func MeasureOp(env *Env, op Op, budget time.Duration) OpCost {
	f := op.Prepare(env)
	t := time.Now()
	f(0) // warm up, and time one call
	one := time.Since(t)
	runs := 3
	if one > 0 {
		runs = int(min(max(int64(budget/one), 3), 5000))
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t = time.Now()
	for i := 1; i <= runs; i++ {
		f(i)
	}
	el := time.Since(t)
	runtime.ReadMemStats(&m1)
	return OpCost{
		Op:     op.Name,
		Allocs: float64(m1.Mallocs-m0.Mallocs) / float64(runs),
		Ns:     float64(el.Nanoseconds()) / float64(runs),
		Runs:   runs,
	}
}
