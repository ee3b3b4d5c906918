package shardkv

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// NoTTL is what [Store.TTL] returns for a key that never expires.
const NoTTL time.Duration = -1

// Store is a sharded, concurrent key-value store with TTLs, a key quota,
// atomic read-modify-write operations and a broadcast watch. Create one with
// [New]; share it by copying the pointer; every method is safe for
// concurrent use. Close it to stop its background goroutine: a Store that is
// dropped without Close is closed when the garbage collector finds it
// unreachable.
//
// A Store must not be copied by value.
type Store struct {
	s *store
}

// store is the state. It is kept apart from the Store handle so that the
// background goroutine, which refers only to the store, does not keep the
// handle reachable: when the handle is collected its cleanup closes the
// store and the goroutine ends.
type store struct {
	shards   []shard
	shift    uint // a key's shard is hash >> shift
	keys     keyRule
	validate func(string) error // keys == customKeys: the validator
	maxKey   int64              // keys == binaryKeys: the longest key
	backend  Backend
	events   *ring
	epoch    time.Time // the store clock's zero
	// onQuotaRetry is a test hook (options.onQuotaRetry); nil otherwise.
	onQuotaRetry func()

	_     [64]byte
	count atomic.Int64 // entries held, expired-but-unreclaimed included
	_     [56]byte
	// nextWake is the tick the reaper sleeps until (noTick: none). Writers
	// that schedule an earlier slot lower it and signal wake. The reaper sets
	// it to noTick before each look at the shards, so a writer racing with
	// that look always signals.
	nextWake atomic.Int64
	_        [56]byte

	maxKeys      atomic.Int64
	maxValueSize atomic.Int64

	closed atomic.Bool
	life   sync.Mutex // orders Close against starting a watcher goroutine
	done   chan struct{}
	wake   chan struct{}
	prep   chan struct{} // shards asking for spare memory (see spares); nil without a reaper
	tables tablePool     // the shards' spare tables
	wg     sync.WaitGroup
	// stopFeed ends the stream of a WatchBackend's changes (see feed),
	// which closes fed once it has published its last event; both nil
	// without one.
	stopFeed context.CancelFunc
	fed      chan struct{}
}

// New returns an empty store configured by opts, with its reaper (the
// goroutine that reclaims expired entries) started.
func New(opts ...Option) *Store {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	s := &store{
		shards:       make([]shard, o.shards),
		shift:        uint(64 - log2(o.shards)),
		keys:         ruleOf(o.validate),
		validate:     o.validate,
		maxKey:       o.maxKeyLen,
		backend:      o.backend,
		epoch:        time.Now(),
		onQuotaRetry: o.onQuotaRetry,
		done:         make(chan struct{}),
		wake:         make(chan struct{}, 1),
	}
	if !o.noReaper {
		s.prep = make(chan struct{}, 1)
	}
	for i := range s.shards {
		s.shards[i].init(uint8(log2(o.shards)), xxhash.Sum64String, s.prep, &s.tables, o.tableSlots)
	}
	s.maxKeys.Store(int64(o.maxKeys))
	s.maxValueSize.Store(int64(o.maxValueSize))
	s.nextWake.Store(noTick)
	s.events = newRing(o.watchCapacity, s.done)
	if !o.noReaper {
		s.wg.Add(1)
		go s.reap()
	}
	if wb, ok := o.backend.(WatchBackend); ok {
		var ctx context.Context
		ctx, s.stopFeed = context.WithCancel(context.Background())
		s.fed = make(chan struct{})
		go s.feed(ctx, wb, s.fed)
	}
	h := &Store{s: s}
	runtime.AddCleanup(h, (*store).close, s)
	return h
}

func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

// now reads the store clock: nanoseconds since the store was made, on the
// monotonic clock, so wall-clock jumps never move deadlines.
func (s *store) now() int64 { return int64(time.Since(s.epoch)) }

// deadline is now+ttl, saturating at math.MaxInt64; a ttl <= 0 is already
// due.
func deadline(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return now
	}
	if int64(ttl) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(ttl)
}

// locate hashes key once: the top bits pick its shard, the low bits its
// place in the shard's table.
func (s *store) locate(key string) (*shard, uint64) {
	h := xxhash.Sum64String(key)
	return &s.shards[h>>s.shift], h
}

// keyRule is the rule a store's keys follow.
type keyRule uint8

const (
	refKeys    keyRule = iota // ValidateKey
	binaryKeys                // WithBinaryKeys
	customKeys                // WithKeyValidator
)

// ruleOf names the rule of the option's validator (nil: WithBinaryKeys).
func ruleOf(fn func(string) error) keyRule {
	switch {
	case fn == nil:
		return binaryKeys
	case reflect.ValueOf(fn).Pointer() == reflect.ValueOf(ValidateKey).Pointer():
		return refKeys
	}
	return customKeys
}

// checkKey applies the store's key rule. key does not escape (go build
// -gcflags=-m says so of every exported method that takes a key but the
// Context ones, whose backend is an interface): a custom validator, which
// the compiler cannot see into, gets a copy.
func (s *store) checkKey(key string) error {
	if int64(len(key)) > maxRecordLen { // only a custom validator lets one through
		return fmt.Errorf("%w: %d bytes, longer than a record holds", ErrInvalidKey, len(key))
	}
	switch s.keys {
	case refKeys:
		return ValidateKey(key)
	case binaryKeys:
		if int64(len(key)) > s.maxKey {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKey, len(key), s.maxKey)
		}
		return nil
	}
	err := s.validate(strings.Clone(key))
	if err == nil || errors.Is(err, ErrInvalidKey) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidKey, err)
}

// checkWrite applies the checks every write makes before it takes a lock,
// in the reference's order: closed, key, value size.
func (s *store) checkWrite(key string, size int) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.checkKey(key); err != nil {
		return err
	}
	if limit := s.maxValueSize.Load(); int64(size) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, size, limit)
	}
	return nil
}

// reserve takes a quota slot for a new key, or reports that the store is
// full. A compare-and-swap loop rather than add-then-undo: an add that
// overshoots, however briefly, could make a concurrent reserve see a full
// store that is not, and refuse a key while the store holds fewer than
// MaxKeys.
func (s *store) reserve() bool {
	for {
		n := s.count.Load()
		if n >= s.maxKeys.Load() {
			return false
		}
		if s.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// errFull is returned inside the store when a new key found the quota
// full; the exported methods retry once after reclaiming what is due, then
// report ErrQuotaExceeded.
var errFull = errors.New("quota full")

// retryFull is what an operation does when its first attempt found the
// quota full: it reclaims every expired entry that is due and runs op once
// more, and reports ErrQuotaExceeded if that finds it full too. The retry
// is unconditional: the reaper may have reclaimed an entry between the
// refusal and our look at the shards, and the store must not refuse a key
// while it holds fewer than MaxKeys. Callers make their first attempt
// directly and build op only on this slow path, so that the common one
// makes no closure and no indirect call.
func retryFull[T any](s *store, op func() (T, error)) (T, error) {
	if s.onQuotaRetry != nil {
		s.onQuotaRetry()
	}
	s.reclaimExpired()
	v, err := op()
	if err == errFull {
		err = ErrQuotaExceeded
	}
	return v, err
}

// find looks key (hash h) up in sh, whose lock the caller holds, and
// returns its slot, with its live entry in *e. An expired entry it meets is reclaimed on
// the spot (EventExpire) and its quota slot passed to the caller. held
// reports that the caller holds a quota slot for key (found, or passed on):
// a caller that leaves key absent must release a passed-on slot. now < 0
// means the clock is not read yet.
func (s *store) find(sh *shard, key string, h uint64, now int64, e *entry) (sl *slot, held bool) {
	sl = sh.find(key, h, e)
	if sl != nil && e.when >= 0 {
		if now < 0 {
			now = s.now()
		}
		if now >= e.when {
			sh.unschedule(sl)
			s.expire(sh, sl, e) // its quota slot passes to the caller
			*e = entry{}
			return nil, true
		}
	}
	return sl, sl != nil
}

// lookup returns the value of a live key, sharing the memory of its chunk
// (immutable; the caller copies it before handing it out, or lends it only
// for a call). The key is validated only when the store holds no entry
// for it: every stored key passed the validator, which is fixed at New, so
// finding the key, live or expired, proves it valid. The clock is read only
// for an entry that has a deadline.
func (s *store) lookup(key string) (string, bool, error) {
	if s.closed.Load() {
		return "", false, ErrClosed
	}
	v, ok, held := s.peek(key)
	if !ok && !held {
		return "", false, s.checkKey(key)
	}
	return v, ok, nil
}

// peek returns the value of a live key, and whether the store holds an
// entry for key, live or expired. It takes no lock (see shard.get).
func (s *store) peek(key string) (value string, live, held bool) {
	sh, h := s.locate(key)
	v, when, ok := sh.get(key, h)
	if !ok || (when >= 0 && s.now() >= when) {
		return "", false, ok
	}
	return v, true, true
}

// asString views v as a string without copying, for a callee that only
// reads it during the call (publish, which copies).
func asString[V string | []byte](v V) string {
	switch v := any(v).(type) {
	case string:
		return v
	case []byte:
		return unsafe.String(unsafe.SliceData(v), len(v))
	}
	panic("unreachable")
}

// bytesOf lends the bytes of the immutable string v, for readers only: the
// slice must never be written. Its capacity is its length, so an append by
// whoever holds it copies.
func bytesOf(v string) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	return unsafe.Slice(unsafe.StringData(v), len(v))
}

// Get returns a copy of key's value and whether the key is present and
// unexpired. It allocates only the copy.
func (s *Store) Get(key string) (value []byte, found bool, err error) {
	v, ok, err := s.s.lookup(key)
	runtime.KeepAlive(s) // see keepAlive
	if !ok {
		return nil, false, err
	}
	out := make([]byte, len(v))
	copy(out, v) // v is immutable, so the copy needs no lock
	return out, true, nil
}

// GetString is [Store.Get] returning the value as a string. A value that is
// not valid UTF-8 is reported as a [*StorageError]. It allocates only the
// string.
func (s *Store) GetString(key string) (value string, found bool, err error) {
	v, ok, err := s.s.lookup(key)
	runtime.KeepAlive(s)
	if !ok {
		return "", false, err
	}
	if !utf8.ValidString(v) {
		return "", false, &StorageError{Msg: "invalid UTF-8 in value"}
	}
	return strings.Clone(v), true, nil // a copy: v would hold its whole chunk alive
}

// AppendValue appends key's value to dst and returns the extended slice and
// whether the key is present. It allocates nothing when dst has room: the
// read for callers that reuse a buffer.
func (s *Store) AppendValue(dst []byte, key string) ([]byte, bool, error) {
	v, ok, err := s.s.lookup(key)
	runtime.KeepAlive(s)
	if !ok {
		return dst, false, err
	}
	return append(dst, v...), true, nil
}

// View calls fn with key's value, without copying it, if the key is present,
// and reports whether it was. It takes no lock (the slice is never written
// by the store), so fn may take its time and may use the store; it must not
// modify value or keep it after returning.
func (s *Store) View(key string, fn func(value []byte)) (found bool, err error) {
	v, ok, err := s.s.lookup(key)
	if ok {
		fn(bytesOf(v))
	}
	runtime.KeepAlive(s)
	return ok, err
}

// Exists reports whether key is present and unexpired. It does not validate
// the key (an invalid key is simply absent), and returns false once the
// store is closed.
func (s *Store) Exists(key string) bool {
	if s.s.closed.Load() {
		return false
	}
	_, ok, _ := s.s.peek(key)
	runtime.KeepAlive(s)
	return ok
}

// TTL reports how long key has left to live, [NoTTL] for a key without a
// deadline, and whether the key is present and unexpired.
func (s *Store) TTL(key string) (ttl time.Duration, found bool, err error) {
	ttl, found, err = s.s.ttl(key)
	runtime.KeepAlive(s)
	return ttl, found, err
}

func (st *store) ttl(key string) (time.Duration, bool, error) {
	if st.closed.Load() {
		return 0, false, ErrClosed
	}
	sh, h := st.locate(key)
	_, when, ok := sh.get(key, h)
	switch {
	case !ok:
		return 0, false, st.checkKey(key)
	case when < 0:
		return NoTTL, true, nil
	}
	if left := when - st.now(); left > 0 {
		return time.Duration(left), true, nil
	}
	return 0, false, nil
}

// Set stores a copy of value under key, with no TTL (an existing TTL is
// dropped). It fails with [ErrInvalidKey], [ErrValueTooLarge], or
// [ErrQuotaExceeded] when key is new and the store holds MaxKeys entries.
func (s *Store) Set(key string, value []byte) error {
	err := put(s.s, key, value, 0, false)
	runtime.KeepAlive(s)
	return err
}

// SetString is [Store.Set] with a string value.
func (s *Store) SetString(key, value string) error {
	err := put(s.s, key, bytesOf(value), 0, false) // put only reads it
	runtime.KeepAlive(s)
	return err
}

// SetWithTTL is [Store.Set] with a time to live: from ttl after the call the
// key is absent to every operation, and within two wheel ticks (2 ms) more
// it is reclaimed with an [EventExpire]. A ttl <= 0 stores an entry that is
// already expired; a ttl too long for the clock saturates.
func (s *Store) SetWithTTL(key string, value []byte, ttl time.Duration) error {
	err := put(s.s, key, value, ttl, true)
	runtime.KeepAlive(s)
	return err
}

// put stores a copy of v under key, with a deadline ttl from now if
// withTTL. It is not generic: the Set methods inline into their callers,
// and the compiler knows that a non-generic function's key does not
// escape, where it assumes a generic one's may (a caller's string(b)
// would then allocate).
func put(s *store, key string, v []byte, ttl time.Duration, withTTL bool) error {
	if err := s.checkWrite(key, len(v)); err != nil {
		return err
	}
	err := putOnce(s, key, v, ttl, withTTL)
	if err == errFull {
		_, err = retryFull(s, func() (struct{}, error) {
			return struct{}{}, putOnce(s, key, v, ttl, withTTL)
		})
	}
	return err
}

func putOnce(s *store, key string, v []byte, ttl time.Duration, withTTL bool) error {
	sh, h := s.locate(key)
	sh.mu.Lock()
	if s.closed.Load() { // see close
		sh.mu.Unlock()
		return ErrClosed
	}
	now, when := int64(-1), noDeadline
	if withTTL {
		// The clock is read under the lock: the old entry's expiry is
		// judged at the instant the write takes effect.
		now = s.now()
		when = deadline(now, ttl)
	}
	var old entry
	sl, held := s.find(sh, key, h, now, &old)
	if !held && !s.reserve() {
		sh.mu.Unlock()
		return errFull
	}
	isNew := sl == nil
	sl = storeRecord(sh, sl, &old, key, h, v, when)
	due := noTick
	if when >= 0 {
		due = sh.schedule(sl, h, when, old.when) // old: unused for a new slot, which has no timer
	} else {
		sh.unschedule(sl)
	}
	s.events.emit(key, EventSet, asString(v), "set", isNew) // copies both
	sh.compact()
	sh.mu.Unlock()
	s.wakeReaper(due)
	return nil
}

// Delete removes key and reports whether it was present (an expired key is
// not: it is reclaimed, with an EventExpire and no EventDelete).
func (s *Store) Delete(key string) (existed bool, err error) {
	existed, err = s.s.delete(key)
	runtime.KeepAlive(s)
	return existed, err
}

func (st *store) delete(key string) (bool, error) {
	if st.closed.Load() {
		return false, ErrClosed
	}
	if err := st.checkKey(key); err != nil {
		return false, err
	}
	sh, h := st.locate(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if st.closed.Load() { // see close
		return false, ErrClosed
	}
	var e entry
	sl, held := st.find(sh, key, h, -1, &e)
	if sl == nil {
		if held {
			st.count.Add(-1) // the slot of the expired entry find reclaimed
		}
		return false, nil
	}
	sh.unschedule(sl)
	sh.remove(sl, &e)
	st.count.Add(-1)
	st.events.publish(e.key, EventDelete, "")
	sh.compact()
	return true, nil
}

// Increment adds delta to the decimal integer stored under key and stores
// the sum, saturating at the int64 limits. A missing or expired key counts
// as 0 and becomes a new key without a TTL; an existing key keeps its TTL,
// as Redis INCR does. A stored value that is not a decimal integer is a
// [*StorageError] and is left as it is.
func (s *Store) Increment(key string, delta int64) (int64, error) {
	n, err := s.s.increment(key, delta)
	runtime.KeepAlive(s)
	return n, err
}

func (st *store) increment(key string, delta int64) (int64, error) {
	if st.closed.Load() {
		return 0, ErrClosed
	}
	if err := st.checkKey(key); err != nil {
		return 0, err
	}
	n, err := st.incrementOnce(key, delta)
	if err == errFull {
		n, err = retryFull(st, func() (int64, error) { return st.incrementOnce(key, delta) })
	}
	return n, err
}

func (s *store) incrementOnce(key string, delta int64) (int64, error) {
	sh, h := s.locate(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() { // see close
		return 0, ErrClosed
	}
	var old entry
	sl, held := s.find(sh, key, h, -1, &old)
	n, when := delta, noDeadline
	if sl != nil {
		cur, err := parseInt(old.value)
		if err != nil {
			return 0, err
		}
		n, when = satAdd(cur, delta), old.when // the TTL stays
	} else if !held && !s.reserve() {
		return 0, errFull
	}
	var buf [20]byte
	v := strconv.AppendInt(buf[:0], n, 10)
	// The slot's timer, if any, stays as it is.
	storeRecord(sh, sl, &old, key, h, v, when)
	s.events.emit(key, EventSet, asString(v), "incrby", sl == nil)
	sh.compact()
	return n, nil
}

// satAdd is a+b clamped to the int64 range.
func satAdd(a, b int64) int64 {
	c := a + b
	if (c > a) != (b > 0) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return c
}

// CompareAndSwap stores a copy of newValue under key, with no TTL, if the
// key's current value equals expected, and reports whether it did. A nil
// expected means the key must be absent (or expired); a non-nil expected,
// even empty, must equal a present value. A too-large newValue is refused
// whether or not expected matches.
func (s *Store) CompareAndSwap(key string, expected, newValue []byte) (swapped bool, err error) {
	swapped, err = s.s.compareAndSwap(key, expected, newValue)
	runtime.KeepAlive(s)
	return swapped, err
}

func (st *store) compareAndSwap(key string, expected, newValue []byte) (bool, error) {
	if err := st.checkWrite(key, len(newValue)); err != nil {
		return false, err
	}
	ok, err := st.casOnce(key, expected, newValue)
	if err == errFull {
		ok, err = retryFull(st, func() (bool, error) { return st.casOnce(key, expected, newValue) })
	}
	return ok, err
}

func (s *store) casOnce(key string, expected, newValue []byte) (bool, error) {
	sh, h := s.locate(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() { // see close
		return false, ErrClosed
	}
	var old entry
	sl, held := s.find(sh, key, h, -1, &old)
	match := sl == nil
	if expected != nil {
		match = sl != nil && old.value == string(expected)
	}
	if !match {
		if held && sl == nil {
			s.count.Add(-1) // the slot of the expired entry find reclaimed
		}
		return false, nil
	}
	if !held && !s.reserve() {
		return false, errFull
	}
	isNew := sl == nil
	sl = storeRecord(sh, sl, &old, key, h, newValue, noDeadline)
	sh.unschedule(sl)
	s.events.emit(key, EventSet, asString(newValue), "set", isNew)
	sh.compact()
	return true, nil
}

// ListKeys returns the present, unexpired keys that start with prefix, in no
// particular order. It costs O(keys held) and visits the store a table at
// a time (at most 3072 keys) under the table's shard lock, so it holds a
// shard's writers off only that long, and readers never. Every key present
// for the whole call is listed, once; a key written or removed meanwhile
// may or may not be, so the list is no snapshot: a key listed early may be
// gone, and its quota slot taken by a key listed later, before ListKeys
// returns. The keys are the caller's own copies; they share buffers of up
// to 64 KiB (a longer key gets one of its own), so a key kept long after
// the list keeps its buffer alive (strings.Clone it to keep it alone).
func (s *Store) ListKeys(prefix string) ([]string, error) {
	keys, err := s.s.listKeys(prefix)
	runtime.KeepAlive(s)
	return keys, err
}

func (st *store) listKeys(prefix string) ([]string, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	keys := []string{}
	var buf []byte
	st.iterate(prefix, func(k, _ string) bool {
		// A copy, since k would hold its chunk alive: into buf, which the
		// keys share, so that a list of many keys is a few allocations,
		// not one a key. A full buf is left to the keys already in it.
		if len(k) == 0 {
			keys = append(keys, "")
			return true
		}
		if len(buf)+len(k) > cap(buf) {
			buf = make([]byte, 0, max(len(k), min(2*cap(buf), 64<<10), 1<<10))
		}
		buf = append(buf, k...)
		keys = append(keys, unsafe.String(unsafe.SliceData(buf[len(buf)-len(k):]), len(k)))
		return true
	})
	return keys, nil
}

// Keys iterates over the present, unexpired keys that start with prefix,
// with ListKeys' consistency: every key present for the whole loop is
// yielded once. It gathers one table's keys (at most 3072) under its shard
// lock and yields them after releasing it, so the loop body may use the
// store. A closed store yields nothing, and an iteration stops at the next
// table once the store is closed. The iteration keeps the Store reachable,
// so a store whose last use is the loop is not closed by its cleanup while
// the loop runs.
func (s *Store) Keys(prefix string) iter.Seq[string] {
	return func(yield func(string) bool) {
		defer runtime.KeepAlive(s) // see All
		st := s.s
		if st.closed.Load() {
			return
		}
		st.iterate(prefix, func(k, _ string) bool {
			return yield(strings.Clone(k)) && !st.closed.Load()
		})
	}
}

// All iterates over the present, unexpired keys that start with prefix and
// a copy of each one's value, with [Store.Keys]'s consistency: one table at
// a time, yielding only after its shard's lock is released.
func (s *Store) All(prefix string) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		// The loop below uses only the store, not the handle, so without
		// this the handle could be collected mid-iteration and its cleanup
		// close the store under the caller's loop.
		defer runtime.KeepAlive(s)
		st := s.s
		if st.closed.Load() {
			return
		}
		st.iterate(prefix, func(k, v string) bool {
			return yield(strings.Clone(k), []byte(v)) && !st.closed.Load()
		})
	}
}

// iterate calls yield with the present, unexpired keys that start with
// prefix and their values, a table at a time (see shard.scan): each table's
// entries are gathered under its shard lock, and yielded after the lock is
// released, until yield returns false. key and value share chunks: yield
// copies what it keeps or hands out.
func (st *store) iterate(prefix string, yield func(key, value string) bool) {
	type kv struct{ k, v string }
	var buf []kv
	for i := range st.shards {
		now := st.now()
		more := true
		st.shards[i].scan(func(e entry) {
			if strings.HasPrefix(e.key, prefix) && !e.expired(now) {
				buf = append(buf, kv{e.key, e.value})
			}
		}, func() bool {
			for _, p := range buf {
				if more = yield(p.k, p.v); !more {
					break
				}
			}
			buf = buf[:0]
			now = st.now()
			return more
		})
		if !more {
			return
		}
	}
}

// CleanExpired reclaims every entry whose deadline has passed, now, instead
// of within the reaper's two ticks: each is removed, releases its quota
// slot and publishes one EventExpire.
func (s *Store) CleanExpired() {
	if !s.s.closed.Load() {
		s.s.reclaimExpired()
	}
	runtime.KeepAlive(s)
}

// reclaimExpired reclaims every due entry in every shard. Shards whose
// earliest slot is not due are skipped without locking.
func (s *store) reclaimExpired() {
	now := s.now()
	for i := range s.shards {
		sh := &s.shards[i]
		// A slot starting at tick d holds deadlines after (d-1) ticks.
		if d := sh.due.Load(); d != noTick && tickTime(d-1) < now {
			s.reclaimDue(sh, now)
		}
	}
}

// Clear removes every entry, shard by shard, without publishing events (as
// the reference). Writes that run alongside may land before or after it.
func (s *Store) Clear() {
	s.s.clear()
	runtime.KeepAlive(s)
}

func (st *store) clear() {
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		if st.closed.Load() { // see close
			sh.mu.Unlock()
			return
		}
		n := sh.reset()
		st.count.Add(int64(-n))
		sh.mu.Unlock()
	}
	// After the shards: a refill that was making tables either put them
	// before this reset their shard (removed here) or finds the shard too
	// small to keep them (see refill), so none comes back.
	st.tables.drop()
}

// Len returns the number of entries held, as the quota counts them: expired
// entries count until they are reclaimed.
func (s *Store) Len() int { return int(s.s.count.Load()) }

// MaxValueSize returns the longest value accepted, in bytes.
func (s *Store) MaxValueSize() int { return int(s.s.maxValueSize.Load()) }

// MaxKeys returns the most entries the store will hold.
func (s *Store) MaxKeys() int { return int(s.s.maxKeys.Load()) }

// SetMaxValueSize changes the longest value accepted, clamped as in
// [WithMaxValueSize]. Safe while other goroutines use the store; values
// already held stay.
func (s *Store) SetMaxValueSize(n int) { s.s.maxValueSize.Store(int64(clampValueSize(n))) }

// SetMaxKeys changes the key quota; negative n is taken as 0. Safe while
// other goroutines use the store. Lowering it below Len drops nothing: new
// keys are refused until enough are deleted or expire.
func (s *Store) SetMaxKeys(n int) { s.s.maxKeys.Store(int64(max(n, 0))) }

// IsClustered reports whether a [Backend] is installed (cluster mode).
func (s *Store) IsClustered() bool { return s.s.backend != nil }

// Subscribe returns a subscription to every event published from now on.
// Close it when done. On a closed store the subscription's Recv returns
// ErrClosed once the store's held events are drained. A subscription does
// not keep the Store reachable: a store dropped without Close is closed by
// its cleanup, and its subscriptions end with ErrClosed.
func (s *Store) Subscribe() *Subscription { return s.s.events.subscribe() }

// WatchPrefix returns a channel of the events whose key starts with prefix,
// fed by a goroutine until ctx ends or the store closes; then the channel is
// closed. Stretches lost to lag are skipped silently, as the reference's
// stream does. Read the channel promptly: a slow reader lags, and writers
// never wait for it. Like a subscription, the channel does not keep the
// Store reachable.
func (s *Store) WatchPrefix(ctx context.Context, prefix string) <-chan Event {
	st := s.s
	ch := make(chan Event)
	st.life.Lock()
	defer st.life.Unlock()
	if st.closed.Load() {
		close(ch)
		return ch
	}
	sub := st.events.subscribe()
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		watchPrefix(ctx, sub, prefix, ch)
	}()
	return ch
}

// Close stops the reaper and every WatchPrefix goroutine, ends every
// subscription (Recv returns ErrClosed once held events are drained, and
// from then on) and makes later operations return ErrClosed. A write that
// was under way when Close was called either takes effect before Close
// returns or fails with ErrClosed: once Close returns nothing in the store
// changes and no event is published. Close waits for the goroutines to
// stop; so does every call of it, concurrent or later, and each returns
// nil.
func (s *Store) Close() error {
	s.s.close()
	return nil
}

// close is Close, and the cleanup of a dropped handle.
//
// The fence: every mutation, and every event, happens under a shard lock,
// and every mutator checks closed again once it holds the lock. close sets
// closed, then takes and releases each shard lock once. A mutator that took
// a lock before close passed it has finished (and published) by then; one
// that takes it after sees closed and changes nothing. So when the pass
// ends the store is frozen, and only then is done closed: a Recv that sees
// done closed has every event there will ever be in view, and its
// ErrClosed is final.
func (s *store) close() {
	s.life.Lock()
	if !s.closed.Load() {
		s.closed.Store(true)
		for i := range s.shards {
			s.shards[i].mu.Lock()
			s.shards[i].mu.Unlock() // empty: passing the lock is the fence
		}
		if s.fed != nil {
			// The backend's stream publishes too: it must have stopped
			// before done closes the ring (see Recv).
			s.stopFeed()
			<-s.fed
		}
		close(s.done)
	}
	s.life.Unlock()
	// Every call waits, not just the first: a Close that returned while the
	// first caller's goroutines still ran would break its promise. wg.Add
	// happens only under life with closed unset, so no Add races this Wait.
	s.wg.Wait()
}
