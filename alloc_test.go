package shardkv

import (
	"testing"
	"time"
)

// TestAllocations pins what each hot operation allocates: reads only the
// returned copy (none for GetString, AppendValue with room, View and
// Exists), writes only the stored copy, and no event work without a
// subscriber.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	s := New()
	defer s.Close()
	v := make([]byte, 64)
	if err := s.Set("k", v); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWithTTL("t", v, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Increment("n", 1_000_000); err != nil { // past one-byte strings, which Go does not allocate
		t.Fatal(err)
	}
	buf := make([]byte, 0, 128)
	tests := []struct {
		name string
		want float64
		op   func()
	}{
		{"Get", 1, func() { s.Get("k") }},
		{"Get/ttl", 1, func() { s.Get("t") }},
		{"Get/miss", 0, func() { s.Get("absent") }},
		{"GetString", 0, func() { s.GetString("k") }},
		{"AppendValue", 0, func() { s.AppendValue(buf[:0], "k") }},
		{"View", 0, func() { s.View("t", func([]byte) {}) }},
		{"Exists", 0, func() { s.Exists("t") }},
		{"TTL", 0, func() { s.TTL("t") }},
		{"Set/overwrite", 1, func() { s.Set("k", v) }},
		{"SetWithTTL/overwrite", 1, func() { s.SetWithTTL("t", v, time.Hour) }},
		// A deleted TTL key's timer is kept spare for the next key that gets
		// a TTL: only the record is allocated.
		{"SetWithTTL/new-key-after-delete", 1, func() { s.Delete("t2"); s.SetWithTTL("t2", v, time.Hour) }},
		{"Increment", 1, func() { s.Increment("n", 1) }},
		{"CompareAndSwap/hit", 1, func() { s.CompareAndSwap("k", v, v) }},
		{"CompareAndSwap/miss", 0, func() { s.CompareAndSwap("k", []byte("x"), v) }},
		{"Delete/absent", 0, func() { s.Delete("absent") }},
		{"publish/no-subscriber", 0, func() { s.s.events.publish("k", EventSet, v) }},
	}
	for _, tc := range tests {
		if got := testing.AllocsPerRun(200, tc.op); got != tc.want {
			t.Errorf("%s: %v allocations, want %v", tc.name, got, tc.want)
		}
	}
}
