// Package shardkvtest is the behavioural table a [shardkv.Store] passes
// through its Context methods, whatever serves them: the local store, or a
// [shardkv.Backend] in cluster mode. A backend's tests call [RunBackend]
// with a function that builds a store on a fresh, empty instance of the
// backend; passing the table means the backend keeps the store's contract
// for values, misses, deletes, listing, Increment, CompareAndSwap, TTLs and
// (for a [shardkv.WatchBackend]) events.
//
// The table uses only keys that [shardkv.ValidateKey] accepts and values no
// longer than [Options.MaxValueSize], so that a local store (which checks
// both) and a backend (which passes them through) are held to the same
// cases.
package shardkvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shardkv/shardkv"
)

// Options adapts the table to a backend's limits. The zero value suits the
// local store.
type Options struct {
	// TTLUnit is the granularity of the backend's TTLs: the table's TTLs
	// are whole multiples of it (one unit for the entries it waits to see
	// expire, an hour for those that must outlive the test). Zero means
	// 250 ms. A backend whose TTLs are whole seconds (etcd's leases) sets
	// time.Second.
	TTLUnit time.Duration
	// ExpiryGrace is how long past its TTL an entry may stay visible
	// before the table calls it a failure to expire. Zero means 3 s: the
	// local store reclaims within 2 ms, etcd revokes an expired lease
	// within about 500 ms plus a Raft round.
	ExpiryGrace time.Duration
	// MaxValueSize is the longest value the table stores: a value of this
	// size must round-trip, and a CompareAndSwap from one such value to
	// another must succeed. Zero means [shardkv.DefaultMaxValueSize].
	MaxValueSize int
	// NoEvents skips the cases that check the store's subscribers see its
	// writes. Set it for a store whose backend is a plain
	// [shardkv.Backend], not a [shardkv.WatchBackend]: such a store's
	// subscribers never see Context writes. (A [shardkv.Store] does not
	// say which kind of backend it has, so the caller must.)
	NoEvents bool
	// EventTimeout bounds the wait for each expected event. Zero means
	// 10 s.
	EventTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.TTLUnit <= 0 {
		o.TTLUnit = 250 * time.Millisecond
	}
	if o.ExpiryGrace <= 0 {
		o.ExpiryGrace = 3 * time.Second
	}
	if o.MaxValueSize <= 0 {
		o.MaxValueSize = shardkv.DefaultMaxValueSize
	}
	if o.EventTimeout <= 0 {
		o.EventTimeout = 10 * time.Second
	}
	return o
}

// RunBackend runs the table as parallel subtests of t, each on a store of
// its own made by newStore, which must return a store over an empty
// backend (a fresh namespace will do). RunBackend closes each store when
// its subtest ends; newStore registers with t.Cleanup whatever else it
// must release. Only the first opts is used; none means the zero Options.
//
// It drives the store through GetContext, SetContext, SetWithTTLContext,
// DeleteContext, ExistsContext, ListKeysContext, IncrementContext and
// CompareAndSwapContext, and, unless opts say NoEvents, reads what
// Subscribe delivers.
func RunBackend(t *testing.T, newStore func(t *testing.T) *shardkv.Store, opts ...Options) {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o = o.withDefaults()
	open := func(t *testing.T) *shardkv.Store {
		t.Helper()
		s := newStore(t)
		require.NotNil(t, s, "newStore returned nil")
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, open, o)
		})
	}
}

type tcase struct {
	name string
	run  func(t *testing.T, open func(t *testing.T) *shardkv.Store, o Options)
}

var cases = []tcase{
	{"RoundTrip", testRoundTrip},
	{"Missing", testMissing},
	{"Delete", testDelete},
	{"Exists", testExists},
	{"ListKeys", testListKeys},
	{"Increment", testIncrement},
	{"IncrementNotInteger", testIncrementNotInteger},
	{"IncrementSaturates", testIncrementSaturates},
	{"IncrementConcurrent", testIncrementConcurrent},
	{"CompareAndSwap", testCompareAndSwap},
	{"CompareAndSwapRace", testCompareAndSwapRace},
	{"TTL", testTTL},
	{"Events", testEvents},
}

// callTimeout bounds each call the table makes, so that a hung backend
// fails the test instead of stalling it.
const callTimeout = 30 * time.Second

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

func get(t *testing.T, s *shardkv.Store, key string) ([]byte, bool) {
	t.Helper()
	v, ok, err := s.GetContext(ctxFor(t), key)
	require.NoError(t, err, "GetContext(%q)", key)
	if !ok {
		require.Empty(t, v, "GetContext(%q) missed but returned a value", key)
	}
	return v, ok
}

func set(t *testing.T, s *shardkv.Store, key string, value []byte) {
	t.Helper()
	require.NoError(t, s.SetContext(ctxFor(t), key, value), "SetContext(%q)", key)
}

func exists(t *testing.T, s *shardkv.Store, key string) bool {
	t.Helper()
	ok, err := s.ExistsContext(ctxFor(t), key)
	require.NoError(t, err, "ExistsContext(%q)", key)
	return ok
}

func del(t *testing.T, s *shardkv.Store, key string) bool {
	t.Helper()
	ok, err := s.DeleteContext(ctxFor(t), key)
	require.NoError(t, err, "DeleteContext(%q)", key)
	return ok
}

func incr(t *testing.T, s *shardkv.Store, key string, delta int64) int64 {
	t.Helper()
	n, err := s.IncrementContext(ctxFor(t), key, delta)
	require.NoError(t, err, "IncrementContext(%q, %d)", key, delta)
	return n
}

func cas(t *testing.T, s *shardkv.Store, key string, expected, newValue []byte) bool {
	t.Helper()
	ok, err := s.CompareAndSwapContext(ctxFor(t), key, expected, newValue)
	require.NoError(t, err, "CompareAndSwapContext(%q)", key)
	return ok
}

func listSorted(t *testing.T, s *shardkv.Store, prefix string) []string {
	t.Helper()
	keys, err := s.ListKeysContext(ctxFor(t), prefix)
	require.NoError(t, err, "ListKeysContext(%q)", prefix)
	slices.Sort(keys)
	return keys
}

// requireValue checks that key holds exactly want (byte for byte; an empty
// value may come back nil or empty).
func requireValue(t *testing.T, s *shardkv.Store, key string, want []byte) {
	t.Helper()
	v, ok := get(t, s, key)
	require.True(t, ok, "key %q is missing", key)
	if !bytes.Equal(v, want) {
		require.Failf(t, "value differs", "key %q: got %d bytes %q, want %d bytes %q",
			key, len(v), clip(v), len(want), clip(want))
	}
}

// clip shortens a value for a failure message.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// pattern returns n bytes that use every byte value, zero and invalid
// UTF-8 included, in a sequence that does not repeat with a short period.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func testRoundTrip(t *testing.T, open func(*testing.T) *shardkv.Store, o Options) {
	s := open(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	values := map[string][]byte{
		"rt/empty":  {},
		"rt/text":   []byte("hello, world"),
		"rt/bytes":  all,
		"rt/utf8":   []byte("héllo wörld ☃ 😀"),
		"rt/binary": {0x00, 0xff, 0xfe, 0x80, 0x00},
		"rt/64k":    pattern(64<<10, 1),
		"rt/max":    pattern(o.MaxValueSize, 2),
	}
	for k, v := range values {
		set(t, s, k, v)
	}
	for k, v := range values {
		requireValue(t, s, k, v)
	}

	// Overwrites replace the whole value, longer or shorter.
	set(t, s, "rt/text", []byte("a much longer value than before"))
	requireValue(t, s, "rt/text", []byte("a much longer value than before"))
	set(t, s, "rt/text", []byte("x"))
	requireValue(t, s, "rt/text", []byte("x"))
	set(t, s, "rt/max", []byte("small now"))
	requireValue(t, s, "rt/max", []byte("small now"))

	// Values are copied in and out.
	in := []byte("original")
	set(t, s, "rt/copy", in)
	copy(in, "mutated!")
	requireValue(t, s, "rt/copy", []byte("original"))
	out, _ := get(t, s, "rt/copy")
	copy(out, "mutated!")
	requireValue(t, s, "rt/copy", []byte("original"))

	// Keys of every allowed character.
	for _, k := range []string{"a", "A-b_c.d/e:f", "ключ", "键/值", "١٢٣", strings.Repeat("k", 1024)} {
		set(t, s, k, []byte(k))
		requireValue(t, s, k, []byte(k))
	}
}

func testMissing(t *testing.T, open func(*testing.T) *shardkv.Store, _ Options) {
	s := open(t)
	v, ok := get(t, s, "missing")
	require.False(t, ok)
	require.Nil(t, v, "a miss returns a nil value")
	require.False(t, exists(t, s, "missing"))
	require.False(t, del(t, s, "missing"))
	require.Empty(t, listSorted(t, s, "missing"))
	// A key that only shares a prefix with a stored one is still missing.
	set(t, s, "missing/not", []byte("v"))
	_, ok = get(t, s, "missing")
	require.False(t, ok)
	require.False(t, exists(t, s, "missing"))
	require.False(t, exists(t, s, "missing/no"))
}

func testDelete(t *testing.T, open func(*testing.T) *shardkv.Store, _ Options) {
	s := open(t)
	set(t, s, "d/k", []byte("v"))
	set(t, s, "d/k2", []byte("v2"))
	require.True(t, del(t, s, "d/k"), "Delete of a present key reports it existed")
	_, ok := get(t, s, "d/k")
	require.False(t, ok)
	require.False(t, del(t, s, "d/k"), "a second Delete finds nothing")
	requireValue(t, s, "d/k2", []byte("v2"))
	// A key holding an empty value exists.
	set(t, s, "d/empty", nil)
	require.True(t, exists(t, s, "d/empty"))
	require.True(t, del(t, s, "d/empty"))
	// A key with a TTL still to run exists until deleted.
	require.NoError(t, s.SetWithTTLContext(ctxFor(t), "d/ttl", []byte("v"), time.Hour))
	require.True(t, del(t, s, "d/ttl"))
	require.False(t, exists(t, s, "d/ttl"))
	// Deleted keys can be written again.
	set(t, s, "d/k", []byte("again"))
	requireValue(t, s, "d/k", []byte("again"))
}

func testExists(t *testing.T, open func(*testing.T) *shardkv.Store, _ Options) {
	s := open(t)
	require.False(t, exists(t, s, "e/k"))
	set(t, s, "e/k", []byte("v"))
	require.True(t, exists(t, s, "e/k"))
	require.False(t, exists(t, s, "e/"), "Exists matches the whole key, not a prefix")
	require.False(t, exists(t, s, "e/kk"))
	del(t, s, "e/k")
	require.False(t, exists(t, s, "e/k"))
}

func testListKeys(t *testing.T, open func(*testing.T) *shardkv.Store, _ Options) {
	s := open(t)
	require.Empty(t, listSorted(t, s, ""), "a new store lists nothing")
	keys := []string{"user/1", "user/2", "user/10", "users", "u", "admin/1", "x"}
	for _, k := range keys {
		set(t, s, k, []byte("v:"+k))
	}
	require.Equal(t, []string{"user/1", "user/10", "user/2"}, listSorted(t, s, "user/"))
	require.Equal(t, []string{"u", "user/1", "user/10", "user/2", "users"}, listSorted(t, s, "u"))
	require.Equal(t, []string{"user/1", "user/10"}, listSorted(t, s, "user/1"))
	all := slices.Clone(keys)
	slices.Sort(all)
	require.Equal(t, all, listSorted(t, s, ""))
	require.Empty(t, listSorted(t, s, "zzz"))
	require.Empty(t, listSorted(t, s, "user/3"))
	del(t, s, "user/2")
	require.Equal(t, []string{"user/1", "user/10"}, listSorted(t, s, "user/"))

	// More keys than one page (1000 keys) of a paginating backend, written
	// by a few goroutines to keep the case quick on a remote backend.
	const many, writers = 1100, 4
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < many && errs[w] == nil; i += writers {
				errs[w] = s.SetContext(ctxFor(t), fmt.Sprintf("many/%04d", i), nil)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	got := listSorted(t, s, "many/")
	require.Len(t, got, many)
	for i, k := range got {
		require.Equal(t, fmt.Sprintf("many/%04d", i), k)
	}
}

func testIncrement(t *testing.T, open func(*testing.T) *shardkv.Store, _ Options) {
	s := open(t)
	require.Equal(t, int64(5), incr(t, s, "i/n", 5), "a missing key counts as 0")
	require.Equal(t, int64(8), incr(t, s, "i/n", 3))
	require.Equal(t, int64(-2), incr(t, s, "i/n", -10))
	require.Equal(t, int64(-2), incr(t, s, "i/n", 0))
	requireValue(t, s, "i/n", []byte("-2"))
	require.Equal(t, int64(-7), incr(t, s, "i/neg", -7))
	requireValue(t, s, "i/neg", []byte("-7"))
	require.Equal(t, int64(0), incr(t, s, "i/zero", 0), "a zero delta creates the key")
	requireValue(t, s, "i/zero", []byte("0"))

	// What strconv.ParseInt(s, 10, 64) accepts is a number.
	for i, c := range []struct {
		stored string
		want   int64
	}{{"41", 42}, {"+41", 42}, {"-0", 1}, {"007", 8}, {"-9223372036854775808", math.MinInt64 + 1}} {
		stored, want := c.stored, c.want
		key := "i/parse/" + strconv.Itoa(i)
		set(t, s, key, []byte(stored))
		require.Equal(t, want, incr(t, s, key, 1), "stored %q", stored)
		requireValue(t, s, key, []byte(strconv.FormatInt(want, 10)))
	}

	// Increment after Delete starts over.
	del(t, s, "i/n")
	require.Equal(t, int64(1), incr(t, s, "i/n", 1))
}

func testIncrementNotInteger(t *testing.T, open func(*testing.T) *shardkv.Store, _ Options) {
	s := open(t)
	for i, bad := range []string{
		"abc", "", " 1", "1 ", "1.5", "1e3", "0x10", "1_000", "+", "-", "++1",
		"9223372036854775808", "-9223372036854775809", "99999999999999999999", "\xff\xfe", "١٢",
	} {
		key := "bad/" + strconv.Itoa(i)
		set(t, s, key, []byte(bad))
		_, err := s.IncrementContext(ctxFor(t), key, 1)
		var se *shardkv.StorageError
		require.ErrorAs(t, err, &se, "Increment of %q", bad)
		require.True(t, strings.HasPrefix(se.Msg, "invalid number: "), "Increment of %q: %q", bad, se.Msg)
		requireValue(t, s, key, []byte(bad)) // left as it was
	}
}

func testIncrementSaturates(t *testing.T, open func(*testing.T) *shardkv.Store, _ Options) {
	s := open(t)
	set(t, s, "sat/max", []byte(strconv.FormatInt(math.MaxInt64-1, 10)))
	require.Equal(t, int64(math.MaxInt64), incr(t, s, "sat/max", 5))
	require.Equal(t, int64(math.MaxInt64), incr(t, s, "sat/max", math.MaxInt64))
	requireValue(t, s, "sat/max", []byte("9223372036854775807"))
	require.Equal(t, int64(math.MaxInt64-1), incr(t, s, "sat/max", -1))

	set(t, s, "sat/min", []byte(strconv.FormatInt(math.MinInt64+1, 10)))
	require.Equal(t, int64(math.MinInt64), incr(t, s, "sat/min", -5))
	require.Equal(t, int64(math.MinInt64), incr(t, s, "sat/min", math.MinInt64))
	requireValue(t, s, "sat/min", []byte("-9223372036854775808"))

	require.Equal(t, int64(math.MinInt64), incr(t, s, "sat/fresh", math.MinInt64))
	require.Equal(t, int64(math.MinInt64), incr(t, s, "sat/fresh", -1))
	require.Equal(t, int64(-1), incr(t, s, "sat/fresh", math.MaxInt64))
}

// Increments from several goroutines add up: none is lost or applied
// twice.
func testIncrementConcurrent(t *testing.T, open func(*testing.T) *shardkv.Store, _ Options) {
	s := open(t)
	const workers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := s.IncrementContext(ctxFor(t), "conc/n", 1); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	requireValue(t, s, "conc/n", []byte(strconv.Itoa(workers*each)))
}

func testCompareAndSwap(t *testing.T, open func(*testing.T) *shardkv.Store, o Options) {
	s := open(t)
	// nil expected: create only when absent.
	require.True(t, cas(t, s, "c/k", nil, []byte("v1")), "nil expected creates a missing key")
	requireValue(t, s, "c/k", []byte("v1"))
	require.False(t, cas(t, s, "c/k", nil, []byte("v2")), "nil expected fails on a present key")
	requireValue(t, s, "c/k", []byte("v1"))
	// Mismatch, then match.
	require.False(t, cas(t, s, "c/k", []byte("nope"), []byte("v3")))
	require.False(t, cas(t, s, "c/k", []byte("v"), []byte("v3")), "a prefix of the value is no match")
	require.False(t, cas(t, s, "c/k", []byte("v1x"), []byte("v3")))
	requireValue(t, s, "c/k", []byte("v1"))
	require.True(t, cas(t, s, "c/k", []byte("v1"), []byte("v3")))
	requireValue(t, s, "c/k", []byte("v3"))
	// A non-nil expected never matches a missing key, even when empty.
	require.False(t, cas(t, s, "c/missing", []byte{}, []byte("v")))
	require.False(t, cas(t, s, "c/missing", []byte("v"), []byte("v")))
	require.False(t, exists(t, s, "c/missing"))
	// An empty expected matches an empty value.
	set(t, s, "c/empty", []byte{})
	require.False(t, cas(t, s, "c/empty", nil, []byte("x")))
	require.True(t, cas(t, s, "c/empty", []byte{}, []byte("x")))
	requireValue(t, s, "c/empty", []byte("x"))
	// Binary values compare byte for byte.
	bin := []byte{0, 0xff, 0, 0x80}
	set(t, s, "c/bin", bin)
	require.False(t, cas(t, s, "c/bin", []byte{0, 0xff, 0, 0x81}, []byte("y")))
	require.True(t, cas(t, s, "c/bin", bin, []byte{0xff}))
	requireValue(t, s, "c/bin", []byte{0xff})
	// After Delete, nil expected creates again.
	del(t, s, "c/k")
	require.True(t, cas(t, s, "c/k", nil, []byte("again")))
	// From one largest value to another.
	big1, big2 := pattern(o.MaxValueSize, 3), pattern(o.MaxValueSize, 4)
	set(t, s, "c/big", big1)
	require.False(t, cas(t, s, "c/big", big2, big1))
	require.True(t, cas(t, s, "c/big", big1, big2), "a CompareAndSwap of two MaxValueSize values")
	requireValue(t, s, "c/big", big2)
}

// Of several CompareAndSwaps racing to create a key, exactly one wins.
func testCompareAndSwapRace(t *testing.T, open func(*testing.T) *shardkv.Store, _ Options) {
	s := open(t)
	const racers = 6
	var wg sync.WaitGroup
	won := make([]bool, racers)
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			won[i], errs[i] = s.CompareAndSwapContext(ctxFor(t), "race/k", nil, []byte(strconv.Itoa(i)))
		})
	}
	wg.Wait()
	winner := -1
	for i := range racers {
		require.NoError(t, errs[i])
		if won[i] {
			require.Equal(t, -1, winner, "two CompareAndSwaps created the key")
			winner = i
		}
	}
	require.NotEqual(t, -1, winner, "no CompareAndSwap created the key")
	requireValue(t, s, "race/k", []byte(strconv.Itoa(winner)))
}

// testTTL waits once, for entries of one TTLUnit to expire, and checks
// which writes keep or drop a TTL, and that subscribers see the expiries.
func testTTL(t *testing.T, open func(*testing.T) *shardkv.Store, o Options) {
	s := open(t)
	var sub *shardkv.Subscription
	if !o.NoEvents {
		sub = subscribe(t, s, o)
	}
	ctx := ctxFor(t)
	short := o.TTLUnit

	// A TTL <= 0 stores nothing visible, and removes what was there.
	require.NoError(t, s.SetWithTTLContext(ctx, "ttl/zero", []byte("v"), 0))
	require.NoError(t, s.SetWithTTLContext(ctx, "ttl/negative", []byte("v"), -time.Second))
	set(t, s, "ttl/replaced", []byte("old"))
	require.NoError(t, s.SetWithTTLContext(ctx, "ttl/replaced", []byte("v"), 0))
	for _, k := range []string{"ttl/zero", "ttl/negative", "ttl/replaced"} {
		_, ok := get(t, s, k)
		require.False(t, ok, "%s: a TTL <= 0 leaves nothing visible", k)
		require.False(t, exists(t, s, k), k)
	}

	start := time.Now()
	require.NoError(t, s.SetWithTTLContext(ctx, "ttl/short", []byte("short"), short))
	require.NoError(t, s.SetWithTTLContext(ctx, "ttl/long", []byte("long"), time.Hour))
	require.NoError(t, s.SetWithTTLContext(ctx, "ttl/set", []byte("v"), short))
	set(t, s, "ttl/set", []byte("kept")) // Set drops the TTL
	require.NoError(t, s.SetWithTTLContext(ctx, "ttl/cas", []byte("v"), short))
	require.True(t, cas(t, s, "ttl/cas", []byte("v"), []byte("kept"))) // so does CompareAndSwap
	require.NoError(t, s.SetWithTTLContext(ctx, "ttl/incr", []byte("1"), short))
	require.Equal(t, int64(2), incr(t, s, "ttl/incr", 1)) // Increment keeps it
	require.NoError(t, s.SetWithTTLContext(ctx, "ttl/renew", []byte("v"), short))
	require.NoError(t, s.SetWithTTLContext(ctx, "ttl/renew", []byte("renewed"), time.Hour)) // a new TTL replaces the old
	if time.Since(start) < short/2 {
		// Only checked when the writes were quick enough for it to be sound.
		requireValue(t, s, "ttl/short", []byte("short"))
		require.True(t, exists(t, s, "ttl/short"))
		require.Contains(t, listSorted(t, s, "ttl/"), "ttl/short")
	}

	deadline := start.Add(short + o.ExpiryGrace)
	for _, k := range []string{"ttl/short", "ttl/incr"} {
		for exists(t, s, k) {
			require.True(t, time.Now().Before(deadline), "%s still exists %v after its TTL of %v", k, time.Since(start), short)
			time.Sleep(short / 20)
		}
	}
	require.GreaterOrEqual(t, time.Since(start), short-short/10, "expired before its TTL")
	_, ok := get(t, s, "ttl/short")
	require.False(t, ok)
	require.False(t, del(t, s, "ttl/incr"), "an expired key does not exist for Delete")
	require.Equal(t, []string{"ttl/cas", "ttl/long", "ttl/renew", "ttl/set"}, listSorted(t, s, "ttl/"))
	requireValue(t, s, "ttl/set", []byte("kept"))
	requireValue(t, s, "ttl/cas", []byte("kept"))
	requireValue(t, s, "ttl/renew", []byte("renewed"))
	requireValue(t, s, "ttl/long", []byte("long"))
	require.True(t, cas(t, s, "ttl/short", nil, []byte("new")), "nil expected matches an expired key")
	require.Equal(t, int64(1), incr(t, s, "ttl/incr", 1), "Increment of an expired key starts from 0")

	if sub == nil {
		return
	}
	want := map[string][]shardkv.Event{
		"ttl/short": {
			{Key: "ttl/short", Kind: shardkv.EventSet, Value: []byte("short"), New: true},
			{Key: "ttl/short", Kind: shardkv.EventExpire},
			{Key: "ttl/short", Kind: shardkv.EventSet, Value: []byte("new"), New: true},
		},
		"ttl/incr": {
			{Key: "ttl/incr", Kind: shardkv.EventSet, Value: []byte("1"), New: true},
			{Key: "ttl/incr", Kind: shardkv.EventSet, Value: []byte("2")},
			{Key: "ttl/incr", Kind: shardkv.EventExpire},
			{Key: "ttl/incr", Kind: shardkv.EventSet, Value: []byte("1"), New: true},
		},
	}
	expectEvents(t, sub, o, want)
}

// testEvents checks that subscribers see each write once, in per-key order,
// with its value.
func testEvents(t *testing.T, open func(*testing.T) *shardkv.Store, o Options) {
	if o.NoEvents {
		t.Skip("the store's backend streams no events (Options.NoEvents)")
	}
	s := open(t)
	sub := subscribe(t, s, o)
	ctx := ctxFor(t)

	// Two keys' writes interleaved: each key's events must come in order.
	set(t, s, "ev/a", []byte("a1"))
	require.Equal(t, int64(5), incr(t, s, "ev/n", 5))
	set(t, s, "ev/a", []byte{0, 0xff})
	require.Equal(t, int64(6), incr(t, s, "ev/n", 1))
	require.True(t, cas(t, s, "ev/a", []byte{0, 0xff}, []byte("a3")))
	require.False(t, cas(t, s, "ev/a", []byte("no"), []byte("x"))) // no event
	require.False(t, cas(t, s, "ev/n", nil, []byte("x")))          // no event
	require.True(t, del(t, s, "ev/a"))
	require.False(t, del(t, s, "ev/a")) // no event
	require.True(t, cas(t, s, "ev/a", nil, []byte("a4")))
	_, err := s.IncrementContext(ctx, "ev/a", 1) // fails: no event
	var se *shardkv.StorageError
	require.ErrorAs(t, err, &se)
	// A key with a TTL, deleted before it runs out, is a delete.
	require.NoError(t, s.SetWithTTLContext(ctx, "ev/t", []byte("t1"), time.Hour))
	require.True(t, del(t, s, "ev/t"))
	set(t, s, "ev/t", []byte("t2"))
	// Many writes to one key keep their order.
	for i := range 50 {
		set(t, s, "ev/seq", []byte(strconv.Itoa(i)))
	}

	want := map[string][]shardkv.Event{
		"ev/a": {
			{Key: "ev/a", Kind: shardkv.EventSet, Value: []byte("a1"), New: true},
			{Key: "ev/a", Kind: shardkv.EventSet, Value: []byte{0, 0xff}},
			{Key: "ev/a", Kind: shardkv.EventSet, Value: []byte("a3")},
			{Key: "ev/a", Kind: shardkv.EventDelete, Op: "del"},
			{Key: "ev/a", Kind: shardkv.EventSet, Value: []byte("a4"), New: true},
		},
		"ev/n": {
			{Key: "ev/n", Kind: shardkv.EventSet, Value: []byte("5"), New: true},
			{Key: "ev/n", Kind: shardkv.EventSet, Value: []byte("6")},
		},
		"ev/t": {
			{Key: "ev/t", Kind: shardkv.EventSet, Value: []byte("t1"), New: true},
			{Key: "ev/t", Kind: shardkv.EventDelete, Op: "del"},
			{Key: "ev/t", Kind: shardkv.EventSet, Value: []byte("t2"), New: true},
		},
	}
	for i := range 50 {
		want["ev/seq"] = append(want["ev/seq"], shardkv.Event{Key: "ev/seq", Kind: shardkv.EventSet, Value: []byte(strconv.Itoa(i)), New: i == 0})
	}
	expectEvents(t, sub, o, want)
}

// syncKey is the key subscribe writes until its subscriber sees it.
const syncKey = "shardkvtest-sync"

// subscribe returns a subscription to s that is known to be live: a
// backend's stream starts some time after the store is made, so it writes
// syncKey until an event for it arrives, then drains what came with it.
func subscribe(t *testing.T, s *shardkv.Store, o Options) *shardkv.Subscription {
	t.Helper()
	sub := s.Subscribe()
	t.Cleanup(sub.Close)
	deadline := time.Now().Add(o.EventTimeout)
	for i := 0; ; i++ {
		require.True(t, time.Now().Before(deadline), "the store's subscribers never saw a write in %v", o.EventTimeout)
		set(t, s, syncKey, []byte(strconv.Itoa(i)))
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		ev, err := sub.Recv(ctx)
		cancel()
		var lag *shardkv.LaggedError
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &lag) {
			continue
		}
		require.NoError(t, err)
		if ev.Key == syncKey {
			break
		}
	}
	require.True(t, del(t, s, syncKey))
	// Drain the sync key's later events, up to its delete.
	for {
		ev := recv(t, sub, o)
		if ev.Key == syncKey && ev.Kind == shardkv.EventDelete {
			return sub
		}
	}
}

func recv(t *testing.T, sub *shardkv.Subscription, o Options) shardkv.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), o.EventTimeout)
	defer cancel()
	ev, err := sub.Recv(ctx)
	require.NoError(t, err, "waiting for an event")
	return ev
}

// expectEvents reads sub until it has seen every event of want, checking
// that each key's events come in want's order, with want's kind, value and
// New. Events of keys want does not name are skipped. An EventSet's Op may
// be "set" or "incrby" (a backend need not tell an increment's put from
// another), an EventDelete's must be "del" and an EventExpire's "expired".
func expectEvents(t *testing.T, sub *shardkv.Subscription, o Options, want map[string][]shardkv.Event) {
	t.Helper()
	left := 0
	for _, evs := range want {
		left += len(evs)
	}
	seen := map[string]int{}
	for left > 0 {
		ev := recv(t, sub, o)
		evs, ok := want[ev.Key]
		if !ok {
			continue // another case's key
		}
		i := seen[ev.Key]
		require.Less(t, i, len(evs), "an extra event for %q: %+v", ev.Key, ev)
		w := evs[i]
		where := fmt.Sprintf("event %d of %q: got %+v, want %+v", i, ev.Key, ev, w)
		require.Equal(t, w.Kind, ev.Kind, where)
		require.True(t, bytes.Equal(w.Value, ev.Value), where)
		if w.Kind != shardkv.EventSet {
			require.Empty(t, ev.Value, where)
		}
		assert.Equal(t, w.New, ev.New, "New: "+where)
		switch w.Kind {
		case shardkv.EventSet:
			assert.Contains(t, []string{"set", "incrby"}, ev.Op, where)
		case shardkv.EventDelete:
			assert.Equal(t, "del", ev.Op, where)
		case shardkv.EventExpire:
			assert.Equal(t, "expired", ev.Op, where)
		}
		seen[ev.Key] = i + 1
		left--
	}
}
