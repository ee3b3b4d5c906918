package shardkv_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardkv/shardkv"
)

// watchingBackend is a recordingBackend that streams what a test feeds
// it: each item of feed is an event, a loss (lost > 0), or a failure of
// the stream (fail != nil), which makes the current Watch return.
type watchingBackend struct {
	*recordingBackend
	feed    chan watchItem
	calls   atomic.Int32 // Watch calls made
	running atomic.Int32 // Watch calls not yet returned
}

type watchItem struct {
	ev   shardkv.Event
	lost uint64
	fail error
}

var _ shardkv.WatchBackend = (*watchingBackend)(nil)

func newWatchingBackend() *watchingBackend {
	return &watchingBackend{recordingBackend: newRecordingBackend(), feed: make(chan watchItem)}
}

func (b *watchingBackend) Watch(ctx context.Context, emit func(shardkv.Event), lost func(uint64)) error {
	b.calls.Add(1)
	b.running.Add(1)
	defer b.running.Add(-1)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case it := <-b.feed:
			switch {
			case it.fail != nil:
				return it.fail
			case it.lost > 0:
				lost(it.lost)
			default:
				emit(it.ev)
			}
		}
	}
}

// send hands the backend's stream one item, waiting until a Watch takes it.
func (b *watchingBackend) send(t *testing.T, it watchItem) {
	t.Helper()
	select {
	case b.feed <- it:
	case <-time.After(10 * time.Second):
		t.Fatal("no Watch took the item")
	}
}

func recvWithin(t *testing.T, sub *shardkv.Subscription) (shardkv.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return sub.Recv(ctx)
}

// A clustered store delivers its backend's stream to subscribers and
// WatchPrefix with the local ring's contract: events in order, a loss the
// backend reports as a *LaggedError, a failed stream retried (and reported
// as one lost event), and Close stopping the stream.
func TestWatchBackendFeedsSubscribers(t *testing.T) {
	b := newWatchingBackend()
	s := shardkv.New(shardkv.WithBackend(b))
	sub := s.Subscribe()
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefixed := s.WatchPrefix(ctx, "user/")

	b.send(t, watchItem{ev: shardkv.Event{Key: "user/1", Kind: shardkv.EventSet, Value: []byte("a"), New: true}})
	b.send(t, watchItem{ev: shardkv.Event{Key: "other", Kind: shardkv.EventSet, Value: []byte("b"), Op: "incrby"}})
	b.send(t, watchItem{ev: shardkv.Event{Key: "user/1", Kind: shardkv.EventExpire}})
	for _, want := range []shardkv.Event{
		{Key: "user/1", Kind: shardkv.EventSet, Value: []byte("a"), Op: "set", New: true},
		{Key: "other", Kind: shardkv.EventSet, Value: []byte("b"), Op: "incrby"},
		{Key: "user/1", Kind: shardkv.EventExpire, Op: "expired"},
	} {
		ev, err := recvWithin(t, sub)
		require.NoError(t, err)
		require.Equal(t, want, ev)
	}
	require.Equal(t, "user/1", (<-prefixed).Key)
	require.Equal(t, shardkv.EventExpire, (<-prefixed).Kind, "WatchPrefix filters the stream")

	b.send(t, watchItem{lost: 7})
	_, err := recvWithin(t, sub)
	var lag *shardkv.LaggedError
	require.ErrorAs(t, err, &lag)
	require.Equal(t, uint64(7), lag.Missed)

	// A stream that fails is called again, and the gap is reported.
	b.send(t, watchItem{fail: errors.New("stream broke")})
	_, err = recvWithin(t, sub)
	require.ErrorAs(t, err, &lag)
	require.Equal(t, uint64(1), lag.Missed)
	b.send(t, watchItem{ev: shardkv.Event{Key: "after", Kind: shardkv.EventDelete}}) // taken by the second Watch
	ev, err := recvWithin(t, sub)
	require.NoError(t, err)
	require.Equal(t, shardkv.Event{Key: "after", Kind: shardkv.EventDelete, Op: "del"}, ev)
	require.Equal(t, int32(2), b.calls.Load())

	// The event's bytes are the ring's own copies.
	v := []byte("x")
	b.send(t, watchItem{ev: shardkv.Event{Key: "k", Kind: shardkv.EventSet, Value: v}})
	ev, err = recvWithin(t, sub)
	require.NoError(t, err)
	v[0] = 'y'
	require.Equal(t, "x", string(ev.Value))

	require.NoError(t, s.Close())
	require.Zero(t, b.running.Load(), "Close returned with the backend's Watch still running")
	_, err = recvWithin(t, sub)
	require.ErrorIs(t, err, shardkv.ErrClosed)
}

// Retries back off: a stream that fails at once is called again after
// 50 ms, then 100, 200, ... up to 2 s.
func TestWatchBackendRetryBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &failingWatch{recordingBackend: newRecordingBackend()}
		s := shardkv.New(shardkv.WithBackend(b))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		b.mu.Lock()
		at := append([]time.Duration(nil), b.at...)
		b.mu.Unlock()
		require.GreaterOrEqual(t, len(at), 9)
		want := []time.Duration{0, 50, 150, 350, 750, 1550, 3150, 5150, 7150}
		for i, w := range want {
			require.Equal(t, w*time.Millisecond, at[i], "call %d", i)
		}
		require.NoError(t, s.Close())
	})
}

// failingWatch's Watch fails at once, recording when it was called.
type failingWatch struct {
	*recordingBackend
	mu    sync.Mutex
	start time.Time
	at    []time.Duration
}

func (b *failingWatch) Watch(ctx context.Context, emit func(shardkv.Event), lost func(uint64)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.start.IsZero() {
		b.start = time.Now()
	}
	b.at = append(b.at, time.Since(b.start))
	return errors.New("unavailable")
}
