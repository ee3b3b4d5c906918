package shardkv

import "unsafe"

// A split a step at a time. Splitting a full table copies its entries, 3072
// of them at maxTableSlots: 73-79 µs at the median, one write under the
// shard lock, during a 10M-key fill on a 2-core VM, and the thousands of
// splits of such a fill were most of its slowest writes
// (docs/evidence/split-steps.txt).
// So a table that reaches splitAt32/32 of its slots starts its split early, and
// the split goes on a step at a time: every insert into the table copies
// the next splitStep of its slots into the two halves, which are not
// published, and every change to a slot already copied (an insert into it,
// a new loc, a new timer, a removal) is made in the halves too. When the
// table fills, the halves hold exactly its entries, and they replace it in
// the directory as a split's halves always have (one or two stores, or a
// doubled directory): no write copies more than splitStep slots for it.
//
// The window is long enough: from splitAt32/32 to full (3/4) is n/32
// inserts that take an empty slot, at least, for a table of n slots, and a
// split finishes in n/splitStep inserts, a quarter of that. A step of 128
// slots costs about 4 µs at the median during a 10M-key fill here, 32
// slots 2.9 µs and 512 slots 11 µs (docs/evidence/split-steps.txt): the
// halves' cache lines are cold, and a longer step lets the prefetcher
// stream them. A table that fills before its split is done
// (it started late, because it was mostly tombs when it crossed splitAt)
// copies the rest then, as a split always did.
//
// What it costs: a split's halves are held from its start until its table
// fills, and every change to a copied slot is made twice meanwhile. A
// table that stops growing inside the window (a store that stops growing)
// keeps its halves, twice its own size, and goes on mirroring into them.
// Under a uniform hash a shard's tables fill at one pace, so at some store
// sizes many of them are in the window at once, and the index then holds
// up to twice its tables' bytes more. Not changed: a later start narrows
// the window but leaves that worst case as it is.
//
// Readers never see the halves before they are published: the store that
// publishes them orders every write to them before it, as for any table.
// The table being split is the one readers use until then, changed as any
// table is.
const (
	splitAt32 = 23  // a split starts when 23/32 of a table's slots are used
	splitStep = 128 // the slots of the old table each insert copies
)

// pending is a table being split: old's slots [0, next) are copied into lo
// and hi, parted by the tag bit bit.
type pending struct {
	old, lo, hi *table
	bit         uint32
	next        uint32
}

// splits is a shard's pending splits (writers only, under the shard
// lock). A table's header names its pending split by index (table.pend,
// the index plus one), so the tables stay pointer-free and the halves
// stay reachable from here.
type splits struct {
	list []*pending
}

// of returns t's pending split, or nil.
func (ss *splits) of(t *table) *pending {
	if t.pend == 0 {
		return nil
	}
	return ss.list[t.pend-1]
}

// room reports whether another split may be pending: table.pend is 16
// bits, so a shard has at most 65535 (a table that finds no room splits
// all at once, when it fills).
func (ss *splits) room() bool { return len(ss.list) < 1<<16-1 }

// add records p as its table's pending split.
func (ss *splits) add(p *pending) {
	ss.list = append(ss.list, p)
	p.old.pend = uint16(len(ss.list))
}

// remove forgets p.
func (ss *splits) remove(p *pending) {
	i := p.old.pend - 1
	last := ss.list[len(ss.list)-1]
	ss.list[i], last.old.pend = last, i+1
	ss.list[len(ss.list)-1] = nil
	ss.list = ss.list[:len(ss.list)-1]
	p.old.pend = 0
}

// half is the half the key of tag goes to.
func (p *pending) half(tag uint32) *table {
	if tag&p.bit != 0 {
		return p.hi
	}
	return p.lo
}

// copied reports whether slot s of the old table has been copied.
func (p *pending) copied(s *slot) bool {
	return uint32((uintptr(unsafe.Pointer(s))-uintptr(unsafe.Pointer(p.old.first())))/unsafe.Sizeof(slot{})) < p.next
}

// step copies up to n more of the old table's slots into the halves.
func (p *pending) step(n uint32) {
	old := p.old
	end := min(p.next+n, old.mask+1)
	for i := p.next; i < end; i++ {
		s := slotAt(old.first(), i)
		if l := loc(s.loc.Load()); l != locEmpty && l != locTomb {
			m := s.meta.Load()
			tag := uint32(m >> 32)
			p.half(tag).put(tag, l, tref(m))
		}
	}
	p.next = end
}

// twin returns the copy, in a half, of the old table's slot s, which is
// copied and holds a record (loc l).
func (p *pending) twin(s *slot, l loc) *slot {
	tag := s.tag()
	return p.half(tag).slotOf(tag, l)
}

// put is insert for a table no reader can see yet (a split's half): the
// same slot, written with plain stores (see slot.set; the store that
// publishes the table orders them before any reader's loads).
func (t *table) put(tag uint32, l loc, r tref) {
	t.claim(tag).set(uint64(tag)<<32|uint64(r), l)
}

// slotOf returns the slot that holds loc l, for a key of tag; it must be
// there.
func (t *table) slotOf(tag uint32, l loc) *slot {
	first := t.first()
	for i := t.home(tag); ; i = (i + 1) & t.mask {
		s := slotAt(first, i)
		switch loc(s.loc.Load()) {
		case l:
			return s
		case locEmpty:
			panic("shardkv: a copied slot is missing from its split's half")
		}
	}
}
