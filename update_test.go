package shardkv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// upEvents returns every event already held for sub.
func upEvents(t *testing.T, sub *Subscription) []Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var evs []Event
	for {
		ev, err := sub.Recv(ctx)
		if errors.Is(err, context.Canceled) {
			return evs
		}
		require.NoError(t, err)
		evs = append(evs, ev)
	}
}

func TestUpdate(t *testing.T) {
	type step struct {
		name    string
		before  func(s *Store)     // state to start from, before subscribing
		fn      func(Entry) Change // the Update
		wantIn  Entry              // what fn must see (Value compared as string)
		wantErr error
		want    map[string]string // the store after
		ttl     time.Duration     // k's TTL after (NoTTL, or a TTL given in before/fn)
		events  []Event
	}
	set := func(k, v string) func(*Store) { return func(s *Store) { s.SetString(k, v) } }
	setTTL := func(k, v string, ttl time.Duration) func(*Store) {
		return func(s *Store) { s.SetWithTTL(k, []byte(v), ttl) }
	}
	for _, c := range []step{
		{
			name:   "keep on an absent key does nothing",
			fn:     func(Entry) Change { return Change{} },
			want:   map[string]string{},
			events: nil,
		},
		{
			name:   "put on an absent key creates it",
			fn:     func(Entry) Change { return Change{Action: Put, Value: []byte("v"), Op: "append"} },
			want:   map[string]string{"k": "v"},
			ttl:    NoTTL,
			events: []Event{{Key: "k", Kind: EventSet, Value: []byte("v"), Op: "append", New: true}},
		},
		{
			name:   "put sees the value and replaces it, dropping its TTL",
			before: setTTL("k", "old", time.Hour),
			fn:     func(Entry) Change { return Change{Action: Put, Value: []byte("new")} },
			wantIn: Entry{Value: []byte("old"), TTL: time.Hour, Found: true},
			want:   map[string]string{"k": "new"},
			ttl:    NoTTL,
			events: []Event{{Key: "k", Kind: EventSet, Value: []byte("new"), Op: "set"}},
		},
		{
			name:   "put with a TTL",
			before: set("k", "old"),
			fn:     func(Entry) Change { return Change{Action: Put, Value: []byte("new"), TTL: time.Minute} },
			wantIn: Entry{Value: []byte("old"), TTL: NoTTL, Found: true},
			want:   map[string]string{"k": "new"},
			ttl:    time.Minute,
			events: []Event{{Key: "k", Kind: EventSet, Value: []byte("new"), Op: "set"}},
		},
		{
			name:   "KeepTTL keeps the deadline",
			before: setTTL("k", "old", time.Hour),
			fn:     func(Entry) Change { return Change{Action: Put, Value: []byte("new"), TTL: time.Second, KeepTTL: true} },
			wantIn: Entry{Value: []byte("old"), TTL: time.Hour, Found: true},
			want:   map[string]string{"k": "new"},
			ttl:    time.Hour,
			events: []Event{{Key: "k", Kind: EventSet, Value: []byte("new"), Op: "set"}},
		},
		{
			name:   "KeepTTL on a new key is no TTL",
			fn:     func(Entry) Change { return Change{Action: Put, Value: []byte("v"), KeepTTL: true} },
			want:   map[string]string{"k": "v"},
			ttl:    NoTTL,
			events: []Event{{Key: "k", Kind: EventSet, Value: []byte("v"), Op: "set", New: true}},
		},
		{
			name:   "drop removes a present key",
			before: set("k", "v"),
			fn:     func(Entry) Change { return Change{Action: Drop, Op: "getdel"} },
			wantIn: Entry{Value: []byte("v"), TTL: NoTTL, Found: true},
			want:   map[string]string{},
			events: []Event{{Key: "k", Kind: EventDelete, Op: "getdel"}},
		},
		{
			name:   "drop of an absent key publishes nothing",
			fn:     func(Entry) Change { return Change{Action: Drop} },
			want:   map[string]string{},
			events: nil,
		},
		{
			name:    "a too-large value is refused and changes nothing",
			before:  set("k", "v"),
			fn:      func(Entry) Change { return Change{Action: Put, Value: make([]byte, 17)} },
			wantIn:  Entry{Value: []byte("v"), TTL: NoTTL, Found: true},
			wantErr: ErrValueTooLarge,
			want:    map[string]string{"k": "v"},
			ttl:     NoTTL,
		},
		{
			name:   "an unchanged value is never refused for its size",
			before: func(s *Store) { s.SetMaxValueSize(32); s.SetString("k", "0123456789abcdefXYZ"); s.SetMaxValueSize(16) },
			fn:     func(e Entry) Change { return Change{Action: Put, Value: e.Value, TTL: time.Minute, Op: "expire"} },
			wantIn: Entry{Value: []byte("0123456789abcdefXYZ"), TTL: NoTTL, Found: true},
			want:   map[string]string{"k": "0123456789abcdefXYZ"},
			ttl:    time.Minute,
			events: []Event{{Key: "k", Kind: EventSet, Value: []byte("0123456789abcdefXYZ"), Op: "expire"}},
		},
		{
			name:    "a new key beyond the quota is refused",
			before:  set("other", "v"),
			fn:      func(Entry) Change { return Change{Action: Put, Value: []byte("v")} },
			wantErr: ErrQuotaExceeded,
			want:    map[string]string{"other": "v"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := New(WithMaxValueSize(16), WithMaxKeys(1))
				defer s.Close()
				if c.before != nil {
					c.before(s)
				}
				sub := s.Subscribe()
				defer sub.Close()
				var seen Entry
				err := s.Update("k", func(e Entry) Change {
					seen = Entry{Value: append([]byte(nil), e.Value...), TTL: e.TTL, Found: e.Found}
					return c.fn(e)
				})
				if c.wantErr != nil {
					require.ErrorIs(t, err, c.wantErr)
				} else {
					require.NoError(t, err)
				}
				if len(c.wantIn.Value) == 0 {
					c.wantIn.Value = nil
				}
				if len(seen.Value) == 0 {
					seen.Value = nil
				}
				require.Equal(t, c.wantIn, seen)
				got := map[string]string{}
				for k, v := range s.All("") {
					got[k] = string(v)
				}
				require.Equal(t, c.want, got)
				require.Equal(t, len(c.want), s.Len())
				if _, ok := c.want["k"]; ok {
					ttl, _, _ := s.TTL("k")
					require.Equal(t, c.ttl, ttl)
				}
				require.Equal(t, c.events, upEvents(t, sub))
			})
		})
	}
}

// The deadline an Update leaves is the one the wheel keeps: KeepTTL's
// entry expires at the first deadline, a Put without a TTL never does, and
// one with a TTL at its own.
func TestUpdateTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		defer s.Close()
		for _, k := range []string{"keep", "drop", "move"} {
			require.NoError(t, s.SetWithTTL(k, []byte("v"), 10*time.Millisecond))
		}
		put := func(k string, c Change) {
			require.NoError(t, s.Update(k, func(Entry) Change { c.Action = Put; c.Value = []byte("w"); return c }))
		}
		put("keep", Change{KeepTTL: true})
		put("drop", Change{})
		put("move", Change{TTL: 30 * time.Millisecond})
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		require.False(t, s.Exists("keep"), "KeepTTL kept the first deadline")
		require.True(t, s.Exists("drop"))
		require.True(t, s.Exists("move"))
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		require.True(t, s.Exists("drop"), "a Put without a TTL cancelled the timer")
		require.False(t, s.Exists("move"))
		require.Equal(t, 1, s.Len(), "both expired entries reclaimed")
		require.Equal(t, uint64(2), s.Stats().Expired)
	})
}

// An expired entry is absent to Update's function, and is reclaimed
// whatever the function decides; its quota slot goes to a Put.
func TestUpdateMeetsExpired(t *testing.T) {
	for _, act := range []ChangeAction{Keep, Put, Drop} {
		t.Run(strconv.Itoa(int(act)), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := New(WithMaxKeys(1), noReaper) // so that Update is what meets the expired entry
				defer s.Close()
				require.NoError(t, s.SetWithTTL("k", []byte("v"), time.Millisecond))
				time.Sleep(2 * time.Millisecond)
				sub := s.Subscribe()
				defer sub.Close()
				var seen Entry
				require.NoError(t, s.Update("k", func(e Entry) Change {
					seen = e
					return Change{Action: act, Value: []byte("w")}
				}))
				require.Equal(t, Entry{}, seen)
				want := []Event{{Key: "k", Kind: EventExpire, Op: "expired"}}
				n := 0
				if act == Put {
					want = append(want, Event{Key: "k", Kind: EventSet, Value: []byte("w"), Op: "set", New: true})
					n = 1
				}
				require.Equal(t, want, upEvents(t, sub))
				require.Equal(t, n, s.Len())
				if act != Put {
					require.NoError(t, s.SetString("other", "x"), "the quota slot was released")
				}
			})
		})
	}
}

func TestUpdateRejectsAndRecovers(t *testing.T) {
	s := New()
	defer s.Close()
	called := false
	err := s.Update("bad key!", func(Entry) Change { called = true; return Change{} })
	require.ErrorIs(t, err, ErrInvalidKey)
	require.False(t, called, "fn ran for an invalid key")

	// A panicking fn leaves the shard's lock released.
	require.Panics(t, func() { s.Update("k", func(Entry) Change { panic("boom") }) })
	require.NoError(t, s.SetString("k", "v"))

	// The value a Put stores is a copy.
	v := []byte("abc")
	require.NoError(t, s.Update("k", func(Entry) Change { return Change{Action: Put, Value: v} }))
	v[0] = 'X'
	got, _, _ := s.GetString("k")
	require.Equal(t, "abc", got)

	s.Close()
	require.ErrorIs(t, s.Update("k", func(Entry) Change { return Change{} }), ErrClosed)
}

// Update is atomic: concurrent read-modify-writes of one key lose none.
func TestUpdateIsAtomic(t *testing.T) {
	s := New()
	defer s.Close()
	const workers, each = 4, 500
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				err := s.Update("n", func(e Entry) Change {
					n, _ := strconv.Atoi(string(e.Value))
					return Change{Action: Put, Value: strconv.AppendInt(nil, int64(n+1), 10), KeepTTL: true}
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, _, _ := s.GetString("n")
	require.Equal(t, strconv.Itoa(workers*each), got)
}

func TestExpireAndPersist(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		defer s.Close()
		sub := s.Subscribe()
		defer sub.Close()

		ok, err := s.Expire("missing", time.Second)
		require.NoError(t, err)
		require.False(t, ok)
		ok, err = s.Persist("missing")
		require.NoError(t, err)
		require.False(t, ok)

		require.NoError(t, s.SetString("k", "v"))
		ok, err = s.Persist("k")
		require.NoError(t, err)
		require.False(t, ok, "Persist of a key without a TTL")

		ok, err = s.Expire("k", 10*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		ttl, _, _ := s.TTL("k")
		require.Equal(t, 10*time.Millisecond, ttl)

		ok, err = s.Persist("k")
		require.NoError(t, err)
		require.True(t, ok)
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		ttl, found, _ := s.TTL("k")
		require.True(t, found, "Persist cancelled the timer")
		require.Equal(t, NoTTL, ttl)

		ok, err = s.Expire("k", 0)
		require.NoError(t, err)
		require.True(t, ok)
		require.False(t, s.Exists("k"), "Expire with ttl <= 0 removes the key")
		require.Equal(t, 0, s.Len())

		require.Equal(t, []Event{
			{Key: "k", Kind: EventSet, Value: []byte("v"), Op: "set", New: true},
			{Key: "k", Kind: EventSet, Value: []byte("v"), Op: "expire"},
			{Key: "k", Kind: EventSet, Value: []byte("v"), Op: "persist"},
			{Key: "k", Kind: EventDelete, Op: "del"},
		}, upEvents(t, sub))

		require.NoError(t, s.SetString("e", "v"))
		_, err = s.Expire("e", 5*time.Millisecond)
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		require.False(t, s.Exists("e"), "Expire's deadline is reclaimed")
		require.Equal(t, uint64(1), s.Stats().Expired)
	})
}

func TestRename(t *testing.T) {
	for _, shards := range []int{1, 64} { // same shard, and (mostly) two shards
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := New(WithShards(shards))
				defer s.Close()
				sub := s.Subscribe()
				defer sub.Close()

				_, err := s.Rename("missing", "b", false)
				require.ErrorIs(t, err, ErrNotFound)
				_, err = s.Rename("a", "bad key!", false)
				require.ErrorIs(t, err, ErrInvalidKey)

				require.NoError(t, s.SetWithTTL("a", []byte("1"), 10*time.Millisecond))
				ok, err := s.Rename("a", "a", false)
				require.NoError(t, err)
				require.True(t, ok)
				ok, err = s.Rename("a", "a", true)
				require.NoError(t, err)
				require.False(t, ok)

				ok, err = s.Rename("a", "b", false)
				require.NoError(t, err)
				require.True(t, ok)
				require.False(t, s.Exists("a"))
				got, _, _ := s.GetString("b")
				require.Equal(t, "1", got)
				ttl, _, _ := s.TTL("b")
				require.Equal(t, 10*time.Millisecond, ttl, "the deadline moves with the value")
				require.Equal(t, 1, s.Len())

				require.NoError(t, s.SetString("c", "3"))
				ok, err = s.Rename("c", "b", true)
				require.NoError(t, err)
				require.False(t, ok, "noReplace with dst present")
				ok, err = s.Rename("c", "b", false)
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, 1, s.Len(), "the replaced dst's quota slot is released")
				time.Sleep(20 * time.Millisecond)
				synctest.Wait()
				got, found, _ := s.GetString("b")
				require.True(t, found, "the replaced dst's timer was cancelled")
				require.Equal(t, "3", got)

				require.Equal(t, []Event{
					{Key: "a", Kind: EventSet, Value: []byte("1"), Op: "set", New: true},
					{Key: "a", Kind: EventDelete, Op: "rename_from"},
					{Key: "b", Kind: EventSet, Value: []byte("1"), Op: "rename_to", New: true},
					{Key: "c", Kind: EventSet, Value: []byte("3"), Op: "set", New: true},
					{Key: "c", Kind: EventDelete, Op: "rename_from"},
					{Key: "b", Kind: EventSet, Value: []byte("3"), Op: "rename_to"},
				}, upEvents(t, sub))
			})
		})
	}
}

// Renames in both directions between keys of different shards, from
// several goroutines, neither deadlock nor lose or duplicate a value.
func TestRenameConcurrent(t *testing.T) {
	s := New()
	defer s.Close()
	keys := []string{"r0", "r1", "r2", "r3", "r4", "r5"}
	require.NoError(t, s.SetString("r0", "x"))
	var wg sync.WaitGroup
	var moved atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				src, dst := keys[(w+i)%len(keys)], keys[(w+2*i+1)%len(keys)]
				ok, err := s.Rename(src, dst, true)
				if err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
					return
				}
				if ok {
					moved.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, s.Len(), "the value exists exactly once")
	keysLeft, err := s.ListKeys("r")
	require.NoError(t, err)
	require.Len(t, keysLeft, 1)
	got, _, _ := s.GetString(keysLeft[0])
	require.Equal(t, "x", got)
	require.Positive(t, moved.Load())
}

func TestScan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(WithShards(4), noReaper, func(o *options) { o.tableSlots = 64 })
		defer s.Close()
		const n = 2000
		for i := range n {
			require.NoError(t, s.SetString(fmt.Sprint("k", i), "v"))
		}
		require.NoError(t, s.SetWithTTL("expiring", []byte("v"), time.Millisecond))
		time.Sleep(2 * time.Millisecond) // expired and still held: Scan skips it
		for _, count := range []int{0, 1, 10, 100, 10_000} {
			seen := map[string]int{}
			cursor, calls := uint64(0), 0
			for {
				var keys []string
				var err error
				keys, cursor, err = s.Scan(cursor, count, nil)
				require.NoError(t, err)
				calls++
				if cursor != 0 {
					require.GreaterOrEqual(t, len(keys), count, "a call that does not end the walk returns at least count keys")
				}
				for _, k := range keys {
					seen[k]++
				}
				if cursor == 0 {
					break
				}
			}
			require.Len(t, seen, n, "count=%d", count)
			for k, c := range seen {
				require.Equal(t, 1, c, "key %s returned %d times", k, c)
			}
			if count <= 10 {
				require.Greater(t, calls, 10, "the walk is resumable in small steps")
			}
		}
		keys, next, err := s.Scan(1<<40, 10, nil)
		require.NoError(t, err)
		require.Empty(t, keys)
		require.Zero(t, next, "a cursor past the end ends the walk")
		s.Close()
		_, _, err = s.Scan(0, 10, nil)
		require.ErrorIs(t, err, ErrClosed)
	})
}

// Scan's cursor survives table splits and directory growth between calls:
// every key present for the whole walk is returned exactly once.
func TestScanStableKeysUnderSplits(t *testing.T) {
	s := New(WithShards(2), func(o *options) { o.tableSlots = 32 })
	defer s.Close()
	stable := map[string]bool{}
	for i := range 300 {
		k := fmt.Sprint("stable", i)
		stable[k] = true
		require.NoError(t, s.SetString(k, "v"))
	}
	for round := range 20 {
		seen := map[string]int{}
		cursor := uint64(0)
		i := round * 100_000
		for {
			var keys []string
			var err error
			keys, cursor, err = s.Scan(cursor, 5, nil)
			require.NoError(t, err)
			for _, k := range keys {
				seen[k]++
			}
			// Between two calls: grow the store enough to split tables,
			// and delete some of what an earlier call added.
			for range 40 {
				s.SetString(fmt.Sprint("churn", i), "v")
				if i%3 == 0 {
					s.Delete(fmt.Sprint("churn", i-30))
				}
				i++
			}
			if cursor == 0 {
				break
			}
		}
		for k := range stable {
			require.Equal(t, 1, seen[k], "round %d: stable key %s", round, k)
		}
		for k, c := range seen {
			require.Equal(t, 1, c, "round %d: key %s returned %d times", round, k, c)
		}
	}
	require.GreaterOrEqual(t, int(s.s.shards[0].depth()), 3, "the churn split tables")
}
