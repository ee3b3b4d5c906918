package workload

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardkv/shardkv/bench/stores"
)

// Memory is what holding the prefilled entries costs a store.
type Memory struct {
	Entries int // keys written
	Held    int // entries the store reports holding afterwards (ristretto may hold fewer)
	// HeapBytesPerEntry is the live heap the store added (after
	// runtime.GC), its own structures, keys and values included, per key
	// written.
	HeapBytesPerEntry float64
	// ScanBytesPerEntry is the GC-scannable heap it added, per key written
	// (runtime/metrics /gc/scan/heap:bytes): what every GC cycle must mark.
	ScanBytesPerEntry float64
	// GCWall is the median wall time of a forced runtime.GC with the store
	// live, and GCBaseWall the same before the store was built.
	GCWall, GCBaseWall time.Duration
	// GCCPU is the GC CPU (runtime/metrics /cpu/classes/gc/total:cpu-seconds)
	// of one forced cycle with the store live; GCBaseCPU before it was built.
	GCCPU, GCBaseCPU time.Duration
	Prefill          time.Duration
	Dropped          int64 // prefill writes the store did not take
}

var memSamples = []metrics.Sample{
	{Name: "/gc/scan/heap:bytes"},
	{Name: "/cpu/classes/gc/total:cpu-seconds"},
}

func readMem() (heap, scan uint64, gcCPU float64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	metrics.Read(memSamples)
	if memSamples[0].Value.Kind() == metrics.KindUint64 {
		scan = memSamples[0].Value.Uint64()
	}
	if memSamples[1].Value.Kind() == metrics.KindFloat64 {
		gcCPU = memSamples[1].Value.Float64()
	}
	return ms.HeapAlloc, scan, gcCPU
}

// gcCost forces GC cycles and returns the median wall time and GC CPU of one.
func gcCost(rounds int) (wall, cpu time.Duration) {
	walls := make([]time.Duration, rounds)
	cpus := make([]time.Duration, rounds)
	for i := range rounds {
		_, _, c0 := readMem()
		t := time.Now()
		runtime.GC()
		walls[i] = time.Since(t)
		_, _, c1 := readMem()
		cpus[i] = time.Duration((c1 - c0) * 1e9)
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	return walls[rounds/2], cpus[rounds/2]
}

// Build builds spec's instance for ks and fills it with ks.N entries,
// measuring what they cost in memory. Each entry gets its own key string
// and its own 64-byte value, as in an application, so stores that keep
// the caller's key and value are charged for them and stores that copy
// them are charged for their copies. The prefill runs on GOMAXPROCS
// goroutines.
func Build(spec stores.Spec, ks *Keyspace, gcRounds int) (stores.Store, Memory, error) {
	var mem Memory
	runtime.GC()
	mem.GCBaseWall, mem.GCBaseCPU = gcCost(gcRounds)
	runtime.GC()
	heap0, scan0, _ := readMem()

	t := time.Now()
	s, err := spec.New(stores.Config{Keys: ks.N, ValueSize: ValueSize})
	if err != nil {
		return nil, mem, fmt.Errorf("%s: %w", spec.Name, err)
	}
	var dropped atomic.Int64
	var wg sync.WaitGroup
	g := parallelism()
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < ks.N; i += g {
				v := make([]byte, ValueSize)
				copy(v, ks.Value)
				if !s.Set(Key(i, ks.Width), v) {
					dropped.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if w, ok := s.(interface{ Wait() }); ok {
		// A store that drops writes under load (ristretto's Set gives up
		// when its buffer is full): write again what it dropped, as a
		// loader would on the next miss, so that it holds the workload.
		w.Wait()
		for pass := 0; pass < 5 && dropped.Load() > 0; pass++ {
			missing := 0
			for i, k := range ks.Keys {
				if _, ok := s.Get(k); !ok {
					missing++
					v := make([]byte, ValueSize)
					copy(v, ks.Value)
					s.Set(Key(i, ks.Width), v)
				}
			}
			w.Wait()
			if missing == 0 {
				break
			}
		}
	}
	mem.Prefill = time.Since(t)
	mem.Entries = ks.N
	mem.Dropped = dropped.Load()
	if mem.Dropped > 0 && spec.Name != "ristretto" {
		s.Close()
		return nil, mem, fmt.Errorf("%s: prefill refused %d writes", spec.Name, mem.Dropped)
	}

	runtime.GC()
	runtime.GC()
	heap1, scan1, _ := readMem()
	mem.HeapBytesPerEntry = (float64(heap1) - float64(heap0)) / float64(ks.N)
	mem.ScanBytesPerEntry = (float64(scan1) - float64(scan0)) / float64(ks.N)
	mem.GCWall, mem.GCCPU = gcCost(gcRounds)
	mem.Held = s.Len()
	runtime.KeepAlive(s)
	return s, mem, nil
}
