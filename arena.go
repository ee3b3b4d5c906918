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
//     to the head chunk, points their slots at the copies, then drops the
//     chunk from the chunk directory; a reader that still holds the chunk
//     (a Go pointer, loaded from the directory) keeps it alive, and its
//     bytes are still the old, unchanged records.
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

// chunk is one block of records. Its bytes up to used are published
// records, immutable; the rest is written only by appends, under the shard
// lock, before the locs of what is appended are published.
type chunk struct {
	b    []byte
	no   uint32 // its number in the chunk directory
	gen  uint32 // that number's generation when the chunk was made
	used int    // bytes appended; under the shard lock
	live int    // bytes of the records slots point to; under the shard lock
	at   int    // its index in arena.chunks; under the shard lock
}

// garbage is how many of c's bytes compaction would free: all but the live
// ones, the unfilled tail included once c is sealed (no longer the head).
func (c *chunk) garbage(head *chunk) int {
	if c == head {
		return c.used - c.live
	}
	return len(c.b) - c.live
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

// A record is a flags byte, the key's and the value's lengths as uvarints,
// the deadline (8 bytes, little-endian) if the flags say it has one, then
// the key's bytes and the value's.
const recHasDeadline = 1

// entry is a record as read from its chunk. key and value share the chunk's
// memory, which is never written again: they are good for as long as they
// are referenced, but hold the whole chunk alive, so nothing that outlives
// a call is handed to a caller without a copy.
type entry struct {
	key, value string
	when       int64  // the deadline in store-clock nanoseconds; noDeadline: none
	size       int    // the record's bytes in its chunk
	l          loc    // where it is
	c          *chunk // the chunk it is in
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
	n := 1 + uvarintLen(klen) + uvarintLen(vlen) + klen + vlen
	if when >= 0 {
		n += 8
	}
	return n
}

// putRecord writes the record of key, v and when at the start of b, which
// has room for exactly recordSize bytes.
func putRecord[V string | []byte](b []byte, key string, v V, when int64) {
	flags := byte(0)
	if when >= 0 {
		flags = recHasDeadline
	}
	b[0] = flags
	var i int
	if len(key) < 0x80 && len(v) < 0x80 { // one byte each, as decode's fast path reads them
		b[1], b[2], i = byte(len(key)), byte(len(v)), 3
	} else {
		i = 1 + binary.PutUvarint(b[1:], uint64(len(key)))
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
// off in b, leaving e.l and e.c as they are. It fills e in place: an entry
// is eight words, and lookups decode one per probe that meets its tag.
//
// It reads the record through an unsafe pointer, without bounds checks:
// off and the lengths come from a record this package wrote whole into b
// before publishing its loc (see the package comment on arena), so every
// byte read is inside b. A string of no bytes is left "", so that no
// pointer past the record (perhaps past the chunk) is ever made.
func (e *entry) decode(b []byte, off int) {
	p := unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), off)
	at := func(i int) byte { return *(*byte)(unsafe.Add(p, i)) }
	var klen, vlen, i int
	if k, v := at(1), at(2); k < 0x80 && v < 0x80 { // short key and value: one byte each
		klen, vlen, i = int(k), int(v), 3
	} else {
		q := b[off:]
		kl, n := binary.Uvarint(q[1:])
		i = 1 + n
		vl, n := binary.Uvarint(q[i:])
		i += n
		klen, vlen = int(kl), int(vl)
	}
	e.when = noDeadline
	if at(0)&recHasDeadline != 0 {
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

// readAt (under the shard lock) decodes the record at l, whose chunk is c.
func readAt(c *chunk, l loc) (e entry) {
	e.decode(c.b, l.off())
	e.l, e.c = l, c
	return e
}

// arena is the writers' side of a shard's chunks: which exist, in what
// order, and how many of their bytes are still current. Everything in it is
// under the shard lock; readers see only the chunkRefs it publishes.
type arena struct {
	// The fields every write touches come first (see shardFields).
	byNo []*chunk // the chunks by number (nil: free), as last published
	head *chunk   // where small records are appended; nil before the first
	used int      // bytes appended to the chunks held and sealed tails: live and garbage
	live int      // bytes of the records slots point to
	debt int      // bytes of cleaning owed by writes (see shard.compact)

	out      *atomic.Pointer[chunkRef] // where readers load their directory from (shard.chunks)
	sp       *spares                   // the shard's spare memory, or nil
	chunks   []*chunk                  // every chunk held, in no order
	free     []uint32                  // chunk numbers not in use
	gens     []uint32                  // each number's latest generation
	held     int                       // the chunks' capacity
	cleaning *chunk                    // the chunk compaction is reading, or nil
	clean    int                       // compaction's cursor in cleaning
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

// reserve returns room for a record of n bytes: the chunk and offset it
// goes at. A new chunk it needs is published before reserve returns, so
// before any loc names it.
func (a *arena) reserve(n int) (c *chunk, off int) {
	if n > largeRecord { // a chunk of its own, never the head
		c = a.newChunk(make([]byte, n))
		c.used = n
		a.used += n
		return c, 0
	}
	if a.head == nil || a.head.used+n > len(a.head.b) {
		a.seal()
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
		a.head = a.newChunk(b)
	}
	c = a.head
	off = c.used
	c.used += n
	a.used += n
	return c, off
}

// seal retires the head chunk from appends. Its unfilled tail counts as
// garbage from then on (in used), so compaction pays for it like any other;
// a head with nothing live is dropped at once.
func (a *arena) seal() {
	if c := a.head; c != nil {
		a.used += len(c.b) - c.used
		a.head = nil
		if c.live == 0 && c != a.cleaning {
			a.drop(c)
		}
	}
}

// added (under the shard lock) counts a record of n bytes written into c.
func (a *arena) added(c *chunk, n int) {
	c.live += n
	a.live += n
}

// gone (under the shard lock) counts the record e as garbage: overwritten,
// removed or moved. A sealed chunk left with nothing live is dropped then
// and there, with no copying: under churn most chunks end that way.
func (a *arena) gone(e *entry) {
	c := e.c
	c.live -= e.size
	a.live -= e.size
	a.debt += compactRate * e.size
	if c.live == 0 && c != a.head && c != a.cleaning {
		a.drop(c)
	}
}

// newChunk makes a chunk of b, which is zeroed and referred to by nothing
// else, gives it a number and a new generation, and publishes a directory
// that holds it.
func (a *arena) newChunk(b []byte) *chunk {
	var no uint32
	if k := len(a.free); k > 0 {
		no = a.free[k-1]
		a.free = a.free[:k-1]
	} else {
		if len(a.gens) > maxChunkNo {
			panic("shardkv: a shard has more than 2^20 chunks")
		}
		no = uint32(len(a.gens))
		a.gens = append(a.gens, 0)
	}
	gen := a.gens[no]%genMask + 1 // 1..genMask: never 0, so no loc is empty or a tomb
	a.gens[no] = gen
	c := &chunk{b: b, no: no, gen: gen}
	a.held += len(b)
	c.at = len(a.chunks)
	a.chunks = append(a.chunks, c)
	a.publish(no, c)
	return c
}

// publish records that number no names c (nil: free) and publishes a new
// readers' directory. Every change of the directory goes through here, so
// readers always see the one writers use: a new chunk before any loc names
// it, a dropped one gone (and free to be collected) at once. It copies one
// entry per chunk number: a shard has a few dozen chunks at most (they grow
// to maxChunk with the shard), so this is cheap.
func (a *arena) publish(no uint32, c *chunk) {
	if int(no) >= len(a.byNo) {
		a.byNo = append(a.byNo, make([]*chunk, int(no)+1-len(a.byNo))...)
	}
	a.byNo[no] = c
	refs := make([]chunkRef, len(a.byNo)+1)
	refs[0].gen = uint32(len(refs))
	for i, c := range a.byNo {
		if c != nil {
			refs[i+1] = chunkRef{b: c.b, gen: c.gen}
		}
	}
	a.out.Store(&refs[0])
}

// chunk (under the shard lock) returns the chunk l names, which must be
// held: under the lock a slot never names a dropped chunk.
func (a *arena) chunk(l loc) *chunk {
	if no := l.no(); int(no) < len(a.byNo) {
		if c := a.byNo[no]; c != nil && c.gen == l.gen() {
			return c
		}
	}
	panic("shardkv: a slot names a chunk its shard does not hold")
}

// drop removes c, whose records are all garbage or copied. Its number is
// free from then on, under a new generation.
func (a *arena) drop(c *chunk) {
	last := a.chunks[len(a.chunks)-1]
	a.chunks[c.at], last.at = last, c.at
	a.chunks[len(a.chunks)-1] = nil
	a.chunks = a.chunks[:len(a.chunks)-1]
	if c == a.cleaning {
		a.cleaning, a.clean = nil, 0
	}
	a.held -= len(c.b)
	if c == a.head {
		a.used -= c.used
		a.head = nil
	} else {
		a.used -= len(c.b) // its records and its sealed tail
	}
	a.free = append(a.free, c.no)
	a.publish(c.no, nil)
}

// mostGarbage returns the chunk compaction should clean next: the one with
// the most garbage, not the head (being filled), or nil if none has any.
// Chunks are few (they grow with the shard), so a scan is cheap, and it
// runs once per chunk cleaned.
func (a *arena) mostGarbage() *chunk {
	var best *chunk
	most := 0
	for _, c := range a.chunks {
		if g := c.garbage(a.head); c != a.head && g > most {
			best, most = c, g
		}
	}
	return best
}

// reset drops every chunk.
func (a *arena) reset() {
	*a = arena{out: a.out, gens: a.gens, sp: a.sp}
	a.out.Store(emptyChunkDir)
	// The numbers' generations are kept, so a loc read before the reset
	// never resolves to a chunk made after it.
	for i := range a.gens {
		a.free = append(a.free, uint32(len(a.gens)-1-i))
	}
}

// overfull reports whether the shard holds enough garbage that writes
// should pay for cleaning: more than 3/4 of the live bytes (so that with
// the cleaning rate of shard.compact, what is held stays within twice the
// live bytes), beyond a fixed allowance.
func (a *arena) overfull() bool {
	return a.used-a.live > a.live*3/4+garbageAllowance && len(a.chunks) > 1
}
