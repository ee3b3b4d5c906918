package stores

import (
	"context"
	"errors"
	"time"

	"github.com/shardkv/shardkv/bench/reference"
)

func init() {
	register(Spec{
		Name:  "reference",
		Group: "reference",
		Note: "Go port of shared/reference/kvstore.rs (bench/reference): one RWMutex over a map; " +
			"Get/Exists/ListKeys sweep every entry first; default quota 10000, n when n is larger",
		Caps: TTL | Increment | CAS | List | Watch,
		New: func(cfg Config) (Store, error) {
			var s *reference.Store
			if q := Quota(cfg.Keys); q == reference.DefaultMaxKeys {
				s = reference.New()
			} else {
				s = reference.New(reference.WithMaxKeys(q))
			}
			return &refStore{named{"reference", TTL | Increment | CAS | List | Watch}, s}, nil
		},
	})
	register(Spec{
		Name:  "reference-nosweep",
		Group: "reference",
		Note:  "the reference port without the sweep in Get/Exists/ListKeys: the single lock's cost alone (not the reference's behaviour)",
		Caps:  TTL | Increment | CAS | List | Watch,
		Wrap: func(b Store) Store {
			r := b.(*refStore)
			return &refStore{named{"reference-nosweep", r.caps}, r.s.NoSweepView()}
		},
	})
}

type refStore struct {
	named
	s *reference.Store
}

func (a *refStore) Get(key string) ([]byte, bool) {
	v, ok, _ := a.s.Get(key)
	return v, ok
}

func (a *refStore) Set(key string, value []byte) bool { return a.s.Set(key, value) == nil }

func (a *refStore) SetWithTTL(key string, value []byte, ttl time.Duration) bool {
	return a.s.SetWithTTL(key, value, ttl) == nil
}

func (a *refStore) Increment(key string, delta int64) (int64, bool) {
	n, err := a.s.Increment(key, delta)
	return n, err == nil
}

func (a *refStore) CompareAndSwap(key string, expected, value []byte) bool {
	ok, _ := a.s.CompareAndSwap(key, expected, value)
	return ok
}

func (a *refStore) ListKeys(prefix string) []string { return a.s.ListKeys(prefix) }
func (a *refStore) Len() int                        { return a.s.Len() }
func (a *refStore) Close()                          {}

func (a *refStore) Subscribe() Subscription { return refSub{a.s.Subscribe()} }

type refSub struct{ sub *reference.Subscription }

func (s refSub) Next(ctx context.Context) (uint64, error) {
	_, err := s.sub.Recv(ctx)
	var lag *reference.LaggedError
	if errors.As(err, &lag) {
		return lag.Missed, nil
	}
	return 0, err
}

func (s refSub) Close() { s.sub.Close() }
