package shardkv

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// shardFields is a shard without its padding.
type shardFields struct {
	// tab is the shard's storage. Readers load it and probe it without any
	// lock; only a writer holding mu replaces it (when it grows).
	tab atomic.Pointer[table]
	// The readers' word gets a cache line of its own, so that writers
	// taking mu do not take the line from readers.
	_ [56]byte

	// mu serializes the shard's writers (and iterators, which want a
	// consistent shard). Point reads never take it.
	mu sync.Mutex
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
// shards' words share a line.
type shard struct {
	shardFields
	_ [(128 - unsafe.Sizeof(shardFields{})%128) % 128]byte
}

func (sh *shard) init() {
	sh.tab.Store(emptyTable)
	sh.due.Store(noTick)
}

// insert (under mu) stores r, whose key hashes to h and is absent, growing
// the table first if it has no room.
func (sh *shard) insert(h uint64, r *record) *slot {
	t := sh.tab.Load()
	if t.full() {
		t = t.grown()
		sh.tab.Store(t)
	}
	return t.insert(h, r)
}

// replace (under mu) makes r, a record of the same key, s's record. The
// slot's timer, if any, stays: it names the key by hash and slot, not by
// record.
func (sh *shard) replace(s *slot, r *record) {
	s.rec.Store(r)
}

// schedule (under mu) gives s's record r a timer firing at r.when, reusing
// the slot's timer if it has one (replace has already pointed it at r). It
// returns the tick at which the reaper must look at this shard.
func (sh *shard) schedule(s *slot, r *record, h uint64) int64 {
	var start int64
	if s.t == 0 {
		s.t = sh.w.alloc()
		sh.w.at(s.t).hash = h
		start = sh.w.schedule(s.t, r.when)
	} else {
		start = sh.w.reschedule(s.t, r.when)
	}
	if start < sh.due.Load() {
		sh.due.Store(start)
	}
	return start
}

// unschedule (under mu) removes s's timer, if any, and frees it.
func (sh *shard) unschedule(s *slot) {
	if s.t != 0 {
		sh.w.cancel(s.t)
		sh.w.release(s.t)
		s.t = 0
	}
}

// expire (under mu) removes the expired record in sl, whose timer is
// already cancelled or fired, and publishes its EventExpire under the
// record's own copy of the key (a caller's may be reused memory). The
// caller decides what becomes of the entry's quota slot.
func (s *store) expire(sh *shard, sl *slot) {
	key := sl.rec.Load().key()
	if sl.t != 0 { // a timer that fired; find's path unscheduled it already
		sh.w.release(sl.t)
		sl.t = 0
	}
	sh.tab.Load().remove(sl)
	s.events.publish(key, EventExpire, nil)
}

// reclaimBudget caps the timers one advance handles under one hold of a
// shard lock, so a burst of simultaneous expiries never stalls the shard's
// writers for long: about 30-60 µs of work here.
const reclaimBudget = 512

// reclaimDue reclaims every entry of sh whose deadline is <= now, releasing
// the lock every reclaimBudget timers.
func (s *store) reclaimDue(sh *shard, now int64) {
	fire := func(r tref) {
		// The timer fired, so the record of the key it names is expired: a
		// delete, or an overwrite without a TTL, cancels the timer; an
		// overwrite with one moves it to the new record's deadline;
		// Increment keeps the deadline.
		sl := sh.tab.Load().slotOf(sh.w.at(r).hash, r)
		s.expire(sh, sl)
		s.count.Add(-1)
	}
	for {
		sh.mu.Lock()
		if s.closed.Load() { // see store.close: a closed store changes no more
			sh.mu.Unlock()
			return
		}
		done := sh.w.advance(now, reclaimBudget, fire)
		sh.due.Store(sh.w.due())
		sh.mu.Unlock()
		if done {
			return
		}
	}
}
