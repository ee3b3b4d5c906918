// Package reference is a Go port of the reference Rust store,
// shared/reference/kvstore.rs, kept faithful so that benchmarks can show
// what shardkv's design saves. It is a benchmark baseline, not a store to
// use.
//
// What is ported as it is:
//
//   - one sync.RWMutex (parking_lot::RwLock) over one map of entries;
//   - an entry is its value and an optional deadline on the monotonic clock
//     (Option<Instant>); is_expired reads the clock for each entry that has
//     a deadline;
//   - Get, Exists and ListKeys first call CleanExpired, which takes the
//     write lock and sweeps the whole map, reading the clock for every entry
//     with a TTL (HashMap::retain), then look the key up under the read lock;
//   - Get copies the value out, Set copies it in; the quota check is
//     `!contains_key(key) && len >= max_keys` under the write lock;
//   - Increment and CompareAndSwap run under the write lock as in the Rust
//     (Increment drops the TTL; CompareAndSwap's quota check is
//     `current.is_none() && len >= max_keys`);
//   - every successful mutation builds its event (the value cloned, as the
//     Rust's `Some(value.to_vec())`) and sends it on a broadcast whose send
//     takes the channel's lock and returns at once with no subscriber, as
//     tokio's broadcast::Sender::send does.
//
// What differs, and why:
//
//   - the event's key is not copied (Go strings are immutable);
//   - the broadcast is a mutex over per-subscriber buffered channels of
//     1024 events that drops the newest event for a full subscriber and
//     tells it how many it missed; tokio's ring drops the oldest instead.
//     The writer's cost (one lock, one non-blocking send a subscriber) is
//     the same shape.
//
// [WithoutSweep] builds the same store without the CleanExpired calls in
// Get, Exists and ListKeys: not the reference's behaviour, but the way to
// see the sweep's cost apart from the single lock's.
package reference

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults, as the Rust constants.
const (
	DefaultMaxValueSize   = 1024 * 1024
	DefaultMaxKeys        = 10000
	WatchChannelCapacity  = 1024
	maxKeyLen             = 1024
	allowedPunctuation    = "-_./:"
	invalidNumberPrefix   = "invalid number: "
	storageErrorPrefixMsg = "storage error: "
)

// The KvError variants.
var (
	ErrNotFound      = errors.New("key not found")
	ErrValueTooLarge = errors.New("value too large")
	ErrQuotaExceeded = errors.New("storage quota exceeded")
	ErrInvalidKey    = errors.New("invalid key format")
)

// StorageError is KvError::Storage.
type StorageError struct{ Msg string }

func (e *StorageError) Error() string { return storageErrorPrefixMsg + e.Msg }

// EventKind is KvEventKind.
type EventKind uint8

// The event kinds.
const (
	EventSet EventKind = iota + 1
	EventDelete
)

// Event is KvEvent.
type Event struct {
	Key   string
	Kind  EventKind
	Value []byte // nil for EventDelete (None)
}

// entry is KvEntry: the value and Option<Instant>.
type entry struct {
	value     []byte
	expiresAt int64 // monotonic ns since the process epoch; meaningful if hasTTL
	hasTTL    bool
}

var epoch = time.Now()

// instantNow is Instant::now(): the monotonic clock.
func instantNow() int64 { return int64(time.Since(epoch)) }

// isExpired is KvEntry::is_expired: it reads the clock only for an entry
// with a deadline.
func (e *entry) isExpired() bool { return e.hasTTL && instantNow() >= e.expiresAt }

// Store is KvStore.
type Store struct {
	mu           sync.RWMutex
	m            map[string]entry
	maxValueSize int
	maxKeys      int
	sweep        bool
	events       broadcast
	shared       *Store // set on a NoSweepView: the store whose data it reads
}

// data is the store holding the map: s itself, or the store a
// NoSweepView shares.
func (s *Store) data() *Store {
	if s.shared != nil {
		return s.shared
	}
	return s
}

// Option configures New.
type Option func(*Store)

// WithMaxValueSize is with_max_value_size.
func WithMaxValueSize(n int) Option { return func(s *Store) { s.maxValueSize = n } }

// WithMaxKeys is with_max_keys.
func WithMaxKeys(n int) Option { return func(s *Store) { s.maxKeys = n } }

// WithoutSweep drops the CleanExpired calls from Get, Exists and ListKeys
// (reference-nosweep: not the reference's behaviour).
func WithoutSweep() Option { return func(s *Store) { s.sweep = false } }

// New is KvStore::new with options.
func New(opts ...Option) *Store {
	s := &Store{
		m:            make(map[string]entry),
		maxValueSize: DefaultMaxValueSize,
		maxKeys:      DefaultMaxKeys,
		sweep:        true,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// NoSweepView returns a handle on the same data whose Get, Exists and
// ListKeys do not sweep (for reference-nosweep sharing one prefill).
func (s *Store) NoSweepView() *Store {
	return &Store{sweep: false, shared: s}
}

// ValidateKey is validate_key: non-empty, at most 1024 bytes, every char
// alphanumeric (char::is_alphanumeric) or one of "-_./:".
func ValidateKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return ErrInvalidKey
	}
	if !utf8.ValidString(key) { // a Rust &str is always valid UTF-8
		return ErrInvalidKey
	}
	for _, c := range key {
		if !(isAlphanumeric(c) || strings.ContainsRune(allowedPunctuation, c)) {
			return ErrInvalidKey
		}
	}
	return nil
}

func isAlphanumeric(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Other_Alphabetic, r)
}

// CleanExpired is clean_expired: the write lock and a sweep of every entry.
func (s *Store) CleanExpired() {
	s = s.data()
	s.mu.Lock()
	for k, e := range s.m {
		if e.isExpired() {
			delete(s.m, k)
		}
	}
	s.mu.Unlock()
}

// Get is get: validate, sweep, then look up under the read lock and clone.
func (s *Store) Get(key string) ([]byte, bool, error) {
	if err := ValidateKey(key); err != nil {
		return nil, false, err
	}
	if s.sweep {
		s.CleanExpired()
	}
	d := s.data()
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.m[key]
	if !ok || e.isExpired() {
		return nil, false, nil
	}
	return bytes.Clone(e.value), true, nil
}

// Set is set.
func (s *Store) Set(key string, value []byte) error {
	return s.set(key, value, 0, false)
}

// SetWithTTL is set_with_ttl (the Rust takes nanoseconds).
func (s *Store) SetWithTTL(key string, value []byte, ttl time.Duration) error {
	return s.set(key, value, ttl, true)
}

func (s *Store) set(key string, value []byte, ttl time.Duration, withTTL bool) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	d := s.data()
	if len(value) > d.maxValueSize {
		return ErrValueTooLarge
	}
	e := entry{value: bytes.Clone(value)}
	if withTTL {
		e.hasTTL = true
		e.expiresAt = instantNow() + int64(max(ttl, 0))
	}
	d.mu.Lock()
	_, exists := d.m[key]
	if !exists && len(d.m) >= d.maxKeys {
		d.mu.Unlock()
		return ErrQuotaExceeded
	}
	d.m[key] = e
	d.mu.Unlock()
	d.emit(key, EventSet, bytes.Clone(value))
	return nil
}

// Delete is delete.
func (s *Store) Delete(key string) (bool, error) {
	if err := ValidateKey(key); err != nil {
		return false, err
	}
	d := s.data()
	d.mu.Lock()
	_, removed := d.m[key]
	delete(d.m, key)
	d.mu.Unlock()
	if removed {
		d.emit(key, EventDelete, nil)
	}
	return removed, nil
}

// Exists is exists: sweep, then look up.
func (s *Store) Exists(key string) bool {
	if s.sweep {
		s.CleanExpired()
	}
	d := s.data()
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.m[key]
	return ok && !e.isExpired()
}

// ListKeys is list_keys: sweep, then collect the matching unexpired keys.
func (s *Store) ListKeys(prefix string) []string {
	if s.sweep {
		s.CleanExpired()
	}
	d := s.data()
	d.mu.RLock()
	defer d.mu.RUnlock()
	var keys []string
	for k, e := range d.m {
		if strings.HasPrefix(k, prefix) && !e.isExpired() {
			keys = append(keys, k)
		}
	}
	return keys
}

// Increment is increment.
func (s *Store) Increment(key string, delta int64) (int64, error) {
	if err := ValidateKey(key); err != nil {
		return 0, err
	}
	d := s.data()
	d.mu.Lock()
	var current int64
	if e, ok := d.m[key]; ok && !e.isExpired() {
		str := string(e.value) // String::from_utf8(entry.value.clone())
		if !utf8.ValidString(str) {
			d.mu.Unlock()
			return 0, &StorageError{Msg: invalidNumberPrefix + "invalid utf-8"}
		}
		n, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			d.mu.Unlock()
			return 0, &StorageError{Msg: invalidNumberPrefix + err.Error()}
		}
		current = n
	}
	n := saturatingAdd(current, delta)
	b := strconv.AppendInt(nil, n, 10)
	if _, exists := d.m[key]; !exists && len(d.m) >= d.maxKeys {
		d.mu.Unlock()
		return 0, ErrQuotaExceeded
	}
	d.m[key] = entry{value: b}
	d.mu.Unlock()
	d.emit(key, EventSet, bytes.Clone(b))
	return n, nil
}

func saturatingAdd(a, b int64) int64 {
	c := a + b
	if (c > a) != (b > 0) {
		if b > 0 {
			return 1<<63 - 1
		}
		return -1 << 63
	}
	return c
}

// CompareAndSwap is compare_and_swap; expected nil is None.
func (s *Store) CompareAndSwap(key string, expected, newValue []byte) (bool, error) {
	if err := ValidateKey(key); err != nil {
		return false, err
	}
	d := s.data()
	if len(newValue) > d.maxValueSize {
		return false, ErrValueTooLarge
	}
	d.mu.Lock()
	e, found := d.m[key]
	if found && e.isExpired() {
		found = false
	}
	var match bool
	switch {
	case expected == nil:
		match = !found
	default:
		match = found && bytes.Equal(e.value, expected)
	}
	if !match {
		d.mu.Unlock()
		return false, nil
	}
	if !found && len(d.m) >= d.maxKeys {
		d.mu.Unlock()
		return false, ErrQuotaExceeded
	}
	d.m[key] = entry{value: bytes.Clone(newValue)}
	d.mu.Unlock()
	d.emit(key, EventSet, bytes.Clone(newValue))
	return true, nil
}

// Clear is clear.
func (s *Store) Clear() {
	d := s.data()
	d.mu.Lock()
	clear(d.m)
	d.mu.Unlock()
}

// Len is the number of entries in the map, expired ones included.
func (s *Store) Len() int {
	d := s.data()
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.m)
}

func (s *Store) emit(key string, kind EventKind, value []byte) {
	s.events.send(Event{Key: key, Kind: kind, Value: value})
}

// Subscribe is subscribe.
func (s *Store) Subscribe() *Subscription { return s.data().events.subscribe() }

// broadcast is the port of tokio's broadcast channel: send takes the lock,
// returns at once with no receiver, and otherwise offers the event to every
// subscriber without waiting.
type broadcast struct {
	mu   sync.Mutex
	subs []*Subscription
}

func (b *broadcast) send(ev Event) {
	b.mu.Lock()
	for _, sub := range b.subs {
		select {
		case sub.ch <- ev:
		default:
			sub.missed.Add(1)
		}
	}
	b.mu.Unlock()
}

func (b *broadcast) subscribe() *Subscription {
	sub := &Subscription{b: b, ch: make(chan Event, WatchChannelCapacity), done: make(chan struct{})}
	b.mu.Lock()
	b.subs = append(b.subs, sub)
	b.mu.Unlock()
	return sub
}

// Subscription is a broadcast::Receiver.
type Subscription struct {
	b      *broadcast
	ch     chan Event
	missed atomic.Uint64
	done   chan struct{}
	once   sync.Once
}

// LaggedError is RecvError::Lagged.
type LaggedError struct{ Missed uint64 }

func (e *LaggedError) Error() string { return "lagged by " + strconv.FormatUint(e.Missed, 10) }

// ErrClosed is RecvError::Closed.
var ErrClosed = errors.New("channel closed")

// Recv is Receiver::recv.
func (sub *Subscription) Recv(ctx context.Context) (Event, error) {
	if n := sub.missed.Swap(0); n > 0 {
		return Event{}, &LaggedError{Missed: n}
	}
	select {
	case ev := <-sub.ch:
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	case <-sub.done:
		return Event{}, ErrClosed
	}
}

// Close drops the receiver.
func (sub *Subscription) Close() {
	sub.once.Do(func() {
		close(sub.done)
		b := sub.b
		b.mu.Lock()
		for i, s := range b.subs {
			if s == sub {
				b.subs = append(b.subs[:i], b.subs[i+1:]...)
				break
			}
		}
		b.mu.Unlock()
	})
}
