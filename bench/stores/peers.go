package stores

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/allegro/bigcache/v3"
	"github.com/coocood/freecache"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/jellydator/ttlcache/v3"
	"github.com/maypok86/otter/v2"
	gocache "github.com/patrickmn/go-cache"
	"github.com/puzpuzpuz/xsync/v3"
)

func init() {
	register(Spec{
		Name:  "otter",
		Group: "otter",
		Note: "otter/v2: MaximumSize 2n (never reached), ExpiryCalculator ExpiryWritingFunc reading the TTL " +
			"stored beside the value (one Set a write); Compute for Increment and CAS; All for listing",
		Caps: TTL | Increment | CAS | List,
		New:  newOtter,
	})
	register(Spec{
		Name:  "ristretto",
		Group: "ristretto",
		Note: "ristretto/v2: NumCounters 10n, MaxCost n, cost 1, IgnoreInternalCost, BufferItems 64, " +
			"Wait after the prefill; Sets may be dropped (counted); no RMW or iteration",
		Caps: TTL,
		New:  newRistretto,
	})
	register(Spec{
		Name:  "go-cache",
		Group: "go-cache",
		Note: "patrickmn/go-cache: New(NoExpiration, 1 min janitor), per-key TTL in Set, Items for listing; " +
			"its Increment works on int64 values only, so n/a",
		Caps: TTL | List,
		New:  newGoCache,
	})
	register(Spec{
		Name:  "ttlcache",
		Group: "ttlcache",
		Note:  "jellydator/ttlcache/v3: NoTTL default, WithDisableTouchOnHit (absolute TTLs, as shardkv), Start()ed cleaner, Range for listing",
		Caps:  TTL | List,
		New:   newTTLCache,
	})
	register(Spec{
		Name:  "bigcache",
		Group: "bigcache",
		Note: "allegro/bigcache/v3: 1024 shards, one global LifeWindow (10 min, no per-key TTL), " +
			"MaxEntriesInWindow n, MaxEntrySize 100; Get copies",
		Caps: 0,
		New:  newBigCache,
	})
	register(Spec{
		Name:  "freecache",
		Group: "freecache",
		Note: "coocood/freecache: 128n bytes (min 512 KiB); TTLs in whole seconds only (so no ms TTL workload); " +
			"Get copies; Update for Increment and CAS",
		Caps: Increment | CAS,
		New:  newFreeCache,
	})
	register(Spec{
		Name:  "xsync",
		Group: "xsync",
		Note:  "puzpuzpuz/xsync/v3 MapOf[string, []byte]: upper bound, no TTL, quota or copying; Compute for Increment and CAS",
		Caps:  Increment | CAS | List,
		New:   newXsync,
	})
	register(Spec{
		Name:  "syncmap",
		Group: "syncmap",
		Note:  "sync.Map of []byte: upper bound, no TTL, quota or copying",
		Caps:  List,
		New:   newSyncMap,
	})
}

// parseCounter reads a decimal counter; a missing key counts as 0.
func parseCounter(v []byte, found bool) (int64, bool) {
	if !found {
		return 0, true
	}
	n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(v), len(v)), 10, 64)
	return n, err == nil
}

func addSat(a, b int64) int64 {
	c := a + b
	if (c > a) != (b > 0) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return c
}

func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// ---- otter ----

type otterVal struct {
	v   []byte
	ttl time.Duration // 0: none
}

type otterStore struct {
	named
	c *otter.Cache[string, otterVal]
}

func newOtter(cfg Config) (Store, error) {
	c, err := otter.New(&otter.Options[string, otterVal]{
		MaximumSize: 2 * max(cfg.Keys, 1024),
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, otterVal]) time.Duration {
			if e.Value.ttl > 0 {
				return e.Value.ttl
			}
			return math.MaxInt64
		}),
	})
	if err != nil {
		return nil, err
	}
	return &otterStore{named{"otter", TTL | Increment | CAS | List}, c}, nil
}

func (a *otterStore) Get(key string) ([]byte, bool) {
	v, ok := a.c.GetIfPresent(key)
	return v.v, ok
}

func (a *otterStore) Set(key string, value []byte) bool {
	a.c.Set(key, otterVal{v: value})
	return true
}

func (a *otterStore) SetWithTTL(key string, value []byte, ttl time.Duration) bool {
	a.c.Set(key, otterVal{v: value, ttl: max(ttl, 1)})
	return true
}

func (a *otterStore) Increment(key string, delta int64) (int64, bool) {
	var n int64
	ok := true
	a.c.Compute(key, func(old otterVal, found bool) (otterVal, otter.ComputeOp) {
		cur, good := parseCounter(old.v, found)
		if !good {
			ok = false
			return old, otter.CancelOp
		}
		n = addSat(cur, delta)
		return otterVal{v: strconv.AppendInt(nil, n, 10), ttl: old.ttl}, otter.WriteOp
	})
	return n, ok
}

func (a *otterStore) CompareAndSwap(key string, expected, value []byte) bool {
	swapped := false
	a.c.Compute(key, func(old otterVal, found bool) (otterVal, otter.ComputeOp) {
		if (expected == nil && !found) || (expected != nil && found && bytes.Equal(old.v, expected)) {
			swapped = true
			return otterVal{v: value}, otter.WriteOp
		}
		return old, otter.CancelOp
	})
	return swapped
}

func (a *otterStore) ListKeys(prefix string) []string {
	var keys []string
	for k := range a.c.Keys() {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	return keys
}

func (a *otterStore) Len() int { return a.c.EstimatedSize() }
func (a *otterStore) Close()   { a.c.StopAllGoroutines() }

// ---- ristretto ----

type ristrettoStore struct {
	named
	unsupported
	c *ristretto.Cache[string, []byte]
}

func newRistretto(cfg Config) (Store, error) {
	n := max(cfg.Keys, 1024)
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		NumCounters:        10 * int64(n),
		MaxCost:            int64(n),
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, err
	}
	return &ristrettoStore{named: named{"ristretto", TTL}, c: c}, nil
}

func (a *ristrettoStore) Get(key string) ([]byte, bool) { return a.c.Get(key) }
func (a *ristrettoStore) Set(key string, value []byte) bool {
	return a.c.Set(key, value, 1)
}

func (a *ristrettoStore) SetWithTTL(key string, value []byte, ttl time.Duration) bool {
	return a.c.SetWithTTL(key, value, 1, max(ttl, 1))
}

// Wait blocks until buffered Sets are applied (ristretto's Wait).
func (a *ristrettoStore) Wait() { a.c.Wait() }

// Len counts the values held (ristretto keeps no count without Metrics).
func (a *ristrettoStore) Len() int {
	n := 0
	a.c.IterValues(func([]byte) bool { n++; return false })
	return n
}
func (a *ristrettoStore) Close() { a.c.Close() }

// Waiter is implemented by stores that apply writes asynchronously
// (ristretto): the prefill calls Wait before measuring.
type Waiter interface{ Wait() }

// ---- go-cache ----

type goCacheStore struct {
	named
	unsupported
	c *gocache.Cache
}

func newGoCache(cfg Config) (Store, error) {
	return &goCacheStore{named: named{"go-cache", TTL | List}, c: gocache.New(gocache.NoExpiration, time.Minute)}, nil
}

func (a *goCacheStore) Get(key string) ([]byte, bool) {
	v, ok := a.c.Get(key)
	if !ok {
		return nil, false
	}
	b, _ := v.([]byte)
	return b, true
}

func (a *goCacheStore) Set(key string, value []byte) bool {
	a.c.Set(key, value, gocache.NoExpiration)
	return true
}

func (a *goCacheStore) SetWithTTL(key string, value []byte, ttl time.Duration) bool {
	a.c.Set(key, value, max(ttl, 1))
	return true
}

func (a *goCacheStore) ListKeys(prefix string) []string {
	var keys []string
	for k := range a.c.Items() {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	return keys
}

func (a *goCacheStore) Len() int { return a.c.ItemCount() }
func (a *goCacheStore) Close()   {} // the janitor stops when the cache is collected

// ---- ttlcache ----

type ttlCacheStore struct {
	named
	unsupported
	c *ttlcache.Cache[string, []byte]
}

func newTTLCache(cfg Config) (Store, error) {
	c := ttlcache.New[string, []byte](
		ttlcache.WithTTL[string, []byte](ttlcache.NoTTL),
		ttlcache.WithDisableTouchOnHit[string, []byte](),
	)
	go c.Start()
	return &ttlCacheStore{named: named{"ttlcache", TTL | List}, c: c}, nil
}

func (a *ttlCacheStore) Get(key string) ([]byte, bool) {
	it := a.c.Get(key)
	if it == nil {
		return nil, false
	}
	return it.Value(), true
}

func (a *ttlCacheStore) Set(key string, value []byte) bool {
	a.c.Set(key, value, ttlcache.NoTTL)
	return true
}

func (a *ttlCacheStore) SetWithTTL(key string, value []byte, ttl time.Duration) bool {
	a.c.Set(key, value, max(ttl, 1))
	return true
}

func (a *ttlCacheStore) ListKeys(prefix string) []string {
	var keys []string
	a.c.Range(func(it *ttlcache.Item[string, []byte]) bool {
		if k := it.Key(); strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
		return true
	})
	return keys
}

func (a *ttlCacheStore) Len() int { return a.c.Len() }
func (a *ttlCacheStore) Close()   { a.c.Stop() }

// ---- bigcache ----

type bigCacheStore struct {
	named
	unsupported
	c      *bigcache.BigCache
	cancel context.CancelFunc
}

func newBigCache(cfg Config) (Store, error) {
	conf := bigcache.DefaultConfig(10 * time.Minute)
	conf.MaxEntriesInWindow = max(cfg.Keys, 1024)
	conf.MaxEntrySize = 100
	conf.Verbose = false
	ctx, cancel := context.WithCancel(context.Background())
	c, err := bigcache.New(ctx, conf)
	if err != nil {
		cancel()
		return nil, err
	}
	return &bigCacheStore{named: named{"bigcache", 0}, c: c, cancel: cancel}, nil
}

func (a *bigCacheStore) Get(key string) ([]byte, bool) {
	v, err := a.c.Get(key)
	return v, err == nil
}

func (a *bigCacheStore) Set(key string, value []byte) bool { return a.c.Set(key, value) == nil }
func (a *bigCacheStore) Len() int                          { return a.c.Len() }
func (a *bigCacheStore) Close() {
	a.c.Close()
	a.cancel()
}

// ---- freecache ----

type freeCacheStore struct {
	named
	unsupported
	c *freecache.Cache
}

func newFreeCache(cfg Config) (Store, error) {
	size := max(128*cfg.Keys, 512<<10)
	return &freeCacheStore{named: named{"freecache", Increment | CAS}, c: freecache.NewCache(size)}, nil
}

func (a *freeCacheStore) Get(key string) ([]byte, bool) {
	v, err := a.c.Get(bytesOf(key))
	return v, err == nil
}

func (a *freeCacheStore) Set(key string, value []byte) bool {
	return a.c.Set(bytesOf(key), value, 0) == nil
}

func (a *freeCacheStore) Increment(key string, delta int64) (int64, bool) {
	var n int64
	ok := true
	_, _, err := a.c.Update(bytesOf(key), func(old []byte, found bool) ([]byte, bool, int) {
		cur, good := parseCounter(old, found)
		if !good {
			ok = false
			return nil, false, 0
		}
		n = addSat(cur, delta)
		return strconv.AppendInt(nil, n, 10), true, 0
	})
	return n, ok && err == nil
}

func (a *freeCacheStore) CompareAndSwap(key string, expected, value []byte) bool {
	swapped := false
	_, _, err := a.c.Update(bytesOf(key), func(old []byte, found bool) ([]byte, bool, int) {
		if (expected == nil && !found) || (expected != nil && found && bytes.Equal(old, expected)) {
			swapped = true
			return value, true, 0
		}
		return nil, false, 0
	})
	return swapped && err == nil
}

func (a *freeCacheStore) Len() int { return int(a.c.EntryCount()) }
func (a *freeCacheStore) Close()   {}

// ---- xsync MapOf ----

type xsyncStore struct {
	named
	unsupported
	m *xsync.MapOf[string, []byte]
}

func newXsync(cfg Config) (Store, error) {
	return &xsyncStore{named: named{"xsync", Increment | CAS | List}, m: xsync.NewMapOf[string, []byte]()}, nil
}

func (a *xsyncStore) Get(key string) ([]byte, bool) { return a.m.Load(key) }
func (a *xsyncStore) Set(key string, value []byte) bool {
	a.m.Store(key, value)
	return true
}

func (a *xsyncStore) Increment(key string, delta int64) (int64, bool) {
	var n int64
	ok := true
	a.m.Compute(key, func(old []byte, found bool) ([]byte, bool) {
		cur, good := parseCounter(old, found)
		if !good {
			ok = false
			if !found {
				return nil, true // leave absent
			}
			return old, false
		}
		n = addSat(cur, delta)
		return strconv.AppendInt(nil, n, 10), false
	})
	return n, ok
}

func (a *xsyncStore) CompareAndSwap(key string, expected, value []byte) bool {
	swapped := false
	a.m.Compute(key, func(old []byte, found bool) ([]byte, bool) {
		if (expected == nil && !found) || (expected != nil && found && bytes.Equal(old, expected)) {
			swapped = true
			return value, false
		}
		return old, !found // no change; an absent key stays absent
	})
	return swapped
}

func (a *xsyncStore) ListKeys(prefix string) []string {
	var keys []string
	a.m.Range(func(k string, _ []byte) bool {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
		return true
	})
	return keys
}

func (a *xsyncStore) Len() int { return a.m.Size() }
func (a *xsyncStore) Close()   {}

// ---- sync.Map ----

type syncMapStore struct {
	named
	unsupported
	m sync.Map
}

func newSyncMap(cfg Config) (Store, error) {
	return &syncMapStore{named: named{"syncmap", List}}, nil
}

func (a *syncMapStore) Get(key string) ([]byte, bool) {
	v, ok := a.m.Load(key)
	if !ok {
		return nil, false
	}
	return v.([]byte), true
}

func (a *syncMapStore) Set(key string, value []byte) bool {
	a.m.Store(key, value)
	return true
}

func (a *syncMapStore) ListKeys(prefix string) []string {
	var keys []string
	a.m.Range(func(k, _ any) bool {
		if s := k.(string); strings.HasPrefix(s, prefix) {
			keys = append(keys, s)
		}
		return true
	})
	return keys
}

func (a *syncMapStore) Len() int {
	n := 0
	a.m.Range(func(_, _ any) bool { n++; return true })
	return n
}
func (a *syncMapStore) Close() {}
