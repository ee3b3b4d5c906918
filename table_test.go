package shardkv

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

// tableHarness drives one shard's index and arena the way the store does
// (under the shard lock), with a map as the model. Every put writes a value
// no earlier put wrote (a counter), so a replace that kept the old record,
// or found another key's, is caught by comparing values with the model.
// Values vary in length (up to vmax bytes), so records straddle chunks and
// compaction moves them.
type tableHarness struct {
	t     *testing.T
	sh    shard
	model map[string]modelEntry
	hash  func(string) uint64
	puts  int // values written so far
	vmax  int
}

// modelEntry is what the model holds for a key: its hash and the value of
// the last put.
type modelEntry struct {
	hash  uint64
	value string
}

func newTableHarness(t *testing.T, hash func(string) uint64) *tableHarness {
	h := &tableHarness{t: t, model: map[string]modelEntry{}, hash: hash, vmax: 64}
	h.sh.init(0, hash, nil, nil, testTableSlots)
	return h
}

func (h *tableHarness) put(key string) {
	h.sh.mu.Lock()
	defer h.sh.mu.Unlock()
	hv := h.hash(key)
	h.puts++
	v := fmt.Sprint("v", h.puts, ":", key) // distinct from every earlier value
	v += strings.Repeat("x", h.puts%(h.vmax+1))
	var old entry
	s := h.sh.find(key, hv, &old)
	storeRecord(&h.sh, s, &old, key, hv, v, noDeadline)
	h.sh.compact()
	h.model[key] = modelEntry{hv, v}
}

func (h *tableHarness) del(key string) {
	h.sh.mu.Lock()
	defer h.sh.mu.Unlock()
	var e entry
	if s := h.sh.find(key, h.hash(key), &e); s != nil {
		h.sh.remove(s, &e)
		h.sh.compact()
	}
	delete(h.model, key)
}

// check compares the shard with the model: every key found, by the
// lock-free get and by the writers' find, with the record of its last put
// (its value); absent keys missing; the counts right; the quarter of empty
// slots that ends every probe kept in every table; and the arena's live
// bytes those of the model's records.
func (h *tableHarness) check(absent []string) {
	h.t.Helper()
	liveBytes := 0
	for k, m := range h.model {
		v, when, ok := h.sh.get(k, m.hash)
		if !ok {
			h.t.Fatalf("%q: missing", k)
		}
		if v != m.value || when != noDeadline {
			h.t.Fatalf("%q: found value %q (deadline %d), want the last put's %q", k, v, when, m.value)
		}
		var fe entry
		s := h.sh.find(k, m.hash, &fe)
		if s == nil || h.sh.a.meta[fe.l.no()].b == nil || h.sh.a.meta[fe.l.no()].gen != fe.l.gen() {
			h.t.Fatalf("%q: find gives %v %+v", k, s, fe)
		}
		if fe.key != k || fe.value != v || fe.when != when || loc(s.loc.Load()) != fe.l {
			h.t.Fatalf("%q: find gives %+v, get %q (deadline %d)", k, fe, v, when)
		}
		liveBytes += fe.size
	}
	for _, k := range absent {
		if _, ok := h.model[k]; ok {
			continue
		}
		if _, _, ok := h.sh.get(k, h.hash(k)); ok {
			h.t.Fatalf("%q found after its delete", k)
		}
	}
	live := 0
	h.sh.tab.Load().each(func(t *table) {
		tl, used := 0, 0
		for i := range t.slots() {
			switch loc(t.slots()[i].loc.Load()) {
			case locEmpty:
			case locTomb:
				used++
			default:
				tl++
				used++
			}
		}
		for i := range headerSlots {
			if l := loc(t.slots()[i].loc.Load()); l != locTomb {
				h.t.Fatalf("table header slot %d: loc %d, not a tomb", i, l)
			}
		}
		if tl != int(t.live) || used != int(t.used) {
			h.t.Fatalf("table: live %d used %d, it says %d %d", tl, used, t.live, t.used)
		}
		if used*4 > len(t.slots())*3 {
			h.t.Fatalf("%d of %d slots used: fewer than a quarter empty", used, len(t.slots()))
		}
		live += tl
	})
	if live != len(h.model) {
		h.t.Fatalf("%d live slots, model has %d keys", live, len(h.model))
	}
	h.checkSplits()
	a := &h.sh.a
	if a.live != liveBytes || a.used < a.live || a.held < a.used {
		h.t.Fatalf("arena: live %d used %d held %d, the model's records take %d", a.live, a.used, a.held, liveBytes)
	}
	if room := headsRoom(a); a.held-a.used != room || a.strays != 0 || (a.head.no != noChunk && a.head.no == a.survivors.no) {
		h.t.Fatalf("arena: held %d, used %d, heads %d and %d with %d free, %d strays\n%s", a.held, a.used, int32(a.head.no), int32(a.survivors.no), room, a.strays, arenaState(a))
	}
}

// checkSplits checks every pending split against its table: the halves
// hold exactly the table's copied entries (each with its meta, in the half
// its tag picks) and nothing else, their counts are right, and the table
// names its split.
func (h *tableHarness) checkSplits() {
	h.t.Helper()
	d := h.sh.tab.Load()
	for k, p := range d.pend.list {
		if int(p.old.pend) != k+1 {
			h.t.Fatalf("split %d: its table says %d", k, p.old.pend)
		}
		want := map[loc]uint64{}
		for i := range p.next {
			s := &p.old.slots()[i]
			if l := loc(s.loc.Load()); l != locEmpty && l != locTomb {
				want[l] = s.meta.Load()
			}
		}
		for _, half := range []*table{p.lo, p.hi} {
			live, used := 0, 0
			for i := range half.slots() {
				s := &half.slots()[i]
				l := loc(s.loc.Load())
				if l != locEmpty {
					used++
				}
				if l == locEmpty || l == locTomb {
					continue
				}
				live++
				m, ok := want[l]
				if !ok || m != s.meta.Load() {
					h.t.Fatalf("split %d: a half holds loc %x meta %x; the table's copied slot has meta %x (present %v)", k, l, s.meta.Load(), m, ok)
				}
				if p.half(uint32(m>>32)) != half {
					h.t.Fatalf("split %d: loc %x in the wrong half", k, l)
				}
				delete(want, l)
			}
			if live != int(half.live) || used != int(half.used) {
				h.t.Fatalf("split %d: a half holds %d live, %d used; it says %d, %d", k, live, used, half.live, half.used)
			}
			// Installed, a half is probed by readers: a quarter of its slots
			// must stay empty, or a probe might not end.
			if 4*used > 3*len(half.slots()) {
				h.t.Fatalf("split %d: a half has %d of %d slots used, past 3/4", k, used, len(half.slots()))
			}
		}
		if len(want) != 0 {
			h.t.Fatalf("split %d: %d copied entries missing from the halves", k, len(want))
		}
	}
	splitting := 0
	d.each(func(t *table) {
		if t.pend != 0 {
			splitting++
		}
	})
	if splitting != len(d.pend.list) {
		h.t.Fatalf("%d tables say they are splitting, %d splits pending", splitting, len(d.pend.list))
	}
}

// testHashes are the hash functions the table tests run with. The index
// uses a hash's top 32 bits (the tag: its low 10 bits pick the home slot,
// the bits above them the table), so the skewed ones skew those.
var testHashes = []struct {
	name string
	fn   func(string) uint64
}{
	{"xxhash", xxhashString},
	// Four home slots for every key: long probe chains, tombs in the
	// middle of them, and the backward clean-up of remove.
	{"clustered", func(k string) uint64 { return xxhashString(k) &^ (0x3fc << 32) }},
	// Every key the same hash: probes must compare the keys, and a table
	// that cannot split must grow.
	{"one-hash", func(string) uint64 { return 42 << 32 }},
}

func TestTableAgainstModel(t *testing.T) {
	for _, hc := range testHashes {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/seed=%d", hc.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				h := newTableHarness(t, hc.fn)
				nkeys, steps := 3000, 20000 // enough for splits (768 keys fill a table)
				if hc.name == "one-hash" {
					// Every probe compares every key: few keys and steps, but
					// enough (2/3 of the keys present) to fill a table, which
					// no split can part.
					nkeys, steps = 1200, 8000
				}
				keys := make([]string, nkeys)
				for i := range keys {
					keys[i] = fmt.Sprint("key", i)
				}
				for step := range steps {
					k := keys[rng.IntN(len(keys))]
					if rng.IntN(3) == 0 {
						h.del(k)
					} else {
						h.put(k)
					}
					if step%1000 == 0 {
						h.check(keys)
					}
				}
				h.check(keys)
				if hc.name == "one-hash" {
					grown := false
					h.sh.tab.Load().each(func(tb *table) { grown = grown || len(tb.slots()) > testTableSlots })
					if !grown {
						t.Fatal("no table grew past the split size: the keys a split cannot part were parted")
					}
				}
				for _, k := range keys {
					h.del(k)
				}
				h.check(keys)
			})
		}
	}
}

// TestTableSplitsBoundTheWork fills one shard with 100k keys and checks the
// shape extendible hashing promises: no table past its split size (so no
// insert copied more), every table at least an eighth full, and a directory
// no deeper than the keys call for.
func TestTableSplitsBoundTheWork(t *testing.T) {
	h := newTableHarness(t, xxhashString)
	h.vmax = 0
	const n = 100_000
	for i := range n {
		h.put(fmt.Sprint("key", i))
	}
	d := h.sh.tab.Load()
	tables := 0
	d.each(func(tb *table) {
		tables++
		if len(tb.slots()) > testTableSlots {
			t.Fatalf("a table of %d slots", len(tb.slots()))
		}
		if int(tb.live)*8 < len(tb.slots()) {
			t.Fatalf("a table of %d slots holds only %d keys", len(tb.slots()), tb.live)
		}
	})
	if min := n / (testTableSlots * 3 / 4); tables < min || d.depth > 12 {
		t.Fatalf("%d tables at depth %d for %d keys (at least %d tables, depth at most 12)", tables, d.depth, n, min)
	}
	h.check(nil)
}

// TestRecordEdges: empty keys and values, lengths at the uvarint
// boundaries, and deadlines come back as they went in, in chunks of every
// kind (a record past largeRecord gets its own).
func TestRecordEdges(t *testing.T) {
	long := make([]byte, 1<<20)
	for i := range long {
		long[i] = byte(i)
	}
	tests := []struct {
		key   string
		value []byte
		when  int64
	}{
		{"", nil, noDeadline},
		{"k", nil, 0},
		{"", []byte("v"), 5},
		{strings.Repeat("k", 127), long[:128], 1<<63 - 1},
		{strings.Repeat("k", 128), long[:16383], noDeadline},
		{"key", long[:16384], 1 << 40},
		{"big", long, 1 << 40},
	}
	var sh shard
	sh.init(0, xxhashString, nil, nil, testTableSlots)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, tc := range tests {
		if n := recordSize(len(tc.key), len(tc.value), tc.when); n <= 0 {
			t.Fatalf("record size %d", n)
		}
		l := appendRecord(&sh, tc.key, tc.value, tc.when)
		size := recordSize(len(tc.key), len(tc.value), tc.when)
		e := readRecord(chunkAt(sh.chunks.Load(), l), l.off()) // as a reader resolves it
		if e.key != tc.key || e.value != string(tc.value) || e.when != tc.when || e.size != size {
			t.Fatalf("record of %q: key %q, %d value bytes, when %d, size %d (want %d)", tc.key, e.key, len(e.value), e.when, e.size, size)
		}
	}
}

// TestProbeRestartsWhenItsChunkIsDropped: a reader that loaded a table
// before it was replaced, and reaches a record whose chunk compaction has
// since dropped, is told so (dropped), and get, starting again from the
// index, finds the key's current record. The concurrent tests reach this
// path only by chance; this one reaches it every run.
func TestProbeRestartsWhenItsChunkIsDropped(t *testing.T) {
	h := newTableHarness(t, xxhashString)
	h.put("k")
	hv := h.hash("k")
	tag := tagOf(hv)
	first, mask := h.sh.tab.Load().slots(tag) // the table as a reader loaded it
	var old entry
	s := h.sh.find("k", hv, &old)
	if s == nil {
		t.Fatal("k not found")
	}
	oldLoc := old.l
	// Grow the shard until k's table is replaced, then overwrite every key
	// until the chunk of k's first record is dropped.
	for i := 0; ; i++ {
		if f, _ := h.sh.tab.Load().slots(tag); f != first {
			break
		}
		if i == 100000 {
			t.Fatal("k's table was never replaced")
		}
		h.put(fmt.Sprint("key", i))
	}
	for round := 0; chunkAt(h.sh.chunks.Load(), oldLoc) != nil; round++ {
		if round == 10000 {
			t.Fatal("the chunk of k's first record was never dropped")
		}
		for k := range h.model {
			h.put(k)
		}
	}
	if got := loc(slotAt(first, indexOf(first, mask, oldLoc)).loc.Load()); got != oldLoc {
		t.Fatalf("the replaced table's slot changed: %v, want %v", got, oldLoc)
	}
	if _, _, found, dropped := probe(first, mask, "k", tag, &h.sh.chunks); found || !dropped {
		t.Fatalf("probe of the replaced table: found %v, dropped %v; want dropped", found, dropped)
	}
	v, _, ok := h.sh.get("k", hv)
	if !ok || v != h.model["k"].value {
		t.Fatalf("get after the drop: %q, %v; want %q", v, ok, h.model["k"].value)
	}
}

// indexOf returns the index of the slot holding l in the table of first
// and mask.
func indexOf(first *slot, mask uint32, l loc) uint32 {
	for i := uint32(0); i <= mask; i++ {
		if loc(slotAt(first, i).loc.Load()) == l {
			return i
		}
	}
	panic("no slot holds the loc")
}

// TestTableReadersNeverMissAStableKey runs lock-free gets of keys that are
// always present while a writer churns other keys around them: inserts into
// tombs, removes that turn tombs back to empty, overwrites, rebuilds,
// splits (new tables published under the readers) and compaction (records
// moved, chunks dropped). A reader may see an old value of a stable key,
// never a miss and never another key's record. Run it with -race: the race
// detector checks the publication order.
func TestTableReadersNeverMissAStableKey(t *testing.T) {
	for _, hc := range testHashes[:2] {
		t.Run(hc.name, func(t *testing.T) {
			h := newTableHarness(t, hc.fn)
			// Churn keys first, so that the stable keys sit behind them in
			// the shared chains, and the churn's tombs (and tombs turned
			// back to empty) lie between the stable keys and their homes.
			for i := range 1500 {
				h.put(fmt.Sprint("churn", i))
			}
			stable := make([]string, 16)
			for i := range stable {
				stable[i] = fmt.Sprint("stable", i)
				h.put(stable[i])
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			for g := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; !stop.Load(); i++ {
						k := stable[(i+g)%len(stable)]
						v, _, ok := h.sh.get(k, hc.fn(k))
						if !ok || !isValueOf(v, k) {
							t.Errorf("stable key %q: got %v %q", k, ok, v)
							return
						}
					}
				}()
			}
			rng := rand.New(rand.NewPCG(1, 2))
			steps := 30000
			if testing.Short() {
				steps = 5000
			}
			for range steps {
				k := fmt.Sprint("churn", rng.IntN(3000))
				if rng.IntN(2) == 0 {
					h.del(k)
				} else {
					h.put(k)
				}
				if rng.IntN(50) == 0 { // and rewrite a stable key
					h.put(stable[rng.IntN(len(stable))])
				}
			}
			stop.Store(true)
			wg.Wait()
			h.check(nil)
			if d := h.sh.tab.Load(); d.depth == 0 {
				t.Fatal("the churn never split a table under the readers")
			}
		})
	}
}

func xxhashString(k string) uint64 { return xxhash.Sum64String(k) }

// testTableSlots is the split size of the tables the table tests build: a
// quarter of maxTableSlots, so that the few thousand keys a test (or a fuzz
// input) writes split tables many times.
const testTableSlots = maxTableSlots / 4

// FuzzTable drives one shard's index and arena with the operations the
// input spells, over a small key space and a hash whose tag has at most 3
// varying home bits and 4 varying table bits, so that probe runs are long
// and shared, tombs pile up, tables split and compaction runs; after every
// operation the shard must agree with the model (see tableHarness.check).
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0x81, 0x82, 4, 5, 0x83, 6})
	f.Add([]byte{0x0f, 0x1f, 0x2f, 0x3f, 0x8f, 0x9f, 0xaf, 0xbf})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 4096 {
			ops = ops[:4096]
		}
		var bits byte
		if len(ops) > 0 {
			bits, ops = ops[0]&3, ops[1:]
		}
		// 1 to 8 home slots; table bits from the top, so splits happen.
		mask := (uint64(1)<<bits-1)<<32 | 0xf<<60
		h := newTableHarness(t, func(k string) uint64 { return xxhashString(k) & mask })
		h.vmax = 300
		keys := make([]string, 1024)
		for i := range keys {
			keys[i] = fmt.Sprint("k", i)
		}
		for i, op := range ops {
			// Each byte names a key, with the next byte's help: 10 bits.
			k := keys[(int(op)<<2|int(i%4))&1023]
			if op&0x80 != 0 && op&0x40 != 0 {
				h.del(k)
			} else {
				h.put(k)
			}
			if i%64 == 0 {
				h.check(keys)
			}
		}
		h.check(keys)
	})
}

// TestScanAfterClearListsNoKeyTwice: a shard cleared between two of a
// scan's lock holds has one table again, covering the hash range the scan
// has visited too; the keys written since, there, are not collected again
// (200 of the keys the scan collected before the clear are written again).
func TestScanAfterClearListsNoKeyTwice(t *testing.T) {
	h := newTableHarness(t, xxhashString)
	const n = 4 * testTableSlots * 3 / 4 // several tables
	for i := range n {
		h.put(fmt.Sprint("key", i))
	}
	if h.sh.tab.Load().depth < 2 {
		t.Fatal("the shard has fewer than 4 tables")
	}
	seen := map[string]int{}
	holds := 0
	h.sh.scan(func(e entry) { seen[strings.Clone(e.key)]++ }, func() bool {
		if holds++; holds == 2 { // clear, and write a table's worth of the keys again
			h.sh.mu.Lock()
			h.sh.reset()
			h.sh.mu.Unlock()
			clear(h.model)
			for i := range 200 {
				h.put(fmt.Sprint("key", i))
			}
		}
		return true
	})
	if holds < 3 {
		t.Fatalf("the scan took %d lock holds, want the clear between two", holds)
	}
	for k, c := range seen {
		if c > 1 {
			t.Fatalf("%q collected %d times", k, c)
		}
	}
	h.check(nil)
}

// TestScanListsStableKeysOnceUnderSplits lists a shard while a writer adds
// and removes other keys fast enough to split tables and double the
// directory between the scan's lock holds: every key present for the whole
// scan must be listed exactly once, and no key twice.
func TestScanListsStableKeysOnceUnderSplits(t *testing.T) {
	s := New(WithShards(1), WithMaxKeys(1<<20), func(o *options) { o.tableSlots = testTableSlots })
	defer s.Close()
	stable := map[string]bool{}
	for i := range 3 * testTableSlots * 3 / 4 { // a few full tables' worth
		k := fmt.Sprint("stable", i)
		stable[k] = true
		if err := s.SetString(k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		// Grows the store by about sixteen full tables (splitting tables
		// under the scans), then churns at that size (tombs, rebuilds), so
		// scans stay short however fast the machine.
		const most = 16 * testTableSlots * 3 / 4
		for i := 0; !stop.Load(); i++ {
			s.SetString(fmt.Sprint("churn", i), "v")
			if i >= most {
				s.Delete(fmt.Sprint("churn", i-most))
			}
		}
	})
	// At least 30 scans, and on until the churn has split tables under
	// them (it grows the store by two keys in three): a slow machine, or
	// -race, may need more scans than a fast one.
	deadline := time.Now().Add(time.Minute)
	for round := 0; round < 30 || (s.s.shards[0].depth() < 3 && time.Now().Before(deadline)); round++ {
		keys, err := s.ListKeys("")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, k := range keys {
			seen[k]++
			if seen[k] > 1 {
				t.Fatalf("round %d: %q listed twice", round, k)
			}
		}
		for k := range stable {
			if seen[k] != 1 {
				t.Fatalf("round %d: stable key %q listed %d times", round, k, seen[k])
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if d := s.s.shards[0].depth(); d < 3 {
		t.Fatalf("the churn never split tables under the scans (directory depth %d)", d)
	}
}

// depth is the shard's directory depth, read under its lock.
func (sh *shard) depth() uint8 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.tab.Load().depth
}

// isValueOf reports whether v is a value the harness's put wrote for k:
// "v<n>:" then k then padding of x's.
func isValueOf(v, k string) bool {
	_, rest, ok := strings.Cut(v, ":")
	return ok && strings.HasPrefix(rest, k) && strings.Trim(rest[len(k):], "x") == ""
}

// TestSplitStepsKeepHalvesInStep drives one table through a split a step at
// a time and checks the shard (checkSplits among the rest) after every
// operation on its keys: inserts, overwrites (a new loc) and deletes of
// keys already copied and not yet copied, until the halves replace the
// table. It fails unless it saw the split part copied, so the checks ran
// on the states between steps, not only before and after.
func TestSplitStepsKeepHalvesInStep(t *testing.T) {
	h := newTableHarness(t, xxhashString)
	h.vmax = 8
	var p *pending
	for i := 0; p == nil; i++ {
		h.put(fmt.Sprint("fill", i))
		if l := h.sh.tab.Load().pend.list; len(l) > 0 {
			p = l[0]
		}
	}
	// Keys of the splitting table, by the tag that picks it.
	of := func(k string) bool { return h.sh.tab.Load().table(tagOf(h.hash(k))) == p.old }
	var mine []string
	for k := range h.model {
		if of(k) {
			mine = append(mine, k)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	partial, ops := 0, 0
	for i := 0; p.old.pend != 0; i++ {
		if k := fmt.Sprint("new", i); of(k) {
			h.put(k)
			mine = append(mine, k)
			ops++
		}
		if i%3 == 0 && len(mine) > 0 { // an overwrite and a delete of the table's keys
			h.put(mine[rng.IntN(len(mine))])
			j := rng.IntN(len(mine))
			h.del(mine[j])
			mine[j] = mine[len(mine)-1]
			mine = mine[:len(mine)-1]
			ops += 2
		}
		if p.next > 0 && !p.done() {
			partial++
		}
		h.check(nil)
	}
	if partial == 0 || ops < 10 {
		t.Fatalf("the split was never seen part copied (%d checks), %d operations on its keys", partial, ops)
	}
	h.sh.tab.Load().each(func(tb *table) {
		if tb == p.old {
			t.Fatal("the split table is still in the directory")
		}
	})
}

// done reports whether every slot of the old table is copied.
func (p *pending) done() bool { return p.next > p.old.mask }
