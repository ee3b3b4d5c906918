package shardkv

import (
	"context"
	"runtime"
	"testing"
	"time"

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
