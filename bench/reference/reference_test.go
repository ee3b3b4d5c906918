package reference

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// These follow the Rust file's tests, so that the port keeps its behaviour.

func TestBasicOperations(t *testing.T) {
	s := New()
	if err := s.Set("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := s.Get("k"); !ok || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	if !s.Exists("k") {
		t.Fatal("Exists false")
	}
	if ok, _ := s.Delete("k"); !ok {
		t.Fatal("Delete false")
	}
	if _, ok, _ := s.Get("k"); ok {
		t.Fatal("Get after Delete hit")
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "user:1", "a-b_c.d/e:f", "ключ", "数字"} {
		if ValidateKey(k) != nil {
			t.Errorf("%q rejected", k)
		}
	}
	for _, k := range []string{"", "a b", "a@b", string(make([]byte, 1025)), "\xff"} {
		if !errors.Is(ValidateKey(k), ErrInvalidKey) {
			t.Errorf("%q accepted", k)
		}
	}
}

func TestQuotaAndSize(t *testing.T) {
	s := New(WithMaxKeys(2), WithMaxValueSize(4))
	if err := s.Set("a", []byte("12345")); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	s.Set("a", nil)
	s.Set("b", nil)
	if err := s.Set("c", nil); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("quota: %v", err)
	}
	if err := s.Set("a", []byte("x")); err != nil {
		t.Fatalf("overwrite at the quota: %v", err)
	}
}

func TestTTLAndSweep(t *testing.T) {
	s := New()
	s.SetWithTTL("short", []byte("v"), time.Millisecond)
	s.SetWithTTL("long", []byte("v"), time.Hour)
	s.Set("none", []byte("v"))
	time.Sleep(5 * time.Millisecond)
	if s.Len() != 3 {
		t.Fatalf("Len before a sweep = %d", s.Len())
	}
	if _, ok, _ := s.Get("none"); !ok {
		t.Fatal("Get none missed")
	}
	if s.Len() != 2 {
		t.Fatalf("Get did not sweep: Len %d", s.Len())
	}

	n := New(WithoutSweep())
	n.SetWithTTL("short", []byte("v"), time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if _, ok, _ := n.Get("short"); ok {
		t.Fatal("expired entry read")
	}
	if n.Len() != 1 {
		t.Fatalf("WithoutSweep swept: Len %d", n.Len())
	}
	v := s.NoSweepView()
	s.SetWithTTL("short2", []byte("v"), time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	v.Get("none")
	if s.Len() != 3 {
		t.Fatalf("NoSweepView swept: Len %d", s.Len())
	}
	if keys := v.ListKeys("lo"); !slices.Equal(keys, []string{"long"}) {
		t.Fatalf("ListKeys = %v", keys)
	}
}

func TestIncrementAndCAS(t *testing.T) {
	s := New()
	if n, err := s.Increment("c", 5); err != nil || n != 5 {
		t.Fatalf("Increment = %d, %v", n, err)
	}
	if n, _ := s.Increment("c", 1<<62); n != 5+1<<62 {
		t.Fatalf("Increment = %d", n)
	}
	if n, _ := s.Increment("c", 1<<62); n != 1<<63-1 {
		t.Fatalf("no saturation: %d", n)
	}
	s.Set("s", []byte("x"))
	var se *StorageError
	if _, err := s.Increment("s", 1); !errors.As(err, &se) {
		t.Fatalf("non-number: %v", err)
	}
	if ok, _ := s.CompareAndSwap("k", nil, []byte("a")); !ok {
		t.Fatal("CAS(None) on absent failed")
	}
	if ok, _ := s.CompareAndSwap("k", []byte("b"), []byte("c")); ok {
		t.Fatal("CAS mismatch succeeded")
	}
	if ok, _ := s.CompareAndSwap("k", []byte("a"), []byte("c")); !ok {
		t.Fatal("CAS match failed")
	}
}

func TestWatch(t *testing.T) {
	s := New()
	sub := s.Subscribe()
	defer sub.Close()
	s.Set("k", []byte("v"))
	s.Delete("k")
	ctx := context.Background()
	if ev, err := sub.Recv(ctx); err != nil || ev.Kind != EventSet || string(ev.Value) != "v" {
		t.Fatalf("Recv = %+v, %v", ev, err)
	}
	if ev, err := sub.Recv(ctx); err != nil || ev.Kind != EventDelete || ev.Value != nil {
		t.Fatalf("Recv = %+v, %v", ev, err)
	}
	for range WatchChannelCapacity + 5 {
		s.Set("k", nil)
	}
	var lag *LaggedError
	if _, err := sub.Recv(ctx); !errors.As(err, &lag) || lag.Missed != 5 {
		t.Fatalf("Recv after overflow: %v", err)
	}
}
