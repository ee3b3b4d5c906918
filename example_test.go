package shardkv_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shardkv/shardkv"
)

func ExampleNew() {
	s := shardkv.New(
		shardkv.WithMaxKeys(2),
		shardkv.WithMaxValueSize(8),
		shardkv.WithShards(4),
	)
	defer s.Close()

	fmt.Println(s.MaxKeys(), s.MaxValueSize(), s.IsClustered())

	err := s.Set("k", []byte("far too long"))
	fmt.Println(errors.Is(err, shardkv.ErrValueTooLarge))

	_ = s.Set("a", []byte("1"))
	_ = s.Set("b", []byte("2"))
	err = s.Set("c", []byte("3"))
	fmt.Println(errors.Is(err, shardkv.ErrQuotaExceeded))
	fmt.Println(s.Set("a", []byte("x")) == nil) // overwriting is allowed at the quota

	err = s.Set("bad key", nil)
	fmt.Println(errors.Is(err, shardkv.ErrInvalidKey))
	// Output:
	// 2 8 false
	// true
	// true
	// true
	// true
}

func ExampleStore_Get() {
	s := shardkv.New()
	defer s.Close()

	if err := s.Set("greeting", []byte("hello")); err != nil {
		panic(err)
	}
	v, found, err := s.Get("greeting")
	fmt.Printf("%s %v %v\n", v, found, err)

	_, found, err = s.Get("missing")
	fmt.Println(found, err)

	str, _, _ := s.GetString("greeting")
	fmt.Println(str)
	// Output:
	// hello true <nil>
	// false <nil>
	// hello
}

func ExampleStore_SetWithTTL() {
	s := shardkv.New()
	defer s.Close()

	_ = s.SetWithTTL("session", []byte("token"), time.Hour)
	ttl, found, _ := s.TTL("session")
	fmt.Println(found, ttl > 59*time.Minute && ttl <= time.Hour)

	// A ttl <= 0 stores an entry that is already expired.
	_ = s.SetWithTTL("stale", []byte("x"), 0)
	fmt.Println(s.Exists("stale"))

	// A very short TTL: absent once it passes, and CleanExpired reclaims it
	// at once rather than within the reaper's two ticks.
	_ = s.SetWithTTL("blink", []byte("x"), time.Nanosecond)
	time.Sleep(2 * time.Millisecond)
	fmt.Println(s.Exists("blink"))
	s.CleanExpired()
	fmt.Println(s.Len())

	// Set drops a TTL.
	_ = s.Set("session", []byte("token"))
	ttl, _, _ = s.TTL("session")
	fmt.Println(ttl == shardkv.NoTTL)
	// Output:
	// true true
	// false
	// false
	// 1
	// true
}

func ExampleStore_CompareAndSwap() {
	s := shardkv.New()
	defer s.Close()

	// A nil expected value means "only if the key is absent".
	ok, _ := s.CompareAndSwap("lock", nil, []byte("owner-1"))
	fmt.Println(ok)
	ok, _ = s.CompareAndSwap("lock", nil, []byte("owner-2"))
	fmt.Println(ok)

	// Otherwise the current value must equal expected.
	ok, _ = s.CompareAndSwap("lock", []byte("owner-2"), []byte("owner-3"))
	fmt.Println(ok)
	ok, _ = s.CompareAndSwap("lock", []byte("owner-1"), []byte("owner-3"))
	fmt.Println(ok)

	v, _, _ := s.GetString("lock")
	fmt.Println(v)
	// Output:
	// true
	// false
	// false
	// true
	// owner-3
}

func ExampleStore_Increment() {
	s := shardkv.New()
	defer s.Close()

	n, _ := s.Increment("hits", 5) // a missing key counts as 0
	fmt.Println(n)
	n, _ = s.Increment("hits", -7)
	fmt.Println(n)
	v, _, _ := s.GetString("hits") // stored as decimal text
	fmt.Println(v)

	_ = s.SetString("max", "9223372036854775807")
	n, _ = s.Increment("max", 1) // saturates
	fmt.Println(n)

	_ = s.SetString("name", "gopher")
	_, err := s.Increment("name", 1)
	var se *shardkv.StorageError
	fmt.Println(errors.As(err, &se))
	// Output:
	// 5
	// -2
	// -2
	// 9223372036854775807
	// true
}

func ExampleStore_WatchPrefix() {
	s := shardkv.New()
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	events := s.WatchPrefix(ctx, "user/")
	_ = s.Set("other/1", []byte("x"))
	_ = s.Set("user/1", []byte("alice"))
	_, _ = s.Delete("user/1")

	for i := 0; i < 2; i++ {
		ev := <-events
		fmt.Printf("%s %s %q\n", ev.Kind, ev.Key, ev.Value)
	}
	// Output:
	// set user/1 "alice"
	// delete user/1 ""
}

func ExampleStore_Subscribe() {
	s := shardkv.New()
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()

	_ = s.Set("k", []byte("v1"))
	_, _ = s.Increment("n", 2)
	_, _ = s.Delete("k")

	ctx := context.Background()
	for i := 0; i < 3; i++ {
		ev, err := sub.Recv(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s %s %q\n", ev.Kind, ev.Key, ev.Value)
	}
	// Output:
	// set k "v1"
	// set n "2"
	// delete k ""
}

// Update reads and writes a key in one step under its shard's lock: here,
// an append that no concurrent writer can interleave with.
func ExampleStore_Update() {
	s := shardkv.New()
	defer s.Close()
	_ = s.SetString("log", "a")

	appendTo := func(key, suffix string) (n int, err error) {
		err = s.Update(key, func(e shardkv.Entry) shardkv.Change {
			v := append(append([]byte(nil), e.Value...), suffix...) // e.Value is lent: copy
			n = len(v)
			return shardkv.Change{Action: shardkv.Put, Value: v, KeepTTL: true, Op: "append"}
		})
		return n, err
	}
	n, _ := appendTo("log", "bc")
	v, _, _ := s.GetString("log")
	fmt.Println(n, v)

	// Drop removes a key, here only if it holds what we expect.
	_ = s.Update("log", func(e shardkv.Entry) shardkv.Change {
		if string(e.Value) == "abc" {
			return shardkv.Change{Action: shardkv.Drop}
		}
		return shardkv.Change{} // Keep
	})
	fmt.Println(s.Exists("log"))
	// Output:
	// 3 abc
	// false
}

// Scan walks the keys in steps, resuming from a cursor, as Redis SCAN
// does: every key present for the whole walk comes back once.
func ExampleStore_Scan() {
	s := shardkv.New()
	defer s.Close()
	for i := range 100 {
		_ = s.SetString(fmt.Sprint("user:", i), "x")
	}
	seen, calls := 0, 0
	var keys []string
	for cursor := uint64(0); ; {
		var err error
		keys, cursor, err = s.Scan(cursor, 10, keys[:0])
		if err != nil {
			panic(err)
		}
		seen += len(keys)
		calls++
		if cursor == 0 {
			break
		}
	}
	fmt.Println(seen, calls > 1)
	// Output:
	// 100 true
}

// Rename moves a value and its deadline to another key.
func ExampleStore_Rename() {
	s := shardkv.New()
	defer s.Close()
	_ = s.SetWithTTL("session:tmp", []byte("alice"), time.Hour)
	ok, _ := s.Rename("session:tmp", "session:42", false)
	v, _, _ := s.GetString("session:42")
	ttl, _, _ := s.TTL("session:42")
	fmt.Println(ok, v, ttl > 59*time.Minute, s.Exists("session:tmp"))
	_, err := s.Rename("missing", "x", false)
	fmt.Println(errors.Is(err, shardkv.ErrNotFound))
	// Output:
	// true alice true false
	// true
}

// A batch of reads, as a server runs a pipeline of requests: Prefetch
// first, so that the keys' memory is fetched together, then the reads.
// The hint changes no result.
func ExampleStore_Prefetch() {
	s := shardkv.New()
	defer s.Close()
	for i := range 4 {
		_ = s.SetString(fmt.Sprintf("user:%d", i), fmt.Sprint(i*i))
	}
	batch := []string{"user:3", "user:1", "user:9", "user:2"}
	s.Prefetch(batch...)
	for _, k := range batch {
		v, found, _ := s.GetString(k)
		fmt.Println(k, v, found)
	}
	// Output:
	// user:3 9 true
	// user:1 1 true
	// user:9  false
	// user:2 4 true
}

// Keys as a network server receives them: bytes of any kind, converted
// for each call. Under WithBinaryKeys (or ValidateKey) the conversion of
// a key of up to 32 bytes costs no allocation.
func ExampleWithBinaryKeys() {
	s := shardkv.New(shardkv.WithBinaryKeys(16))
	defer s.Close()

	request := [][]byte{[]byte("SET"), []byte("user 1\x00"), []byte("Ada")}
	if err := s.Set(string(request[1]), request[2]); err != nil {
		panic(err)
	}
	v, _, _ := s.Get("user 1\x00")
	fmt.Printf("%s\n", v)

	err := s.Set("a key of more than sixteen bytes", nil)
	fmt.Println(errors.Is(err, shardkv.ErrInvalidKey), err)
	// Output:
	// Ada
	// true invalid key format: 32 bytes, limit 16
}
