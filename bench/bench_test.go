package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shardkv/shardkv/bench/stores"
	"github.com/shardkv/shardkv/bench/workload"
)

// benchSizes is the key counts of the matrix: 10k and 1M; 10k alone with
// -short; 10M too with SHARDKV_BENCH_10M=1; or SHARDKV_BENCH_SIZES.
func benchSizes(b *testing.B) []int {
	if env := os.Getenv("SHARDKV_BENCH_SIZES"); env != "" {
		var sizes []int
		for _, f := range strings.Split(env, ",") {
			n, err := workload.ParseSize(f)
			if err != nil {
				b.Fatalf("SHARDKV_BENCH_SIZES: %v", err)
			}
			sizes = append(sizes, n)
		}
		return sizes
	}
	if testing.Short() {
		return []int{10_000}
	}
	sizes := []int{10_000, 1_000_000}
	if os.Getenv("SHARDKV_BENCH_10M") == "1" {
		sizes = append(sizes, 10_000_000)
	}
	return sizes
}

func benchSpecs(b *testing.B) []stores.Spec {
	var names []string
	if env := os.Getenv("SHARDKV_BENCH_STORES"); env != "" {
		names = strings.Split(env, ",")
	}
	specs, err := stores.Lookup(names)
	if err != nil {
		b.Fatal(err)
	}
	return specs
}

func benchRate() float64 {
	if r, err := strconv.ParseFloat(os.Getenv("SHARDKV_BENCH_RATE"), 64); err == nil && r > 0 {
		return r
	}
	return 200_000
}

// BenchmarkKV is the whole comparison, named
// keys=<size>/store=<store>/workload=<workload> (or .../op=<operation>), so
// that benchstat can put the stores side by side (-col /store):
//
//   - the workloads of workload.Standard, zipfian and uniform, each with
//     b.RunParallel on a prefilled store, reporting hit-ratio,
//     dropped-writes and the like with b.ReportMetric;
//   - latency-read90: read90 at a fixed offered load (SHARDKV_BENCH_RATE,
//     default 200k ops/s), b.N operations, reporting p50/p99/p99.9/max in ns
//     (measured from each operation's scheduled start; one in 8 sampled);
//   - memory: heap and GC-scannable bytes per entry of the prefilled store,
//     and, as ns/op, one forced GC cycle with the store live;
//   - op=<name>: one operation on one goroutine (b.Loop), for its
//     allocations (after every row of the store's group has read);
//   - ttl-churn and get-half-expired, which leave keys expired, last:
//     after every row of the store's group.
//
// Each store is built and prefilled once per size (a group's variants share
// it), so a -benchtime=1x run of everything stays short.
func BenchmarkKV(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run("keys="+workload.SizeLabel(n), func(b *testing.B) {
			benchSize(b, workload.NewKeyspace(n))
		})
	}
}

func benchSize(b *testing.B, ks *workload.Keyspace) {
	specs := benchSpecs(b)
	var groups []string
	for _, s := range specs {
		if len(groups) == 0 || groups[len(groups)-1] != s.Group {
			groups = append(groups, s.Group)
		}
	}
	ws := workload.Standard(workload.Zipf, workload.Uniform)
	for _, g := range groups {
		base, ok := stores.Base(g)
		if !ok {
			b.Fatalf("no base store for group %s", g)
		}
		// The group's instance is built when the first of its benchmarks
		// that -bench selects runs, and closed after the group.
		var inst stores.Store
		var mem workload.Memory
		instance := func(b *testing.B) stores.Store {
			if inst == nil {
				var err error
				// One timed GC here: the memory benchmark times GC cycles itself.
				inst, mem, err = workload.Build(base, ks, 1)
				if err != nil {
					b.Fatal(err)
				}
			}
			return inst
		}
		var members []stores.Spec
		for _, s := range specs {
			if s.Group == g {
				members = append(members, s)
			}
		}
		for _, spec := range members {
			b.Run("store="+spec.Name, func(b *testing.B) {
				env := &workload.Env{Keyspace: ks, Store: row(spec, instance(b))}
				if !spec.IsVariant() {
					b.Run("workload=memory", func(b *testing.B) { benchMemory(b, mem) })
				}
				for _, w := range ws {
					if w.Destructive || !w.Applies(spec) {
						continue
					}
					b.Run("workload="+w.Name, func(b *testing.B) { benchCell(b, env, w) })
				}
				b.Run("workload=latency-read90", func(b *testing.B) { benchLatency(b, env) })
			})
		}
		// The single operations write (some with a TTL): after every row's
		// reads, then the destructive workloads.
		for _, spec := range members {
			for _, op := range workload.Ops() {
				if op.Applies(spec) {
					b.Run("store="+spec.Name+"/op="+op.Name, func(b *testing.B) {
						benchOp(b, &workload.Env{Keyspace: ks, Store: row(spec, instance(b))}, op)
					})
				}
			}
		}
		for _, w := range ws {
			if !w.Destructive {
				continue
			}
			for _, spec := range members {
				if !w.Applies(spec) {
					continue
				}
				b.Run("store="+spec.Name+"/workload="+w.Name, func(b *testing.B) {
					env := &workload.Env{Keyspace: ks, Store: row(spec, instance(b))}
					benchCell(b, env, w)
				})
			}
		}
		if inst != nil {
			inst.Close()
			inst = nil
			runtime.GC()
		}
	}
}

// row is spec's view of its group's instance.
func row(spec stores.Spec, inst stores.Store) stores.Store {
	if spec.IsVariant() {
		return spec.Wrap(inst)
	}
	return inst
}

// benchCell runs one workload with b.RunParallel.
func benchCell(b *testing.B, env *workload.Env, w workload.Workload) {
	cell, err := w.Start(env)
	if err != nil {
		b.Fatal(err)
	}
	var ids atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		wk := cell.NewWorker(int(ids.Add(1) - 1))
		for pb.Next() {
			wk.Step()
		}
		wk.Done()
	})
	b.StopTimer()
	reportMetrics(b, cell.Finish())
}

func reportMetrics(b *testing.B, m workload.Metrics) {
	if r := m.HitRatio(); r >= 0 && m.Listed == 0 {
		b.ReportMetric(r, "hit-ratio")
	}
	if r := m.DropRatio(); r >= 0 && m.Dropped > 0 {
		b.ReportMetric(r, "dropped-writes/write")
	}
	if m.Fails > 0 {
		b.ReportMetric(float64(m.Fails)/float64(b.N), "cas-fails/op")
	}
	if m.Errors > 0 {
		b.ReportMetric(float64(m.Errors)/float64(b.N), "errors/op")
	}
	if m.Subscribers > 0 {
		// Per event delivered, not per Set: a store that drops events for
		// lagging subscribers delivers fewer and scores worse, not better.
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(m.Events, 1)), "ns/delivered")
		b.ReportMetric(m.DeliveredRatio(), "delivered/op")
		b.ReportMetric(float64(m.Missed)/float64(b.N), "missed-events/op")
	}
}

// benchLatency offers read90 a fixed load for b.N operations.
func benchLatency(b *testing.B, env *workload.Env) {
	cell, err := workload.Read90().Start(env)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	l := workload.RunLatency(cell, workload.LatencyConfig{
		Goroutines:  runtime.GOMAXPROCS(0),
		Rate:        benchRate(),
		Ops:         int64(b.N),
		SampleEvery: 8,
	})
	b.StopTimer()
	b.ReportMetric(float64(l.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l.P99.Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(l.P999.Nanoseconds()), "p99.9-ns")
	b.ReportMetric(float64(l.Max.Nanoseconds()), "max-ns")
	b.ReportMetric(float64(l.ServiceP99.Nanoseconds()), "service-p99-ns")
	b.ReportMetric(l.Achieved, "achieved-ops/s")
}

// benchMemory reports the prefill's memory figures; its ns/op is one
// forced GC cycle with the store live.
func benchMemory(b *testing.B, mem workload.Memory) {
	for b.Loop() {
		runtime.GC()
	}
	b.ReportMetric(mem.HeapBytesPerEntry, "heap-B/entry")
	b.ReportMetric(mem.ScanBytesPerEntry, "gc-scan-B/entry")
	b.ReportMetric(float64(mem.Held)/float64(mem.Entries), "held/written")
	b.ReportMetric(float64(mem.GCCPU.Nanoseconds()), "gc-cpu-ns/cycle")
	b.ReportMetric(float64(mem.GCBaseCPU.Nanoseconds()), "gc-cpu-empty-ns/cycle")
}

// benchOp runs one operation on one goroutine.
func benchOp(b *testing.B, env *workload.Env, op workload.Op) {
	f := op.Prepare(env)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f(i)
		i++
	}
}
