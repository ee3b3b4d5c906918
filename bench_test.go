package shardkv

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var benchValue = make([]byte, 64)

// fill stores n 64-byte values under benchKeys(n), with ttl when ttl != 0.
func fill(b testing.TB, s *Store, keys []string, ttl time.Duration) {
	for _, k := range keys {
		var err error
		if ttl != 0 {
			err = s.SetWithTTL(k, benchValue, ttl)
		} else {
			err = s.Set(k, benchValue)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// lookupKeys returns copies of keys: a lookup with the very string a key
// was stored with can be answered by comparing pointers, which no real
// caller (one that parses keys off the wire, say) ever gets.
func lookupKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.Clone(k)
	}
	return out
}

// parallel runs op over zipf-chosen keys in b.RunParallel, each goroutine
// starting at its own place in the shared order.
func parallel(b *testing.B, keys []string, order []int, op func(key string, i int)) {
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919)) * 104729
		for pb.Next() {
			i++
			op(keys[order[i&(len(order)-1)]], i)
		}
	})
}

// BenchmarkGet1M is the no-sweep check: Get on a store of 1M keys
// of which half have passed their deadline (and are still held: the reaper
// is off, so every read meets them) against Get on 1M fresh keys, with and
// without TTLs. Keys are read uniformly so expired and live keys are hit
// alike.
func BenchmarkGet1M(b *testing.B) {
	const n = 1 << 20
	keys := benchKeys(n)
	order := make([]int, 1<<20)
	for i := range order {
		order[i] = int(uint64(i) * 0x9E3779B97F4A7C15 >> 44) // scattered, uniform
	}
	cases := []struct {
		name string
		fill func(*Store)
	}{
		{"fresh", func(s *Store) { fill(b, s, keys, 0) }},
		{"fresh-ttl", func(s *Store) { fill(b, s, keys, time.Hour) }},
		{"half-expired", func(s *Store) {
			fill(b, s, keys[:n/2], time.Hour)
			fill(b, s, keys[n/2:], time.Nanosecond)
		}},
	}
	for _, c := range cases {
		s := New(WithMaxKeys(n), func(o *options) { o.noReaper = true })
		c.fill(s)
		time.Sleep(time.Millisecond)
		keys := lookupKeys(keys)
		b.Run(c.name, func(b *testing.B) {
			parallel(b, keys, order, func(k string, _ int) {
				if _, _, err := s.Get(k); err != nil {
					b.Fatal(err)
				}
			})
		})
		if s.Len() != n {
			b.Fatalf("the store reclaimed entries: Len %d", s.Len())
		}
		s.Close()
	}
}

// BenchmarkRead is the read path on 1M zipf-chosen keys: Get (a copy),
// AppendValue into a reused buffer, and View (no copy).
func BenchmarkRead(b *testing.B) {
	const n = 1 << 20
	keys := benchKeys(n)
	order := zipfOrder(n, 1<<16)
	s := New(WithMaxKeys(n))
	defer s.Close()
	fill(b, s, keys, 0)
	keys = lookupKeys(keys)
	b.Run("Get", func(b *testing.B) {
		parallel(b, keys, order, func(k string, _ int) { s.Get(k) })
	})
	b.Run("AppendValue", func(b *testing.B) {
		var seed atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919)) * 104729
			buf := make([]byte, 0, 128)
			for pb.Next() {
				i++
				buf, _, _ = s.AppendValue(buf[:0], keys[order[i&(len(order)-1)]])
			}
		})
	})
	b.Run("View", func(b *testing.B) {
		var sink atomic.Int64
		parallel(b, keys, order, func(k string, _ int) {
			s.View(k, func(v []byte) {
				if len(v) == 0 {
					sink.Add(1)
				}
			})
		})
	})
}

// BenchmarkWorkloads are the mixes users run, on 1M zipf-chosen keys with
// 64-byte values.
func BenchmarkWorkloads(b *testing.B) {
	const n = 1 << 20
	keys := benchKeys(n)
	order := zipfOrder(n, 1<<16)
	s := New(WithMaxKeys(2 * n))
	defer s.Close()
	fill(b, s, keys, 0)
	keys = lookupKeys(keys)
	for _, w := range []struct {
		name   string
		writes int // per 100 operations
	}{{"read100", 0}, {"read90", 10}, {"read50", 50}, {"write100", 100}} {
		b.Run(w.name, func(b *testing.B) {
			read, copied := cleaning(s)
			parallel(b, keys, order, func(k string, i int) {
				if i%100 < w.writes {
					s.Set(k, benchValue)
				} else {
					s.Get(k)
				}
			})
			reportCleaning(b, s, read, copied, b.N)
		})
	}
	b.Run("ttl-churn", func(b *testing.B) {
		// Every write carries a TTL of 1-100 ms over 100k keys: the wheel
		// schedules, reschedules and reclaims continuously.
		churn := keys[:100_000]
		read, copied := cleaning(s)
		parallel(b, churn, zipfOrder(len(churn), 1<<16), func(k string, i int) {
			s.SetWithTTL(k, benchValue, time.Duration(1+i%100)*time.Millisecond)
		})
		reportCleaning(b, s, read, copied, b.N)
	})
}

// BenchmarkIncrementHot is 16 hot counters incremented from every goroutine.
func BenchmarkIncrementHot(b *testing.B) {
	s := New()
	defer s.Close()
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = "counter:" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := s.Increment(keys[i&15], 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCASCounter is a read-then-CompareAndSwap counter on one key
// contended by every goroutine; it reports the share of failed swaps.
func BenchmarkCASCounter(b *testing.B) {
	s := New()
	defer s.Close()
	s.Set("counter", []byte("0"))
	var fails atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var buf [24]byte
		for pb.Next() {
			for {
				cur, _, _ := s.AppendValue(buf[:0], "counter")
				n, _ := strconv.ParseInt(string(cur), 10, 64)
				ok, err := s.CompareAndSwap("counter", cur, strconv.AppendInt(nil, n+1, 10))
				if err != nil {
					b.Fatal(err)
				}
				if ok {
					break
				}
				fails.Add(1)
			}
		}
	})
	b.ReportMetric(float64(fails.Load())/float64(b.N), "fails/op")
}

// BenchmarkWatch is Set with 0, 1, 8 and 64 subscribers, each receiving
// every event it can, and counts what reached the subscribers, not what was
// published: a store that drops events for a lagging subscriber must score
// worse, not better.
//
// Each subscriber counts the events its Recv returned (delivered) and the
// Missed of every *LaggedError (lost). After the b.N Sets the timer keeps
// running until every subscriber has accounted for all b.N events
// (delivered or reported lost), or no subscriber has made progress for a
// second (events never accounted for count as lost), so time spent
// delivering is charged too. Metrics:
//
//   - ns/op: that time over b.N, per Set (publish plus delivery);
//   - ns/delivered: that time over the events delivered to all subscribers
//     together, the figure to compare: a store that drops half the events
//     of 8 subscribers gets twice the ns/delivered of one that delivers
//     them all in the same time, however fast its Sets;
//   - delivered/op: events delivered per subscriber per Set (1 = nothing
//     lost), and lost/op = 1 - delivered/op (never below 0).
//
// With 0 subscribers only ns/op is reported: the cost of a Set's publish
// check when nobody listens.
func BenchmarkWatch(b *testing.B) {
	keys := benchKeys(10_000)
	for _, subs := range []int{0, 1, 8, 64} {
		b.Run("subscribers="+strconv.Itoa(subs), func(b *testing.B) {
			s := New(WithWatchCapacity(4096))
			defer s.Close()
			fill(b, s, keys, 0) // before subscribing: the fill's events are not counted
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }() // runs before s.Close, on b.Fatal too
			counts := make([]watchCount, subs)
			for i := range subs {
				sub := s.Subscribe()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer sub.Close()
					c := &counts[i]
					for {
						_, err := sub.Recv(ctx)
						var lag *LaggedError
						switch {
						case err == nil:
							c.delivered.Add(1)
						case errors.As(err, &lag):
							c.lost.Add(int64(lag.Missed))
						default:
							return // ctx cancelled
						}
					}
				}()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := s.Set(keys[i%len(keys)], benchValue); err != nil {
					b.Fatal(err)
				}
			}
			waitAccounted(counts, int64(b.N), time.Second)
			b.StopTimer()
			cancel()
			wg.Wait()
			if subs == 0 {
				return
			}
			var delivered int64
			for i := range counts {
				delivered += counts[i].delivered.Load()
			}
			sent := float64(b.N) * float64(subs) // events published to subscribers
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(delivered, 1)), "ns/delivered")
			b.ReportMetric(float64(delivered)/sent, "delivered/op")
			b.ReportMetric(max(0, 1-float64(delivered)/sent), "lost/op")
		})
	}
}

// watchCount is one subscriber's counts, on a cache line of its own.
type watchCount struct {
	delivered, lost atomic.Int64
	_               [48]byte
}

// waitAccounted waits until every subscriber has accounted for n events
// (delivered or reported lost), or none has made progress for idle.
func waitAccounted(counts []watchCount, n int64, idle time.Duration) {
	last, since := int64(-1), time.Now()
	for {
		behind, total := false, int64(0)
		for i := range counts {
			c := counts[i].delivered.Load() + counts[i].lost.Load()
			total += c
			behind = behind || c < n
		}
		if !behind {
			return
		}
		if total != last {
			last, since = total, time.Now()
		} else if time.Since(since) > idle {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// BenchmarkListKeys lists a 1% prefix (user:0001xxx) of a 100k-key store.
func BenchmarkListKeys(b *testing.B) {
	keys := benchKeys(100_000)
	s := New(WithMaxKeys(len(keys)))
	defer s.Close()
	fill(b, s, keys, 0)
	b.ReportAllocs()
	for b.Loop() {
		got, _ := s.ListKeys("user:0001")
		if len(got) != 1000 {
			b.Fatalf("listed %d keys", len(got))
		}
	}
}

// benchKeys returns n keys shaped like user:000123.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%07d", i)
	}
	return keys
}

// zipfOrder returns length (a power of two) key indices in [0, n), zipf
// distributed (s=1.01) and scattered so that hot keys are not neighbours.
func zipfOrder(n, length int) []int {
	draw := zipfDraw(rand.New(rand.NewSource(42)), n)
	order := make([]int, length)
	for i := range order {
		order[i] = draw()
	}
	return order
}

// zipfDraw returns a function that draws key indices in [0, n) from rng,
// zipf distributed (s=1.01), the ranks scattered over the indices by a
// random permutation.
func zipfDraw(rng *rand.Rand, n int) func() int {
	z := rand.NewZipf(rng, 1.01, 1, uint64(n-1))
	perm := rng.Perm(n)
	return func() int { return perm[z.Uint64()] }
}

// BenchmarkBatch is a batch of 16 operations on keys chosen uniformly from
// 1M, as the server runs a pipeline of requests, with and without
// Store.Prefetch first: ns/op is per batch of 16.
func BenchmarkBatch(b *testing.B) {
	const n, batch = 1 << 20, 16
	keys := benchKeys(n)
	s := New(WithMaxKeys(n))
	defer s.Close()
	fill(b, s, keys, 0)
	keys = lookupKeys(keys)
	order := make([]int, 1<<20)
	for i := range order {
		order[i] = int(uint64(i) * 0x9E3779B97F4A7C15 >> 44) // scattered, uniform
	}
	ops := []struct {
		name string
		fn   func(key string)
	}{
		{"Get", func(k string) {
			if _, ok, _ := s.Get(k); !ok {
				b.Fatal("missing key")
			}
		}},
		{"Set", func(k string) {
			if err := s.Set(k, benchValue); err != nil {
				b.Fatal(err)
			}
		}},
	}
	for _, op := range ops {
		for _, pre := range []bool{false, true} {
			b.Run(fmt.Sprintf("op=%s/prefetch=%v", op.name, pre), func(b *testing.B) {
				var seed atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := int(seed.Add(7919)) * 104729
					ks := make([]string, batch)
					for pb.Next() {
						for j := range ks {
							i++
							ks[j] = keys[order[i&(len(order)-1)]]
						}
						if pre {
							s.Prefetch(ks...)
						}
						for _, k := range ks {
							op.fn(k)
						}
					}
				})
			})
		}
	}
}

// BenchmarkReclaim is the wheel's reclaim of a burst of expiries: 65,536
// keys written with a 1 ns TTL, in random order, among 1M live keys
// without one, then reclaimed by CleanExpired (the reaper's own path,
// reclaimDue). Only CleanExpired is timed; ns/key is its time a key.
func BenchmarkReclaim(b *testing.B) {
	const live, burst = 1 << 20, 1 << 16
	s := New(WithMaxKeys(live+burst), noReaper)
	defer s.Close()
	fill(b, s, benchKeys(live), 0)
	keys := make([]string, burst)
	for i, j := range rand.New(rand.NewSource(1)).Perm(burst) {
		keys[i] = fmt.Sprintf("exp:%07d", j)
	}
	var elapsed time.Duration
	reclaimed := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for _, k := range keys {
			if err := s.SetWithTTL(k, benchValue, time.Nanosecond); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(2 * time.Millisecond) // past the deadlines' tick
		b.StartTimer()
		start := time.Now()
		s.CleanExpired()
		elapsed += time.Since(start)
		reclaimed += burst
	}
	if s.Len() != live {
		b.Fatalf("Len %d after the reclaim, want %d", s.Len(), live)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(reclaimed), "ns/key")
}

// BenchmarkOverwrite is one goroutine overwriting 1M keys, as write100
// does but without a second goroutine's noise, each Set's key drawn afresh
// (no repeating order, so no cycle after which every record is dead): a
// record lives until its key is drawn again, so chunks empty gradually,
// and every Set pays its share of the compaction that copies their
// remaining records out, each looked up in its slot (seldom in cache). So
// this measures the write path with its cleaning. The store is brought to
// that steady state before the timer starts.
//
// dist=uniform draws every key alike; dist=zipf draws them zipf (s=1.01,
// the hot keys scattered over the key space), as a cache's writes come:
// the hot keys' records die young and the cold keys' outlive many chunks.
// The draw is part of the time, the same in any A/B; clean-read-B/op and
// clean-copied-B/op do not depend on it.
func BenchmarkOverwrite(b *testing.B) {
	const n = 1 << 20
	for _, dist := range []string{"uniform", "zipf"} {
		b.Run("dist="+dist, func(b *testing.B) {
			s := New(WithMaxKeys(n))
			defer s.Close()
			keys := benchKeys(n)
			fill(b, s, keys, 0)
			keys = lookupKeys(keys)
			rng := rand.New(rand.NewSource(1))
			draw := func() int { return rng.Intn(n) }
			if dist == "zipf" {
				draw = zipfDraw(rng, n)
			}
			set := func() {
				if err := s.Set(keys[draw()], benchValue); err != nil {
					b.Fatal(err)
				}
			}
			for range 4 * n { // to the steady state: compaction running
				set()
			}
			b.ReportAllocs()
			read, copied := cleaning(s)
			for b.Loop() {
				set()
			}
			reportCleaning(b, s, read, copied, b.N) // b.N: the iterations b.Loop ran
		})
	}
}

// cleaning returns the bytes compaction has read, and of those copied, in
// s's shards so far.
func cleaning(s *Store) (read, copied int) {
	for i := range s.s.shards {
		sh := &s.s.shards[i]
		sh.mu.Lock()
		read += sh.a.cleanRead
		copied += sh.a.cleanCopied
		sh.mu.Unlock()
	}
	return read, copied
}

// reportCleaning reports the bytes compaction read and copied per
// operation since cleaning returned read and copied, over ops operations:
// its work, which unlike the time does not move with the machine.
func reportCleaning(b *testing.B, s *Store, read, copied, ops int) {
	r, c := cleaning(s)
	b.ReportMetric(float64(r-read)/float64(ops), "clean-read-B/op")
	b.ReportMetric(float64(c-copied)/float64(ops), "clean-copied-B/op")
}
