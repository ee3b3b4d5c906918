//go:build amd64 || arm64

package shardkv

import "unsafe"

// prefetch asks the CPU to start loading the cache line at p, and returns
// at once. p must be a valid pointer, as any unsafe.Pointer; the
// instruction itself never faults, whatever memory p is in.
//
//go:noescape
func prefetch(p unsafe.Pointer)
