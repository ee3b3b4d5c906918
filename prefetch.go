package shardkv

import (
	"runtime"
	"unsafe"
)

// Prefetch is a hint for a caller about to run operations on several keys
// one after another, a pipeline of requests or a batch: it starts loading
// each key's index slot and record into the CPU's cache, so that the
// memory latencies of those operations overlap instead of adding up. It
// takes no lock, changes nothing, validates nothing and allocates nothing,
// and no operation returns anything different for it; a key that is
// absent, or that a writer moves meanwhile, makes the hint useless, not
// wrong. It does nothing on a closed or clustered store, and on
// architectures other than amd64 and arm64 it only reads the keys' slots.
//
// A call is worth its cost for a few keys or more, used right after it:
// it hashes every key, and lines loaded long before their use may be
// evicted again. It is safe for concurrent use, as a read is.
func (s *Store) Prefetch(keys ...string) {
	if s.s.closed.Load() || s.s.backend != nil {
		return
	}
	s.s.prefetch(keys)
	runtime.KeepAlive(s) // see keepAlive
}

// prefetchBatch is how many keys prefetch has in flight at once: about as
// many lines as a core's L1 can wait for together.
const prefetchBatch = 16

// prefetch hints keys in batches, each in two passes: the first computes
// every key's home slot and asks for its line, the second reads the slots
// (by then arriving together) and asks for the record of the first slot
// whose tag is the key's. Like a reader it loads loc before meta and
// resolves the loc through the published chunk directory, so what it
// reads is memory a reader may read; a stale loc, a tomb or a chunk
// dropped meanwhile only ends that key's hint.
func (s *store) prefetch(keys []string) {
	var homes [prefetchBatch]home
	for len(keys) > 0 {
		n := min(len(keys), prefetchBatch)
		for i, k := range keys[:n] {
			sh, h := s.locate(k)
			homes[i] = sh.prefetchHome(tagOf(h))
		}
		prefetchRecords(homes[:n])
		keys = keys[n:]
	}
}

// home is where a key's probe starts, kept between prefetch's passes: its
// shard, the slots and mask of its table, and its tag.
type home struct {
	sh    *shard
	first *slot
	mask  uint32
	tag   uint32
}

// prefetchHome asks for the line of tag's home slot and returns the home.
func (sh *shard) prefetchHome(tag uint32) home {
	first, mask := sh.tab.Load().slots(tag)
	prefetch(unsafe.Pointer(slotAt(first, tag&mask)))
	return home{sh, first, mask, tag}
}

// prefetchRecords is prefetch's second pass over homes.
func prefetchRecords(homes []home) {
	for _, h := range homes {
		prefetchRecord(h.sh, h.first, h.mask, h.tag)
	}
}

// prefetchProbe is how many slots from the home slot prefetchRecord looks
// at for the key's tag: about those on the home slot's cache line.
const prefetchProbe = 4

// prefetchRecord asks for the record of the first slot from tag's home, in
// the table of first and mask, whose tag is tag; it looks at prefetchProbe
// slots at most.
func prefetchRecord(sh *shard, first *slot, mask, tag uint32) {
	var dir *chunkRef
	for i, j := tag&mask, 0; j < prefetchProbe; i, j = (i+1)&mask, j+1 {
		s := slotAt(first, i)
		l := loc(s.loc.Load())
		if l == locEmpty {
			return
		}
		if l == locTomb || s.tag() != tag {
			continue
		}
		if dir == nil {
			dir = sh.chunks.Load()
		}
		// The offset is within the chunk unless the loc is stale by all
		// 2^20 generations of its number (see loc): then it is a useless
		// hint, and must not be a panic.
		if b, off := chunkAt(dir, l), l.off(); off < len(b) {
			prefetch(unsafe.Pointer(&b[off]))
		}
		return
	}
}

// prefetchTimers (under the shard lock) hints the slots, then the records,
// of the keys of the timers rs (at most prefetchBatch), as prefetch does
// for keys: reclaimDue's batch of fired timers, about to be looked up by
// slotOfTimer.
func (sh *shard) prefetchTimers(rs []tref) {
	if len(rs) < 2 {
		return
	}
	var homes [prefetchBatch]home
	for i, r := range rs {
		homes[i] = sh.prefetchHome(tagOf(sh.w.at(r).hash))
	}
	prefetchRecords(homes[:len(rs)])
}
