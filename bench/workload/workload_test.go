package workload

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardkv/shardkv/bench/stores"
)

func TestKeys(t *testing.T) {
	if got := Key(123, 6); got != "user:000123" {
		t.Fatalf("Key(123, 6) = %q", got)
	}
	if KeyWidth(1_000_000) != 6 || KeyWidth(10_000_000) != 7 || KeyWidth(10) != 6 {
		t.Fatal("KeyWidth")
	}
	keys := Keys(1000)
	if len(keys) != 1000 || keys[999] != "user:000999" {
		t.Fatalf("Keys: %d, last %q", len(keys), keys[999])
	}
	for _, n := range []int{10_000, 1_000_000, 10_000_000, 12_345} {
		p, count := ListPrefix(n)
		want := 0
		w := KeyWidth(n)
		for i := 0; i < n; i += max(1, n/100_000) {
			if strings.HasPrefix(Key(i, w), p) {
				want++
			}
		}
		want *= max(1, n/100_000)
		if float64(count) < float64(n)/400 || float64(count) > float64(n)/25 {
			t.Errorf("ListPrefix(%d) = %q, %d keys: not about 1%%", n, p, count)
		}
		if d := want - count; d < -n/100_000 || d > n/100_000 {
			t.Errorf("ListPrefix(%d) = %q says %d keys, counted about %d", n, p, count, want)
		}
	}
}

func TestOrder(t *testing.T) {
	const n = 100_000
	z := Order(n, Zipf, 1)
	u := Order(n, Uniform, 1)
	if len(z) != OrderLen || len(u) != OrderLen {
		t.Fatal("length")
	}
	count := func(o []int32) (distinct int, top float64) {
		seen := map[int32]int{}
		for _, i := range o {
			if i < 0 || i >= n {
				t.Fatalf("index %d out of range", i)
			}
			seen[i]++
		}
		counts := make([]int, 0, len(seen))
		for _, c := range seen {
			counts = append(counts, c)
		}
		slices.Sort(counts)
		return len(seen), float64(counts[len(counts)-1]) / float64(len(o))
	}
	zd, ztop := count(z)
	ud, utop := count(u)
	if ztop < 0.05 || utop > 0.001 || zd >= ud {
		t.Fatalf("zipf: %d distinct, top %.4f; uniform: %d distinct, top %.4f", zd, ztop, ud, utop)
	}
}

func newEnv(t *testing.T, name string, n int) *Env {
	t.Helper()
	specs, err := stores.Lookup([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	ks := NewKeyspace(n)
	s, mem, err := Build(specs[0], ks, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if mem.Held != n || mem.HeapBytesPerEntry <= 0 {
		t.Fatalf("Build: held %d of %d, %.0f B/entry", mem.Held, n, mem.HeapBytesPerEntry)
	}
	return &Env{Keyspace: ks, Store: s}
}

func TestWorkloadsOnShardkv(t *testing.T) {
	env := newEnv(t, "shardkv", 5000)
	for _, w := range Standard(Zipf, Uniform) {
		cell, err := w.Start(env)
		if err != nil {
			t.Fatalf("%s: %v", w.Name, err)
		}
		res := RunFor(cell, 2, 10*time.Millisecond)
		m := res.Metrics
		if res.Ops == 0 || m.Errors != 0 || m.Dropped != 0 {
			t.Errorf("%s: %d ops, %d errors, %d dropped", w.Name, res.Ops, m.Errors, m.Dropped)
		}
		switch {
		case strings.HasPrefix(w.Name, "read") && m.HitRatio() != 1:
			t.Errorf("%s: hit ratio %v", w.Name, m.HitRatio())
		case w.Name == "get-half-expired" && (m.HitRatio() < 0.3 || m.HitRatio() > 0.7):
			t.Errorf("%s: hit ratio %v, want about 0.5", w.Name, m.HitRatio())
		case strings.HasPrefix(w.Name, "watch-"):
			if m.Events == 0 || m.Subscribers == 0 || m.Published != m.Writes ||
				m.Events+m.Missed != int64(m.Subscribers)*m.Published || m.DeliveredRatio() <= 0 || m.DeliveredRatio() > 1 {
				t.Errorf("%s: %d subscribers, %d published, %d writes, %d delivered, %d missed",
					w.Name, m.Subscribers, m.Published, m.Writes, m.Events, m.Missed)
			}
		}
	}
	for _, op := range Ops() {
		if c := MeasureOp(env, op, time.Millisecond); c.Runs < 3 {
			t.Errorf("%s: %d runs", op.Name, c.Runs)
		}
	}
}

func TestRunLatency(t *testing.T) {
	env := newEnv(t, "xsync", 5000)
	cell, _ := Read90().Start(env)
	l := RunLatency(cell, LatencyConfig{Goroutines: 2, Rate: 50_000, Duration: 100 * time.Millisecond, SampleEvery: 4})
	// No throughput check: on a busy machine the run may be descheduled.
	if l.Ops == 0 || l.Samples < l.Ops/4-2 || l.Samples > l.Ops/4+2 || l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P999 ||
		l.ServiceP99 > l.Max || l.Offered != 50_000 {
		t.Fatalf("%+v", l)
	}
	cell, _ = Read90().Start(env)
	l = RunLatency(cell, LatencyConfig{Goroutines: 2, Rate: 50_000, Ops: 1000, SampleEvery: 1})
	if l.Ops != 1000 || l.Samples != 1000 {
		t.Fatalf("Ops-bounded run: %d ops, %d samples", l.Ops, l.Samples)
	}
}

// lossy wraps a store so that its subscribers get only every other event:
// the rest are reported lost (missed = 1) or, if silent, never mentioned.
type lossy struct {
	stores.Store
	silent bool
}

func (l lossy) Subscribe() stores.Subscription {
	return &lossySub{inner: l.Store.(stores.Watcher).Subscribe(), silent: l.silent}
}

type lossySub struct {
	inner  stores.Subscription
	n      int
	silent bool
}

func (s *lossySub) Next(ctx context.Context) (uint64, error) {
	for {
		m, err := s.inner.Next(ctx)
		if err != nil || m > 0 {
			return m, err
		}
		s.n++
		switch {
		case s.n%2 == 1:
			return 0, nil
		case !s.silent:
			return 1, nil
		}
	}
}

func (s *lossySub) Close() { s.inner.Close() }

// TestWatchCountsDelivered checks that the watch workload counts events
// delivered, not published: a store whose subscribers get half the events,
// with or without telling them, reports half delivered and the rest missed.
func TestWatchCountsDelivered(t *testing.T) {
	env := newEnv(t, "shardkv", 2000)
	defer func(d time.Duration) { watchIdle = d }(watchIdle)
	watchIdle = 50 * time.Millisecond
	for _, c := range []struct {
		name  string
		store stores.Store
		max   float64 // delivered ratio at most
	}{
		{"all", env.Store, 1},
		{"half-lagged", lossy{Store: env.Store}, 0.5},
		{"half-silent", lossy{Store: env.Store, silent: true}, 0.5},
	} {
		cell, err := WatchFanout(4).Start(&Env{Keyspace: env.Keyspace, Store: c.store})
		if err != nil {
			t.Fatal(err)
		}
		m := RunFor(cell, 2, 10*time.Millisecond).Metrics
		r := m.DeliveredRatio()
		if m.Subscribers != 4 || m.Published == 0 || m.Published != m.Writes || r <= 0 || r > c.max+0.01 ||
			m.Events+m.Missed != 4*m.Published {
			t.Errorf("%s: %d published, %d delivered (%.3f a subscriber), %d missed", c.name, m.Published, m.Events, r, m.Missed)
		}
	}
}

// TestMeasureScale runs the scale measurement on a small set: every key
// held, the fill timed once a Set, the heap grown by about what the
// entries hold, and the raw GC rounds all there.
func TestMeasureScale(t *testing.T) {
	for _, spec := range []stores.Spec{mustSpec(t, "shardkv"), mustSpec(t, "xsync"), stores.Noop()} {
		r, err := MeasureScale(spec, ScaleConfig{Keys: 3000, GCRounds: 2, Cell: 5 * time.Millisecond, Goroutines: 2})
		if err != nil {
			t.Fatalf("%s: %v", spec.Name, err)
		}
		wantHeld := 3000
		if spec.Name == stores.NoopName {
			wantHeld = 0
		}
		if r.Store != spec.Name || r.Keys != 3000 || r.KeyBytes != 12 || r.Held != wantHeld || r.FillSets != 3000 || r.Dropped != 0 {
			t.Errorf("%s: %+v", spec.Name, r)
		}
		if r.FillP50 <= 0 || r.FillP9999 < r.FillP99 || r.FillMax < r.FillP9999 || r.FillSeconds <= 0 {
			t.Errorf("%s: fill p50 %d p99 %d p99.99 %d max %d", spec.Name, r.FillP50, r.FillP99, r.FillP9999, r.FillMax)
		}
		if len(r.GCCPUEmpty) != 6 || len(r.GCCPUStore) != 2 || len(r.GCWallEmpty) != 6 || len(r.GCWallStore) != 2 {
			t.Errorf("%s: GC rounds %v %v", spec.Name, r.GCCPUEmpty, r.GCCPUStore)
		}
		// 3000 entries of a 12-byte key and a 64-byte value: at least 76
		// bytes each in a store that keeps them (the noop keeps nothing).
		grew := (float64(r.HeapAfter) - float64(r.HeapBefore)) / 3000
		if (spec.Name != stores.NoopName && grew < 76) || (spec.Name == stores.NoopName && grew > 20) {
			t.Errorf("%s: heap grew %.0f B/entry", spec.Name, grew)
		}
		if r.Read90.Ops == 0 || r.Write100.Ops == 0 || r.Read90.NsPerOp <= 0 {
			t.Errorf("%s: read90 %+v, write100 %+v", spec.Name, r.Read90, r.Write100)
		}
	}
	if _, err := MeasureScale(mustSpec(t, "shardkv-view"), ScaleConfig{Keys: 100}); err == nil {
		t.Error("a variant measured")
	}
}

func mustSpec(t *testing.T, name string) stores.Spec {
	t.Helper()
	specs, err := stores.Lookup([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	return specs[0]
}

// TestRunGetLatency times every Get while the writer overwrites: as many
// samples as Gets, percentiles in order, the writer counted.
func TestRunGetLatency(t *testing.T) {
	env := newEnv(t, "xsync", 5000)
	l := RunGetLatency(env, GetLatencyConfig{Readers: 2, Duration: 30 * time.Millisecond})
	if l.Readers != 2 || l.Gets == 0 || l.Hits != l.Gets || l.Sets == 0 || l.P50 <= 0 || l.P99 < l.P50 ||
		l.P999 < l.P99 || l.P9999 < l.P999 || l.Max < l.P9999 || l.Elapsed < 30*time.Millisecond {
		t.Fatalf("%+v", l)
	}
	noop, _ := stores.Noop().New(stores.Config{})
	l = RunGetLatency(&Env{Keyspace: env.Keyspace, Store: noop}, GetLatencyConfig{Readers: 1, Duration: 10 * time.Millisecond, NoWriter: true})
	if l.Gets == 0 || l.Hits != 0 || l.Sets != 0 {
		t.Fatalf("noop without writer: %+v", l)
	}
}
