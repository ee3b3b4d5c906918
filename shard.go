package shardkv

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// shardFields is a shard without its padding.
type shardFields struct {
	// tab is the shard's index and chunks its chunk directory. Readers load
	// them without any lock; only a writer holding mu replaces them.
	tab    atomic.Pointer[directory]
	chunks atomic.Pointer[chunkRef]
	// The readers' words get a cache line of their own, so that writers
	// taking mu do not take the line from readers.
	_ [48]byte

	// mu serializes the shard's writers (and iterators, which want a
	// consistent shard). Point reads never take it.
	mu sync.Mutex
	// a comes right after mu: the arena's fields every write writes are
	// its first, so that with mu they fill one cache line, and those every
	// write reads fill the next (see arena).
	a arena
	// due mirrors w.due(): the tick at which the shard's earliest wheel slot
	// comes due, or noTick. It is written under mu and read without it by
	// the reaper and by quota reclaim, which only use it to skip shards with
	// nothing due: a stale value costs a wasted lock, never a missed expiry,
	// because it is lowered before mu is released whenever a timer is added.
	due atomic.Int64
	// expired counts the entries reclaimed (Store.Stats). Written under mu,
	// read without it.
	expired atomic.Uint64
	w       wheel
	sp      spares
	// hash is the store's key hash: compaction uses it to find the slot of
	// a record it reads from a chunk.
	hash func(string) uint64
}

// shard is one lock stripe. Its size is a multiple of 128 bytes (two cache
// lines, the unit the prefetcher pulls), so in the shards array no two
// shards' words share a line.
type shard struct {
	shardFields
	_ [(128 - unsafe.Sizeof(shardFields{})%128) % 128]byte
}

// init readies the shard. prep, if not nil, is where it asks the store's
// background goroutine for spare memory; tableSlots is the size at which
// its tables split (maxTableSlots but in tests).
func (sh *shard) init(sbits uint8, hash func(string) uint64, prep chan struct{}, pool *tablePool, tableSlots int) {
	sh.hash = hash
	sh.sp.signal = prep
	sh.sp.pool = pool
	sh.tab.Store(newDirectory(sbits, tableSlots))
	sh.a.init(&sh.chunks, &sh.sp)
	sh.due.Store(noTick)
}

// get returns key's value and deadline (noDeadline: none), expired or
// not, and whether it is held. It takes no lock and writes nothing: see
// table and arena for why what it reads is consistent. A lookup that finds
// its record's chunk dropped by compaction starts again; the slot names
// the record's copy by then. It returns only what readers use, in
// registers, not a whole entry.
func (sh *shard) get(key string, h uint64) (value string, when int64, ok bool) {
	tag := tagOf(h)
	for {
		first, mask := sh.tab.Load().slots(tag)
		if value, when, ok, dropped := probe(first, mask, key, tag, &sh.chunks); !dropped {
			return value, when, ok
		}
	}
}

// find (under mu) returns key's slot, with its entry in *e, or nil. Under the
// lock no chunk is dropped, so the probe never starts again.
//
// It is probe's writer side, written out: the directory entry gives the
// table's slots and mask (the table's header, on another cache line, is
// not read), and a record is decoded only for a slot whose tag matches.
func (sh *shard) find(key string, h uint64, e *entry) *slot {
	tag := tagOf(h)
	first, mask := sh.tab.Load().slots(tag)
	for i := tag & mask; ; i = (i + 1) & mask {
		s := slotAt(first, i)
		l := loc(s.loc.Load())
		if l == locEmpty {
			return nil
		}
		if l == locTomb || s.tag() != tag {
			continue
		}
		if e.decode(sh.a.bytes(l), l.off()); e.key == key {
			e.l = l
			return s
		}
	}
}

// probe looks key (tag) up for a reader in the table of first and mask,
// and returns its value and deadline. It resolves locs through src, the published chunk
// directory, which it loads after the first loc it resolves (so the
// directory holds that loc's chunk unless it was dropped), and again if a
// later loc's chunk is not in it (the chunk may be newer than the
// directory it loaded). dropped reports that a chunk was not there even
// then: compaction dropped it after moving its records, and the lookup
// must start again from the index. (Writers look keys up with shard.find.)
func probe(first *slot, mask uint32, key string, tag uint32, src *atomic.Pointer[chunkRef]) (value string, when int64, found, dropped bool) {
	var dir *chunkRef
	for i := tag & mask; ; i = (i + 1) & mask {
		s := slotAt(first, i)
		l := loc(s.loc.Load())
		if l == locEmpty {
			return "", 0, false, false
		}
		if l == locTomb || s.tag() != tag {
			continue
		}
		if dir == nil {
			dir = src.Load()
		}
		b := chunkAt(dir, l)
		if b == nil {
			dir = src.Load()
			if b = chunkAt(dir, l); b == nil {
				return "", 0, false, true
			}
		}
		var e entry
		if e.decode(b, l.off()); e.key == key {
			return e.value, e.when, true, false
		}
	}
}

// entryOf (under mu) returns the entry s names.
func (sh *shard) entryOf(s *slot) entry {
	l := loc(s.loc.Load())
	return readAt(sh.a.bytes(l), l)
}

// appendRecord (under mu) writes the record of key, v and when into the
// arena and returns its loc. It allocates only when it starts a chunk.
func appendRecord[V string | []byte](sh *shard, key string, v V, when int64) loc {
	n := recordSize(len(key), len(v), when)
	l, b := sh.a.reserve(n)
	putRecord(b[l.off():l.off()+n], key, v, when)
	sh.a.added(l, n)
	return l
}

// storeRecord (under mu) writes key's new record and points the key's slot
// at it: s, the key's slot, with old its entry; or, when s is nil, a new
// slot. It returns the slot. The slot's timer is untouched.
func storeRecord[V string | []byte](sh *shard, s *slot, old *entry, key string, h uint64, v V, when int64) *slot {
	l := appendRecord(sh, key, v, when)
	d := sh.tab.Load()
	if s != nil {
		d.setLoc(s, l) // publishes the record
		sh.a.gone(old)
	} else {
		tag := tagOf(h)
		if nd := d.makeRoom(tag, &sh.sp); nd != d {
			sh.tab.Store(nd)
			d = nd
		}
		s = d.insert(tag, l, 0)
	}
	return s
}

// remove (under mu) removes the key of slot s, whose entry is e, and frees
// its timer if it has one that is still scheduled or fired.
func (sh *shard) remove(s *slot, e *entry) {
	if r := s.timer(); r != 0 {
		sh.w.release(r)
	}
	sh.tab.Load().remove(s)
	sh.a.gone(e)
}

// schedule (under mu) gives the key of slot s (hash h) a timer firing at
// or before when, reusing the slot's timer if it has one; prev is the
// deadline of the entry s held before (unused when s has no timer). It
// returns the tick at which the reaper must look at this shard, or noTick
// when that does not change.
//
// A slot's timer fires at or before its entry's deadline, never after: a
// deadline no earlier than prev leaves the timer as it is, not even
// touched (its memory is a cache miss of its own), and when it fires
// early, reclaimDue finds the entry's deadline in its record and places
// the timer again for it. So a key rewritten many times within its TTL
// costs its timer nothing per write. An earlier deadline moves it at once.
func (sh *shard) schedule(s *slot, h uint64, when, prev int64) int64 {
	var start int64
	if r := s.timer(); r == 0 {
		r = sh.w.alloc()
		sh.w.at(r).hash = h
		sh.tab.Load().setTimer(s, r)
		start = sh.w.schedule(r, when)
	} else if when >= prev {
		return noTick
	} else {
		start = sh.w.reschedule(r, when)
	}
	if start < sh.due.Load() {
		sh.due.Store(start)
	}
	return start
}

// unschedule (under mu) removes s's timer, if any, and frees it.
func (sh *shard) unschedule(s *slot) {
	if r := s.timer(); r != 0 {
		sh.w.cancel(r)
		sh.w.release(r)
		sh.tab.Load().setTimer(s, 0)
	}
}

// slotOfTimer (under mu) returns the slot whose timer is r: the key of the
// hash r was scheduled for.
func (sh *shard) slotOfTimer(r tref) *slot {
	tag := tagOf(sh.w.at(r).hash)
	first, mask := sh.tab.Load().slots(tag)
	for i := tag & mask; ; i = (i + 1) & mask {
		s := slotAt(first, i)
		switch loc(s.loc.Load()) {
		case locEmpty:
			panic("shardkv: a scheduled timer's key is not in its table")
		case locTomb:
			continue
		}
		if s.meta.Load() == uint64(tag)<<32|uint64(r) {
			return s
		}
	}
}

// scan visits the shard's entries (expired or not) a table at a time:
// for each table it takes the lock, calls collect with each of the table's
// entries, releases the lock and calls flush, stopping if flush returns
// false. So it holds writers off for one table (at most 3072 entries) at a
// time, never for the whole shard. It walks the hash space in order, one
// table's range after the next, looking each range up in the directory of
// the moment, so splits between two holds neither repeat a key nor skip
// one: a key present for the whole scan is collected exactly once, and one
// added or removed meanwhile may or may not be. The entries' strings share
// chunks: collect copies what it keeps past flush.
func (sh *shard) scan(collect func(entry), flush func() bool) {
	end := uint64(1) << sh.tab.Load().maxDepth() // the same for every directory of the shard
	for c := uint64(0); c < end; {
		c = sh.scanTable(c, collect)
		if !flush() {
			return
		}
	}
}

// scanTable takes the lock, calls collect with each entry of the table
// that holds position c of the shard's hash space (positions of its
// directory's maxDepth), releases the lock and returns the position after
// that table's range.
func (sh *shard) scanTable(c uint64, collect func(entry)) uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	d := sh.tab.Load()
	maxD := uint(d.maxDepth())
	t := d.entries[c>>(maxD-uint(d.depth))].t.Load()
	span := uint64(1) << (maxD - uint(t.depth))
	base := c &^ (span - 1)
	for i := range t.slots() {
		s := &t.slots()[i]
		if l := loc(s.loc.Load()); l != locEmpty && l != locTomb {
			// A table starts where the last one ended, unless the shard was
			// cleared since (a directory never gets shallower otherwise):
			// then this one also covers the range already visited, whose
			// keys, added since the clear, must not be collected twice.
			if base < c && uint64(s.tag()<<d.sbits>>(32-maxD)) < c {
				continue
			}
			collect(readAt(sh.a.bytes(l), l))
		}
	}
	return base + span
}

// reset (under mu) drops every entry and timer, and returns how many
// entries there were.
func (sh *shard) reset() int {
	n := 0
	sh.tab.Load().each(func(t *table) { n += int(t.live) })
	d := sh.tab.Load()
	sh.tab.Store(newDirectory(d.sbits, d.maxSlots))
	sh.a.reset()
	sh.sp.drop()
	sh.w.reset()
	sh.due.Store(noTick)
	return n
}

// Compaction. A sealed chunk whose records have all been overwritten,
// deleted or expired is dropped as soon as its last one goes (arena.gone),
// with no copying; under churn most chunks end that way. What remains is
// garbage spread over chunks that still hold some live records. Every
// write, delete and expiry of n bytes owes compactRate*n bytes of cleaning;
// while the shard is overfull (arena.overfull), a lock hold that finds
// compactMin of debt or more pays up to compactStep of it: it picks the
// chunk whose bytes are most garbage (arena.mostGarbage), reads its
// records from a cursor, skips those marked dead (arena.gone marks a
// record's state byte) without looking their keys up, copies the others
// (current, so each has a slot) to the survivors' head chunk, points their
// slots at the copies, and drops the chunk at its end. Copies go to a head
// of their own, not the writes' head: a record that outlived its chunk is
// likely to outlive the next (a cold key among hot ones), so survivors
// gathered together fill chunks that stay live, and the writes' chunks,
// holding only fresh records, die nearly whole instead of leaving a cold
// record in each to be copied again and again
// (TestCompactionKeepsSurvivorsApart). It reads compactBatch live records
// ahead of copying them, so that their slots' cache misses overlap. So
// the work under one lock hold is bounded (compactStep bytes, plus one
// record of at most largeRecord bytes), and it is amortized over the
// writes that made the garbage. A large record is never copied: its
// chunk holds only it, and goes when it does.
//
// The same cleaning merges small chunks (arena.isSmall: made while the
// shard was a quarter its size or less), overfull or not: while there are
// any, every write of n bytes also owes n bytes (arena.added), and a
// cleaning that finds the shard not overfull picks the smallest of them
// and copies its records into the writes' head (not the survivors': a
// growing shard would otherwise keep a second head half empty). Merging
// frees what it copies once the chunk is dropped, so it adds nothing
// lasting to what is held, only the copies of one small chunk while it
// runs, which the bound below allows for as it does the cleaned chunk's.
//
// Why what is held stays within twice the live bytes: cleaning starts when
// garbage (sealed chunks' unfilled tails included) exceeds 3/4 of the live
// bytes plus garbageAllowance. Then the chunk whose bytes are most garbage
// has at least the average share, 3/7, so reading 4n bytes of it frees at
// least 1.7n for every n of garbage a write makes: garbage shrinks while
// it is over the threshold. Beyond the threshold it can hold only the copies
// made from the chunk being cleaned and one step's work. A chunk is made
// at most a sixteenth of the shard, but after mass deletes the live bytes
// can shrink below what the chunks were sized for, so the threshold leaves
// a quarter of the live bytes for those copies: 1 + 3/4 + 1/4 = 2, plus the
// allowance and one step; what is held adds the two heads' unfilled rest.
// (At 7/8, leaving an eighth, TestCompactionBoundsMemory failed in 6 runs
// of 20 after its "deletes of the rest" phase:
// docs/evidence/compaction-threshold.txt.) The higher the threshold, the
// less is copied per byte freed, at worst: 4/3 bytes at 3/4, 8/5 at 5/8.
// The chunk cleaned is mostly far more garbage than the average, and
// copies far less (see arena.mostGarbage).
const (
	compactRate = 4
	compactStep = 64 << 10
)

// compactBatch is how many records not marked dead compact reads ahead of
// looking their slots up. It asks for each one's home slot as it reads it,
// so that the slot misses of a lock hold's copies overlap (as
// Store.Prefetch's do) instead of coming one record after another: a hold
// copies tens of records or more, each with its slot anywhere in the
// shard's tables.
const compactBatch = prefetchBatch

// compactMin is the debt compact lets build up before it pays: about 40
// records of ours, so that a batch is full (a write owes a few records'
// cleaning, and a lock hold that paid only that would look up 2 or 3 slots
// at a time). It defers at most compactMin of cleaning a shard, less than
// one step, which the memory bound already allows for.
const compactMin = 4 << 10

// compactAhead is how far ahead of its cursor compact asks for the chunk's
// bytes: a few records on, so that reading them does not wait for a miss
// at every line.
const compactAhead = 512

// moving is a record compact has read ahead: its offset and size in the
// chunk being cleaned, its key, and the key's hash.
type moving struct {
	off, size int
	key       string
	h         uint64
}

// compact (under mu) pays some of the shard's cleaning debt, if it is
// overfull or has small chunks to merge (arena.wantsCleaning).
func (sh *shard) compact() {
	a := &sh.a
	if a.debt < compactMin {
		return
	}
	if !a.wantsCleaning() {
		a.debt = 0
		return
	}
	budget := min(a.debt, compactStep)
	a.debt -= budget
	var batch [compactBatch]moving
	// wantsCleaning is checked once a batch: copying adds garbage (the
	// copy's bytes in used, the original's still held), so only a drop can
	// end overfull or a merge, and a drop ends a batch.
	for budget > 0 && a.wantsCleaning() {
		no := a.cleaning
		if no == noChunk {
			if a.overfull() {
				if no = a.idleHead(); no == noChunk {
					if no = a.mostGarbage(); no != noChunk {
						a.cleaning, a.clean = no, 0
					}
				}
			} else if no = a.smallest(); no != noChunk { // small chunks to merge
				a.cleaning, a.clean, a.merging = no, 0, true
			}
			if no == noChunk {
				break
			}
			a.countSmalls() // the chunk picked, small or not, is counted no more
		}
		c := &a.meta[no]
		if a.clean >= c.used || c.live == 0 {
			a.drop(no) // every record copied or gone
			continue
		}
		// Read ahead from the cursor, within the budget, skipping records
		// marked dead (gone: no need to look their keys up).
		b, gen := c.b, c.gen
		n := 0
		for n < compactBatch && budget > 0 && a.clean < c.used {
			off := a.clean
			if ahead := off + compactAhead; ahead < c.used {
				prefetch(unsafe.Pointer(&b[ahead]))
			}
			e := readRecord(b, off)
			a.clean += e.size
			budget -= e.size
			a.cleanRead += e.size
			if b[off] == recDead {
				continue
			}
			h := sh.hash(e.key)
			sh.prefetchHome(tagOf(h))
			batch[n] = moving{off: off, size: e.size, key: e.key, h: h}
			n++
		}
		// Then copy them. c is not used from here: reserve may grow a.meta.
		// Nothing here changes a table's layout, so the homes asked for
		// above are where current looks.
		for _, m := range batch[:n] {
			// A record not marked dead is current (every record that stops
			// being current goes through arena.gone, but the copies
			// compaction leaves behind its cursor, which it never reads
			// again): s is never nil here. The check stays, so that a
			// record is never copied without its slot, and counts what it
			// finds.
			s := sh.current(m.key, m.h, makeLoc(no, gen, m.off))
			if s == nil {
				a.strays++
				continue
			}
			a.meta[no].live -= m.size
			a.cleanCopied += m.size
			to := &a.survivors
			if a.merging {
				to = &a.head
			}
			nl, nb := a.reserveOn(to, m.size)
			copy(nb[nl.off():nl.off()+m.size], b[m.off:m.off+m.size])
			sh.tab.Load().setLoc(s, nl)
			to.live += m.size // moved: the shard's live bytes stay
		}
	}
}

// current (under mu) returns the slot of key (hash h) if its record is at
// l. Like find, it takes the slots and mask from the directory entry.
func (sh *shard) current(key string, h uint64, l loc) *slot {
	tag := tagOf(h)
	first, mask := sh.tab.Load().slots(tag)
	for i := tag & mask; ; i = (i + 1) & mask {
		s := slotAt(first, i)
		switch loc(s.loc.Load()) {
		case locEmpty:
			return nil
		case l:
			return s
		}
	}
}

// expire (under mu) removes the expired entry e in sl, whose timer is
// already cancelled or fired, and publishes its EventExpire. The caller
// decides what becomes of the entry's quota slot.
func (s *store) expire(sh *shard, sl *slot, e *entry) {
	sh.remove(sl, e)
	sh.expired.Add(1)
	s.events.publish(e.key, EventExpire, "")
}

// reclaimBudget caps the timers one advance handles under one hold of a
// shard lock, so a burst of simultaneous expiries never stalls the shard's
// writers for long: about 30-60 µs of work here.
const reclaimBudget = 512

// reclaimBatch is how many fired timers reclaimDue gathers before it
// handles them: their keys' slots, then records, are prefetched together
// first (shard.prefetchTimers, as Store.Prefetch does), so that the cache
// misses of a burst of expiries overlap instead of adding up.
const reclaimBatch = prefetchBatch

// reclaimDue reclaims every entry of sh whose deadline is <= now, releasing
// the lock every reclaimBudget timers.
//
// The wheel hands each fired timer over (advance's fire), and reclaimDue
// handles them a batch at a time, under the same lock hold: the wheel does
// not touch a timer once it has handed it over, and handling one timer
// changes no other timer, so the batch is handled in the order the timers
// fired, exactly as each would have been at its turn.
func (s *store) reclaimDue(sh *shard, now int64) {
	handle := func(r tref) {
		// The timer fired. A delete, or an overwrite without a TTL, cancels
		// the timer; Increment keeps the deadline; an overwrite with a
		// later deadline leaves the timer where it was (shard.schedule), so
		// the entry's own deadline, in its record, decides: still ahead,
		// the timer goes back in the wheel for it; else the entry is
		// expired.
		sl := sh.slotOfTimer(r)
		e := sh.entryOf(sl)
		if e.when > now {
			sh.w.schedule(r, e.when)
			return
		}
		s.expire(sh, sl, &e)
		s.count.Add(-1)
	}
	var (
		batch [reclaimBatch]tref
		n     int
	)
	flush := func() {
		sh.prefetchTimers(batch[:n])
		for _, r := range batch[:n] {
			handle(r)
		}
		n = 0
	}
	fire := func(r tref) {
		batch[n] = r
		if n++; n == reclaimBatch {
			flush()
		}
	}
	for {
		sh.mu.Lock()
		if s.closed.Load() { // see store.close: a closed store changes no more
			sh.mu.Unlock()
			return
		}
		done := sh.w.advance(now, reclaimBudget, fire)
		flush() // before due: a handled timer may go back in the wheel
		sh.due.Store(sh.w.due())
		sh.compact()
		sh.mu.Unlock()
		if done {
			return
		}
	}
}
