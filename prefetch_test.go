package shardkv

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Prefetch changes nothing a store holds or answers, whatever it is given:
// present, absent, deleted, expired and invalid keys, more than one batch,
// none; and it is a no-op on a closed or clustered store.
func TestPrefetch(t *testing.T) {
	s := New(noReaper)
	defer s.Close()
	var keys []string
	for i := range 3000 {
		k := fmt.Sprintf("k%d", i)
		keys = append(keys, k)
		var err error
		switch i % 4 {
		case 0:
			err = s.Set(k, []byte(k))
		case 1:
			err = s.SetWithTTL(k, []byte(k), time.Hour)
		case 2:
			err = s.SetWithTTL(k, []byte(k), time.Nanosecond) // expired, still held (no reaper)
		case 3:
			if err = s.Set(k, []byte(k)); err == nil {
				_, err = s.Delete(k)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Millisecond)
	snapshot := func() string {
		var b strings.Builder
		for _, k := range keys {
			v, ok, err := s.Get(k)
			fmt.Fprintf(&b, "%s=%q/%v/%v;", k, v, ok, err)
		}
		fmt.Fprintf(&b, "len=%d", s.Len())
		return b.String()
	}
	before := snapshot()
	for _, tc := range []struct {
		name string
		keys []string
	}{
		{"none", nil},
		{"one", keys[:1]},
		{"a batch", keys[:prefetchBatch]},
		{"all", keys},
		{"absent and invalid", []string{"", "absent", "\xff\xfe", strings.Repeat("x", MaxKeyLen+1), "a b"}},
	} {
		s.Prefetch(tc.keys...)
		if got := snapshot(); got != before {
			t.Fatalf("%s: the store changed", tc.name)
		}
	}

	closed := New()
	closed.Close()
	closed.Prefetch(keys...)

	clustered := New(WithBackend(nopBackend{}))
	defer clustered.Close()
	clustered.Prefetch(keys...)
}

// Prefetch reads a shard lock-free while writers split its tables, compact
// its chunks and reclaim expired keys (run under -race), and every key a
// reader looks up after it is still found.
func TestPrefetchUnderChurn(t *testing.T) {
	s := New(WithShards(1))
	defer s.Close()
	const stable = 64
	var keys []string
	for i := range stable {
		keys = append(keys, fmt.Sprintf("stable%d", i))
		if err := s.Set(keys[i], []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // churn: inserts, deletes, short TTLs, so tables split and chunks are compacted
		defer wg.Done()
		v := make([]byte, 100)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("churn%d", i%20000)
			switch i % 3 {
			case 0:
				_ = s.Set(k, v)
			case 1:
				_ = s.SetWithTTL(k, v, time.Millisecond)
			case 2:
				_, _ = s.Delete(fmt.Sprintf("churn%d", (i*7)%20000))
			}
		}
	}()
	churn := make([]string, 100)
	for round := 0; round < 2000; round++ {
		for i := range churn {
			churn[i] = fmt.Sprintf("churn%d", (round*100+i)%20000)
		}
		s.Prefetch(churn...)
		s.Prefetch(keys...)
		for _, k := range keys {
			if _, ok, err := s.Get(k); !ok || err != nil {
				t.Fatalf("round %d: %s lost (%v)", round, k, err)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// nopBackend panics on any call: Prefetch must not make one.
type nopBackend struct{ Backend }
