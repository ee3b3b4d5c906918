package shardkv

import (
	"context"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// EventKind says what a mutation did to a key.
type EventKind uint8

// The kinds of [Event].
const (
	EventSet    EventKind = iota + 1 // a key was created or updated
	EventDelete                      // a key was deleted by Delete
	EventExpire                      // an expired entry was reclaimed
)

// String returns "set", "delete" or "expire".
func (k EventKind) String() string {
	switch k {
	case EventSet:
		return "set"
	case EventDelete:
		return "delete"
	case EventExpire:
		return "expire"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one change to the store, as a [Subscription] receives it.
type Event struct {
	Key  string
	Kind EventKind
	// Value is the stored value for EventSet and nil otherwise. It is the
	// store's own copy, shared by every subscriber: read it, never write it.
	Value []byte
	// Op names the operation as Redis names keyspace events: "set" (Set,
	// SetWithTTL, CompareAndSwap), "incrby" (Increment), "del" (Delete),
	// "expired" (an expired entry reclaimed), "expire" and "persist"
	// (Expire and Persist: an EventSet with the unchanged value),
	// "rename_from" and "rename_to" (Rename), or an Update's Change.Op.
	Op string
	// New reports that the event created the key: it was absent or
	// expired before.
	New bool
}

// ring is a bounded multi-producer broadcast buffer (the reference's tokio
// broadcast channel). Writers claim a position with one atomic add and
// publish a node into the position's slot with one atomic store: they never
// wait for a reader to read, and do nothing per subscriber that is awake.
// Only when a reader sleeps does a writer take sleepMu, to wake the
// sleepers (see waiters); that lock is held for a list's append (which
// allocates only to grow the list) or emptying, with nothing that blocks
// inside. Each
// subscriber keeps its own cursor; one that falls more than capacity
// positions behind head is told how many it missed and jumps to the oldest
// position still held.
//
// The slot array is capacity rounded up to a power of two, so the capacity
// positions behind head are always held even while a writer that claimed a
// newer position is still storing it.
type ring struct {
	_    [64]byte // keep subs and head off the Store's other hot words
	subs atomic.Int64
	_    [56]byte
	head atomic.Uint64 // the next position to claim
	_    [56]byte

	slots    []atomic.Pointer[ringNode]
	mask     uint64
	capacity uint64

	// Sleeping readers: a reader that found nothing drops any token left
	// in its subscription's wakeup channel, bumps waiters, lists the
	// subscription in sleepers and re-checks before it sleeps on that
	// channel; a writer that sees waiters after storing its node sends
	// each listed one a token and empties the list. Go's atomics are
	// sequentially consistent, so either the reader's re-check sees the
	// node or the writer sees waiters. Then its wake either finds the
	// reader listed, and the token it sends stays in the channel until the
	// reader sleeps (nothing drops a token after listing), or takes the
	// list before the reader is on it, and so before the reader's re-check,
	// which then sees the node. A channel per
	// subscription, made once, rather than one closed and made afresh per
	// wake: a subscriber that keeps up sleeps after nearly every event,
	// and each would cost its writer an allocation.
	waiters  atomic.Int64
	sleepMu  sync.Mutex
	sleepers []*Subscription // guarded by sleepMu
	closed   <-chan struct{} // closed when the store closes
}

// ringNode is one published position: an event, or a report of lost
// events. It is 48 bytes, so that with the 80 bytes an event of a 12-byte
// key and a 64-byte value needs it makes one 128-byte object (see
// newEventNode), and read builds the 72-byte Event from it.
type ringNode struct {
	pos uint64
	// data points at the event's key bytes, its value's right after them;
	// for a big node (an event whose key is 4 GiB or longer, which only a
	// backend can send: the store refuses such keys), at an Event of its
	// own; for a report of lost events, nowhere (nil).
	data unsafe.Pointer
	op   string
	// n is the value's length for an event (0 for a big node, whose Event
	// has its own), and for a report how many events were lost before they
	// reached the ring (a cluster backend's watch that could not deliver
	// them): a reader at it is told it missed n events.
	n    uint64
	klen uint32
	// kind is kept as given: a backend may send any EventKind, and its
	// subscribers get it back as it was.
	kind  EventKind
	isNew bool
	big   bool
}

// empty is where a node with no key or value bytes points: an event's data
// is never nil, which marks a report.
var empty [1]byte

// newEventNode returns a node holding an event with copies of key and, for
// EventSet, value, in the node's own allocation up to 208 bytes of both (a
// 12-byte key and 64-byte value fit in 80), so that an event costs one
// allocation: the sizes make the node 64, 96, 128, 192 or 256 bytes, size
// classes of Go's allocator. An event a subscriber keeps keeps its node's
// object alive: its own bytes and at most 111 more (the node, and the rest
// of the size class: 81 bytes of event in a 192-byte object).
func newEventNode(key string, kind EventKind, value, op string, isNew bool) *ringNode {
	if kind != EventSet {
		value = ""
	}
	if uint64(len(key)) > math.MaxUint32 { // klen's 32 bits; n holds any value length
		return bigEventNode(key, kind, value, op, isNew)
	}
	size := len(key) + len(value)
	var node *ringNode
	var b unsafe.Pointer
	switch {
	case size == 0:
		node, b = new(ringNode), unsafe.Pointer(&empty)
	case size <= 16:
		node, b = inlineNode[[16]byte]()
	case size <= 48:
		node, b = inlineNode[[48]byte]()
	case size <= 80:
		node, b = inlineNode[[80]byte]()
	case size <= 144:
		node, b = inlineNode[[144]byte]()
	case size <= 208:
		node, b = inlineNode[[208]byte]()
	default:
		node, b = new(ringNode), unsafe.Pointer(unsafe.SliceData(make([]byte, size)))
	}
	buf := unsafe.Slice((*byte)(b), size)
	copy(buf, key)
	copy(buf[len(key):], value)
	node.data, node.op, node.n, node.klen, node.kind, node.isNew = b, op, uint64(len(value)), uint32(len(key)), kind, isNew
	return node
}

// bigEventNode returns a big node: one that points at an Event of its
// own, with copies of key and value, Value full (len == cap) as event
// makes every Value, so that a subscriber's append copies instead of
// writing into spare capacity that every subscriber shares.
func bigEventNode(key string, kind EventKind, value, op string, isNew bool) *ringNode {
	ev := &Event{Key: strings.Clone(key), Kind: kind, Op: op, New: isNew}
	if kind == EventSet {
		ev.Value = slices.Clip([]byte(value))
	}
	return &ringNode{data: unsafe.Pointer(ev), kind: kind, big: true}
}

// inlineNode allocates a node with the bytes of array type A right after
// it, and returns both.
func inlineNode[A any]() (*ringNode, unsafe.Pointer) {
	x := new(struct {
		ringNode
		b A
	})
	return &x.ringNode, unsafe.Pointer(&x.b)
}

// event returns the node's event. Key and Value are the node's bytes,
// Value full (len == cap), so that a subscriber's append copies.
func (n *ringNode) event() Event {
	if n.big {
		return *(*Event)(n.data)
	}
	ev := Event{Key: unsafe.String((*byte)(n.data), n.klen), Kind: n.kind, Op: n.op, New: n.isNew}
	if n.kind == EventSet {
		if n.n == 0 {
			ev.Value = []byte{} // not nil, and not a pointer past the node's end
		} else {
			ev.Value = unsafe.Slice((*byte)(unsafe.Add(n.data, n.klen)), n.n)
		}
	}
	return ev
}

func newRing(capacity int, closed <-chan struct{}) *ring {
	size := uint64(1)
	for size < uint64(capacity) {
		size <<= 1
	}
	r := &ring{
		slots:    make([]atomic.Pointer[ringNode], size),
		mask:     size - 1,
		capacity: uint64(capacity),
		closed:   closed,
	}
	return r
}

// active reports whether anyone subscribes. With no subscriber a mutation
// publishes nothing: one atomic load is all the event work it does.
func (r *ring) active() bool { return r.subs.Load() != 0 }

// publish appends an event: key, kind, and for EventSet value, with the
// kind's default Op and New false. See emit.
func (r *ring) publish(key string, kind EventKind, value string) {
	r.emit(key, kind, value, defaultOp[kind], false)
}

// defaultOp is each kind's Op when the operation names none other.
var defaultOp = [...]string{EventSet: "set", EventDelete: "del", EventExpire: "expired"}

// emit appends an event: key, kind, for EventSet value, op and isNew. The
// store calls it while it still holds the key's shard lock, so the events
// of one key take positions in the order their mutations took effect. The
// event holds copies of key and value (one allocation for both), never the
// store's own bytes: an event a subscriber keeps must not hold a chunk
// alive. op is kept as given.
func (r *ring) emit(key string, kind EventKind, value, op string, isNew bool) {
	if !r.active() {
		return
	}
	r.append(newEventNode(key, kind, value, op, isNew))
}

// append claims the next position for node, stores it there and wakes
// the readers waiting for one.
func (r *ring) append(node *ringNode) {
	node.pos = r.head.Add(1) - 1
	r.put(node)
	if r.waiters.Load() != 0 {
		r.wake()
	}
}

// put stores a claimed position's node in its slot.
func (r *ring) put(node *ringNode) {
	slot := &r.slots[node.pos&r.mask]
	for {
		// A writer preempted between its claim and its store must not
		// overwrite a newer event that lapped it into the same slot: then
		// head is more than capacity past pos, so any reader still at pos is
		// reported lagged, and dropping this store loses nothing.
		old := slot.Load()
		if old != nil && old.pos > node.pos {
			return
		}
		if slot.CompareAndSwap(old, node) {
			return
		}
	}
}

// wake sends every listed subscription a token and empties the list. A
// send never blocks: a token already in a subscription's buffer wakes it
// as well as a second would.
func (r *ring) wake() {
	r.sleepMu.Lock()
	for i, sub := range r.sleepers {
		sub.listed = false
		select {
		case sub.wakeup <- struct{}{}:
		default:
		}
		r.sleepers[i] = nil
	}
	r.sleepers = r.sleepers[:0]
	r.sleepMu.Unlock()
}

// unlist takes sub off the sleepers, if it is listed: a subscription
// closed while no writer wakes the list must not stay in it, or a store
// whose subscribers come and go while nothing is written would hold every
// one of them.
func (r *ring) unlist(sub *Subscription) {
	r.sleepMu.Lock()
	if sub.listed {
		sub.listed = false
		i := slices.Index(r.sleepers, sub)
		last := len(r.sleepers) - 1
		r.sleepers[i], r.sleepers[last] = r.sleepers[last], nil
		r.sleepers = r.sleepers[:last]
	}
	r.sleepMu.Unlock()
}

// list puts sub among the sleepers that the next wake wakes, once, unless
// sub is closed: Close closes done before its unlist takes sleepMu, so a
// Recv that lists sub while Close runs either lists it before unlist, which
// takes it off, or finds done closed here.
func (r *ring) list(sub *Subscription) {
	r.sleepMu.Lock()
	select {
	case <-sub.done:
		r.sleepMu.Unlock()
		return
	default:
	}
	if !sub.listed {
		sub.listed = true
		r.sleepers = append(r.sleepers, sub)
	}
	r.sleepMu.Unlock()
}

// read returns the event at position c. ok is false when the position is
// not yet published; missed > 0 when c fell behind, with next the position
// to resume from.
func (r *ring) read(c uint64) (ev Event, next uint64, missed uint64, ok bool) {
	for {
		h := r.head.Load()
		if h-c > r.capacity {
			oldest := h - r.capacity
			return Event{}, oldest, oldest - c, false
		}
		if c == h {
			return Event{}, c, 0, false
		}
		n := r.slots[c&r.mask].Load()
		switch {
		case n == nil || n.pos < c:
			return Event{}, c, 0, false // claimed, not yet stored
		case n.pos > c:
			continue // overwritten since we loaded head: lagged
		}
		if n.data == nil { // a report of lost events
			return Event{}, c + 1, n.n, false
		}
		return n.event(), c + 1, 0, true
	}
}

// lost tells every subscriber, in its turn, that n events (n >= 1) were
// lost before they reached the ring: a reader at this position gets a
// *LaggedError with Missed n, then goes on. Like emit, it never waits.
func (r *ring) lost(n uint64) {
	if !r.active() || n == 0 {
		return
	}
	r.append(&ringNode{n: n})
}

// Subscription is one subscriber's view of the store's events, from the
// moment it subscribed. Create it with [Store.Subscribe] and Close it when
// done; an open subscription costs every mutation an event allocation.
// Recv may be called from several goroutines; each event goes to one call.
type Subscription struct {
	r *ring
	// turn serialises Recv calls and guards cursor: a one-token channel
	// rather than a mutex, so that a Recv waiting for its turn still
	// returns when its ctx ends.
	turn   chan struct{}
	cursor uint64
	done   chan struct{}
	once   sync.Once
	// wakeup (one token of buffer) is where a writer's wake reaches a
	// Recv asleep; listed, guarded by r.sleepMu, says sub is in
	// r.sleepers. Close takes it off.
	wakeup chan struct{}
	listed bool
}

func (r *ring) subscribe() *Subscription {
	r.subs.Add(1)
	sub := &Subscription{r: r, cursor: r.head.Load(), turn: make(chan struct{}, 1), done: make(chan struct{}), wakeup: make(chan struct{}, 1)}
	sub.turn <- struct{}{}
	return sub
}

// Recv returns the next event. It blocks until there is one, ctx is done
// (ctx.Err()), or the subscription or store is closed ([ErrClosed]). A
// subscriber more than the watch capacity behind gets one [*LaggedError]
// saying how many events it missed; the next Recv goes on from the oldest
// event still held. After the store closes, Recv still returns the events
// it holds, then ErrClosed.
func (sub *Subscription) Recv(ctx context.Context) (Event, error) {
	r := sub.r
	select {
	case <-sub.turn: // free: take it even if ctx is already done
	default:
		select {
		case <-sub.turn:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-sub.done:
			return Event{}, ErrClosed
		}
	}
	defer func() { sub.turn <- struct{}{} }()
	spin := 0
	for {
		select {
		case <-sub.done:
			return Event{}, ErrClosed
		default:
		}
		// Whether the store is closed is read before the ring: the store
		// closes r.closed only after its last event is published (see
		// store.close), so if it is closed now, the read below sees every
		// event there will ever be, and finding none there is final.
		storeClosed := false
		select {
		case <-r.closed:
			storeClosed = true
		default:
		}
		ev, next, missed, ok := r.read(sub.cursor)
		sub.cursor = next
		if ok {
			return ev, nil
		}
		if missed > 0 {
			return Event{}, &LaggedError{Missed: missed}
		}
		if err := ctx.Err(); err != nil {
			return Event{}, err
		}
		if storeClosed {
			return Event{}, ErrClosed // nothing held and nothing more to come
		}
		// Before sleeping, yield a few times for the next event: a
		// subscriber that keeps up with its writers would otherwise sleep
		// after every event, and every event's writer would pay to wake
		// it (the sleepers list taken and the scheduler's wake-up).
		// Yielding lets any other goroutine run meanwhile.
		if spin < recvSpins {
			spin++
			runtime.Gosched()
			continue
		}
		spin = 0
		// A token left by a wake this Recv did not sleep for would end the
		// sleep below at once: drop it, before listing. A token sent after
		// the list must stay: its writer may have stored its node after the
		// re-check below, and then this token is all that wakes the sleep
		// (the wake took sub off the list, so no later writer sends one).
		select {
		case <-sub.wakeup:
		default:
		}
		r.waiters.Add(1)
		r.list(sub)
		if testHookListed != nil {
			testHookListed(sub)
		}
		if _, _, missed, ok := r.read(sub.cursor); ok || missed > 0 {
			r.waiters.Add(-1)
			continue
		}
		select {
		case <-sub.wakeup:
		case <-ctx.Done():
		case <-sub.done:
		case <-r.closed:
		}
		r.waiters.Add(-1)
	}
}

// testHookListed, if set (by tests, before any Recv), runs in Recv right
// after it lists its subscription, so that a test can put a writer's wake
// in the window between the list and the re-check.
var testHookListed func(*Subscription)

// recvSpins is how many times Recv yields, finding no event, before it
// sleeps until a writer wakes it.
const recvSpins = 8

// Close ends the subscription: a Recv blocked in it, and every later one,
// returns ErrClosed. Closing twice is harmless.
func (sub *Subscription) Close() {
	sub.once.Do(func() {
		close(sub.done)
		sub.r.subs.Add(-1)
		sub.r.unlist(sub)
	})
}

// watchPrefix feeds ch the events of keys starting with prefix until ctx
// ends or the store closes, skipping lagged stretches, then closes ch.
func watchPrefix(ctx context.Context, sub *Subscription, prefix string, ch chan<- Event) {
	defer close(ch)
	defer sub.Close()
	for {
		ev, err := sub.Recv(ctx)
		if err != nil {
			if _, lagged := err.(*LaggedError); lagged {
				continue
			}
			return
		}
		if !strings.HasPrefix(ev.Key, prefix) {
			continue
		}
		select {
		case ch <- ev:
		case <-ctx.Done():
			return
		case <-sub.r.closed:
			return
		}
	}
}
