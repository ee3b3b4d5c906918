package server

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/shardkvtest"
)

// clusterPair starts two servers whose stores share one backend, a
// shardkvtest.LocalBackend over one local store: a stand-in for a cluster,
// where both see one keyspace and every write's event, as two stores on
// one etcd do. (The real thing, two shardkv-servers on an embedded etcd,
// is tested in cmd/shardkv-server.) Keyspace notifications are on.
func clusterPair(t *testing.T, opts ...shardkv.Option) (a, b *redis.Client, shared *shardkv.Store) {
	t.Helper()
	shared = newTestStore(t)
	var cs [2]*redis.Client
	for i := range cs {
		st := shardkv.New(append(append(StoreOptions(), opts...), shardkv.WithBackend(shardkvtest.LocalBackend{Store: shared}))...)
		if !st.IsClustered() {
			t.Fatal("store with a backend is not clustered")
		}
		e := newEnvStore(t, st, Config{NotifyKeyspaceEvents: "KEA"})
		cs[i] = e.client()
	}
	return cs[0], cs[1], shared
}

func TestClusterCommands(t *testing.T) {
	a, b, shared := clusterPair(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	eq := func(got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}

	// A write through one server is read through the other, and lives in
	// the backend, not in either server's own store.
	must(a.Set(ctx, "k", "v1", 0).Err())
	eq(b.Get(ctx, "k").Val(), "v1")
	v, ok, err := shared.Get("k")
	must(err)
	eq(string(v)+fmt.Sprint(ok), "v1true")

	// SET's options that map onto the backend.
	eq(b.SetNX(ctx, "k", "x", 0).Val(), false)
	eq(b.SetNX(ctx, "n", "1", 0).Val(), true)
	eq(a.Do(ctx, "set", "n", "2", "nx").Err(), redis.Nil)
	eq(a.Do(ctx, "set", "absent", "2", "xx").Err(), redis.Nil)
	eq(a.Do(ctx, "set", "n", "3", "xx").Val(), "OK")
	eq(a.Do(ctx, "set", "n", "4", "get").Val(), "3")
	eq(a.Do(ctx, "set", "fresh", "1", "get").Err(), redis.Nil)
	eq(b.Get(ctx, "fresh").Val(), "1")
	eq(a.Do(ctx, "set", "n", "5", "xx", "get").Val(), "4")
	eq(b.GetSet(ctx, "n", "6").Val(), "5")
	eq(b.Get(ctx, "n").Val(), "6")
	eq(b.Do(ctx, "cas", "n", "6", "7").Val(), 1)
	eq(b.Do(ctx, "cas", "n", "6", "8").Val(), 0)
	eq(a.Get(ctx, "n").Val(), "7")
	eq(a.StrLen(ctx, "k").Val(), 2)
	eq(a.GetRange(ctx, "k", 1, -1).Val(), "1")
	eq(a.Do(ctx, "getex", "k").Val(), "v1")

	// Multi-key commands.
	must(a.MSet(ctx, "m1", "a", "m2", "b").Err())
	eq(b.MGet(ctx, "m1", "m2", "nope").Val(), []any{"a", "b", nil})
	eq(b.Exists(ctx, "m1", "m2", "nope", "m1").Val(), 3)
	eq(b.Type(ctx, "m1").Val(), "string")
	eq(b.Type(ctx, "nope").Val(), "none")
	keys := a.Keys(ctx, "m*").Val()
	sort.Strings(keys)
	eq(keys, []string{"m1", "m2"})
	sk, cur, err := b.Scan(ctx, 0, "m?", 1).Result()
	must(err)
	sort.Strings(sk)
	eq(fmt.Sprint(sk, cur), "[m1 m2] 0")
	eq(a.DBSize(ctx).Val(), shared.Len())
	eq(a.Del(ctx, "m1", "m2", "nope").Val(), 2)

	// Increments from both servers add up, exactly.
	var wg sync.WaitGroup
	for _, c := range []*redis.Client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if err := c.Incr(ctx, "ctr").Err(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	eq(a.Get(ctx, "ctr").Val(), "200")
	eq(b.IncrBy(ctx, "ctr", -50).Val(), 150)
	eq(b.DecrBy(ctx, "ctr", 50).Val(), 100)
	eq(a.Incr(ctx, "k").Err(), errNotInt)

	// A TTL reaches the backend: the key expires there.
	must(a.SetEx(ctx, "ttl", "v", time.Second).Err())
	must(a.Do(ctx, "set", "ttl2", "v", "px", "50").Err())
	eq(b.Get(ctx, "ttl").Val(), "v")
	time.Sleep(150 * time.Millisecond)
	eq(b.Get(ctx, "ttl2").Err(), redis.Nil)

	// Commands the backend cannot do answer an error, and change nothing.
	for _, cmd := range [][]any{
		{"expire", "k", 10}, {"ttl", "k"}, {"pttl", "k"}, {"persist", "k"},
		{"append", "k", "x"}, {"rename", "k", "k2"}, {"getdel", "k"},
		{"incrbyfloat", "k", 1.5}, {"setrange", "k", 0, "x"},
		{"msetnx", "q", "1"}, {"set", "k", "x", "keepttl"}, {"set", "k", "x", "nx", "ex", 5},
		{"getex", "k", "ex", 5},
	} {
		err := a.Do(ctx, cmd...).Err()
		if err == nil || !strings.Contains(err.Error(), "not supported in cluster mode") {
			t.Errorf("%v: %v, want the cluster-mode error", cmd, err)
		}
	}
	eq(b.Get(ctx, "k").Val(), "v1")

	must(b.FlushDB(ctx).Err())
	eq(a.DBSize(ctx).Val(), 0)
	eq(a.RandomKey(ctx).Err(), redis.Nil)
	must(a.Set(ctx, "only", "1", 0).Err())
	eq(b.RandomKey(ctx).Val(), "only")
	if info := b.Info(ctx, "keyspace").Val(); !strings.Contains(info, "db0:keys=1,") {
		t.Errorf("INFO keyspace = %q, want db0:keys=1", info)
	}
}

// TestClusterValueLimit: a value over the serving store's limit is refused
// before anything is sent to the backend.
func TestClusterValueLimit(t *testing.T) {
	a, _, shared := clusterPair(t, shardkv.WithMaxValueSize(4))
	want := tooLargeMsg(4)
	for _, cmd := range [][]any{
		{"set", "k", "12345"}, {"setnx", "k", "12345"}, {"setex", "k", 5, "12345"},
		{"getset", "k", "12345"}, {"mset", "a", "1", "k", "12345"}, {"cas", "k", "", "12345"},
		{"set", "k", "12345", "xx"},
	} {
		if err := a.Do(ctx, cmd...).Err(); err == nil || err.Error() != want {
			t.Errorf("%v: %v, want %q", cmd, err, want)
		}
	}
	if n := shared.Len(); n != 0 {
		t.Errorf("the backend holds %d keys after refused writes", n)
	}
}

// TestClusterNotifications: a write through one server reaches the
// keyspace subscribers of the other, through the backend's watch.
func TestClusterNotifications(t *testing.T) {
	a, b, _ := clusterPair(t)
	ps := b.PSubscribe(ctx, "__keyevent@0__:*")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	ch := ps.Channel()
	// The watch streams from about the time the store was made; write
	// until the first event arrives, then check what follows in order.
	deadline := time.After(10 * time.Second)
	for first := false; !first; {
		if err := a.Set(ctx, "warm", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			first = true
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("no keyspace event through the backend's watch")
		}
	}
	if err := a.Set(ctx, "warm", "1", 0).Err(); err != nil { // drains the warm-up's echo
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for len(ch) > 0 {
		<-ch
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.Set(ctx, "x", "1", 0).Err())
	must(a.Incr(ctx, "x").Err())
	must(a.Del(ctx, "x").Err())
	must(a.Set(ctx, "e", "1", 30*time.Millisecond).Err())
	// LocalBackend relays the backing store's event names (an INCR is an
	// "incrby"); etcd's stream, which does not say, names it "set" (see
	// cmd/shardkv-server's TestRunCluster).
	want := []string{"set x", "incrby x", "del x", "set e", "expired e"}
	for i, w := range want {
		select {
		case m := <-ch:
			got := strings.TrimPrefix(m.Channel, "__keyevent@0__:") + " " + m.Payload
			if got != w {
				t.Fatalf("event %d: %q, want %q", i, got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d (%q) did not arrive", i, w)
		}
	}
}
