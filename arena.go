package shardkv

import (
	"encoding/binary"
	"math"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// A shard's keys and values live in its arena: a few large, pointer-free
// byte chunks into which records are appended back to back. The table
// holds, for each key, the record's loc (chunk number, generation, offset)
// as a plain integer, so the garbage collector marks one object per chunk,
// never one per entry.
//
// Why a lock-free reader never reads reused or half-written bytes:
//
//   - A record's bytes are written before the loc that names it is stored
//     in a slot (an atomic store, a release), and a reader reads them only
//     after loading that loc (an atomic load, an acquire). No byte of a
//     published record is ever written again.
//   - A chunk is never reused. Compaction copies a chunk's current records
//     to a head chunk (the survivors'), points their slots at the copies,
//     then drops the chunk from the chunk directory; a reader that still
//     holds the chunk (a Go pointer, loaded from the directory) keeps it
//     alive, and its bytes are still the old, unchanged records.
//   - A chunk number is reused, but with a new generation, and a loc
//     carries both: a reader that resolves a loc whose chunk has been
//     dropped finds another generation (or none) under that number, and
//     starts its lookup again from the table, which by then names the copy.
//     A stale loc could resolve to a wrong chunk only if its number went
//     round all 2^20 generations while one read was in progress.

// loc names a record: its chunk's number in the chunk directory (the top
// locNoBits), the generation of that number (the next locGenBits) and the
// record's offset in the chunk (the low locOffBits).
type loc uint64

const (
	locEmpty loc = 0 // a slot never used: probes end here
	locTomb  loc = 1 // a slot whose key was removed: probes go past it

	locOffBits = 24
	locGenBits = 20
	locNoBits  = 64 - locOffBits - locGenBits

	maxChunkNo = 1<<locNoBits - 1
	genMask    = 1<<locGenBits - 1
)

// Generations start at 1, so no real loc is locEmpty or locTomb.
func makeLoc(no, gen uint32, off int) loc {
	return loc(uint64(no)<<(locOffBits+locGenBits) | uint64(gen)<<locOffBits | uint64(off))
}

func (l loc) no() uint32  { return uint32(l >> (locOffBits + locGenBits)) }
func (l loc) gen() uint32 { return uint32(l>>locOffBits) & genMask }
func (l loc) off() int    { return int(l & (1<<locOffBits - 1)) }

// Chunk sizes. A shard's chunks grow with the bytes it holds, from
// minChunk to maxChunk (so a small store stays small and a large one has
// few chunks); a record larger than largeRecord gets a chunk of its own,
// which compaction never copies.
const (
	minChunk    = 16 << 10
	maxChunk    = 256 << 10 // offsets fit in locOffBits
	largeRecord = maxChunk / 4

	// garbageAllowance is the garbage a shard may hold before compaction
	// starts, whatever its size.
	garbageAllowance = minChunk
)

// chunk is the writers' account of one chunk number: the chunk's bytes,
// how many of them are appended and current (for a head, kept in its
// headChunk until it is sealed), and the number's latest generation. The
// arena keeps these by number, in one slice (arena.meta), not as objects
// of their own: so the garbage collector has one object per
// chunk to mark (its bytes) and two pointers to it (here and in the
// readers' directory), and a writer reaches a chunk with one index, not a
// pointer to follow. A chunk's bytes up to used are published records,
// immutable; the rest is written only by appends, under the shard lock,
// before the locs of what is appended are published.
type chunk struct {
	b    []byte // nil: the number is free
	used int    // bytes appended
	live int    // bytes of the records slots point to
	gen  uint32 // the number's latest generation (kept while it is free)
	at   int32  // its index in arena.chunks
	// A chunk is a cache line, so that a writer's lookup (b, gen) and its
	// accounting (used, live) of one chunk touch one line, not two.
	_ [16]byte
}

// noChunk stands for no chunk in a headChunk and arena.cleaning.
const noChunk = ^uint32(0)

// headChunk is a chunk being appended to, a head: its number (noChunk:
// none yet), and its appended and live bytes, which are counted here, not
// in its chunk entry, until seal writes them there. Every write counts its
// record in the writes' head, and a.head lies on the shard lock's cache
// line (see shardFields), which the writer holds already, so a write's
// accounting takes no line from another core. A chunk entry is written
// only when its chunk is added, sealed, cleaned or dropped, so writers'
// lookups find its b and gen in their own cache (docs/evidence/head-counts).
type headChunk struct {
	no         uint32
	used, live int
}

// chunkRef is what a reader needs of a chunk: its bytes and generation.
//
// The readers' chunk directory is an array of chunkRefs, published (as
// shard.chunks) as a pointer to its first element: element 0 is a header
// whose gen holds the array's length, and element no+1 names chunk number
// no (a free number has a nil b and gen 0, which no loc carries). So a
// reader resolves a loc with one load from the shard and one from the
// array, then reads the record: no chunk header in between. The array is
// immutable once published; the arena publishes a new one when it adds or
// drops a chunk.
type chunkRef struct {
	b   []byte
	gen uint32
}

var emptyChunkDir = &[]chunkRef{{gen: 1}}[0]

// chunkAt returns the bytes of the chunk l names in the directory whose
// first element is dir, or nil if that chunk has been dropped (or is newer
// than dir).
func chunkAt(dir *chunkRef, l loc) []byte {
	no := uintptr(l.no()) + 1
	if no >= uintptr(dir.gen) {
		return nil
	}
	r := (*chunkRef)(unsafe.Add(unsafe.Pointer(dir), no*unsafe.Sizeof(chunkRef{})))
	if r.gen != l.gen() {
		return nil
	}
	return r.b
}

// A record is a state byte, the key's length shifted left one bit with
// the has-a-deadline flag in bit 0 and the value's length, as uvarints,
// the deadline (8 bytes, little-endian) if the flag says it has one, then
// the key's bytes and the value's. The state byte is the writers' alone:
// recLive when the record is written, recDead once it is garbage
// (arena.gone), so that compaction skips a dead record without looking
// its key up. Readers never read it (decode starts after it), so writing
// it under the shard lock while readers read the rest of the record is
// no race: it is another byte, and every other byte of a published record
// is immutable.
const (
	recLive = 0
	recDead = 1

	recHasDeadline = 1 // bit 0 of the key-length uvarint
)

// entry is a record as read from its chunk. key and value share the chunk's
// memory, which is never written again: they are good for as long as they
// are referenced, but hold the whole chunk alive, so nothing that outlives
// a call is handed to a caller without a copy.
type entry struct {
	key, value string
	when       int64 // the deadline in store-clock nanoseconds; noDeadline: none
	size       int   // the record's bytes in its chunk
	l          loc   // where it is
}

// noDeadline is an entry's when for a key without a TTL.
const noDeadline = int64(-1)

// maxRecordLen is the longest key or value a store accepts; the value-size
// limit is clamped to it and longer keys refused.
const maxRecordLen = int64(math.MaxUint32)

// expired reports whether e has a deadline at or before now.
func (e *entry) expired(now int64) bool { return e.when >= 0 && now >= e.when }

func uvarintLen(n int) int { return (bits.Len64(uint64(n)|1) + 6) / 7 }

// recordSize is the size of the record of a key of klen bytes and a value of
// vlen bytes, with or without a deadline.
func recordSize(klen, vlen int, when int64) int {
	n := 1 + uvarintLen(klen<<1|1) + uvarintLen(vlen) + klen + vlen
	if when >= 0 {
		n += 8
	}
	return n
}

// putRecord writes the record of key, v and when at the start of b, which
// has room for exactly recordSize bytes.
func putRecord[V string | []byte](b []byte, key string, v V, when int64) {
	kf := len(key) << 1
	if when >= 0 {
		kf |= recHasDeadline
	}
	b[0] = recLive
	var i int
	if kf < 0x80 && len(v) < 0x80 { // one byte each, as decode's fast path reads them
		b[1], b[2], i = byte(kf), byte(len(v)), 3
	} else {
		i = 1 + binary.PutUvarint(b[1:], uint64(kf))
		i += binary.PutUvarint(b[i:], uint64(len(v)))
	}
	if when >= 0 {
		binary.LittleEndian.PutUint64(b[i:], uint64(when))
		i += 8
	}
	i += copy(b[i:], key)
	copy(b[i:], v)
}

// decode sets e's key, value, deadline and size to those of the record at
// off in b, leaving e.l as it is. It fills e in place: an entry is seven
// words, and lookups decode one per probe that meets its tag.
//
// It reads the record through an unsafe pointer, without bounds checks:
// off and the lengths come from a record this package wrote whole into b
// before publishing its loc (see the package comment on arena), so every
// byte read is inside b. A string of no bytes is left "", so that no
// pointer past the record (perhaps past the chunk) is ever made. It does
// not read the state byte (see recLive).
func (e *entry) decode(b []byte, off int) {
	p := unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), off)
	at := func(i int) byte { return *(*byte)(unsafe.Add(p, i)) }
	var kf, vlen, i int
	if k, v := at(1), at(2); k < 0x80 && v < 0x80 { // short key and value: one byte each
		kf, vlen, i = int(k), int(v), 3
	} else {
		q := b[off:]
		kl, n := binary.Uvarint(q[1:])
		i = 1 + n
		vl, n := binary.Uvarint(q[i:])
		i += n
		kf, vlen = int(kl), int(vl)
	}
	klen := kf >> 1
	e.when = noDeadline
	if kf&recHasDeadline != 0 {
		e.when = int64(binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Add(p, i)), 8)))
		i += 8
	}
	e.key, e.value = "", ""
	if klen > 0 {
		e.key = unsafe.String((*byte)(unsafe.Add(p, i)), klen)
	}
	i += klen
	if vlen > 0 {
		e.value = unsafe.String((*byte)(unsafe.Add(p, i)), vlen)
	}
	e.size = i + vlen
}

// readRecord decodes the record at off in b.
func readRecord(b []byte, off int) (e entry) {
	e.decode(b, off)
	return e
}

// readAt (under the shard lock) decodes the record at l, whose chunk's
// bytes are b.
func readAt(b []byte, l loc) (e entry) {
	e.decode(b, l.off())
	e.l = l
	return e
}

// arena is the writers' side of a shard's chunks: which exist, in what
// order, and how many of their bytes are still current. Everything in it is
// under the shard lock; readers see only the chunk directories it
// publishes.
//
// Its fields are in three groups of a cache line each (TestShardLayout):
// those every write writes, on the shard lock's line; those every write
// reads and only a new or dropped chunk writes, so that both cores keep
// them in their caches; and compaction's, which it writes as it cleans.
type arena struct {
	used int       // bytes appended to the chunks held and sealed tails: live and garbage
	live int       // bytes of the records slots point to
	debt int       // bytes of cleaning owed by writes (see shard.compact)
	head headChunk // the chunk small records are appended to
	// cleaning is the chunk compaction is reading, or noChunk.
	cleaning uint32
	// smalls counts the chunks to merge (see countSmalls): while there are
	// any, every write owes cleaning, overfull or not.
	smalls uint32

	meta   []chunk                   // the chunks by number; a free number's b is nil
	out    *atomic.Pointer[chunkRef] // where readers load their directory from (shard.chunks)
	sp     *spares                   // the shard's spare memory, or nil
	chunks []uint32                  // the numbers of every chunk held, in no order

	free []uint32 // chunk numbers not in use
	held int      // the chunks' capacity
	// survivors is the chunk compaction appends the records it moves to:
	// never the head, so that records that outlived a chunk are kept apart
	// from fresh writes (see shard.compact).
	survivors headChunk
	// marks are the heads (head, survivors) as compaction last found them
	// when it picked a chunk to clean (see idleHead).
	marks [2]headMark
	clean int // compaction's cursor in cleaning
	// merging says cleaning was picked as a small chunk to merge, not for
	// its garbage: it is cleaned to its end whether or not the shard is
	// overfull, and its records go to the writes' head (see isSmall).
	merging bool
	strays  int // records compaction found neither marked dead nor current: 0 unless a record died without gone (tests check)
	// Compaction's totals, which benchmarks report: the bytes of records
	// it read, and of those it copied.
	cleanRead, cleanCopied int
}

// init readies an arena with no chunk that publishes to out.
func (a *arena) init(out *atomic.Pointer[chunkRef], sp *spares) {
	a.out, a.sp = out, sp
	a.head, a.survivors = headChunk{no: noChunk}, headChunk{no: noChunk}
	a.cleaning = noChunk
	a.marks = [2]headMark{{no: noChunk}, {no: noChunk}}
	out.Store(emptyChunkDir)
}

// bytes (under the shard lock) returns the bytes of the chunk l names,
// which must be held: under the lock a slot never names a dropped chunk.
func (a *arena) bytes(l loc) []byte {
	if no := l.no(); int(no) < len(a.meta) {
		if c := &a.meta[no]; c.gen == l.gen() && c.b != nil {
			return c.b
		}
	}
	panic("shardkv: a slot names a chunk its shard does not hold")
}

// chunkSize is the size of a new shared chunk: a sixteenth of what the
// shard holds, within [minChunk, maxChunk], so that the chunk being filled
// and the one being cleaned are a small part of the shard.
func (a *arena) chunkSize() int {
	n := minChunk
	for n < maxChunk && n < a.held/16 {
		n *= 2
	}
	return n
}

// reserve returns room for a record of n bytes: its loc, and the bytes of
// the chunk it goes in, into which the caller writes it at the loc's
// offset. A new chunk it needs is published before reserve returns, so
// before any loc names it.
func (a *arena) reserve(n int) (loc, []byte) { return a.reserveOn(&a.head, n) }

// reserveOn is reserve on the head h: a.head for writes, a.survivors for
// compaction's copies.
func (a *arena) reserveOn(h *headChunk, n int) (loc, []byte) {
	if no := h.no; no != noChunk && n <= largeRecord {
		c := &a.meta[no]
		if off := h.used; off+n <= len(c.b) {
			h.used = off + n
			a.used += n
			// Ask for the lines the next record will be written to, so
			// that its write does not wait for them: the chunk's fresh
			// memory is in no cache. Lines past the end are not asked for.
			if next := off + n + 64; next < len(c.b) {
				prefetch(unsafe.Pointer(&c.b[next]))
				if next += 64; next < len(c.b) {
					prefetch(unsafe.Pointer(&c.b[next]))
				}
			}
			return makeLoc(no, c.gen, off), c.b
		}
	}
	return a.reserveChunk(h, n)
}

// reserveChunk is reserveOn for a record that needs a new chunk: one of
// its own if it is large, else a new head h.
func (a *arena) reserveChunk(h *headChunk, n int) (loc, []byte) {
	if n > largeRecord { // a chunk of its own, never the head
		no := a.newChunk(make([]byte, n))
		c := &a.meta[no]
		c.used = n
		a.used += n
		return makeLoc(no, c.gen, 0), c.b
	}
	a.seal(h)
	size := a.chunkSize()
	for size < n { // n <= largeRecord < maxChunk
		size *= 2
	}
	b := a.sp.takeChunk(n, size)
	if b == nil {
		b = make([]byte, size)
	}
	if keepsSpareChunk(a) {
		a.sp.ask() // for the next one
	}
	*h = headChunk{no: a.newChunk(b)}
	return a.reserveOn(h, n) // the new head has room
}

// seal retires the head chunk h from appends, its counts written to its
// chunk entry. Its unfilled tail counts as garbage from then on (in used),
// so compaction pays for it like any other; a head with nothing live is
// dropped at once.
func (a *arena) seal(h *headChunk) {
	if no := h.no; no != noChunk {
		c := &a.meta[no]
		c.used, c.live = h.used, h.live
		a.used += len(c.b) - c.used
		*h = headChunk{no: noChunk}
		if c.live == 0 && no != a.cleaning {
			a.drop(no)
		}
		a.countSmalls()
	}
}

// liveOf (under the shard lock) returns where chunk no's live bytes are
// counted: in its headChunk while it is a head, else in its chunk entry.
func (a *arena) liveOf(no uint32) *int {
	switch no {
	case a.head.no:
		return &a.head.live
	case a.survivors.no:
		return &a.survivors.live
	}
	return &a.meta[no].live
}

// added (under the shard lock) counts a record of n bytes written at l.
// While there are small chunks to merge, the write owes n bytes of cleaning
// (see shard.compact).
func (a *arena) added(l loc, n int) {
	*a.liveOf(l.no()) += n
	a.live += n
	if a.smalls != 0 {
		a.debt += n
	}
}

// gone (under the shard lock) counts the record e as garbage: overwritten,
// removed or moved. A sealed chunk left with nothing live is dropped then
// and there, with no copying: under churn most chunks end that way.
func (a *arena) gone(e *entry) {
	no := e.l.no()
	a.meta[no].b[e.l.off()] = recDead // see recLive: readers never read this byte
	live := a.liveOf(no)
	*live -= e.size
	a.live -= e.size
	a.debt += compactRate * e.size
	if *live == 0 && !a.isHead(no) && no != a.cleaning {
		a.drop(no)
	}
}

// isHead reports whether chunk no is being appended to: the head or the
// survivors' head. A head's unfilled tail is not in used, nor garbage.
func (a *arena) isHead(no uint32) bool { return no == a.head.no || no == a.survivors.no }

// newChunk makes a chunk of b, which is zeroed and referred to by nothing
// else, gives it a number and a new generation, publishes a directory that
// holds it, and returns its number. It may grow a.meta: a *chunk taken
// before it is stale after it.
func (a *arena) newChunk(b []byte) uint32 {
	var no uint32
	if k := len(a.free); k > 0 {
		no = a.free[k-1]
		a.free = a.free[:k-1]
	} else {
		if len(a.meta) > maxChunkNo {
			panic("shardkv: a shard has more than 2^20 chunks")
		}
		no = uint32(len(a.meta))
		a.meta = append(a.meta, chunk{})
	}
	c := &a.meta[no]
	gen := c.gen%genMask + 1 // 1..genMask: never 0, so no loc is empty or a tomb
	*c = chunk{b: b, gen: gen, at: int32(len(a.chunks))}
	a.held += len(b)
	a.chunks = append(a.chunks, no)
	a.publish()
	a.countSmalls()
	return no
}

// publish publishes a readers' directory of the chunks held. Every change
// of a.meta's chunks goes through here, so readers always see the chunks
// writers use: a new chunk before any loc names it, a dropped one gone
// (and free to be collected) at once. It copies one entry per chunk
// number: a shard has a few dozen chunks at most (they grow to maxChunk
// with the shard), so this is cheap.
func (a *arena) publish() {
	refs := make([]chunkRef, len(a.meta)+1)
	refs[0].gen = uint32(len(refs))
	for i := range a.meta {
		if c := &a.meta[i]; c.b != nil {
			refs[i+1] = chunkRef{b: c.b, gen: c.gen}
		}
	}
	a.out.Store(&refs[0])
}

// drop removes chunk no, not a head, whose records are all garbage or
// copied. Its number is free from then on, under a new generation.
func (a *arena) drop(no uint32) {
	c := &a.meta[no]
	last := a.chunks[len(a.chunks)-1]
	a.chunks[c.at], a.meta[last].at = last, c.at
	a.chunks = a.chunks[:len(a.chunks)-1]
	if no == a.cleaning {
		a.cleaning, a.clean, a.merging = noChunk, 0, false
	}
	if a.isHead(no) { // seal retires a head before it may be dropped
		panic("shardkv: a head chunk dropped")
	}
	a.held -= len(c.b)
	a.used -= len(c.b) // its records and its sealed tail
	*c = chunk{gen: c.gen}
	a.free = append(a.free, no)
	a.publish()
	a.countSmalls()
}

// mostGarbage returns the chunk compaction should clean next: the one
// whose bytes are most garbage, as a share of its size, not a head (being
// filled; but see idleHead), or noChunk if none has any. The share, not
// the bytes: what a chunk costs to clean is its live bytes, copied, for
// its garbage, freed, and chunks differ in size (they grow with the
// shard), so a large chunk half garbage would otherwise be chosen over a
// small one nearly empty. The chunk so chosen has at least the average
// share of the chunks not heads, which the memory bound needs (see
// shard.compact; idleHead keeps a head's garbage from lasting). Chunks are
// few, so a scan is cheap, and it runs once per chunk cleaned.
func (a *arena) mostGarbage() uint32 {
	best := noChunk
	most, size := 0, 1 // the best share so far: most/size
	for _, no := range a.chunks {
		// All but the live bytes of a sealed chunk, its unfilled tail
		// included. g/n > most/size, in 64-bit integers: g and most are at
		// most maxChunk (a large record's own chunk, up to maxRecordLen
		// bytes, has no garbage while it is held), so neither product
		// overflows, on 32-bit platforms too.
		n := len(a.meta[no].b)
		if g := n - a.meta[no].live; !a.isHead(no) && g > 0 && int64(g)*int64(size) > int64(most)*int64(n) {
			best, most, size = no, g, n
		}
	}
	return best
}

// A small chunk is one sealed at a quarter of the size a new chunk would be
// now, or less: chunks grow with the shard (chunkSize), and those made while
// it was small stay, however large it grows, each one more object for the
// garbage collector to mark and sweep every cycle. Compaction merges them,
// garbage or not: it copies their records into the writes' head, four or
// more chunks into one, so that a fill to 10M keys holds 26 fewer chunks a
// shard (8,272 objects live where 9,962 were: docs/evidence/merge-small/).
// Each record is copied at most twice by it (16 KiB chunks merge at 64
// KiB, those at 256 KiB), so merging costs a write at most two copies of
// itself, once; a shard that stops growing makes no more small chunks.
func (a *arena) isSmall(no uint32, size int) bool {
	return 4*len(a.meta[no].b) <= size && !a.isHead(no) && no != a.cleaning
}

// countSmalls (under the shard lock) counts the small chunks into
// a.smalls, and returns the count. It runs whenever a chunk is added,
// sealed or dropped, or picked for cleaning: a scan of a few dozen chunks,
// once per chunk.
func (a *arena) countSmalls() uint32 {
	size, n := a.chunkSize(), uint32(0)
	for _, no := range a.chunks {
		if a.isSmall(no, size) {
			n++
		}
	}
	a.smalls = n
	return n
}

// smallest returns the smallest small chunk, or noChunk if there is none.
func (a *arena) smallest() uint32 {
	best, size := noChunk, a.chunkSize()
	for _, no := range a.chunks {
		if a.isSmall(no, size) && (best == noChunk || len(a.meta[no].b) < len(a.meta[best].b)) {
			best = no
		}
	}
	return best
}

// headMark is a head chunk as compaction saw it: its number, generation
// and appended bytes.
type headMark struct {
	no, gen uint32
	used    int
}

// idleHead (under the shard lock, as compaction picks the next chunk to
// clean) returns a head that nothing was appended to since the last pick
// and that holds garbage, sealed and made the chunk being cleaned; or
// noChunk. It then marks the heads for the next pick. A head is never
// picked by mostGarbage, but the writes' head stops filling while only
// deletes and expiry come, and the survivors' while compaction copies
// nothing: its records die there all the same, and its garbage, out of
// reach, would make compaction clean the other chunks deeper (copying
// more) to keep within the memory bound. A head that stayed as it was
// through a whole chunk's cleaning is not where records go now, so it is
// cleaned like a sealed chunk. Under writes the heads fill, and are sealed
// only when full. (Letting mostGarbage weigh a head by its appended
// bytes' garbage instead picks the writes' head young under hot keys,
// whose fresh records die fast, and seals it half empty, one new chunk
// after another.)
func (a *arena) idleHead() uint32 {
	idle := noChunk
	for i, h := range [2]*headChunk{&a.head, &a.survivors} {
		no := h.no
		if no == noChunk {
			a.marks[i] = headMark{no: noChunk}
			continue
		}
		gen := a.meta[no].gen
		if idle == noChunk && a.marks[i] == (headMark{no, gen, h.used}) && h.used > h.live {
			idle = no
			a.cleaning, a.clean = no, 0 // so that seal does not drop it
			a.seal(h)
			a.marks[i] = headMark{no: noChunk}
			continue
		}
		a.marks[i] = headMark{no, gen, h.used}
	}
	return idle
}

// reset drops every chunk.
func (a *arena) reset() {
	// The numbers' generations are kept, so a loc read before the reset
	// never resolves to a chunk made after it.
	meta, out, sp := a.meta, a.out, a.sp
	*a = arena{meta: meta}
	a.init(out, sp)
	for i := range meta {
		meta[i] = chunk{gen: meta[i].gen}
		a.free = append(a.free, uint32(len(meta)-1-i))
	}
}

// wantsCleaning (under the shard lock) reports whether writes should pay
// for cleaning: the shard is overfull, or merges a small chunk, or has one
// to merge.
func (a *arena) wantsCleaning() bool {
	return a.overfull() || a.merging || a.smalls != 0
}

// overfull reports whether the shard holds enough garbage that writes
// should pay for cleaning: more than 3/4 of the live bytes (so that with
// the cleaning rate of shard.compact, what is held stays within twice the
// live bytes), beyond a fixed allowance.
func (a *arena) overfull() bool {
	return a.used-a.live > a.live*3/4+garbageAllowance && len(a.chunks) > 1
}
