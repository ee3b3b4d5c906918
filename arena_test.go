package shardkv

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// checkArenaBound asserts the compaction bound: the bytes a shard's chunks
// hold stay within twice its live bytes, plus a fixed allowance (the
// garbage allowed before cleaning starts, one cleaning step, and the
// unfilled rest of the two head chunks).
func checkArenaBound(t *testing.T, what string, a *arena) {
	t.Helper()
	if a.strays != 0 { // a record died without arena.gone marking it
		t.Fatalf("%s: compaction read %d records neither marked dead nor current", what, a.strays)
	}
	if a.used > 2*a.live+garbageAllowance+compactStep+largeRecord {
		t.Fatalf("%s: %d bytes used for %d live (held %d, %d chunks)\n%s", what, a.used, a.live, a.held, len(a.chunks), arenaState(a))
	}
	if headRoom := headsRoom(a); a.held-a.used != headRoom { // used counts sealed chunks' tails
		t.Fatalf("%s: %d bytes held, %d used, but the heads have %d free", what, a.held, a.used, headRoom)
	}
	if kept := a.smalls; a.countSmalls() != kept { // the count kept, against one afresh
		t.Fatalf("%s: %d small chunks counted, %d held\n%s", what, kept, a.smalls, arenaState(a))
	}
}

// headsRoom is what a's two heads have not yet filled: all that is held
// and not in used.
func headsRoom(a *arena) int {
	room := 0
	for _, h := range []headChunk{a.head, a.survivors} {
		if h.no != noChunk {
			room += len(a.meta[h.no].b) - h.used
		}
	}
	return room
}

// arenaState describes a's accounts and chunks, for a failure's message.
func arenaState(a *arena) string {
	s := fmt.Sprintf("head %d, survivors %d, cleaning %d at %d, debt %d, used %d, live %d, overfull %v\n",
		int32(a.head.no), int32(a.survivors.no), int32(a.cleaning), a.clean, a.debt, a.used, a.live, a.overfull())
	for _, no := range a.chunks {
		c := &a.meta[no]
		used, live := c.used, c.live
		for _, h := range []headChunk{a.head, a.survivors} {
			if h.no == no {
				used, live = h.used, h.live
			}
		}
		s += fmt.Sprintf("  chunk %d: %d bytes, %d appended, %d live\n", no, len(c.b), used, live)
	}
	return s
}

// TestCompactionBoundsMemory churns one shard in the ways a store is
// churned (uniform overwrites with values of changing size, a few hot keys
// over a static majority, deletes of most keys, everything deleted) and
// checks the bound after every few hundred operations, not only at the end.
func TestCompactionBoundsMemory(t *testing.T) {
	const keys = 20000
	phases := []struct {
		name string
		ops  int
		op   func(h *tableHarness, rng *rand.Rand)
	}{
		{"uniform overwrites", 200000, func(h *tableHarness, rng *rand.Rand) {
			h.put(fmt.Sprint("key", rng.IntN(keys)))
		}},
		{"hot keys over static ones", 200000, func(h *tableHarness, rng *rand.Rand) {
			h.put(fmt.Sprint("key", rng.IntN(50)))
		}},
		{"deletes", keys * 9 / 10, func(h *tableHarness, rng *rand.Rand) {
			h.del(fmt.Sprint("key", rng.IntN(keys)))
		}},
		{"deletes of the rest", keys, func(h *tableHarness, rng *rand.Rand) {
			for k := range h.model {
				h.del(k)
				return
			}
		}},
	}
	h := newTableHarness(t, xxhashString)
	h.vmax = 200
	for i := range keys {
		h.put(fmt.Sprint("key", i))
	}
	checkArenaBound(t, "fill", &h.sh.a)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, p := range phases {
		for i := range p.ops {
			p.op(h, rng)
			if i%500 == 0 {
				checkArenaBound(t, p.name, &h.sh.a)
			}
		}
		checkArenaBound(t, p.name, &h.sh.a)
		h.check(nil)
	}
	if a := &h.sh.a; a.live != 0 || a.held > garbageAllowance+compactStep+maxChunk {
		t.Fatalf("empty shard: live %d, %d bytes held in %d chunks", a.live, a.held, len(a.chunks))
	}
}

// TestCompactionMergesSmallChunks: the chunks a shard made while it was
// small are merged as it grows, so a large shard holds none a quarter the
// size of a new one or smaller; a fill leaves the last ones for the writes
// after it. Every key stays readable, and the bound holds, throughout.
func TestCompactionMergesSmallChunks(t *testing.T) {
	const keys = 40000 // about 4 MiB of records: chunks grow from 16 to 256 KiB
	h := newTableHarness(t, xxhashString)
	h.vmax = 100
	most := uint32(0)
	for i := range keys {
		h.put(fmt.Sprint("key", i))
		if i%500 == 0 {
			checkArenaBound(t, "fill", &h.sh.a)
			most = max(most, h.sh.a.smalls)
		}
	}
	a := &h.sh.a
	if a.chunkSize() != maxChunk {
		t.Fatalf("the fill reached chunks of %d bytes, want %d", a.chunkSize(), maxChunk)
	}
	if most == 0 {
		t.Fatal("the fill never had a small chunk to merge")
	}
	// The writes of the fill pay for the merging: what is left is at most
	// the chunks the last doubling of chunkSize made small (8 of 64 KiB).
	if n := a.countSmalls(); n > 10 {
		t.Fatalf("%d small chunks left by the fill\n%s", n, arenaState(a))
	}
	h.check(nil)
	rng := rand.New(rand.NewPCG(5, 6))
	for range keys / 4 {
		h.put(fmt.Sprint("key", rng.IntN(keys)))
	}
	checkArenaBound(t, "overwrites", a)
	h.check(nil)
	if n := a.countSmalls(); n != 0 || a.merging {
		t.Fatalf("%d small chunks left (merging: %v)\n%s", n, a.merging, arenaState(a))
	}
	for _, no := range a.chunks {
		if size := len(a.meta[no].b); size < maxChunk/2 {
			t.Fatalf("chunk %d of %d bytes in a shard of %d-byte chunks\n%s", no, size, maxChunk, arenaState(a))
		}
	}
}

// TestMostGarbage: compaction cleans the chunk whose bytes are most
// garbage as a share of its size, never the head, and none when no chunk
// has garbage.
func TestMostGarbage(t *testing.T) {
	type c struct{ size, live, used int } // used 0: the whole chunk
	for _, tc := range []struct {
		name            string
		chunks          []c
		head, survivors uint32
		want            uint32
	}{
		{"small and nearly empty over large and half garbage", []c{{maxChunk, maxChunk / 2, 0}, {minChunk, 100, 0}}, noChunk, noChunk, 1},
		{"the same share: the first", []c{{minChunk, minChunk / 4, 0}, {maxChunk, maxChunk / 4, 0}}, noChunk, noChunk, 0},
		{"largest share of three", []c{{minChunk, minChunk / 2, 0}, {maxChunk, maxChunk / 8, 0}, {4 * minChunk, minChunk, 0}}, noChunk, noChunk, 1},
		{"never the head", []c{{minChunk, 0, minChunk / 2}, {maxChunk, maxChunk - 1, 0}}, 0, noChunk, 1},
		{"never the survivors' head", []c{{minChunk, 0, minChunk / 2}, {maxChunk, maxChunk - 1, 0}}, noChunk, 0, 1},
		{"no garbage", []c{{minChunk, minChunk, 0}, {maxChunk, maxChunk, 0}}, noChunk, noChunk, noChunk},
		{"a large record's own chunk, live", []c{{maxChunk * 8, maxChunk * 8, 0}, {minChunk, minChunk - 1, 0}}, noChunk, noChunk, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &arena{head: headChunk{no: tc.head}, survivors: headChunk{no: tc.survivors}}
			for i, ch := range tc.chunks {
				if ch.used == 0 {
					ch.used = ch.size
				}
				a.meta = append(a.meta, chunk{b: make([]byte, ch.size), used: ch.used, live: ch.live, gen: 1, at: int32(i)})
				a.chunks = append(a.chunks, uint32(i))
			}
			if got := a.mostGarbage(); got != tc.want {
				t.Fatalf("mostGarbage = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestCompactionUnderExpiry: a store whose keys all expire and are
// reclaimed by the reaper ends holding little, and large values (their own
// chunks) are dropped when overwritten, never copied.
func TestCompactionUnderExpiry(t *testing.T) {
	s := New(WithShards(1), WithMaxKeys(1<<20))
	defer s.Close()
	v := []byte(strings.Repeat("v", 100))
	big := make([]byte, largeRecord+1)
	for round := range 5 {
		for i := range 5000 {
			if err := s.SetWithTTL(fmt.Sprint("k", i), v, time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Set("big", big); err != nil { // overwritten each round
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for s.Len() > 1 && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if s.Len() != 1 {
			t.Fatalf("round %d: %d keys left after their TTLs", round, s.Len())
		}
		sh := &s.s.shards[0]
		sh.mu.Lock()
		a := sh.a // a copy, so that a failure does not leave the lock held
		large := 0
		for _, no := range a.chunks {
			if len(a.meta[no].b) > largeRecord {
				large++
			}
		}
		sh.mu.Unlock()
		checkArenaBound(t, fmt.Sprint("round ", round), &a)
		// The big value's chunk of its own: the one of the last Set, the
		// ones it overwrote dropped as it replaced them.
		if large != 1 {
			t.Fatalf("round %d: %d chunks of their own for one large value", round, large)
		}
	}
}

// TestIndexIsPointerFree: the types the index, the arena and the wheel keep
// one of per entry (slots, records' bytes, timers) hold no Go pointers, so
// the garbage collector marks one object per table, chunk or timer page,
// never one per entry. A field with a pointer added to any of them fails
// here before it brings the GC cost back.
func TestIndexIsPointerFree(t *testing.T) {
	for _, v := range []any{slot{}, table{}, timer{}, [timerPage]timer{}, wheelLevel{}, loc(0), tref(0)} {
		if typ := reflect.TypeOf(v); hasPointers(typ) {
			t.Errorf("%v holds pointers", typ)
		}
	}
	// A table is allocated as slots (its header in the first ones), and a
	// chunk's bytes are one array.
	// Its header's slots are tombs to every probe.
	m := newTable(minTableSlots, 0)
	if len(m.slots()) != minTableSlots || unsafe.Sizeof(table{}) != uintptr(headerSlots)*unsafe.Sizeof(slot{}) {
		t.Errorf("a table of %d slots, header of %d bytes", len(m.slots()), unsafe.Sizeof(table{}))
	}
	for i := range headerSlots {
		if l := loc(m.slots()[i].loc.Load()); l != locTomb {
			t.Errorf("header slot %d: loc %d, not a tomb", i, l)
		}
	}
	if hasPointers(reflect.TypeOf(chunk{}.b).Elem()) {
		t.Error("chunk bytes hold pointers")
	}
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Chan, reflect.Func,
		reflect.Interface, reflect.Slice, reflect.String:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// TestShardLayout pins the cache lines of shardFields that arena's field
// groups rely on: the readers' words alone on the first; the lock and the
// fields every write writes on the second; those every write only reads
// (meta first) starting the third, and compaction's after them.
func TestShardLayout(t *testing.T) {
	if unsafe.Sizeof(0) != 8 {
		t.Skip("the offsets are those of 64-bit platforms")
	}
	var sh shardFields
	a := unsafe.Offsetof(sh.a)
	for _, f := range []struct {
		name      string
		off, want uintptr
	}{
		{"mu", unsafe.Offsetof(sh.mu), 64},
		{"a.used", a + unsafe.Offsetof(sh.a.used), 72},
		{"a.meta", a + unsafe.Offsetof(sh.a.meta), 128},
		{"a.free", a + unsafe.Offsetof(sh.a.free), 192},
	} {
		if f.off != f.want {
			t.Errorf("%s at byte %d of a shard, want %d", f.name, f.off, f.want)
		}
	}
	if end := a + unsafe.Offsetof(sh.a.cleaning) + unsafe.Sizeof(sh.a.cleaning); end > 128 {
		t.Errorf("the written fields end at byte %d, past the lock's line", end)
	}
}

// TestHandedOutBytesAreCopies: nothing ListKeys, Keys, All or an event
// hands out points into a chunk, which it would keep alive (the issue's
// rule: keys and event values are copied). ListKeys' copies share a few
// buffers: listing 3000 keys takes far fewer allocations than keys.
func TestHandedOutBytesAreCopies(t *testing.T) {
	s := New()
	defer s.Close()
	const n = 3000
	for i := range n {
		if err := s.Set(fmt.Sprintf("key:%05d", i), []byte(fmt.Sprintf("value:%05d", i))); err != nil {
			t.Fatal(err)
		}
	}
	sub := s.Subscribe()
	defer sub.Close()
	// A delete's event takes its key from the record, in a chunk (a set's
	// takes the caller's).
	if _, err := s.Delete("key:00000"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("key:00000", []byte("value:00000")); err != nil {
		t.Fatal(err)
	}
	inChunk := func(p unsafe.Pointer) bool {
		for i := range s.s.shards {
			a := &s.s.shards[i].a
			for _, no := range a.chunks {
				b := a.meta[no].b
				if start := uintptr(unsafe.Pointer(unsafe.SliceData(b))); uintptr(p) >= start && uintptr(p) < start+uintptr(len(b)) {
					return true
				}
			}
		}
		return false
	}
	keys, err := s.ListKeys("key:")
	if err != nil || len(keys) != n {
		t.Fatalf("ListKeys: %d keys, %v", len(keys), err)
	}
	for _, k := range keys {
		if inChunk(unsafe.Pointer(unsafe.StringData(k))) {
			t.Fatalf("ListKeys' %q points into a chunk", k)
		}
	}
	for k := range s.Keys("key:0") {
		if inChunk(unsafe.Pointer(unsafe.StringData(k))) {
			t.Fatalf("Keys' %q points into a chunk", k)
		}
	}
	for k, v := range s.All("key:0") {
		if inChunk(unsafe.Pointer(unsafe.StringData(k))) || inChunk(unsafe.Pointer(unsafe.SliceData(v))) {
			t.Fatalf("All's %q or its value points into a chunk", k)
		}
	}
	for range 2 { // the delete's event, then the set's
		ev, err := sub.Recv(t.Context())
		if err != nil || inChunk(unsafe.Pointer(unsafe.StringData(ev.Key))) || inChunk(unsafe.Pointer(unsafe.SliceData(ev.Value))) {
			t.Fatalf("event %v of %q (%v) points into a chunk", ev.Kind, ev.Key, err)
		}
	}
	allocs := testing.AllocsPerRun(10, func() { s.ListKeys("key:") })
	if allocs > n/20 {
		t.Errorf("ListKeys of %d keys: %.0f allocations, want at most %d", n, allocs, n/20)
	}
}
