package shardkv

import (
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/puzpuzpuz/xsync/v3"
)

// BenchmarkShardLock decides the shard lock: the store's read path (hash,
// pick a shard, read-lock, map lookup, unlock) over 64 shards and 1M keys
// with zipf-skewed keys, under sync.RWMutex and under xsync.RBMutex, for a
// read-only and a 90/10 read/write mix. Run with -cpu 1,2,4,8,16 to see how
// each scales.
func BenchmarkShardLock(b *testing.B) {
	const nkeys = 1 << 20
	keys := benchKeys(nkeys)
	order := zipfOrder(nkeys, 1<<16)
	for _, lock := range []string{"RWMutex", "RBMutex"} {
		shards := newLockShards(lock, 64, keys)
		for _, mix := range []struct {
			name   string
			writes int // per 100 operations
		}{{"read100", 0}, {"read90", 10}} {
			b.Run(lock+"/"+mix.name, func(b *testing.B) {
				var seed atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := int(seed.Add(7919)) * 104729
					v := []byte("value")
					for pb.Next() {
						i++
						k := keys[order[i&(len(order)-1)]]
						sh := &shards[xxhash.Sum64String(k)>>58]
						if mix.writes > 0 && i%100 < mix.writes {
							sh.lock()
							sh.m[k] = v
							sh.unlock()
							continue
						}
						tok := sh.rlock()
						_, ok := sh.m[k]
						sh.runlock(tok)
						if !ok {
							b.Fatal("miss")
						}
					}
				})
			})
		}
	}
}

// lockShard is a shard with either lock, chosen at run time; the branch is
// the same for both and perfectly predicted.
type lockShard struct {
	rw sync.RWMutex
	rb *xsync.RBMutex
	m  map[string][]byte
	_  [64]byte
}

func newLockShards(kind string, n int, keys []string) []lockShard {
	shards := make([]lockShard, n)
	for i := range shards {
		shards[i].m = map[string][]byte{}
		if kind == "RBMutex" {
			shards[i].rb = xsync.NewRBMutex()
		}
	}
	for _, k := range keys {
		shards[xxhash.Sum64String(k)>>58].m[k] = []byte("value")
	}
	return shards
}

func (s *lockShard) rlock() *xsync.RToken {
	if s.rb != nil {
		return s.rb.RLock()
	}
	s.rw.RLock()
	return nil
}

func (s *lockShard) runlock(t *xsync.RToken) {
	if s.rb != nil {
		s.rb.RUnlock(t)
		return
	}
	s.rw.RUnlock()
}

func (s *lockShard) lock() {
	if s.rb != nil {
		s.rb.Lock()
		return
	}
	s.rw.Lock()
}

func (s *lockShard) unlock() {
	if s.rb != nil {
		s.rb.Unlock()
		return
	}
	s.rw.Unlock()
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
	rng := rand.New(rand.NewSource(42))
	z := rand.NewZipf(rng, 1.01, 1, uint64(n-1))
	perm := rng.Perm(n)
	order := make([]int, length)
	for i := range order {
		order[i] = perm[z.Uint64()]
	}
	return order
}
