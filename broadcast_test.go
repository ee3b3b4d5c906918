package shardkv

// White-box tests of the broadcast ring behind Subscribe and WatchPrefix.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// ringDone is a never-closed store-close channel for rings made alone.
var ringDone = make(chan struct{})

func ringEvent(i int) (string, EventKind, string) {
	return "key/" + strconv.Itoa(i), EventKind(1 + i%3), strconv.Itoa(i)
}

func ringPublishN(r *ring, from, n int) {
	for i := from; i < from+n; i++ {
		r.publish(ringEvent(i))
	}
}

// ringCancelled is a done context: Recv with it never blocks.
func ringCancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func requireRingEvent(t *testing.T, i int, ev Event) {
	t.Helper()
	key, kind, val := ringEvent(i)
	want := Event{Key: key, Kind: kind, Op: defaultOp[kind]}
	if kind == EventSet { // only a set carries its value
		want.Value = []byte(val)
	}
	require.Equal(t, want, ev, "event %d", i)
}

func TestRingPublishWithoutSubscriberDoesNothing(t *testing.T) {
	r := newRing(8, ringDone)
	ringPublishN(r, 0, 20)
	require.Zero(t, r.head.Load(), "head moved with no subscriber")
	for i := range r.slots {
		require.Nil(t, r.slots[i].Load(), "slot %d written with no subscriber", i)
	}
	v := "value"
	allocs := testing.AllocsPerRun(1000, func() { r.publish("key", EventSet, v) })
	require.Zero(t, allocs, "publish with no subscriber allocates")
	require.Zero(t, r.head.Load())

	// Once the last subscriber closes, publishing stops again.
	sub := r.subscribe()
	ringPublishN(r, 0, 3)
	require.EqualValues(t, 3, r.head.Load())
	sub.Close()
	sub.Close() // harmless, and must not count the subscriber twice
	require.Zero(t, r.subs.Load())
	ringPublishN(r, 3, 5)
	require.EqualValues(t, 3, r.head.Load(), "head moved after the last subscriber closed")
	allocs = testing.AllocsPerRun(1000, func() { r.publish("key", EventSet, v) })
	require.Zero(t, allocs)
}

func TestRingStoreWithoutSubscriberPublishesNothing(t *testing.T) {
	s := New()
	defer s.Close()
	require.NoError(t, s.Set("a", []byte("1")))
	_, err := s.Increment("n", 1)
	require.NoError(t, err)
	_, err = s.Delete("a")
	require.NoError(t, err)
	require.Zero(t, s.s.events.head.Load())

	sub := s.Subscribe()
	require.NoError(t, s.Set("a", []byte("2")))
	require.EqualValues(t, 1, s.s.events.head.Load())
	sub.Close()
	require.NoError(t, s.Set("a", []byte("3")))
	require.EqualValues(t, 1, s.s.events.head.Load())
}

func TestRingReadInOrder(t *testing.T) {
	r := newRing(8, ringDone)
	sub := r.subscribe()
	defer sub.Close()
	c := sub.cursor
	_, next, missed, ok := r.read(c)
	require.False(t, ok, "read at head returned an event")
	require.Zero(t, missed)
	require.Equal(t, c, next)

	ringPublishN(r, 0, 6)
	for i := range 6 {
		ev, next, missed, ok := r.read(c)
		require.True(t, ok, "position %d", c)
		require.Zero(t, missed)
		require.Equal(t, c+1, next)
		requireRingEvent(t, i, ev)
		c = next
	}
	_, next, missed, ok = r.read(c)
	require.False(t, ok)
	require.Zero(t, missed)
	require.Equal(t, c, next)
}

// A position claimed by a writer (head moved) but not yet stored reads as
// "nothing yet", not as an event and not as lag.
func TestRingClaimedButNotStored(t *testing.T) {
	r := newRing(4, ringDone)
	sub := r.subscribe()
	defer sub.Close()
	pos := r.head.Add(1) - 1
	_, next, missed, ok := r.read(pos)
	require.False(t, ok)
	require.Zero(t, missed)
	require.Equal(t, pos, next)

	ev, err := sub.Recv(ringCancelled())
	require.ErrorIs(t, err, context.Canceled, "Recv returned %v", ev)

	late := newEventNode("late", EventSet, "", "set", false)
	late.pos = pos
	r.slots[pos&r.mask].Store(late)
	ev, err = sub.Recv(ringCancelled())
	require.NoError(t, err)
	require.Equal(t, "late", ev.Key)

	// A stale node from an earlier lap in the slot is not the event either.
	r2 := newRing(4, ringDone)
	sub2 := r2.subscribe()
	defer sub2.Close()
	ringPublishN(r2, 0, 4) // positions 0..3 fill the 4 slots
	for range 4 {
		_, err := sub2.Recv(ringCancelled())
		require.NoError(t, err)
	}
	p := r2.head.Add(1) - 1 // position 4 claimed: its slot still holds position 0
	require.EqualValues(t, 4, p)
	_, _, missed, ok = r2.read(p)
	require.False(t, ok, "read returned the previous lap's node")
	require.Zero(t, missed)
}

// Lag is counted against the configured capacity, not the slot array's
// power-of-two size: a subscriber n events behind a capacity-c ring misses
// exactly max(0, n-c) and then reads the last min(n, c) in order.
func TestRingLagCountedAgainstCapacity(t *testing.T) {
	for _, capacity := range []int{1, 3, 5, 8, 13} {
		r := newRing(capacity, ringDone)
		slots := len(r.slots)
		require.GreaterOrEqual(t, slots, capacity)
		require.Zero(t, slots&(slots-1), "slot array not a power of two")
		ns := []int{0, 1, capacity - 1, capacity, capacity + 1, slots, slots + 1, 2*capacity + 3, 3*slots + 1}
		slices.Sort(ns)
		for _, n := range slices.Compact(ns) {
			t.Run(fmt.Sprintf("cap=%d/n=%d", capacity, n), func(t *testing.T) {
				r := newRing(capacity, ringDone)
				sub := r.subscribe()
				defer sub.Close()
				ringPublishN(r, 0, n)
				want := max(0, n-capacity)
				if want > 0 {
					_, err := sub.Recv(ringCancelled())
					var lag *LaggedError
					require.ErrorAs(t, err, &lag)
					require.EqualValues(t, want, lag.Missed)
				}
				for i := want; i < n; i++ {
					ev, err := sub.Recv(ringCancelled())
					require.NoError(t, err, "event %d of %d", i, n)
					requireRingEvent(t, i, ev)
				}
				_, err := sub.Recv(ringCancelled())
				require.ErrorIs(t, err, context.Canceled, "more events than published")

				// And again from there: the subscriber is caught up.
				ringPublishN(r, n, capacity)
				for i := n; i < n+capacity; i++ {
					ev, err := sub.Recv(ringCancelled())
					require.NoError(t, err)
					requireRingEvent(t, i, ev)
				}
			})
		}
	}
}

// A subscriber that lags twice is told each time, with each gap's size.
func TestRingLagTwice(t *testing.T) {
	r := newRing(5, ringDone)
	sub := r.subscribe()
	defer sub.Close()
	ringPublishN(r, 0, 7) // 2 missed
	var lag *LaggedError
	_, err := sub.Recv(ringCancelled())
	require.ErrorAs(t, err, &lag)
	require.EqualValues(t, 2, lag.Missed)
	ev, err := sub.Recv(ringCancelled())
	require.NoError(t, err)
	requireRingEvent(t, 2, ev)
	ringPublishN(r, 7, 10) // now at position 3, head 17: 14 behind, 9 missed
	_, err = sub.Recv(ringCancelled())
	require.ErrorAs(t, err, &lag)
	require.EqualValues(t, 9, lag.Missed)
	for i := 12; i < 17; i++ {
		ev, err := sub.Recv(ringCancelled())
		require.NoError(t, err)
		requireRingEvent(t, i, ev)
	}
}

func TestLaggedErrorMessage(t *testing.T) {
	err := error(&LaggedError{Missed: 42})
	require.Contains(t, err.Error(), "42")
	var lag *LaggedError
	require.True(t, errors.As(fmt.Errorf("wrapped: %w", err), &lag))
	require.EqualValues(t, 42, lag.Missed)
}

func TestEventKindString(t *testing.T) {
	require.Equal(t, "set", EventSet.String())
	require.Equal(t, "delete", EventDelete.String())
	require.Equal(t, "expire", EventExpire.String())
	require.Equal(t, "set", fmt.Sprint(EventSet))
	for _, k := range []EventKind{0, 4, 255} {
		s := k.String()
		require.NotEmpty(t, s)
		require.NotContains(t, []string{"set", "delete", "expire"}, s)
	}
	require.EqualValues(t, 1, EventSet)
	require.EqualValues(t, 2, EventDelete)
	require.EqualValues(t, 3, EventExpire)
}

// A Recv blocked on an empty ring wakes for a publish.
func TestRingRecvWakesOnPublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		done := make(chan struct{})
		r := newRing(4, done)
		sub := r.subscribe()
		defer sub.Close()
		got := make(chan Event, 1)
		go func() {
			ev, err := sub.Recv(context.Background())
			if err == nil {
				got <- ev
			}
			close(got)
		}()
		synctest.Wait()
		require.Empty(t, got, "Recv returned with nothing published")
		r.publish(ringEvent(7))
		synctest.Wait()
		ev, ok := <-got
		require.True(t, ok, "Recv did not return the event")
		requireRingEvent(t, 7, ev)
	})
}

// A sleeping Recv is listed once, however often it has slept, and a wake
// empties the list: the list cannot grow with the number of sleeps.
func TestRingSleepersListedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRing(4, make(chan struct{}))
		subs := []*Subscription{r.subscribe(), r.subscribe()}
		for round := range 20 {
			got := make(chan Event, len(subs))
			for _, sub := range subs {
				go func() {
					if ev, err := sub.Recv(context.Background()); err == nil {
						got <- ev
					}
				}()
			}
			synctest.Wait()
			r.sleepMu.Lock()
			listed := len(r.sleepers)
			r.sleepMu.Unlock()
			require.Equal(t, len(subs), listed, "round %d: sleepers listed", round)
			require.EqualValues(t, len(subs), r.waiters.Load(), "round %d: waiters", round)
			r.publish(ringEvent(round))
			synctest.Wait()
			require.Len(t, got, len(subs), "round %d: a sleeper was not woken", round)
			r.sleepMu.Lock()
			listed = len(r.sleepers)
			r.sleepMu.Unlock()
			require.Zero(t, listed, "round %d: the wake left sleepers listed", round)
			require.Zero(t, r.waiters.Load(), "round %d: waiters after the wake", round)
		}
		// Closing a listed subscription takes it off the list: subscribers
		// that come and go while nothing is written are not kept.
		for _, sub := range subs {
			go func() { _, _ = sub.Recv(context.Background()) }()
		}
		synctest.Wait()
		for i, sub := range subs {
			sub.Close()
			synctest.Wait()
			r.sleepMu.Lock()
			listed := len(r.sleepers)
			r.sleepMu.Unlock()
			require.Equal(t, len(subs)-1-i, listed, "sleepers listed after %d closed", i+1)
		}
	})
}

// A Recv whose ctx ends while it sleeps stays listed (only a wake or Close
// takes it off); its next sleep must not list it again.
func TestRingSleeperListedOnceAcrossTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRing(4, make(chan struct{}))
		sub := r.subscribe()
		defer sub.Close()
		for i := range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := sub.Recv(ctx)
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded)
			r.sleepMu.Lock()
			listed := len(r.sleepers)
			r.sleepMu.Unlock()
			require.Equal(t, 1, listed, "after %d timed-out sleeps", i+1)
		}
	})
}

// A writer's wake that lands between a Recv's list and its re-check, for
// a node the Recv already had, must not cost the Recv the next event: the
// wake takes the subscription off the list, so the token it sends is all
// that wakes it when the next writer stores its node after the re-check.
func TestRingWakeBetweenListAndRecheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRing(4, make(chan struct{}))
		sub := r.subscribe()
		defer sub.Close()
		late := true
		testHookListed = func(*Subscription) {
			if late { // the wake of a writer delayed after storing its node
				late = false
				r.wake()
			}
		}
		defer func() { testHookListed = nil }()
		got := make(chan Event, 1)
		go func() {
			if ev, err := sub.Recv(context.Background()); err == nil {
				got <- ev
			}
		}()
		synctest.Wait() // asleep, after the late wake
		require.False(t, late, "the hook did not run")
		r.publish(ringEvent(1))
		synctest.Wait()
		require.Len(t, got, 1, "the Recv slept through an event")
		require.Equal(t, "key/1", (<-got).Key)
	})
}

// list never lists a closed subscription: a Recv that passed its done
// check just before Close ran would otherwise stay listed after Close's
// unlist, until some writer's wake.
func TestRingListRefusesClosed(t *testing.T) {
	r := newRing(4, ringDone)
	sub := r.subscribe()
	sub.Close()
	r.list(sub)
	require.Empty(t, r.sleepers)
	require.False(t, sub.listed)
}

// The ring keeps an event's kind as given, whatever its value: a backend
// may send any EventKind, and none is read as a report of lost events or
// as a big node.
func TestRingKeepsAnyKind(t *testing.T) {
	for _, kind := range []EventKind{0, EventExpire + 1, 0x7f, 0x80, 0x81, 0xff} {
		r := newRing(4, ringDone)
		sub := r.subscribe()
		r.emit("user:1", kind, "v", "op", true)
		ev, _, missed, ok := r.read(sub.cursor)
		require.True(t, ok, "kind %d: not read as an event", kind)
		require.Zero(t, missed, "kind %d", kind)
		require.Equal(t, Event{Key: "user:1", Kind: kind, Op: "op", New: true}, ev, "kind %d", kind)
		sub.Close()
	}
}

// A big node's event is a copy, its Value full, as every other node's is.
func TestBigEventNode(t *testing.T) {
	key, value := strings.Clone("user:1"), strings.Repeat("v", 100)
	r := newRing(4, ringDone)
	sub := r.subscribe()
	defer sub.Close()
	r.append(bigEventNode(key, EventSet, value, "set", true))
	r.append(bigEventNode(key, EventDelete, value, "del", false))
	for i, want := range []Event{
		{Key: key, Kind: EventSet, Value: []byte(value), Op: "set", New: true},
		{Key: key, Kind: EventDelete, Op: "del"},
	} {
		ev, _, _, ok := r.read(uint64(i))
		require.True(t, ok)
		require.Equal(t, want, ev)
		require.NotSame(t, unsafe.StringData(key), unsafe.StringData(ev.Key), "the event holds the caller's key")
		if ev.Value != nil {
			require.Equal(t, len(ev.Value), cap(ev.Value), "a subscriber's append would write into shared capacity")
		}
	}
}

// WatchPrefix delivers only its prefix's events, and skips a lagged stretch
// silently, going on from the oldest event still held.
func TestWatchPrefixFiltersAndSkipsLag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(WithWatchCapacity(4))
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := s.WatchPrefix(ctx, "user/")
		synctest.Wait() // the feeder is subscribed and waiting

		require.NoError(t, s.SetString("other/1", "x"))
		require.NoError(t, s.SetString("user/0", "0"))
		synctest.Wait() // the feeder holds user/0 and waits to send it
		ev := <-ch
		require.Equal(t, Event{Key: "user/0", Kind: EventSet, Value: []byte("0"), Op: "set", New: true}, ev)

		// The feeder is now back in Recv; publish a run it keeps up with.
		require.NoError(t, s.SetString("other/2", "x"))
		require.NoError(t, s.SetString("user/1", "1"))
		ev = <-ch
		require.Equal(t, "user/1", ev.Key)
		synctest.Wait()

		// Block the feeder on a send, then overrun it: 20 events while it
		// holds user/2, of which only the last 4 are still held after.
		require.NoError(t, s.SetString("user/2", "2"))
		synctest.Wait()
		for i := 3; i < 23; i++ {
			if i%2 == 0 {
				require.NoError(t, s.SetString("user/"+strconv.Itoa(i), strconv.Itoa(i)))
			} else {
				require.NoError(t, s.SetString("other/"+strconv.Itoa(i), "x"))
			}
		}
		require.Equal(t, "user/2", (<-ch).Key)
		// Held now: 19..22, of which user/20 and user/22 match.
		require.Equal(t, "user/20", (<-ch).Key)
		require.Equal(t, "user/22", (<-ch).Key)
		synctest.Wait()
		select {
		case ev := <-ch:
			t.Fatalf("unexpected event %v", ev)
		default:
		}

		_, err := s.Delete("user/20")
		require.NoError(t, err)
		ev = <-ch
		require.Equal(t, Event{Key: "user/20", Kind: EventDelete, Op: "del"}, ev)

		cancel()
		_, open := <-ch
		require.False(t, open, "channel not closed after ctx was cancelled")
	})
}

// TestRingLateStoreNeverHidesANewerEvent: a writer preempted between its
// claim and its store, lapped in the meantime, must not overwrite the newer
// event in its slot (found in review: the subscriber then slept on an event
// that was lost).
func TestRingLateStoreNeverHidesANewerEvent(t *testing.T) {
	r := newRing(1, ringDone)
	sub := r.subscribe()
	defer sub.Close()
	late := r.head.Add(1) - 1     // writer A claims 0...
	r.publish("b", EventSet, "B") // ...writer B publishes 1 into the same slot...
	a := newEventNode("a", EventSet, "A", "set", false)
	a.pos = late
	r.put(a) // ...then A stores.
	if n := r.slots[1&r.mask].Load(); n == nil || n.pos != 1 || n.event().Key != "b" {
		t.Fatalf("slot holds %+v, want position 1 (b)", n)
	}
	// Capacity 1: the subscriber, two behind, first learns it missed one.
	_, err := sub.Recv(ringCancelled())
	var lag *LaggedError
	if !errors.As(err, &lag) || lag.Missed != 1 {
		t.Fatalf("got %v; want a lag of 1", err)
	}
	ev, err := sub.Recv(ringCancelled())
	if err != nil || ev.Key != "b" {
		t.Fatalf("got %+v, %v; want event b", ev, err)
	}
}

// TestRecvWaitingForItsTurnHonoursCtx: a Recv queued behind another Recv on
// the same subscription still returns when its ctx ends (found in review).
func TestRecvWaitingForItsTurnHonoursCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		defer s.Close()
		sub := s.Subscribe()
		defer sub.Close()
		go sub.Recv(context.Background()) // holds the turn until sub.Close
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := sub.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("queued Recv returned %v, want its ctx's deadline", err)
		}
	})
}

// An event is one allocation when its key and value fit in its node (208
// bytes), two when they do not, and its key and value are its own copies
// either way. bytes is the node's size class, which the allocator's count
// of bytes shows (one event's worth: the runs' total over runs).
func TestRingEventAllocations(t *testing.T) {
	for _, tc := range []struct {
		name       string
		key, value string
		kind       EventKind
		want       uint64
		bytes      uint64
	}{
		{"set, 1 byte", "k", "v", EventSet, 1, 64},
		{"set, 16 bytes", "k", strings.Repeat("v", 15), EventSet, 1, 64},
		{"set, 17 bytes", "k", strings.Repeat("v", 16), EventSet, 1, 96},
		{"set, 12-byte key, 64-byte value", "user:0000001", strings.Repeat("v", 64), EventSet, 1, 128},
		{"set, 80 bytes", "user:0000001", strings.Repeat("v", 68), EventSet, 1, 128},
		{"set, 81 bytes", "user:0000001", strings.Repeat("v", 69), EventSet, 1, 192},
		{"set, 208 bytes", "user:0000001", strings.Repeat("v", 196), EventSet, 1, 256},
		{"set, 209 bytes", "user:0000001", strings.Repeat("v", 197), EventSet, 2, 48 + 224},
		{"set, empty value", "k", "", EventSet, 1, 64},
		{"set, empty key and value", "", "", EventSet, 1, 48},
		{"delete", "user:0000001", strings.Repeat("v", 40), EventDelete, 1, 64}, // the value is not copied
		{"delete, long key", strings.Repeat("k", 300), "", EventDelete, 2, 48 + 320},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(8, ringDone)
			sub := r.subscribe()
			defer sub.Close()
			key, value := strings.Clone(tc.key), strings.Clone(tc.value)
			requireAllocs(t, "publish", 100, tc.want, func() { r.publish(key, tc.kind, value) })
			if !raceEnabled && unsafe.Sizeof(0) == 8 { // the sizes are 64-bit ones; the race detector allocates more
				n := 100 * tc.bytes
				requireCountIn(t, "publish", "bytes", allocatedBytes, 100, n, n, fmt.Sprintf("exactly %d (%d an event)", n, tc.bytes),
					func() { r.publish(key, tc.kind, value) })
			}

			c := r.head.Load() - 1
			ev, _, _, ok := r.read(c)
			require.True(t, ok)
			want := Event{Key: tc.key, Kind: tc.kind, Op: defaultOp[tc.kind]}
			if tc.kind == EventSet {
				want.Value = []byte(tc.value)
				require.NotNil(t, ev.Value, "a set's Value is nil")
				require.Equal(t, len(ev.Value), cap(ev.Value), "a subscriber's append would write past the value")
			}
			require.Equal(t, want, ev)
			require.NotSame(t, unsafe.StringData(key), unsafe.StringData(ev.Key), "the event holds the caller's key")
			if len(value) > 0 {
				require.NotSame(t, unsafe.StringData(value), unsafe.SliceData(ev.Value), "the event holds the caller's value")
			}
		})
	}
	if unsafe.Sizeof(0) == 8 {
		require.EqualValues(t, 48, unsafe.Sizeof(ringNode{}), "newEventNode's arrays make size classes of a 48-byte node")
	}
}
