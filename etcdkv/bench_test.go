package etcdkv

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shardkv/shardkv"
)

// benchKeys is how many keys each benchmark cycles through.
const benchKeys = 1000

// BenchmarkEtcd measures each operation four ways, in one run, on one
// embedded etcd (in this process, no fsync: see etcdtest), one call at a
// time:
//
//   - via=raw: the clientv3 requests a user would write by hand for the
//     operation (Get; Put; Grant then Put; Delete; a count-only Get; Get
//     then a ModRevision transaction; a Value transaction);
//   - via=backend: the etcdkv.Backend method;
//   - via=store: the shardkv.Store Context method of a store whose backend
//     it is (its watch stream running, as it always does);
//   - via=nowatch: the same, on a store whose backend hides its Watch, so
//     that no watch stream runs: what store costs beyond it is the stream's;
//   - via=local: the same Context method of a local store, for the cost
//     of cluster mode itself.
//
// Besides ns/op it reports the latency's p50 and p99 in microseconds. The
// README's cluster table comes from docs/bench/etcd.sh, which runs it.
func BenchmarkEtcd(b *testing.B) {
	srv := startEtcd(b)
	cli := srv.Client(b)
	ctx := context.Background()
	backend := New(cli, WithNamespace("bench/backend/"))
	store := shardkv.New(shardkv.WithBackend(New(cli, WithNamespace("bench/store/"))))
	// A Backend that is not a WatchBackend: the store runs no watch.
	nowatch := shardkv.New(shardkv.WithBackend(struct{ shardkv.Backend }{New(cli, WithNamespace("bench/nowatch/"))}))
	local := shardkv.New()
	b.Cleanup(func() { _ = store.Close(); _ = nowatch.Close(); _ = local.Close() })
	const rawNS = "bench/raw/"

	key := func(i int) string { return "k" + strconv.Itoa(i%benchKeys) }
	val := []byte("0123456789012345678901234567890123456789012345678901234567890123") // 64 bytes
	for i := range benchKeys {                                                        // every key present, for Get and Delete's first round
		k := key(i)
		if _, err := cli.Put(ctx, rawNS+k, string(val)); err != nil {
			b.Fatal(err)
		}
		for _, s := range []*shardkv.Store{store, nowatch, local} {
			if err := s.SetContext(ctx, k, val); err != nil {
				b.Fatal(err)
			}
		}
		if err := backend.Set(ctx, k, val); err != nil {
			b.Fatal(err)
		}
	}

	// casNext[via][key] is the value the key's next CompareAndSwap writes:
	// each swap is from the value the previous one wrote (0: absent).
	casNext := map[string][]int{}
	casFrom := func(via string, i int) (expected, next []byte) {
		n := casNext[via]
		if n == nil {
			n = make([]int, benchKeys)
			casNext[via] = n
		}
		j := i % benchKeys
		if n[j] > 0 {
			expected = []byte(strconv.Itoa(n[j]))
		}
		n[j]++
		return expected, []byte(strconv.Itoa(n[j]))
	}

	type impl func(ctx context.Context, i int) error
	type op struct {
		name                                string
		raw, backend, store, nowatch, local impl
	}
	onStore := func(s *shardkv.Store, via string) map[string]impl {
		return map[string]impl{
			"Get":        func(ctx context.Context, i int) error { _, _, err := s.GetContext(ctx, key(i)); return err },
			"Set":        func(ctx context.Context, i int) error { return s.SetContext(ctx, key(i), val) },
			"SetWithTTL": func(ctx context.Context, i int) error { return s.SetWithTTLContext(ctx, key(i), val, time.Minute) },
			"Exists":     func(ctx context.Context, i int) error { _, err := s.ExistsContext(ctx, key(i)); return err },
			"Delete":     func(ctx context.Context, i int) error { _, err := s.DeleteContext(ctx, key(i)); return err },
			"Increment": func(ctx context.Context, i int) error {
				_, err := s.IncrementContext(ctx, "n"+key(i), 1)
				return err
			},
			"CompareAndSwap": func(ctx context.Context, i int) error {
				old, next := casFrom(via, i)
				ok, err := s.CompareAndSwapContext(ctx, "c"+key(i), old, next)
				if err == nil && !ok {
					err = fmt.Errorf("CompareAndSwap of c%s from %q failed", key(i), old)
				}
				return err
			},
		}
	}
	st, nw, lo := onStore(store, "store"), onStore(nowatch, "nowatch"), onStore(local, "local")
	ops := []op{
		{name: "Get",
			raw:     func(ctx context.Context, i int) error { _, err := cli.Get(ctx, rawNS+key(i)); return err },
			backend: func(ctx context.Context, i int) error { _, _, err := backend.Get(ctx, key(i)); return err }},
		{name: "Exists",
			raw: func(ctx context.Context, i int) error {
				_, err := cli.Get(ctx, rawNS+key(i), clientv3.WithCountOnly())
				return err
			},
			backend: func(ctx context.Context, i int) error { _, err := backend.Exists(ctx, key(i)); return err }},
		{name: "Set",
			raw:     func(ctx context.Context, i int) error { _, err := cli.Put(ctx, rawNS+key(i), string(val)); return err },
			backend: func(ctx context.Context, i int) error { return backend.Set(ctx, key(i), val) }},
		{name: "SetWithTTL",
			raw: func(ctx context.Context, i int) error {
				l, err := cli.Grant(ctx, 60)
				if err == nil {
					_, err = cli.Put(ctx, rawNS+key(i), string(val), clientv3.WithLease(l.ID))
				}
				return err
			},
			backend: func(ctx context.Context, i int) error { return backend.SetWithTTL(ctx, key(i), val, time.Minute) }},
		{name: "Delete",
			raw:     func(ctx context.Context, i int) error { _, err := cli.Delete(ctx, rawNS+key(i)); return err },
			backend: func(ctx context.Context, i int) error { _, err := backend.Delete(ctx, key(i)); return err }},
		{name: "Increment",
			raw: func(ctx context.Context, i int) error {
				k := rawNS + "n" + key(i)
				for {
					resp, err := cli.Get(ctx, k)
					if err != nil {
						return err
					}
					var cur, rev int64
					put := clientv3.OpPut(k, "1") // new: no lease to keep
					if len(resp.Kvs) > 0 {
						cur, _ = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
						rev = resp.Kvs[0].ModRevision
						put = clientv3.OpPut(k, strconv.FormatInt(cur+1, 10), clientv3.WithIgnoreLease())
					}
					tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).Then(put).Commit()
					if err != nil || tr.Succeeded {
						return err
					}
				}
			},
			backend: func(ctx context.Context, i int) error { _, err := backend.Increment(ctx, "n"+key(i), 1); return err }},
		{name: "CompareAndSwap",
			raw: func(ctx context.Context, i int) error {
				k := rawNS + "c" + key(i)
				old, next := casFrom("raw", i)
				cmp := clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
				if old != nil {
					cmp = clientv3.Compare(clientv3.Value(k), "=", string(old))
				}
				tr, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(k, string(next))).Commit()
				if err == nil && !tr.Succeeded {
					err = fmt.Errorf("raw CompareAndSwap of %s from %q failed", k, old)
				}
				return err
			},
			backend: func(ctx context.Context, i int) error {
				old, next := casFrom("backend", i)
				ok, err := backend.CompareAndSwap(ctx, "c"+key(i), old, next)
				if err == nil && !ok {
					err = fmt.Errorf("backend CompareAndSwap of c%s from %q failed", key(i), old)
				}
				return err
			}},
	}
	for _, o := range ops {
		o.store, o.nowatch, o.local = st[o.name], nw[o.name], lo[o.name]
		for _, v := range []struct {
			via string
			fn  impl
		}{{"raw", o.raw}, {"backend", o.backend}, {"store", o.store}, {"nowatch", o.nowatch}, {"local", o.local}} {
			b.Run("op="+o.name+"/via="+v.via, func(b *testing.B) { measure(b, v.fn) })
		}
	}
}

// measure runs fn b.N times, one call at a time, and reports the latency's
// p50 and p99 besides ns/op.
func measure(b *testing.B, fn func(context.Context, int) error) {
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := fn(ctx, i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e3 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
