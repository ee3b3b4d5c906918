package shardkv

import (
	"log/slog"
	"sync/atomic"
)

var global atomic.Pointer[Store]

// SetGlobal publishes s as the process-wide store, for in-process code that
// must reach the store a daemon runs rather than make its own. The first
// call wins; a later one (or a nil s) is ignored with a warning on
// slog.Default().
func SetGlobal(s *Store) {
	if s == nil || !global.CompareAndSwap(nil, s) {
		slog.Default().Warn("shardkv: global store already set (or nil); ignoring SetGlobal")
	}
}

// Global returns the store published by [SetGlobal], if any.
func Global() (*Store, bool) {
	s := global.Load()
	return s, s != nil
}
