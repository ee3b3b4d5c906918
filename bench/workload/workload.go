package workload

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardkv/shardkv/bench/stores"
)

// Keyspace is what every store of one size shares: the lookup keys and the
// key orders. Build it once per size with NewKeyspace.
type Keyspace struct {
	N       int
	Width   int
	Keys    []string // the lookup keys (the stores hold their own copies)
	Zipf    []int32
	Uniform []int32
	// Churn is the zipf order over the first ChurnKeys keys (ttl-churn).
	Churn     []int32
	ChurnKeys int
	// Value is the 64-byte value the workloads write.
	Value []byte
}

// NewKeyspace builds the keys and orders of an n-key set.
func NewKeyspace(n int) *Keyspace { return NewKeyspaceWidth(n, KeyWidth(n)) }

// NewKeyspaceWidth is NewKeyspace with keys of width digits (at least
// KeyWidth(n)), so that sets of different sizes can have keys of one
// length: width 7 gives 12-byte keys ("user:0000123") up to 10M keys.
func NewKeyspaceWidth(n, width int) *Keyspace {
	width = max(width, KeyWidth(n))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = Key(i, width)
	}
	ks := &Keyspace{N: n, Width: width, Keys: keys, Value: make([]byte, ValueSize)}
	for i := range ks.Value {
		ks.Value[i] = byte('a' + i%26)
	}
	ks.Zipf = Order(n, Zipf, 42)
	ks.Uniform = Order(n, Uniform, 43)
	ks.ChurnKeys = min(n, 100_000)
	ks.Churn = Order(ks.ChurnKeys, Zipf, 44)
	return ks
}

// Order returns the key order of dist.
func (ks *Keyspace) Order(d Dist) []int32 {
	if d == Uniform {
		return ks.Uniform
	}
	return ks.Zipf
}

// Env is one store with its keyspace, as a workload sees it.
type Env struct {
	*Keyspace
	Store stores.Store
}

// Counters are what the workers of one cell count; the runner turns them
// into metrics.
type Counters struct {
	Hits, Misses atomic.Int64 // reads
	Writes       atomic.Int64 // writes attempted
	Dropped      atomic.Int64 // writes the store did not take (ristretto) or refused
	Fails        atomic.Int64 // lost CAS rounds
	Errors       atomic.Int64 // operations that failed
	Events       atomic.Int64 // events delivered to the subscribers, all of them together
	Missed       atomic.Int64 // events published to the subscribers and not delivered
	Listed       atomic.Int64 // keys returned by ListKeys
}

// Metrics is a cell's counters, with the ratios derived from them.
type Metrics struct {
	Hits, Misses, Writes, Dropped, Fails, Errors, Events, Missed, Listed int64
	// Watch cells: Subscribers, and Published, the events published while
	// they listened (one per Set the store took). Events is what Next
	// returned to them, all subscribers together; Missed is
	// Subscribers*Published - Events: reported lost (lag) or never
	// delivered.
	Subscribers int
	Published   int64
}

// Snapshot reads the counters.
func (c *Counters) Snapshot() Metrics {
	return Metrics{
		Hits: c.Hits.Load(), Misses: c.Misses.Load(), Writes: c.Writes.Load(), Dropped: c.Dropped.Load(),
		Fails: c.Fails.Load(), Errors: c.Errors.Load(), Events: c.Events.Load(), Missed: c.Missed.Load(),
		Listed: c.Listed.Load(),
	}
}

// HitRatio is hits over reads, or -1 without reads.
func (m Metrics) HitRatio() float64 {
	if r := m.Hits + m.Misses; r > 0 {
		return float64(m.Hits) / float64(r)
	}
	return -1
}

// DeliveredRatio is the events delivered per subscriber per published
// event (1: nothing lost), or -1 outside a watch cell.
func (m Metrics) DeliveredRatio() float64 {
	if sent := float64(m.Subscribers) * float64(m.Published); sent > 0 {
		return float64(m.Events) / sent
	}
	return -1
}

// DropRatio is dropped writes over writes, or -1 without writes.
func (m Metrics) DropRatio() float64 {
	if m.Writes > 0 {
		return float64(m.Dropped) / float64(m.Writes)
	}
	return -1
}

// Worker runs one goroutine's operations.
type Worker interface {
	// Step runs one operation.
	Step()
	// Done adds the worker's counts to the cell's counters.
	Done()
}

// Cell is one workload started on one store.
type Cell interface {
	// NewWorker returns the worker of goroutine id (0, 1, ...).
	NewWorker(id int) Worker
	// Finish stops what Start started and returns the counts.
	Finish() Metrics
}

// Workload is one benchmark mix.
type Workload struct {
	Name string
	Doc  string
	// Needs are the capabilities the store must have, else "n/a".
	Needs stores.Caps
	// Reads: the workload reads through stores.NewReader, so read-only
	// variants (shardkv-view, shardkv-append) run it too.
	Reads bool
	// Destructive: the workload leaves keys expired or rewritten, so it
	// runs after every workload that reads, on every row of the group.
	Destructive bool
	// Start prepares the workload on env (untimed) and returns the cell.
	Start func(env *Env) (Cell, error)
}

// Applies reports whether w runs on spec.
func (w Workload) Applies(spec stores.Spec) bool {
	if !spec.Caps.Has(w.Needs) {
		return false
	}
	return !spec.ReadOnlyVariant || w.Reads
}

// Mix is the read/write mix workload: writes of every 100 operations are
// Sets (without TTL) of the 64-byte value, the rest reads, over keys chosen
// from dist.
func Mix(name string, writes int, dist Dist) Workload {
	doc := fmt.Sprintf("%d%% Get, %d%% Set, %s keys", 100-writes, writes, dist)
	return Workload{
		Name:  name,
		Doc:   doc,
		Reads: writes < 100,
		Start: func(env *Env) (Cell, error) {
			return &mixCell{env: env, order: env.Order(dist), writes: writes}, nil
		},
	}
}

type mixCell struct {
	env    *Env
	order  []int32
	writes int
	c      Counters
}

// startOffset spreads the goroutines over a key order.
func startOffset(id int) uint64 { return uint64(id+1) * 104729 * 7919 }

// writeSlot reports whether operation i of a mix with writes per 100 is a
// write; (i*37)%100 spreads the writes instead of bunching them.
func writeSlot(i uint64, writes int) bool { return int(i*37%100) < writes }

func (c *mixCell) NewWorker(id int) Worker {
	return &mixWorker{cell: c, read: stores.NewReader(c.env.Store), i: startOffset(id)}
}

func (c *mixCell) Finish() Metrics { return c.c.Snapshot() }

type mixWorker struct {
	cell                        *mixCell
	read                        stores.ReadFunc
	i                           uint64
	hits, misses, writes, drops int64
}

func (w *mixWorker) Step() {
	c := w.cell
	w.i++
	k := c.env.Keys[c.order[w.i&(OrderLen-1)]]
	if c.writes > 0 && writeSlot(w.i, c.writes) {
		w.writes++
		if !c.env.Store.Set(k, c.env.Value) {
			w.drops++
		}
		return
	}
	if w.read(k) {
		w.hits++
	} else {
		w.misses++
	}
}

func (w *mixWorker) Done() {
	c := &w.cell.c
	c.Hits.Add(w.hits)
	c.Misses.Add(w.misses)
	c.Writes.Add(w.writes)
	c.Dropped.Add(w.drops)
}

// TTLChurn writes every key with a TTL of 1-100 ms, over the first 100k
// keys (zipf): entries are scheduled, rescheduled and expire all the time.
// The keys it writes expire, so it runs after the workloads that read.
func TTLChurn() Workload {
	return Workload{
		Name:        "ttl-churn",
		Doc:         "100% SetWithTTL, TTL 1-100 ms, zipf over the first 100k keys",
		Needs:       stores.TTL,
		Destructive: true,
		Start:       func(env *Env) (Cell, error) { return &churnCell{env: env}, nil },
	}
}

type churnCell struct {
	env *Env
	c   Counters
}

func (c *churnCell) NewWorker(id int) Worker { return &churnWorker{cell: c, i: startOffset(id)} }
func (c *churnCell) Finish() Metrics         { return c.c.Snapshot() }

type churnWorker struct {
	cell          *churnCell
	i             uint64
	writes, drops int64
}

func (w *churnWorker) Step() {
	e := w.cell.env
	w.i++
	k := e.Keys[e.Churn[w.i&(OrderLen-1)]]
	w.writes++
	if !e.Store.SetWithTTL(k, e.Value, time.Duration(1+w.i%100)*time.Millisecond) {
		w.drops++
	}
}

func (w *churnWorker) Done() {
	w.cell.c.Writes.Add(w.writes)
	w.cell.c.Dropped.Add(w.drops)
}

// HotKeys is how many counters IncrementHot spreads over.
const HotKeys = 16

// IncrementHot increments 16 hot counters from every goroutine. The
// counters are the first 16 keys of the set, reset to "0" first, so the
// workload creates no key (quotas stay as they are).
func IncrementHot() Workload {
	return Workload{
		Name:  "incr-hot",
		Doc:   "Increment(key, 1) over 16 hot keys",
		Needs: stores.Increment,
		Start: func(env *Env) (Cell, error) {
			c := &incrCell{env: env, keys: env.Keys[:min(HotKeys, env.N)]}
			for _, k := range c.keys {
				if !env.Store.Set(k, []byte("0")) {
					return nil, fmt.Errorf("incr-hot: reset %s refused", k)
				}
			}
			return c, nil
		},
	}
}

type incrCell struct {
	env  *Env
	keys []string
	c    Counters
}

func (c *incrCell) NewWorker(id int) Worker { return &incrWorker{cell: c, i: uint64(id)} }
func (c *incrCell) Finish() Metrics         { return c.c.Snapshot() }

type incrWorker struct {
	cell         *incrCell
	i            uint64
	writes, errs int64
}

func (w *incrWorker) Step() {
	keys := w.cell.keys
	w.i++
	w.writes++
	if _, ok := w.cell.env.Store.Increment(keys[w.i%uint64(len(keys))], 1); !ok {
		w.errs++
	}
}

func (w *incrWorker) Done() {
	w.cell.c.Writes.Add(w.writes)
	w.cell.c.Errors.Add(w.errs)
}

// CASCounter is a counter on one key that every goroutine increments with
// Get then CompareAndSwap, retrying lost rounds (counted as fails).
func CASCounter() Workload {
	return Workload{
		Name:  "cas",
		Doc:   "Get + CompareAndSwap(old, old+1) on one key from every goroutine, retrying lost rounds",
		Needs: stores.CAS,
		Start: func(env *Env) (Cell, error) {
			k := env.Keys[min(HotKeys, env.N-1)]
			if !env.Store.Set(k, []byte("0")) {
				return nil, fmt.Errorf("cas: reset %s refused", k)
			}
			return &casCell{env: env, key: k}, nil
		},
	}
}

type casCell struct {
	env *Env
	key string
	c   Counters
}

func (c *casCell) NewWorker(int) Worker { return &casWorker{cell: c} }
func (c *casCell) Finish() Metrics      { return c.c.Snapshot() }

type casWorker struct {
	cell                *casCell
	writes, fails, errs int64
}

func (w *casWorker) Step() {
	s, k := w.cell.env.Store, w.cell.key
	w.writes++
	for range 1000 {
		cur, ok := s.Get(k)
		n, good := parseDecimal(cur)
		if !ok || !good {
			w.errs++
			return
		}
		if s.CompareAndSwap(k, cur, strconv.AppendInt(nil, n+1, 10)) {
			return
		}
		w.fails++
	}
	w.errs++
}

// parseDecimal reads a non-negative decimal counter without allocating.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func (w *casWorker) Done() {
	w.cell.c.Writes.Add(w.writes)
	w.cell.c.Fails.Add(w.fails)
	w.cell.c.Errors.Add(w.errs)
}

// WatchFanout is Set over zipf keys from every goroutine while subs
// subscribers receive every event they can.
//
// It counts events delivered to the subscribers, not Sets: each subscriber
// counts the events its Next returned (delivered) and the missed counts it
// was told of (lost), and a worker's Done, which the runners time, waits
// until every subscriber has accounted for every event published so far,
// delivered or lost (or until no subscriber has made progress for
// watchIdle; what is then unaccounted for counts as not delivered). So the
// cell's time covers delivery, and its figure of merit is time per
// delivered event (elapsed / Metrics.Events): a store that drops events for
// lagging subscribers delivers fewer in as much time or more and scores
// worse, however fast its Sets return. Metrics.DeliveredRatio is the
// delivered fraction.
func WatchFanout(subs int) Workload {
	return Workload{
		Name:  "watch-" + strconv.Itoa(subs),
		Doc:   fmt.Sprintf("Set (zipf) from every goroutine while %d subscribers receive; counts the events delivered to them", subs),
		Needs: stores.Watch,
		Start: func(env *Env) (Cell, error) {
			w, ok := env.Store.(stores.Watcher)
			if !ok {
				return nil, fmt.Errorf("%s: no Subscribe", env.Store.Name())
			}
			ctx, cancel := context.WithCancel(context.Background())
			c := &watchCell{mixCell: mixCell{env: env, order: env.Zipf, writes: 100}, cancel: cancel,
				subs: make([]watchSub, subs)}
			for i := range c.subs {
				ws := &c.subs[i]
				ws.sub = w.Subscribe()
				c.wg.Add(1)
				go func() {
					defer c.wg.Done()
					for {
						m, err := ws.sub.Next(ctx)
						switch {
						case err != nil:
							return // Finish cancelled ctx or closed the subscription
						case m > 0:
							ws.lost.Add(int64(m))
						default:
							ws.delivered.Add(1)
						}
					}
				}()
			}
			return c, nil
		},
	}
}

// watchIdle is how long a watch worker's Done waits for subscribers that
// make no progress (a variable for the tests).
var watchIdle = time.Second

type watchCell struct {
	mixCell
	subs      []watchSub
	published atomic.Int64 // Sets the store took: one event to every subscriber each
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// watchSub is one subscriber and its counts, on cache lines of its own.
type watchSub struct {
	_         [64]byte
	sub       stores.Subscription
	delivered atomic.Int64
	lost      atomic.Int64 // reported by the store (missed > 0)
}

func (c *watchCell) NewWorker(id int) Worker {
	return &watchWorker{mixWorker: c.mixCell.NewWorker(id).(*mixWorker), cell: c}
}

type watchWorker struct {
	*mixWorker
	cell *watchCell
}

// Done adds the worker's counts, then waits for the subscribers to account
// for every event published so far: the worker that finishes last waits
// for all of them, inside the runner's timing.
func (w *watchWorker) Done() {
	w.cell.published.Add(w.writes - w.drops)
	w.mixWorker.Done()
	w.cell.waitAccounted(w.cell.published.Load())
}

// waitAccounted waits until every subscriber has accounted for n events, or
// none has made progress for watchIdle.
func (c *watchCell) waitAccounted(n int64) {
	last, since := int64(-1), time.Now()
	for {
		behind, total := false, int64(0)
		for i := range c.subs {
			got := c.subs[i].delivered.Load() + c.subs[i].lost.Load()
			total += got
			behind = behind || got < n
		}
		if !behind {
			return
		}
		if total != last {
			last, since = total, time.Now()
		} else if time.Since(since) > watchIdle {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func (c *watchCell) Finish() Metrics {
	c.cancel()
	for i := range c.subs {
		c.subs[i].sub.Close()
	}
	c.wg.Wait()
	var delivered int64
	for i := range c.subs {
		delivered += c.subs[i].delivered.Load()
	}
	m := c.c.Snapshot()
	m.Subscribers = len(c.subs)
	m.Published = c.published.Load()
	m.Events = delivered
	m.Missed = max(0, int64(len(c.subs))*m.Published-delivered)
	return m
}

// ListKeys lists the keys of a 1% prefix.
func ListKeys() Workload {
	return Workload{
		Name:  "list-1pct",
		Doc:   "ListKeys of a prefix that matches 1% of the keys",
		Needs: stores.List,
		Start: func(env *Env) (Cell, error) {
			p, want := ListPrefix(env.N)
			return &listCell{env: env, prefix: p, want: want}, nil
		},
	}
}

type listCell struct {
	env    *Env
	prefix string
	want   int
	c      Counters
}

func (c *listCell) NewWorker(int) Worker { return &listWorker{cell: c} }
func (c *listCell) Finish() Metrics      { return c.c.Snapshot() }

type listWorker struct {
	cell                *listCell
	listed, calls, errs int64
}

func (w *listWorker) Step() {
	n := len(w.cell.env.Store.ListKeys(w.cell.prefix))
	w.listed += int64(n)
	w.calls++
	if n != w.cell.want {
		w.errs++
	}
}

func (w *listWorker) Done() {
	w.cell.c.Listed.Add(w.listed)
	w.cell.c.Hits.Add(w.calls)
	w.cell.c.Errors.Add(w.errs)
}

// HalfExpired rewrites every key with a TTL, the even keys for an hour and
// the odd ones for 1 ms, waits until the short ones are past their
// deadline (and until the store's own reclaim, if it has one, settles),
// then reads uniformly chosen keys: half the reads meet expired keys.
// It changes the store, so it runs last.
func HalfExpired() Workload {
	return Workload{
		Name:        "get-half-expired",
		Doc:         "Get (uniform) after every odd key's TTL passed",
		Needs:       stores.TTL,
		Reads:       true,
		Destructive: true,
		Start: func(env *Env) (Cell, error) {
			if err := RewriteHalfExpired(env); err != nil {
				return nil, err
			}
			return &mixCell{env: env, order: env.Uniform}, nil
		},
	}
}

// RewriteHalfExpired is HalfExpired's preparation, in parallel.
func RewriteHalfExpired(env *Env) error {
	var wg sync.WaitGroup
	var refused atomic.Int64
	g := parallelism()
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < env.N; i += g {
				ttl := time.Hour
				if i%2 == 1 {
					ttl = time.Millisecond
				}
				if !env.Store.SetWithTTL(env.Keys[i], env.Value, ttl) {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := refused.Load(); n > 0 && env.Store.Name() != "ristretto" {
		return fmt.Errorf("half-expired: %d writes refused", n)
	}
	time.Sleep(5 * time.Millisecond)
	settle(env.Store, time.Second)
	return nil
}

// settle waits, up to limit, until the store's Len stops changing: its
// background reclaim, if any, is done.
func settle(s stores.Store, limit time.Duration) {
	if _, ok := s.(interface{ Wait() }); ok {
		s.(interface{ Wait() }).Wait()
	}
	deadline := time.Now().Add(limit)
	last := s.Len()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n := s.Len()
		if n == last {
			return
		}
		last = n
	}
}

// Standard returns the default workloads in run order (destructive last),
// with the read/write mixes over each of dists.
func Standard(dists ...Dist) []Workload {
	if len(dists) == 0 {
		dists = []Dist{Zipf}
	}
	var ws []Workload
	for _, d := range dists {
		suffix := ""
		if d != Zipf {
			suffix = "-" + string(d)
		}
		ws = append(ws,
			Mix("read100"+suffix, 0, d),
			Mix("read90"+suffix, 10, d),
			Mix("read50"+suffix, 50, d),
			Mix("write100"+suffix, 100, d),
		)
	}
	ws = append(ws,
		IncrementHot(),
		CASCounter(),
		WatchFanout(1),
		WatchFanout(8),
		WatchFanout(64),
		ListKeys(),
		TTLChurn(),
		HalfExpired(),
	)
	return ws
}

// Read90 is the mix the latency and scaling runs use.
func Read90() Workload { return Mix("read90", 10, Zipf) }
