package shardkv

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// spares is memory a shard's writers would otherwise allocate, fresh, under
// the shard lock: the next head chunk, and the two tables of the next
// split, which come from the store's pool (tablePool), shared by every
// shard.
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
// allocates outside it and installs what it made under it; the pool has a
// lock of its own, taken under a shard lock or alone (see tablePool).
type spares struct {
	chunk []byte
	pool  *tablePool // the store's; nil in tests that build a bare shard
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

// takeTable (under the shard lock) returns a spare table for depth from
// the store's pool, or nil.
func (sp *spares) takeTable(depth uint8) *table {
	if sp == nil || sp.pool == nil {
		return nil
	}
	return sp.pool.take(depth)
}

// drop (under the shard lock) forgets the shard's spare chunk and any
// pending ask; the pool is the store's (Clear empties it).
func (sp *spares) drop() {
	sp.chunk = nil
	sp.want.Store(false)
}

// poolTables is how many spare tables the store's pool keeps: the halves
// of four splits, so that splits starting in several shards at once, in
// the millisecond a refill takes, still find theirs.
const poolTables = 8

// tablePool is the spare tables every shard of a store takes its splits'
// halves from. One pool for the store, not two tables a shard: at 64
// shards that is 8 tables held instead of 128, and so tables can be large
// (few objects for the GC to mark) without the spares costing much heap.
// Every table in it has the store's split size (each directory's
// maxSlots), which nothing changes.
//
// Its lock is taken under a shard lock (take, room, put) or alone (drop),
// and no shard lock is ever taken under it, so it adds no lock-order
// cycle; it is held only to move a pointer.
type tablePool struct {
	mu     sync.Mutex
	tables []*table
}

func (p *tablePool) take(depth uint8) *table {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := len(p.tables)
	if k == 0 {
		return nil
	}
	t := p.tables[k-1]
	p.tables[k-1] = nil
	p.tables = p.tables[:k-1]
	t.depth = depth
	return t
}

// room is how many tables the pool lacks.
func (p *tablePool) room() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return poolTables - len(p.tables)
}

// put adds t if the pool has room.
func (p *tablePool) put(t *table) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tables) < poolTables {
		p.tables = append(p.tables, t)
	}
}

func (p *tablePool) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.tables)
	p.tables = p.tables[:0]
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
	if keepsSpareTables(d) && sp.pool != nil {
		tables = sp.pool.room()
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
	// The tables go into the pool under the shard lock (shard, then pool:
	// the one lock order), so a Clear either reset this shard first (keep
	// is false) or comes after the put, and its drop of the pool, after
	// every shard, removes them.
	sh.mu.Lock()
	if sp.chunk == nil && keepsSpareChunk(&sh.a) {
		sp.chunk = b
	}
	if keepsSpareTables(sh.tab.Load()) {
		for _, t := range made {
			sp.pool.put(t)
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
