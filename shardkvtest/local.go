package shardkvtest

import (
	"context"
	"errors"
	"time"

	"github.com/shardkv/shardkv"
)

// LocalBackend is the simplest correct backend: every call goes to Store's
// own Context methods, and Watch relays Store's subscription, events as
// Store published them. Stores built WithBackend(LocalBackend{Store: s})
// share one keyspace and see each other's writes, as nodes of a cluster
// do: a stand-in for a cluster in tests (RunBackend on it proves the table
// against something whose behaviour is the local store's by construction,
// through the cluster-mode path). Closing Store is its owner's job.
type LocalBackend struct{ Store *shardkv.Store }

var _ shardkv.WatchBackend = LocalBackend{}

// Get is Store.GetContext.
func (b LocalBackend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return b.Store.GetContext(ctx, key)
}

// Set is Store.SetContext.
func (b LocalBackend) Set(ctx context.Context, key string, value []byte) error {
	return b.Store.SetContext(ctx, key, value)
}

// SetWithTTL is Store.SetWithTTLContext.
func (b LocalBackend) SetWithTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return b.Store.SetWithTTLContext(ctx, key, value, ttl)
}

// Delete is Store.DeleteContext.
func (b LocalBackend) Delete(ctx context.Context, key string) (bool, error) {
	return b.Store.DeleteContext(ctx, key)
}

// Exists is Store.ExistsContext.
func (b LocalBackend) Exists(ctx context.Context, key string) (bool, error) {
	return b.Store.ExistsContext(ctx, key)
}

// ListKeys is Store.ListKeysContext.
func (b LocalBackend) ListKeys(ctx context.Context, prefix string) ([]string, error) {
	return b.Store.ListKeysContext(ctx, prefix)
}

// Increment is Store.IncrementContext.
func (b LocalBackend) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	return b.Store.IncrementContext(ctx, key, delta)
}

// CompareAndSwap is Store.CompareAndSwapContext.
func (b LocalBackend) CompareAndSwap(ctx context.Context, key string, expected, newValue []byte) (bool, error) {
	return b.Store.CompareAndSwapContext(ctx, key, expected, newValue)
}

// Watch relays Store.Subscribe until ctx ends, a lag as lost events.
func (b LocalBackend) Watch(ctx context.Context, emit func(shardkv.Event), lost func(uint64)) error {
	sub := b.Store.Subscribe()
	defer sub.Close()
	for {
		ev, err := sub.Recv(ctx)
		var lag *shardkv.LaggedError
		switch {
		case errors.As(err, &lag):
			lost(lag.Missed)
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		default:
			emit(ev)
		}
	}
}
