package shardkv

import (
	"math/rand"
	"sync/atomic"
	"testing"
)

// BenchmarkReadHotSet is View over a hot set of keys of each size, drawn
// uniformly, in a store of 1M keys: from a set whose every line stays in
// a core's caches (1k keys) to one where every read misses (1M). It shows
// what a read costs from cache and from memory apart, which the zipf
// order of BenchmarkRead mixes.
func BenchmarkReadHotSet(b *testing.B) {
	const n = 1 << 20
	keys := benchKeys(n)
	s := New(WithMaxKeys(n))
	defer s.Close()
	fill(b, s, keys, 0)
	keys = lookupKeys(keys)
	for _, hot := range []struct {
		name string
		n    int
	}{{"1k", 1 << 10}, {"16k", 1 << 14}, {"128k", 1 << 17}, {"1M", n}} {
		rng := rand.New(rand.NewSource(1))
		set := rng.Perm(n)[:hot.n]
		order := make([]int, 1<<16)
		for i := range order {
			order[i] = set[rng.Intn(hot.n)]
		}
		b.Run("hot="+hot.name, func(b *testing.B) {
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
}
