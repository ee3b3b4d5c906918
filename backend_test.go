package shardkv_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shardkv/shardkv"
)

// backendCall is one call a recordingBackend received.
type backendCall struct {
	Op       string // "get", "set", "set_with_ttl", "delete", "exists", "list_keys", "increment", "compare_and_swap"
	Key      string // the key, or the prefix for list_keys
	Value    []byte // set, set_with_ttl; compare_and_swap's new value
	Expected []byte // compare_and_swap
	TTL      time.Duration
	Delta    int64
	CtxValue any // ctx.Value(backendCtxKey{}), to prove the caller's ctx is passed on
}

type backendCtxKey struct{}

// recordingBackend is the reference's MockBackend: a mutex-protected map of
// its own and a log of every call. It applies no key, size or quota rule,
// as a clustered backend defines its own. When err is set every method fails
// with it (after recording the call).
type recordingBackend struct {
	mu   sync.Mutex
	m    map[string][]byte
	log  []backendCall
	err  error
	ttls map[string]time.Duration
}

var _ shardkv.Backend = (*recordingBackend)(nil)

func newRecordingBackend() *recordingBackend {
	return &recordingBackend{m: map[string][]byte{}, ttls: map[string]time.Duration{}}
}

func (b *recordingBackend) record(ctx context.Context, c backendCall) error {
	c.CtxValue = ctx.Value(backendCtxKey{})
	b.log = append(b.log, c)
	return b.err
}

// calls returns a copy of the call log.
func (b *recordingBackend) calls() []backendCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.log)
}

// ops returns the Op of every call, in order.
func (b *recordingBackend) ops() []string {
	var ops []string
	for _, c := range b.calls() {
		ops = append(ops, c.Op)
	}
	return ops
}

func (b *recordingBackend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record(ctx, backendCall{Op: "get", Key: key}); err != nil {
		return nil, false, err
	}
	v, ok := b.m[key]
	return bytes.Clone(v), ok, nil
}

func (b *recordingBackend) Set(ctx context.Context, key string, value []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record(ctx, backendCall{Op: "set", Key: key, Value: bytes.Clone(value)}); err != nil {
		return err
	}
	b.m[key] = bytes.Clone(value)
	delete(b.ttls, key)
	return nil
}

func (b *recordingBackend) SetWithTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record(ctx, backendCall{Op: "set_with_ttl", Key: key, Value: bytes.Clone(value), TTL: ttl}); err != nil {
		return err
	}
	b.m[key] = bytes.Clone(value)
	b.ttls[key] = ttl
	return nil
}

func (b *recordingBackend) Delete(ctx context.Context, key string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record(ctx, backendCall{Op: "delete", Key: key}); err != nil {
		return false, err
	}
	_, ok := b.m[key]
	delete(b.m, key)
	return ok, nil
}

func (b *recordingBackend) Exists(ctx context.Context, key string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record(ctx, backendCall{Op: "exists", Key: key}); err != nil {
		return false, err
	}
	_, ok := b.m[key]
	return ok, nil
}

func (b *recordingBackend) ListKeys(ctx context.Context, prefix string) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record(ctx, backendCall{Op: "list_keys", Key: prefix}); err != nil {
		return nil, err
	}
	keys := []string{}
	for k := range b.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func (b *recordingBackend) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record(ctx, backendCall{Op: "increment", Key: key, Delta: delta}); err != nil {
		return 0, err
	}
	// As the mock: an unparsable value counts as 0, no saturation.
	cur, _ := strconv.ParseInt(string(b.m[key]), 10, 64)
	n := cur + delta
	b.m[key] = strconv.AppendInt(nil, n, 10)
	return n, nil
}

func (b *recordingBackend) CompareAndSwap(ctx context.Context, key string, expected, newValue []byte) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record(ctx, backendCall{Op: "compare_and_swap", Key: key, Expected: bytes.Clone(expected), Value: bytes.Clone(newValue)}); err != nil {
		return false, err
	}
	cur, ok := b.m[key]
	match := !ok
	if expected != nil {
		match = ok && bytes.Equal(cur, expected)
	}
	if match {
		b.m[key] = bytes.Clone(newValue)
	}
	return match, nil
}

// ctxOps runs one Context method each; the names match backendCall.Op.
var ctxOps = []struct {
	op  string
	run func(ctx context.Context, s *shardkv.Store, key string) error
}{
	{"get", func(ctx context.Context, s *shardkv.Store, key string) error {
		_, _, err := s.GetContext(ctx, key)
		return err
	}},
	{"set", func(ctx context.Context, s *shardkv.Store, key string) error {
		return s.SetContext(ctx, key, []byte("v"))
	}},
	{"set_with_ttl", func(ctx context.Context, s *shardkv.Store, key string) error {
		return s.SetWithTTLContext(ctx, key, []byte("v"), time.Hour)
	}},
	{"delete", func(ctx context.Context, s *shardkv.Store, key string) error {
		_, err := s.DeleteContext(ctx, key)
		return err
	}},
	{"exists", func(ctx context.Context, s *shardkv.Store, key string) error {
		_, err := s.ExistsContext(ctx, key)
		return err
	}},
	{"list_keys", func(ctx context.Context, s *shardkv.Store, key string) error {
		_, err := s.ListKeysContext(ctx, key)
		return err
	}},
	{"increment", func(ctx context.Context, s *shardkv.Store, key string) error {
		_, err := s.IncrementContext(ctx, key, 1)
		return err
	}},
	{"compare_and_swap", func(ctx context.Context, s *shardkv.Store, key string) error {
		_, err := s.CompareAndSwapContext(ctx, key, nil, []byte("v"))
		return err
	}},
}

func TestBackend_IsClustered(t *testing.T) {
	local := shardkv.New()
	defer local.Close()
	assert.False(t, local.IsClustered())

	nilBackend := shardkv.New(shardkv.WithBackend(nil))
	defer nilBackend.Close()
	assert.False(t, nilBackend.IsClustered(), "WithBackend(nil) leaves the store local")

	clustered := shardkv.New(shardkv.WithBackend(newRecordingBackend()))
	defer clustered.Close()
	assert.True(t, clustered.IsClustered())
}

// Every Context method, in cluster mode, reaches the backend with the
// caller's arguments and context, returns the backend's answer, and leaves
// the local store (data, quota, events) untouched.
func TestBackend_ContextMethodsRouteToBackend(t *testing.T) {
	b := newRecordingBackend()
	s := shardkv.New(shardkv.WithBackend(b), shardkv.WithMaxKeys(1), shardkv.WithMaxValueSize(2))
	defer s.Close()
	require.NoError(t, s.Set("local", []byte("L"))) // fills the local quota
	sub := s.Subscribe()
	defer sub.Close()

	ctx := context.WithValue(context.Background(), backendCtxKey{}, "caller-ctx")

	// Values over the local MaxValueSize and keys over the local MaxKeys
	// pass: the backend applies its own rules.
	require.NoError(t, s.SetContext(ctx, "a", []byte("remote-a")))
	require.NoError(t, s.SetWithTTLContext(ctx, "b", []byte("remote-b"), 1500*time.Millisecond))
	v, ok, err := s.GetContext(ctx, "a")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte("remote-a"), v)
	_, ok, err = s.GetContext(ctx, "local")
	require.NoError(t, err)
	require.False(t, ok, "GetContext must read the backend, not the local store")
	ok, err = s.ExistsContext(ctx, "local")
	require.NoError(t, err)
	require.False(t, ok, "ExistsContext must ask the backend")
	n, err := s.IncrementContext(ctx, "n", -7)
	require.NoError(t, err)
	require.Equal(t, int64(-7), n)
	swapped, err := s.CompareAndSwapContext(ctx, "a", []byte("remote-a"), []byte("swapped"))
	require.NoError(t, err)
	require.True(t, swapped)
	keys, err := s.ListKeysContext(ctx, "")
	require.NoError(t, err)
	slices.Sort(keys)
	require.Equal(t, []string{"a", "b", "n"}, keys)
	existed, err := s.DeleteContext(ctx, "b")
	require.NoError(t, err)
	require.True(t, existed)
	existed, err = s.DeleteContext(ctx, "local")
	require.NoError(t, err)
	require.False(t, existed, "DeleteContext must not touch the local key")

	want := []backendCall{
		{Op: "set", Key: "a", Value: []byte("remote-a")},
		{Op: "set_with_ttl", Key: "b", Value: []byte("remote-b"), TTL: 1500 * time.Millisecond},
		{Op: "get", Key: "a"},
		{Op: "get", Key: "local"},
		{Op: "exists", Key: "local"},
		{Op: "increment", Key: "n", Delta: -7},
		{Op: "compare_and_swap", Key: "a", Expected: []byte("remote-a"), Value: []byte("swapped")},
		{Op: "list_keys", Key: ""},
		{Op: "delete", Key: "b"},
		{Op: "delete", Key: "local"},
	}
	for i := range want {
		want[i].CtxValue = "caller-ctx"
	}
	require.Equal(t, want, b.calls())

	// The local store is as it was.
	require.Equal(t, 1, s.Len())
	v, ok, err = s.Get("local")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte("L"), v)
	for _, k := range []string{"a", "b", "n"} {
		require.False(t, s.Exists(k), k)
	}
	stNoEvent(t, sub) // nothing published locally
}

// In cluster mode keys and values reach the backend unchecked, as the
// reference passes them.
func TestBackend_KeysPassUnchecked(t *testing.T) {
	invalid := []string{"", "bad key", "\xff", "😀", strings.Repeat("k", 2000)}
	for _, op := range ctxOps {
		t.Run(op.op, func(t *testing.T) {
			b := newRecordingBackend()
			s := shardkv.New(shardkv.WithBackend(b), shardkv.WithMaxKeys(0), shardkv.WithMaxValueSize(0))
			defer s.Close()
			for _, k := range invalid {
				require.NoError(t, op.run(context.Background(), s, k), "key %q", k)
			}
			calls := b.calls()
			require.Len(t, calls, len(invalid))
			for i, c := range calls {
				assert.Equal(t, op.op, c.Op)
				assert.Equal(t, invalid[i], c.Key)
			}
			require.Equal(t, 0, s.Len())
		})
	}
}

// A backend's errors come back to the caller as they are.
func TestBackend_ErrorsPropagate(t *testing.T) {
	backendErr := &shardkv.StorageError{Msg: "raft: no leader"}
	for _, op := range ctxOps {
		t.Run(op.op, func(t *testing.T) {
			b := newRecordingBackend()
			b.err = backendErr
			s := shardkv.New(shardkv.WithBackend(b))
			defer s.Close()
			err := op.run(context.Background(), s, "k")
			require.Error(t, err)
			var se *shardkv.StorageError
			require.ErrorAs(t, err, &se)
			require.Equal(t, "raft: no leader", se.Msg)
			require.Equal(t, []string{op.op}, b.ops())
		})
	}
}

// A done context returns its error before anything else: before the
// backend is called, before ErrClosed, before key or value checks.
func TestBackend_DoneContextFirst(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	for _, clustered := range []bool{false, true} {
		for _, closed := range []bool{false, true} {
			for _, op := range ctxOps {
				name := op.op + "/clustered=" + strconv.FormatBool(clustered) + "/closed=" + strconv.FormatBool(closed)
				t.Run(name, func(t *testing.T) {
					b := newRecordingBackend()
					opts := []shardkv.Option{shardkv.WithMaxKeys(0), shardkv.WithMaxValueSize(0)}
					if clustered {
						opts = append(opts, shardkv.WithBackend(b))
					}
					s := shardkv.New(opts...)
					defer s.Close()
					if closed {
						require.NoError(t, s.Close())
					}
					for _, key := range []string{"k", "bad key"} {
						require.ErrorIs(t, op.run(cancelled, s, key), context.Canceled)
						require.ErrorIs(t, op.run(expired, s, key), context.DeadlineExceeded)
						require.NotErrorIs(t, op.run(cancelled, s, key), shardkv.ErrClosed)
					}
					require.Empty(t, b.calls(), "the backend must not be called")
					require.Equal(t, 0, s.Len())
				})
			}
		}
	}
}

// A closed clustered store answers ErrClosed without calling the backend.
func TestBackend_ClosedStore(t *testing.T) {
	for _, op := range ctxOps {
		t.Run(op.op, func(t *testing.T) {
			b := newRecordingBackend()
			s := shardkv.New(shardkv.WithBackend(b))
			require.NoError(t, s.Close())
			require.ErrorIs(t, op.run(context.Background(), s, "k"), shardkv.ErrClosed)
			require.Empty(t, b.calls())
			require.True(t, s.IsClustered())
		})
	}
}

// Without a backend the Context methods are the local operations: the same
// results, errors and resulting state as the plain methods.
func TestBackend_LocalContextMatchesSync(t *testing.T) {
	type result struct {
		Value   string
		Found   bool
		Bool    bool
		N       int64
		Keys    []string
		ErrText string
	}
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return stErrClass(err) + ": " + err.Error()
	}
	type step struct {
		name string
		sync func(s *shardkv.Store) result
		ctx  func(ctx context.Context, s *shardkv.Store) result
	}
	get := func(key string) step {
		return step{"get " + key,
			func(s *shardkv.Store) result {
				v, ok, err := s.Get(key)
				return result{Value: string(v), Found: ok, ErrText: errText(err)}
			},
			func(ctx context.Context, s *shardkv.Store) result {
				v, ok, err := s.GetContext(ctx, key)
				return result{Value: string(v), Found: ok, ErrText: errText(err)}
			}}
	}
	set := func(key, value string) step {
		return step{"set " + key,
			func(s *shardkv.Store) result { return result{ErrText: errText(s.Set(key, []byte(value)))} },
			func(ctx context.Context, s *shardkv.Store) result {
				return result{ErrText: errText(s.SetContext(ctx, key, []byte(value)))}
			}}
	}
	setTTL := func(key, value string, ttl time.Duration) step {
		return step{"setttl " + key,
			func(s *shardkv.Store) result { return result{ErrText: errText(s.SetWithTTL(key, []byte(value), ttl))} },
			func(ctx context.Context, s *shardkv.Store) result {
				return result{ErrText: errText(s.SetWithTTLContext(ctx, key, []byte(value), ttl))}
			}}
	}
	del := func(key string) step {
		return step{"delete " + key,
			func(s *shardkv.Store) result {
				ok, err := s.Delete(key)
				return result{Bool: ok, ErrText: errText(err)}
			},
			func(ctx context.Context, s *shardkv.Store) result {
				ok, err := s.DeleteContext(ctx, key)
				return result{Bool: ok, ErrText: errText(err)}
			}}
	}
	exists := func(key string) step {
		return step{"exists " + key,
			func(s *shardkv.Store) result { return result{Bool: s.Exists(key)} },
			func(ctx context.Context, s *shardkv.Store) result {
				ok, err := s.ExistsContext(ctx, key)
				return result{Bool: ok, ErrText: errText(err)}
			}}
	}
	list := func(prefix string) step {
		return step{"list " + prefix,
			func(s *shardkv.Store) result {
				keys, err := s.ListKeys(prefix)
				slices.Sort(keys)
				return result{Keys: keys, ErrText: errText(err)}
			},
			func(ctx context.Context, s *shardkv.Store) result {
				keys, err := s.ListKeysContext(ctx, prefix)
				slices.Sort(keys)
				return result{Keys: keys, ErrText: errText(err)}
			}}
	}
	incr := func(key string, delta int64) step {
		return step{"incr " + key,
			func(s *shardkv.Store) result {
				n, err := s.Increment(key, delta)
				return result{N: n, ErrText: errText(err)}
			},
			func(ctx context.Context, s *shardkv.Store) result {
				n, err := s.IncrementContext(ctx, key, delta)
				return result{N: n, ErrText: errText(err)}
			}}
	}
	cas := func(key string, expected []byte, newValue string) step {
		return step{"cas " + key,
			func(s *shardkv.Store) result {
				ok, err := s.CompareAndSwap(key, expected, []byte(newValue))
				return result{Bool: ok, ErrText: errText(err)}
			},
			func(ctx context.Context, s *shardkv.Store) result {
				ok, err := s.CompareAndSwapContext(ctx, key, expected, []byte(newValue))
				return result{Bool: ok, ErrText: errText(err)}
			}}
	}
	steps := []step{
		set("foo", "bar"), get("foo"), get("missing"), exists("foo"), exists("missing"), exists("bad key"),
		set("bad key", "v"), get(""), set("big", "123456789"), // invalid keys, value too large
		setTTL("ttlk", "v", time.Hour), setTTL("gone", "v", 0), get("gone"), exists("gone"),
		incr("c", 4), incr("c", -10), incr("foo", 1), // foo holds "bar": a StorageError
		cas("cas", nil, "v1"), cas("cas", nil, "v2"), cas("cas", []byte("v1"), "v3"), cas("cas", []byte("nope"), "v4"),
		cas("big", nil, "123456789"),
		// The quota is 8: with foo, ttlk, c and cas held (and gone, expired,
		// reclaimed when the quota needs it) q5 is refused.
		set("q1", "1"), set("q2", "2"), set("q3", "3"), set("q4", "4"), set("q5", "5"),
		list(""), list("q"), list("zzz"),
		del("foo"), del("foo"), del("bad key"), get("foo"),
	}
	syncStore := shardkv.New(shardkv.WithMaxKeys(8), shardkv.WithMaxValueSize(8))
	defer syncStore.Close()
	ctxStore := shardkv.New(shardkv.WithMaxKeys(8), shardkv.WithMaxValueSize(8))
	defer ctxStore.Close()
	ctx := context.Background()
	sawErr := map[string]bool{}
	for i, st := range steps {
		want := st.sync(syncStore)
		got := st.ctx(ctx, ctxStore)
		require.Equal(t, want, got, "step %d: %s", i, st.name)
		sawErr[strings.Split(want.ErrText, ":")[0]] = true
	}
	// The sequence did exercise the error paths it was written for.
	require.Equal(t, map[string]bool{"": true, "ErrInvalidKey": true, "ErrValueTooLarge": true,
		"StorageError": true, "ErrQuotaExceeded": true}, sawErr)
	require.Equal(t, stSnapshot(t, syncStore), stSnapshot(t, ctxStore))
	require.Equal(t, syncStore.Len(), ctxStore.Len())
}

// Errors from the local path through a Context method are the store's own.
func TestBackend_LocalContextErrors(t *testing.T) {
	s := shardkv.New(shardkv.WithMaxKeys(1), shardkv.WithMaxValueSize(1))
	defer s.Close()
	ctx := context.Background()
	require.ErrorIs(t, s.SetContext(ctx, "bad key", nil), shardkv.ErrInvalidKey)
	require.ErrorIs(t, s.SetContext(ctx, "k", []byte("xx")), shardkv.ErrValueTooLarge)
	require.NoError(t, s.SetContext(ctx, "k", []byte("x")))
	require.ErrorIs(t, s.SetWithTTLContext(ctx, "k2", []byte("x"), time.Hour), shardkv.ErrQuotaExceeded)
	_, err := s.IncrementContext(ctx, "k", 1)
	var se *shardkv.StorageError
	require.ErrorAs(t, err, &se)
	_, err = s.CompareAndSwapContext(ctx, "k", []byte("x"), []byte("yy"))
	require.ErrorIs(t, err, shardkv.ErrValueTooLarge)
	require.False(t, errors.Is(err, shardkv.ErrQuotaExceeded))
}
