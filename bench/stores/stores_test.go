package stores_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/shardkv/shardkv/bench/stores"
	"github.com/shardkv/shardkv/shardkvtest"
)

// build returns every row (variants over their group's base), each a fresh
// instance sized for 1000 keys.
func build(t *testing.T, spec stores.Spec) stores.Store {
	t.Helper()
	base := spec
	if spec.IsVariant() {
		var ok bool
		if base, ok = stores.Base(spec.Group); !ok {
			t.Fatalf("%s: no base for group %s", spec.Name, spec.Group)
		}
	}
	s, err := base.New(stores.Config{Keys: 1000, ValueSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if spec.IsVariant() {
		s = spec.Wrap(s)
	}
	if s.Name() != spec.Name {
		t.Fatalf("Name() = %q, want %q", s.Name(), spec.Name)
	}
	if s.Caps() != spec.Caps {
		t.Fatalf("Caps() = %v, spec says %v", s.Caps(), spec.Caps)
	}
	return s
}

func settle(s stores.Store) {
	if w, ok := s.(stores.Waiter); ok {
		w.Wait()
	}
}

// TestConformance checks that every store does what its capabilities say,
// so that no workload measures a store that silently does something else.
func TestConformance(t *testing.T) {
	for _, spec := range stores.All() {
		t.Run(spec.Name, func(t *testing.T) {
			t.Parallel()
			s := build(t, spec)
			v := bytes.Repeat([]byte("v"), 64)
			if !s.Set("user:000001", v) {
				t.Fatal("Set refused")
			}
			settle(s)
			got, ok := s.Get("user:000001")
			if !ok || !bytes.Equal(got, v) {
				t.Fatalf("Get = %q, %v", got, ok)
			}
			if _, ok := s.Get("user:999999"); ok {
				t.Fatal("Get of an absent key hit")
			}
			read := stores.NewReader(s)
			if !read("user:000001") || read("user:999998") {
				t.Fatal("reader disagrees with Get")
			}
			if s.Caps().Has(stores.TTL) {
				// Generous times: a busy machine may pause this test.
				s.SetWithTTL("user:000002", v, 200*time.Millisecond)
				s.SetWithTTL("user:000003", v, time.Hour)
				settle(s)
				if _, ok := s.Get("user:000002"); !ok {
					t.Fatal("TTL entry missing before its deadline")
				}
				time.Sleep(300 * time.Millisecond)
				if _, ok := s.Get("user:000002"); ok {
					t.Fatal("TTL entry present after its deadline")
				}
				if _, ok := s.Get("user:000003"); !ok {
					t.Fatal("1h TTL entry missing")
				}
			}
			if s.Caps().Has(stores.Increment) {
				s.Set("user:000004", []byte("41"))
				settle(s)
				if n, ok := s.Increment("user:000004", 1); !ok || n != 42 {
					t.Fatalf("Increment = %d, %v", n, ok)
				}
				if n, ok := s.Increment("user:000005", 3); !ok || n != 3 {
					t.Fatalf("Increment of a new key = %d, %v", n, ok)
				}
				if got, _ := s.Get("user:000004"); string(got) != "42" {
					t.Fatalf("after Increment Get = %q", got)
				}
			}
			if s.Caps().Has(stores.CAS) {
				if !s.CompareAndSwap("user:000006", nil, []byte("a")) {
					t.Fatal("CAS(nil) on an absent key failed")
				}
				if s.CompareAndSwap("user:000006", nil, []byte("x")) {
					t.Fatal("CAS(nil) on a present key succeeded")
				}
				if s.CompareAndSwap("user:000006", []byte("b"), []byte("c")) {
					t.Fatal("CAS with a wrong expected value succeeded")
				}
				if !s.CompareAndSwap("user:000006", []byte("a"), []byte("b")) {
					t.Fatal("CAS with the right expected value failed")
				}
				if got, _ := s.Get("user:000006"); string(got) != "b" {
					t.Fatalf("after CAS Get = %q", got)
				}
			}
			if s.Caps().Has(stores.List) {
				s.Set("other:1", v)
				keys := s.ListKeys("user:00000")
				slices.Sort(keys)
				if !slices.Contains(keys, "user:000001") || slices.Contains(keys, "other:1") {
					t.Fatalf("ListKeys = %v", keys)
				}
			}
			if s.Caps().Has(stores.Watch) {
				w, ok := s.(stores.Watcher)
				if !ok {
					t.Fatal("Watch capability without Subscribe")
				}
				sub := w.Subscribe()
				defer sub.Close()
				s.Set("user:000007", v)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				if missed, err := sub.Next(ctx); err != nil || missed != 0 {
					t.Fatalf("Next = %d, %v", missed, err)
				}
			}
		})
	}
}

// TestReaderAllocations pins what a read allocates, exactly, summed over
// many reads (testing.AllocsPerRun rounds its mean down, so "want 1" would
// pass at 1.99): shardkv's Get only its copy, its zero-copy readers and the
// map-based peers nothing.
//
// Mallocs counts every goroutine's allocations, and these stores cannot be
// built without their background goroutines (shardkv's reaper, whose first
// run allocates its timer, may not have run yet; an earlier test's stores
// may still be winding down). Such noise only adds, so a total above the
// expected one is measured again, up to 3 times; one below it fails at
// once. A read that allocates more than it should on every call, or every
// other call, is over on every attempt.
func TestReaderAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	const runs = 1000
	want := map[string]uint64{"shardkv": 1, "shardkv-view": 0, "shardkv-append": 0, "xsync": 0, "syncmap": 0}
	measured := 0
	for _, spec := range stores.All() {
		w, ok := want[spec.Name]
		if !ok {
			continue
		}
		measured++
		s := build(t, spec)
		s.Set("user:000001", make([]byte, 64))
		settle(s)
		read := stores.NewReader(s)
		if !read("user:000001") { // and the warm-up call
			t.Fatalf("%s: the reader misses the key just set", spec.Name)
		}
		totals := shardkvtest.MallocsUpTo(runs, runs*w, func() { read("user:000001") })
		if got := totals[len(totals)-1]; got != runs*w {
			t.Errorf("%s: %d reads allocate %d times (attempts: %v), want exactly %d (%d a read)",
				spec.Name, runs, got, totals, runs*w, w)
		}
	}
	if measured != len(want) {
		t.Fatalf("measured %d stores, want %d: a store was renamed or dropped", measured, len(want))
	}
}

func TestLookup(t *testing.T) {
	all, err := stores.Lookup(nil)
	if err != nil || len(all) != len(stores.All()) {
		t.Fatalf("Lookup(nil) = %d specs, %v", len(all), err)
	}
	got, err := stores.Lookup([]string{"xsync", "shardkv"})
	if err != nil || len(got) != 2 || got[0].Name != "shardkv" {
		t.Fatalf("Lookup keeps report order: %v, %v", got, err)
	}
	if _, err := stores.Lookup([]string{"nope"}); err == nil {
		t.Fatal("Lookup of an unknown store succeeded")
	}
}

// TestNoop checks the floor row: it takes writes, keeps nothing, and is
// not among the compared stores.
func TestNoop(t *testing.T) {
	spec := stores.Noop()
	s, err := spec.New(stores.Config{Keys: 10, ValueSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Name() != stores.NoopName || spec.Name != stores.NoopName || s.Caps() != 0 {
		t.Fatalf("name %q/%q, caps %v", s.Name(), spec.Name, s.Caps())
	}
	if !s.Set("user:000001", []byte("v")) {
		t.Fatal("Set refused")
	}
	if v, ok := s.Get("user:000001"); ok || v != nil || s.Len() != 0 {
		t.Fatalf("Get = %q, %v; Len %d", v, ok, s.Len())
	}
	if stores.NewReader(s)("user:000001") {
		t.Fatal("reader hit")
	}
	if _, err := stores.Lookup([]string{stores.NoopName}); err == nil {
		t.Fatal("Lookup knows the floor row")
	}
	for _, s := range stores.All() {
		if s.Name == stores.NoopName {
			t.Fatal("All includes the floor row")
		}
	}
}
