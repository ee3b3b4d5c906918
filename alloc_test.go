package shardkv

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// noReaper is the test-only option that starts no reaper goroutine, so that
// nothing but the measured operation allocates while allocations are counted.
func noReaper(o *options) { o.noReaper = true }

// mallocs runs op n times and returns the heap allocations made meanwhile
// (runtime.MemStats.Mallocs), unrounded: shardkvtest.Mallocs, which an
// internal test cannot import (shardkvtest imports this package). Like
// testing.AllocsPerRun it sets GOMAXPROCS(1) for the measurement; unlike
// it, it makes no warm-up call and does not divide.
func mallocs(n int, op func()) uint64 {
	return memDelta(n, op, func(m *runtime.MemStats) uint64 { return m.Mallocs })
}

// allocatedBytes returns the bytes op allocates in n calls, counted as
// mallocs counts allocations: by size class, so a 76-byte object counts 80.
func allocatedBytes(n int, op func()) uint64 {
	return memDelta(n, op, func(m *runtime.MemStats) uint64 { return m.TotalAlloc })
}

// memDelta returns how much the MemStats counter field grows over n calls
// of op, on one P.
func memDelta(n int, op func(), field func(*runtime.MemStats) uint64) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		op()
	}
	runtime.ReadMemStats(&after)
	return field(&after) - field(&before)
}

// allocAttempts bounds the measurements of one case. Mallocs counts every
// goroutine's allocations, so something outside the test (the runtime, a
// goroutine of an earlier test winding down) can add to a total, never take
// from it: a total above the expected one is measured again, and the case
// fails only if every attempt is above it. A total below it fails at once.
// An operation that allocates more than it should on every call, or on
// every other call, is over on every attempt.
const allocAttempts = 3

// requireAllocsIn asserts that op, after one warm-up call, makes between
// lo and hi allocations in runs calls (want says what that range means,
// for the message): the shared check of the helpers below.
func requireAllocsIn(t *testing.T, name string, runs int, lo, hi uint64, want string, op func()) {
	t.Helper()
	requireCountIn(t, name, "allocations", mallocs, runs, lo, hi, want, op)
}

// requireCountIn is requireAllocsIn for any count of what op allocates
// (count: mallocs or allocatedBytes), called what for the message.
func requireCountIn(t *testing.T, name, what string, count func(int, func()) uint64, runs int, lo, hi uint64, want string, op func()) {
	t.Helper()
	op() // warm-up, as AllocsPerRun does
	var totals []uint64
	for range allocAttempts {
		got := count(runs, op)
		totals = append(totals, got)
		if got <= hi {
			break
		}
	}
	if got := totals[len(totals)-1]; got < lo || got > hi {
		t.Errorf("%s: %v %s in %d runs (attempts: %v), want %s", name, got, what, runs, totals, want)
	}
}

// requireAllocs asserts that op makes exactly runs*want allocations in
// runs calls: not testing.AllocsPerRun's rounded-down mean, under which
// "want 1" passes at 1.99.
func requireAllocs(t *testing.T, name string, runs int, want uint64, op func()) {
	t.Helper()
	n := uint64(runs) * want
	requireAllocsIn(t, name, runs, n, n, fmt.Sprintf("exactly %d (%d a run)", n, want), op)
}

// amortizedShare bounds what an operation that allocates nothing per call
// may allocate now and then: writes append their records to a shard's
// chunks, so a write allocates only when it starts a chunk (the chunk, and
// the chunk directory republished), a table grows or splits, or compaction
// drops a chunk. At most one allocation per amortizedShare calls; an
// operation that allocated on every call, or every other, is far over.
const amortizedShare = 20

// requireAmortizedAllocs asserts that op makes fewer than one allocation
// per amortizedShare calls, over runs calls.
func requireAmortizedAllocs(t *testing.T, name string, runs int, op func()) {
	t.Helper()
	hi := uint64(runs / amortizedShare)
	requireAllocsIn(t, name, runs, 0, hi, fmt.Sprintf("at most %d (none a run, amortized)", hi), op)
}

// TestAllocations pins what each hot operation allocates, summed over many
// calls: reads exactly the returned copy (Get, GetString; none for
// AppendValue with room, View, Exists and TTL), writes nothing per call
// (amortized: see amortizedShare), and no event work without a subscriber.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	s := New(noReaper)
	defer s.Close()
	v := make([]byte, 64)
	if err := s.Set("k", v); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWithTTL("t", v, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Increment("n", 1_000_000); err != nil { // past one-byte strings, which Go does not allocate
		t.Fatal(err)
	}
	buf := make([]byte, 0, 128)
	prefetched := []string{"k", "t", "n", "absent", "", "\xff"}
	tests := []struct {
		name      string
		want      uint64 // allocations per call, exactly
		amortized bool   // instead: none per call, amortized
		op        func()
	}{
		{"Get", 1, false, func() { s.Get("k") }},
		{"Get/ttl", 1, false, func() { s.Get("t") }},
		{"Get/miss", 0, false, func() { s.Get("absent") }},
		{"GetString", 1, false, func() { s.GetString("k") }}, // a copy: the stored bytes share a chunk
		{"AppendValue", 0, false, func() { s.AppendValue(buf[:0], "k") }},
		{"View", 0, false, func() { s.View("t", func([]byte) {}) }},
		{"Exists", 0, false, func() { s.Exists("t") }},
		{"TTL", 0, false, func() { s.TTL("t") }},
		{"Set/overwrite", 0, true, func() { s.Set("k", v) }},
		{"SetWithTTL/overwrite", 0, true, func() { s.SetWithTTL("t", v, time.Hour) }},
		// A deleted TTL key's timer goes back to the shard's pool, and the
		// next key that gets a TTL takes it.
		{"SetWithTTL/new-key-after-delete", 0, true, func() { s.Delete("t2"); s.SetWithTTL("t2", v, time.Hour) }},
		{"Increment", 0, true, func() { s.Increment("n", 1) }},
		{"CompareAndSwap/hit", 0, true, func() { s.CompareAndSwap("k", v, v) }},
		{"CompareAndSwap/miss", 0, false, func() { s.CompareAndSwap("k", []byte("x"), v) }},
		{"Delete/absent", 0, false, func() { s.Delete("absent") }},
		{"publish/no-subscriber", 0, false, func() { s.s.events.publish("k", EventSet, "v") }},
		{"Prefetch", 0, false, func() { s.Prefetch(prefetched...) }},
	}
	for _, tc := range tests {
		if tc.amortized {
			requireAmortizedAllocs(t, tc.name, 10000, tc.op)
		} else {
			requireAllocs(t, tc.name, 1000, tc.want, tc.op)
		}
	}
}

// TestAllocations_SetNewKeys: a Set of a new key allocates nothing of its
// own; amortized, it pays for the chunks its record fills and the table
// growths and splits it causes (see amortizedShare).
func TestAllocations_SetNewKeys(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	const n = 20000
	keys := make([]string, n) // built before measuring
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%06d", i)
	}
	v := make([]byte, 64)
	var totals []uint64
	// Each attempt's store is kept reachable to the end, so that no
	// collection of it runs its cleanup (which closes it) while a later
	// attempt counts.
	var made []*Store
	defer func() {
		for _, s := range made {
			s.Close()
		}
	}()
	for range allocAttempts {
		s := New(WithShards(1), WithMaxKeys(n), noReaper)
		made = append(made, s)
		i := 0
		got := mallocs(n, func() {
			if err := s.Set(keys[i], v); err != nil {
				t.Fatal(err)
			}
			i++
		})
		if s.Len() != n {
			t.Fatalf("the store holds %d keys, want %d", s.Len(), n)
		}
		totals = append(totals, got)
		if got <= n/amortizedShare {
			break
		}
	}
	t.Logf("%d Sets of new keys: %v allocations", n, totals)
	if got := totals[len(totals)-1]; got > n/amortizedShare {
		t.Errorf("%d Sets of new keys made %d allocations (attempts: %v), want at most %d (none a Set, amortized)",
			n, got, totals, n/amortizedShare)
	}
}

// TestAllocations_KeyFromBytes: a key of up to 32 bytes converted from a
// []byte for the call (s.Get(string(b)), as a network server does) is not
// allocated (Go converts it on the stack when it does not escape): no
// method lets its key escape, under ValidateKey and WithBinaryKeys. A custom
// validator costs one copy of the key per call that validates (a write, a
// read that misses), and none on a read that hits.
func TestAllocations_KeyFromBytes(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	custom := func(key string) error {
		if len(key) > 64 {
			return ErrInvalidKey
		}
		return nil
	}
	for _, rule := range []struct {
		name     string
		opt      Option
		validate uint64 // allocations a validation costs
	}{
		{"ValidateKey", WithKeyValidator(nil), 0},
		{"ValidateKey/explicit", WithKeyValidator(ValidateKey), 0},
		{"WithBinaryKeys", WithBinaryKeys(1 << 20), 0},
		{"custom", WithKeyValidator(custom), 1},
	} {
		t.Run(rule.name, func(t *testing.T) {
			s := New(rule.opt, noReaper)
			defer s.Close()
			v := make([]byte, 64)
			// 32 bytes, the longest conversion Go keeps on the stack.
			k := []byte("key:0000000000000000000000000001")
			miss := []byte("key:0000000000000000000000000002")
			if err := s.Set(string(k), v); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 0, 128)
			for _, tc := range []struct {
				name string
				want uint64
				op   func()
			}{
				{"Get", 1, func() { s.Get(string(k)) }}, // the value's copy
				{"Get/miss", rule.validate, func() { s.Get(string(miss)) }},
				{"AppendValue", 0, func() { s.AppendValue(buf[:0], string(k)) }},
				{"View", 0, func() { s.View(string(k), func([]byte) {}) }},
				{"Exists", 0, func() { s.Exists(string(k)) }},
				{"TTL", 0, func() { s.TTL(string(k)) }},
				{"Delete/absent", rule.validate, func() { s.Delete(string(miss)) }},
				{"CompareAndSwap/miss", rule.validate, func() { s.CompareAndSwap(string(k), []byte("x"), v) }},
			} {
				requireAllocs(t, tc.name, 1000, tc.want, tc.op)
			}
			writes := []struct {
				name string
				op   func()
			}{
				{"Set", func() { s.Set(string(k), v) }},
				{"SetWithTTL", func() { s.SetWithTTL(string(k), v, time.Hour) }},
				{"Increment", func() { s.Increment(string(miss), 1) }},
				{"Update", func() {
					s.Update(string(k), func(e Entry) Change { return Change{Action: Put, Value: e.Value, KeepTTL: true} })
				}},
			}
			for _, w := range writes {
				if rule.validate == 0 {
					requireAmortizedAllocs(t, w.name, 10000, w.op)
					continue
				}
				// One copy a call, and the writes' amortized share.
				requireAllocsIn(t, w.name, 10000, 10000, 10000+10000/amortizedShare,
					fmt.Sprintf("10000 (the key's copy) and at most %d more", 10000/amortizedShare), w.op)
			}
		})
	}
}
