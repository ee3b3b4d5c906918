package shardkvtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/shardkvtest"
)

// localBackend is the simplest correct backend: every call goes to a local
// store's own Context methods, and Watch relays that store's subscription.
// Running the table on it proves the table against something whose
// behaviour is the local store's by construction, through the cluster-mode
// path (the outer store delegates, the inner one answers).
type localBackend struct{ s *shardkv.Store }

var _ shardkv.WatchBackend = localBackend{}

func (b localBackend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return b.s.GetContext(ctx, key)
}

func (b localBackend) Set(ctx context.Context, key string, value []byte) error {
	return b.s.SetContext(ctx, key, value)
}

func (b localBackend) SetWithTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return b.s.SetWithTTLContext(ctx, key, value, ttl)
}

func (b localBackend) Delete(ctx context.Context, key string) (bool, error) {
	return b.s.DeleteContext(ctx, key)
}

func (b localBackend) Exists(ctx context.Context, key string) (bool, error) {
	return b.s.ExistsContext(ctx, key)
}

func (b localBackend) ListKeys(ctx context.Context, prefix string) ([]string, error) {
	return b.s.ListKeysContext(ctx, prefix)
}

func (b localBackend) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	return b.s.IncrementContext(ctx, key, delta)
}

func (b localBackend) CompareAndSwap(ctx context.Context, key string, expected, newValue []byte) (bool, error) {
	return b.s.CompareAndSwapContext(ctx, key, expected, newValue)
}

func (b localBackend) Watch(ctx context.Context, emit func(shardkv.Event), lost func(uint64)) error {
	sub := b.s.Subscribe()
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

// plainBackend hides localBackend's Watch: a Backend that streams nothing.
type plainBackend struct{ shardkv.Backend }

// The table on the local store itself (the Context methods' local path).
func TestRunBackend_Local(t *testing.T) {
	shardkvtest.RunBackend(t, func(t *testing.T) *shardkv.Store {
		return shardkv.New()
	})
}

// The table through cluster mode, on a backend that is a local store.
func TestRunBackend_WrappedLocal(t *testing.T) {
	shardkvtest.RunBackend(t, func(t *testing.T) *shardkv.Store {
		inner := shardkv.New()
		t.Cleanup(func() { _ = inner.Close() })
		return shardkv.New(shardkv.WithBackend(localBackend{inner}))
	}, shardkvtest.Options{TTLUnit: 200 * time.Millisecond})
}

// The table on a backend that is no WatchBackend, with the event cases
// skipped.
func TestRunBackend_NoEvents(t *testing.T) {
	shardkvtest.RunBackend(t, func(t *testing.T) *shardkv.Store {
		inner := shardkv.New()
		t.Cleanup(func() { _ = inner.Close() })
		return shardkv.New(shardkv.WithBackend(plainBackend{localBackend{inner}}))
	}, shardkvtest.Options{NoEvents: true})
}
