package shardkv

// A model-based test in the manner of Go's sync/map_reference_test.go: a
// plain map with the contract's semantics (API.md) is driven side by side
// with a Store through thousands of random operations over a dozen keys, on
// a testing/synctest fake clock, and every result, Len and every event is
// compared.
//
// Reclaim timing is the one thing the model does not predict exactly: the
// reaper may reclaim an expired entry any time from its deadline on (it can
// run mid-tick when a writer wakes it), and must have reclaimed it once the
// clock reaches the tick boundary at or after its deadline. So the model
// predicts every event an operation itself publishes (its EventExpire for an
// expired entry of its key, the reclaim of a quota refusal or CleanExpired,
// its own EventSet/EventDelete) and accepts, after them, EventExpire events
// from the reaper for entries that are expired by then; it applies those to
// itself, so Len is still compared exactly.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"
)

// mdlTick is the wheel's tick as the contract states it (1 ms).
const mdlTick = int64(time.Millisecond)

type mdlEntry struct {
	val    []byte
	hasTTL bool
	when   int64 // store-clock deadline, meaningful with hasTTL
}

type mdlEvent struct {
	kind EventKind
	key  string
	val  string // EventSet only
	nilV bool   // the event's Value is nil
}

func (e mdlEvent) String() string {
	if e.kind == EventSet {
		return fmt.Sprintf("%s(%s=%q)", e.kind, e.key, e.val)
	}
	return fmt.Sprintf("%s(%s)", e.kind, e.key)
}

func mdlSet(k string, v []byte) mdlEvent {
	return mdlEvent{kind: EventSet, key: k, val: string(v)}
}

// mdlModel is the reference: a map, the limits and the clock.
type mdlModel struct {
	m       map[string]mdlEntry
	now     int64
	maxKeys int
	maxVal  int
}

// errMdlStorage stands for "a *StorageError" in expected results.
var errMdlStorage = errors.New("model: *StorageError")

func (m *mdlModel) expired(e mdlEntry) bool { return e.hasTTL && m.now >= e.when }

func (m *mdlModel) live(k string) (mdlEntry, bool) {
	e, ok := m.m[k]
	if !ok || m.expired(e) {
		return mdlEntry{}, false
	}
	return e, true
}

// reclaimKey reclaims k if it is held and expired: what any write that
// meets it does first.
func (m *mdlModel) reclaimKey(k string) []mdlEvent {
	if e, ok := m.m[k]; ok && m.expired(e) {
		delete(m.m, k)
		return []mdlEvent{{kind: EventExpire, key: k, nilV: true}}
	}
	return nil
}

// reclaimAll reclaims every expired entry (CleanExpired, quota refusal):
// one group of events in no particular order.
func (m *mdlModel) reclaimAll() []mdlEvent {
	var g []mdlEvent
	for k, e := range m.m {
		if m.expired(e) {
			delete(m.m, k)
			g = append(g, mdlEvent{kind: EventExpire, key: k, nilV: true})
		}
	}
	return g
}

// takeSlot decides whether a key absent from the map may be created: at the
// quota the store reclaims what is due and tries once more.
func (m *mdlModel) takeSlot(groups *[][]mdlEvent) bool {
	if len(m.m) < m.maxKeys {
		return true
	}
	if g := m.reclaimAll(); len(g) > 0 {
		*groups = append(*groups, g)
	}
	return len(m.m) < m.maxKeys
}

func mdlDeadline(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return now
	}
	if int64(ttl) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(ttl)
}

// mdlDueAt is the latest clock reading by which the reaper must have
// reclaimed an entry with deadline when: the tick boundary at or after it.
func mdlDueAt(when int64) int64 {
	t := when / mdlTick
	if when%mdlTick != 0 {
		t++
	}
	if t > math.MaxInt64/mdlTick {
		return math.MaxInt64
	}
	return t * mdlTick
}

func mdlSatAdd(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

func (m *mdlModel) put(k string, v []byte, withTTL bool, ttl time.Duration) (groups [][]mdlEvent, err error) {
	if !mdlValidKey(k) {
		return nil, ErrInvalidKey
	}
	if len(v) > m.maxVal {
		return nil, ErrValueTooLarge
	}
	if g := m.reclaimKey(k); g != nil {
		groups = append(groups, g)
		// the reclaimed entry's slot passes to the new one
	} else if _, held := m.m[k]; !held && !m.takeSlot(&groups) {
		return groups, ErrQuotaExceeded
	}
	e := mdlEntry{val: bytes.Clone(v)}
	if withTTL {
		e.hasTTL, e.when = true, mdlDeadline(m.now, ttl)
	}
	m.m[k] = e
	return append(groups, []mdlEvent{mdlSet(k, v)}), nil
}

func (m *mdlModel) del(k string) (groups [][]mdlEvent, existed bool, err error) {
	if !mdlValidKey(k) {
		return nil, false, ErrInvalidKey
	}
	if g := m.reclaimKey(k); g != nil {
		return [][]mdlEvent{g}, false, nil
	}
	if _, ok := m.m[k]; !ok {
		return nil, false, nil
	}
	delete(m.m, k)
	return [][]mdlEvent{{{kind: EventDelete, key: k, nilV: true}}}, true, nil
}

func mdlParse(b []byte) (int64, bool) {
	if !utf8.Valid(b) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

func (m *mdlModel) incr(k string, delta int64) (groups [][]mdlEvent, n int64, err error) {
	if !mdlValidKey(k) {
		return nil, 0, ErrInvalidKey
	}
	if e, ok := m.live(k); ok {
		cur, ok := mdlParse(e.val)
		if !ok {
			return nil, 0, errMdlStorage
		}
		n = mdlSatAdd(cur, delta)
		e.val = []byte(strconv.FormatInt(n, 10)) // the TTL stays
		m.m[k] = e
		return [][]mdlEvent{{mdlSet(k, e.val)}}, n, nil
	}
	if g := m.reclaimKey(k); g != nil {
		groups = append(groups, g)
	} else if !m.takeSlot(&groups) {
		return groups, 0, ErrQuotaExceeded
	}
	v := []byte(strconv.FormatInt(delta, 10))
	m.m[k] = mdlEntry{val: v}
	return append(groups, []mdlEvent{mdlSet(k, v)}), delta, nil
}

func (m *mdlModel) cas(k string, expected, nv []byte) (groups [][]mdlEvent, swapped bool, err error) {
	if !mdlValidKey(k) {
		return nil, false, ErrInvalidKey
	}
	if len(nv) > m.maxVal {
		return nil, false, ErrValueTooLarge
	}
	held := false
	if g := m.reclaimKey(k); g != nil {
		groups = append(groups, g)
		held = true
	}
	cur, live := m.live(k)
	held = held || live
	var match bool
	if expected == nil {
		match = !live
	} else {
		match = live && bytes.Equal(cur.val, expected)
	}
	if !match {
		return groups, false, nil
	}
	if !held && !m.takeSlot(&groups) {
		return groups, false, ErrQuotaExceeded
	}
	m.m[k] = mdlEntry{val: bytes.Clone(nv)}
	return append(groups, []mdlEvent{mdlSet(k, nv)}), true, nil
}

func (m *mdlModel) ttl(k string) (time.Duration, bool, error) {
	if !mdlValidKey(k) {
		return 0, false, ErrInvalidKey
	}
	e, ok := m.live(k)
	switch {
	case !ok:
		return 0, false, nil
	case !e.hasTTL:
		return NoTTL, true, nil
	}
	return time.Duration(e.when - m.now), true, nil
}

func (m *mdlModel) listKeys(prefix string) []string {
	keys := []string{}
	for k := range m.m {
		if _, ok := m.live(k); ok && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// The key space: a dozen valid keys, so operations collide, and a few
// invalid ones.
var (
	mdlKeys = []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k10", "a/x", "a/y"}
	mdlBad  = []string{"", "bad key", "x*y", "k\xff"}
)

func mdlValidKey(k string) bool { return slices.Contains(mdlKeys, k) }

var mdlValues = []string{
	"", "0", "1", "-1", "7", "+3", "-0", "42", "00012",
	"9223372036854775807", "-9223372036854775808", "9223372036854775808",
	"abc", " 1", "1 ", "1_000", "0x10", "\xff", "\xc3", "héllo", "∞",
}

var mdlDeltas = []int64{
	0, 1, -1, 2, 100, -100, math.MaxInt64, math.MinInt64,
	math.MaxInt64 - 1, math.MinInt64 + 1, 1 << 62, -(1 << 62),
}

var mdlPrefixes = []string{"", "k", "k1", "a/", "a/x", "nope", "bad key"}

type mdlHarness struct {
	t      *testing.T
	s      *Store
	m      *mdlModel
	sub    *Subscription
	polled context.Context // already cancelled: Recv then never blocks
	rng    *rand.Rand
	step   int
	trace  []string
	cur    string // what the current step did
	// noReaper: the store runs without its reaper, so every reclaim is
	// an operation's and the model predicts every event exactly.
	noReaper bool
}

func (h *mdlHarness) fail(format string, args ...any) {
	h.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "step %d (now=%v): %s\n", h.step, time.Duration(h.m.now), fmt.Sprintf(format, args...))
	fmt.Fprintf(&b, "failing step: %s\nlast %d steps before it:\n", h.cur, len(h.trace))
	for _, l := range h.trace {
		b.WriteString("  " + l + "\n")
	}
	fmt.Fprintf(&b, "model after the failing step (maxKeys=%d maxVal=%d):\n", h.m.maxKeys, h.m.maxVal)
	keys := make([]string, 0, len(h.m.m))
	for k := range h.m.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		e := h.m.m[k]
		if e.hasTTL {
			fmt.Fprintf(&b, "  %s=%q when=%v expired=%v\n", k, e.val, time.Duration(e.when), h.m.expired(e))
		} else {
			fmt.Fprintf(&b, "  %s=%q\n", k, e.val)
		}
	}
	h.t.Fatal(b.String())
}

func (h *mdlHarness) record(format string, args ...any) {
	h.cur = fmt.Sprintf("#%d now=%v ", h.step, time.Duration(h.m.now)) + fmt.Sprintf(format, args...)
}

func (h *mdlHarness) endStep() {
	h.trace = append(h.trace, h.cur)
	if len(h.trace) > 30 {
		h.trace = h.trace[1:]
	}
}

// checkErr compares an error with the class the model expects.
func (h *mdlHarness) checkErr(op string, got, want error) {
	h.t.Helper()
	switch {
	case want == nil:
		if got != nil {
			h.fail("%s: error %v, want nil", op, got)
		}
	case want == errMdlStorage:
		var se *StorageError
		if !errors.As(got, &se) {
			h.fail("%s: error %v, want a *StorageError", op, got)
		}
	default:
		if !errors.Is(got, want) {
			h.fail("%s: error %v, want %v", op, got, want)
		}
	}
}

// drain returns the events published so far; in the bubble, after
// synctest.Wait, they are all there.
func (h *mdlHarness) drain() []mdlEvent {
	var out []mdlEvent
	for {
		ev, err := h.sub.Recv(h.polled)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				h.fail("Recv: %v", err)
			}
			return out
		}
		out = append(out, mdlEvent{kind: ev.Kind, key: ev.Key, val: string(ev.Value), nilV: ev.Value == nil})
	}
}

func mdlSortEvents(es []mdlEvent) []mdlEvent {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b mdlEvent) int {
		return strings.Compare(a.String(), b.String())
	})
	return es
}

// settle waits for the bubble to be idle, then checks the events published
// since the last settle against groups (the step's own events, each group
// in any order within itself), accepts reaper reclaims after them, and
// checks Len and that nothing the reaper owed is left.
func (h *mdlHarness) settle(groups [][]mdlEvent) {
	h.t.Helper()
	synctest.Wait()
	got := h.drain()
	i := 0
	for _, g := range groups {
		if len(got)-i < len(g) {
			h.fail("events %v, want %v then reaper expiries", got, groups)
		}
		a, w := mdlSortEvents(got[i:i+len(g)]), mdlSortEvents(g)
		if !slices.Equal(a, w) {
			h.fail("events %v, want %v then reaper expiries", got, groups)
		}
		i += len(g)
	}
	for _, ev := range got[i:] {
		e, ok := h.m.m[ev.key]
		if h.noReaper || ev.kind != EventExpire || !ev.nilV || !ok || !h.m.expired(e) {
			h.fail("unexpected event %v (all %v, want %v then reaper expiries of expired entries)", ev, got, groups)
		}
		delete(h.m.m, ev.key)
	}
	if len(got) > 0 {
		h.cur += fmt.Sprintf(" events=%v", got)
	}
	for k, e := range h.m.m {
		if !h.noReaper && e.hasTTL && mdlDueAt(e.when) <= h.m.now {
			h.fail("%s (deadline %v) not reclaimed by the reaper at %v", k, time.Duration(e.when), time.Duration(h.m.now))
		}
	}
	if got, want := h.s.Len(), len(h.m.m); got != want {
		h.fail("Len() = %d, want %d", got, want)
	}
}

func (h *mdlHarness) key() string {
	if h.rng.IntN(40) == 0 {
		return mdlBad[h.rng.IntN(len(mdlBad))]
	}
	return mdlKeys[h.rng.IntN(len(mdlKeys))]
}

// value returns a fresh slice: the test scribbles over it after the call.
func (h *mdlHarness) value() []byte {
	if h.rng.IntN(8) == 0 {
		return bytes.Repeat([]byte{'v'}, h.rng.IntN(26))
	}
	return []byte(mdlValues[h.rng.IntN(len(mdlValues))])
}

func (h *mdlHarness) ttl() time.Duration {
	switch r := h.rng.IntN(20); {
	case r == 0:
		return 0
	case r == 1:
		return -time.Nanosecond
	case r == 2:
		return -time.Millisecond
	case r == 3:
		return time.Nanosecond
	case r < 7:
		return time.Duration(1 + h.rng.Int64N(int64(time.Millisecond)))
	case r < 9:
		return time.Duration(1+h.rng.IntN(5)) * time.Millisecond
	case r < 17:
		return time.Duration(1 + h.rng.Int64N(int64(5*time.Millisecond)))
	default:
		// the last two saturate the deadline (the second once the clock
		// passes an hour)
		return []time.Duration{100 * time.Millisecond, time.Second, time.Hour, math.MaxInt64, math.MaxInt64 - time.Hour}[h.rng.IntN(5)]
	}
}

// advance picks how far to move the clock.
func (h *mdlHarness) advance() time.Duration {
	switch r := h.rng.IntN(20); {
	case r < 2:
		return 0
	case r < 6:
		return time.Duration(h.rng.Int64N(int64(time.Millisecond)))
	case r < 10:
		return time.Duration(h.rng.Int64N(int64(4*time.Millisecond) + 1))
	case r < 13:
		return time.Duration(1+h.rng.IntN(4)) * time.Millisecond
	case r < 15: // to the next tick boundary exactly
		return time.Duration(mdlTick - h.m.now%mdlTick)
	case r < 19: // to (or just around) the nearest deadline
		next := int64(math.MaxInt64)
		for _, e := range h.m.m {
			if e.hasTTL && e.when > h.m.now {
				next = min(next, e.when)
			}
		}
		if next-h.m.now > int64(time.Minute) {
			return time.Millisecond
		}
		return time.Duration(next - h.m.now + int64(h.rng.IntN(3)) - 1)
	default:
		return []time.Duration{70 * time.Millisecond, time.Second, 5 * time.Second, 5 * time.Minute, 2 * time.Hour}[h.rng.IntN(5)]
	}
}

func (h *mdlHarness) checkState() {
	h.t.Helper()
	for _, k := range mdlKeys {
		v, found, err := h.s.Get(k)
		e, live := h.m.live(k)
		if err != nil || found != live || (live && !bytes.Equal(v, e.val)) {
			h.fail("state check: Get(%s) = %q, %v, %v; want %q, %v", k, v, found, err, e.val, live)
		}
		ttl, found, err := h.s.TTL(k)
		wttl, wfound, _ := h.m.ttl(k)
		if err != nil || ttl != wttl || found != wfound {
			h.fail("state check: TTL(%s) = %v, %v, %v; want %v, %v", k, ttl, found, err, wttl, wfound)
		}
	}
	keys, err := h.s.ListKeys("")
	slices.Sort(keys)
	if want := h.m.listKeys(""); err != nil || !slices.Equal(keys, want) {
		h.fail("state check: ListKeys(\"\") = %q, %v; want %q", keys, err, want)
	}
	var iterated []string
	for k := range h.s.Keys("") {
		iterated = append(iterated, k)
	}
	slices.Sort(iterated)
	if !slices.Equal(iterated, keys) {
		h.fail("state check: Keys(\"\") = %q, ListKeys = %q", iterated, keys)
	}
}

// stepOp runs one random operation on both sides and returns the events the
// model predicts for it.
func (h *mdlHarness) stepOp() [][]mdlEvent {
	m, s := h.m, h.s
	switch r := h.rng.IntN(100); {
	case r < 10:
		k := h.key()
		v, found, err := s.Get(k)
		h.record("Get(%q) = %q, %v, %v", k, v, found, err)
		var werr error
		if !mdlValidKey(k) {
			werr = ErrInvalidKey
		}
		h.checkErr("Get", err, werr)
		e, live := m.live(k)
		if found != live || !bytes.Equal(v, e.val) {
			h.fail("Get(%q) = %q, %v; want %q, %v", k, v, found, e.val, live)
		}
		for i := range v {
			v[i] ^= 0xff // the caller's copy: the store must not care
		}
	case r < 15:
		k := h.key()
		v, found, err := s.GetString(k)
		h.record("GetString(%q) = %q, %v, %v", k, v, found, err)
		e, live := m.live(k)
		switch {
		case !mdlValidKey(k):
			h.checkErr("GetString", err, ErrInvalidKey)
		case live && !utf8.Valid(e.val):
			h.checkErr("GetString", err, errMdlStorage)
		default:
			h.checkErr("GetString", err, nil)
			if found != live || v != string(e.val) {
				h.fail("GetString(%q) = %q, %v; want %q, %v", k, v, found, e.val, live)
			}
		}
	case r < 27:
		k, v := h.key(), h.value()
		err := s.Set(k, v)
		h.record("Set(%q, %q) = %v", k, v, err)
		groups, werr := m.put(k, v, false, 0)
		h.checkErr("Set", err, werr)
		for i := range v {
			v[i] = '#'
		}
		return groups
	case r < 39:
		k, v, ttl := h.key(), h.value(), h.ttl()
		err := s.SetWithTTL(k, v, ttl)
		h.record("SetWithTTL(%q, %q, %v) = %v", k, v, ttl, err)
		groups, werr := m.put(k, v, true, ttl)
		h.checkErr("SetWithTTL", err, werr)
		for i := range v {
			v[i] = '#'
		}
		return groups
	case r < 46:
		k := h.key()
		existed, err := s.Delete(k)
		h.record("Delete(%q) = %v, %v", k, existed, err)
		groups, wexisted, werr := m.del(k)
		h.checkErr("Delete", err, werr)
		if existed != wexisted {
			h.fail("Delete(%q) = %v, want %v", k, existed, wexisted)
		}
		return groups
	case r < 51:
		k := h.key()
		got := s.Exists(k)
		h.record("Exists(%q) = %v", k, got)
		if _, live := m.live(k); got != live {
			h.fail("Exists(%q) = %v, want %v", k, got, live)
		}
	case r < 55:
		p := mdlPrefixes[h.rng.IntN(len(mdlPrefixes))]
		keys, err := s.ListKeys(p)
		slices.Sort(keys)
		h.record("ListKeys(%q) = %q, %v", p, keys, err)
		h.checkErr("ListKeys", err, nil)
		if want := m.listKeys(p); !slices.Equal(keys, want) {
			h.fail("ListKeys(%q) = %q, want %q", p, keys, want)
		}
	case r < 65:
		k, d := h.key(), mdlDeltas[h.rng.IntN(len(mdlDeltas))]
		n, err := s.Increment(k, d)
		h.record("Increment(%q, %d) = %d, %v", k, d, n, err)
		groups, wn, werr := m.incr(k, d)
		h.checkErr("Increment", err, werr)
		if werr == nil && n != wn {
			h.fail("Increment(%q, %d) = %d, want %d", k, d, n, wn)
		}
		return groups
	case r < 75:
		k, nv := h.key(), h.value()
		var exp []byte
		switch c := h.rng.IntN(10); {
		case c < 3: // nil: the key must be absent
		case c < 4:
			exp = []byte{}
		case c < 7: // what the model holds, live or not
			if e, ok := m.m[k]; ok {
				exp = bytes.Clone(e.val)
			} else {
				exp = h.value()
			}
		default:
			exp = h.value()
		}
		swapped, err := s.CompareAndSwap(k, exp, nv)
		if exp == nil {
			h.record("CompareAndSwap(%q, nil, %q) = %v, %v", k, nv, swapped, err)
		} else {
			h.record("CompareAndSwap(%q, %q, %q) = %v, %v", k, exp, nv, swapped, err)
		}
		groups, wswapped, werr := m.cas(k, exp, nv)
		h.checkErr("CompareAndSwap", err, werr)
		if swapped != wswapped {
			h.fail("CompareAndSwap = %v, want %v", swapped, wswapped)
		}
		for i := range nv {
			nv[i] = '#'
		}
		return groups
	case r < 76:
		s.Clear()
		h.record("Clear()")
		clear(m.m)
	case r < 79:
		s.CleanExpired()
		h.record("CleanExpired()")
		if g := m.reclaimAll(); len(g) > 0 {
			return [][]mdlEvent{g}
		}
	case r < 81:
		n := 4 + h.rng.IntN(10)
		if h.rng.IntN(5) == 0 {
			n = h.rng.IntN(3) - 1
		}
		s.SetMaxKeys(n)
		m.maxKeys = max(n, 0)
		h.record("SetMaxKeys(%d)", n)
		if got := s.MaxKeys(); got != m.maxKeys {
			h.fail("MaxKeys() = %d, want %d", got, m.maxKeys)
		}
	case r < 83:
		n := []int{20, 24, 64}[h.rng.IntN(3)]
		if h.rng.IntN(4) == 0 {
			n = []int{-1, 0, 3, 8}[h.rng.IntN(4)]
		}
		s.SetMaxValueSize(n)
		m.maxVal = max(n, 0)
		h.record("SetMaxValueSize(%d)", n)
		if got := s.MaxValueSize(); got != m.maxVal {
			h.fail("MaxValueSize() = %d, want %d", got, m.maxVal)
		}
	case r < 88:
		k := h.key()
		ttl, found, err := s.TTL(k)
		h.record("TTL(%q) = %v, %v, %v", k, ttl, found, err)
		wttl, wfound, werr := m.ttl(k)
		h.checkErr("TTL", err, werr)
		if ttl != wttl || found != wfound {
			h.fail("TTL(%q) = %v, %v; want %v, %v", k, ttl, found, wttl, wfound)
		}
	default:
		d := h.advance()
		h.record("advance %v", d)
		time.Sleep(d)
		m.now += int64(d)
	}
	return nil
}

func runModel(t *testing.T, seed uint64, steps int, opts ...Option) {
	const maxKeys, maxVal = 8, 20
	opts = append([]Option{WithMaxKeys(maxKeys), WithMaxValueSize(maxVal), WithWatchCapacity(1 << 12)}, opts...)
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := New(opts...)
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := &mdlHarness{
		t:      t,
		s:      s,
		m:      &mdlModel{m: map[string]mdlEntry{}, maxKeys: maxKeys, maxVal: maxVal},
		sub:    sub,
		polled: ctx,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),

		noReaper: o.noReaper,
	}
	for h.step = 0; h.step < steps; h.step++ {
		var groups [][]mdlEvent
		if h.step == steps/2 {
			// Once a run, far beyond the wheel's top level (about 139
			// years at a 1 ms tick), where saturated deadlines wait on
			// the overflow list.
			d := 150 * 365 * 24 * time.Hour
			h.record("advance %v", d)
			time.Sleep(d)
			h.m.now += int64(d)
		} else {
			groups = h.stepOp()
		}
		h.settle(groups)
		if h.step%25 == 0 {
			h.checkState()
		}
		h.endStep()
	}
	h.checkState()
}

func TestModel(t *testing.T) {
	configs := []struct {
		name string
		opts []Option
	}{
		{"default-shards", nil},
		{"1-shard", []Option{WithShards(1)}},
		{"4-shards", []Option{WithShards(4)}},
		// Without the reaper expired entries pile up until an operation
		// meets them: the write, quota and CleanExpired reclaims are then
		// exercised far more, and every event is predicted.
		{"no-reaper", []Option{WithShards(4), func(o *options) { o.noReaper = true }}},
	}
	for _, c := range configs {
		for seed := uint64(1); seed <= 2; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", c.name, seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { runModel(t, seed, 4000, c.opts...) })
			})
		}
	}
}

// More expired entries than the reaper handles under one hold of a shard
// lock (reclaimBudget) all come due at once: every one is reclaimed exactly
// once, by the reaper or by a quota refusal's reclaim.
func TestReclaimLargeBatches(t *testing.T) {
	const n = 3*reclaimBudget + 17
	mdlKeyOf := func(i int) string { return "b/" + strconv.Itoa(i) }
	check := func(t *testing.T, sub *Subscription, want int, then ...Event) {
		t.Helper()
		seen := map[string]bool{}
		for range want {
			ev, err := sub.Recv(context.Background())
			if err != nil || ev.Kind != EventExpire || seen[ev.Key] {
				t.Fatalf("Recv = %v, %v after %d expiries", ev, err, len(seen))
			}
			seen[ev.Key] = true
		}
		for _, w := range then {
			ev, err := sub.Recv(context.Background())
			if err != nil || ev.Key != w.Key || ev.Kind != w.Kind || !bytes.Equal(ev.Value, w.Value) {
				t.Fatalf("Recv = %v, %v; want %v", ev, err, w)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if ev, err := sub.Recv(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("extra event %v, %v", ev, err)
		}
	}
	t.Run("reaper", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := New(WithShards(1), WithWatchCapacity(2*n))
			defer s.Close()
			sub := s.Subscribe()
			defer sub.Close()
			for i := range n {
				// deadlines spread over (1ms, 2ms], a third of them at 2ms
				ttl := time.Millisecond + time.Duration(1+i%(n/3*2+1))*time.Microsecond/2
				if i%3 == 0 {
					ttl = 2 * time.Millisecond
				}
				if err := s.SetWithTTL(mdlKeyOf(i), []byte("v"), ttl); err != nil {
					t.Fatal(err)
				}
				if _, err := sub.Recv(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(2 * time.Millisecond)
			synctest.Wait()
			if got := s.Len(); got != 0 {
				t.Fatalf("Len() = %d after every deadline passed, want 0", got)
			}
			check(t, sub, n)
		})
	})
	t.Run("quota", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := New(WithShards(1), WithMaxKeys(n), WithWatchCapacity(2*n))
			defer s.Close()
			time.Sleep(time.Millisecond / 2) // mid-tick: the reaper waits for 1ms
			sub := s.Subscribe()
			defer sub.Close()
			for i := range n {
				if err := s.SetWithTTL(mdlKeyOf(i), []byte("v"), 0); err != nil {
					t.Fatal(err)
				}
				if _, err := sub.Recv(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			synctest.Wait()
			if got := s.Len(); got != n {
				t.Fatalf("Len() = %d before the tick, want %d (expired, not yet reclaimed)", got, n)
			}
			if err := s.Set("new", []byte("x")); err != nil {
				t.Fatalf("Set at a quota full of expired entries: %v", err)
			}
			if got := s.Len(); got != 1 {
				t.Fatalf("Len() = %d, want 1", got)
			}
			synctest.Wait()
			check(t, sub, n, Event{Key: "new", Kind: EventSet, Value: []byte("x"), Op: "set", New: true})
		})
	})
}
