package shardkv

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestDroppedStoreStopsItsGoroutines drops stores without Close, one with a
// live TTL entry (so its reaper has a timer armed) and one with a
// WatchPrefix goroutine, and checks that the garbage collector's cleanup
// closes them: no goroutine of theirs survives.
func TestDroppedStoreStopsItsGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	func() {
		s := New()
		if err := s.SetWithTTL("k", []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
		w := New()
		ch := w.WatchPrefix(context.Background(), "")
		_ = ch
	}()
	// Two cycles: the first finds the handles unreachable and queues their
	// cleanups; goleak then retries while the cleanups close the stores.
	runtime.GC()
	runtime.GC()
	goleak.VerifyNone(t, before)
}

// waitForCleanup runs the garbage collector until st is closed by its
// handle's cleanup, or 50 cycles pass. A caller that still holds the handle
// gets the 50 cycles (about 50 ms); one that lost it gets a closed store.
func waitForCleanup(st *store) {
	for range 50 {
		if st.closed.Load() {
			return
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// TestIterationKeepsTheStoreAlive ranges over a store as the last use of its
// handle, with the garbage collector run inside the loop: the iteration must
// keep the handle reachable, so the cleanup does not close the store and
// cut the loop short (it used to stop at the next shard, silently).
func TestIterationKeepsTheStoreAlive(t *testing.T) {
	const n = 10_000
	tests := []struct {
		name string
		loop func(s *Store, body func()) // ranges over s, calling body each step
	}{
		{"Keys", func(s *Store, body func()) {
			for range s.Keys("") {
				body()
			}
		}},
		{"All", func(s *Store, body func()) {
			for range s.All("") {
				body()
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			s.SetMaxKeys(n)
			for i := range n {
				if err := s.SetString(strconv.Itoa(i), "v"); err != nil {
					t.Fatal(err)
				}
			}
			st := s.s // the state: holding it does not keep the handle alive
			seen := 0
			tc.loop(s, func() { // the last use of s
				seen++
				if seen == 100 {
					waitForCleanup(st)
				}
			})
			if seen != n || st.closed.Load() {
				t.Fatalf("yielded %d of %d keys; store closed under the loop: %v", seen, n, st.closed.Load())
			}
			st.close()
		})
	}
}

// TestMethodKeepsTheStoreAlive runs the garbage collector inside a call,
// from the key validator (a write's last use of the handle is its first
// line): the call must keep the handle reachable, so its cleanup cannot
// close the store and make the write fail with ErrClosed.
func TestMethodKeepsTheStoreAlive(t *testing.T) {
	var st *store
	var gc atomic.Bool
	validate := func(key string) error {
		if gc.Load() {
			waitForCleanup(st)
		}
		return ValidateKey(key)
	}
	ops := []struct {
		name string
		op   func(s *Store) error
	}{
		{"Set", func(s *Store) error { return s.Set("k", []byte("v")) }},
		{"SetWithTTL", func(s *Store) error { return s.SetWithTTL("k", []byte("v"), time.Hour) }},
		{"Increment", func(s *Store) error { _, err := s.Increment("n", 1); return err }},
		{"CompareAndSwap", func(s *Store) error { _, err := s.CompareAndSwap("c", nil, []byte("v")); return err }},
		{"Delete", func(s *Store) error { _, err := s.Delete("k"); return err }},
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			s := New(WithKeyValidator(validate))
			st = s.s
			gc.Store(true)
			err := tc.op(s) // the last use of s
			gc.Store(false)
			if err != nil || st.closed.Load() {
				t.Fatalf("err = %v; store closed during the call: %v", err, st.closed.Load())
			}
			st.close()
		})
	}
}

// TestCloseFencesWritesUnderWay holds a write between its first closed
// check and its shard lock (in the key validator, where a preempted write
// would be), closes the store, then lets the write go on. The write must
// fail with ErrClosed and change nothing, and a subscription's ErrClosed
// must be final: before the fence, the write landed after Close returned
// and a subscriber then received its event with a nil error.
func TestCloseFencesWritesUnderWay(t *testing.T) {
	ops := []struct {
		name string
		op   func(s *Store) error
	}{
		{"Set", func(s *Store) error { return s.Set("held", []byte("new")) }},
		{"SetString", func(s *Store) error { return s.SetString("held", "new") }},
		{"SetWithTTL", func(s *Store) error { return s.SetWithTTL("held", []byte("new"), time.Hour) }},
		{"Increment", func(s *Store) error { _, err := s.Increment("held", 1); return err }},
		{"CompareAndSwap", func(s *Store) error { _, err := s.CompareAndSwap("held", []byte("7"), []byte("new")); return err }},
		{"Delete", func(s *Store) error { _, err := s.Delete("held"); return err }},
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			var hold atomic.Bool
			entered, release := make(chan struct{}), make(chan struct{})
			s := New(WithKeyValidator(func(key string) error {
				if hold.Load() && key == "held" {
					hold.Store(false)
					close(entered)
					<-release
				}
				return ValidateKey(key)
			}))
			require.NoError(t, s.SetString("held", "7"))
			sub := s.Subscribe()
			defer sub.Close()

			hold.Store(true)
			errc := make(chan error, 1)
			go func() { errc <- tc.op(s) }()
			<-entered
			require.NoError(t, s.Close())
			_, err := sub.Recv(context.Background())
			require.ErrorIs(t, err, ErrClosed)
			close(release)
			werr := <-errc
			for range 2 { // ErrClosed again: nothing comes after it
				ev, err := sub.Recv(context.Background())
				require.ErrorIs(t, err, ErrClosed, "after ErrClosed, got event %+v", ev)
			}
			require.ErrorIs(t, werr, ErrClosed)
			r, ok, _ := s.s.peek("held")
			require.True(t, ok, "the key is gone")
			require.Equal(t, "7", r, "the write landed after Close")
			require.Equal(t, 1, s.Len())
		})
	}
}

// TestCloseFencesQuotaRetry closes the store while a write that found the
// quota full is about to reclaim and retry: the retry must neither reclaim
// the expired entry (no EventExpire after Close) nor store the key.
func TestCloseFencesQuotaRetry(t *testing.T) {
	var s *Store
	s = New(WithMaxKeys(1), func(o *options) {
		o.noReaper = true
		o.onQuotaRetry = func() { s.Close() }
	})
	require.NoError(t, s.SetWithTTL("old", []byte("v"), 0)) // held, already expired
	sub := s.Subscribe()
	defer sub.Close()
	require.ErrorIs(t, s.Set("new", []byte("v")), ErrClosed)
	require.Equal(t, 1, s.Len(), "the expired entry was reclaimed after Close")
	_, ok, _ := s.s.peek("new")
	require.False(t, ok, "the retry stored the key after Close")
	for range 2 {
		ev, err := sub.Recv(context.Background())
		require.ErrorIs(t, err, ErrClosed, "got event %+v", ev)
	}
}

// TestConcurrentCloseWaits has a store goroutine that is slow to stop and
// closes the store from two goroutines: neither Close may return before the
// goroutine has stopped (the second used to return at once).
func TestConcurrentCloseWaits(t *testing.T) {
	s := New()
	st := s.s
	release, stopped := make(chan struct{}), make(chan struct{})
	var stoppedFlag atomic.Bool
	st.life.Lock()
	st.wg.Add(1) // a watcher that takes a while to wind down
	st.life.Unlock()
	go func() {
		defer st.wg.Done()
		<-st.done
		<-release
		stoppedFlag.Store(true)
		close(stopped)
	}()

	first := make(chan bool, 1)
	go func() { s.Close(); first <- stoppedFlag.Load() }()
	for !st.closed.Load() {
		runtime.Gosched()
	}
	second := make(chan bool, 1)
	go func() { s.Close(); second <- stoppedFlag.Load() }()
	select {
	case <-second:
		t.Fatal("a concurrent Close returned while a store goroutine still ran")
	case <-first:
		t.Fatal("Close returned while a store goroutine still ran")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
	require.True(t, <-first, "first Close returned before the goroutine stopped")
	require.True(t, <-second, "second Close returned before the goroutine stopped")
	require.NoError(t, s.Close(), "a later Close")
}

// A read validates its key only when the store holds no entry for it: a
// key found, live or expired (and not yet reclaimed: no reaper here), was
// validated when it was stored.
func TestReadsValidateOnlyKeysNotHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		s := New(noReaper, WithKeyValidator(func(key string) error {
			calls.Add(1)
			return nil
		}))
		defer s.Close()
		if err := s.Set("live", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetWithTTL("expired", []byte("v"), time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		calls.Store(0)
		for _, tc := range []struct {
			key   string
			found bool
			calls int64
		}{{"live", true, 0}, {"expired", false, 0}, {"absent", false, 1}} {
			if _, found, err := s.Get(tc.key); err != nil || found != tc.found {
				t.Fatalf("Get(%q) = found %v, %v; want %v", tc.key, found, err, tc.found)
			}
			if n := calls.Swap(0); n != tc.calls {
				t.Errorf("Get(%q) called the validator %d times, want %d", tc.key, n, tc.calls)
			}
		}
	})
}
