package stores

import (
	"context"
	"errors"
	"time"

	"github.com/shardkv/shardkv"
)

func init() {
	register(Spec{
		Name:  "shardkv",
		Group: "shardkv",
		Note:  "shardkv.New() (WithMaxKeys(n) when n > the default 10000); Get returns a copy",
		Caps:  TTL | Increment | CAS | List | Watch,
		New:   newShardkv,
	})
	register(Spec{
		Name:            "shardkv-view",
		Group:           "shardkv",
		Note:            "the shardkv instance read with View (no copy)",
		Caps:            TTL | Increment | CAS | List | Watch,
		Wrap:            func(b Store) Store { return &shardkvView{b.(*shardkvStore).withName("shardkv-view")} },
		ReadOnlyVariant: true,
	})
	register(Spec{
		Name:            "shardkv-append",
		Group:           "shardkv",
		Note:            "the shardkv instance read with AppendValue into a buffer each goroutine reuses",
		Caps:            TTL | Increment | CAS | List | Watch,
		Wrap:            func(b Store) Store { return &shardkvAppend{b.(*shardkvStore).withName("shardkv-append")} },
		ReadOnlyVariant: true,
	})
}

// Quota is the key quota the quota-enforcing stores get for a workload of
// n keys: the reference's default (10000) when that is enough, else n.
// The workloads never create keys beyond their n (counters and CAS keys are
// taken from the key set).
func Quota(n int) int { return max(shardkv.DefaultMaxKeys, n) }

func newShardkv(cfg Config) (Store, error) {
	var s *shardkv.Store
	if q := Quota(cfg.Keys); q == shardkv.DefaultMaxKeys {
		s = shardkv.New()
	} else {
		s = shardkv.New(shardkv.WithMaxKeys(q))
	}
	return &shardkvStore{named: named{"shardkv", TTL | Increment | CAS | List | Watch}, s: s}, nil
}

type shardkvStore struct {
	named
	s *shardkv.Store
}

// Shardkv returns the *shardkv.Store behind a shardkv row, for benchmarks
// that call it directly.
func Shardkv(s Store) (*shardkv.Store, bool) {
	switch t := s.(type) {
	case *shardkvStore:
		return t.s, true
	case *shardkvView:
		return t.s, true
	case *shardkvAppend:
		return t.s, true
	}
	return nil, false
}

func (a *shardkvStore) withName(name string) *shardkvStore {
	return &shardkvStore{named: named{name, a.caps}, s: a.s}
}

func (a *shardkvStore) Get(key string) ([]byte, bool) {
	v, ok, _ := a.s.Get(key)
	return v, ok
}

func (a *shardkvStore) Set(key string, value []byte) bool { return a.s.Set(key, value) == nil }

func (a *shardkvStore) SetWithTTL(key string, value []byte, ttl time.Duration) bool {
	return a.s.SetWithTTL(key, value, ttl) == nil
}

func (a *shardkvStore) Increment(key string, delta int64) (int64, bool) {
	n, err := a.s.Increment(key, delta)
	return n, err == nil
}

func (a *shardkvStore) CompareAndSwap(key string, expected, value []byte) bool {
	ok, _ := a.s.CompareAndSwap(key, expected, value)
	return ok
}

func (a *shardkvStore) ListKeys(prefix string) []string {
	keys, _ := a.s.ListKeys(prefix)
	return keys
}

func (a *shardkvStore) Len() int { return a.s.Len() }
func (a *shardkvStore) Close()   { a.s.Close() }

func (a *shardkvStore) Subscribe() Subscription { return shardkvSub{a.s.Subscribe()} }

type shardkvSub struct{ sub *shardkv.Subscription }

func (s shardkvSub) Next(ctx context.Context) (uint64, error) {
	_, err := s.sub.Recv(ctx)
	var lag *shardkv.LaggedError
	if errors.As(err, &lag) {
		return lag.Missed, nil
	}
	return 0, err
}

func (s shardkvSub) Close() { s.sub.Close() }

// shardkvView reads with View: the value is lent, not copied.
type shardkvView struct{ *shardkvStore }

func (a *shardkvView) Get(key string) ([]byte, bool) {
	var out []byte
	ok, _ := a.s.View(key, func(v []byte) { out = v })
	return out, ok
}

func (a *shardkvView) NewReader() ReadFunc {
	var sink byte
	read := func(v []byte) {
		if len(v) > 0 {
			sink ^= v[0]
		}
	}
	return func(key string) bool {
		ok, _ := a.s.View(key, read)
		return ok
	}
}

// shardkvAppend reads with AppendValue into a buffer its goroutine reuses.
type shardkvAppend struct{ *shardkvStore }

func (a *shardkvAppend) Get(key string) ([]byte, bool) {
	v, ok, _ := a.s.AppendValue(nil, key)
	return v, ok
}

func (a *shardkvAppend) NewReader() ReadFunc {
	buf := make([]byte, 0, 256)
	var sink byte
	return func(key string) bool {
		var ok bool
		buf, ok, _ = a.s.AppendValue(buf[:0], key)
		if ok && len(buf) > 0 {
			sink ^= buf[0]
		}
		return ok
	}
}
