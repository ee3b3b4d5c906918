package workload

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/shardkv/shardkv/bench/stores"
)

// GetLatency is the outcome of RunGetLatency: the service time of every
// Get, timed around the call, while a writer overwrites keys.
type GetLatency struct {
	Readers  int
	Gets     int64 // every one of them timed
	Hits     int64
	Sets     int64 // the writer's
	Elapsed  time.Duration
	P50, P99 time.Duration
	P999     time.Duration
	P9999    time.Duration
	Max      time.Duration
}

// GetLatencyConfig configures RunGetLatency.
type GetLatencyConfig struct {
	Readers  int           // reader goroutines (at least 1)
	Duration time.Duration // how long the readers run
	// NoWriter leaves the writer out (for tests and for a read-only
	// baseline); by default one goroutine overwrites keys flat out.
	NoWriter bool
}

// RunGetLatency measures the service time of Get: cfg.Readers goroutines
// call the store's reader (stores.NewReader: Get, touching the value's
// first byte) on zipf keys as fast as they can for cfg.Duration, reading
// the monotonic clock before and after every call and recording the
// difference, so each figure is one call's time from its actual start:
// there is no schedule to fall behind and no queueing (that is what
// RunLatency's offered load measures). Meanwhile one writer goroutine
// overwrites uniformly random keys of the set flat out, each Set with a
// fresh 64-byte value, as an application would: the store's write path,
// its locks and the garbage the overwritten values become all act on the
// readers.
//
// Every figure includes the clock read (tens of ns) and whatever stops the
// reader goroutine: GC assists and stop-the-world pauses, the scheduler,
// the operating system; run it on the noop store for that floor.
func RunGetLatency(env *Env, cfg GetLatencyConfig) GetLatency {
	readers := max(cfg.Readers, 1)
	hists := make([]*hdrhistogram.Histogram, readers)
	gets := make([]int64, readers)
	hits := make([]int64, readers)
	var stop atomic.Bool
	var sets atomic.Int64
	var ready, done, wdone sync.WaitGroup
	start := make(chan struct{})
	var t0 time.Time
	end := cfg.Duration.Nanoseconds()
	for id := range readers {
		hists[id] = hdrhistogram.New(1, int64(time.Minute), 3)
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			read := stores.NewReader(env.Store)
			order := env.Zipf
			h := hists[id]
			i := startOffset(id)
			var n, hit int64
			ready.Done()
			<-start
			for {
				i++
				k := env.Keys[order[i&(OrderLen-1)]]
				a := time.Since(t0).Nanoseconds()
				ok := read(k)
				b := time.Since(t0).Nanoseconds()
				record(h, b-a)
				n++
				if ok {
					hit++
				}
				if b >= end {
					break
				}
			}
			gets[id], hits[id] = n, hit
		}()
	}
	if !cfg.NoWriter {
		ready.Add(1)
		wdone.Add(1)
		go func() {
			defer wdone.Done()
			order := env.Uniform
			i := startOffset(readers)
			var n int64
			ready.Done()
			<-start
			for !stop.Load() {
				i++
				v := make([]byte, ValueSize)
				copy(v, env.Value)
				env.Store.Set(env.Keys[order[i&(OrderLen-1)]], v)
				n++
			}
			sets.Store(n)
		}()
	}
	ready.Wait()
	t0 = time.Now()
	close(start)
	done.Wait()
	elapsed := time.Since(t0)
	stop.Store(true)
	wdone.Wait()
	all := hdrhistogram.New(1, int64(time.Minute), 3)
	l := GetLatency{Readers: readers, Sets: sets.Load(), Elapsed: elapsed}
	for i, h := range hists {
		all.Merge(h)
		l.Gets += gets[i]
		l.Hits += hits[i]
	}
	l.P50 = time.Duration(all.ValueAtQuantile(50))
	l.P99 = time.Duration(all.ValueAtQuantile(99))
	l.P999 = time.Duration(all.ValueAtQuantile(99.9))
	l.P9999 = time.Duration(all.ValueAtQuantile(99.99))
	l.Max = time.Duration(all.Max())
	return l
}
