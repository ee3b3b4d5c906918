package shardkv_test

// Concurrency tests: exactness of the atomic operations and of the quota
// under contention, per-key event order, lag accounting, and shutdown of
// blocked subscribers. Sized for a couple of seconds under -race on two
// cores.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardkv/shardkv"
	"github.com/stretchr/testify/require"
)

// ccStart runs n goroutines that begin together and returns a wait function.
func ccStart(n int, fn func(g int)) (wait func()) {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			fn(g)
		}()
	}
	close(gate)
	return wg.Wait
}

// ccCancelled is a done context: Recv with it never blocks.
func ccCancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestConcurrentIncrementsSumExactly(t *testing.T) {
	const goroutines, perG, keys = 8, 300, 3
	t.Run("positive", func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		// Goroutine g adds g+1: with positive deltas every result an
		// Increment returns for a key is distinct.
		results := make([][][]int64, goroutines)
		ccStart(goroutines, func(g int) {
			results[g] = make([][]int64, keys)
			for i := range perG {
				k := i % keys
				n, err := s.Increment("ctr/"+strconv.Itoa(k), int64(g+1))
				if err != nil {
					t.Error(err)
					return
				}
				results[g][k] = append(results[g][k], n)
			}
		})()
		for k := range keys {
			var want int64
			var all []int64
			for g := range goroutines {
				want += int64(g+1) * int64(len(results[g][k]))
				all = append(all, results[g][k]...)
				require.True(t, slices.IsSorted(results[g][k]), "one goroutine's results for a key went down")
			}
			v, found, err := s.GetString("ctr/" + strconv.Itoa(k))
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, strconv.FormatInt(want, 10), v)
			slices.Sort(all)
			require.Len(t, slices.Compact(all), goroutines*perG/keys, "two Increments returned the same value")
			require.Equal(t, want, all[len(all)-1])
		}
	})
	t.Run("mixed-sign", func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		deltas := []int64{5, -3, 1, -7, 11, -2, 4, -9}
		ccStart(goroutines, func(g int) {
			for i := range perG {
				if _, err := s.Increment("ctr/"+strconv.Itoa(i%keys), deltas[(g+i)%len(deltas)]); err != nil {
					t.Error(err)
					return
				}
			}
		})()
		for k := range keys {
			var want int64
			for g := range goroutines {
				for i := k; i < perG; i += keys {
					want += deltas[(g+i)%len(deltas)]
				}
			}
			n, err := s.Increment("ctr/"+strconv.Itoa(k), 0)
			require.NoError(t, err)
			require.Equal(t, want, n, "key %d", k)
		}
	})
}

// The last free quota slots go to exactly as many new keys as there are
// slots, whatever operation creates them.
func TestConcurrentQuotaLastSlots(t *testing.T) {
	const maxKeys, prefill, goroutines, perG = 100, 90, 16, 20
	for round := range 8 {
		s := shardkv.New(shardkv.WithMaxKeys(maxKeys))
		for i := range prefill {
			require.NoError(t, s.Set("pre/"+strconv.Itoa(i), []byte("x")))
		}
		var ok, refused atomic.Int64
		ccStart(goroutines, func(g int) {
			for i := range perG {
				k := fmt.Sprintf("new/%d/%d", g, i)
				var err error
				switch (g + round) % 4 {
				case 0:
					err = s.Set(k, []byte("v"))
				case 1:
					err = s.SetWithTTL(k, []byte("v"), time.Hour)
				case 2:
					_, err = s.Increment(k, 1)
				case 3:
					var swapped bool
					swapped, err = s.CompareAndSwap(k, nil, []byte("v"))
					if err == nil && !swapped {
						err = errors.New("CompareAndSwap(nil) on a new key did not swap")
					}
				}
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, shardkv.ErrQuotaExceeded):
					refused.Add(1)
				default:
					t.Errorf("%s: %v", k, err)
				}
			}
		})()
		require.EqualValues(t, maxKeys-prefill, ok.Load(), "round %d", round)
		require.EqualValues(t, goroutines*perG-(maxKeys-prefill), refused.Load())
		require.Equal(t, maxKeys, s.Len())
		keys, err := s.ListKeys("")
		require.NoError(t, err)
		require.Len(t, keys, maxKeys)
		// Overwriting at the quota is still allowed.
		require.NoError(t, s.Set("pre/0", []byte("y")))
		require.ErrorIs(t, s.Set("one/more", nil), shardkv.ErrQuotaExceeded)
		require.NoError(t, s.Close())
	}
}

// Deleters free slots while creators race for them. Len never exceeds
// MaxKeys; once the deleters are done a refusal with a free slot is a bug;
// at the end every slot is used and Len agrees with ListKeys.
func TestConcurrentQuotaWithDeletes(t *testing.T) {
	const maxKeys, deleters, creators, perCreator = 100, 4, 8, 40
	s := shardkv.New(shardkv.WithMaxKeys(maxKeys))
	defer s.Close()
	for i := range maxKeys {
		require.NoError(t, s.Set("pre/"+strconv.Itoa(i), []byte("x")))
	}

	stop := make(chan struct{})
	var overLimit atomic.Int64
	watcher := make(chan int)
	go func() {
		seen := 0
		for {
			select {
			case <-stop:
				watcher <- seen
				return
			default:
			}
			if n := s.Len(); n > maxKeys || n < 0 {
				overLimit.Store(int64(n))
			}
			seen++
		}
	}()

	var deletersLeft atomic.Int64
	deletersLeft.Store(deleters)
	var created, deleted, wronglyRefused atomic.Int64
	ccStart(deleters+creators, func(g int) {
		if g < deleters {
			defer deletersLeft.Add(-1)
			for i := g; i < maxKeys; i += deleters {
				existed, err := s.Delete("pre/" + strconv.Itoa(i))
				if err != nil || !existed {
					t.Errorf("Delete(pre/%d) = %v, %v", i, existed, err)
				}
				deleted.Add(1)
			}
			return
		}
		for i := range perCreator {
			k := fmt.Sprintf("new/%d/%d", g, i)
			for {
				done := deletersLeft.Load() == 0
				err := s.Set(k, []byte("v"))
				if err == nil {
					created.Add(1)
					break
				}
				if !errors.Is(err, shardkv.ErrQuotaExceeded) {
					t.Errorf("Set(%s): %v", k, err)
					return
				}
				if done {
					// Nothing is deleted any more, so Len only grows:
					// a Len below the quota now was below it at the
					// refusal too.
					if n := s.Len(); n < maxKeys {
						wronglyRefused.Store(int64(n))
					}
					break
				}
			}
		}
	})()
	close(stop)
	require.Positive(t, <-watcher)
	require.Zero(t, overLimit.Load(), "Len exceeded MaxKeys")
	require.Zero(t, wronglyRefused.Load(), "a new key was refused while the store held fewer than MaxKeys")
	require.EqualValues(t, maxKeys, deleted.Load())
	require.EqualValues(t, maxKeys, created.Load(), "the freed slots were not all used")
	require.Equal(t, maxKeys, s.Len())
	keys, err := s.ListKeys("")
	require.NoError(t, err)
	require.Len(t, keys, s.Len())
	pre, err := s.ListKeys("pre/")
	require.NoError(t, err)
	require.Empty(t, pre)
}

func TestConcurrentCASCounter(t *testing.T) {
	const goroutines, perG = 8, 150
	s := shardkv.New()
	defer s.Close()
	var retries atomic.Int64
	ccStart(goroutines, func(int) {
		for range perG {
			for {
				v, found, err := s.Get("cas")
				if err != nil {
					t.Error(err)
					return
				}
				runtime.Gosched() // let another goroutine in between the read and the swap
				var expected, next []byte
				if found {
					n, err := strconv.Atoi(string(v))
					if err != nil {
						t.Error(err)
						return
					}
					expected, next = v, []byte(strconv.Itoa(n+1))
				} else {
					next = []byte("1")
				}
				swapped, err := s.CompareAndSwap("cas", expected, next)
				if err != nil {
					t.Error(err)
					return
				}
				if swapped {
					break
				}
				retries.Add(1)
			}
		}
	})()
	v, found, err := s.GetString("cas")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, strconv.Itoa(goroutines*perG), v)
	t.Logf("%d CAS retries", retries.Load())
}

// Each goroutine writes its own key (Sets of an increasing sequence, with
// Deletes between) and Increments shared keys. A subscriber that reads
// everything sees each own key's events exactly in program order, and each
// shared key's Increment events in the order they took effect: strictly
// increasing, stepping by the deltas, and exactly the values the
// Increments returned.
func TestConcurrentPerKeyEventOrder(t *testing.T) {
	const goroutines, perG, shared = 6, 300, 2
	s := shardkv.New(shardkv.WithWatchCapacity(1 << 16))
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()

	type ev struct {
		kind shardkv.EventKind
		val  string
	}
	want := make([][]ev, goroutines)          // per own key
	returned := make([][][]int64, goroutines) // per goroutine, per shared key
	ccStart(goroutines, func(g int) {
		own := "own/" + strconv.Itoa(g)
		returned[g] = make([][]int64, shared)
		for i := range perG {
			if i%7 == 6 {
				existed, err := s.Delete(own)
				if err != nil || !existed {
					t.Errorf("Delete(%s) = %v, %v", own, existed, err)
					return
				}
				want[g] = append(want[g], ev{shardkv.EventDelete, ""})
			} else {
				v := strconv.Itoa(i)
				if err := s.SetString(own, v); err != nil {
					t.Error(err)
					return
				}
				want[g] = append(want[g], ev{shardkv.EventSet, v})
			}
			k := i % shared
			n, err := s.Increment("shared/"+strconv.Itoa(k), int64(g+1))
			if err != nil {
				t.Error(err)
				return
			}
			returned[g][k] = append(returned[g][k], n)
		}
	})()

	got := map[string][]ev{}
	for range goroutines * perG * 2 {
		e, err := sub.Recv(ccCancelled())
		require.NoError(t, err)
		got[e.Key] = append(got[e.Key], ev{e.Kind, string(e.Value)})
	}
	_, err := sub.Recv(ccCancelled())
	require.ErrorIs(t, err, context.Canceled, "more events than mutations")

	for g := range goroutines {
		require.Equal(t, want[g], got["own/"+strconv.Itoa(g)], "own key %d", g)
	}
	for k := range shared {
		var all []int64
		for g := range goroutines {
			all = append(all, returned[g][k]...)
		}
		slices.Sort(all)
		evs := got["shared/"+strconv.Itoa(k)]
		require.Len(t, evs, len(all))
		prev := int64(0)
		for i, e := range evs {
			require.Equal(t, shardkv.EventSet, e.kind)
			n, err := strconv.ParseInt(e.val, 10, 64)
			require.NoError(t, err)
			require.Greater(t, n, prev, "shared/%d event %d not increasing", k, i)
			require.LessOrEqual(t, n-prev, int64(goroutines), "shared/%d event %d steps by more than any delta", k, i)
			require.Equal(t, all[i], n, "shared/%d: events are not the Increments' results in order", k)
			prev = n
		}
	}
}

// ccEvents publishes n events from offset on distinct keys (so across shards),
// alternating Sets and Deletes, and returns what each event must look like.
func ccEvents(t *testing.T, s *shardkv.Store, from, n int) []shardkv.Event {
	t.Helper()
	var out []shardkv.Event
	for i := from; i < from+n; i++ {
		k := "lag/" + strconv.Itoa(i/2)
		if i%2 == 0 {
			require.NoError(t, s.SetString(k, strconv.Itoa(i)))
			out = append(out, shardkv.Event{Key: k, Kind: shardkv.EventSet, Value: []byte(strconv.Itoa(i)), Op: "set", New: true})
		} else {
			existed, err := s.Delete(k)
			require.NoError(t, err)
			require.True(t, existed)
			out = append(out, shardkv.Event{Key: k, Kind: shardkv.EventDelete, Op: "del"})
		}
	}
	return out
}

func TestLagReportsExactMissedCount(t *testing.T) {
	const capacity = 8
	for _, k := range []int{0, 1, 5, 8, 17, 100} {
		t.Run(fmt.Sprintf("over=%d", k), func(t *testing.T) {
			s := shardkv.New(shardkv.WithWatchCapacity(capacity))
			defer s.Close()
			sub := s.Subscribe()
			defer sub.Close()
			evs := ccEvents(t, s, 0, capacity+k)
			if k > 0 {
				_, err := sub.Recv(ccCancelled())
				var lag *shardkv.LaggedError
				require.ErrorAs(t, err, &lag)
				require.EqualValues(t, k, lag.Missed)
			}
			for _, want := range evs[k:] {
				got, err := sub.Recv(ccCancelled())
				require.NoError(t, err)
				require.Equal(t, want, got)
			}
			_, err := sub.Recv(ccCancelled())
			require.ErrorIs(t, err, context.Canceled)

			// Caught up again: the next events come without lag.
			for _, want := range ccEvents(t, s, 1000, capacity) {
				got, err := sub.Recv(context.Background())
				require.NoError(t, err)
				require.Equal(t, want, got)
			}
		})
	}
}

// Missed counts every event published while the subscriber was behind,
// whatever its key or shard, and a subscriber that falls behind does not
// disturb one that keeps up.
func TestLagCountsAcrossKeysAndSubscribers(t *testing.T) {
	s := shardkv.New(shardkv.WithWatchCapacity(8), shardkv.WithShards(16))
	defer s.Close()
	slow, fast := s.Subscribe(), s.Subscribe()
	defer slow.Close()
	defer fast.Close()
	var evs []shardkv.Event
	for i := range 30 {
		k := "key-" + strconv.Itoa(i) // 30 keys over 16 shards
		_, err := s.Increment(k, int64(i))
		require.NoError(t, err)
		evs = append(evs, shardkv.Event{Key: k, Kind: shardkv.EventSet, Value: []byte(strconv.Itoa(i)), Op: "incrby", New: true})
		got, err := fast.Recv(ccCancelled())
		require.NoError(t, err, "the subscriber that keeps up lagged")
		require.Equal(t, evs[i], got)
	}
	_, err := slow.Recv(ccCancelled())
	var lag *shardkv.LaggedError
	require.ErrorAs(t, err, &lag)
	require.EqualValues(t, 22, lag.Missed)
	for _, want := range evs[22:] {
		got, err := slow.Recv(ccCancelled())
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
}

// A subscriber that never falls more than the capacity behind never lags,
// even with the writer running concurrently.
func TestSubscriberKeepingUpNeverLags(t *testing.T) {
	const capacity, total = 8, 4000
	s := shardkv.New(shardkv.WithWatchCapacity(capacity))
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()
	tokens := make(chan struct{}, capacity) // events published, not yet read
	writerDone := make(chan error, 1)
	go func() {
		for i := range total {
			tokens <- struct{}{}
			if _, err := s.Increment("k"+strconv.Itoa(i%5), 1); err != nil {
				writerDone <- err
				return
			}
		}
		writerDone <- nil
	}()
	counts := map[string]int{}
	for range total {
		ev, err := sub.Recv(context.Background())
		require.NoError(t, err)
		counts[ev.Key]++
		require.Equal(t, strconv.Itoa(counts[ev.Key]), string(ev.Value))
		<-tokens
	}
	require.NoError(t, <-writerDone)
}

// Several goroutines may share one Subscription: each event goes to exactly
// one Recv.
func TestSubscriptionSharedByReceivers(t *testing.T) {
	const total, receivers = 2000, 4
	s := shardkv.New(shardkv.WithWatchCapacity(total))
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()
	var mu sync.Mutex
	seen := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var received atomic.Int64
	var wg sync.WaitGroup
	for range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, err := sub.Recv(ctx)
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				seen[string(ev.Value)]++
				mu.Unlock()
				if received.Add(1) == total {
					cancel()
				}
			}
		}()
	}
	for i := range total {
		require.NoError(t, s.SetString("k"+strconv.Itoa(i%7), strconv.Itoa(i)))
	}
	wg.Wait()
	require.Len(t, seen, total)
	for v, n := range seen {
		require.Equal(t, 1, n, "event %s received %d times", v, n)
	}
}

// Close wakes every goroutine blocked in Recv or reading a WatchPrefix
// channel, and returns once the store's goroutines are gone (the bubble
// fails the test if any goroutine is left).
func TestCloseUnblocksReceivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		results := make(chan error, 10)
		var subs []*shardkv.Subscription
		for range 3 {
			sub := s.Subscribe()
			subs = append(subs, sub)
			go func() {
				_, err := sub.Recv(context.Background())
				results <- err
			}()
		}
		watchers := make(chan int, 10)
		for _, p := range []string{"", "a/"} {
			ch := s.WatchPrefix(context.Background(), p)
			go func() {
				n := 0
				for range ch {
					n++
				}
				watchers <- n
			}()
		}
		synctest.Wait()
		require.Empty(t, results, "Recv returned with nothing published")
		require.Empty(t, watchers)

		require.NoError(t, s.Close())
		synctest.Wait()
		require.Len(t, results, 3)
		for range 3 {
			require.ErrorIs(t, <-results, shardkv.ErrClosed)
		}
		require.Len(t, watchers, 2)
		require.Zero(t, <-watchers)
		require.Zero(t, <-watchers)

		// Later calls see the closed store too.
		for _, sub := range subs {
			_, err := sub.Recv(context.Background())
			require.ErrorIs(t, err, shardkv.ErrClosed)
			sub.Close()
		}
		_, err := s.Subscribe().Recv(context.Background())
		require.ErrorIs(t, err, shardkv.ErrClosed)
		_, open := <-s.WatchPrefix(context.Background(), "")
		require.False(t, open, "WatchPrefix on a closed store gave an open channel")
		require.NoError(t, s.Close(), "second Close")
	})
}

// Close while writers publish, subscribers read and WatchPrefix feeders
// block on slow readers: Close returns, every Recv ends with ErrClosed
// (after at most the events held), every watch channel closes, writers get
// ErrClosed, and no goroutine is left (TestMain's goleak check).
func TestCloseUnderLoad(t *testing.T) {
	s := shardkv.New(shardkv.WithWatchCapacity(16))
	var wg sync.WaitGroup
	recvErrs := make(chan error, 8)
	for range 8 {
		sub := s.Subscribe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			for {
				_, err := sub.Recv(context.Background())
				var lag *shardkv.LaggedError
				if err != nil && !errors.As(err, &lag) {
					recvErrs <- err
					return
				}
			}
		}()
	}
	for i := range 4 {
		ch := s.WatchPrefix(context.Background(), "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ch {
				if i%2 == 0 {
					time.Sleep(50 * time.Microsecond) // a slow reader: its feeder waits to send
				}
			}
		}()
	}
	writeErrs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if err := s.SetString("w/"+strconv.Itoa(g), strconv.Itoa(i)); err != nil {
					writeErrs <- err
					return
				}
			}
		}()
	}
	time.Sleep(2 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		_ = s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatal("goroutines still blocked after Close")
	}
	require.Len(t, recvErrs, 8)
	close(recvErrs)
	for err := range recvErrs {
		require.ErrorIs(t, err, shardkv.ErrClosed)
	}
	require.Len(t, writeErrs, 4)
	close(writeErrs)
	for err := range writeErrs {
		require.ErrorIs(t, err, shardkv.ErrClosed)
	}
}

// Events held when the store closes may still be delivered, in order,
// before ErrClosed; nothing else is.
func TestCloseDrainsHeldEventsThenErrClosed(t *testing.T) {
	s := shardkv.New()
	sub := s.Subscribe()
	defer sub.Close()
	evs := ccEvents(t, s, 0, 5)
	require.NoError(t, s.Close())
	for i := 0; ; i++ {
		ev, err := sub.Recv(context.Background())
		if err != nil {
			require.ErrorIs(t, err, shardkv.ErrClosed)
			break
		}
		require.Less(t, i, len(evs), "more events than published")
		require.Equal(t, evs[i], ev)
	}
	_, err := sub.Recv(context.Background())
	require.ErrorIs(t, err, shardkv.ErrClosed)
}

// Subscription.Close ends its own Recv and no other.
func TestSubscriptionCloseUnblocksOnlyItsOwnRecv(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		a, b := s.Subscribe(), s.Subscribe()
		defer b.Close()
		type result struct {
			ev  shardkv.Event
			err error
		}
		ra, rb := make(chan result, 1), make(chan result, 1)
		go func() { ev, err := a.Recv(context.Background()); ra <- result{ev, err} }()
		go func() { ev, err := b.Recv(context.Background()); rb <- result{ev, err} }()
		synctest.Wait()
		a.Close()
		synctest.Wait()
		require.Len(t, ra, 1)
		require.ErrorIs(t, (<-ra).err, shardkv.ErrClosed)
		require.Empty(t, rb, "closing one subscription woke another")

		require.NoError(t, s.SetString("k", "v"))
		synctest.Wait()
		r := <-rb
		require.NoError(t, r.err)
		require.Equal(t, shardkv.Event{Key: "k", Kind: shardkv.EventSet, Value: []byte("v"), Op: "set", New: true}, r.ev)

		// A closed subscription returns ErrClosed even with events held.
		_, err := a.Recv(context.Background())
		require.ErrorIs(t, err, shardkv.ErrClosed)
		a.Close()
	})
}

// A done context ends a blocked Recv with its error; the subscription stays
// usable.
func TestRecvContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		sub := s.Subscribe()
		defer sub.Close()

		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, err := sub.Recv(ctx); errc <- err }()
		synctest.Wait()
		require.Empty(t, errc)
		cancel()
		synctest.Wait()
		require.ErrorIs(t, <-errc, context.Canceled)

		tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer tcancel()
		begin := time.Now()
		_, err := sub.Recv(tctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 5*time.Millisecond, time.Since(begin))

		require.NoError(t, s.SetString("k", "v"))
		ev, err := sub.Recv(context.Background())
		require.NoError(t, err)
		require.Equal(t, "k", ev.Key)

		// WatchPrefix's channel closes when its ctx ends.
		wctx, wcancel := context.WithCancel(context.Background())
		ch := s.WatchPrefix(wctx, "")
		synctest.Wait()
		wcancel()
		_, open := <-ch
		require.False(t, open)
	})
}

// Writers and subscribers race; at the end the events of each key, replayed,
// give exactly the store's final contents: per-key order is the order the
// mutations took effect, every expired entry is reclaimed with exactly one
// EventExpire, and Delete publishes only for a key that was there.
func TestConcurrentEventReplayMatchesState(t *testing.T) {
	const goroutines, perG, keys = 4, 400, 12
	s := shardkv.New(shardkv.WithWatchCapacity(1<<16), shardkv.WithMaxKeys(10))
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()
	ccStart(goroutines, func(g int) {
		rng := rand.New(rand.NewPCG(uint64(g), 7))
		for range perG {
			k := "r/" + strconv.Itoa(rng.IntN(keys))
			v := []byte(strconv.Itoa(rng.IntN(100)))
			var err error
			switch rng.IntN(6) {
			case 0:
				err = s.Set(k, v)
			case 1:
				err = s.SetWithTTL(k, v, time.Duration(rng.IntN(1500))*time.Microsecond)
			case 2:
				_, err = s.Delete(k)
			case 3:
				_, err = s.Increment(k, int64(rng.IntN(5)))
			case 4:
				_, err = s.CompareAndSwap(k, v, []byte(strconv.Itoa(rng.IntN(100))))
			case 5:
				_, err = s.CompareAndSwap(k, nil, v)
			}
			if err != nil && !errors.Is(err, shardkv.ErrQuotaExceeded) {
				t.Error(err)
				return
			}
		}
	})()
	time.Sleep(2 * time.Millisecond) // every TTL above has passed
	s.CleanExpired()

	state := map[string]string{}
	for n := 0; ; n++ {
		ev, err := sub.Recv(ccCancelled())
		if errors.Is(err, context.Canceled) {
			t.Logf("%d events", n)
			break
		}
		require.NoError(t, err)
		_, present := state[ev.Key]
		switch ev.Kind {
		case shardkv.EventSet:
			state[ev.Key] = string(ev.Value)
		case shardkv.EventDelete, shardkv.EventExpire:
			require.True(t, present, "%v event %d for a key not present", ev.Kind, n)
			require.Nil(t, ev.Value)
			delete(state, ev.Key)
		default:
			t.Fatalf("unknown event kind %v", ev.Kind)
		}
	}
	final := map[string]string{}
	for k, v := range s.All("") {
		final[k] = string(v)
	}
	require.Equal(t, final, state)
	require.Equal(t, len(final), s.Len())
}

// Every operation at once, with TTLs of a few ms expiring under the writers'
// feet, for about 300 ms. Len never exceeds MaxKeys (which only grows here);
// afterwards Len, ListKeys and Keys agree.
func TestConcurrentMixedOperations(t *testing.T) {
	const workers, keys = 6, 48
	const duration = 300 * time.Millisecond
	s := shardkv.New(shardkv.WithMaxKeys(32), shardkv.WithWatchCapacity(64))
	defer s.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var violations atomic.Int64
	var bg sync.WaitGroup
	bg.Add(3)
	go func() { // the quota watcher
		defer bg.Done()
		for ctx.Err() == nil {
			n := s.Len()
			if m := s.MaxKeys(); n > m || n < 0 {
				violations.Add(1)
				t.Errorf("Len() = %d with MaxKeys() = %d", n, m)
			}
			runtime.Gosched()
		}
	}()
	go func() { // a subscriber that may lag
		defer bg.Done()
		sub := s.Subscribe()
		defer sub.Close()
		for {
			_, err := sub.Recv(ctx)
			var lag *shardkv.LaggedError
			switch {
			case err == nil, errors.As(err, &lag):
			case errors.Is(err, context.Canceled):
				return
			default:
				t.Error(err)
				return
			}
		}
	}()
	go func() { // a prefix watcher
		defer bg.Done()
		for ev := range s.WatchPrefix(ctx, "m/1") {
			if len(ev.Key) < 3 || ev.Key[:3] != "m/1" {
				t.Errorf("WatchPrefix(m/1) delivered %q", ev.Key)
			}
		}
	}()

	deadline := time.Now().Add(duration)
	var ops atomic.Int64
	var raiseMu sync.Mutex
	ccStart(workers, func(g int) {
		rng := rand.New(rand.NewPCG(uint64(g), 99))
		for n := 0; ; n++ {
			if n%64 == 0 && time.Now().After(deadline) {
				return
			}
			ops.Add(1)
			k := "m/" + strconv.Itoa(rng.IntN(keys))
			v := []byte(strconv.Itoa(rng.IntN(1000)))
			var err error
			switch r := rng.IntN(100); {
			case r < 15:
				err = s.Set(k, v)
			case r < 30:
				err = s.SetWithTTL(k, v, time.Duration(rng.IntN(3000))*time.Microsecond)
			case r < 40:
				_, err = s.Delete(k)
			case r < 52:
				_, err = s.Increment(k, int64(rng.IntN(7)-3))
			case r < 62:
				cur, _, gerr := s.Get(k)
				if gerr != nil {
					err = gerr
					break
				}
				_, err = s.CompareAndSwap(k, cur, v)
			case r < 67:
				_, err = s.CompareAndSwap(k, nil, v)
			case r < 72:
				_, err = s.ListKeys("m/" + strconv.Itoa(rng.IntN(5)))
			case r < 77:
				for range s.Keys("m/2") {
				}
			case r < 82:
				s.Exists(k)
			case r < 87:
				_, _, err = s.GetString(k)
			case r < 91:
				_, _, err = s.TTL(k)
			case r < 95:
				s.CleanExpired()
			case r < 96:
				s.Clear()
			case r < 97:
				if rng.IntN(20) == 0 {
					raiseMu.Lock() // so that racing raisers never lower it
					s.SetMaxKeys(s.MaxKeys() + 1)
					raiseMu.Unlock()
				}
			default:
				if n := s.Len(); n > s.MaxKeys() {
					t.Errorf("Len() = %d > MaxKeys() = %d", n, s.MaxKeys())
				}
			}
			var se *shardkv.StorageError
			if err != nil && !errors.Is(err, shardkv.ErrQuotaExceeded) && !errors.As(err, &se) {
				t.Errorf("%s: %v", k, err)
				return
			}
		}
	})()
	cancel()
	bg.Wait()
	require.Zero(t, violations.Load())
	t.Logf("%d operations", ops.Load())

	time.Sleep(3 * time.Millisecond) // every TTL above has passed
	s.CleanExpired()
	listed, err := s.ListKeys("")
	require.NoError(t, err)
	require.Equal(t, s.Len(), len(listed), "Len disagrees with ListKeys after CleanExpired")
	iterated := []string{} // as ListKeys returns when nothing is held
	for k := range s.Keys("") {
		iterated = append(iterated, k)
	}
	slices.Sort(listed)
	slices.Sort(iterated)
	require.Equal(t, listed, iterated)
	require.LessOrEqual(t, s.Len(), s.MaxKeys())
	for _, k := range listed {
		_, found, err := s.Get(k)
		require.NoError(t, err)
		require.True(t, found, "%s listed but not found", k)
	}
}

// TestLockFreeReadsSeeStableKeys: Get, View, Exists and TTL take no lock,
// so they race with every write. Keys that are set once and never touched
// again must be seen, with their own value, by every read, while writers
// churn other keys of the same shards: inserts, deletes (tombs, and tombs
// turned back to nil), TTL keys expiring and reclaimed, and tables growing
// and being rebuilt under the readers. One shard makes every key share it.
func TestLockFreeReadsSeeStableKeys(t *testing.T) {
	s := shardkv.New(shardkv.WithShards(1), shardkv.WithMaxKeys(1<<20))
	defer s.Close()
	// Churn keys first, so that some stable keys sit behind churn keys in
	// their probe runs, with the churn's tombs in front of them.
	for i := range 2000 {
		require.NoError(t, s.Set("churn:"+strconv.Itoa(i), nil))
	}
	stable := make([]string, 64)
	for i := range stable {
		stable[i] = fmt.Sprintf("stable:%02d", i)
		require.NoError(t, s.Set(stable[i], []byte(stable[i])))
	}
	var stop atomic.Bool
	var readers sync.WaitGroup
	for g := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; !stop.Load(); i++ {
				k := stable[(i*7+g)%len(stable)]
				v, ok, err := s.Get(k)
				if err != nil || !ok || string(v) != k {
					t.Errorf("Get(%q) = %q, %v, %v", k, v, ok, err)
					return
				}
				if found, _ := s.View(k, func(v []byte) {
					if string(v) != k {
						t.Errorf("View(%q) saw %q", k, v)
					}
				}); !found || !s.Exists(k) {
					t.Errorf("%q missing", k)
					return
				}
				if ttl, ok, _ := s.TTL(k); !ok || ttl != shardkv.NoTTL {
					t.Errorf("TTL(%q) = %v, %v", k, ttl, ok)
					return
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(3, 4))
	n := 40_000
	if testing.Short() {
		n = 10_000
	}
	for i := range n {
		k := "churn:" + strconv.Itoa(rng.IntN(2000))
		switch rng.IntN(4) {
		case 0:
			_, _ = s.Delete(k)
		case 1:
			require.NoError(t, s.SetWithTTL(k, []byte("t"), time.Duration(rng.IntN(3))*time.Millisecond))
		default:
			require.NoError(t, s.Set(k, []byte(strconv.Itoa(i))))
		}
		if i%5000 == 0 { // now and then, the whole churn space at once: growth
			for j := range 3000 {
				require.NoError(t, s.Set("burst:"+strconv.Itoa(j), nil))
			}
			for j := range 3000 {
				_, _ = s.Delete("burst:" + strconv.Itoa(j))
			}
		}
	}
	stop.Store(true)
	readers.Wait()
}
