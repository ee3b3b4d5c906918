package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/goleak"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/etcdkv/etcdtest"
)

// member is one member of an embedded etcd cluster.
type member struct {
	name     string
	etcd     *embed.Etcd
	endpoint string
	killed   atomic.Bool
	stopOnce sync.Once
}

// stop closes the member, once; a second call waits for the first.
func (m *member) stop() { m.stopOnce.Do(m.etcd.Close) }

// etcdCluster is a cluster of embedded members in this process, each with
// its data in a temporary directory, serving on 127.0.0.1.
type etcdCluster struct {
	members   []*member
	endpoints []string
	bg        sync.WaitGroup // the kills' closes
}

// clusterSeq tells apart the clusters' tokens.
var clusterSeq atomic.Int64

// startCluster starts an n-member cluster (every member with startEtcd's
// settings: TickMs 10, ElectionMs 100, logs silenced), waits until every
// member is ready and one is the leader, and stops every member when t
// ends. The members start at once, as each waits for its peers; when a
// port picked turns out taken, the whole cluster starts again on new ones.
func startCluster(t testing.TB, n int) *etcdCluster {
	t.Helper()
	var lastErr error
	for range 5 {
		c, err := tryStartCluster(t, n)
		if err == nil {
			t.Cleanup(c.stopAll)
			c.waitLeader(t, -1)
			return c
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("starting etcd: %v", err)
		}
	}
	t.Fatalf("starting etcd: no free ports after 5 tries: %v", lastErr)
	return nil
}

func tryStartCluster(t testing.TB, n int) (*etcdCluster, error) {
	t.Helper()
	token := fmt.Sprintf("etcdkv-test-%d-%d", os.Getpid(), clusterSeq.Add(1))
	cfgs := make([]*embed.Config, n)
	peers := make([]string, n)
	for i := range cfgs {
		cfg := etcdtest.MemberConfig(t, fmt.Sprintf("m%d", i), etcdtest.Config{MaxRequestBytes: testRequestBytes})
		cfg.InitialClusterToken = token
		cfgs[i] = cfg
		peers[i] = cfg.Name + "=" + cfg.AdvertisePeerUrls[0].String()
	}
	c := &etcdCluster{members: make([]*member, n), endpoints: make([]string, n)}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(peers, ",")
		wg.Go(func() {
			e, err := embed.StartEtcd(cfg)
			if err != nil {
				errs[i] = err
				return
			}
			c.members[i] = &member{name: cfg.Name, etcd: e, endpoint: cfg.ListenClientUrls[0].String()}
			c.endpoints[i] = c.members[i].endpoint
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.stopAll()
		return nil, err
	}
	timeout := time.After(30 * time.Second)
	for _, m := range c.members {
		select {
		case <-m.etcd.Server.ReadyNotify():
		case <-timeout:
			c.stopAll()
			t.Fatal("the etcd cluster did not become ready in 30 s")
		}
	}
	return c, nil
}

// stopAll closes every member and waits for the kills' closes: first the
// followers, all at once, then the leader. A leader closed beside its
// followers would try to hand its leadership to one of them and wait the
// request timeout (about 5 s) for it; closed after them, it finds none to
// hand it to. (Hard-stopping them all first would skip the transfer, but
// then the peers' last requests leave goroutines that live out etcd's 5 s
// peer read timeout: see settle.)
func (c *etcdCluster) stopAll() {
	lead := uint64(0)
	for _, m := range c.members {
		if m != nil && !m.killed.Load() {
			lead = max(lead, uint64(m.etcd.Server.Leader()))
		}
	}
	var wg sync.WaitGroup
	var leader *member
	for _, m := range c.members {
		switch {
		case m == nil:
		case uint64(m.etcd.Server.MemberID()) == lead:
			leader = m
		default:
			wg.Go(m.stop)
		}
	}
	wg.Wait()
	if leader != nil {
		leader.stop()
	}
	c.bg.Wait()
	settle(7 * time.Second)
}

// settle waits, up to timeout, until goleak finds no goroutine left over
// (beside the tests'), so that each cluster test ends tidy. A member's
// Close can return while goroutines of a peer's keep-alive HTTP
// connection to it (etcd's peer round tripper pools them, for its version
// checks, and never closes them) are still there: net/http's
// abortPendingRead sets a past read deadline, which etcd's timeoutConn
// re-arms to its 5 s peer read timeout when the read starts after it, so
// they go only when those 5 s are out. If anything is still there at the
// end, TestMain reports it. (Tests that run in parallel with a cluster
// test would only make this wait its whole timeout.)
func settle(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for goleak.Find() != nil && time.Now().Before(deadline) {
	}
}

// leader returns the index of the member every live member takes for
// the leader, waiting up to 10 s for them to agree on one, which must not
// be member not (-1: any).
func (c *etcdCluster) waitLeader(t testing.TB, not int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var lead uint64
		agreed := true
		for _, m := range c.members {
			if m.killed.Load() {
				continue
			}
			l := uint64(m.etcd.Server.Leader())
			if l == 0 || (lead != 0 && l != lead) {
				agreed = false
				break
			}
			lead = l
		}
		if agreed && lead != 0 {
			for i, m := range c.members {
				if uint64(m.etcd.Server.MemberID()) == lead && i != not && !m.killed.Load() {
					return i
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader agreed on in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill stops member i as a crash would: its raft stops at once, with no
// leadership transfer (HardStop); its listeners then close in the
// background (embed's Close, which waits up to the request timeout, about
// 5 s, for the streams still open to it), which stopAll waits for.
func (c *etcdCluster) kill(i int) {
	m := c.members[i]
	m.killed.Store(true)
	m.etcd.Server.HardStop()
	c.bg.Go(m.stop)
}

// client returns a new client of every member, closed when t ends.
func (c *etcdCluster) client(t testing.TB) *clientv3.Client {
	t.Helper()
	return etcdtest.NewClient(t, testRequestBytes, c.endpoints...)
}

// waitFor polls cond every 5 ms until it holds, failing t after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSubLive writes liveKey through s until sub gets an event for it, so
// that sub's store's stream is known to be running.
func waitSubLive(t *testing.T, ctx context.Context, s *shardkv.Store, sub *shardkv.Subscription) {
	t.Helper()
	for i := 0; ; i++ {
		if err := s.SetContext(ctx, liveKey, []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("writing %s: %v", liveKey, err)
		}
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		ev, err := sub.Recv(rctx)
		cancel()
		if err == nil && ev.Key == liveKey {
			return
		}
		if ctx.Err() != nil {
			t.Fatal("the subscription never started")
		}
	}
}

// clusterOp is one write of TestCluster_LeaderKill, as its writer saw it.
type clusterOp struct {
	key, val string
	n        int64 // an increment's result
	err      error
}

// watchLog is what one subscriber received: its events, and the
// *LaggedErrors it got, each at the index of the event it came before.
type watchLog struct {
	evs  []shardkv.Event
	lags []lagAt
}

type lagAt struct {
	at     int
	missed uint64
}

const (
	counterKey = "ctr"
	endKey     = "end"
)

// Issue 11: a 3-member cluster loses its leader to a crash in the middle
// of writes, increments and watches, and none of them is lost, doubled or
// reordered.
//
// Three writers Set distinct keys, two incrementers Increment one counter,
// and two subscribers (stores of their own, on clients of their own)
// record what they receive, while the leader is hard-stopped; the work goes
// on until a new leader is elected and every worker has had more writes
// acknowledged. Then:
//   - every acknowledged Set is read back with its value; a Set that failed
//     with ErrAmbiguous reads back as its value or as missing; one that
//     failed otherwise (which the package says was not applied) as missing;
//   - the counter's value is at least the acknowledged increments and at
//     most those plus the ambiguous ones; the acknowledged results are
//     distinct, within it, and strictly increasing per incrementer;
//   - each subscriber got each key's events in order with no duplicate:
//     at most one per written key, with its value, a writer's keys in the
//     order it wrote them, the counter's values strictly increasing. With
//     no *LaggedError (the stores' capacity is far above what the test
//     writes, so none is expected) they are also complete: an event for
//     exactly the keys that read back, and the counter's values exactly
//     1, 2, ..., its final value. A subscriber that got a *LaggedError
//     (logged) is held only to order, values and no duplicates, and to
//     the counter's last event being its final value if it got an event of
//     the counter after its last lag.
//
// Each call has 1 s; a subscriber whose stream was on the killed member
// resumes (where it stopped) only when that member's server drops its
// connections, about 5 s after the kill (embed's Close waits the request
// timeout for open streams), so the test takes 7 to 14 s with -race.
func TestCluster_LeaderKill(t *testing.T) {
	c := startCluster(t, 3)
	ns := freshNS()
	newStore := func(opts ...shardkv.Option) *shardkv.Store {
		s := shardkv.New(append(opts, shardkv.WithBackend(New(c.client(t), WithNamespace(ns))))...)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	ctx := testCtx(t)
	writerStore := newStore()
	incStores := []*shardkv.Store{newStore(), newStore()}
	const nWatchers = 2
	subs := make([]*shardkv.Subscription, nWatchers)
	for i := range subs {
		s := newStore(shardkv.WithWatchCapacity(1 << 14))
		subs[i] = s.Subscribe()
		t.Cleanup(subs[i].Close)
		waitSubLive(t, ctx, writerStore, subs[i])
	}

	// The subscribers, until the end mark (or t's end).
	logs := make([]*watchLog, nWatchers)
	sawEnd := make([]chan struct{}, nWatchers)
	wctx, wcancel := context.WithCancel(context.Background())
	var watchers sync.WaitGroup
	t.Cleanup(func() { wcancel(); watchers.Wait() })
	for i, sub := range subs {
		logs[i], sawEnd[i] = &watchLog{}, make(chan struct{})
		watchers.Go(func() {
			log := logs[i]
			for {
				ev, err := sub.Recv(wctx)
				var lagged *shardkv.LaggedError
				switch {
				case errors.As(err, &lagged):
					log.lags = append(log.lags, lagAt{len(log.evs), lagged.Missed})
					continue
				case err != nil:
					return
				case ev.Key == liveKey:
					continue
				}
				log.evs = append(log.evs, ev)
				if ev.Key == endKey {
					close(sawEnd[i])
					return
				}
			}
		})
	}

	// The workers, each pausing 20 ms between two calls (so that the
	// history stays a few hundred events long), until stop.
	var stop atomic.Bool
	const nWriters = 3
	nWorkers := nWriters + len(incStores)
	acked := make([]atomic.Int64, nWorkers)
	ops := make([][]clusterOp, nWorkers)
	var workers sync.WaitGroup
	call := func(fn func(ctx context.Context) error) error {
		octx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return fn(octx)
	}
	for w := range nWriters {
		workers.Go(func() {
			for n := 0; !stop.Load(); n++ {
				op := clusterOp{key: fmt.Sprintf("w%d/%04d", w, n), val: fmt.Sprintf("%d:%d", w, n)}
				op.err = call(func(ctx context.Context) error { return writerStore.SetContext(ctx, op.key, []byte(op.val)) })
				ops[w] = append(ops[w], op)
				if op.err == nil {
					acked[w].Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	for i, s := range incStores {
		w := nWriters + i
		workers.Go(func() {
			for !stop.Load() {
				op := clusterOp{key: counterKey}
				op.err = call(func(ctx context.Context) (err error) {
					op.n, err = s.IncrementContext(ctx, counterKey, 1)
					return err
				})
				ops[w] = append(ops[w], op)
				if op.err == nil {
					acked[w].Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	stopWorkers := sync.OnceFunc(func() { stop.Store(true); workers.Wait() })
	t.Cleanup(stopWorkers) // should the test fail before the end
	allAcked := func(base []int64, more int64) func() bool {
		return func() bool {
			for w := range acked {
				if acked[w].Load() < base[w]+more {
					return false
				}
			}
			return true
		}
	}
	snapshot := func() []int64 {
		s := make([]int64, len(acked))
		for w := range acked {
			s[w] = acked[w].Load()
		}
		return s
	}

	const more = 15
	waitFor(t, 10*time.Second, "writes before the kill", allAcked(make([]int64, nWorkers), more))
	lead := c.waitLeader(t, -1)
	killed := time.Now()
	c.kill(lead)
	next := c.waitLeader(t, lead)
	t.Logf("killed the leader %s; %s leads %v later", c.members[lead].name, c.members[next].name, time.Since(killed).Round(time.Millisecond))
	waitFor(t, 15*time.Second, "writes after the new leader", allAcked(snapshot(), more))
	stopWorkers()

	// The end mark, after every write: a subscriber that has it has had
	// every event before it.
	if err := writerStore.SetContext(ctx, endKey, nil); err != nil {
		t.Fatalf("writing the end mark: %v", err)
	}

	// What the cluster holds.
	read := func(key string) ([]byte, bool) {
		t.Helper()
		v, ok, err := writerStore.GetContext(ctx, key)
		if err != nil {
			t.Fatalf("reading %s: %v", key, err)
		}
		return v, ok
	}
	present := map[string]string{} // the writers' keys that read back
	var ambiguous, failed, ambiguousApplied int
	for w := range nWriters {
		for _, op := range ops[w] {
			v, ok := read(op.key)
			if ok {
				present[op.key] = string(v)
			}
			switch {
			case op.err == nil:
				if !ok || string(v) != op.val {
					t.Errorf("acknowledged Set %s=%q reads back as %q (found %v)", op.key, op.val, v, ok)
				}
			case errors.Is(op.err, ErrAmbiguous):
				ambiguous++
				if ok {
					ambiguousApplied++
					if string(v) != op.val {
						t.Errorf("ambiguous Set %s=%q reads back as %q", op.key, op.val, v)
					}
				}
			default:
				failed++
				if ok {
					t.Errorf("Set %s=%q failed with %v, not ErrAmbiguous, yet took effect", op.key, op.val, op.err)
				}
			}
		}
	}
	t.Logf("writers: %d Sets acknowledged, %d ambiguous (%d applied), %d failed",
		len(present)-ambiguousApplied, ambiguous, ambiguousApplied, failed)

	v, ok := read(counterKey)
	final, err := strconv.ParseInt(string(v), 10, 64)
	if !ok || err != nil {
		t.Fatalf("the counter reads %q (found %v)", v, ok)
	}
	results := map[int64]bool{}
	var incAmbiguous, incFailed int
	for w := nWriters; w < nWorkers; w++ {
		last := int64(0)
		for _, op := range ops[w] {
			switch {
			case op.err == nil:
				if op.n <= last {
					t.Errorf("incrementer %d: result %d after %d", w-nWriters, op.n, last)
				}
				if results[op.n] {
					t.Errorf("increment result %d returned twice", op.n)
				}
				if op.n < 1 || op.n > final {
					t.Errorf("increment result %d outside 1..%d", op.n, final)
				}
				last, results[op.n] = op.n, true
			case errors.Is(op.err, ErrAmbiguous):
				incAmbiguous++
			default:
				incFailed++
			}
		}
	}
	t.Logf("incrementers: %d acknowledged, %d ambiguous, %d failed; the counter is %d",
		len(results), incAmbiguous, incFailed, final)
	if final < int64(len(results)) || final > int64(len(results)+incAmbiguous) {
		t.Errorf("the counter is %d, want %d acknowledged increments plus at most %d ambiguous ones",
			final, len(results), incAmbiguous)
	}

	// What the subscribers received.
	for i := range sawEnd {
		select {
		case <-sawEnd[i]:
		case <-time.After(20 * time.Second):
			t.Fatalf("subscriber %d: no end mark in 20 s", i)
		}
	}
	t.Logf("every subscriber had the end mark %v after the kill", time.Since(killed).Round(time.Millisecond))
	for i, log := range logs {
		checkWatchLog(t, i, log, present, final)
	}
}

// checkWatchLog checks subscriber i's log against the keys that read
// back and the counter's final value (see TestCluster_LeaderKill).
func checkWatchLog(t *testing.T, i int, log *watchLog, present map[string]string, final int64) {
	t.Helper()
	lagged := len(log.lags) > 0
	if lagged {
		t.Logf("subscriber %d lagged: %v (events after each lag are checked for order only)", i, log.lags)
	}
	afterLag := 0 // the index of the first event after the last lag
	if lagged {
		afterLag = log.lags[len(log.lags)-1].at
	}
	seen := map[string]bool{}
	lastN := map[string]int{} // writer: the last index of its keys seen
	var ctr []int64
	ctrAfterLag := false
	for j, ev := range log.evs {
		switch {
		case ev.Key == endKey:
			if j != len(log.evs)-1 {
				t.Errorf("subscriber %d: the end mark is not last", i)
			}
		case ev.Key == counterKey:
			n, err := strconv.ParseInt(string(ev.Value), 10, 64)
			if ev.Kind != shardkv.EventSet || err != nil {
				t.Errorf("subscriber %d: counter event %v", i, ev)
				continue
			}
			if len(ctr) > 0 && n <= ctr[len(ctr)-1] {
				t.Errorf("subscriber %d: counter %d after %d", i, n, ctr[len(ctr)-1])
			}
			ctr = append(ctr, n)
			ctrAfterLag = j >= afterLag
		default:
			writer, nth, ok := strings.Cut(ev.Key, "/")
			n, err := strconv.Atoi(nth)
			if !ok || err != nil {
				t.Errorf("subscriber %d: an event for an unknown key: %v", i, ev)
				continue
			}
			if seen[ev.Key] {
				t.Errorf("subscriber %d: a second event for %s", i, ev.Key)
			}
			seen[ev.Key] = true
			want, applied := present[ev.Key]
			if ev.Kind != shardkv.EventSet || !ev.New || !applied || string(ev.Value) != want {
				t.Errorf("subscriber %d: event %+v, want a new set of %q (applied: %v)", i, ev, want, applied)
			}
			if last, ok := lastN[writer]; ok && n <= last {
				t.Errorf("subscriber %d: %s after %s/%04d", i, ev.Key, writer, last)
			}
			lastN[writer] = n
		}
	}
	if len(log.evs) == 0 || log.evs[len(log.evs)-1].Key != endKey {
		t.Errorf("subscriber %d: no end mark", i)
	}
	if ctrAfterLag && ctr[len(ctr)-1] != final {
		t.Errorf("subscriber %d: the counter's last event is %d, want its final value %d", i, ctr[len(ctr)-1], final)
	}
	if lagged {
		return
	}
	for key := range present {
		if !seen[key] {
			t.Errorf("subscriber %d: no event for %s, which took effect", i, key)
		}
	}
	want := make([]int64, final)
	for n := range want {
		want[n] = int64(n + 1)
	}
	if !slices.Equal(ctr, want) {
		t.Errorf("subscriber %d: counter events %v, want 1..%d", i, ctr, final)
	}
	t.Logf("subscriber %d: %d events, complete and in order", i, len(log.evs))
}
