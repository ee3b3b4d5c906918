package workload

import (
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// StallFloor is what the machine alone does to a tail percentile: on a
// shared VM a thread that only reads the clock still loses the CPU now and
// then (on the 2-core machines here, a 12 s spin saw 8,700 to 12,800
// gaps over 20 µs and up to 40 over 1 ms: docs/bench/raw/stallprobe.txt,
// from bench/stallprobe), and any
// operation being timed at that moment takes the gap in its time. Those
// stalls come at a rate per second, not per operation, so a p99.99 over a
// long run (a 10M-key fill that takes 12 s) holds many more of them than
// over a short one, and a fast no-op loop of the same operation count is
// no floor for it.
//
// MeasureStallFloor spins on one goroutine, reading the clock as the
// timing harness does, for as long as the operations were timed (at most
// a cap), and records every gap between two reads of a microsecond or
// more. P9999 is the gap that as many stalls exceed, scaled to the timed
// duration, as Sets exceed a p99.99 of ops operations: a run of ops
// operations timed for that long on this machine, doing nothing, would
// have about that p99.99. Max is the longest gap of the spin.
type StallFloor struct {
	SpinSeconds  float64 `json:"spin_seconds"`
	TimedSeconds float64 `json:"timed_seconds"` // how long the operations it is the floor of were timed, in all
	Ops          int64   `json:"ops"`
	Gaps         int64   `json:"gaps_over_1us"`
	Over20us     int64   `json:"gaps_over_20us"`
	Over50us     int64   `json:"gaps_over_50us"`
	Over1ms      int64   `json:"gaps_over_1ms"`
	// Rank is how many spin gaps the p99.99 equivalent is the smallest of:
	// ops/10000 scaled by SpinSeconds/TimedSeconds.
	Rank  float64 `json:"rank"`
	P9999 int64   `json:"p9999_ns"` // 0: fewer than Rank gaps of a microsecond
	Max   int64   `json:"max_ns"`
}

// MeasureStallFloor spins for min(timed, limit) and returns the floor of a
// p99.99 over ops operations timed for timed in all.
func MeasureStallFloor(timed time.Duration, ops int64, limit time.Duration) StallFloor {
	spin := min(timed, limit)
	h := hdrhistogram.New(1, int64(time.Minute), 3)
	t0 := time.Now()
	last := int64(0)
	end := spin.Nanoseconds()
	for last < end {
		now := time.Since(t0).Nanoseconds()
		if d := now - last; d >= 1000 {
			record(h, d)
		}
		last = now
	}
	f := StallFloor{SpinSeconds: time.Duration(last).Seconds(), TimedSeconds: timed.Seconds(), Ops: ops,
		Gaps: h.TotalCount(), Max: h.Max()}
	for _, b := range h.Distribution() {
		switch {
		case b.From >= 1_000_000:
			f.Over1ms += b.Count
			fallthrough
		case b.From >= 50_000:
			f.Over50us += b.Count
			fallthrough
		case b.From >= 20_000:
			f.Over20us += b.Count
		}
	}
	if timed > 0 {
		f.Rank = float64(ops) / 10000 * float64(last) / float64(timed.Nanoseconds())
	}
	f.P9999 = valueOfRank(h, f.Rank)
	return f
}

// valueOfRank is the k-th largest value of h, k = ceil(rank) (at least 1),
// at h's precision (the highest value equivalent to it, as
// ValueAtQuantile gives), or 0 if h holds fewer than k values.
func valueOfRank(h *hdrhistogram.Histogram, rank float64) int64 {
	k := max(int64(math.Ceil(rank)), 1)
	bars := h.Distribution()
	var seen int64
	for i := len(bars) - 1; i >= 0; i-- {
		if seen += bars[i].Count; seen >= k {
			return bars[i].To
		}
	}
	return 0
}
