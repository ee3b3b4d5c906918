package shardkv

import (
	"math"
	"sync/atomic"
	"unsafe"
)

// record is one stored key and value, immutable once published. It is one
// pointer-free allocation: this header, then the key's bytes, then the
// value's. Being immutable is what lets a reader use a record it loaded
// without any lock, and lend its bytes to View, events and iterators; being
// pointer-free is what makes it cheap for the garbage collector, which marks
// it without scanning it. Every write makes a new record (its only
// allocation) and swaps it into the key's slot.
type record struct {
	when       int64 // the deadline in store-clock nanoseconds; noDeadline: none
	klen, vlen uint32
}

// noDeadline is a record's when for a key without a TTL.
const noDeadline = int64(-1)

const recordHeader = int(unsafe.Sizeof(record{}))

// maxRecordLen is the longest key or value a record holds (its lengths are
// 32-bit); the value-size limit is clamped to it and longer keys refused.
const maxRecordLen = int64(math.MaxUint32)

// newRecord allocates the record of key and v with deadline when.
func newRecord[V string | []byte](key string, v V, when int64) *record {
	b := make([]byte, recordHeader+len(key)+len(v))
	// The allocation is at least recordHeader bytes, so it is 8-byte
	// aligned and the header can be written in place.
	r := (*record)(unsafe.Pointer(unsafe.SliceData(b)))
	r.when = when
	r.klen, r.vlen = uint32(len(key)), uint32(len(v))
	copy(b[recordHeader:], key)
	copy(b[recordHeader+len(key):], v)
	return r
}

// key is the record's key. The string shares the record's memory, which is
// never written again.
func (r *record) key() string {
	if r.klen == 0 {
		return "" // a validator may allow the empty key; no pointer past the end
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(r), recordHeader)), r.klen)
}

// value is the record's value, sharing the record's memory like key.
func (r *record) value() string {
	if r.vlen == 0 {
		return "" // as in key
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(r), recordHeader+int(r.klen))), r.vlen)
}

// expired reports whether r has a deadline at or before now.
func (r *record) expired(now int64) bool { return r.when >= 0 && now >= r.when }

// tomb marks a slot whose key was removed; probes go past it.
var tomb = &record{when: noDeadline}

// slot is one cell of a table.
//
// rec and hash are written only under the shard lock and read without it.
// A writer stores hash before it publishes rec (an atomic store, so a
// release), and a slot's hash changes only while its rec is nil or tomb; a
// reader loads rec first and hash after, so it sees the hash of the record
// it loaded or, if the slot was emptied and reused in between, a later one:
// then it goes on past a key that was removed during the read, which is a
// miss the read may return. The hash is only a filter: a match is decided
// by comparing the key's bytes in the record.
type slot struct {
	rec  atomic.Pointer[record] // nil: never used; tomb: removed
	hash atomic.Uint64
	t    tref // the key's timer in the shard's wheel, 0 without a TTL; under the shard lock
}

// table is an open-addressing hash table with linear probing, the storage
// of one shard. Readers probe it with atomic loads and no lock; writers
// change it under the shard lock. A table never fills: at least a quarter
// of its slots stay nil, so every probe ends. A table is never resized in
// place: the shard builds a new one and publishes it, so a reader still
// probing the old one sees a consistent (if, by then, slightly old) state,
// which is what a read that overlapped the writes may return.
type table struct {
	mask  uint64
	slots []slot
	// live and used (live records plus tombs) are the shard's counts,
	// written only under the shard lock and never read by readers.
	live, used int
}

// emptyTable is every shard's table until its first insert. It has one nil
// slot and no room, so the first insert replaces it; nothing writes it.
var emptyTable = &table{slots: make([]slot, 1)}

// probe returns key's slot and live record, or nils. Safe without the
// shard lock. A lock-free probe ends at the first nil slot; it has no bound
// in theory (writers could keep taking the nil slot ahead of it), and in
// practice it is as long as the key's run of used slots.
func (t *table) probe(key string, h uint64) (*slot, *record) {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		r := s.rec.Load()
		if r == nil {
			return nil, nil
		}
		if r != tomb && s.hash.Load() == h && r.key() == key {
			return s, r
		}
	}
}

// slotOf (under the shard lock) returns the slot of the key whose hash is h
// and whose timer is r. A timer is the key's for as long as it is
// scheduled, so this finds the key a firing timer names without its bytes.
func (t *table) slotOf(h uint64, r tref) *slot {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.rec.Load() == nil {
			panic("shardkv: a scheduled timer's key is not in its table")
		}
		if s.t == r && s.hash.Load() == h {
			return s
		}
	}
}

// full reports whether one more slot may not be taken without breaking the
// quarter-nil rule.
func (t *table) full() bool { return (t.used+1)*4 > len(t.slots)*3 }

// insert (under the shard lock) stores r, whose key is absent, and returns
// its slot. It reuses the first tomb of the probe, or takes a nil slot.
func (t *table) insert(h uint64, r *record) *slot {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.rec.Load() {
		case nil:
			t.used++
		case tomb:
		default:
			continue
		}
		s.hash.Store(h)
		s.rec.Store(r) // publishes the record (and the hash before it)
		t.live++
		return s
	}
}

// remove (under the shard lock) removes s's record; s.t must be 0. The
// slot becomes a tomb, or nil when the next slot is nil (no probe that
// reaches it can go further), and so do the tombs just before it.
func (t *table) remove(s *slot) {
	t.live--
	i := uint64(uintptr(unsafe.Pointer(s))-uintptr(unsafe.Pointer(&t.slots[0]))) / uint64(unsafe.Sizeof(slot{}))
	if i >= uint64(len(t.slots)) || &t.slots[i] != s {
		panic("shardkv: remove of a slot of another table")
	}
	if t.slots[(i+1)&t.mask].rec.Load() != nil {
		s.rec.Store(tomb)
		return
	}
	// A probe for any key passes i only if it would go on to i+1, which is
	// nil and ends it: i may end it too. Then the same holds for a tomb at
	// i-1, and so on back.
	for {
		t.slots[i].rec.Store(nil)
		t.used--
		i = (i - 1) & t.mask
		if t.slots[i].rec.Load() != tomb {
			return
		}
	}
}

// grown returns a table holding t's live records with room for at least
// one more, sized so that they fill between 1/4 and 1/2 of it. Tombs are
// dropped.
func (t *table) grown() *table {
	n := 8
	for n < (t.live+1)*2 {
		n *= 2
	}
	nt := &table{mask: uint64(n - 1), slots: make([]slot, n), live: t.live, used: t.live}
	for i := range t.slots {
		s := &t.slots[i]
		r := s.rec.Load()
		if r == nil || r == tomb {
			continue
		}
		h := s.hash.Load()
		j := h & nt.mask
		for nt.slots[j].rec.Load() != nil {
			j = (j + 1) & nt.mask
		}
		d := &nt.slots[j]
		d.hash.Store(h)
		d.rec.Store(r)
		d.t = s.t
	}
	return nt
}

// each calls fn with every live record (expired or not) of t.
func (t *table) each(fn func(*record)) {
	for i := range t.slots {
		if r := t.slots[i].rec.Load(); r != nil && r != tomb {
			fn(r)
		}
	}
}
