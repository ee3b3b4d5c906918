package workload

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func parallelism() int { return runtime.GOMAXPROCS(0) }

// Result is one timed cell.
type Result struct {
	Goroutines int
	Ops        int64
	Elapsed    time.Duration
	Mallocs    uint64 // heap allocations during the cell, all goroutines
	Metrics    Metrics
}

// OpsPerSec is the cell's throughput.
func (r Result) OpsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// NsPerOp is wall time over operations, as b.RunParallel reports it.
func (r Result) NsPerOp() float64 {
	if r.Ops == 0 {
		return math.Inf(1)
	}
	return float64(r.Elapsed.Nanoseconds()) / float64(r.Ops)
}

// AllocsPerOp is heap allocations over operations.
func (r Result) AllocsPerOp() float64 {
	if r.Ops == 0 {
		return 0
	}
	return float64(r.Mallocs) / float64(r.Ops)
}

// RunFor runs c's workers on goroutines goroutines for d (the last
// operation of each goroutine may end later: slow operations are counted
// whole) and returns the counts.
func RunFor(c Cell, goroutines int, d time.Duration) Result {
	var stop atomic.Bool
	var ops atomic.Int64
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for id := range goroutines {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			w := c.NewWorker(id)
			ready.Done()
			<-start
			var n int64
			for { // at least one operation, however late this goroutine starts
				w.Step()
				n++
				if stop.Load() {
					break
				}
			}
			w.Done()
			ops.Add(n)
		}()
	}
	ready.Wait()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	close(start)
	time.Sleep(d)
	stop.Store(true)
	done.Wait()
	elapsed := time.Since(t0)
	runtime.ReadMemStats(&m1)
	return Result{
		Goroutines: goroutines,
		Ops:        ops.Load(),
		Elapsed:    elapsed,
		Mallocs:    m1.Mallocs - m0.Mallocs,
		Metrics:    c.Finish(),
	}
}

// record adds a latency, clamped to the histogram's range.
func record(h *hdrhistogram.Histogram, ns int64) {
	if h.RecordValue(max(ns, 1)) != nil {
		_ = h.RecordValue(h.HighestTrackableValue())
	}
}

// Latency is the outcome of a fixed-load run.
type Latency struct {
	Offered  float64 // ops/s asked for
	Achieved float64 // ops/s done
	Ops      int64
	Samples  int64
	// P50 ... Max are measured from each operation's scheduled start:
	// service time plus any wait behind earlier operations, the load
	// generator's own stalls included (on a busy machine, the scheduler's).
	P50  time.Duration
	P99  time.Duration
	P999 time.Duration
	Max  time.Duration
	// Service* are measured from the operation's actual start: the store's
	// own time, without queueing.
	ServiceP50, ServiceP99, ServiceP999, ServiceMax time.Duration
	// Saturated: the store could not keep up with the offered load, so
	// the percentiles are mostly queueing delay.
	Saturated bool
	Metrics   Metrics
}

// LatencyConfig configures RunLatency.
type LatencyConfig struct {
	Goroutines int
	Rate       float64       // offered ops/s over all goroutines
	Duration   time.Duration // run this long, or
	Ops        int64         // run this many operations (if > 0)
	// SampleEvery: the latency of one operation in SampleEvery is
	// recorded, so that reading the clock costs little.
	SampleEvery int
}

// RunLatency offers c a fixed load: operation j of goroutine g is scheduled
// at start + (j*G + g)/Rate, and its latency is measured from that
// scheduled time, not from when it actually started, so that a store that
// falls behind is charged for the queueing it causes (no coordinated
// omission). One operation in SampleEvery is timed. Waits of more than
// 1 ms sleep; shorter ones spin, yielding the processor.
func RunLatency(c Cell, cfg LatencyConfig) Latency {
	g := max(cfg.Goroutines, 1)
	every := int64(max(cfg.SampleEvery, 1))
	interval := float64(g) / cfg.Rate * 1e9 // ns between one goroutine's operations
	perWorker := int64(-1)
	if cfg.Ops > 0 {
		perWorker = max(cfg.Ops/int64(g), 1)
	}
	hists := make([]*hdrhistogram.Histogram, g)
	service := make([]*hdrhistogram.Histogram, g)
	counts := make([]int64, g)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	var t0 time.Time
	var end int64 = math.MaxInt64
	if cfg.Ops <= 0 {
		end = cfg.Duration.Nanoseconds()
	}
	for id := range g {
		hists[id] = hdrhistogram.New(1, int64(time.Minute), 3)
		service[id] = hdrhistogram.New(1, int64(time.Minute), 3)
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			w := c.NewWorker(id)
			h, sh := hists[id], service[id]
			offset := float64(id) * interval / float64(g)
			ready.Done()
			<-start
			var j int64
		run:
			for perWorker < 0 || j < perWorker {
				now := time.Since(t0).Nanoseconds()
				if now >= end {
					break
				}
				due := int64(offset + float64(j)*interval)
				if due > now {
					if due-now > int64(time.Millisecond) {
						time.Sleep(time.Duration(due - now - int64(500*time.Microsecond)))
					} else {
						runtime.Gosched()
					}
					continue
				}
				// Run every operation already due.
				for due <= now && (perWorker < 0 || j < perWorker) {
					if j%every != 0 {
						w.Step()
						j++
					} else {
						started := time.Since(t0).Nanoseconds()
						w.Step()
						j++
						t := time.Since(t0).Nanoseconds()
						record(h, t-due)
						record(sh, t-started)
						if t >= end {
							break run // a store far behind stops at the end too
						}
					}
					due = int64(offset + float64(j)*interval)
				}
			}
			w.Done()
			counts[id] = j
		}()
	}
	ready.Wait()
	t0 = time.Now()
	close(start)
	done.Wait()
	elapsed := time.Since(t0)
	all := hdrhistogram.New(1, int64(time.Minute), 3)
	svc := hdrhistogram.New(1, int64(time.Minute), 3)
	var ops int64
	for i, h := range hists {
		all.Merge(h)
		svc.Merge(service[i])
		ops += counts[i]
	}
	l := Latency{
		Offered:  cfg.Rate,
		Achieved: float64(ops) / elapsed.Seconds(),
		Ops:      ops,
		Samples:  all.TotalCount(),
		P50:      time.Duration(all.ValueAtQuantile(50)),
		P99:      time.Duration(all.ValueAtQuantile(99)),
		P999:     time.Duration(all.ValueAtQuantile(99.9)),
		Max:      time.Duration(all.Max()),

		ServiceP50:  time.Duration(svc.ValueAtQuantile(50)),
		ServiceP99:  time.Duration(svc.ValueAtQuantile(99)),
		ServiceP999: time.Duration(svc.ValueAtQuantile(99.9)),
		ServiceMax:  time.Duration(svc.Max()),
		Metrics:     c.Finish(),
	}
	l.Saturated = l.Achieved < 0.95*l.Offered
	return l
}
