//go:build amd64 || arm64

package shardkv

import "unsafe"

// prefetch asks the CPU to start loading the cache line at p, and returns
// at once: a hint that never faults, so p may be any address.
//
//go:noescape
func prefetch(p unsafe.Pointer)
