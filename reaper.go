package shardkv

import (
	"math"
	"sync/atomic"
	"time"
)

// reap is the store's one background goroutine. It sleeps until the
// earliest due tick of any shard's wheel, reclaims what is due, and sleeps
// again; with no TTL entry anywhere it sleeps until a writer wakes it. A
// shard that asks for spare memory wakes it too (see spares). It
// reads each shard's due tick without locking and locks only shards with
// work, in reclaimBudget-sized holds.
func (s *store) reap() {
	defer s.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		// noTick first: a writer that schedules a slot while we look at
		// the shards below then finds nextWake above its slot and signals.
		s.nextWake.Store(noTick)
		now := s.now()
		next := noTick
		for i := range s.shards {
			sh := &s.shards[i]
			d := sh.due.Load()
			if d != noTick && tickTime(d) <= now {
				s.reclaimDue(sh, now)
				d = sh.due.Load()
			}
			next = min(next, d)
		}
		lowerTo(&s.nextWake, next)
		var fired <-chan time.Time
		if next != noTick {
			t.Reset(time.Duration(max(tickTime(next)-s.now(), 0)))
			fired = t.C
		}
		select {
		case <-fired:
		case <-s.wake:
			t.Stop()
		case <-s.prep:
			t.Stop()
			s.refillAll()
		case <-s.done:
			return
		}
	}
}

// tickTime is the store-clock time at which tick begins, saturating.
func tickTime(tick int64) int64 {
	if tick > math.MaxInt64/wheelTick {
		return math.MaxInt64
	}
	return tick * wheelTick
}

// wakeReaper tells the reaper about a slot due at tick, if that is earlier
// than the one it sleeps until.
func (s *store) wakeReaper(tick int64) {
	if tick == noTick {
		return // a write without a TTL: do not touch the reaper's shared word
	}
	if lowerTo(&s.nextWake, tick) {
		select {
		case s.wake <- struct{}{}:
		default: // a signal is already pending
		}
	}
}

// lowerTo sets *v to x if x is lower, and reports whether it did.
func lowerTo(v *atomic.Int64, x int64) bool {
	for {
		cur := v.Load()
		if x >= cur {
			return false
		}
		if v.CompareAndSwap(cur, x) {
			return true
		}
	}
}
