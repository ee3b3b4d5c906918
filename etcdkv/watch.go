package etcdkv

import (
	"context"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"

	"github.com/shardkv/shardkv"
)

// Backoffs between two watch streams when one ended with an error.
const (
	rewatchMin = 50 * time.Millisecond
	rewatchMax = 2 * time.Second
)

// Watch streams the changes to the backend's namespace, by any client,
// from the revision current when it is called, until ctx ends; it then
// returns ctx.Err().
//
// It first reads the current revision R (one linearizable request; its
// failure is Watch's error), then watches the namespace from R+1 with
// previous values (WithPrevKV) and WithRequireLeader, so that a member
// cut off from its leader ends the stream rather than going silent. etcd's
// client already resumes a stream over a broken connection where it left
// off; when the stream ends all the same (no leader, the server cancelled
// it), Watch opens a new one from the revision after the last it
// delivered, after a backoff of 50 ms doubling to 2 s, so nothing is lost
// or repeated. When that revision has been compacted away, it calls lost(1)
// (the events compacted cannot be counted) and goes on from the
// compaction's revision.
//
// A PUT is an EventSet with the value, Op "set" (Increment's puts
// included: etcd does not say which request made a put), and New when it
// created the key (its Version is 1). A DELETE is an EventExpire or an
// EventDelete by the package comment's rule. Writes to [ReservedKey] are
// not streamed. Events come in revision order, so each key's in the order
// they took effect.
func (b *Backend) Watch(ctx context.Context, emit func(shardkv.Event), lost func(n uint64)) error {
	resp, err := b.kv.Get(ctx, ReservedKey, clientv3.WithCountOnly())
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return wrapRead(ctx, "watch (current revision)", "", err)
	}
	return b.watchFrom(ctx, resp.Header.Revision+1, emit, lost)
}

// watchFrom is Watch from revision next on.
func (b *Backend) watchFrom(ctx context.Context, next int64, emit func(shardkv.Event), lost func(n uint64)) error {
	// A watcher of its own, closed on return, so that no stream or
	// goroutine of the client outlives the call.
	w := b.newWatcher()
	if b.ns != "" {
		w = namespace.NewWatcher(w, b.ns) // its Close closes the inner one
	}
	defer w.Close()

	backoff := rewatchMin
	for {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		ch := w.Watch(wctx, "", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(next))
		compacted := false
		for resp := range ch {
			if resp.CompactRevision != 0 {
				// next was compacted away: the stream is cancelled and
				// the channel closes after this response.
				lost(1)
				next, compacted = resp.CompactRevision, true
				continue
			}
			if resp.Err() != nil {
				continue // the channel closes after an error
			}
			if len(resp.Events) > 0 {
				deliver(resp.Events, emit)
				next = resp.Events[len(resp.Events)-1].Kv.ModRevision + 1
				backoff = rewatchMin
			}
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if compacted {
			continue // resume at once from the compaction's revision
		}
		// Any other end (an error, no leader, a cancellation by the
		// server) waits first, so that a stream that keeps failing does
		// not spin.
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, rewatchMax)
	}
}

// newWatcher returns a new watcher on the backend's client (the test's
// hook, when it set one).
func (b *Backend) newWatcher() clientv3.Watcher {
	if b.testWatcher != nil {
		return b.testWatcher()
	}
	return clientv3.NewWatcher(b.client)
}

// deliver emits one response's events. etcd sends all the events of one
// revision (one request, a transaction's included) in one response, so
// the marks of the response's Deletes are in it: they are gathered first,
// then the DELETEs they mark are classified by them.
func deliver(events []*clientv3.Event, emit func(shardkv.Event)) {
	type at struct {
		rev int64
		key string
	}
	var marks map[at]byte
	for _, ev := range events {
		if ev.Type == mvccpb.PUT && string(ev.Kv.Key) == ReservedKey && len(ev.Kv.Value) > 0 {
			if marks == nil {
				marks = map[at]byte{}
			}
			marks[at{ev.Kv.ModRevision, string(ev.Kv.Value[1:])}] = ev.Kv.Value[0]
		}
	}
	for _, ev := range events {
		key := string(ev.Kv.Key)
		if key == ReservedKey {
			continue
		}
		switch ev.Type {
		case mvccpb.PUT:
			emit(shardkv.Event{Key: key, Kind: shardkv.EventSet, Value: ev.Kv.Value, Op: "set", New: ev.Kv.Version == 1})
		case mvccpb.DELETE:
			kind := shardkv.EventDelete
			if mark, ok := marks[at{ev.Kv.ModRevision, key}]; ok {
				if mark == markExpire {
					kind = shardkv.EventExpire
				}
			} else if ev.PrevKv != nil && ev.PrevKv.Lease != 0 {
				kind = shardkv.EventExpire // a lease's revocation
			}
			emit(shardkv.Event{Key: key, Kind: kind})
		}
	}
}
