package shardkv

import (
	"fmt"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// Entry is what an [Store.Update] function sees of its key.
type Entry struct {
	// Value is the stored value, lent for the function's call only: copy
	// what is kept past it. Returning it as Change.Value is allowed.
	Value []byte
	// TTL is the time the key has left to live, or NoTTL.
	TTL time.Duration
	// Found is false when the key is absent or expired; Value is then nil
	// and TTL 0.
	Found bool
}

// ChangeAction says what [Store.Update] does with a key.
type ChangeAction uint8

const (
	// Keep leaves the key as it is and publishes no event.
	Keep ChangeAction = iota
	// Put stores Change.Value (copied) with Change.TTL, or with the
	// current deadline when Change.KeepTTL.
	Put
	// Drop removes the key, if it is present (EventDelete).
	Drop
)

// Change is what an [Store.Update] function returns: what to do with its
// key.
type Change struct {
	Action ChangeAction
	// Value is the value Put stores. It is copied.
	Value []byte
	// TTL is Put's time to live: > 0 a deadline that far from now, <= 0
	// none.
	TTL time.Duration
	// KeepTTL makes Put keep the key's current deadline (none for a new
	// key); TTL is then ignored.
	KeepTTL bool
	// Op names the change in its event (Event.Op); "" is "set" for a Put
	// and "del" for a Drop.
	Op string
}

// Update runs fn on key's entry under the lock of key's shard and applies
// the Change it returns, so that the read and the write are one atomic step
// against every other operation on key. fn must not call the store, and
// may be called more than once (a new key refused for the quota makes the
// store reclaim what is due and call fn again); the last call's Change is
// applied. A Put fails with [ErrValueTooLarge] for a value longer than
// MaxValueSize (but never for Entry.Value returned unchanged) and with
// [ErrQuotaExceeded] for a new key beyond MaxKeys; then nothing changes.
// A Put publishes EventSet, a Drop of a present key EventDelete, each with
// Change.Op. Like Set, Update works on the local store, clustered or not.
func (s *Store) Update(key string, fn func(Entry) Change) error {
	err := s.s.update(key, fn)
	runtime.KeepAlive(s)
	return err
}

func (st *store) update(key string, fn func(Entry) Change) error {
	if st.closed.Load() {
		return ErrClosed
	}
	if err := st.checkKey(key); err != nil {
		return err
	}
	err := st.updateOnce(key, fn)
	if err == errFull {
		_, err = retryFull(st, func() (struct{}, error) { return struct{}{}, st.updateOnce(key, fn) })
	}
	return err
}

func (s *store) updateOnce(key string, fn func(Entry) Change) error {
	sh, h := s.locate(key)
	sh.mu.Lock()
	if s.closed.Load() { // see close
		sh.mu.Unlock()
		return ErrClosed
	}
	// The clock is read only for a deadline: by find for an entry that
	// has one, here for the TTL fn sees and for a Put with a TTL.
	now := int64(-1)
	var old entry
	sl, held := s.find(sh, key, h, now, &old)
	var in Entry
	if sl != nil {
		in = Entry{Value: bytesOf(old.value), TTL: NoTTL, Found: true}
		if old.when >= 0 {
			now = s.now()
			// At least 1 ns: find judged the entry live an instant before.
			in.TTL = max(time.Duration(old.when-now), 1)
		}
	}
	// The lock is released by a deferred call from here on, so that a
	// panicking fn leaves the shard usable.
	defer sh.mu.Unlock()
	c := fn(in)
	passed := held && sl == nil // find reclaimed an expired entry and passed its quota slot on
	switch c.Action {
	case Put:
		if limit := s.maxValueSize.Load(); int64(len(c.Value)) > limit && !sameBytes(sl, c.Value, old.value) {
			if passed {
				s.count.Add(-1)
			}
			return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(c.Value), limit)
		}
		if !held && !s.reserve() {
			return errFull
		}
		when := noDeadline
		switch {
		case c.KeepTTL:
			if sl != nil {
				when = old.when // the slot's timer, if any, stays as it is
			}
		case c.TTL > 0:
			if now < 0 {
				now = s.now()
			}
			when = deadline(now, c.TTL)
		}
		isNew := sl == nil
		sl = storeRecord(sh, sl, &old, key, h, c.Value, when)
		due := noTick
		switch {
		case c.KeepTTL:
		case when >= 0:
			due = sh.schedule(sl, h, when, old.when) // old: unused for a new slot, which has no timer
		default:
			sh.unschedule(sl)
		}
		s.events.emit(key, EventSet, asString(c.Value), opOr(c.Op, "set"), isNew)
		sh.compact()
		s.wakeReaper(due) // under the lock here; wakeReaper never blocks
	case Drop:
		if sl == nil {
			if passed {
				s.count.Add(-1)
			}
			return nil
		}
		sh.unschedule(sl)
		sh.remove(sl, &old)
		s.count.Add(-1)
		s.events.emit(old.key, EventDelete, "", opOr(c.Op, "del"), false)
		sh.compact()
	default:
		if passed {
			s.count.Add(-1)
		}
	}
	return nil
}

// sameBytes reports whether v is the lent value of the entry in sl: the
// very bytes, returned unchanged.
func sameBytes(sl *slot, v []byte, lent string) bool {
	return sl != nil && len(v) == len(lent) && unsafe.SliceData(v) == unsafe.StringData(lent)
}

// opOr is op, or def if op is empty.
func opOr(op, def string) string {
	if op == "" {
		return def
	}
	return op
}

// Expire gives key a time to live of ttl from now, keeping its value, and
// reports whether key was present. A ttl <= 0 removes the key (as Redis
// EXPIRE does), with Op "del"; otherwise the event is an EventSet with the
// unchanged value and Op "expire".
func (s *Store) Expire(key string, ttl time.Duration) (bool, error) {
	found := false
	err := s.Update(key, func(e Entry) Change {
		found = e.Found
		switch {
		case !e.Found:
			return Change{}
		case ttl <= 0:
			return Change{Action: Drop}
		}
		return Change{Action: Put, Value: e.Value, TTL: ttl, Op: "expire"}
	})
	return found && err == nil, err
}

// Persist removes key's deadline and reports whether it had one (false
// when key is absent or has no TTL). The event is an EventSet with the
// unchanged value and Op "persist".
func (s *Store) Persist(key string) (bool, error) {
	had := false
	err := s.Update(key, func(e Entry) Change {
		if had = e.Found && e.TTL != NoTTL; !had {
			return Change{}
		}
		return Change{Action: Put, Value: e.Value, Op: "persist"}
	})
	return had && err == nil, err
}

// Rename moves src's value and deadline to dst, holding both keys' shard
// locks, and reports whether it did. An existing dst is replaced, unless
// noReplace: then Rename returns false and changes nothing. A missing src
// is [ErrNotFound]. It publishes EventDelete for src (Op "rename_from")
// and then EventSet for dst (Op "rename_to").
//
// Renaming a key to itself changes nothing and publishes nothing: it
// returns true, or false with noReplace (dst exists), as Redis does.
func (s *Store) Rename(src, dst string, noReplace bool) (bool, error) {
	ok, err := s.s.rename(src, dst, noReplace)
	runtime.KeepAlive(s)
	return ok, err
}

func (st *store) rename(src, dst string, noReplace bool) (bool, error) {
	if st.closed.Load() {
		return false, ErrClosed
	}
	if err := st.checkKey(src); err != nil {
		return false, err
	}
	if err := st.checkKey(dst); err != nil {
		return false, err
	}
	a, ha := st.locate(src)
	b, hb := st.locate(dst)
	// Two shards' locks are taken in the order of the shards array, the
	// one order every holder of two uses, so no two renames deadlock.
	first, second := a, b
	if uintptr(unsafe.Pointer(b)) < uintptr(unsafe.Pointer(a)) {
		first, second = b, a
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	if second != first {
		second.mu.Lock()
		defer second.mu.Unlock()
	}
	if st.closed.Load() { // see close
		return false, ErrClosed
	}
	now := st.now()
	var e, de entry
	sl, held := st.find(a, src, ha, now, &e)
	if sl == nil {
		if held {
			st.count.Add(-1) // the slot of the expired entry find reclaimed
		}
		return false, ErrNotFound
	}
	if src == dst {
		return !noReplace, nil
	}
	dl, dheld := st.find(b, dst, hb, now, &de)
	if dl != nil && noReplace {
		return false, nil
	}
	// src goes first: a split that dst's insert may cause would move src's
	// slot. Its record's bytes stay readable (a dropped chunk is never
	// reused), so they are copied after.
	a.unschedule(sl)
	a.remove(sl, &e)
	st.events.emit(e.key, EventDelete, "", "rename_from", false)
	// src's quota slot passes to dst; one dst already held is released.
	if dheld {
		st.count.Add(-1)
	}
	nl := storeRecord(b, dl, &de, dst, hb, e.value, e.when)
	due := noTick
	if e.when >= 0 {
		due = b.schedule(nl, hb, e.when, de.when) // de: unused when dst was new, its slot has no timer
	} else {
		b.unschedule(nl)
	}
	st.events.emit(dst, EventSet, e.value, "rename_to", dl == nil)
	a.compact()
	if b != a {
		b.compact()
	}
	st.wakeReaper(due)
	return true, nil
}

// Scan returns some of the store's keys, appended to dst, and the cursor
// to pass to the next call: a resumable walk of the hash space, with
// Redis SCAN's contract. Start at cursor 0 and stop when next is 0. Every
// key present for the whole walk is returned exactly once; one added or
// removed meanwhile may or may not be. count is a hint: each call visits
// whole tables until it has at least count keys or the walk ends. A cursor
// means nothing to another store.
func (s *Store) Scan(cursor uint64, count int, dst []string) (keys []string, next uint64, err error) {
	keys, next, err = s.s.scan(cursor, count, dst)
	runtime.KeepAlive(s)
	return keys, next, err
}

// scan walks the hash space as positions of the store's finest table
// split: a shard's positions follow the previous shard's, so a cursor is
// shard<<maxDepth | position in the shard, and names where the walk goes
// on. A position past the end means the walk is over.
func (st *store) scan(cursor uint64, count int, dst []string) ([]string, uint64, error) {
	if st.closed.Load() {
		return dst, 0, ErrClosed
	}
	maxD := uint(st.shards[0].tab.Load().maxDepth())
	end := uint64(len(st.shards)) << maxD
	start := len(dst)
	c := cursor
	for c < end {
		sh := &st.shards[c>>maxD]
		now := st.now()
		next := sh.scanTable(c&(1<<maxD-1), func(e entry) {
			if e.when < 0 || now < e.when {
				dst = append(dst, strings.Clone(e.key)) // a copy: e.key would hold its chunk
			}
		})
		c = c>>maxD<<maxD + next
		if len(dst)-start >= count {
			break
		}
	}
	if c >= end {
		c = 0
	}
	return dst, c, nil
}

// Stats are counters of what the store did since New.
type Stats struct {
	// Expired counts the expired entries reclaimed (one EventExpire each).
	Expired uint64
}

// Stats returns the store's counters. It takes no lock; each counter is
// exact, though two read in one call may be from slightly different
// instants.
func (s *Store) Stats() Stats {
	var st Stats
	for i := range s.s.shards {
		st.Expired += s.s.shards[i].expired.Load()
	}
	return st
}
