package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"

	"github.com/shardkv/shardkv"
)

// ReservedKey is the key the backend writes beside a Delete of a key that
// has a lease, so that its watch can tell that delete from the lease's
// expiry (see the package comment). It lives in the backend's namespace,
// starts with a NUL byte (so no key [shardkv.ValidateKey] accepts can be
// it), is never listed by ListKeys nor streamed by Watch, and the backend
// refuses to write it for a caller.
const ReservedKey = "\x00etcdkv/mark"

// Marks, the first byte of ReservedKey's value; the rest is the key.
const (
	markDelete = 'd' // a Delete of a key that had a lease
	markExpire = 'x' // a SetWithTTL with a TTL <= 0
)

// maxLeaseSeconds is the longest lease etcd grants (lease.MaxLeaseTTL,
// about 285 years); longer TTLs are clamped to it.
const maxLeaseSeconds = 9_000_000_000

// listPage is how many keys one ListKeys request asks for.
const listPage = 1000

// Increment's backoff between conflicting attempts: a random wait below a
// bound that starts at incrBackoffMin and doubles to incrBackoffMax.
const (
	incrBackoffMin = time.Millisecond
	incrBackoffMax = 64 * time.Millisecond
)

// RequestBytes is the smallest etcd --max-request-bytes (the server's
// limit on one request) with which a CompareAndSwap from one value of
// maxValueSize bytes to another passes: both values, plus 64 KiB for the
// key, which appears twice, and the request's framing. The client's
// MaxCallSendMsgSize must be at least as large, plus gRPC's overhead.
func RequestBytes(maxValueSize int) int {
	return 2*maxValueSize + 64<<10
}

// Backend is a [shardkv.Backend] and [shardkv.WatchBackend] over an etcd v3
// cluster. Make one with [New]. It holds no state of its own beyond its
// configuration, so it is safe for concurrent use, and any number of
// stores (on any number of nodes) may share one namespace.
type Backend struct {
	client  *clientv3.Client
	kv      clientv3.KV // client.KV, in the namespace if any
	ns      string
	readOps []clientv3.OpOption // for Get, Exists, ListKeys
	// validate is the key rule (WithKeyValidator); nil: none.
	validate func(string) error

	testWatcher func() clientv3.Watcher // tests' stand-in for clientv3.NewWatcher
}

var _ shardkv.WatchBackend = (*Backend)(nil)

// Option configures a [Backend] in [New].
type Option func(*Backend)

// WithNamespace keeps the backend's keys under prefix in etcd (with
// go.etcd.io/etcd/client/v3/namespace), so that several stores, or a store
// and other users of the cluster, share one cluster without seeing each
// other's keys. Keys are given and returned without the prefix. The
// default is no prefix: the whole keyspace.
func WithNamespace(prefix string) Option {
	return func(b *Backend) { b.ns = prefix }
}

// WithKeyValidator sets the rule keys must pass, as shardkv.WithKeyValidator
// does for a local store: a key it refuses is not sent to etcd, and the
// call fails with an error that wraps [shardkv.ErrInvalidKey]. The default
// is [shardkv.ValidateKey], the local store's default rule, so that a store
// refuses the same keys in cluster mode as out of it. nil accepts every
// key (binary-safe, as the Redis server wants: it passes
// server.ValidateKey). The empty key and [ReservedKey] are refused
// whatever the rule. fn must be safe for concurrent use.
func WithKeyValidator(fn func(key string) error) Option {
	return func(b *Backend) { b.validate = fn }
}

// WithSerializableReads makes Get, Exists and ListKeys serializable reads:
// answered by whichever member the client talks to from its own copy,
// without a round through the leader. They are faster and still work on a
// member cut off from the leader, but may miss writes acknowledged
// elsewhere (even this node's own, when its client's member lags). By
// default reads are linearizable. Writes are unaffected.
func WithSerializableReads() Option {
	return func(b *Backend) { b.readOps = []clientv3.OpOption{clientv3.WithSerializable()} }
}

// New returns a backend that keeps its data in the etcd cluster client
// talks to. The backend does not own client: close the client after every
// store using the backend is closed.
func New(client *clientv3.Client, opts ...Option) *Backend {
	b := &Backend{client: client, validate: shardkv.ValidateKey}
	for _, o := range opts {
		o(b)
	}
	b.kv = client.KV
	if b.ns != "" {
		b.kv = namespace.NewKV(client.KV, b.ns)
	}
	return b
}

// readOpts returns the read options with extra appended, in a new slice.
func (b *Backend) readOpts(extra ...clientv3.OpOption) []clientv3.OpOption {
	return append(append([]clientv3.OpOption(nil), b.readOps...), extra...)
}

// hidden reports whether key is one the backend keeps from its callers.
func hidden(key string) bool { return key == "" || key == ReservedKey }

// valid applies the key validator: its error wraps shardkv.ErrInvalidKey.
func (b *Backend) valid(key string) error {
	if b.validate == nil {
		return nil
	}
	err := b.validate(key)
	if err == nil || errors.Is(err, shardkv.ErrInvalidKey) {
		return err
	}
	return fmt.Errorf("%w: %w", shardkv.ErrInvalidKey, err)
}

// writable refuses the keys a caller may not write: those the validator
// refuses, the empty key and ReservedKey.
func (b *Backend) writable(key string) error {
	if err := b.valid(key); err != nil {
		return err
	}
	switch key {
	case "":
		return &shardkv.StorageError{Msg: "etcdkv: empty key"}
	case ReservedKey:
		return &shardkv.StorageError{Msg: "etcdkv: the key is reserved"}
	}
	return nil
}

// Get reads key with one range request: linearizable (or serializable,
// with [WithSerializableReads]). A key whose lease has run out but not yet
// been revoked is still found.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := b.valid(key); err != nil {
		return nil, false, err
	}
	if hidden(key) {
		return nil, false, nil
	}
	resp, err := b.kv.Get(ctx, key, b.readOps...)
	if err != nil {
		return nil, false, wrapRead(ctx, "get", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	v := resp.Kvs[0].Value
	if v == nil {
		v = []byte{} // found, and empty
	}
	return v, true, nil
}

// Set stores value under key with one Put that carries no lease, so it
// drops a TTL the key had, as the local Set does. It is atomic.
func (b *Backend) Set(ctx context.Context, key string, value []byte) error {
	if err := b.writable(key); err != nil {
		return err
	}
	if _, err := b.kv.Put(ctx, key, string(value)); err != nil {
		return wrapWrite(ctx, "set", key, err)
	}
	return nil
}

// leaseSeconds is ttl rounded up to whole seconds, clamped to etcd's
// longest lease. The server may grant more (its minimum lease TTL).
func leaseSeconds(ttl time.Duration) int64 {
	secs := ttl / time.Second
	if ttl%time.Second != 0 {
		secs++
	}
	return min(int64(secs), maxLeaseSeconds)
}

// SetWithTTL stores value under key for ttl, rounded up to whole seconds
// (see the package comment for etcd's minimum and the expiry's lateness).
// It makes two requests: a lease grant, then a Put attached to the lease;
// the key is never visible without its TTL, and a lease whose Put failed
// expires by itself, deleting nothing. Each call grants a lease of its own;
// the key's previous lease, if any, is left to expire with no key.
//
// A ttl <= 0 stores nothing visible: one transaction deletes the key and
// writes [ReservedKey]'s expiry mark, so subscribers see an EventExpire if
// the key existed.
func (b *Backend) SetWithTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := b.writable(key); err != nil {
		return err
	}
	if ttl <= 0 {
		_, err := b.kv.Txn(ctx).Then(
			clientv3.OpDelete(key),
			clientv3.OpPut(ReservedKey, string(markExpire)+key),
		).Commit()
		if err != nil {
			return wrapWrite(ctx, "set_with_ttl", key, err)
		}
		return nil
	}
	lease, err := b.client.Grant(ctx, leaseSeconds(ttl))
	if err != nil {
		// A lease granted or not, the key is untouched: no ambiguity.
		return wrapRead(ctx, "set_with_ttl (lease grant)", key, err)
	}
	if _, err := b.kv.Put(ctx, key, string(value), clientv3.WithLease(lease.ID)); err != nil {
		return wrapWrite(ctx, "set_with_ttl", key, err)
	}
	return nil
}

// Delete removes key and reports whether it existed, from the delete's own
// response (its Deleted count), in one transaction: it deletes the key,
// and when the key has a lease it also writes [ReservedKey]'s delete mark,
// so that a watch reports an EventDelete and not an expiry (see the
// package comment). It is atomic.
func (b *Backend) Delete(ctx context.Context, key string) (bool, error) {
	if err := b.writable(key); err != nil {
		return false, err
	}
	resp, err := b.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(key), "=", clientv3.NoLease)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpDelete(key), clientv3.OpPut(ReservedKey, string(markDelete)+key)).
		Commit()
	if err != nil {
		return false, wrapWrite(ctx, "delete", key, err)
	}
	return resp.Responses[0].GetResponseDeleteRange().GetDeleted() > 0, nil
}

// Exists reports whether key is held, with one count-only range request
// (linearizable, or serializable with [WithSerializableReads]).
func (b *Backend) Exists(ctx context.Context, key string) (bool, error) {
	if err := b.valid(key); err != nil {
		return false, err
	}
	if hidden(key) {
		return false, nil
	}
	resp, err := b.kv.Get(ctx, key, b.readOpts(clientv3.WithCountOnly())...)
	if err != nil {
		return false, wrapRead(ctx, "exists", key, err)
	}
	return resp.Count > 0, nil
}

// ListKeys returns the keys that start with prefix, sorted, from keys-only
// range requests of up to 1000 keys each. Every page after the first is
// read at the first one's revision, so the list is one consistent
// snapshot; a compaction between two pages fails the call (with etcd's
// rpctypes.ErrCompacted), as a retry would not give the same snapshot.
func (b *Backend) ListKeys(ctx context.Context, prefix string) ([]string, error) {
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	if from == "" {
		from = "\x00" // the first key there can be: "" itself is refused
	}
	keys := []string{}
	var rev int64
	for {
		opts := b.readOpts(clientv3.WithRange(end), clientv3.WithKeysOnly(), clientv3.WithLimit(listPage))
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := b.kv.Get(ctx, from, opts...)
		if err != nil {
			return nil, wrapRead(ctx, "list_keys", prefix, err)
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			if k := string(kv.Key); !hidden(k) {
				keys = append(keys, k)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return keys, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00" // the next key after the last
	}
}

// Increment adds delta to the decimal integer under key, saturating at the
// int64 limits, and returns the sum. A missing key counts as 0 and becomes
// a key with no lease; a present one keeps its lease (its TTL), as the
// local store keeps its TTL. The stored value must parse with
// strconv.ParseInt(s, 10, 64), else the result is a *[shardkv.StorageError]
// "invalid number: ..." (the local store's messages) and the key is left
// as it is.
//
// It is optimistic: it reads the key, then commits one transaction that
// writes the sum only if the key's ModRevision is still the one read (0:
// still missing). A conflict's transaction returns the key's current
// version in the same response, and Increment tries again after a random
// backoff (below 1 ms, doubling to 64 ms), until it succeeds or ctx ends.
// Each success is applied exactly once. A transaction whose outcome is
// unknown (see [ErrAmbiguous]) is never retried: the error is returned, and
// the increment may or may not have been applied.
func (b *Backend) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	if err := b.writable(key); err != nil {
		return 0, err
	}
	resp, err := b.kv.Get(ctx, key, b.readOps...)
	if err != nil {
		return 0, wrapRead(ctx, "increment", key, err)
	}
	kvs := resp.Kvs
	backoff := incrBackoffMin
	for {
		var rev int64 // the ModRevision to find: 0, missing
		n := delta
		var put clientv3.Op
		if len(kvs) > 0 {
			cur, err := parseNumber(kvs[0].Value)
			if err != nil {
				return 0, err
			}
			rev, n = kvs[0].ModRevision, satAdd(cur, delta)
			put = clientv3.OpPut(key, strconv.FormatInt(n, 10), clientv3.WithIgnoreLease())
		} else {
			put = clientv3.OpPut(key, strconv.FormatInt(n, 10)) // new: no lease
		}
		tr, err := b.kv.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(put).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return 0, wrapWrite(ctx, "increment", key, err)
		}
		if tr.Succeeded {
			return n, nil
		}
		kvs = tr.Responses[0].GetResponseRange().GetKvs()
		// Another writer got in first. Waiting a random part of a growing
		// bound spreads out writers that keep colliding on a hot key.
		t := time.NewTimer(rand.N(backoff) + 1)
		select {
		case <-ctx.Done():
			t.Stop()
			// Every attempt so far definitely failed: not ambiguous.
			return 0, wrapRead(ctx, "increment", key, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, incrBackoffMax)
	}
}

// parseNumber parses a stored value as the local store's Increment does
// (strconv.ParseInt(s, 10, 64), which accepts what Rust's i64::from_str
// does), with the same error messages.
func parseNumber(v []byte) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err == nil {
		return n, nil
	}
	msg := "invalid digit found in string"
	switch {
	case !utf8.Valid(v):
		msg = "invalid utf-8"
	case len(v) == 0:
		msg = "cannot parse integer from empty string"
	case errors.Is(err, strconv.ErrRange) && v[0] == '-':
		msg = "number too small to fit in target type"
	case errors.Is(err, strconv.ErrRange):
		msg = "number too large to fit in target type"
	}
	return 0, &shardkv.StorageError{Msg: "invalid number: " + msg}
}

// satAdd is a+b clamped to the int64 range.
func satAdd(a, b int64) int64 {
	c := a + b
	if (c > a) != (b > 0) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return c
}

// CompareAndSwap stores newValue under key, with no lease (as the local
// CompareAndSwap drops a TTL), if the key's value equals expected, in one
// transaction: a nil expected requires the key to be missing (its
// CreateRevision is 0); a non-nil one, even empty, requires a present key
// whose Value is equal. It is atomic. The request carries both values: see
// the package comment and [RequestBytes] for etcd's size limits.
func (b *Backend) CompareAndSwap(ctx context.Context, key string, expected, newValue []byte) (bool, error) {
	if err := b.writable(key); err != nil {
		return false, err
	}
	cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if expected != nil {
		cmp = clientv3.Compare(clientv3.Value(key), "=", string(expected))
	}
	tr, err := b.kv.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, string(newValue))).Commit()
	if err != nil {
		return false, wrapWrite(ctx, "compare_and_swap", key, err)
	}
	return tr.Succeeded, nil
}
