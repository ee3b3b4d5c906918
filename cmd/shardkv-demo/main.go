// Command shardkv-demo stores, expires and watches keys in a shardkv store
// and prints what happens, as a first look at the library.
//
//	go run ./cmd/shardkv-demo
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/shardkv/shardkv"
)

func main() {
	store := shardkv.New(shardkv.WithMaxKeys(4))
	defer store.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := store.WatchPrefix(ctx, "session:")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range events {
			fmt.Printf("  watch: %-6s %s %q\n", ev.Kind, ev.Key, ev.Value)
		}
	}()

	step("Set user:1 and read it back")
	must(store.SetString("user:1", "ada"))
	v, ok, err := store.GetString("user:1")
	must(err)
	fmt.Printf("  user:1 = %q (found %v)\n", v, ok)

	step("Sessions with a 30 ms TTL (watched under session:)")
	must(store.SetWithTTL("session:a", []byte("token-a"), 30*time.Millisecond))
	must(store.SetWithTTL("session:b", []byte("token-b"), 30*time.Millisecond))
	ttl, _, err := store.TTL("session:a")
	must(err)
	fmt.Printf("  session:a expires in about %v; Len = %d\n", ttl.Round(10*time.Millisecond), store.Len())

	step("Counters and compare-and-swap")
	n, err := store.Increment("visits", 41)
	must(err)
	n, err = store.Increment("visits", 1)
	must(err)
	fmt.Printf("  visits = %d\n", n)
	swapped, err := store.CompareAndSwap("user:1", []byte("ada"), []byte("grace"))
	must(err)
	fmt.Printf("  CAS ada->grace: %v\n", swapped)

	step("The quota is 4 keys")
	err = store.SetString("user:2", "linus")
	fmt.Printf("  Set user:2: %v (ErrQuotaExceeded: %v)\n", err, errors.Is(err, shardkv.ErrQuotaExceeded))

	step("Wait 50 ms: the sessions expire and the timing wheel reclaims them")
	time.Sleep(50 * time.Millisecond)
	fmt.Printf("  session:a exists: %v; Len = %d\n", store.Exists("session:a"), store.Len())
	must(store.SetString("user:2", "linus"))
	keys, err := store.ListKeys("")
	must(err)
	fmt.Printf("  user:2 now fits; %d keys held\n", len(keys))

	step("Delete a session that is still live")
	must(store.SetString("session:c", "token-c"))
	existed, err := store.Delete("session:c")
	must(err)
	fmt.Printf("  deleted session:c: %v\n", existed)

	time.Sleep(10 * time.Millisecond) // let the watcher print
	cancel()
	<-done
}

func step(s string) { fmt.Println("\n" + s) }

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
