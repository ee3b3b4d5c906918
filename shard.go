package shardkv

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// entry is what a shard's map holds for a key. It is stored by value, 24
// bytes, so a key without a TTL costs a 40-byte map slot and its key and
// value bytes, nothing more.
type entry struct {
	// value is immutable (a string), and every mutation stores a new one.
	// That is what lets readers copy it (or lend its bytes to View, events
	// and iterators) after releasing the shard lock.
	value string
	t     *timer // the entry's place in the wheel, with its deadline; nil: no TTL
}

// expired reports whether e has a deadline at or before now.
func (e *entry) expired(now int64) bool { return e.t != nil && now >= e.t.when }

// shardFields is a shard without its padding.
type shardFields struct {
	// mu guards m and w. It is a sync.RWMutex rather than xsync's RBMutex:
	// see BenchmarkShardLock and the README for the figures. Keys are spread
	// over many shards, so readers of different keys rarely share a lock
	// word, and RBMutex's writer path (a scan of every reader slot and two
	// clock reads) is paid on every write of a read-mostly mix.
	mu sync.RWMutex
	m  map[string]entry
	// due mirrors w.due(): the tick at which the shard's earliest wheel slot
	// comes due, or noTick. It is written under mu and read without it by
	// the reaper and by quota reclaim, which only use it to skip shards with
	// nothing due: a stale value costs a wasted lock, never a missed expiry,
	// because it is lowered before mu is released whenever a timer is added.
	due atomic.Int64
	w   wheel
}

// shard is one lock stripe. Its size is a multiple of 128 bytes (two cache
// lines, the unit the prefetcher pulls), so in the shards array no two
// shards' lock words share a line.
type shard struct {
	shardFields
	_ [(128 - unsafe.Sizeof(shardFields{})%128) % 128]byte
}

func (sh *shard) init() {
	sh.m = make(map[string]entry)
	sh.due.Store(noTick)
}

// schedule (under mu) gives e a timer firing at deadline when, reusing e's
// timer if it has one. It returns the tick at which the reaper must look at
// this shard.
func (sh *shard) schedule(e *entry, key string, when int64) int64 {
	if e.t == nil {
		e.t = &timer{key: key, level: -1}
	} else {
		sh.w.cancel(e.t)
	}
	start := sh.w.schedule(e.t, when)
	if start < sh.due.Load() {
		sh.due.Store(start)
	}
	return start
}

// unschedule (under mu) removes e's timer, if any.
func (sh *shard) unschedule(e *entry) {
	if e.t != nil {
		sh.w.cancel(e.t)
		e.t = nil
	}
}

// expire (under mu) removes key's expired entry, whose timer is already
// cancelled or fired, and publishes its EventExpire. The caller decides what
// becomes of the entry's quota slot.
func (s *store) expire(sh *shard, key string) {
	delete(sh.m, key)
	s.events.publish(key, EventExpire, nil)
}

// reclaimBudget caps the timers one advance handles under one hold of a
// shard lock, so a burst of simultaneous expiries never stalls the shard's
// writers for long: about 30-60 µs of work here.
const reclaimBudget = 512

// reclaimDue reclaims every entry of sh whose deadline is <= now, releasing
// the lock every reclaimBudget timers.
func (s *store) reclaimDue(sh *shard, now int64) {
	fire := func(t *timer) {
		// The timer fired, so its entry is the current one for t.key (an
		// overwrite or delete cancels the old timer) and is expired.
		s.expire(sh, t.key)
		s.count.Add(-1)
	}
	for {
		sh.mu.Lock()
		done := sh.w.advance(now, reclaimBudget, fire)
		sh.due.Store(sh.w.due())
		sh.mu.Unlock()
		if done {
			return
		}
	}
}
