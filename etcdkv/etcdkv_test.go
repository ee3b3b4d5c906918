package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/etcdkv/etcdtest"
	"github.com/shardkv/shardkv/shardkvtest"
)

// nsSeq numbers the namespaces tests take on a shared cluster.
var nsSeq atomic.Int64

func freshNS() string { return fmt.Sprintf("test%d/", nsSeq.Add(1)) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The store's behavioural table, on etcd: each case a store on a namespace
// of its own, all on one embedded member. Then again with serializable
// reads (a single member has applied a write before it acknowledges it,
// so they read it back).
func TestBackend_Table(t *testing.T) {
	c := startEtcd(t)
	cli := c.Client(t)
	opts := shardkvtest.Options{TTLUnit: time.Second}
	t.Run("linearizable", func(t *testing.T) {
		shardkvtest.RunBackend(t, func(t *testing.T) *shardkv.Store {
			return shardkv.New(shardkv.WithBackend(New(cli, WithNamespace(freshNS()))))
		}, opts)
	})
	t.Run("serializable", func(t *testing.T) {
		shardkvtest.RunBackend(t, func(t *testing.T) *shardkv.Store {
			return shardkv.New(shardkv.WithBackend(New(cli, WithNamespace(freshNS()), WithSerializableReads())))
		}, opts)
	})
}

// Extra cases, on one member shared by the subtests.
func TestBackend(t *testing.T) {
	c := startEtcd(t)
	cli := c.Client(t)

	t.Run("KeyValidator", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		ns := freshNS()
		strict := New(cli, WithNamespace(ns)) // shardkv.ValidateKey
		for _, key := range []string{"a b", "\xff", "k\x00", strings.Repeat("k", shardkv.MaxKeyLen+1), ""} {
			require.ErrorIs(t, strict.Set(ctx, key, []byte("v")), shardkv.ErrInvalidKey, "%q", key)
			require.ErrorIs(t, strict.SetWithTTL(ctx, key, nil, time.Hour), shardkv.ErrInvalidKey, "%q", key)
			_, err := strict.Delete(ctx, key)
			require.ErrorIs(t, err, shardkv.ErrInvalidKey, "%q", key)
			_, err = strict.Increment(ctx, key, 1)
			require.ErrorIs(t, err, shardkv.ErrInvalidKey, "%q", key)
			_, err = strict.CompareAndSwap(ctx, key, nil, nil)
			require.ErrorIs(t, err, shardkv.ErrInvalidKey, "%q", key)
			_, _, err = strict.Get(ctx, key)
			require.ErrorIs(t, err, shardkv.ErrInvalidKey, "%q", key)
			_, err = strict.Exists(ctx, key)
			require.ErrorIs(t, err, shardkv.ErrInvalidKey, "%q", key)
		}
		keys, err := strict.ListKeys(ctx, "")
		require.NoError(t, err)
		require.Empty(t, keys, "a refused key reached etcd")

		// A rule of one's own: its error is wrapped in ErrInvalidKey; nil
		// takes binary keys.
		errOdd := errors.New("odd length")
		own := New(cli, WithNamespace(ns), WithKeyValidator(func(k string) error {
			if len(k)%2 == 1 {
				return errOdd
			}
			return nil
		}))
		err = own.Set(ctx, "abc", nil)
		require.ErrorIs(t, err, shardkv.ErrInvalidKey)
		require.ErrorIs(t, err, errOdd)
		require.NoError(t, own.Set(ctx, "ab", nil))
		binary := New(cli, WithNamespace(ns), WithKeyValidator(nil))
		require.NoError(t, binary.Set(ctx, "a b\x00\xff", []byte("v")))
		v, ok, err := binary.Get(ctx, "a b\x00\xff")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "v", string(v))
	})

	t.Run("Namespaces", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		root := "ns" + freshNS()
		a, b := New(cli, WithNamespace(root+"a/")), New(cli, WithNamespace(root+"b/"))
		bare := New(cli)
		require.NoError(t, a.Set(ctx, "k", []byte("in a")))
		require.NoError(t, b.Set(ctx, "k", []byte("in b")))
		v, ok, err := a.Get(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "in a", string(v))
		v, _, err = b.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, "in b", string(v))
		keys, err := a.ListKeys(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []string{"k"}, keys, "a lists its own keys, without the prefix")
		// Without a namespace, the keys are etcd's own.
		keys, err = bare.ListKeys(ctx, root)
		require.NoError(t, err)
		require.Equal(t, []string{root + "a/k", root + "b/k"}, keys)
		raw, err := cli.Get(ctx, root+"a/k")
		require.NoError(t, err)
		require.Equal(t, "in a", string(raw.Kvs[0].Value))
		existed, err := a.Delete(ctx, "k")
		require.NoError(t, err)
		require.True(t, existed)
		ok, err = b.Exists(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok, "a's delete left b's key alone")
	})

	t.Run("Leases", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		ns := freshNS()
		b := New(cli, WithNamespace(ns))
		lease := func(key string) (clientv3.LeaseID, int64) {
			t.Helper()
			resp, err := cli.Get(ctx, ns+key)
			require.NoError(t, err)
			require.Len(t, resp.Kvs, 1)
			id := clientv3.LeaseID(resp.Kvs[0].Lease)
			if id == clientv3.NoLease {
				return id, 0
			}
			ttl, err := cli.TimeToLive(ctx, id)
			require.NoError(t, err)
			return id, ttl.GrantedTTL
		}
		require.NoError(t, b.SetWithTTL(ctx, "k", []byte("1"), 1500*time.Millisecond))
		id, granted := lease("k")
		require.NotEqual(t, clientv3.NoLease, id)
		require.Equal(t, int64(2), granted, "1.5 s rounds up to 2 s")
		_, err := b.Increment(ctx, "k", 1)
		require.NoError(t, err)
		id2, _ := lease("k")
		require.Equal(t, id, id2, "Increment keeps the lease")
		require.NoError(t, b.Set(ctx, "k", []byte("1")))
		id2, _ = lease("k")
		require.Equal(t, clientv3.NoLease, id2, "Set drops the lease")
		require.NoError(t, b.SetWithTTL(ctx, "k", []byte("1"), time.Hour))
		ok, err := b.CompareAndSwap(ctx, "k", []byte("1"), []byte("2"))
		require.NoError(t, err)
		require.True(t, ok)
		id2, _ = lease("k")
		require.Equal(t, clientv3.NoLease, id2, "CompareAndSwap drops the lease")
		_, err = b.Increment(ctx, "fresh", 1)
		require.NoError(t, err)
		id2, _ = lease("fresh")
		require.Equal(t, clientv3.NoLease, id2, "Increment of a missing key makes no lease")
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		b := New(cli, WithNamespace(freshNS()))
		var se *shardkv.StorageError

		// A ctx that ends during the call.
		expired, cancel := context.WithTimeout(ctx, time.Microsecond)
		defer cancel()
		time.Sleep(time.Millisecond)
		err := b.Set(expired, "k", []byte("v"))
		require.ErrorAs(t, err, &se)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, ErrAmbiguous, "a write whose ctx ended may have been applied")
		require.Contains(t, err.Error(), "storage error: etcd set \"k\"")
		_, _, err = b.Get(expired, "k")
		require.ErrorAs(t, err, &se)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NotErrorIs(t, err, ErrAmbiguous, "a read is never ambiguous")
		cancelled, cancel2 := context.WithCancel(ctx)
		cancel2()
		_, err = b.Increment(cancelled, "n", 1)
		require.ErrorAs(t, err, &se)
		require.ErrorIs(t, err, context.Canceled)

		// A refusal by the server: nothing was written.
		tooBig := make([]byte, testRequestBytes+1024) // over the server's limit, under the client's
		err = b.Set(ctx, "big", tooBig)
		require.ErrorAs(t, err, &se)
		require.ErrorIs(t, err, rpctypes.ErrRequestTooLarge)
		require.NotErrorIs(t, err, ErrAmbiguous)
		ok, err := b.Exists(ctx, "big")
		require.NoError(t, err)
		require.False(t, ok)

		// The keys the backend keeps to itself, whatever its key rule.
		raw := New(cli, WithNamespace(freshNS()), WithKeyValidator(nil))
		for _, key := range []string{"", ReservedKey} {
			require.ErrorAs(t, raw.Set(ctx, key, nil), &se, "%q", key)
			require.ErrorAs(t, raw.SetWithTTL(ctx, key, nil, time.Hour), &se, "%q", key)
			_, err = raw.Delete(ctx, key)
			require.ErrorAs(t, err, &se, "%q", key)
			_, err = raw.Increment(ctx, key, 1)
			require.ErrorAs(t, err, &se, "%q", key)
			_, err = raw.CompareAndSwap(ctx, key, nil, nil)
			require.ErrorAs(t, err, &se, "%q", key)
			_, ok, err = raw.Get(ctx, key)
			require.NoError(t, err)
			require.False(t, ok)
			ok, err = raw.Exists(ctx, key)
			require.NoError(t, err)
			require.False(t, ok)
		}
		// A leased key's Delete wrote the mark, which ListKeys hides.
		require.NoError(t, b.SetWithTTL(ctx, "leased", nil, time.Hour))
		_, err = b.Delete(ctx, "leased")
		require.NoError(t, err)
		keys, err := b.ListKeys(ctx, "")
		require.NoError(t, err)
		require.Empty(t, keys)

		// A cluster that cannot be reached: the ctx's deadline ends the call.
		dead := etcdtest.NewClient(t, testRequestBytes, fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t)))
		short, cancel3 := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel3()
		err = New(dead).Set(short, "k", nil)
		require.ErrorAs(t, err, &se)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})

	t.Run("IncrementTwoClients", func(t *testing.T) {
		t.Parallel()
		ns := freshNS()
		nodes := []*Backend{New(cli, WithNamespace(ns)), New(c.Client(t), WithNamespace(ns))}
		const each = 30
		var wg sync.WaitGroup
		errs := make(chan error, 2*2*each)
		for _, node := range nodes {
			for range 2 {
				wg.Go(func() {
					for range each {
						if _, err := node.Increment(testCtx(t), "n", 1); err != nil {
							errs <- err
						}
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		v, _, err := nodes[0].Get(testCtx(t), "n")
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(2*2*each), string(v))
	})

	// One node's writes reach another node's subscribers.
	t.Run("WatchTwoNodes", func(t *testing.T) {
		t.Parallel()
		ns := freshNS()
		writer := shardkv.New(shardkv.WithBackend(New(cli, WithNamespace(ns))))
		t.Cleanup(func() { _ = writer.Close() })
		reader := shardkv.New(shardkv.WithBackend(New(c.Client(t), WithNamespace(ns))))
		t.Cleanup(func() { _ = reader.Close() })
		sub := reader.Subscribe()
		defer sub.Close()
		ctx := testCtx(t)
		// The reader's stream starts a little after New: write until it shows.
		for i := 0; ; i++ {
			require.NoError(t, writer.SetContext(ctx, "k", []byte{byte(i)}))
			rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			ev, err := sub.Recv(rctx)
			cancel()
			if err == nil {
				require.Equal(t, "k", ev.Key)
				break
			}
			require.ErrorIs(t, err, context.DeadlineExceeded)
		}
		require.NoError(t, writer.SetContext(ctx, "k", []byte("last")))
		for {
			ev, err := sub.Recv(ctx)
			require.NoError(t, err)
			if string(ev.Value) == "last" {
				break
			}
		}
	})

	// Watch's classification and fields, on raw etcd writes as well as the
	// backend's.
	t.Run("WatchRule", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		ns := freshNS()
		b := New(cli, WithNamespace(ns))
		evs, _ := collect(t, b)
		waitLive(t, b, evs)

		require.NoError(t, b.SetWithTTL(ctx, "a", []byte("1"), time.Hour))
		_, err := b.Delete(ctx, "a") // through the backend: a delete
		require.NoError(t, err)
		require.NoError(t, b.SetWithTTL(ctx, "b", []byte("1"), time.Hour))
		_, err = cli.Delete(ctx, ns+"b") // behind its back: taken for an expiry
		require.NoError(t, err)
		require.NoError(t, b.Set(ctx, "c", []byte("1")))
		_, err = cli.Delete(ctx, ns+"c") // no lease: a delete
		require.NoError(t, err)
		require.NoError(t, b.Set(ctx, "d", []byte("1")))
		require.NoError(t, b.SetWithTTL(ctx, "d", []byte("2"), 0)) // TTL <= 0: an expiry
		_, err = b.Increment(ctx, "e", 1)
		require.NoError(t, err)
		_, err = b.Increment(ctx, "e", 1)
		require.NoError(t, err)

		want := []shardkv.Event{
			{Key: "a", Kind: shardkv.EventSet, Value: []byte("1"), Op: "set", New: true},
			{Key: "a", Kind: shardkv.EventDelete},
			{Key: "b", Kind: shardkv.EventSet, Value: []byte("1"), Op: "set", New: true},
			{Key: "b", Kind: shardkv.EventExpire},
			{Key: "c", Kind: shardkv.EventSet, Value: []byte("1"), Op: "set", New: true},
			{Key: "c", Kind: shardkv.EventDelete},
			{Key: "d", Kind: shardkv.EventSet, Value: []byte("1"), Op: "set", New: true},
			{Key: "d", Kind: shardkv.EventExpire},
			{Key: "e", Kind: shardkv.EventSet, Value: []byte("1"), Op: "set", New: true},
			{Key: "e", Kind: shardkv.EventSet, Value: []byte("2"), Op: "set"},
		}
		for i, w := range want {
			require.Equal(t, w, next(t, evs), "event %d", i)
		}
	})

	// A stream that ends (here, cancelled by a stand-in for the server after
	// its first response) is reopened after the last revision delivered:
	// nothing lost, nothing repeated, and no loss reported.
	t.Run("WatchResumes", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		ns := freshNS()
		b := New(cli, WithNamespace(ns))
		var opened atomic.Int32
		b.testWatcher = func() clientv3.Watcher {
			return &breakingWatcher{Watcher: clientv3.NewWatcher(cli), opened: &opened}
		}
		evs, lost := collect(t, b)
		waitLive(t, b, evs)
		for i := range 20 {
			require.NoError(t, b.Set(ctx, "k", []byte(fmt.Sprint(i))))
		}
		for i := range 20 {
			ev := next(t, evs)
			require.Equal(t, fmt.Sprint(i), string(ev.Value), "event %d", i)
		}
		require.Greater(t, opened.Load(), int32(2), "the stream was broken and reopened")
		require.Zero(t, lost.Load())
	})

	t.Run("LeaseSeconds", func(t *testing.T) {
		t.Parallel()
		for ttl, want := range map[time.Duration]int64{
			time.Nanosecond: 1, time.Second: 1, time.Second + 1: 2, 1500 * time.Millisecond: 2,
			time.Hour: 3600, math.MaxInt64: maxLeaseSeconds,
		} {
			require.Equal(t, want, leaseSeconds(ttl), "%v", ttl)
		}
	})
}

// breakingWatcher ends each stream after its first response with events,
// with a cancellation (as a server's), closing the channel.
type breakingWatcher struct {
	clientv3.Watcher
	opened *atomic.Int32
}

func (w *breakingWatcher) Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	w.opened.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	in := w.Watcher.Watch(ctx, key, opts...)
	out := make(chan clientv3.WatchResponse)
	go func() {
		defer close(out)
		defer cancel()
		for resp := range in {
			select {
			case out <- resp:
			case <-ctx.Done():
				return
			}
			if len(resp.Events) > 0 {
				select {
				case out <- clientv3.WatchResponse{Canceled: true}: // Err() is non-nil
				case <-ctx.Done():
				}
				return
			}
		}
	}()
	return out
}

// collect runs b's Watch until t ends, into the returned channel; lost
// counts what it reports lost.
func collect(t *testing.T, b *Backend) (<-chan shardkv.Event, *atomic.Uint64) {
	evs := make(chan shardkv.Event, 1000)
	lost := new(atomic.Uint64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Watch(ctx, func(ev shardkv.Event) { evs <- ev }, func(n uint64) { lost.Add(n) })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	})
	return evs, lost
}

// waitLive waits until Watch has started, since it returns nothing to say
// so: it writes a key until an event for it comes, then deletes it and
// drops the events up to the delete's. next skips the key's events, should
// any come later.
func waitLive(t *testing.T, b *Backend, evs <-chan shardkv.Event) {
	t.Helper()
	ctx := testCtx(t)
	require.NoError(t, b.Set(ctx, liveKey, nil))
	seen := false
	for {
		select {
		case ev := <-evs:
			if ev.Key != liveKey {
				continue
			}
			if ev.Kind == shardkv.EventDelete {
				return
			}
			if !seen {
				seen = true
				_, err := b.Delete(ctx, liveKey)
				require.NoError(t, err)
			}
		case <-time.After(100 * time.Millisecond):
			if !seen {
				require.NoError(t, b.Set(ctx, liveKey, nil))
			}
		case <-ctx.Done():
			t.Fatal("the watch never started")
		}
	}
}

// liveKey is waitLive's key.
const liveKey = "live"

// next returns the next event of evs that is not liveKey's, failing t after
// 10 s without one.
func next(t *testing.T, evs <-chan shardkv.Event) shardkv.Event {
	t.Helper()
	for {
		select {
		case ev := <-evs:
			if ev.Key == liveKey {
				continue
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event in 10 s")
			return shardkv.Event{}
		}
	}
}

// A watch resuming from a compacted revision reports one lost event and
// goes on from the compaction. A compaction is the whole cluster's, so this
// test has a member of its own.
func TestWatchCompacted(t *testing.T) {
	c := startEtcd(t)
	cli := c.Client(t)
	ctx := testCtx(t)
	ns := freshNS()
	b := New(cli, WithNamespace(ns))
	first, err := cli.Put(ctx, ns+"k", "1")
	require.NoError(t, err)
	_, err = cli.Put(ctx, ns+"k", "2")
	require.NoError(t, err)
	third, err := cli.Put(ctx, ns+"k", "3")
	require.NoError(t, err)
	_, err = cli.Compact(ctx, third.Header.Revision)
	require.NoError(t, err)

	evs := make(chan shardkv.Event, 100)
	var lost atomic.Uint64
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.watchFrom(wctx, first.Header.Revision, func(ev shardkv.Event) { evs <- ev }, func(n uint64) { lost.Add(n) })
	}()
	defer func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	}()
	require.Equal(t, "3", string(next(t, evs).Value), "resumed at the compaction's revision")
	require.Equal(t, uint64(1), lost.Load())
	_, err = cli.Put(ctx, ns+"k", "4")
	require.NoError(t, err)
	require.Equal(t, "4", string(next(t, evs).Value))
	require.Equal(t, uint64(1), lost.Load())
}
