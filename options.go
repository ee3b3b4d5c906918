package shardkv

import (
	"math/bits"
	"runtime"
)

// Limits and sizes a new [Store] gets unless an [Option] says otherwise.
const (
	DefaultMaxValueSize  = 1 << 20 // bytes, as the reference
	DefaultMaxKeys       = 10000   // as the reference
	DefaultWatchCapacity = 1024    // events a subscriber may fall behind
)

// maxShards bounds WithShards.
const maxShards = 1 << 16

// Option configures a [Store] in [New].
type Option func(*options)

type options struct {
	maxValueSize  int
	maxKeys       int
	shards        int
	watchCapacity int
	backend       Backend
	validate      func(string) error // nil: WithBinaryKeys
	maxKeyLen     int64              // WithBinaryKeys' limit
	noReaper      bool               // tests and benchmarks only: expired entries wait for an operation or CleanExpired
	onQuotaRetry  func()             // tests only: called when a write found the quota full, before it reclaims and retries
	tableSlots    int                // tests only: the table size at which tables split, a power of two in [minTableSlots, maxTableSlots]
}

func defaultOptions() options {
	return options{
		maxValueSize:  DefaultMaxValueSize,
		maxKeys:       DefaultMaxKeys,
		shards:        defaultShards(),
		watchCapacity: DefaultWatchCapacity,
		validate:      ValidateKey,
		tableSlots:    maxTableSlots,
	}
}

// defaultShards is 16 shards a P, at least 64: enough stripes that two
// goroutines rarely want the same lock, few enough that a scan of every
// shard (ListKeys, the reaper's look at each shard's due tick) stays cheap.
func defaultShards() int {
	return max(64, ceilPow2(16*runtime.GOMAXPROCS(0)))
}

func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// WithMaxValueSize sets the longest value, in bytes, that Set, SetWithTTL
// and CompareAndSwap accept. It is clamped to [0, 4 GiB - 1], the longest a
// record can hold.
func WithMaxValueSize(n int) Option {
	return func(o *options) { o.maxValueSize = clampValueSize(n) }
}

// clampValueSize keeps a value-size limit within what a record's 32-bit
// length holds.
func clampValueSize(n int) int { return int(min(max(int64(n), 0), maxRecordLen)) }

// WithMaxKeys sets the most entries the store holds. A negative n is taken
// as 0 (no key can be created).
func WithMaxKeys(n int) Option {
	return func(o *options) { o.maxKeys = max(n, 0) }
}

// WithShards sets the number of lock stripes, rounded up to a power of two
// and clamped to [1, 65536]. The default is 16 per GOMAXPROCS, at least 64.
func WithShards(n int) Option {
	return func(o *options) { o.shards = ceilPow2(min(max(n, 1), maxShards)) }
}

// WithBackend puts the store in cluster mode: the Context methods delegate
// to b. The other methods keep using the local store. A nil b leaves the
// store local.
func WithBackend(b Backend) Option {
	return func(o *options) { o.backend = b }
}

// maxWatchCapacity bounds WithWatchCapacity: the ring's slots are allocated
// up front, 8 bytes each.
const maxWatchCapacity = 1 << 24

// WithWatchCapacity sets how many events a subscriber may fall behind before
// it is told it lagged. It is clamped to [1, 16777216].
func WithWatchCapacity(n int) Option {
	return func(o *options) { o.watchCapacity = min(max(n, 1), maxWatchCapacity) }
}

// WithKeyValidator replaces [ValidateKey] as the rule keys must follow. The
// store wraps fn's error so that errors.Is(err, ErrInvalidKey) holds. A nil
// fn restores ValidateKey. fn must be a pure function of the key: reads call
// it only for a key the store holds no entry for (live or expired), since a
// stored key has already passed it.
//
// fn is called with a copy of the key, one allocation a call (every write,
// and a read of a key the store does not hold), so that the store never
// lets a caller's key escape: a key of up to 32 bytes converted for the
// call, as in s.Get(string(b)), is then not allocated (Go keeps such a
// conversion on the stack; a longer one allocates whatever the callee).
// ValidateKey itself and [WithBinaryKeys] are checked without the copy.
func WithKeyValidator(fn func(key string) error) Option {
	return func(o *options) {
		if fn == nil {
			fn = ValidateKey
		}
		o.validate = fn
	}
}

// WithBinaryKeys replaces [ValidateKey] with Redis' rule: a key is any
// bytes, the empty key included, at most maxLen bytes long (clamped to
// [0, 4 GiB - 1], the longest a record holds). Its error wraps
// [ErrInvalidKey]. The store checks it itself, with no copy of the key
// (see WithKeyValidator).
func WithBinaryKeys(maxLen int) Option {
	return func(o *options) {
		o.validate = nil
		o.maxKeyLen = min(max(int64(maxLen), 0), maxRecordLen)
	}
}
