package fuzz

// The model FuzzOps compares the store with, in the manner of the standard
// library's sync/map_reference_test.go: a plain map of entries with
// deadlines, the two limits, the clock, and the queue of events a
// subscriber opened at the start has yet to receive. It is written from
// the contract (/work/shared/API.md and the README's "Where shardkv differs
// from the reference"), not from the store's code.

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shardkv/shardkv"
)

const tick = int64(time.Millisecond) // the wheel's resolution, as the contract states it

type mEntry struct {
	val    []byte
	hasTTL bool
	when   int64  // store-clock deadline (ns), with hasTTL
	level  string // the wheel level its TTL called for, for corpus coverage
}

// mEvent is an event the subscriber must receive. Events of one batch (the
// expiries one reclaim pass makes) may come in any order among themselves.
type mEvent struct {
	kind  shardkv.EventKind
	key   string
	val   []byte
	op    int // the operation that caused it
	batch int
}

func (e mEvent) String() string { return evString(e.kind, e.key, e.val) }

// evString renders an event for people (long keys and values shortened);
// p.event renders it in p's form.
func evString(kind shardkv.EventKind, key string, val []byte) string {
	return showFmt.event(kind, key, val)
}

func (p fmtr) event(kind shardkv.EventKind, key string, val []byte) string {
	if kind == shardkv.EventSet {
		return kind.String() + "(" + p.key(key) + "=" + p.val(val) + ")"
	}
	if val != nil {
		return kind.String() + "(" + p.key(key) + ", non-nil value " + p.val(val) + ")"
	}
	return kind.String() + "(" + p.key(key) + ")"
}

// errStorage stands for "a *StorageError" in the model's results.
var errStorage = errors.New("*StorageError")

type model struct {
	m         map[string]mEntry
	now       int64
	maxKeys   int
	maxVal    int
	closed    bool
	validator bool

	pending []mEvent
	op      int // the operation being applied, for the events it causes
	batches int
	cov     *coverage
}

func newModel(c config, cov *coverage) *model {
	return &model{m: map[string]mEntry{}, maxKeys: max(c.maxKeys, 0), maxVal: max(c.maxVal, 0), validator: c.validator, cov: cov}
}

// validKey is the contract's key rule, stated independently of the store's
// ValidateKey: non-empty, at most 1024 bytes of valid UTF-8, every rune a
// Unicode letter, number or Other_Alphabetic, or one of "-_./:". With the
// custom validator, every key not starting with "b" is valid.
func (m *model) validKey(k string) bool {
	if m.validator {
		return !strings.HasPrefix(k, "b")
	}
	return keyRule(k)
}

func (m *model) expired(e mEntry) bool { return e.hasTTL && m.now >= e.when }

func (m *model) live(k string) (mEntry, bool) {
	e, ok := m.m[k]
	if !ok || m.expired(e) {
		return mEntry{}, false
	}
	return e, true
}

func (m *model) emit(kind shardkv.EventKind, k string, v []byte) {
	m.batches++
	m.pending = append(m.pending, mEvent{kind: kind, key: k, val: v, op: m.op, batch: m.batches})
}

// reclaim removes the given expired keys in one batch of EventExpire.
func (m *model) reclaim(keys []string, why string) {
	if len(keys) == 0 {
		return
	}
	slices.Sort(keys)
	m.batches++
	for _, k := range keys {
		if m.cov != nil {
			m.cov.hit("expire by " + why + " at " + m.m[k].level)
		}
		delete(m.m, k)
		m.pending = append(m.pending, mEvent{kind: shardkv.EventExpire, key: k, op: m.op, batch: m.batches})
	}
}

// reclaimDue reclaims every entry whose deadline is <= now (CleanExpired,
// a quota refusal).
func (m *model) reclaimDue(why string) {
	var keys []string
	for k, e := range m.m {
		if m.expired(e) {
			keys = append(keys, k)
		}
	}
	m.reclaim(keys, why)
}

// meet is what a write does first: an expired entry of its key is reclaimed
// (EventExpire) and its quota slot passed to the write. held reports that
// the key held a slot (live or just reclaimed); found that it was live.
func (m *model) meet(k string) (e mEntry, found, held bool) {
	e, held = m.m[k]
	if held && m.expired(e) {
		if m.cov != nil {
			m.cov.hit("a write meets an expired entry")
		}
		m.reclaim([]string{k}, "write")
		return mEntry{}, false, true
	}
	return e, held, held
}

// admit decides whether a new key may be created: at the quota every due
// entry is reclaimed and the key tried once more.
func (m *model) admit() bool {
	if len(m.m) < m.maxKeys {
		return true
	}
	m.reclaimDue("quota")
	ok := len(m.m) < m.maxKeys
	if ok && m.cov != nil {
		m.cov.hit("a key admitted after a quota reclaim")
	}
	return ok
}

func deadline(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return now
	}
	if int64(ttl) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(ttl)
}

// dueAt is the tick boundary at or after a deadline: by then the reaper has
// reclaimed the entry.
func dueAt(when int64) int64 {
	t := when / tick
	if when%tick != 0 {
		t++
	}
	if t > math.MaxInt64/tick {
		return math.MaxInt64
	}
	return t * tick
}

// levelOf names the wheel level a TTL calls for, seen from a wheel at the
// current tick: level L holds deadlines under 64^(L+1) ticks.
func levelOf(ttl time.Duration) string {
	if ttl <= 0 {
		return "expired"
	}
	ticks := dueAt(int64(ttl)) / tick
	for l := 0; l < 7; l++ {
		if ticks < 1<<(6*(l+1)) {
			return "L" + strconv.Itoa(l)
		}
	}
	return "overflow"
}

func satAdd(a, b int64) int64 {
	s := new(big.Int).Add(big.NewInt(a), big.NewInt(b))
	switch {
	case s.IsInt64():
		return s.Int64()
	case s.Sign() > 0:
		return math.MaxInt64
	}
	return math.MinInt64
}

// The operations. Each returns what the store must return.

func (m *model) get(k string) ([]byte, bool, error) {
	if m.closed {
		return nil, false, shardkv.ErrClosed
	}
	if !m.validKey(k) {
		return nil, false, shardkv.ErrInvalidKey
	}
	e, ok := m.live(k)
	if !ok {
		return nil, false, nil
	}
	return e.val, true, nil
}

func (m *model) getString(k string) (string, bool, error) {
	v, ok, err := m.get(k)
	if ok && !utf8.Valid(v) {
		return "", false, errStorage
	}
	return string(v), ok, err
}

func (m *model) put(k string, v []byte, withTTL bool, ttl time.Duration) error {
	if m.closed {
		return shardkv.ErrClosed
	}
	if !m.validKey(k) {
		return shardkv.ErrInvalidKey
	}
	if len(v) > m.maxVal {
		return shardkv.ErrValueTooLarge
	}
	if _, _, held := m.meet(k); !held && !m.admit() {
		return shardkv.ErrQuotaExceeded
	}
	e := mEntry{val: append([]byte{}, v...)}
	if withTTL {
		e.hasTTL, e.when, e.level = true, deadline(m.now, ttl), levelOf(ttl)
	}
	m.m[k] = e
	m.emit(shardkv.EventSet, k, e.val)
	return nil
}

func (m *model) del(k string) (bool, error) {
	if m.closed {
		return false, shardkv.ErrClosed
	}
	if !m.validKey(k) {
		return false, shardkv.ErrInvalidKey
	}
	if _, found, _ := m.meet(k); !found {
		return false, nil
	}
	delete(m.m, k)
	m.emit(shardkv.EventDelete, k, nil)
	return true, nil
}

func (m *model) exists(k string) bool {
	if m.closed {
		return false
	}
	_, ok := m.live(k)
	return ok
}

func (m *model) ttl(k string) (time.Duration, bool, error) {
	if m.closed {
		return 0, false, shardkv.ErrClosed
	}
	if !m.validKey(k) {
		return 0, false, shardkv.ErrInvalidKey
	}
	e, ok := m.live(k)
	switch {
	case !ok:
		return 0, false, nil
	case !e.hasTTL:
		return shardkv.NoTTL, true, nil
	}
	return time.Duration(e.when - m.now), true, nil
}

func (m *model) listKeys(prefix string) ([]string, error) {
	if m.closed {
		return nil, shardkv.ErrClosed
	}
	keys := []string{}
	for k := range m.m {
		if _, ok := m.live(k); ok && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (m *model) incr(k string, delta int64) (int64, error) {
	if m.closed {
		return 0, shardkv.ErrClosed
	}
	if !m.validKey(k) {
		return 0, shardkv.ErrInvalidKey
	}
	e, found, held := m.meet(k)
	if found {
		cur, err := strconv.ParseInt(string(e.val), 10, 64)
		if err != nil {
			return 0, errStorage
		}
		n := satAdd(cur, delta)
		if m.cov != nil && ((delta > 0 && n == math.MaxInt64 && cur+delta != n) || (delta < 0 && n == math.MinInt64 && cur+delta != n)) {
			m.cov.hit("Increment saturates")
		}
		e.val = strconv.AppendInt(nil, n, 10) // the TTL stays
		m.m[k] = e
		m.emit(shardkv.EventSet, k, e.val)
		return n, nil
	}
	if !held && !m.admit() {
		return 0, shardkv.ErrQuotaExceeded
	}
	v := strconv.AppendInt(nil, delta, 10)
	m.m[k] = mEntry{val: v}
	m.emit(shardkv.EventSet, k, v)
	return delta, nil
}

func (m *model) cas(k string, expected, nv []byte) (bool, error) {
	if m.closed {
		return false, shardkv.ErrClosed
	}
	if !m.validKey(k) {
		return false, shardkv.ErrInvalidKey
	}
	if len(nv) > m.maxVal {
		return false, shardkv.ErrValueTooLarge
	}
	e, found, held := m.meet(k)
	match := !found
	if expected != nil {
		match = found && bytes.Equal(e.val, expected)
	}
	if !match {
		return false, nil
	}
	if !held && !m.admit() {
		return false, shardkv.ErrQuotaExceeded
	}
	v := append([]byte{}, nv...)
	m.m[k] = mEntry{val: v}
	m.emit(shardkv.EventSet, k, v)
	return true, nil
}

func (m *model) clear() {
	if !m.closed {
		clear(m.m)
	}
}

func (m *model) cleanExpired() {
	if !m.closed {
		m.reclaimDue("CleanExpired")
	}
}

// nextDue is the earliest tick boundary at which the reaper owes a reclaim.
func (m *model) nextDue() (int64, bool) {
	next, ok := int64(math.MaxInt64), false
	for _, e := range m.m {
		if e.hasTTL {
			next, ok = min(next, dueAt(e.when)), true
		}
	}
	return next, ok
}

// reap is the reaper's pass at a tick boundary: everything due by now.
func (m *model) reap() {
	var keys []string
	for k, e := range m.m {
		if e.hasTTL && dueAt(e.when) <= m.now {
			keys = append(keys, k)
		}
	}
	m.reclaim(keys, "reaper")
}
