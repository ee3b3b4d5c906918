package shardkv

import (
	"sync/atomic"
	"unsafe"
)

// A shard's index is a directory of small open-addressing tables
// (extendible hashing, as Go 1.24's map): the directory picks a table by
// the hash bits just below the shard's, and a table is probed linearly.
// A table holds at most maxTableSlots slots; one that fills is split in
// two, a step at a time (split.go), so no insert copies more than a
// table's entries (a rebuild without its tombs, or a small table's last
// doubling: at most 3072), however large the store. Only a table no split
// can part grows past maxTableSlots (keys whose hashes agree on far more
// bits than chance allows, or a directory as deep as it may go: see
// makeRoom and maxDepth), and then its copies, and what an iterator
// gathers from it under the lock, grow with it: the bounds of 3072 entries
// stated elsewhere assume hashes that xxhash gives. Slots hold integers only (a tag and timer word,
// and the record's loc), so the tables are pointer-free and the garbage
// collector marks one object per table.
//
// Readers load the directory and a table's slots with atomic loads and no
// lock; writers change them under the shard lock. A table is never changed
// once it has been replaced (split, grown or rebuilt): a reader still
// probing it sees the state of the moment it was replaced, which is what a
// read that overlapped that moment may return.

// Table geometry. A table starts at minTableSlots and doubles up to
// maxTableSlots; from then on it splits. At least a quarter of a table's
// slots stay empty, so every probe ends.
const (
	minTableSlots = 8
	maxTableSlots = 4096
	posBits       = 12 // log2(maxTableSlots): a slot's home is the tag's low posBits bits
)

// tagOf is the part of a key's hash that the index keeps: the top 32 bits.
// They pick the shard (the top bits), the table (the bits after those) and
// the home slot (the low posBits), and filter probes.
func tagOf(h uint64) uint32 { return uint32(h >> 32) }

// slot is one cell of a table.
//
// meta holds the key's tag (high 32 bits) and its timer (low 32 bits, 0:
// none). loc names the key's record, or is locEmpty or locTomb. Both are
// written only under the shard lock. A writer stores meta before it
// publishes loc, and a slot's tag changes only while its loc is empty or a
// tomb; a reader loads loc first and meta after, so it sees the tag of the
// record it loaded or, if the slot was emptied and reused in between, a
// later one: then it goes on past a key that was removed during the read,
// which is a miss the read may return. The tag is only a filter: a match is
// decided by comparing the key's bytes in the record.
type slot struct {
	meta atomic.Uint64
	loc  atomic.Uint64
}

func (s *slot) tag() uint32 { return uint32(s.meta.Load() >> 32) }
func (s *slot) timer() tref { return tref(s.meta.Load()) }

// set writes a slot of a table that is not published yet, with plain
// stores: nothing else can see the table, and the atomic store that
// publishes it (a directory entry's, or a new directory's) orders these
// writes before any reader's loads. An atomic store is a full barrier on
// most machines, and a split writes hundreds of slots.
func (s *slot) set(meta uint64, l loc) {
	*(*uint64)(unsafe.Pointer(&s.meta)) = meta
	*(*uint64)(unsafe.Pointer(&s.loc)) = uint64(l)
}

// setTimer (under the shard lock) changes the slot's timer, keeping its tag.
func (s *slot) setTimer(r tref) { s.meta.Store(s.meta.Load()&^0xffffffff | uint64(r)) }

// table is one open-addressing table with linear probing, and the header
// of its own allocation: a table of n slots is one pointer-free block of
// exactly n slots (a size the allocator has a class for, so nothing is
// rounded up), whose first headerSlots slots hold the header. Those slots'
// loc words are locTomb, forever: every probe goes past them as it goes
// past a removed key, and no writer reuses them (insert and remove skip
// them). So a table is one object for the garbage collector, which neither
// scans it nor follows anything from it, and a reader never reads the
// header (it takes the mask from the directory entry).
type table struct {
	mask  uint32
	depth uint8 // how many hash bits below the shard's all its keys share
	_     byte
	pend  uint16 // its pending split's index in directory.pend, plus one; 0: none
	tomb0 uint64 // slot 0's loc: locTomb
	// live and used (live plus tombs, the header's two included) are
	// written only under the shard lock and never read by readers.
	live, used int32
	tomb1      uint64 // slot 1's loc: locTomb
}

// headerSlots is how many slots the header takes.
const headerSlots = uint32(unsafe.Sizeof(table{}) / unsafe.Sizeof(slot{}))

// The header must be whole slots, with each tomb word at a slot's loc.
var _ = [1]struct{}{}[unsafe.Sizeof(table{})%unsafe.Sizeof(slot{})+unsafe.Offsetof(table{}.tomb0)-8+unsafe.Offsetof(table{}.tomb1)-24]

// newTable allocates a table of n slots (a power of two, at least 8), all
// empty but the header's.
func newTable(n int, depth uint8) *table {
	mem := make([]slot, n)
	// The block is pointer-free and so is the header, so the collector
	// treats a *table as what it is: a pointer to the start of a block it
	// keeps whole and does not scan. The block is 8-byte aligned, as the
	// header needs.
	t := (*table)(unsafe.Pointer(&mem[0]))
	t.mask, t.depth = uint32(n-1), depth
	t.tomb0, t.tomb1 = uint64(locTomb), uint64(locTomb)
	t.used = int32(headerSlots)
	return t
}

// first is the table's first slot (its header's).
func (t *table) first() *slot { return (*slot)(unsafe.Pointer(t)) }

// slots is the table's slots, the header's included.
func (t *table) slots() []slot { return unsafe.Slice(t.first(), int(t.mask)+1) }

// home is the first slot a probe for tag looks at.
func (t *table) home(tag uint32) uint32 { return tag & t.mask }

// full reports whether one more slot may not be taken without breaking the
// quarter-empty rule.
func (t *table) full() bool { return (int(t.used)+1)*4 > len(t.slots())*3 }

// insert (under the shard lock) stores the key of tag at l, and returns its
// slot. The key must be absent; the table must not be full.
func (t *table) insert(tag uint32, l loc, r tref) *slot {
	s := t.claim(tag)
	s.meta.Store(uint64(tag)<<32 | uint64(r))
	s.loc.Store(uint64(l)) // publishes the slot (and meta before it)
	return s
}

// claim (under the shard lock) returns the slot a new key of tag takes, and
// counts it: the first tomb of the probe (not the header's), or the empty
// slot that ends it. The caller writes the slot.
func (t *table) claim(tag uint32) *slot {
	first := t.first()
	for i := t.home(tag); ; i = (i + 1) & t.mask {
		s := slotAt(first, i)
		switch loc(s.loc.Load()) {
		case locEmpty:
			t.used++
		case locTomb:
			if i < headerSlots {
				continue
			}
		default:
			continue
		}
		t.live++
		return s
	}
}

// remove (under the shard lock) empties s. The slot becomes a tomb, or
// empty when the next slot is empty (no probe that reaches it can go
// further), and so do the tombs just before it.
func (t *table) remove(s *slot) {
	t.live--
	i := uint32((uintptr(unsafe.Pointer(s)) - uintptr(unsafe.Pointer(t.first()))) / unsafe.Sizeof(slot{}))
	if i > t.mask || i < headerSlots || &t.slots()[i] != s {
		panic("shardkv: remove of a slot of another table")
	}
	s.meta.Store(s.meta.Load() &^ 0xffffffff) // no timer
	if loc(t.slots()[(i+1)&t.mask].loc.Load()) != locEmpty {
		s.loc.Store(uint64(locTomb))
		return
	}
	// A probe for any key passes i only if it would go on to i+1, which is
	// empty and ends it: i may end it too. Then the same holds for a tomb
	// at i-1, and so on back.
	for {
		t.slots()[i].loc.Store(uint64(locEmpty))
		t.used--
		i = (i - 1) & t.mask
		if i < headerSlots || loc(t.slots()[i].loc.Load()) != locTomb {
			return // the header's tombs stay
		}
	}
}

// copyInto (under the shard lock) inserts every live slot of t into nt,
// which is not published yet: one pass over t.
func (t *table) copyInto(nt *table) {
	for i := range t.slots() {
		s := &t.slots()[i]
		if l := loc(s.loc.Load()); l != locEmpty && l != locTomb {
			m := s.meta.Load()
			nt.put(uint32(m>>32), l, tref(m))
		}
	}
}

// directory is a shard's index: 1<<depth entries, each naming the table for
// the hashes whose depth bits below the shard's bits are its number. A table
// of depth d < depth fills 1<<(depth-d) consecutive, aligned entries.
//
// An entry holds what a reader needs to probe its table, the table and its
// mask, so a lookup goes from the entry straight to the slots, never
// loading the table's header (at 10M keys the headers' cache lines alone
// would be a megabyte). A split or rebuild stores the new tables into
// the old table's entries in place (one or two stores, usually), so it
// never copies the directory; only doubling it does, once per doubling of
// the shard, and a grow, which changes a table's mask (a table smaller than
// maxTableSlots is the only table of its directory, so that copy is one
// entry). So an entry's mask never changes once the directory is published,
// and its slots are replaced only by slots of the same mask. A reader may
// load an entry's slots before or after that store: before, it gets the old
// table, which is never written again and holds the state of the moment it
// was replaced; after, the new one. Both are states the read may return.
type directory struct {
	entries []dirEntry
	depth   uint8
	sbits   uint8 // the shard-number bits at the top of the hash
	// maxSlots is the size at which a table splits: maxTableSlots, or a
	// power of two below it that a test picks (so that a few hundred keys
	// split tables).
	maxSlots int
	// pend is the shard's pending splits (see split.go), writers' state
	// that every directory of the shard shares.
	pend *splits
}

type dirEntry struct {
	t    atomic.Pointer[table]
	mask uint32 // t's mask; fixed once the directory is published
}

// set points an entry of an unpublished directory at t.
func (e *dirEntry) set(t *table) {
	e.mask = t.mask
	e.t.Store(t)
}

// maxDepth is the deepest a directory goes: its bits and the home-slot bits
// must not overlap in the tag. Past it a table grows beyond maxTableSlots
// instead of splitting (a shard then holds over 2^(32-posBits-sbits) * 3072
// keys: about 3G with the 64 shards of a small machine).
func (d *directory) maxDepth() uint8 { return 32 - posBits - d.sbits }

// index is the number of the entry for tag.
func (d *directory) index(tag uint32) uint32 {
	return tag << d.sbits >> (32 - uint32(d.depth)) // 0 when depth is 0 (a shift by 32 is 0)
}

// table (under the shard lock) returns the table for tag.
func (d *directory) table(tag uint32) *table { return d.entries[d.index(tag)].t.Load() }

// slots returns the first slot and the mask of the table for tag, for a
// reader: safe without the lock.
func (d *directory) slots(tag uint32) (*slot, uint32) {
	e := &d.entries[d.index(tag)]
	return e.t.Load().first(), e.mask
}

// slotAt is slot i of the table whose first slot is first; i must be within
// its mask.
func slotAt(first *slot, i uint32) *slot {
	return (*slot)(unsafe.Add(unsafe.Pointer(first), uintptr(i)*unsafe.Sizeof(slot{})))
}

func newDirectory(sbits uint8, maxSlots int) *directory {
	d := &directory{entries: make([]dirEntry, 1), sbits: sbits, maxSlots: maxSlots, pend: &splits{}}
	d.entries[0].set(newTable(minTableSlots, 0))
	return d
}

// each (under the shard lock) calls fn with every table once.
func (d *directory) each(fn func(*table)) {
	for i := 0; i < len(d.entries); {
		t := d.entries[i].t.Load()
		fn(t)
		i += 1 << (d.depth - t.depth)
	}
}

// makeRoom (under the shard lock) returns a directory in which the table
// for tag can take one more slot: d itself, if the table is not full or it
// was rebuilt or split in place, or a new directory (doubled, or with the
// table grown). A table that is not full but has crossed splitAt32 starts a
// split a step at a time (see split.go); one that is full and splitting
// is replaced by its halves, copying what its steps had not. Other than
// that it copies at most one table's slots (and, when it makes a new
// directory, its entries).
func (d *directory) makeRoom(tag uint32, sp *spares) *directory {
	i := d.index(tag)
	t := d.entries[i].t.Load()
	n := len(t.slots())
	p := d.pend.of(t)
	if !t.full() {
		if p == nil && int(t.used)*32 >= n*splitAt32 && d.splittable(t) && d.pend.room() {
			d.pend.add(d.newSplit(t, sp))
		}
		return d
	}
	if p != nil {
		d.pend.remove(p)
	}
	switch {
	case int(t.live)*8 < n*3: // mostly tombs: rebuild at the same size (a pending split's halves are dropped)
	case n < d.maxSlots || t.depth >= d.maxDepth():
		n *= 2 // small, or as deep as it may go: grow
	default:
		if p == nil {
			p = d.newSplit(t, sp)
		}
		p.step(t.mask + 1)
		if min(p.lo.live, p.hi.live) >= t.live/8 {
			if t.depth == d.depth {
				d, i = d.grown(1), 2*i
			}
			return d.replace(i, t, p.lo, p.hi)
		}
		// Keys a split would not part (hashes that agree on far more bits
		// than chance allows): grow. Only this and the depth limit make a
		// table exceed maxTableSlots.
		n *= 2
	}
	nt := newTable(n, t.depth)
	t.copyInto(nt)
	return d.replace(i, t, nt, nil)
}

// splittable reports whether t, at its size, would be split when full:
// as big as tables get before they split, not as deep as they may go, and
// not mostly tombs.
func (d *directory) splittable(t *table) bool {
	n := len(t.slots())
	return n >= d.maxSlots && t.depth < d.maxDepth() && int(t.live)*8 >= n*3
}

// newSplit starts splitting t: two empty halves one bit deeper, of t's
// size (sp's, at the split size), nothing copied yet.
func (d *directory) newSplit(t *table, sp *spares) *pending {
	n := len(t.slots())
	p := &pending{old: t, bit: d.splitBit(t)}
	if n == d.maxSlots {
		p.lo, p.hi = sp.takeTable(t.depth+1), sp.takeTable(t.depth+1)
		if keepsSpareTables(d) {
			sp.ask() // for the next split
		}
	}
	if p.lo == nil {
		p.lo = newTable(n, t.depth+1)
	}
	if p.hi == nil {
		p.hi = newTable(n, t.depth+1)
	}
	return p
}

// insert (under the shard lock) stores the key of tag at l, with timer r,
// in its table, and returns its slot: table.insert, and, if the table is
// splitting, the same in the half when the slot is one already copied,
// and the split's next step.
func (d *directory) insert(tag uint32, l loc, r tref) *slot {
	t := d.table(tag)
	s := t.insert(tag, l, r)
	if len(d.pend.list) > 0 {
		if p := d.pend.of(t); p != nil {
			if p.copied(s) {
				p.half(tag).put(tag, l, r)
			}
			p.step(splitStep) // copies s if it was not
		}
	}
	return s
}

// setLoc (under the shard lock) points slot s at l (publishing the record
// there), in the half too if its table is splitting and s is copied.
func (d *directory) setLoc(s *slot, l loc) {
	if p := d.pendingOf(s); p != nil {
		p.twin(s, loc(s.loc.Load())).loc.Store(uint64(l))
	}
	s.loc.Store(uint64(l)) // publishes the record
}

// setTimer (under the shard lock) sets slot s's timer, in the half too if
// its table is splitting and s is copied.
func (d *directory) setTimer(s *slot, r tref) {
	if p := d.pendingOf(s); p != nil {
		p.twin(s, loc(s.loc.Load())).setTimer(r)
	}
	s.setTimer(r)
}

// remove (under the shard lock) empties slot s, in the half too if its
// table is splitting and s is copied.
func (d *directory) remove(s *slot) {
	if p := d.pendingOf(s); p != nil {
		p.half(s.tag()).remove(p.twin(s, loc(s.loc.Load())))
	}
	d.table(s.tag()).remove(s)
}

// pendingOf (under the shard lock) returns the split of s's table if it
// has one and has copied s. With no split pending in the shard, it reads
// no table header.
func (d *directory) pendingOf(s *slot) *pending {
	if len(d.pend.list) == 0 {
		return nil
	}
	if p := d.pend.of(d.table(s.tag())); p != nil && p.copied(s) {
		return p
	}
	return nil
}

// grown returns a copy of d with depth+extra bits: each entry repeated
// 1<<extra times.
func (d *directory) grown(extra uint8) *directory {
	nd := &directory{entries: make([]dirEntry, len(d.entries)<<extra), depth: d.depth + extra, sbits: d.sbits, maxSlots: d.maxSlots, pend: d.pend}
	for k := range nd.entries {
		nd.entries[k].set(d.entries[k>>extra].t.Load())
	}
	return nd
}

// replace stores, in the entries of old (entry i among them), nt, or, if
// hi (of nt's size) is not nil, nt in the lower half of them and hi in the
// upper half, and returns the directory: d, changed in place, or, if the
// new tables' mask is not old's, a changed copy (an entry's mask is fixed
// once published).
func (d *directory) replace(i uint32, old, nt, hi *table) *directory {
	copied := nt.mask != old.mask
	if copied {
		d = d.grown(0)
	}
	span := uint32(1) << (d.depth - old.depth)
	first := i &^ (span - 1)
	for k := range span {
		t := nt
		if hi != nil && k >= span/2 {
			t = hi
		}
		e := &d.entries[first+k]
		if copied {
			e.set(t)
			continue
		}
		e.t.Store(t) // publishes t's slots, written before
	}
	return d
}

// splitBit is the tag bit that parts the halves when t is split: the first
// below the t.depth bits its keys share, counting from under the shard bits.
func (d *directory) splitBit(t *table) uint32 {
	return uint32(1) << (31 - uint32(d.sbits) - uint32(t.depth))
}
