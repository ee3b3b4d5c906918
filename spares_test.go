package shardkv

import (
	"fmt"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// poolHeld returns the tables in the pool.
func poolHeld(p *tablePool) []*table {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*table(nil), p.tables...)
}

// spareState reads what a shard holds in spares, under its lock.
func spareState(sh *shard) (chunk []byte, tables []*table) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.sp.chunk, poolHeld(sh.sp.pool)
}

// waitSpares waits until the reaper has refilled sh: a spare chunk, and
// the store's pool of spare tables full.
func waitSpares(t *testing.T, sh *shard) ([]byte, []*table) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, tabs := spareState(sh)
		if c != nil && len(tabs) == poolTables {
			return c, tabs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refill: spare chunk %v, %d spare tables", c != nil, len(tabs))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSparesAreUsedAndRefilled fills a one-shard store until the shard
// keeps spares, then checks that the next chunk and the next split take
// them (the very memory the reaper made, pre-faulted), that the reaper
// makes new ones, and that every key still reads back right.
func TestSparesAreUsedAndRefilled(t *testing.T) {
	// Tables of 1024 slots: a directory 3 deep (8 tables) with a few
	// thousand keys, whatever maxTableSlots is.
	s := New(WithShards(1), WithMaxKeys(1<<20), func(o *options) { o.tableSlots = 1024 })
	defer s.Close()
	sh := &s.s.shards[0]
	value := func(i int) string { return fmt.Sprintf("value-%d-%040d", i, i) }
	n := 0
	put := func() {
		if err := s.SetString(fmt.Sprint("key-", n), value(n)); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for n < 20000 { // 8 tables and 8 chunks need about 5000 keys
		put()
	}
	chunk, tables := waitSpares(t, sh)

	// Append until the head chunk changes: the new head is the spare.
	// The head's bytes name it: a number is reused, its memory never.
	headBytes := func() *byte {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return unsafe.SliceData(sh.a.meta[sh.a.head.no].b)
	}
	head := headBytes()
	for limit := n + 200000; ; {
		if n >= limit {
			t.Fatal("the head chunk never changed")
		}
		put()
		if h := headBytes(); h != head {
			if h != unsafe.SliceData(chunk) {
				t.Fatal("the new head chunk is not the spare")
			}
			break
		}
	}
	// Insert until a split is done: its halves are two of the spares.
	isSpare := func(tb *table) bool {
		for _, s := range tables {
			if tb == s {
				return true
			}
		}
		return false
	}
	var used []*table
	for limit := n + 200000; len(used) == 0; {
		if n >= limit {
			t.Fatal("no split took a spare table from the pool")
		}
		put()
		sh.mu.Lock()
		sh.tab.Load().each(func(tb *table) {
			if isSpare(tb) {
				used = append(used, tb)
			}
		})
		sh.mu.Unlock()
	}
	chunk2, tables2 := waitSpares(t, sh)
	if unsafe.SliceData(chunk2) == unsafe.SliceData(chunk) {
		t.Fatal("the refill handed out the same chunk again")
	}
	for _, tb := range tables2 {
		for _, u := range used {
			if tb == u {
				t.Fatal("the pool holds a table a split is using")
			}
		}
	}
	for i := range n {
		if v, ok, err := s.GetString(fmt.Sprint("key-", i)); err != nil || !ok || v != value(i) {
			t.Fatalf("key-%d: %q %v %v", i, v, ok, err)
		}
	}

	s.Clear()
	if c, tabs := spareState(sh); c != nil || len(tabs) != 0 {
		t.Fatalf("Clear kept spares: chunk %v, %d tables", c != nil, len(tabs))
	}
}

// TestNoSparesForSmallShardsOrWithoutReaper: a small shard never asks for
// spares (they would be a large part of it), and a store without the
// background goroutine never has any.
func TestNoSparesForSmallShardsOrWithoutReaper(t *testing.T) {
	small := New(WithShards(1))
	defer small.Close()
	for i := range 500 {
		if err := small.SetString(fmt.Sprint("k", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	big := New(WithShards(1), WithMaxKeys(1<<20), func(o *options) { o.noReaper = true })
	defer big.Close()
	for i := range 20000 {
		if err := big.SetString(fmt.Sprint("k", i), fmt.Sprintf("%060d", i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // time for a refill that should not come
	for name, s := range map[string]*Store{"small": small, "no reaper": big} {
		sh := &s.s.shards[0]
		if c, tabs := spareState(sh); c != nil || len(tabs) != 0 {
			t.Errorf("%s: spare chunk %v, %d spare tables", name, c != nil, len(tabs))
		}
	}
}

// TestTablePoolSharedByShards: the shards of a store take their splits'
// halves from one pool, from several goroutines at once. Once the shards
// are deep enough the pool fills, and later splits take its tables. No
// table is ever in two places: not in two shards' directories, not in a
// directory and the pool. The pool holds at most poolTables, every key
// reads back, and Clear empties the pool.
func TestTablePoolSharedByShards(t *testing.T) {
	s := New(WithShards(4), WithMaxKeys(1<<20), func(o *options) { o.tableSlots = 256 })
	defer s.Close()
	const writers, each = 4, 6000
	write := func(round int) {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if err := s.SetString(fmt.Sprintf("r%d-w%d-%d", round, w, i), "v"); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	write(0)
	deadline := time.Now().Add(10 * time.Second)
	for len(poolHeld(&s.s.tables)) < poolTables {
		if time.Now().After(deadline) {
			t.Fatalf("the pool never filled: %d tables", len(poolHeld(&s.s.tables)))
		}
		time.Sleep(time.Millisecond)
	}
	first := map[*table]bool{}
	for _, tb := range poolHeld(&s.s.tables) {
		first[tb] = true
	}
	write(1)
	seen := map[*table]string{}
	fromPool := 0
	for i := range s.s.shards {
		sh := &s.s.shards[i]
		sh.mu.Lock()
		sh.tab.Load().each(func(tb *table) {
			if where, ok := seen[tb]; ok && where != fmt.Sprint("shard ", i) {
				t.Errorf("a table is in shard %d and in %s", i, where)
			}
			seen[tb] = fmt.Sprint("shard ", i)
			if first[tb] {
				fromPool++
			}
		})
		sh.mu.Unlock()
	}
	if fromPool == 0 {
		t.Error("no split took a table from the pool")
	}
	pooled := poolHeld(&s.s.tables)
	if len(pooled) > poolTables {
		t.Errorf("the pool holds %d tables, at most %d", len(pooled), poolTables)
	}
	for _, tb := range pooled {
		if where, ok := seen[tb]; ok {
			t.Errorf("a pooled table is also in %s", where)
		}
	}
	for round := range 2 {
		for w := range writers {
			for i := range each {
				k := fmt.Sprintf("r%d-w%d-%d", round, w, i)
				if v, ok, err := s.GetString(k); err != nil || !ok || v != "v" {
					t.Fatalf("%s: %q %v %v", k, v, ok, err)
				}
			}
		}
	}
	s.Clear()
	if n := len(poolHeld(&s.s.tables)); n != 0 {
		t.Errorf("Clear left %d tables in the pool", n)
	}
}
