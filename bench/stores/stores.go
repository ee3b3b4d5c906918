// Package stores puts shardkv and the stores it is measured against behind
// one small interface, so that every workload runs the same code on each.
//
// Every contender is configured as its users would configure it for the
// workload (see each [Spec]'s Note). An operation a store cannot do is
// declared absent in its [Caps]: the workloads that need it are skipped and
// reported as "n/a", never emulated with something else.
package stores

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Caps says which optional operations a store supports.
type Caps uint32

// The capabilities a workload may need.
const (
	// TTL: per-key TTLs with millisecond precision (SetWithTTL).
	TTL Caps = 1 << iota
	// Increment: an atomic read-modify-write add on a decimal value.
	Increment
	// CAS: an atomic compare-and-swap of a value.
	CAS
	// List: listing the keys that start with a prefix.
	List
	// Watch: subscribing to every write (the store implements [Watcher]).
	Watch
)

var capNames = []struct {
	c    Caps
	name string
}{{TTL, "ttl"}, {Increment, "increment"}, {CAS, "cas"}, {List, "list"}, {Watch, "watch"}}

// String lists the capabilities, e.g. "ttl,cas".
func (c Caps) String() string {
	var names []string
	for _, n := range capNames {
		if c&n.c != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// Has reports whether c includes every capability in need.
func (c Caps) Has(need Caps) bool { return c&need == need }

// ErrUnsupported is what a store panics with when asked for an operation
// its Caps do not include: a workload bug, never a result.
var ErrUnsupported = errors.New("stores: operation not supported by this store")

// Store is what every contender implements. Values passed to Set may be
// kept by the store (the peers do) and must not be modified afterwards;
// values returned by Get must not be modified.
type Store interface {
	// Name is the row label, e.g. "shardkv" or "reference-nosweep".
	Name() string
	// Caps lists the optional operations the store supports.
	Caps() Caps
	// Get returns key's value and whether it is present and unexpired.
	Get(key string) ([]byte, bool)
	// Set stores value under key without a TTL and reports whether the
	// store took the write (ristretto may drop it; a quota may refuse it).
	Set(key string, value []byte) bool
	// SetWithTTL is Set with a time to live (needs TTL).
	SetWithTTL(key string, value []byte, ttl time.Duration) bool
	// Increment adds delta to the decimal integer under key, a missing key
	// counting as 0, and returns the sum (needs Increment).
	Increment(key string, delta int64) (int64, bool)
	// CompareAndSwap stores value under key if the current value equals
	// expected (nil: the key must be absent) (needs CAS).
	CompareAndSwap(key string, expected, value []byte) bool
	// ListKeys returns the keys starting with prefix (needs List).
	ListKeys(prefix string) []string
	// Len is the number of entries held, as the store counts them.
	Len() int
	// Close stops the store's goroutines.
	Close()
}

// Watcher is implemented by stores with the Watch capability.
type Watcher interface {
	Subscribe() Subscription
}

// Subscription receives a store's events.
type Subscription interface {
	// Next blocks for the next event. missed > 0 reports events lost
	// because the subscriber fell behind; err is non-nil once ctx is done
	// or the subscription or store closed.
	Next(ctx context.Context) (missed uint64, err error)
	Close()
}

// ReaderMaker is implemented by stores whose reads can reuse per-goroutine
// state (a buffer); [NewReader] uses it.
type ReaderMaker interface {
	NewReader() ReadFunc
}

// ReadFunc reads key's value, touching its first byte as a caller would,
// and reports whether the key was found. One ReadFunc serves one goroutine.
type ReadFunc func(key string) bool

// NewReader returns a ReadFunc for one goroutine: the store's own if it is
// a [ReaderMaker], else one that calls Get and reads the value's first byte.
func NewReader(s Store) ReadFunc {
	if m, ok := s.(ReaderMaker); ok {
		return m.NewReader()
	}
	var sink byte
	return func(key string) bool {
		v, ok := s.Get(key)
		if ok && len(v) > 0 {
			sink ^= v[0]
		}
		return ok
	}
}

// Config sizes a store for a workload.
type Config struct {
	// Keys is the number of keys the workloads use; stores with a quota or
	// a capacity get room for all of them.
	Keys int
	// ValueSize is the length of the values written.
	ValueSize int
}

// Spec describes one row of the comparison.
type Spec struct {
	Name string
	// Group names the stores that share one instance: a variant (View
	// reads, the reference without its sweep) wraps the instance its
	// group's base builds, so the prefill is paid once.
	Group string
	// Note says how the store is configured, for the report.
	Note string
	// Caps are the capabilities of the row.
	Caps Caps
	// New builds the group's base instance; nil for a variant.
	New func(cfg Config) (Store, error)
	// Wrap turns the group's base instance into this row; nil for a base.
	Wrap func(base Store) Store
	// ReadOnlyVariant marks a variant that differs from its base only in
	// how it reads: it runs only the workloads that read.
	ReadOnlyVariant bool
}

// IsVariant reports whether the row wraps its group's base instance.
func (s Spec) IsVariant() bool { return s.Wrap != nil }

// All is every store, in report order.
func All() []Spec { return slices.Clone(registry) }

var registry []Spec

// reportOrder is the order of the rows: shardkv and its variants, the
// reference, the TTL-capable peers, the no-TTL caches, the upper bounds.
var reportOrder = []string{
	"shardkv", "shardkv-view", "shardkv-append", "reference", "reference-nosweep",
	"otter", "ristretto", "go-cache", "ttlcache", "bigcache", "freecache", "xsync", "syncmap",
}

func register(s Spec) {
	registry = append(registry, s)
	slices.SortStableFunc(registry, func(a, b Spec) int { return rank(a.Name) - rank(b.Name) })
}

func rank(name string) int {
	if i := slices.Index(reportOrder, name); i >= 0 {
		return i
	}
	return len(reportOrder)
}

// Lookup returns the named specs, in report order, or an error naming an
// unknown store. "all" or an empty list selects every store.
func Lookup(names []string) ([]Spec, error) {
	if len(names) == 0 || (len(names) == 1 && names[0] == "all") {
		return All(), nil
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.ContainsFunc(registry, func(s Spec) bool { return s.Name == n }) {
			return nil, fmt.Errorf("unknown store %q (known: %s)", n, strings.Join(Names(), ", "))
		}
		want[n] = true
	}
	var out []Spec
	for _, s := range registry {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// Names lists every store name in report order.
func Names() []string {
	var out []string
	for _, s := range registry {
		out = append(out, s.Name)
	}
	return out
}

// Base returns the spec that builds the instance of group.
func Base(group string) (Spec, bool) {
	for _, s := range registry {
		if s.Group == group && s.New != nil {
			return s, true
		}
	}
	return Spec{}, false
}

// unsupported gives a store panicking versions of the optional operations.
type unsupported struct{}

func (unsupported) SetWithTTL(string, []byte, time.Duration) bool { panic(ErrUnsupported) }
func (unsupported) Increment(string, int64) (int64, bool)         { panic(ErrUnsupported) }
func (unsupported) CompareAndSwap(string, []byte, []byte) bool    { panic(ErrUnsupported) }
func (unsupported) ListKeys(string) []string                      { panic(ErrUnsupported) }

// named is embedded by every adapter for Name and Caps.
type named struct {
	name string
	caps Caps
}

func (n named) Name() string { return n.name }
func (n named) Caps() Caps   { return n.caps }

// wrapped gives a variant its own name over its base's methods.
type wrapped struct {
	Store
	name string
}

func (w wrapped) Name() string { return w.name }
