package shardkvtest_test

import (
	"testing"
	"time"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/shardkvtest"
)

// plainBackend hides LocalBackend's Watch: a Backend that streams nothing.
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
		return shardkv.New(shardkv.WithBackend(shardkvtest.LocalBackend{Store: inner}))
	}, shardkvtest.Options{TTLUnit: 200 * time.Millisecond})
}

// The table on a backend that is no WatchBackend, with the event cases
// skipped.
func TestRunBackend_NoEvents(t *testing.T) {
	shardkvtest.RunBackend(t, func(t *testing.T) *shardkv.Store {
		inner := shardkv.New()
		t.Cleanup(func() { _ = inner.Close() })
		return shardkv.New(shardkv.WithBackend(plainBackend{shardkvtest.LocalBackend{Store: inner}}))
	}, shardkvtest.Options{NoEvents: true})
}

func TestMallocs(t *testing.T) {
	var sink [][]byte
	if got := shardkvtest.Mallocs(100, func() { sink = append(sink[:0], make([]byte, 1<<10)) }); got < 100 {
		t.Errorf("100 allocating calls: %d allocations, want at least 100", got)
	}
	n := 0
	if got := shardkvtest.Mallocs(100, func() { n++ }); got > 10 || n != 100 {
		t.Errorf("100 calls that allocate nothing: %d allocations, %d calls", got, n)
	}
	_ = sink
	if totals := shardkvtest.MallocsUpTo(100, 0, func() { sink = append(sink[:0], make([]byte, 1<<10)) }); len(totals) != shardkvtest.MallocAttempts || totals[len(totals)-1] < 100 {
		t.Errorf("an op over its limit: totals %v, want %d attempts, the last at least 100", totals, shardkvtest.MallocAttempts)
	}
	if totals := shardkvtest.MallocsUpTo(100, 10, func() { n++ }); len(totals) != 1 || totals[0] > 10 {
		t.Errorf("an op within its limit: totals %v, want one attempt", totals)
	}
}
