package shardkv

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// tableHarness drives one shard's table the way the store does (under the
// shard lock), with a map as the model. Every put writes a value no earlier
// put wrote (a counter), so a replace that kept the old record, or found
// another key's, is caught by comparing values with the model.
type tableHarness struct {
	t     *testing.T
	sh    shard
	model map[string]modelEntry
	hash  func(string) uint64
	puts  int // values written so far
}

// modelEntry is what the model holds for a key: its hash and the value of
// the last put.
type modelEntry struct {
	hash  uint64
	value string
}

func newTableHarness(t *testing.T, hash func(string) uint64) *tableHarness {
	h := &tableHarness{t: t, model: map[string]modelEntry{}, hash: hash}
	h.sh.init()
	return h
}

func (h *tableHarness) put(key string) {
	h.sh.mu.Lock()
	defer h.sh.mu.Unlock()
	hv := h.hash(key)
	h.puts++
	v := fmt.Sprint("v", h.puts, ":", key) // distinct from every earlier value
	r := newRecord(key, v, noDeadline)
	if s, _ := h.sh.tab.Load().probe(key, hv); s != nil {
		h.sh.replace(s, r)
	} else {
		h.sh.insert(hv, r)
	}
	h.model[key] = modelEntry{hv, v}
}

func (h *tableHarness) del(key string) {
	h.sh.mu.Lock()
	defer h.sh.mu.Unlock()
	if s, _ := h.sh.tab.Load().probe(key, h.hash(key)); s != nil {
		h.sh.tab.Load().remove(s)
	}
	delete(h.model, key)
}

// check compares the table with the model: every key found with the record
// of its last put (its value), absent keys missing, the counts right, and the quarter of nil
// slots that ends every probe kept.
func (h *tableHarness) check(absent []string) {
	h.t.Helper()
	t := h.sh.tab.Load()
	for k, m := range h.model {
		_, r := t.probe(k, m.hash)
		if r == nil {
			h.t.Fatalf("%q: missing", k)
		}
		if r.key() != k || r.value() != m.value {
			h.t.Fatalf("%q: found key %q with value %q, want the last put's %q", k, r.key(), r.value(), m.value)
		}
	}
	for _, k := range absent {
		if _, ok := h.model[k]; ok {
			continue
		}
		if _, r := t.probe(k, h.hash(k)); r != nil {
			h.t.Fatalf("%q found after its delete", k)
		}
	}
	live, used := 0, 0
	for i := range t.slots {
		switch t.slots[i].rec.Load() {
		case nil:
		case tomb:
			used++
		default:
			live++
			used++
		}
	}
	if live != t.live || used != t.used || live != len(h.model) {
		h.t.Fatalf("live %d used %d, table says %d %d, model %d", live, used, t.live, t.used, len(h.model))
	}
	if t != emptyTable && used*4 > len(t.slots)*3 {
		h.t.Fatalf("%d of %d slots used: fewer than a quarter nil", used, len(t.slots))
	}
}

func TestTableAgainstModel(t *testing.T) {
	hashes := []struct {
		name string
		fn   func(string) uint64
	}{
		{"xxhash", func(k string) uint64 { return xxhashString(k) }},
		// Four home slots for every key: long probe chains, tombs in the
		// middle of them, and the backward clean-up of remove.
		{"clustered", func(k string) uint64 { return xxhashString(k) & 3 }},
		// Every key the same hash: probes must compare the keys.
		{"one-hash", func(string) uint64 { return 42 }},
	}
	for _, hc := range hashes {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/seed=%d", hc.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				h := newTableHarness(t, hc.fn)
				keys := make([]string, 200)
				for i := range keys {
					keys[i] = fmt.Sprint("key", i)
				}
				for step := range 5000 {
					k := keys[rng.IntN(len(keys))]
					if rng.IntN(3) == 0 {
						h.del(k)
					} else {
						h.put(k)
					}
					if step%50 == 0 {
						h.check(keys)
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

// TestRecordEdges: empty keys and values, and values long enough to need a
// large allocation, come back as they went in.
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
		{"key", long, 1 << 40},
	}
	for _, tc := range tests {
		r := newRecord(tc.key, tc.value, tc.when)
		if r.key() != tc.key || r.value() != string(tc.value) || r.when != tc.when {
			t.Fatalf("record of %q: key %q, %d value bytes, when %d", tc.key, r.key(), len(r.value()), r.when)
		}
	}
}

// TestTableReadersNeverMissAStableKey runs lock-free probes of keys that are
// always present while a writer churns other keys around them: inserts into
// tombs, removes that turn tombs back to nil, overwrites and growth (a new
// table published under the readers). A reader may see an old record of a
// stable key, never a miss and never another key's record. Run it with
// -race: the race detector checks the publication order.
func TestTableReadersNeverMissAStableKey(t *testing.T) {
	var sh shard
	sh.init()
	hash := func(k string) uint64 { return xxhashString(k) & 7 } // long shared chains
	// Churn keys first, so that the stable keys sit behind them in the
	// shared chains, and the churn's tombs (and tombs turned back to nil)
	// lie between the stable keys and their home slots.
	for i := range 150 {
		k := fmt.Sprint("churn", i)
		sh.insert(hash(k), newRecord(k, "y", noDeadline))
	}
	stable := make([]string, 16)
	for i := range stable {
		stable[i] = fmt.Sprint("stable", i)
		sh.insert(hash(stable[i]), newRecord(stable[i], stable[i], noDeadline))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := stable[(i+g)%len(stable)]
				_, r := sh.tab.Load().probe(k, hash(k))
				if r == nil || r.key() != k || r.value() != k {
					t.Errorf("stable key %q: got %v", k, r)
					return
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	steps := 20000
	if testing.Short() {
		steps = 5000
	}
	for range steps {
		sh.mu.Lock()
		k := fmt.Sprint("churn", rng.IntN(300))
		hv := hash(k)
		tab := sh.tab.Load()
		if s, _ := tab.probe(k, hv); s != nil {
			if rng.IntN(2) == 0 {
				tab.remove(s)
			} else {
				sh.replace(s, newRecord(k, "x", noDeadline))
			}
		} else {
			sh.insert(hv, newRecord(k, "y", noDeadline))
		}
		if rng.IntN(50) == 0 { // and rewrite a stable key in place
			sk := stable[rng.IntN(len(stable))]
			s, _ := sh.tab.Load().probe(sk, hash(sk))
			sh.replace(s, newRecord(sk, sk, noDeadline))
		}
		sh.mu.Unlock()
	}
	stop.Store(true)
	wg.Wait()
}

func xxhashString(k string) uint64 { return xxhash.Sum64String(k) }

// FuzzTable drives one shard's table with the operations the input spells,
// over a tiny key space and a hash of at most 4 bits, so that every probe
// run is long and shared and tombs pile up; after every operation the table
// must agree with the model (see tableHarness.check).
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0x81, 0x82, 4, 5, 0x83, 6})
	f.Add([]byte{0x0f, 0x1f, 0x2f, 0x3f, 0x8f, 0x9f, 0xaf, 0xbf})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 512 {
			ops = ops[:512]
		}
		var bits byte
		if len(ops) > 0 {
			bits, ops = ops[0]&3, ops[1:]
		}
		mask := uint64(1)<<bits - 1 // 1 to 8 home slots
		h := newTableHarness(t, func(k string) uint64 { return xxhashString(k) & mask })
		keys := make([]string, 32)
		for i := range keys {
			keys[i] = fmt.Sprint("k", i)
		}
		for _, op := range ops {
			k := keys[op&31]
			if op&0x80 != 0 {
				h.del(k)
			} else {
				h.put(k)
			}
			h.check(keys)
		}
	})
}
