package shardkv

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

// Backend is where a clustered store keeps its data (cluster mode, the
// reference's KvBackend). With one installed by [WithBackend], the Context
// methods delegate to it and pass keys through unchecked; the backend
// defines its own validation, quota and TTL rules. Implementations must be
// safe for concurrent use. A backend reports a miss as found == false, not
// as an error.
type Backend interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte) error
	SetWithTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) (bool, error)
	Exists(ctx context.Context, key string) (bool, error)
	ListKeys(ctx context.Context, prefix string) ([]string, error)
	Increment(ctx context.Context, key string, delta int64) (int64, error)
	CompareAndSwap(ctx context.Context, key string, expected, newValue []byte) (bool, error)
}

// remote reports whether a Context call goes to the backend, after the
// checks every Context call makes first: a done ctx returns its error
// before anything else happens, then a closed store returns ErrClosed.
func (s *Store) remote(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if s.s.backend == nil {
		return false, nil
	}
	if s.s.closed.Load() {
		return false, ErrClosed
	}
	return true, nil
}

// GetContext is [Store.Get], delegated to the backend in cluster mode.
func (s *Store) GetContext(ctx context.Context, key string) ([]byte, bool, error) {
	defer runtime.KeepAlive(s) // a backend call may outlast the last use of s
	if remote, err := s.remote(ctx); err != nil || remote {
		if err != nil {
			return nil, false, err
		}
		return s.s.backend.Get(ctx, key)
	}
	return s.Get(key)
}

// SetContext is [Store.Set], delegated to the backend in cluster mode.
func (s *Store) SetContext(ctx context.Context, key string, value []byte) error {
	defer runtime.KeepAlive(s) // a backend call may outlast the last use of s
	if remote, err := s.remote(ctx); err != nil || remote {
		if err != nil {
			return err
		}
		return s.s.backend.Set(ctx, key, value)
	}
	return s.Set(key, value)
}

// SetWithTTLContext is [Store.SetWithTTL], delegated to the backend in
// cluster mode.
func (s *Store) SetWithTTLContext(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	defer runtime.KeepAlive(s) // a backend call may outlast the last use of s
	if remote, err := s.remote(ctx); err != nil || remote {
		if err != nil {
			return err
		}
		return s.s.backend.SetWithTTL(ctx, key, value, ttl)
	}
	return s.SetWithTTL(key, value, ttl)
}

// DeleteContext is [Store.Delete], delegated to the backend in cluster mode.
func (s *Store) DeleteContext(ctx context.Context, key string) (bool, error) {
	defer runtime.KeepAlive(s) // a backend call may outlast the last use of s
	if remote, err := s.remote(ctx); err != nil || remote {
		if err != nil {
			return false, err
		}
		return s.s.backend.Delete(ctx, key)
	}
	return s.Delete(key)
}

// ExistsContext is [Store.Exists], delegated to the backend in cluster mode.
// On the local path it fails only for a done ctx or a closed store.
func (s *Store) ExistsContext(ctx context.Context, key string) (bool, error) {
	defer runtime.KeepAlive(s) // a backend call may outlast the last use of s
	if remote, err := s.remote(ctx); err != nil || remote {
		if err != nil {
			return false, err
		}
		return s.s.backend.Exists(ctx, key)
	}
	if s.s.closed.Load() {
		return false, ErrClosed
	}
	return s.Exists(key), nil
}

// ListKeysContext is [Store.ListKeys], delegated to the backend in cluster
// mode.
func (s *Store) ListKeysContext(ctx context.Context, prefix string) ([]string, error) {
	defer runtime.KeepAlive(s) // a backend call may outlast the last use of s
	if remote, err := s.remote(ctx); err != nil || remote {
		if err != nil {
			return nil, err
		}
		return s.s.backend.ListKeys(ctx, prefix)
	}
	return s.ListKeys(prefix)
}

// IncrementContext is [Store.Increment], delegated to the backend in cluster
// mode.
func (s *Store) IncrementContext(ctx context.Context, key string, delta int64) (int64, error) {
	defer runtime.KeepAlive(s) // a backend call may outlast the last use of s
	if remote, err := s.remote(ctx); err != nil || remote {
		if err != nil {
			return 0, err
		}
		return s.s.backend.Increment(ctx, key, delta)
	}
	return s.Increment(key, delta)
}

// CompareAndSwapContext is [Store.CompareAndSwap], delegated to the backend
// in cluster mode.
func (s *Store) CompareAndSwapContext(ctx context.Context, key string, expected, newValue []byte) (bool, error) {
	defer runtime.KeepAlive(s) // a backend call may outlast the last use of s
	if remote, err := s.remote(ctx); err != nil || remote {
		if err != nil {
			return false, err
		}
		return s.s.backend.CompareAndSwap(ctx, key, expected, newValue)
	}
	return s.CompareAndSwap(key, expected, newValue)
}

// WatchBackend is a [Backend] that can also stream the changes made to
// it by every one of its clients (every node of a cluster). A store whose
// backend implements it delivers those changes to [Store.Subscribe] and
// [Store.WatchPrefix], through the same ring as local events and with the
// same contract: per-key order, writers (here, the stream) never wait for
// subscribers, and a subscriber that falls behind gets a [*LaggedError].
// A clustered store's subscribers so see every node's Context writes, its
// own included, and also the writes its own non-Context methods make to
// its local store.
type WatchBackend interface {
	Backend
	// Watch streams the changes from about the time it is called until
	// ctx ends, calling emit with each, in the order they took effect for
	// its key, and lost with n >= 1 (1 when the count is unknown) when it
	// knows it could not deliver n of them (the history it would resume
	// from was compacted, say). emit and lost never block for long.
	// Watch returns ctx.Err() once ctx ends, promptly; any other error
	// means it could not go on: the store then reports one lost event and
	// calls Watch again after a backoff (from 50 ms, doubling to 2 s).
	// An Event's Op and New may be left empty; Op then defaults to its
	// kind's ("set", "del", "expired").
	Watch(ctx context.Context, emit func(Event), lost func(n uint64)) error
}

// Backoffs between the calls of a WatchBackend's Watch that failed.
const (
	watchRetryMin = 50 * time.Millisecond
	watchRetryMax = 2 * time.Second
)

// feed streams b's changes into the store's ring until ctx ends, then
// closes fed. It runs on a goroutine of its own from New to close.
func (s *store) feed(ctx context.Context, b WatchBackend, fed chan<- struct{}) {
	defer close(fed)
	emit := func(ev Event) {
		op := ev.Op
		if op == "" && int(ev.Kind) < len(defaultOp) {
			op = defaultOp[ev.Kind]
		}
		s.events.emit(ev.Key, ev.Kind, asString(ev.Value), op, ev.New) // emit copies
	}
	backoff := watchRetryMin
	for {
		start := time.Now()
		err := b.Watch(ctx, emit, s.events.lost)
		if ctx.Err() != nil {
			return
		}
		s.events.lost(1) // what changed between the two streams is unknown
		if time.Since(start) > watchRetryMax {
			backoff = watchRetryMin // it ran a while: a new failure
		}
		slog.Default().Warn("shardkv: the backend's watch stopped; retrying", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, watchRetryMax)
	}
}
