package shardkv

import (
	"sync/atomic"
	"unsafe"
)

// spares is memory a shard's writers would otherwise allocate, fresh, under
// the shard lock: the next head chunk and the two tables of the next split.
// The store's background goroutine allocates them off the write path and
// writes a byte of every page, so the page faults are its, not a writer's.
// The first write to a page the process never used costs a fault (2.7 µs
// at the median on a 2-core VM, 76 µs at the 99.9th percentile: see
// docs/bench/faultprobe and docs/bench/raw/faultprobe.txt), and during a
// fill to millions of keys every chunk and table is fresh memory: 32
// faults a split (two 64 KiB tables) and up to 64 a chunk. Without spares
// (a store with no reaper, or a refill that has not happened yet) writers
// allocate as before.
//
// Only shards big enough to have splits and many chunks keep spares, so a
// small store holds no extra memory; for a big one they are a few percent
// of a shard.
//
// Everything in it is under the shard lock, except that the refill
// allocates outside it and installs what it made under it.
type spares struct {
	chunk  []byte
	tables []*table
	// want says that a writer took a spare, or would have, since the last
	// refill; signal is where it says so (the store's prep channel, nil
	// without a background goroutine). want is set under the lock, and
	// read and cleared by the refill without it, so that a refill passes
	// the shards that did not ask without taking their locks.
	want   atomic.Bool
	signal chan struct{}
}

// Who keeps spares: shards holding at least spareMinChunks chunks, for a
// chunk; shards whose directory is at least spareMinDepth deep, for tables.
const (
	spareMinChunks = 8
	spareMinDepth  = 3
)

// keepsSpareChunk and keepsSpareTables (under the shard lock) apply those
// rules: to ask for a spare, to make one and to install it.
func keepsSpareChunk(a *arena) bool      { return len(a.chunks) >= spareMinChunks }
func keepsSpareTables(d *directory) bool { return d.depth >= spareMinDepth }

// ask (under the shard lock) records that the shard wants a refill and
// wakes the refiller, without waiting.
func (sp *spares) ask() {
	if sp == nil || sp.signal == nil {
		return
	}
	sp.want.Store(true)
	select {
	case sp.signal <- struct{}{}:
	default: // a refill is already pending
	}
}

// takeChunk (under the shard lock) returns the spare chunk if it has room
// for n bytes and is at least half of size (the size the arena would
// make), or nil.
func (sp *spares) takeChunk(n, size int) []byte {
	if sp == nil {
		return nil
	}
	b := sp.chunk
	if b == nil || len(b) < n || len(b) < size/2 {
		return nil
	}
	sp.chunk = nil
	return b
}

// takeTable (under the shard lock) returns a spare table for depth, or
// nil. Spares are made at the directory's split size, which a shard never
// changes.
func (sp *spares) takeTable(depth uint8) *table {
	if sp == nil || len(sp.tables) == 0 {
		return nil
	}
	k := len(sp.tables)
	t := sp.tables[k-1]
	sp.tables[k-1] = nil
	sp.tables = sp.tables[:k-1]
	t.depth = depth
	return t
}

// drop (under the shard lock) forgets the spares and any pending ask.
func (sp *spares) drop() {
	sp.chunk, sp.tables = nil, nil
	sp.want.Store(false)
}

// slotBytes is the memory of slots, as bytes.
func slotBytes(slots []slot) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&slots[0])), len(slots)*int(unsafe.Sizeof(slot{})))
}

// touch writes a zero byte to every page of b, which is zeroed, so the
// kernel maps them now. It writes each page's last byte, so a table's
// header, at the start, stays as it is.
func touch(b []byte) {
	for i := 4095; i < len(b); i += 4096 {
		b[i] = 0
	}
	if len(b) > 0 {
		b[len(b)-1] = 0
	}
}

// refill makes what sh's writers asked for and installs it. It allocates
// with the lock released, so a writer waits at most for the install.
func (s *store) refill(sh *shard) {
	sp := &sh.sp
	if !sp.want.Swap(false) {
		return
	}
	sh.mu.Lock()
	if s.closed.Load() {
		sh.mu.Unlock()
		return
	}
	chunkSize := 0
	if sp.chunk == nil && keepsSpareChunk(&sh.a) {
		chunkSize = sh.a.chunkSize()
	}
	d := sh.tab.Load()
	tables, size := 0, d.maxSlots
	if keepsSpareTables(d) {
		tables = 2 - len(sp.tables)
	}
	sh.mu.Unlock()
	if chunkSize == 0 && tables == 0 {
		return
	}

	var b []byte
	if chunkSize > 0 {
		b = make([]byte, chunkSize)
		touch(b)
	}
	made := make([]*table, tables)
	for i := range made {
		made[i] = newTable(size, 0)
		touch(slotBytes(made[i].slots()))
	}

	// Installed only if the shard still keeps spares: a Clear while they
	// were being made leaves it small, and what was made goes to the GC.
	sh.mu.Lock()
	if sp.chunk == nil && keepsSpareChunk(&sh.a) {
		sp.chunk = b
	}
	for _, t := range made {
		if len(sp.tables) < 2 && keepsSpareTables(sh.tab.Load()) {
			sp.tables = append(sp.tables, t)
		}
	}
	sh.mu.Unlock()
}

// refillAll refills every shard that asked.
func (s *store) refillAll() {
	for i := range s.shards {
		if s.closed.Load() {
			return
		}
		s.refill(&s.shards[i])
	}
}
