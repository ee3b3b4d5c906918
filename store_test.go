package shardkv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shardkv/shardkv"
)

// ---------------------------------------------------------------------------
// Helpers (prefixed st so they do not collide with other test files).

// stPoll returns the next event if one is already published, without
// waiting: Recv with a cancelled context reads what is held and otherwise
// returns context.Canceled.
func stPoll(sub *shardkv.Subscription) (shardkv.Event, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return sub.Recv(ctx)
}

// stRecv returns the next event, which must already be published (inside a
// synctest bubble, call synctest.Wait first for the reaper's events).
func stRecv(t *testing.T, sub *shardkv.Subscription) shardkv.Event {
	t.Helper()
	ev, err := stPoll(sub)
	require.NoError(t, err, "expected an event")
	return ev
}

// stNoEvent asserts that no event is held for sub.
func stNoEvent(t *testing.T, sub *shardkv.Subscription) {
	t.Helper()
	ev, err := stPoll(sub)
	require.ErrorIs(t, err, context.Canceled, "unexpected event %+v", ev)
}

// stDrain returns every event held for sub.
func stDrain(t *testing.T, sub *shardkv.Subscription) []shardkv.Event {
	t.Helper()
	var evs []shardkv.Event
	for {
		ev, err := stPoll(sub)
		if errors.Is(err, context.Canceled) {
			return evs
		}
		require.NoError(t, err)
		evs = append(evs, ev)
	}
}

// stSnapshot returns every live key and its value.
func stSnapshot(t *testing.T, s *shardkv.Store) map[string]string {
	t.Helper()
	m := map[string]string{}
	for k, v := range s.All("") {
		m[k] = string(v)
	}
	return m
}

// stSortedKeys is ListKeys, sorted.
func stSortedKeys(t *testing.T, s *shardkv.Store, prefix string) []string {
	t.Helper()
	keys, err := s.ListKeys(prefix)
	require.NoError(t, err)
	slices.Sort(keys)
	return keys
}

// stGet returns key's value, or "<absent>".
func stGet(t *testing.T, s *shardkv.Store, key string) string {
	t.Helper()
	v, ok, err := s.Get(key)
	require.NoError(t, err)
	if !ok {
		require.Nil(t, v)
		return "<absent>"
	}
	return string(v)
}

// stErrClass names the sentinel (or error type) err matches.
func stErrClass(err error) string {
	var se *shardkv.StorageError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, shardkv.ErrInvalidKey):
		return "ErrInvalidKey"
	case errors.Is(err, shardkv.ErrValueTooLarge):
		return "ErrValueTooLarge"
	case errors.Is(err, shardkv.ErrQuotaExceeded):
		return "ErrQuotaExceeded"
	case errors.Is(err, shardkv.ErrClosed):
		return "ErrClosed"
	case errors.Is(err, shardkv.ErrNotFound):
		return "ErrNotFound"
	case errors.As(err, &se):
		return "StorageError"
	}
	return "other"
}

// ---------------------------------------------------------------------------
// Ports of the reference's `mod tests`.

func TestRef_set_and_get(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	require.NoError(t, s.Set("foo", []byte("bar")))
	v, ok, err := s.Get("foo")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte("bar"), v)
	str, ok, err := s.GetString("foo")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "bar", str)
}

func TestRef_get_missing_returns_none(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	v, ok, err := s.Get("missing")
	require.NoError(t, err)
	require.False(t, ok)
	require.Nil(t, v)
}

func TestRef_ttl_expiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		require.NoError(t, s.SetWithTTL("temp", []byte("v"), time.Millisecond))
		time.Sleep(5 * time.Millisecond)
		_, ok, err := s.Get("temp")
		require.NoError(t, err)
		require.False(t, ok)
		require.False(t, s.Exists("temp"))
	})
}

func TestRef_delete_reports_existence(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	require.NoError(t, s.Set("k", []byte("v")))
	existed, err := s.Delete("k")
	require.NoError(t, err)
	require.True(t, existed)
	existed, err = s.Delete("k")
	require.NoError(t, err)
	require.False(t, existed)
	require.Equal(t, "<absent>", stGet(t, s, "k"))
}

func TestRef_list_keys_prefix(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	require.NoError(t, s.Set("a/1", []byte("1")))
	require.NoError(t, s.Set("a/2", []byte("2")))
	require.NoError(t, s.Set("b/1", []byte("3")))
	require.Equal(t, []string{"a/1", "a/2"}, stSortedKeys(t, s, "a/"))
}

func TestRef_increment(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	for _, step := range []struct{ delta, want int64 }{{5, 5}, {3, 8}, {-10, -2}} {
		n, err := s.Increment("counter", step.delta)
		require.NoError(t, err)
		require.Equal(t, step.want, n)
	}
	require.Equal(t, "-2", stGet(t, s, "counter"))
}

func TestRef_increment_saturates(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	require.NoError(t, s.Set("c", []byte(strconv.FormatInt(math.MaxInt64, 10))))
	n, err := s.Increment("c", 1)
	require.NoError(t, err)
	require.Equal(t, int64(math.MaxInt64), n)
}

func TestRef_compare_and_swap_hit_and_miss(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	swapped, err := s.CompareAndSwap("k", nil, []byte("v1"))
	require.NoError(t, err)
	require.True(t, swapped, "swap from absent")
	swapped, err = s.CompareAndSwap("k", []byte("v1"), []byte("v2"))
	require.NoError(t, err)
	require.True(t, swapped, "hit")
	swapped, err = s.CompareAndSwap("k", []byte("v1"), []byte("v3"))
	require.NoError(t, err)
	require.False(t, swapped, "miss")
	require.Equal(t, "v2", stGet(t, s, "k"))
}

func TestRef_quota_exceeded(t *testing.T) {
	s := shardkv.New(shardkv.WithMaxKeys(2))
	defer s.Close()
	require.NoError(t, s.Set("a", []byte("1")))
	require.NoError(t, s.Set("b", []byte("2")))
	require.ErrorIs(t, s.Set("c", []byte("3")), shardkv.ErrQuotaExceeded)
	require.NoError(t, s.Set("a", []byte("x")), "overwriting at quota is allowed")
}

func TestRef_value_too_large(t *testing.T) {
	s := shardkv.New(shardkv.WithMaxValueSize(4))
	defer s.Close()
	require.ErrorIs(t, s.Set("k", []byte("toolong")), shardkv.ErrValueTooLarge)
}

func TestRef_invalid_key(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	require.ErrorIs(t, s.Set("", []byte("v")), shardkv.ErrInvalidKey)
	require.ErrorIs(t, s.Set("bad key", []byte("v")), shardkv.ErrInvalidKey)
}

// TestRef_clone_shares_state: the reference's Clone is a copy of the
// *Store pointer. Two handles share one state: a write or a delete through
// either is seen through the other, in both directions.
func TestRef_clone_shares_state(t *testing.T) {
	a := shardkv.New()
	defer a.Close()
	b := a // the clone
	del := func(key string) func(*shardkv.Store) error {
		return func(s *shardkv.Store) error {
			existed, err := s.Delete(key)
			if err == nil && !existed {
				err = fmt.Errorf("delete of %q: not present", key)
			}
			return err
		}
	}
	steps := []struct {
		name      string
		via, seen *shardkv.Store
		op        func(s *shardkv.Store) error
		key, want string // what the other handle then reads
	}{
		{"set via a", a, b, func(s *shardkv.Store) error { return s.Set("k", []byte("from-a")) }, "k", "from-a"},
		{"overwrite via b", b, a, func(s *shardkv.Store) error { return s.Set("k", []byte("from-b")) }, "k", "from-b"},
		{"set via b", b, a, func(s *shardkv.Store) error { return s.Set("j", []byte("j-from-b")) }, "j", "j-from-b"},
		{"delete via a", a, b, del("j"), "j", "<absent>"},
		{"delete via b", b, a, del("k"), "k", "<absent>"},
		{"set again via a", a, b, func(s *shardkv.Store) error { return s.Set("k", []byte("again")) }, "k", "again"},
	}
	for _, st := range steps {
		require.NoError(t, st.op(st.via), st.name)
		require.Equal(t, st.want, stGet(t, st.seen, st.key), "%s: read through the other handle", st.name)
		require.Equal(t, st.want, stGet(t, st.via, st.key), "%s: read through the same handle", st.name)
		require.Equal(t, a.Len(), b.Len(), st.name)
	}
	require.Equal(t, 1, b.Len())
}

func TestRef_watch_receives_set_event(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()
	require.NoError(t, s.Set("watched", []byte("hello")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := sub.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, "watched", ev.Key)
	require.Equal(t, shardkv.EventSet, ev.Kind)
	require.Equal(t, []byte("hello"), ev.Value)
}

func TestRef_watch_prefix_filters(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.WatchPrefix(ctx, "user/")
	require.NoError(t, s.Set("other/1", []byte("x")))
	require.NoError(t, s.Set("user/1", []byte("y")))
	select {
	case ev := <-ch:
		require.Equal(t, "user/1", ev.Key)
		require.Equal(t, shardkv.EventSet, ev.Kind)
		require.Equal(t, []byte("y"), ev.Value)
	case <-time.After(5 * time.Second):
		t.Fatal("no event from WatchPrefix")
	}
}

func TestRef_watch_receives_delete_event(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	require.NoError(t, s.Set("k", []byte("v")))
	sub := s.Subscribe()
	defer sub.Close()
	_, err := s.Delete("k")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := sub.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, shardkv.EventDelete, ev.Kind)
	require.Equal(t, "k", ev.Key)
	require.Nil(t, ev.Value)
}

func TestRef_is_clustered_reflects_backend(t *testing.T) {
	local := shardkv.New()
	defer local.Close()
	require.False(t, local.IsClustered())
	clustered := shardkv.New(shardkv.WithBackend(newRecordingBackend()))
	defer clustered.Close()
	require.True(t, clustered.IsClustered())
}

func TestRef_async_routes_to_backend_when_clustered(t *testing.T) {
	b := newRecordingBackend()
	s := shardkv.New(shardkv.WithBackend(b))
	defer s.Close()
	ctx := context.Background()

	// Writes/reads go to the backend, not the local map.
	require.NoError(t, s.SetContext(ctx, "foo", []byte("bar")))
	v, ok, err := s.GetContext(ctx, "foo")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte("bar"), v)
	ok, err = s.ExistsContext(ctx, "foo")
	require.NoError(t, err)
	require.True(t, ok)

	require.NoError(t, s.SetWithTTLContext(ctx, "ttlk", []byte("v"), 1000*time.Nanosecond))
	n, err := s.IncrementContext(ctx, "counter", 5)
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
	n, err = s.IncrementContext(ctx, "counter", 3)
	require.NoError(t, err)
	require.Equal(t, int64(8), n)
	swapped, err := s.CompareAndSwapContext(ctx, "cas", nil, []byte("v1"))
	require.NoError(t, err)
	require.True(t, swapped)

	keys, err := s.ListKeysContext(ctx, "")
	require.NoError(t, err)
	slices.Sort(keys)
	require.Equal(t, []string{"cas", "counter", "foo", "ttlk"}, keys)

	existed, err := s.DeleteContext(ctx, "foo")
	require.NoError(t, err)
	require.True(t, existed)
	ok, err = s.ExistsContext(ctx, "foo")
	require.NoError(t, err)
	require.False(t, ok)

	// The local in-memory map must remain completely untouched.
	require.Equal(t, "<absent>", stGet(t, s, "foo"))
	require.False(t, s.Exists("counter"))
	require.Empty(t, stSortedKeys(t, s, ""))
	require.Equal(t, 0, s.Len())

	// Every async op was recorded by the backend.
	calls := b.ops()
	for _, op := range []string{"set", "get", "exists", "set_with_ttl", "increment", "compare_and_swap", "list_keys", "delete"} {
		require.Contains(t, calls, op, "missing backend call: %s", op)
	}
}

func TestRef_async_uses_local_when_not_clustered(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	ctx := context.Background()

	require.NoError(t, s.SetContext(ctx, "foo", []byte("bar")))
	// The async write landed in the local map (visible via the sync getter)...
	require.Equal(t, "bar", stGet(t, s, "foo"))
	// ...and matches the sync result exactly.
	av, aok, aerr := s.GetContext(ctx, "foo")
	sv, sok, serr := s.Get("foo")
	require.Equal(t, []any{sv, sok, serr}, []any{av, aok, aerr})

	ok, err := s.ExistsContext(ctx, "foo")
	require.NoError(t, err)
	require.Equal(t, s.Exists("foo"), ok)

	require.NoError(t, s.SetWithTTLContext(ctx, "ttlk", []byte("v"), time.Second))
	require.True(t, s.Exists("ttlk"))

	n, err := s.IncrementContext(ctx, "c", 4)
	require.NoError(t, err)
	require.Equal(t, int64(4), n)
	n, err = s.Increment("c", 0)
	require.NoError(t, err)
	require.Equal(t, int64(4), n)

	swapped, err := s.CompareAndSwapContext(ctx, "cas", nil, []byte("v1"))
	require.NoError(t, err)
	require.True(t, swapped)
	require.Equal(t, "v1", stGet(t, s, "cas"))

	a, err := s.ListKeysContext(ctx, "")
	require.NoError(t, err)
	slices.Sort(a)
	require.Equal(t, stSortedKeys(t, s, ""), a)

	existed, err := s.DeleteContext(ctx, "foo")
	require.NoError(t, err)
	require.True(t, existed)
	require.Equal(t, "<absent>", stGet(t, s, "foo"))
}

func TestRef_global_kv_accessor_shares_state(t *testing.T) {
	// The global slot is process-wide and first-call-wins: another test may
	// have set it already, so (as the reference) do not assert it was empty.
	g := stInstallGlobal(t)

	a, ok := shardkv.Global()
	require.True(t, ok, "Global must be set after SetGlobal")
	b, ok := shardkv.Global()
	require.True(t, ok)
	require.Same(t, a, b)
	require.Same(t, g, a)
	if stGlobalClosed(a) {
		// Installed and closed by an earlier run of these tests (-count > 1):
		// what one handle sees, the other sees too.
		_, _, err := b.Get("global-kv-share-test")
		require.ErrorIs(t, err, shardkv.ErrClosed)
		t.Log("the global store was closed by an earlier run; checked identity only")
		return
	}

	require.NoError(t, a.Set("global-kv-share-test", []byte("shared")))
	require.Equal(t, "shared", stGet(t, b, "global-kv-share-test"),
		"writes through one Global() handle must be visible through another")
}

// The global store this file installed; closed at the end of the test that
// installed it, so that no reaper outlives the tests (goleak), after which
// Global hands out a closed store.
var (
	stGlobalMu     sync.Mutex
	stGlobalMine   *shardkv.Store
	stGlobalIsDone bool
)

// stInstallGlobal calls SetGlobal with a new store and returns the store
// Global then holds. If the new store won, it is closed when t ends.
func stInstallGlobal(t *testing.T) *shardkv.Store {
	t.Helper()
	mine := shardkv.New()
	shardkv.SetGlobal(mine)
	g, ok := shardkv.Global()
	require.True(t, ok)
	if g != mine {
		require.NoError(t, mine.Close())
		return g
	}
	stGlobalMu.Lock()
	stGlobalMine = mine
	stGlobalMu.Unlock()
	t.Cleanup(func() {
		stGlobalMu.Lock()
		stGlobalIsDone = true
		stGlobalMu.Unlock()
		mine.Close()
	})
	return g
}

// stGlobalClosed reports whether g is the global store this file installed
// and has already closed.
func stGlobalClosed(g *shardkv.Store) bool {
	stGlobalMu.Lock()
	defer stGlobalMu.Unlock()
	return g == stGlobalMine && stGlobalIsDone
}

// ---------------------------------------------------------------------------
// Global: later calls are ignored with a warning.

func TestStore_SetGlobalFirstCallWins(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, nil)))
	defer slog.SetDefault(old)

	winner := stInstallGlobal(t) // SetGlobal is ignored if another test set it already
	mu.Lock()
	buf.Reset()
	mu.Unlock()

	second := shardkv.New()
	defer second.Close()
	shardkv.SetGlobal(second)
	got, ok := shardkv.Global()
	require.True(t, ok)
	require.Same(t, winner, got, "a later SetGlobal must be ignored")
	mu.Lock()
	logged := buf.String()
	mu.Unlock()
	require.Contains(t, logged, "level=WARN", "a later SetGlobal must warn on slog.Default()")

	buf.Reset()
	shardkv.SetGlobal(nil)
	got, _ = shardkv.Global()
	require.Same(t, winner, got, "SetGlobal(nil) must not clear the slot")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ---------------------------------------------------------------------------
// Errors.

func TestStore_ErrorValues(t *testing.T) {
	// The sentinels keep the reference's Display text.
	require.Equal(t, "key not found", shardkv.ErrNotFound.Error())
	require.Equal(t, "value too large", shardkv.ErrValueTooLarge.Error())
	require.Equal(t, "storage quota exceeded", shardkv.ErrQuotaExceeded.Error())
	require.Equal(t, "invalid key format", shardkv.ErrInvalidKey.Error())
	require.Equal(t, "store closed", shardkv.ErrClosed.Error())
	require.Equal(t, "storage error: boom", (&shardkv.StorageError{Msg: "boom"}).Error())
	sentinels := []error{shardkv.ErrNotFound, shardkv.ErrValueTooLarge, shardkv.ErrQuotaExceeded, shardkv.ErrInvalidKey, shardkv.ErrClosed}
	for i, a := range sentinels {
		for j, b := range sentinels {
			require.Equal(t, i == j, errors.Is(a, b), "%v vs %v", a, b)
		}
	}
	wrapped := fmt.Errorf("ctx: %w", &shardkv.StorageError{Msg: "x"})
	var se *shardkv.StorageError
	require.ErrorAs(t, wrapped, &se)
	require.Equal(t, "x", se.Msg)
}

// Each error the store returns matches its sentinel with errors.Is, and
// only that one.
func TestStore_ErrorsIsAs(t *testing.T) {
	s := shardkv.New(shardkv.WithMaxKeys(2), shardkv.WithMaxValueSize(4))
	defer s.Close()
	require.NoError(t, s.Set("text", []byte("abc")))
	require.NoError(t, s.Set("bin", []byte{0xff, 0xfe}))
	all := []error{shardkv.ErrNotFound, shardkv.ErrValueTooLarge, shardkv.ErrQuotaExceeded, shardkv.ErrInvalidKey, shardkv.ErrClosed}
	cases := []struct {
		name string
		err  error
		want error // nil: a *StorageError
	}{
		{"invalid key", s.Set("bad key", nil), shardkv.ErrInvalidKey},
		{"too large", s.Set("text", []byte("12345")), shardkv.ErrValueTooLarge},
		{"quota", s.Set("third", nil), shardkv.ErrQuotaExceeded},
		{"increment on text", func() error { _, err := s.Increment("text", 1); return err }(), nil},
		{"GetString on invalid UTF-8", func() error { _, _, err := s.GetString("bin"); return err }(), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			for _, sentinel := range all {
				assert.Equal(t, sentinel == tc.want, errors.Is(tc.err, sentinel), "errors.Is(%v, %v)", tc.err, sentinel)
			}
			var se *shardkv.StorageError
			require.Equal(t, tc.want == nil, errors.As(tc.err, &se))
			if tc.want == nil {
				require.Equal(t, "storage error: "+se.Msg, tc.err.Error())
			}
		})
	}
	require.NoError(t, s.Close())
	_, _, err := s.Get("text")
	require.ErrorIs(t, err, shardkv.ErrClosed)
	require.NotErrorIs(t, err, shardkv.ErrInvalidKey)
}

// When several errors apply, the first of ErrInvalidKey, ErrValueTooLarge,
// ErrQuotaExceeded wins.
func TestStore_ErrorPrecedence(t *testing.T) {
	big := []byte("too large") // the limit is 4
	ok := []byte("ok")
	type opFn func(s *shardkv.Store) error
	setOp := func(key string, v []byte) opFn {
		return func(s *shardkv.Store) error { return s.Set(key, v) }
	}
	setStrOp := func(key string, v []byte) opFn {
		return func(s *shardkv.Store) error { return s.SetString(key, string(v)) }
	}
	ttlOp := func(key string, v []byte) opFn {
		return func(s *shardkv.Store) error { return s.SetWithTTL(key, v, time.Hour) }
	}
	casOp := func(key string, expected, v []byte) opFn {
		return func(s *shardkv.Store) error {
			swapped, err := s.CompareAndSwap(key, expected, v)
			if err == nil && !swapped {
				return errNotSwapped
			}
			return err
		}
	}
	incrOp := func(key string) opFn {
		return func(s *shardkv.Store) error { _, err := s.Increment(key, 1); return err }
	}
	cases := []struct {
		name string
		op   opFn
		want error
	}{
		{"Set invalid+large+quota", setOp("bad key", big), shardkv.ErrInvalidKey},
		{"Set large+quota", setOp("new", big), shardkv.ErrValueTooLarge},
		{"Set quota", setOp("new", ok), shardkv.ErrQuotaExceeded},
		{"Set large on existing", setOp("a", big), shardkv.ErrValueTooLarge},
		{"SetString invalid+large+quota", setStrOp("", big), shardkv.ErrInvalidKey},
		{"SetString large+quota", setStrOp("new", big), shardkv.ErrValueTooLarge},
		{"SetString quota", setStrOp("new", ok), shardkv.ErrQuotaExceeded},
		{"SetWithTTL invalid+large+quota", ttlOp("bad\x00key", big), shardkv.ErrInvalidKey},
		{"SetWithTTL large+quota", ttlOp("new", big), shardkv.ErrValueTooLarge},
		{"SetWithTTL quota", ttlOp("new", ok), shardkv.ErrQuotaExceeded},
		{"CAS invalid+large+quota", casOp("bad key", nil, big), shardkv.ErrInvalidKey},
		{"CAS large+quota", casOp("new", nil, big), shardkv.ErrValueTooLarge},
		{"CAS large, expected mismatches", casOp("a", []byte("nope"), big), shardkv.ErrValueTooLarge},
		{"CAS large, expected nil on present key", casOp("a", nil, big), shardkv.ErrValueTooLarge},
		{"CAS quota", casOp("new", nil, ok), shardkv.ErrQuotaExceeded},
		{"CAS mismatch at quota is no error", casOp("new", []byte("x"), ok), errNotSwapped},
		{"Increment invalid+quota", incrOp("bad key"), shardkv.ErrInvalidKey},
		{"Increment quota", incrOp("new"), shardkv.ErrQuotaExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := shardkv.New(shardkv.WithMaxKeys(2), shardkv.WithMaxValueSize(4))
			defer s.Close()
			require.NoError(t, s.Set("a", []byte("1")))
			require.NoError(t, s.Set("b", []byte("2")))
			err := tc.op(s)
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, stErrClass(tc.want), stErrClass(err), "%v", err)
			require.Equal(t, map[string]string{"a": "1", "b": "2"}, stSnapshot(t, s))
			require.Equal(t, 2, s.Len())
		})
	}
}

var errNotSwapped = errors.New("not swapped")

// A failed operation changes nothing: not the data, not Len, not a TTL, and
// it publishes no event.
func TestStore_FailedOpChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New(shardkv.WithMaxKeys(4), shardkv.WithMaxValueSize(4))
		defer s.Close()
		require.NoError(t, s.Set("a", []byte("1")))
		require.NoError(t, s.SetWithTTL("t", []byte("x"), time.Hour))
		require.NoError(t, s.Set("txt", []byte("abc")))
		require.NoError(t, s.Set("bin", []byte{0xff}))
		sub := s.Subscribe()
		defer sub.Close()
		before := stSnapshot(t, s)
		failing := map[string]func() error{
			"Set invalid":        func() error { return s.Set("bad key", []byte("v")) },
			"Set too large":      func() error { return s.Set("a", []byte("12345")) },
			"Set quota":          func() error { return s.Set("new", []byte("v")) },
			"SetString large":    func() error { return s.SetString("t", "12345") },
			"SetWithTTL large":   func() error { return s.SetWithTTL("t", []byte("12345"), time.Millisecond) },
			"SetWithTTL quota":   func() error { return s.SetWithTTL("new", []byte("v"), 0) },
			"CAS large":          func() error { _, err := s.CompareAndSwap("a", []byte("1"), []byte("12345")); return err },
			"CAS quota":          func() error { _, err := s.CompareAndSwap("new", nil, []byte("v")); return err },
			"Increment not int":  func() error { _, err := s.Increment("txt", 1); return err },
			"Increment not utf8": func() error { _, err := s.Increment("bin", 1); return err },
			"Increment quota":    func() error { _, err := s.Increment("new", 1); return err },
			"Increment invalid":  func() error { _, err := s.Increment("", 1); return err },
			"Delete invalid":     func() error { _, err := s.Delete("bad key"); return err },
			"GetString bin":      func() error { _, _, err := s.GetString("bin"); return err },
		}
		for name, op := range failing {
			require.Error(t, op(), name)
			require.Equal(t, before, stSnapshot(t, s), name)
			require.Equal(t, 4, s.Len(), name)
			ttl, ok, err := s.TTL("t")
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, time.Hour, ttl, name)
			stNoEvent(t, sub)
		}
		// A CAS that does not match is not an error, and changes nothing.
		swapped, err := s.CompareAndSwap("t", []byte("nope"), []byte("y"))
		require.NoError(t, err)
		require.False(t, swapped)
		ttl, _, _ := s.TTL("t")
		require.Equal(t, time.Hour, ttl, "a CAS miss must keep the TTL")
		require.Equal(t, before, stSnapshot(t, s))
		stNoEvent(t, sub)
	})
}

// ---------------------------------------------------------------------------
// Value size.

func TestStore_ValueSizeBoundaries(t *testing.T) {
	writes := []struct {
		name  string
		write func(s *shardkv.Store, key string, v []byte) error
	}{
		{"Set", func(s *shardkv.Store, key string, v []byte) error { return s.Set(key, v) }},
		{"SetString", func(s *shardkv.Store, key string, v []byte) error { return s.SetString(key, string(v)) }},
		{"SetWithTTL", func(s *shardkv.Store, key string, v []byte) error { return s.SetWithTTL(key, v, time.Hour) }},
		{"CompareAndSwap", func(s *shardkv.Store, key string, v []byte) error {
			swapped, err := s.CompareAndSwap(key, nil, v)
			if err == nil && !swapped {
				return errNotSwapped
			}
			return err
		}},
	}
	limits := []struct {
		name  string
		opts  []shardkv.Option
		limit int
	}{
		{"default", nil, shardkv.DefaultMaxValueSize},
		{"WithMaxValueSize(16)", []shardkv.Option{shardkv.WithMaxValueSize(16)}, 16},
		{"WithMaxValueSize(0)", []shardkv.Option{shardkv.WithMaxValueSize(0)}, 0},
		{"WithMaxValueSize(-1)", []shardkv.Option{shardkv.WithMaxValueSize(-1)}, 0},
	}
	require.Equal(t, 1<<20, shardkv.DefaultMaxValueSize)
	for _, l := range limits {
		for _, w := range writes {
			t.Run(l.name+"/"+w.name, func(t *testing.T) {
				s := shardkv.New(l.opts...)
				defer s.Close()
				require.Equal(t, l.limit, s.MaxValueSize())
				sizes := []int{0, 1, l.limit - 1, l.limit, l.limit + 1, 2*l.limit + 1}
				for i, n := range sizes {
					if n < 0 {
						continue
					}
					key := "k" + strconv.Itoa(i)
					v := bytes.Repeat([]byte{'x'}, n)
					err := w.write(s, key, v)
					if n <= l.limit {
						require.NoError(t, err, "size %d, limit %d", n, l.limit)
						got, ok, err := s.Get(key)
						require.NoError(t, err)
						require.True(t, ok)
						require.Equal(t, n, len(got))
					} else {
						require.ErrorIs(t, err, shardkv.ErrValueTooLarge, "size %d, limit %d", n, l.limit)
						require.False(t, s.Exists(key))
					}
				}
			})
		}
	}
}

func TestStore_SetMaxValueSizeAtRuntime(t *testing.T) {
	s := shardkv.New(shardkv.WithMaxValueSize(8))
	defer s.Close()
	require.NoError(t, s.Set("big", []byte("12345678")))
	s.SetMaxValueSize(4)
	require.Equal(t, 4, s.MaxValueSize())
	require.NoError(t, s.Set("k", []byte("1234")))
	require.ErrorIs(t, s.Set("k", []byte("12345")), shardkv.ErrValueTooLarge)
	require.ErrorIs(t, s.SetWithTTL("k", []byte("12345"), time.Hour), shardkv.ErrValueTooLarge)
	_, err := s.CompareAndSwap("k", []byte("1234"), []byte("12345"))
	require.ErrorIs(t, err, shardkv.ErrValueTooLarge)
	require.Equal(t, "1234", stGet(t, s, "k"))
	require.Equal(t, "12345678", stGet(t, s, "big"), "a value stored under the old limit stays")
	// Increment is not subject to the value limit (as the reference): its
	// result is at most 20 bytes of decimal text.
	n, err := s.Increment("n", math.MinInt64)
	require.NoError(t, err)
	require.Equal(t, int64(math.MinInt64), n)

	s.SetMaxValueSize(32)
	require.Equal(t, 32, s.MaxValueSize())
	require.NoError(t, s.Set("k", bytes.Repeat([]byte{'y'}, 32)))
	require.ErrorIs(t, s.Set("k", bytes.Repeat([]byte{'y'}, 33)), shardkv.ErrValueTooLarge)

	s.SetMaxValueSize(-5)
	require.Equal(t, 0, s.MaxValueSize())
	require.NoError(t, s.Set("k", nil))
	require.ErrorIs(t, s.Set("k", []byte("y")), shardkv.ErrValueTooLarge)
}

// ---------------------------------------------------------------------------
// Quota.

func TestStore_QuotaExact(t *testing.T) {
	for _, limit := range []int{1, 2, 3, 10, 100} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			s := shardkv.New(shardkv.WithMaxKeys(limit))
			defer s.Close()
			require.Equal(t, limit, s.MaxKeys())
			for i := 0; i < limit; i++ {
				require.NoError(t, s.Set("k"+strconv.Itoa(i), []byte("0")), "key %d of %d", i, limit)
				require.Equal(t, i+1, s.Len())
			}
			require.ErrorIs(t, s.Set("extra", nil), shardkv.ErrQuotaExceeded)
			require.ErrorIs(t, s.SetString("extra", ""), shardkv.ErrQuotaExceeded)
			require.ErrorIs(t, s.SetWithTTL("extra", nil, time.Hour), shardkv.ErrQuotaExceeded)
			_, err := s.Increment("extra", 1)
			require.ErrorIs(t, err, shardkv.ErrQuotaExceeded)
			_, err = s.CompareAndSwap("extra", nil, nil)
			require.ErrorIs(t, err, shardkv.ErrQuotaExceeded)
			require.False(t, s.Exists("extra"))
			require.Equal(t, limit, s.Len())

			// Overwrites are allowed at the quota, through every write.
			for i := 0; i < limit; i++ {
				k := "k" + strconv.Itoa(i)
				require.NoError(t, s.Set(k, []byte("1")))
				require.NoError(t, s.SetString(k, "2"))
				require.NoError(t, s.SetWithTTL(k, []byte("3"), time.Hour))
				swapped, err := s.CompareAndSwap(k, []byte("3"), []byte("4"))
				require.NoError(t, err)
				require.True(t, swapped)
				n, err := s.Increment(k, 1)
				require.NoError(t, err)
				require.Equal(t, int64(5), n)
			}
			require.Equal(t, limit, s.Len())

			// Delete frees exactly one slot.
			existed, err := s.Delete("k0")
			require.NoError(t, err)
			require.True(t, existed)
			require.Equal(t, limit-1, s.Len())
			require.NoError(t, s.Set("extra", nil))
			require.ErrorIs(t, s.Set("extra2", nil), shardkv.ErrQuotaExceeded)
			require.Equal(t, limit, s.Len())
		})
	}
}

func TestStore_QuotaDefault(t *testing.T) {
	require.Equal(t, 10000, shardkv.DefaultMaxKeys)
	s := shardkv.New()
	defer s.Close()
	require.Equal(t, shardkv.DefaultMaxKeys, s.MaxKeys())
	for i := 0; i < shardkv.DefaultMaxKeys; i++ {
		require.NoError(t, s.Set("k"+strconv.Itoa(i), nil))
	}
	require.ErrorIs(t, s.Set("one-more", nil), shardkv.ErrQuotaExceeded)
	require.Equal(t, shardkv.DefaultMaxKeys, s.Len())
	s.Clear()
	require.Equal(t, 0, s.Len())
	require.NoError(t, s.Set("one-more", nil))
}

// keyCreators are the writes that can create a key, each reporting a
// refusal (or a CAS that did not swap) as an error.
var keyCreators = map[string]func(s *shardkv.Store, key string) error{
	"Set":        func(s *shardkv.Store, key string) error { return s.Set(key, []byte("1")) },
	"SetString":  func(s *shardkv.Store, key string) error { return s.SetString(key, "1") },
	"SetWithTTL": func(s *shardkv.Store, key string) error { return s.SetWithTTL(key, []byte("1"), time.Hour) },
	"Increment": func(s *shardkv.Store, key string) error {
		_, err := s.Increment(key, 1)
		return err
	},
	"CompareAndSwap": func(s *shardkv.Store, key string) error {
		swapped, err := s.CompareAndSwap(key, nil, []byte("1"))
		if err == nil && !swapped {
			return errNotSwapped
		}
		return err
	},
}

func TestStore_QuotaCreatingWrites(t *testing.T) {
	for name, create := range keyCreators {
		t.Run(name, func(t *testing.T) {
			s := shardkv.New(shardkv.WithMaxKeys(3))
			defer s.Close()
			for i := 0; i < 3; i++ {
				require.NoError(t, create(s, "k"+strconv.Itoa(i)))
			}
			require.Equal(t, 3, s.Len())
			require.ErrorIs(t, create(s, "k3"), shardkv.ErrQuotaExceeded)
			require.Equal(t, 3, s.Len())
			require.False(t, s.Exists("k3"))
		})
	}
}

func TestStore_SetMaxKeysLowering(t *testing.T) {
	s := shardkv.New(shardkv.WithMaxKeys(5))
	defer s.Close()
	for _, k := range []string{"a", "b", "c", "d"} {
		require.NoError(t, s.Set(k, []byte(k)))
	}
	s.SetMaxKeys(2)
	require.Equal(t, 2, s.MaxKeys())
	require.Equal(t, 4, s.Len(), "lowering the quota drops nothing")
	require.Equal(t, []string{"a", "b", "c", "d"}, stSortedKeys(t, s, ""))
	require.ErrorIs(t, s.Set("e", nil), shardkv.ErrQuotaExceeded)
	require.NoError(t, s.Set("a", []byte("A")), "overwrite above the quota is allowed")
	for _, k := range []string{"a", "b"} {
		_, err := s.Delete(k)
		require.NoError(t, err)
		require.ErrorIs(t, s.Set("e", nil), shardkv.ErrQuotaExceeded, "still at or above the quota after deleting %s", k)
	}
	_, err := s.Delete("c")
	require.NoError(t, err)
	require.NoError(t, s.Set("e", nil), "below the quota again")
	require.ErrorIs(t, s.Set("f", nil), shardkv.ErrQuotaExceeded)

	s.SetMaxKeys(3)
	require.NoError(t, s.Set("f", nil))
	require.Equal(t, 3, s.Len())

	s.SetMaxKeys(-1)
	require.Equal(t, 0, s.MaxKeys())
	require.ErrorIs(t, s.Set("g", nil), shardkv.ErrQuotaExceeded)
	require.NoError(t, s.Set("f", []byte("x")))
}

func TestStore_WithMaxKeysZero(t *testing.T) {
	for _, n := range []int{0, -3} {
		s := shardkv.New(shardkv.WithMaxKeys(n))
		require.Equal(t, 0, s.MaxKeys())
		require.ErrorIs(t, s.Set("k", nil), shardkv.ErrQuotaExceeded)
		require.ErrorIs(t, s.SetWithTTL("k", nil, 0), shardkv.ErrQuotaExceeded)
		_, err := s.Increment("k", 1)
		require.ErrorIs(t, err, shardkv.ErrQuotaExceeded)
		_, err = s.CompareAndSwap("k", nil, nil)
		require.ErrorIs(t, err, shardkv.ErrQuotaExceeded)
		swapped, err := s.CompareAndSwap("k", []byte{}, nil)
		require.NoError(t, err, "a CAS that cannot match does not reach the quota")
		require.False(t, swapped)
		require.Equal(t, 0, s.Len())
		require.NoError(t, s.Close())
	}
}

// ---------------------------------------------------------------------------
// TTL (fake time: testing/synctest).

func TestStore_TTLZeroOrNegativeIsAlreadyExpired(t *testing.T) {
	for _, ttl := range []time.Duration{0, -1, -time.Hour, math.MinInt64} {
		t.Run(ttl.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := shardkv.New()
				defer s.Close()
				sub := s.Subscribe()
				defer sub.Close()
				require.NoError(t, s.SetWithTTL("k", []byte("v"), ttl))
				ev := stRecv(t, sub)
				require.Equal(t, shardkv.Event{Key: "k", Kind: shardkv.EventSet, Value: []byte("v"), Op: "set", New: true}, ev)
				require.Equal(t, "<absent>", stGet(t, s, "k"), "Get must miss at once")
				require.False(t, s.Exists("k"))
				synctest.Wait()
				time.Sleep(2 * time.Millisecond)
				synctest.Wait()
				require.Equal(t, 0, s.Len())
				ev = stRecv(t, sub)
				require.Equal(t, shardkv.Event{Key: "k", Kind: shardkv.EventExpire, Op: "expired"}, ev)
				stNoEvent(t, sub)
			})
		})
	}
}

func TestStore_TTLZeroOnLiveKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		require.NoError(t, s.SetWithTTL("k", []byte("v"), time.Hour))
		require.NoError(t, s.SetWithTTL("k", []byte("w"), 0))
		require.False(t, s.Exists("k"))
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 0, s.Len())
		require.NoError(t, s.Set("n", nil))
		require.NoError(t, s.SetWithTTL("n", []byte("w"), -time.Second))
		require.Equal(t, "<absent>", stGet(t, s, "n"))
	})
}

// From its deadline on, an expired entry is absent to every read.
func TestStore_ExpiredIsAbsentEverywhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		require.NoError(t, s.SetWithTTL("p/exp", []byte("old"), 1500*time.Microsecond))
		require.NoError(t, s.Set("p/live", []byte("live")))
		time.Sleep(1500 * time.Microsecond) // at the deadline; the reaper looks at 2 ms
		require.Equal(t, 2, s.Len(), "not reclaimed yet")

		_, ok, err := s.Get("p/exp")
		require.NoError(t, err)
		require.False(t, ok, "Get")
		_, ok, err = s.GetString("p/exp")
		require.NoError(t, err)
		require.False(t, ok, "GetString")
		dst, ok, err := s.AppendValue([]byte("x"), "p/exp")
		require.NoError(t, err)
		require.False(t, ok, "AppendValue")
		require.Equal(t, []byte("x"), dst)
		called := false
		ok, err = s.View("p/exp", func([]byte) { called = true })
		require.NoError(t, err)
		require.False(t, ok, "View")
		require.False(t, called)
		require.False(t, s.Exists("p/exp"), "Exists")
		require.Equal(t, []string{"p/live"}, stSortedKeys(t, s, "p/"), "ListKeys")
		require.Equal(t, []string{"p/live"}, slices.Sorted(s.Keys("p/")), "Keys")
		require.Equal(t, map[string]string{"p/live": "live"}, stSnapshot(t, s), "All")
		_, ok, err = s.TTL("p/exp")
		require.NoError(t, err)
		require.False(t, ok, "TTL")
		ok, err = s.ExistsContext(context.Background(), "p/exp")
		require.NoError(t, err)
		require.False(t, ok, "ExistsContext")
		require.Equal(t, 2, s.Len(), "reads do not have to reclaim")
	})
}

func TestStore_DeleteExpiredPublishesExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		sub := s.Subscribe()
		defer sub.Close()
		require.NoError(t, s.SetWithTTL("k", []byte("v"), 1500*time.Microsecond))
		require.Equal(t, shardkv.EventSet, stRecv(t, sub).Kind)
		time.Sleep(1500 * time.Microsecond)
		existed, err := s.Delete("k")
		require.NoError(t, err)
		require.False(t, existed, "an expired key did not exist")
		require.Equal(t, 0, s.Len(), "Delete reclaims what it meets")
		require.Equal(t, shardkv.Event{Key: "k", Kind: shardkv.EventExpire, Op: "expired"}, stRecv(t, sub))
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
		stNoEvent(t, sub) // no EventDelete, and no second EventExpire
		require.Equal(t, 0, s.Len())
	})
}

func TestStore_CASOnExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New(shardkv.WithMaxKeys(2))
		defer s.Close()
		require.NoError(t, s.SetWithTTL("a", []byte("old"), 1500*time.Microsecond))
		require.NoError(t, s.SetWithTTL("b", []byte("old"), 1500*time.Microsecond))
		time.Sleep(1500 * time.Microsecond)

		swapped, err := s.CompareAndSwap("a", []byte("old"), []byte("new"))
		require.NoError(t, err)
		require.False(t, swapped, "an expired value does not match")
		swapped, err = s.CompareAndSwap("a", nil, []byte("new"))
		require.NoError(t, err)
		require.True(t, swapped, "nil expected matches an expired key")
		require.Equal(t, "new", stGet(t, s, "a"))
		ttl, ok, err := s.TTL("a")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, shardkv.NoTTL, ttl, "CAS stores a value with no TTL")

		swapped, err = s.CompareAndSwap("b", nil, []byte("new"))
		require.NoError(t, err)
		require.True(t, swapped, "at the quota, the expired entry's slot is reused")
		require.Equal(t, 2, s.Len())
		time.Sleep(time.Hour)
		require.Equal(t, map[string]string{"a": "new", "b": "new"}, stSnapshot(t, s))
	})
}

func TestStore_IncrementOnExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		require.NoError(t, s.SetWithTTL("n", []byte("41"), 1500*time.Microsecond))
		require.NoError(t, s.SetWithTTL("junk", []byte("not a number"), 1500*time.Microsecond))
		time.Sleep(1500 * time.Microsecond)
		n, err := s.Increment("n", 1)
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "an expired key counts as 0")
		n, err = s.Increment("junk", 7)
		require.NoError(t, err, "an expired value is not parsed")
		require.Equal(t, int64(7), n)
		for _, k := range []string{"n", "junk"} {
			ttl, ok, err := s.TTL(k)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, shardkv.NoTTL, ttl, "the fresh entry has no TTL")
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		require.Equal(t, map[string]string{"n": "1", "junk": "7"}, stSnapshot(t, s))
		require.Equal(t, 2, s.Len())
	})
}

func TestStore_IncrementKeepsTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		require.NoError(t, s.SetWithTTL("n", []byte("5"), 10*time.Second))
		time.Sleep(3 * time.Second)
		n, err := s.Increment("n", 1)
		require.NoError(t, err)
		require.Equal(t, int64(6), n)
		ttl, ok, err := s.TTL("n")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 7*time.Second, ttl, "Increment keeps the deadline")
		time.Sleep(7*time.Second - time.Nanosecond)
		require.Equal(t, "6", stGet(t, s, "n"))
		time.Sleep(time.Nanosecond)
		require.Equal(t, "<absent>", stGet(t, s, "n"), "expires at the original deadline")
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 0, s.Len())
	})
}

func TestStore_SetAndCASDropTTL(t *testing.T) {
	writes := map[string]func(s *shardkv.Store) error{
		"Set":       func(s *shardkv.Store) error { return s.Set("k", []byte("new")) },
		"SetString": func(s *shardkv.Store) error { return s.SetString("k", "new") },
		"CompareAndSwap": func(s *shardkv.Store) error {
			swapped, err := s.CompareAndSwap("k", []byte("old"), []byte("new"))
			if err == nil && !swapped {
				return errNotSwapped
			}
			return err
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := shardkv.New()
				defer s.Close()
				sub := s.Subscribe()
				defer sub.Close()
				require.NoError(t, s.SetWithTTL("k", []byte("old"), 10*time.Millisecond))
				require.NoError(t, write(s))
				ttl, ok, err := s.TTL("k")
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, shardkv.NoTTL, ttl)
				time.Sleep(time.Second)
				synctest.Wait()
				require.Equal(t, "new", stGet(t, s, "k"))
				require.Equal(t, 1, s.Len())
				evs := stDrain(t, sub)
				require.Len(t, evs, 2, "%v", evs)
				for _, ev := range evs {
					require.Equal(t, shardkv.EventSet, ev.Kind, "no EventExpire for the old deadline")
				}
			})
		})
	}
}

func TestStore_SetWithTTLOverwriteMovesDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		// Later.
		require.NoError(t, s.SetWithTTL("later", []byte("1"), 10*time.Millisecond))
		// Earlier.
		require.NoError(t, s.SetWithTTL("earlier", []byte("1"), 100*time.Millisecond))
		require.NoError(t, s.SetWithTTL("later", []byte("2"), 100*time.Millisecond))
		require.NoError(t, s.SetWithTTL("earlier", []byte("2"), 10*time.Millisecond))

		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, "2", stGet(t, s, "later"), "the old deadline passing must not expire it")
		require.Equal(t, "<absent>", stGet(t, s, "earlier"))
		require.Equal(t, 1, s.Len())
		ttl, ok, err := s.TTL("later")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 50*time.Millisecond, ttl)

		time.Sleep(50 * time.Millisecond)
		require.Equal(t, "<absent>", stGet(t, s, "later"))
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 0, s.Len())
	})
}

// An expired entry counts in Len until reclaimed, and the reaper reclaims
// it within two ticks (2 ms) of its deadline, with one EventExpire; it is
// never reclaimed (or absent) before its deadline.
func TestStore_TTLReclaimWithinTwoTicks(t *testing.T) {
	const year = 365 * 24 * time.Hour
	ttls := []time.Duration{
		time.Nanosecond, 999 * time.Microsecond, time.Millisecond, 1500 * time.Microsecond,
		10 * time.Millisecond, 63500 * time.Microsecond, 64 * time.Millisecond, 65 * time.Millisecond,
		time.Second, 4100 * time.Millisecond, 10 * time.Second, 5 * time.Minute, time.Hour,
		25 * time.Hour, 400 * 24 * time.Hour, 3 * year, 150 * year, // 150 years: past the wheel's top level
	}
	for _, ttl := range ttls {
		t.Run(ttl.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := shardkv.New()
				defer s.Close()
				sub := s.Subscribe()
				defer sub.Close()
				require.NoError(t, s.SetWithTTL("k", []byte("v"), ttl))
				require.Equal(t, shardkv.EventSet, stRecv(t, sub).Kind)
				time.Sleep(ttl - time.Nanosecond)
				synctest.Wait()
				require.True(t, s.Exists("k"), "absent before its deadline")
				require.Equal(t, 1, s.Len(), "reclaimed before its deadline")
				left, ok, err := s.TTL("k")
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, time.Nanosecond, left)
				stNoEvent(t, sub)

				time.Sleep(time.Nanosecond)
				require.False(t, s.Exists("k"), "present at its deadline")
				require.Equal(t, "<absent>", stGet(t, s, "k"))

				time.Sleep(2 * time.Millisecond)
				synctest.Wait()
				require.Equal(t, 0, s.Len(), "not reclaimed within 2 ms of its deadline")
				require.Equal(t, shardkv.Event{Key: "k", Kind: shardkv.EventExpire, Op: "expired"}, stRecv(t, sub))
				stNoEvent(t, sub)
			})
		})
	}
}

// Many entries with spread deadlines: each is reclaimed within 2 ms of its
// own deadline and never before it.
func TestStore_TTLReclaimManyDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New(shardkv.WithShards(4))
		defer s.Close()
		sub := s.Subscribe()
		defer sub.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		deadlines := map[string]time.Duration{}
		for i := 0; i < 200; i++ {
			ttl := time.Duration(rng.Int64N(int64(300 * time.Millisecond)))
			k := "k" + strconv.Itoa(i)
			deadlines[k] = ttl
			require.NoError(t, s.SetWithTTL(k, nil, ttl))
		}
		stDrain(t, sub)
		start := time.Now()
		expired := map[string]bool{}
		for step := 0; step < 320*4; step++ {
			time.Sleep(250 * time.Microsecond)
			synctest.Wait()
			now := time.Since(start)
			for _, ev := range stDrain(t, sub) {
				require.Equal(t, shardkv.EventExpire, ev.Kind)
				require.False(t, expired[ev.Key], "second EventExpire for %s", ev.Key)
				expired[ev.Key] = true
				require.LessOrEqual(t, deadlines[ev.Key], now, "%s reclaimed before its deadline", ev.Key)
			}
			for k, d := range deadlines {
				if now >= d+2*time.Millisecond {
					require.True(t, expired[k], "%s (deadline %v) not reclaimed at %v", k, d, now)
				}
				require.Equal(t, now < d, s.Exists(k), "%s at %v, deadline %v", k, now, d)
			}
			require.Equal(t, len(deadlines)-len(expired), s.Len())
		}
		require.Len(t, expired, len(deadlines))
	})
}

// CleanExpired reclaims at once exactly the entries whose deadline is <= now,
// even inside a millisecond tick.
func TestStore_CleanExpiredIsExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		require.NoError(t, s.SetWithTTL("a", nil, 1500*time.Microsecond))
		require.NoError(t, s.SetWithTTL("a2", nil, 1500*time.Microsecond-time.Nanosecond))
		require.NoError(t, s.SetWithTTL("b", nil, 1700*time.Microsecond))
		require.NoError(t, s.SetWithTTL("b2", nil, 1500*time.Microsecond+time.Nanosecond))
		require.NoError(t, s.SetWithTTL("d", nil, 3*time.Millisecond))
		require.NoError(t, s.Set("e", nil))
		sub := s.Subscribe()
		defer sub.Close()

		time.Sleep(1500 * time.Microsecond) // the reaper's next look is at 2 ms
		require.Equal(t, 6, s.Len())
		s.CleanExpired()
		require.Equal(t, 4, s.Len())
		require.Equal(t, []string{"b", "b2", "d", "e"}, stSortedKeys(t, s, ""))
		var got []string
		for _, ev := range stDrain(t, sub) {
			require.Equal(t, shardkv.EventExpire, ev.Kind)
			got = append(got, ev.Key)
		}
		slices.Sort(got)
		require.Equal(t, []string{"a", "a2"}, got)

		time.Sleep(time.Nanosecond)
		s.CleanExpired()
		require.Equal(t, []string{"b", "d", "e"}, stSortedKeys(t, s, ""))
		require.Equal(t, 3, s.Len())

		time.Sleep(200*time.Microsecond - time.Nanosecond) // 1.7 ms
		s.CleanExpired()
		require.Equal(t, []string{"d", "e"}, stSortedKeys(t, s, ""))
		require.Equal(t, 2, s.Len())
		s.CleanExpired() // idempotent
		require.Equal(t, 2, s.Len())

		time.Sleep(1300 * time.Microsecond) // 3 ms
		s.CleanExpired()
		require.Equal(t, []string{"e"}, stSortedKeys(t, s, ""))
		require.Equal(t, 1, s.Len())
		synctest.Wait()
		got = nil
		for _, ev := range stDrain(t, sub) {
			require.Equal(t, shardkv.EventExpire, ev.Kind)
			got = append(got, ev.Key)
		}
		slices.Sort(got)
		require.Equal(t, []string{"b", "b2", "d"}, got, "one EventExpire per entry")
	})
}

// Every path that meets an expired entry (reaper, CleanExpired, Delete, Set,
// CAS, Increment) publishes exactly one EventExpire for it.
func TestStore_ExactlyOneExpirePerEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		sub := s.Subscribe()
		defer sub.Close()
		const n = 60
		for i := 0; i < n; i++ {
			require.NoError(t, s.SetWithTTL("k"+strconv.Itoa(i), []byte("1"), 1500*time.Microsecond))
		}
		require.NoError(t, s.Set("live", nil))
		stDrain(t, sub)
		time.Sleep(1500 * time.Microsecond)
		for i := 0; i < n; i++ {
			k := "k" + strconv.Itoa(i)
			switch i % 6 {
			case 0:
				require.Equal(t, "<absent>", stGet(t, s, k))
			case 1:
				existed, err := s.Delete(k)
				require.NoError(t, err)
				require.False(t, existed)
			case 2:
				require.NoError(t, s.Set(k, []byte("fresh")))
			case 3:
				swapped, err := s.CompareAndSwap(k, nil, []byte("fresh"))
				require.NoError(t, err)
				require.True(t, swapped)
			case 4:
				v, err := s.Increment(k, 1)
				require.NoError(t, err)
				require.Equal(t, int64(1), v)
			case 5:
				swapped, err := s.CompareAndSwap(k, []byte("1"), []byte("fresh"))
				require.NoError(t, err)
				require.False(t, swapped)
			}
		}
		s.CleanExpired()
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		s.CleanExpired()
		expires := map[string]int{}
		for _, ev := range stDrain(t, sub) {
			switch ev.Kind {
			case shardkv.EventExpire:
				expires[ev.Key]++
			case shardkv.EventDelete:
				t.Fatalf("EventDelete for an expired key: %+v", ev)
			}
		}
		for i := 0; i < n; i++ {
			require.Equal(t, 1, expires["k"+strconv.Itoa(i)], "k%d", i)
		}
		require.Len(t, expires, n)
		require.Equal(t, 1+3*n/6, s.Len())
	})
}

// A new key refused for the quota first makes the store reclaim what is
// due; an entry not yet due still holds its slot.
func TestStore_QuotaReclaimsExpiredFirst(t *testing.T) {
	for name, write := range keyCreators {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := shardkv.New(shardkv.WithMaxKeys(3))
				defer s.Close()
				require.NoError(t, s.SetWithTTL("soon", nil, 1500*time.Microsecond))
				require.NoError(t, s.SetWithTTL("later", nil, 1700*time.Microsecond))
				require.NoError(t, s.Set("live", nil))
				sub := s.Subscribe()
				defer sub.Close()
				time.Sleep(1500 * time.Microsecond) // soon is due, the reaper has not looked
				require.Equal(t, 3, s.Len())

				require.NoError(t, write(s, "new1"), "the expired entry's slot must be reclaimed")
				require.Equal(t, 3, s.Len())
				require.Equal(t, shardkv.Event{Key: "soon", Kind: shardkv.EventExpire, Op: "expired"}, stRecv(t, sub))
				require.Equal(t, shardkv.EventSet, stRecv(t, sub).Kind)

				require.ErrorIs(t, write(s, "new2"), shardkv.ErrQuotaExceeded, "later is not due yet")
				require.Equal(t, 3, s.Len())
				require.True(t, s.Exists("later"))
				stNoEvent(t, sub)

				time.Sleep(200 * time.Microsecond) // later is due
				require.NoError(t, write(s, "new2"))
				require.Equal(t, []string{"live", "new1", "new2"}, stSortedKeys(t, s, ""))
			})
		})
	}
}

// ttl <= 0 entries are due at once, so the quota can reclaim them without
// any time passing.
func TestStore_QuotaReclaimsZeroTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New(shardkv.WithMaxKeys(1))
		defer s.Close()
		require.NoError(t, s.SetWithTTL("gone", []byte("v"), 0))
		require.NoError(t, s.Set("b", []byte("v")))
		require.Equal(t, 1, s.Len())
		require.Equal(t, []string{"b"}, stSortedKeys(t, s, ""))
	})
}

// The same, with the reaper racing the write for the expired entry: if the
// reaper reclaims it between the write finding the quota full and the write
// looking for something to reclaim, the write must still succeed (the store
// then holds fewer than MaxKeys entries).
func TestStore_QuotaReclaimRacingReaper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New(shardkv.WithMaxKeys(1))
		defer s.Close()
		failures := 0
		var firstErr error
		const rounds = 5000
		for i := 0; i < rounds; i++ {
			require.NoError(t, s.SetWithTTL("gone", nil, 0)) // wakes the reaper
			if err := s.Set("b", nil); err != nil {
				failures++
				if firstErr == nil {
					firstErr = fmt.Errorf("round %d: Len()=%d after the refusal: %w", i, s.Len(), err)
				}
				s.CleanExpired()
				continue
			}
			existed, err := s.Delete("b")
			require.NoError(t, err)
			require.True(t, existed)
		}
		require.Zero(t, failures, "%d of %d writes refused for the quota while the only entry was expired; first: %v",
			failures, rounds, firstErr)
	})
}

func TestStore_VeryLongTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		time.Sleep(time.Second) // so that now + ttl overflows
		require.NoError(t, s.SetWithTTL("max", []byte("v"), math.MaxInt64))
		require.NoError(t, s.SetWithTTL("max-1", []byte("v"), math.MaxInt64-1))
		require.NoError(t, s.SetWithTTL("200y", []byte("v"), 200*365*24*time.Hour))
		for _, k := range []string{"max", "max-1", "200y"} {
			ttl, ok, err := s.TTL(k)
			require.NoError(t, err)
			require.True(t, ok, k)
			require.Greater(t, ttl, 199*365*24*time.Hour, k)
		}
		time.Sleep(100 * 365 * 24 * time.Hour)
		synctest.Wait()
		for _, k := range []string{"max", "max-1", "200y"} {
			require.True(t, s.Exists(k), k)
		}
		require.Equal(t, 3, s.Len())
		time.Sleep(100*365*24*time.Hour + time.Second)
		synctest.Wait()
		require.False(t, s.Exists("200y"))
		require.Equal(t, 2, s.Len(), "the 200-year entry is reclaimed, the saturated ones stay")
		require.True(t, s.Exists("max"))
	})
}

func TestStore_TTLReportsRemaining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		require.NoError(t, s.SetWithTTL("k", []byte("v"), 10*time.Second))
		require.NoError(t, s.Set("forever", []byte("v")))
		ttl, ok, err := s.TTL("k")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 10*time.Second, ttl)
		time.Sleep(3 * time.Second)
		ttl, ok, err = s.TTL("k")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 7*time.Second, ttl)

		ttl, ok, err = s.TTL("forever")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, shardkv.NoTTL, ttl)

		_, ok, err = s.TTL("missing")
		require.NoError(t, err)
		require.False(t, ok)
		_, _, err = s.TTL("bad key")
		require.ErrorIs(t, err, shardkv.ErrInvalidKey)
	})
}

func TestStore_DeleteCancelsTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New()
		defer s.Close()
		sub := s.Subscribe()
		defer sub.Close()
		require.NoError(t, s.SetWithTTL("k", []byte("v"), 10*time.Millisecond))
		existed, err := s.Delete("k")
		require.NoError(t, err)
		require.True(t, existed)
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, 0, s.Len())
		evs := stDrain(t, sub)
		require.Equal(t, []shardkv.Event{
			{Key: "k", Kind: shardkv.EventSet, Value: []byte("v"), Op: "set", New: true},
			{Key: "k", Kind: shardkv.EventDelete, Op: "del"},
		}, evs)
		// The key can be written again and keeps no trace of the old TTL.
		require.NoError(t, s.Set("k", []byte("w")))
		time.Sleep(time.Second)
		require.Equal(t, "w", stGet(t, s, "k"))
	})
}

// Clear removes everything without events, pending TTLs included: they fire
// no EventExpire later and do not drive Len below zero.
func TestStore_Clear(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New(shardkv.WithMaxKeys(3))
		defer s.Close()
		require.NoError(t, s.Set("a", nil))
		require.NoError(t, s.SetWithTTL("b", nil, 10*time.Millisecond))
		require.NoError(t, s.SetWithTTL("c", nil, 0))
		synctest.Wait() // the reaper has reclaimed c
		require.Equal(t, 2, s.Len())
		sub := s.Subscribe()
		defer sub.Close()
		s.Clear()
		require.Equal(t, 0, s.Len())
		require.Empty(t, stSortedKeys(t, s, ""))
		time.Sleep(time.Second)
		synctest.Wait()
		stNoEvent(t, sub)
		require.Equal(t, 0, s.Len())
		for _, k := range []string{"x", "y", "z"} {
			require.NoError(t, s.Set(k, nil))
		}
		require.ErrorIs(t, s.Set("w", nil), shardkv.ErrQuotaExceeded)
		require.NoError(t, s.SetWithTTL("x", nil, 10*time.Millisecond), "overwrite at the quota")
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 2, s.Len())
	})
}

// ---------------------------------------------------------------------------
// Increment.

func TestStore_IncrementParsing(t *testing.T) {
	inputs := []string{
		"+5", "-5", "007", "", "+", "-", " 5", "5 ", "1_000", "0x10", "0", "-0", "+0", "+-5", "--5", "++5",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"99999999999999999999", "-99999999999999999999", "000000000000000000000000000000000042",
		"\xff", "1\xff", "\xff1", "٣", "1٣", "１", "1e3", "1.0", "1,000", "\x00", "5\n", "\t5",
	}
	for _, in := range inputs {
		t.Run(strconv.Quote(in), func(t *testing.T) {
			s := shardkv.New()
			defer s.Close()
			stCheckIncrementParse(t, s, in)
		})
	}
}

// The same comparison with strconv.ParseInt over random strings.
func TestStore_IncrementParsingRandom(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	rng := rand.New(rand.NewPCG(42, 7))
	alphabet := []string{"0", "1", "5", "9", "+", "-", " ", "_", "x", "٣", "\xff", "e", "."}
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		n := rng.IntN(22)
		for j := 0; j < n; j++ {
			// Mostly digits so that many strings parse.
			if rng.IntN(4) != 0 {
				b.WriteByte(byte('0' + rng.IntN(10)))
			} else {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
		}
		stCheckIncrementParse(t, s, b.String())
	}
}

func stCheckIncrementParse(t *testing.T, s *shardkv.Store, in string) {
	t.Helper()
	require.NoError(t, s.Set("n", []byte(in)))
	got, err := s.Increment("n", 1)
	want, perr := strconv.ParseInt(in, 10, 64)
	if perr == nil {
		require.NoError(t, err, "%q parses for strconv.ParseInt", in)
		if want < math.MaxInt64 {
			want++
		}
		require.Equal(t, want, got, "%q", in)
		require.Equal(t, strconv.FormatInt(want, 10), stGet(t, s, "n"), "stored as decimal text")
		return
	}
	require.Error(t, err, "%q does not parse for strconv.ParseInt", in)
	var se *shardkv.StorageError
	require.ErrorAs(t, err, &se, "%q", in)
	require.True(t, strings.HasPrefix(err.Error(), "storage error: invalid number: "), "%q: %v", in, err)
	if errors.Is(perr, strconv.ErrRange) {
		if strings.HasPrefix(in, "-") {
			require.Contains(t, err.Error(), "too small", "%q", in)
		} else {
			require.Contains(t, err.Error(), "too large", "%q", in)
		}
	}
	require.Equal(t, in, stGet(t, s, "n"), "a failed Increment leaves the value")
}

func TestStore_IncrementSaturation(t *testing.T) {
	const hi, lo = math.MaxInt64, math.MinInt64
	cases := []struct {
		start       string // "" for a missing key
		delta, want int64
	}{
		{strconv.FormatInt(hi, 10), 1, hi},
		{strconv.FormatInt(hi, 10), hi, hi},
		{strconv.FormatInt(hi, 10), 0, hi},
		{strconv.FormatInt(hi, 10), -1, hi - 1},
		{strconv.FormatInt(hi, 10), lo, -1},
		{strconv.FormatInt(lo, 10), -1, lo},
		{strconv.FormatInt(lo, 10), lo, lo},
		{strconv.FormatInt(lo, 10), 1, lo + 1},
		{strconv.FormatInt(lo, 10), hi, -1},
		{"1", hi, hi},
		{"-1", hi, hi - 1},
		{"-1", lo, lo},
		{"-2", lo, lo},
		{"0", lo, lo},
		{"", lo, lo},
		{"", hi, hi},
		{"", 0, 0},
		{"4611686018427387904", 4611686018427387904, hi}, // 2^62 + 2^62
		{"-4611686018427387904", -4611686018427387905, lo},
		{"-4611686018427387904", -4611686018427387904, lo},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s%+d", tc.start, tc.delta), func(t *testing.T) {
			s := shardkv.New()
			defer s.Close()
			if tc.start != "" {
				require.NoError(t, s.Set("c", []byte(tc.start)))
			}
			got, err := s.Increment("c", tc.delta)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, strconv.FormatInt(tc.want, 10), stGet(t, s, "c"))
		})
	}
}

func TestStore_IncrementPublishesEvent(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()
	_, err := s.Increment("n", -3)
	require.NoError(t, err)
	require.Equal(t, shardkv.Event{Key: "n", Kind: shardkv.EventSet, Value: []byte("-3"), Op: "incrby", New: true}, stRecv(t, sub))
	require.NoError(t, s.Set("bad", []byte("x")))
	stRecv(t, sub)
	_, err = s.Increment("bad", 1)
	require.Error(t, err)
	stNoEvent(t, sub)
}

// ---------------------------------------------------------------------------
// CompareAndSwap: nil versus empty.

func TestStore_CASNilVersusEmpty(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(s *shardkv.Store)
		expected []byte
		want     bool
	}{
		{"nil on absent", nil, nil, true},
		{"empty on absent", nil, []byte{}, false},
		{"value on absent", nil, []byte("v"), false},
		{"empty on empty", func(s *shardkv.Store) { require.NoError(t, s.Set("k", []byte{})) }, []byte{}, true},
		{"empty on empty set from nil", func(s *shardkv.Store) { require.NoError(t, s.Set("k", nil)) }, []byte{}, true},
		{"empty on empty SetString", func(s *shardkv.Store) { require.NoError(t, s.SetString("k", "")) }, []byte{}, true},
		{"nil on empty", func(s *shardkv.Store) { require.NoError(t, s.Set("k", []byte{})) }, nil, false},
		{"nil on present", func(s *shardkv.Store) { require.NoError(t, s.Set("k", []byte("v"))) }, nil, false},
		{"empty on present", func(s *shardkv.Store) { require.NoError(t, s.Set("k", []byte("v"))) }, []byte{}, false},
		{"prefix on present", func(s *shardkv.Store) { require.NoError(t, s.Set("k", []byte("vv"))) }, []byte("v"), false},
		{"longer on present", func(s *shardkv.Store) { require.NoError(t, s.Set("k", []byte("v"))) }, []byte("vv"), false},
		{"equal on present", func(s *shardkv.Store) { require.NoError(t, s.Set("k", []byte("v"))) }, []byte("v"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := shardkv.New()
			defer s.Close()
			if tc.setup != nil {
				tc.setup(s)
			}
			before := stGet(t, s, "k")
			swapped, err := s.CompareAndSwap("k", tc.expected, []byte("new"))
			require.NoError(t, err)
			require.Equal(t, tc.want, swapped)
			if tc.want {
				require.Equal(t, "new", stGet(t, s, "k"))
			} else {
				require.Equal(t, before, stGet(t, s, "k"))
			}
		})
	}
}

func TestStore_CASStoresNilAsEmpty(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	swapped, err := s.CompareAndSwap("k", nil, nil)
	require.NoError(t, err)
	require.True(t, swapped)
	v, ok, err := s.Get("k")
	require.NoError(t, err)
	require.True(t, ok, "a CAS of a nil new value stores an empty value")
	require.NotNil(t, v)
	require.Empty(t, v)
	swapped, err = s.CompareAndSwap("k", nil, []byte("x"))
	require.NoError(t, err)
	require.False(t, swapped, "the key is present now")
}

// ---------------------------------------------------------------------------
// Values in and out.

func TestStore_ValuesAreCopied(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()

	in := []byte("abc")
	require.NoError(t, s.Set("set", in))
	in[0] = 'X'
	require.Equal(t, "abc", stGet(t, s, "set"), "mutating the slice passed to Set")

	in = []byte("abc")
	require.NoError(t, s.SetWithTTL("ttl", in, time.Hour))
	in[0] = 'X'
	require.Equal(t, "abc", stGet(t, s, "ttl"), "mutating the slice passed to SetWithTTL")

	in = []byte("abc")
	swapped, err := s.CompareAndSwap("cas", nil, in)
	require.NoError(t, err)
	require.True(t, swapped)
	in[0] = 'X'
	require.Equal(t, "abc", stGet(t, s, "cas"), "mutating the slice passed to CompareAndSwap")

	expected := []byte("abc")
	swapped, err = s.CompareAndSwap("cas", expected, []byte("def"))
	require.NoError(t, err)
	require.True(t, swapped)
	expected[0] = 'X'
	require.Equal(t, "def", stGet(t, s, "cas"))

	out, _, err := s.Get("set")
	require.NoError(t, err)
	out[0] = 'Y'
	require.Equal(t, "abc", stGet(t, s, "set"), "mutating the slice Get returned")

	app, ok, err := s.AppendValue(make([]byte, 0, 64), "set")
	require.NoError(t, err)
	require.True(t, ok)
	app[0] = 'Y'
	require.Equal(t, "abc", stGet(t, s, "set"), "mutating the slice AppendValue returned")

	for _, v := range s.All("set") {
		v[0] = 'Y'
	}
	require.Equal(t, "abc", stGet(t, s, "set"), "mutating a value All yielded")

	// Event values hold what was stored, whatever the caller did after.
	evs := stDrain(t, sub)
	require.Equal(t, "abc", string(evs[0].Value))
	require.Equal(t, "abc", string(evs[1].Value))
	require.Equal(t, "abc", string(evs[2].Value))
	require.Equal(t, "def", string(evs[3].Value))
}

func TestStore_EmptyValue(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	writes := map[string]func(key string) error{
		"Set(nil)":        func(key string) error { return s.Set(key, nil) },
		"Set([]byte{})":   func(key string) error { return s.Set(key, []byte{}) },
		"SetString(\"\")": func(key string) error { return s.SetString(key, "") },
		"SetWithTTL(nil)": func(key string) error { return s.SetWithTTL(key, nil, time.Hour) },
	}
	for name, write := range writes {
		require.NoError(t, write("k"), name)
		v, ok, err := s.Get("k")
		require.NoError(t, err)
		require.True(t, ok, name)
		require.NotNil(t, v, "%s: Get of an empty value returns a non-nil empty slice", name)
		require.Empty(t, v, name)
		str, ok, err := s.GetString("k")
		require.NoError(t, err)
		require.True(t, ok, name)
		require.Equal(t, "", str)
		v, ok, err = s.GetContext(context.Background(), "k")
		require.NoError(t, err)
		require.True(t, ok, name)
		require.NotNil(t, v, name)
		require.True(t, s.Exists("k"), name)
	}
}

func TestStore_GetStringInvalidUTF8(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	for _, v := range [][]byte{{0xff}, []byte("ok\xe6\x97"), {0xed, 0xa0, 0x80}} {
		require.NoError(t, s.Set("k", v))
		_, _, err := s.GetString("k")
		var se *shardkv.StorageError
		require.ErrorAs(t, err, &se, "%q", v)
		require.True(t, strings.HasPrefix(err.Error(), "storage error: "))
		got, ok, err := s.Get("k")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, v, got, "Get returns the bytes as they are")
	}
	require.NoError(t, s.SetString("k", "héllo, 世界"))
	str, ok, err := s.GetString("k")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "héllo, 世界", str)
}

func TestStore_AppendValueAndView(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	require.NoError(t, s.Set("k", []byte("value")))

	dst := []byte("prefix:")
	out, ok, err := s.AppendValue(dst, "k")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "prefix:value", string(out))
	require.Equal(t, "prefix:", string(dst))

	out, ok, err = s.AppendValue(dst, "missing")
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, "prefix:", string(out))

	_, _, err = s.AppendValue(nil, "bad key")
	require.ErrorIs(t, err, shardkv.ErrInvalidKey)

	var seen []byte
	ok, err = s.View("k", func(v []byte) { seen = bytes.Clone(v) })
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "value", string(seen))

	called := false
	ok, err = s.View("missing", func([]byte) { called = true })
	require.NoError(t, err)
	require.False(t, ok)
	require.False(t, called)

	// View's fn may use the store.
	ok, err = s.View("k", func(v []byte) {
		require.NoError(t, s.Set("k2", v))
		require.Equal(t, "value", stGet(t, s, "k"))
	})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "value", stGet(t, s, "k2"))

	_, err = s.View("bad key", func([]byte) { called = true })
	require.ErrorIs(t, err, shardkv.ErrInvalidKey)
	require.False(t, called)
}

func TestStore_KeysAndAll(t *testing.T) {
	s := shardkv.New(shardkv.WithShards(8))
	defer s.Close()
	want := map[string]string{}
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("it/%02d", i)
		want[k] = strconv.Itoa(i)
		require.NoError(t, s.Set(k, []byte(want[k])))
	}
	require.NoError(t, s.Set("other", []byte("o")))
	require.NoError(t, s.Set("itx", []byte("x")))

	require.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(s.Keys("it/")))
	got := map[string]string{}
	for k, v := range s.All("it/") {
		got[k] = string(v)
	}
	require.Equal(t, want, got)
	require.Len(t, slices.Collect(s.Keys("")), 52)
	require.Empty(t, slices.Collect(s.Keys("nope")))

	// Early break.
	n := 0
	for range s.Keys("it/") {
		n++
		if n == 3 {
			break
		}
	}
	require.Equal(t, 3, n)
	n = 0
	for range s.All("") {
		n++
		break
	}
	require.Equal(t, 1, n)

	// The loop body may use the store.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k, v := range s.All("it/") {
			assert.Equal(t, want[k], string(v))
			assert.NoError(t, s.Set("copy/"+k, v))
			got, ok, err := s.Get(k)
			assert.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, want[k], string(got))
			_, err = s.ListKeys("it/")
			assert.NoError(t, err)
			_, err = s.Increment("count", 1)
			assert.NoError(t, err)
			existed, err := s.Delete(k)
			assert.NoError(t, err)
			assert.True(t, existed)
			for range s.Keys("other") {
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("iterating while using the store deadlocked")
	}
	require.Empty(t, slices.Collect(s.Keys("it/")))
	require.Len(t, slices.Collect(s.Keys("copy/it/")), 50)
	require.Equal(t, "50", stGet(t, s, "count"))
}

// TestStore_ListKeysNeverNil: ListKeys with nothing to list returns an
// empty, non-nil slice.
func TestStore_ListKeysNeverNil(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	// An empty result is an empty, non-nil slice (require.Empty alone would
	// pass for nil).
	keys, err := s.ListKeys("")
	require.NoError(t, err)
	require.NotNil(t, keys)
	require.Empty(t, keys)
	// Exists and ListKeys do not validate keys.
	require.False(t, s.Exists(""))
	require.False(t, s.Exists("bad key"))
	require.False(t, s.Exists("\xff"))
	keys, err = s.ListKeys("bad prefix \xff")
	require.NoError(t, err)
	require.NotNil(t, keys)
	require.Empty(t, keys)
	// So is a prefix that matches none of the keys held.
	require.NoError(t, s.Set("k", []byte("v")))
	keys, err = s.ListKeys("x")
	require.NoError(t, err)
	require.NotNil(t, keys)
	require.Empty(t, keys)
}

// ---------------------------------------------------------------------------
// Closed store.

func TestStore_Closed(t *testing.T) {
	s := shardkv.New(shardkv.WithMaxKeys(5), shardkv.WithMaxValueSize(10))
	require.NoError(t, s.Set("k", []byte("v")))
	require.NoError(t, s.SetWithTTL("t", []byte("v"), time.Hour))
	sub := s.Subscribe()
	defer sub.Close()
	ctx := context.Background()
	ctxW, cancelW := context.WithCancel(ctx)
	defer cancelW()
	watch := s.WatchPrefix(ctxW, "")
	require.NoError(t, s.Close())

	ops := map[string]func(key string) error{
		"Get":         func(k string) error { _, _, err := s.Get(k); return err },
		"GetString":   func(k string) error { _, _, err := s.GetString(k); return err },
		"AppendValue": func(k string) error { _, _, err := s.AppendValue(nil, k); return err },
		"View": func(k string) error {
			_, err := s.View(k, func([]byte) { t.Error("View called fn on a closed store") })
			return err
		},
		"TTL":                   func(k string) error { _, _, err := s.TTL(k); return err },
		"Set":                   func(k string) error { return s.Set(k, []byte("v")) },
		"SetString":             func(k string) error { return s.SetString(k, "v") },
		"SetWithTTL":            func(k string) error { return s.SetWithTTL(k, []byte("v"), time.Hour) },
		"Delete":                func(k string) error { _, err := s.Delete(k); return err },
		"ListKeys":              func(k string) error { _, err := s.ListKeys(k); return err },
		"Increment":             func(k string) error { _, err := s.Increment(k, 1); return err },
		"CompareAndSwap":        func(k string) error { _, err := s.CompareAndSwap(k, nil, []byte("v")); return err },
		"GetContext":            func(k string) error { _, _, err := s.GetContext(ctx, k); return err },
		"SetContext":            func(k string) error { return s.SetContext(ctx, k, []byte("v")) },
		"SetWithTTLContext":     func(k string) error { return s.SetWithTTLContext(ctx, k, []byte("v"), time.Hour) },
		"DeleteContext":         func(k string) error { _, err := s.DeleteContext(ctx, k); return err },
		"ExistsContext":         func(k string) error { _, err := s.ExistsContext(ctx, k); return err },
		"ListKeysContext":       func(k string) error { _, err := s.ListKeysContext(ctx, k); return err },
		"IncrementContext":      func(k string) error { _, err := s.IncrementContext(ctx, k, 1); return err },
		"CompareAndSwapContext": func(k string) error { _, err := s.CompareAndSwapContext(ctx, k, nil, nil); return err },
	}
	for name, op := range ops {
		for _, key := range []string{"k", "t", "new", "bad key", ""} {
			require.ErrorIs(t, op(key), shardkv.ErrClosed, "%s(%q)", name, key)
		}
	}
	// Oversized values and a full quota do not mask ErrClosed either.
	require.ErrorIs(t, s.Set("k", bytes.Repeat([]byte{1}, 100)), shardkv.ErrClosed)

	require.False(t, s.Exists("k"))
	require.Empty(t, slices.Collect(s.Keys("")))
	for range s.All("") {
		t.Fatal("All yielded on a closed store")
	}
	s.CleanExpired() // no panic
	s.Clear()

	// Subscriptions end; new ones end at once; WatchPrefix channels close.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := sub.Recv(rctx)
	require.ErrorIs(t, err, shardkv.ErrClosed)
	late := s.Subscribe()
	_, err = late.Recv(rctx)
	require.ErrorIs(t, err, shardkv.ErrClosed)
	late.Close()
	select {
	case _, ok := <-watch:
		require.False(t, ok, "WatchPrefix channel must be closed")
	case <-rctx.Done():
		t.Fatal("WatchPrefix channel not closed by Close")
	}
	_, ok := <-s.WatchPrefix(ctx, "")
	require.False(t, ok, "WatchPrefix on a closed store returns a closed channel")

	// The limits' getters and setters still work.
	require.Equal(t, 5, s.MaxKeys())
	require.Equal(t, 10, s.MaxValueSize())
	s.SetMaxKeys(7)
	s.SetMaxValueSize(11)
	require.Equal(t, 7, s.MaxKeys())
	require.Equal(t, 11, s.MaxValueSize())
	require.False(t, s.IsClustered())

	require.NoError(t, s.Close(), "a second Close returns nil")
	require.NoError(t, s.Close())
}

func TestStore_CloseConcurrent(t *testing.T) {
	s := shardkv.New()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, s.Close())
		}()
	}
	wg.Wait()
	require.ErrorIs(t, s.Set("k", nil), shardkv.ErrClosed)
}

// ---------------------------------------------------------------------------
// Options.

func TestStore_WithShards(t *testing.T) {
	for _, n := range []int{-5, 0, 1, 2, 3, 5, 64, 100, 1 << 20} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			s := shardkv.New(shardkv.WithShards(n), shardkv.WithMaxKeys(300))
			defer s.Close()
			want := map[string]string{}
			for i := 0; i < 300; i++ {
				k := "k" + strconv.Itoa(i)
				want[k] = strconv.Itoa(i * i)
				require.NoError(t, s.Set(k, []byte(want[k])))
			}
			require.ErrorIs(t, s.Set("extra", nil), shardkv.ErrQuotaExceeded)
			require.Equal(t, want, stSnapshot(t, s))
			keys, err := s.ListKeys("k1")
			require.NoError(t, err)
			require.Len(t, keys, 111) // k1, k10-k19, k100-k199
			for k, v := range want {
				require.Equal(t, v, stGet(t, s, k))
			}
			existed, err := s.Delete("k7")
			require.NoError(t, err)
			require.True(t, existed)
			require.Equal(t, 299, s.Len())
		})
	}
}

func TestStore_WithShardsTTL(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		synctest.Test(t, func(t *testing.T) {
			s := shardkv.New(shardkv.WithShards(n))
			defer s.Close()
			for i := 0; i < 20; i++ {
				require.NoError(t, s.SetWithTTL("k"+strconv.Itoa(i), nil, time.Duration(i+1)*time.Millisecond))
			}
			time.Sleep(22 * time.Millisecond)
			synctest.Wait()
			require.Equal(t, 0, s.Len())
		})
	}
}

func TestStore_WithKeyValidator(t *testing.T) {
	errCustom := errors.New("custom: keys must start with ok")
	custom := func(key string) error {
		if strings.HasPrefix(key, "ok") {
			return nil
		}
		return errCustom
	}
	s := shardkv.New(shardkv.WithKeyValidator(custom))
	defer s.Close()

	require.NoError(t, s.Set("ok key with spaces", []byte("v")), "the custom rule replaces ValidateKey")
	require.NoError(t, s.Set("ok 😀", []byte("v")))
	require.Equal(t, "v", stGet(t, s, "ok key with spaces"))

	errs := map[string]error{
		"Set":        s.Set("valid-by-default", nil),
		"SetString":  s.SetString("nope", ""),
		"SetWithTTL": s.SetWithTTL("nope", nil, time.Hour),
		"Get":        func() error { _, _, err := s.Get("nope"); return err }(),
		"GetString":  func() error { _, _, err := s.GetString("nope"); return err }(),
		"Delete":     func() error { _, err := s.Delete("nope"); return err }(),
		"Increment":  func() error { _, err := s.Increment("nope", 1); return err }(),
		"CAS":        func() error { _, err := s.CompareAndSwap("nope", nil, nil); return err }(),
		"TTL":        func() error { _, _, err := s.TTL("nope"); return err }(),
		"SetContext": s.SetContext(context.Background(), "nope", nil),
	}
	for name, err := range errs {
		require.ErrorIs(t, err, shardkv.ErrInvalidKey, name)
		require.ErrorIs(t, err, errCustom, name)
		require.Contains(t, err.Error(), errCustom.Error(), name)
	}
	require.Equal(t, 2, s.Len())

	// A validator whose error already wraps ErrInvalidKey.
	errWrapped := fmt.Errorf("%w: no digits allowed", shardkv.ErrInvalidKey)
	s2 := shardkv.New(shardkv.WithKeyValidator(func(key string) error {
		if strings.ContainsAny(key, "0123456789") {
			return errWrapped
		}
		return nil
	}))
	defer s2.Close()
	err := s2.Set("k1", nil)
	require.ErrorIs(t, err, shardkv.ErrInvalidKey)
	require.ErrorIs(t, err, errWrapped)
	require.NoError(t, s2.Set("", nil), "this validator allows the empty key")

	// nil restores the default.
	s3 := shardkv.New(shardkv.WithKeyValidator(custom), shardkv.WithKeyValidator(nil))
	defer s3.Close()
	require.NoError(t, s3.Set("valid-by-default", nil))
	require.ErrorIs(t, s3.Set("ok key", nil), shardkv.ErrInvalidKey)
	require.NotErrorIs(t, s3.Set("ok key", nil), errCustom)
}

func TestStore_WithBinaryKeys(t *testing.T) {
	for _, tc := range []struct {
		name   string
		maxLen int
		key    string
		valid  bool
	}{
		{"empty", 8, "", true},
		{"space", 8, "a b", true},
		{"not UTF-8", 8, "\xff\x00\xfe", true},
		{"NUL bytes", 8, "\x00\x00", true},
		{"at the limit", 8, "12345678", true},
		{"over the limit", 8, "123456789", false},
		{"limit 0, empty", 0, "", true},
		{"limit 0, one byte", 0, "a", false},
		{"negative limit is 0", -5, "a", false},
		{"past ValidateKey's 1024", 4096, strings.Repeat("k", 4096), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := shardkv.New(shardkv.WithBinaryKeys(tc.maxLen))
			defer s.Close()
			err := s.Set(tc.key, []byte("v"))
			_, _, gerr := s.Get(tc.key)
			_, derr := s.Delete(tc.key)
			if !tc.valid {
				for name, e := range map[string]error{"Set": err, "Get": gerr, "Delete": derr} {
					require.ErrorIs(t, e, shardkv.ErrInvalidKey, name)
					require.Contains(t, e.Error(), fmt.Sprintf("%d bytes, limit %d", len(tc.key), max(tc.maxLen, 0)), name)
				}
				require.Equal(t, 0, s.Len(), "a refused key is not stored")
				return
			}
			require.NoError(t, err)
			require.NoError(t, gerr)
			require.NoError(t, derr)
		})
	}

	// Later options win, either way round.
	s := shardkv.New(shardkv.WithBinaryKeys(16), shardkv.WithKeyValidator(nil))
	defer s.Close()
	require.ErrorIs(t, s.Set("a b", nil), shardkv.ErrInvalidKey, "WithKeyValidator(nil) after it restores ValidateKey")
	s2 := shardkv.New(shardkv.WithKeyValidator(func(string) error { return errors.New("no") }), shardkv.WithBinaryKeys(16))
	defer s2.Close()
	require.NoError(t, s2.Set("a b", nil), "WithBinaryKeys after a validator replaces it")
}

// A custom validator is handed a copy of the key: one that keeps it (it
// should not, but a buggy one may) still holds the bytes it was given
// after the caller reuses the memory the key was built in.
func TestStore_WithKeyValidatorGetsACopy(t *testing.T) {
	var kept []string
	s := shardkv.New(shardkv.WithKeyValidator(func(key string) error {
		kept = append(kept, key)
		return nil
	}))
	defer s.Close()
	b := []byte("key-one")
	require.NoError(t, s.Set(unsafe.String(&b[0], len(b)), []byte("v")))
	copy(b, "XXXXXXX")
	require.Equal(t, []string{"key-one"}, kept)
	require.Equal(t, "v", stGet(t, s, "key-one"))
}

func TestStore_WithWatchCapacity(t *testing.T) {
	cases := []struct {
		name     string
		opts     []shardkv.Option
		capacity int
	}{
		{"default", nil, shardkv.DefaultWatchCapacity},
		{"1", []shardkv.Option{shardkv.WithWatchCapacity(1)}, 1},
		{"5", []shardkv.Option{shardkv.WithWatchCapacity(5)}, 5},
		{"0 is 1", []shardkv.Option{shardkv.WithWatchCapacity(0)}, 1},
		{"-3 is 1", []shardkv.Option{shardkv.WithWatchCapacity(-3)}, 1},
	}
	require.Equal(t, 1024, shardkv.DefaultWatchCapacity)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := shardkv.New(tc.opts...)
			defer s.Close()
			sub := s.Subscribe()
			defer sub.Close()
			// Exactly capacity behind: no lag.
			for i := 0; i < tc.capacity; i++ {
				require.NoError(t, s.Set("k", []byte(strconv.Itoa(i))))
			}
			for i := 0; i < tc.capacity; i++ {
				require.Equal(t, strconv.Itoa(i), string(stRecv(t, sub).Value))
			}
			stNoEvent(t, sub)
			// Three more than capacity behind: told it missed 3, then the
			// oldest event held.
			for i := 0; i < tc.capacity+3; i++ {
				require.NoError(t, s.Set("k", []byte(strconv.Itoa(i))))
			}
			_, err := stPoll(sub)
			var lag *shardkv.LaggedError
			require.ErrorAs(t, err, &lag)
			require.Equal(t, uint64(3), lag.Missed)
			for i := 3; i < tc.capacity+3; i++ {
				require.Equal(t, strconv.Itoa(i), string(stRecv(t, sub).Value))
			}
			stNoEvent(t, sub)
		})
	}
}

func TestStore_EventKindString(t *testing.T) {
	require.Equal(t, "set", shardkv.EventSet.String())
	require.Equal(t, "delete", shardkv.EventDelete.String())
	require.Equal(t, "expire", shardkv.EventExpire.String())
	require.Equal(t, shardkv.EventKind(1), shardkv.EventSet)
	require.Equal(t, shardkv.EventKind(2), shardkv.EventDelete)
	require.Equal(t, shardkv.EventKind(3), shardkv.EventExpire)
}

// Every successful mutation publishes one event with the stored value;
// Delete of a missing key publishes nothing.
func TestStore_MutationEvents(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()
	require.NoError(t, s.Set("a", []byte("1")))
	require.NoError(t, s.SetString("b", "2"))
	require.NoError(t, s.SetWithTTL("c", []byte("3"), time.Hour))
	_, err := s.Increment("a", 4)
	require.NoError(t, err)
	_, err = s.CompareAndSwap("b", []byte("2"), []byte("22"))
	require.NoError(t, err)
	_, err = s.CompareAndSwap("b", []byte("2"), []byte("x")) // miss: no event
	require.NoError(t, err)
	_, err = s.Delete("c")
	require.NoError(t, err)
	_, err = s.Delete("c") // absent: no event
	require.NoError(t, err)
	require.Equal(t, []shardkv.Event{
		{Key: "a", Kind: shardkv.EventSet, Value: []byte("1"), Op: "set", New: true},
		{Key: "b", Kind: shardkv.EventSet, Value: []byte("2"), Op: "set", New: true},
		{Key: "c", Kind: shardkv.EventSet, Value: []byte("3"), Op: "set", New: true},
		{Key: "a", Kind: shardkv.EventSet, Value: []byte("5"), Op: "incrby"},
		{Key: "b", Kind: shardkv.EventSet, Value: []byte("22"), Op: "set"},
		{Key: "c", Kind: shardkv.EventDelete, Op: "del"},
	}, stDrain(t, sub))
}

// A random mix of TTL writes, overwrites, deletes, CleanExpired and sleeps
// of sub-millisecond to several-millisecond steps, on the fake clock,
// checked after every step against a model: an entry is present exactly
// until its deadline, TTL reports the time left, Len counts entries until
// they are reclaimed, each is reclaimed (one EventExpire) no earlier than
// its deadline and within 2 ms of it, and CleanExpired reclaims every due
// entry at once.
func TestStore_TTLRandomizedFakeClock(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { stTTLRandom(t, seed) })
		})
	}
}

func stTTLRandom(t *testing.T, seed uint64) {
	type entry struct {
		value    string
		deadline time.Duration // since start; meaningful when hasTTL
		hasTTL   bool
	}
	s := shardkv.New(shardkv.WithShards(4))
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()
	rng := rand.New(rand.NewPCG(seed, 99))
	start := time.Now()
	now := func() time.Duration { return time.Since(start) }
	model := map[string]entry{} // every entry the store holds, reclaimed or not
	pending := map[string]entry{}
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	randTTL := func() time.Duration {
		switch rng.IntN(6) {
		case 0:
			return -time.Duration(rng.IntN(1000)) * time.Microsecond // already expired
		case 1:
			return time.Duration(rng.IntN(1000)) * time.Nanosecond
		case 2:
			return time.Duration(rng.IntN(100)) * time.Second // beyond the run
		default:
			return time.Duration(rng.IntN(20000)) * time.Microsecond
		}
	}
	apply := func(step int) {
		synctest.Wait()
		for _, ev := range stDrain(t, sub) {
			e, held := model[ev.Key]
			switch ev.Kind {
			case shardkv.EventExpire:
				require.True(t, held, "step %d: EventExpire for %s, which is not held", step, ev.Key)
				require.True(t, e.hasTTL && e.deadline <= now(), "step %d: %s reclaimed at %v, deadline %v (ttl %v)",
					step, ev.Key, now(), e.deadline, e.hasTTL)
				delete(model, ev.Key)
			case shardkv.EventSet:
				p, ok := pending[ev.Key]
				require.True(t, ok, "step %d: unexpected EventSet for %s", step, ev.Key)
				require.Equal(t, p.value, string(ev.Value))
				model[ev.Key] = p
				delete(pending, ev.Key)
			case shardkv.EventDelete:
				require.True(t, held, "step %d: EventDelete for %s, which is not held", step, ev.Key)
				require.True(t, !e.hasTTL || now() < e.deadline, "step %d: EventDelete for expired %s", step, ev.Key)
				delete(model, ev.Key)
			}
		}
		require.Empty(t, pending, "step %d: a write published no EventSet", step)
	}
	for step := 0; step < 1500; step++ {
		k := keys[rng.IntN(len(keys))]
		switch op := rng.IntN(10); {
		case op < 3:
			ttl := randTTL()
			v := strconv.Itoa(step)
			pending[k] = entry{value: v, deadline: now() + ttl, hasTTL: true}
			if ttl <= 0 {
				pending[k] = entry{value: v, deadline: now(), hasTTL: true}
			}
			require.NoError(t, s.SetWithTTL(k, []byte(v), ttl))
		case op < 4:
			v := strconv.Itoa(step)
			pending[k] = entry{value: v}
			require.NoError(t, s.Set(k, []byte(v)))
		case op < 5:
			e, held := model[k]
			live := held && (!e.hasTTL || now() < e.deadline)
			existed, err := s.Delete(k)
			require.NoError(t, err)
			require.Equal(t, live, existed, "step %d: Delete(%s)", step, k)
		case op < 6:
			s.CleanExpired()
			apply(step)
			for key, e := range model {
				require.False(t, e.hasTTL && e.deadline <= now(), "step %d: CleanExpired left %s (deadline %v, now %v)",
					step, key, e.deadline, now())
			}
		default:
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		}
		apply(step)
		for _, key := range keys {
			e, held := model[key]
			live := held && (!e.hasTTL || now() < e.deadline)
			if held && e.hasTTL {
				require.Less(t, now(), e.deadline+2*time.Millisecond,
					"step %d: %s not reclaimed within 2 ms of its deadline", step, key)
			}
			v, ok, err := s.Get(key)
			require.NoError(t, err)
			require.Equal(t, live, ok, "step %d: Get(%s) at %v, entry %+v", step, key, now(), e)
			if live {
				require.Equal(t, e.value, string(v))
				ttl, ok, err := s.TTL(key)
				require.NoError(t, err)
				require.True(t, ok)
				if e.hasTTL {
					require.Equal(t, e.deadline-now(), ttl, "step %d: TTL(%s)", step, key)
				} else {
					require.Equal(t, shardkv.NoTTL, ttl)
				}
			}
		}
		require.Equal(t, len(model), s.Len(), "step %d", step)
	}
}

// TestMaxValueSizeClamped: a record holds lengths in 32 bits, so a limit
// above 4 GiB - 1 is clamped there, by the option and by the setter alike.
func TestMaxValueSizeClamped(t *testing.T) {
	most := min(int64(math.MaxUint32), math.MaxInt) // an int holds less on 32-bit machines
	s := shardkv.New(shardkv.WithMaxValueSize(math.MaxInt))
	defer s.Close()
	require.Equal(t, most, int64(s.MaxValueSize()))
	s.SetMaxValueSize(16)
	require.Equal(t, 16, s.MaxValueSize())
	s.SetMaxValueSize(math.MaxInt)
	require.Equal(t, most, int64(s.MaxValueSize()))
}

// TestKeyMemoryMayBeReused: the store copies each key into its record, so
// a caller may reuse the memory of a key it passed, even one made with
// unsafe from a buffer; stored keys, listed keys and the keys of every kind
// of event keep their own bytes.
func TestKeyMemoryMayBeReused(t *testing.T) {
	s := shardkv.New()
	defer s.Close()
	sub := s.Subscribe()
	defer sub.Close()
	buf := []byte("key:a")
	key := unsafe.String(&buf[0], len(buf))
	scribble := func() { copy(buf, "XXXXX") }

	steps := []struct {
		name string
		op   func() error
	}{
		{"Set", func() error { return s.Set(key, []byte("1")) }},
		{"Increment", func() error { _, err := s.Increment(key, 1); return err }},
		{"CompareAndSwap", func() error { _, err := s.CompareAndSwap(key, []byte("2"), []byte("3")); return err }},
		{"SetWithTTL", func() error { return s.SetWithTTL(key, []byte("4"), time.Hour) }},
		{"Delete", func() error { _, err := s.Delete(key); return err }},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, st := range steps {
		copy(buf, "key:a")
		require.NoError(t, st.op(), st.name)
		scribble()
		ev, err := sub.Recv(ctx)
		require.NoError(t, err, st.name)
		require.Equal(t, "key:a", ev.Key, "%s: event key", st.name)
		if st.name != "Delete" {
			keys, err := s.ListKeys("key:")
			require.NoError(t, err)
			require.Equal(t, []string{"key:a"}, keys, "%s: listed keys", st.name)
		}
	}
}
