package workload

import (
	"fmt"
	"runtime"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/shardkv/shardkv/bench/stores"
)

// ScaleKeyWidth is the digits of the scale section's keys: "user:" and 7
// digits, 12 bytes, at every key count up to 10M, so that the per-entry
// figures of different sizes compare.
const ScaleKeyWidth = 7

// ScaleConfig configures MeasureScale.
type ScaleConfig struct {
	Keys       int
	KeyWidth   int           // digits of a key; 0: ScaleKeyWidth
	GCRounds   int           // forced GC cycles timed with and without the store (each at least 1)
	Cell       time.Duration // how long read90 and write100 each run
	Goroutines int           // goroutines of read90 and write100
}

// fillStallLimit is the longest MeasureScale spins for the fill's stall
// floor; past it the floor is scaled to the fill's length.
const fillStallLimit = 15 * time.Second

// ScaleResult is what MeasureScale measured, raw: the arithmetic (medians,
// differences, per-entry figures) is the caller's, so that what is derived
// from what stays visible. It is the JSON line a kvbench scale child
// prints.
type ScaleResult struct {
	Store     string `json:"store"`
	Keys      int    `json:"keys"`
	KeyBytes  int    `json:"key_bytes"`
	Held      int    `json:"held"`    // entries the store reports holding after the fill
	Dropped   int64  `json:"dropped"` // fill Sets the store did not take (ristretto; written again untimed)
	GoVersion string `json:"go_version"`
	Procs     int    `json:"gomaxprocs"`
	// HeapBefore is runtime.MemStats.HeapAlloc after runtime.GC with
	// nothing of the store built yet (no key slice exists: the fill makes
	// each key from its index); HeapAfter the same after the fill and two
	// runtime.GC, the store live. ScanBefore/ScanAfter: /gc/scan/heap:bytes
	// at the same two points.
	HeapBefore uint64 `json:"heap_before"`
	HeapAfter  uint64 `json:"heap_after"`
	ScanBefore uint64 `json:"scan_before"`
	ScanAfter  uint64 `json:"scan_after"`
	// GCCPUEmpty and GCCPUStore are the process CPU time (getrusage
	// RUSAGE_SELF, user + system, every thread) of each forced
	// runtime.GC: before the store was built, and with it live after the
	// fill. GCWallEmpty and GCWallStore are their wall times. ns.
	GCCPUEmpty  []int64 `json:"gc_cpu_empty_ns"`
	GCCPUStore  []int64 `json:"gc_cpu_store_ns"`
	GCWallEmpty []int64 `json:"gc_wall_empty_ns"`
	GCWallStore []int64 `json:"gc_wall_store_ns"`
	// Fill: one goroutine Sets every key once, key i = Key(i, width), a
	// fresh string and a fresh 64-byte value for each; the clock is read
	// right before and right after each Set call, and the difference
	// recorded (ns). Building the key and value is outside the timing.
	FillSeconds float64 `json:"fill_seconds"`
	FillSets    int64   `json:"fill_sets"`
	FillP50     int64   `json:"fill_p50_ns"`
	FillP99     int64   `json:"fill_p99_ns"`
	FillP999    int64   `json:"fill_p999_ns"`
	FillP9999   int64   `json:"fill_p9999_ns"`
	FillMax     int64   `json:"fill_max_ns"`
	// FillTimedNs is the sum of the fill's Set times: how long the clock
	// was timing a Set. FillFloor is the machine's own floor under the
	// fill's p99.99 and max (MeasureStallFloor for that long, at most
	// fillStallLimit), measured after the fill with nothing running.
	FillTimedNs int64      `json:"fill_timed_ns"`
	FillFloor   StallFloor `json:"fill_floor"`
	// Read90 and Write100: the workloads of the main matrix on the filled
	// store, Goroutines goroutines for Cell each (after the memory and GC
	// figures, with the lookup keys then built).
	Read90   CellResult `json:"read90"`
	Write100 CellResult `json:"write100"`
	// GetUnderWriter: RunGetLatency for Cell, one reader timing every Get
	// while one writer overwrites random keys flat out (last).
	GetUnderWriter GetLatency `json:"get_under_writer"`
	// GetFloor is the machine's floor under its p99.99 and max: a spin as
	// long as the reader ran, right after it, the writer stopped.
	GetFloor StallFloor `json:"get_floor"`
	// PeakRSS is the process's peak resident set in bytes, set by the
	// caller (kvbench's child reads /proc/self/status); 0: unknown.
	PeakRSS uint64 `json:"peak_rss_bytes,omitempty"`
	Error   string `json:"error,omitempty"`
}

// CellResult is a timed cell, for JSON.
type CellResult struct {
	Ops         int64   `json:"ops"`
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	HitRatio    float64 `json:"hit_ratio"`
}

func cellResult(r Result) CellResult {
	return CellResult{Ops: r.Ops, NsPerOp: r.NsPerOp(), AllocsPerOp: r.AllocsPerOp(), HitRatio: r.Metrics.HitRatio()}
}

// gcRounds forces rounds GC cycles and returns the process CPU and wall
// time of each.
func gcRounds(rounds int) (cpu, wall []int64) {
	for range max(rounds, 1) {
		c0 := processCPU()
		t := time.Now()
		runtime.GC()
		wall = append(wall, time.Since(t).Nanoseconds())
		cpu = append(cpu, (processCPU() - c0).Nanoseconds())
	}
	return cpu, wall
}

// MeasureScale builds spec's store for cfg.Keys keys in a fresh state and
// measures, in this order:
//
//  1. GC: 3*cfg.GCRounds forced cycles with nothing of the store built;
//  2. the heap baseline (after runtime.GC);
//  3. the fill: one goroutine Sets every key once, timing each Set;
//  4. the heap after two runtime.GC, the store live, then the fill's
//     stall floor (MeasureStallFloor);
//  5. GC: cfg.GCRounds forced cycles with the store live;
//  6. read90 and write100, cfg.Goroutines goroutines for cfg.Cell each;
//  7. Get's service time under a writer (RunGetLatency, one reader, for
//     cfg.Cell), and its stall floor.
//
// It is meant to run alone in its process (kvbench runs each in a child
// process), so that no other store's heap, and no garbage left by one, is
// in its figures. The process CPU figures need getrusage (unix).
func MeasureScale(spec stores.Spec, cfg ScaleConfig) (ScaleResult, error) {
	width := cfg.KeyWidth
	if width <= 0 {
		width = ScaleKeyWidth
	}
	width = max(width, KeyWidth(cfg.Keys))
	res := ScaleResult{Store: spec.Name, Keys: cfg.Keys, KeyBytes: len(Key(0, width)),
		GoVersion: runtime.Version(), Procs: runtime.GOMAXPROCS(0)}
	if spec.New == nil {
		return res, fmt.Errorf("%s: a variant, not a store", spec.Name)
	}
	// Everything the measurement itself keeps is allocated before the
	// baselines: the histogram and the value template.
	hist := hdrhistogram.New(1, int64(time.Minute), 3)
	value := make([]byte, ValueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}

	runtime.GC()
	// The baseline is cheap (nothing is live), and noisy on a shared
	// machine (0.5-6 ms a cycle here for the same empty heap): three times
	// the rounds, of which the report takes the least.
	res.GCCPUEmpty, res.GCWallEmpty = gcRounds(3 * cfg.GCRounds)
	runtime.GC()
	res.HeapBefore, res.ScanBefore, _ = readMem()

	s, err := spec.New(stores.Config{Keys: cfg.Keys, ValueSize: ValueSize})
	if err != nil {
		return res, err
	}
	defer s.Close()
	t0 := time.Now()
	for i := range cfg.Keys {
		k := Key(i, width)
		v := make([]byte, ValueSize)
		copy(v, value)
		a := time.Since(t0).Nanoseconds()
		ok := s.Set(k, v)
		b := time.Since(t0).Nanoseconds()
		record(hist, b-a)
		res.FillTimedNs += b - a
		if !ok {
			res.Dropped++
		}
	}
	res.FillSeconds = time.Since(t0).Seconds()
	res.FillSets = hist.TotalCount()
	res.FillP50 = hist.ValueAtQuantile(50)
	res.FillP99 = hist.ValueAtQuantile(99)
	res.FillP999 = hist.ValueAtQuantile(99.9)
	res.FillP9999 = hist.ValueAtQuantile(99.99)
	res.FillMax = hist.Max()
	if res.Dropped > 0 {
		w, ok := s.(stores.Waiter)
		if !ok {
			return res, fmt.Errorf("%s: the fill's Set refused %d writes", spec.Name, res.Dropped)
		}
		// A store that drops writes under load (ristretto): write again,
		// untimed, what it does not hold, as a loader would on a miss.
		w.Wait()
		for pass := 0; pass < 5; pass++ {
			missing := 0
			for i := range cfg.Keys {
				if _, ok := s.Get(Key(i, width)); !ok {
					missing++
					v := make([]byte, ValueSize)
					copy(v, value)
					s.Set(Key(i, width), v)
				}
			}
			w.Wait()
			if missing == 0 {
				break
			}
		}
	} else if w, ok := s.(stores.Waiter); ok {
		w.Wait()
	}
	res.Held = s.Len()

	runtime.GC()
	runtime.GC()
	res.HeapAfter, res.ScanAfter, _ = readMem()
	// No GC cycle is running now (runtime.GC returns when one has ended)
	// and the spin allocates nothing, so what it sees is the machine's.
	res.FillFloor = MeasureStallFloor(time.Duration(res.FillTimedNs), res.FillSets, fillStallLimit)
	res.GCCPUStore, res.GCWallStore = gcRounds(cfg.GCRounds)

	ks := NewKeyspaceWidth(cfg.Keys, width)
	env := &Env{Keyspace: ks, Store: s}
	g := max(cfg.Goroutines, 1)
	for _, c := range []struct {
		w   Workload
		out *CellResult
	}{{Read90(), &res.Read90}, {Mix("write100", 100, Zipf), &res.Write100}} {
		cell, err := c.w.Start(env)
		if err != nil {
			return res, err
		}
		*c.out = cellResult(RunFor(cell, g, cfg.Cell))
	}
	res.GetUnderWriter = RunGetLatency(env, GetLatencyConfig{Readers: 1, Duration: cfg.Cell})
	res.GetFloor = MeasureStallFloor(res.GetUnderWriter.Elapsed, res.GetUnderWriter.Gets, cfg.Cell)
	runtime.KeepAlive(s)
	runtime.KeepAlive(hist)
	return res, nil
}
