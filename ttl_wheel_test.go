package shardkv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

// wheelHarness drives a wheel and records what fires, and when. It judges
// firing against the deadlines the test asked for (asked), never against
// the timer's when and tick fields, which the wheel itself writes.
type wheelHarness struct {
	t      *testing.T
	w      wheel
	now    int64           // the last now advanced to
	latest int64           // the latest now advanced to: the wheel never goes back
	timers map[string]tref // scheduled, not fired
	asked  map[tref]int64  // each scheduled timer's deadline, as last asked for
	keys   map[tref]string // the key each scheduled timer is for
	fired  []string
}

func newWheelHarness(t *testing.T) *wheelHarness {
	return &wheelHarness{t: t, timers: map[string]tref{}, asked: map[tref]int64{}, keys: map[tref]string{}}
}

func (h *wheelHarness) schedule(key string, when int64) {
	if old, ok := h.timers[key]; ok {
		h.w.cancel(old)
		h.w.release(old)
		delete(h.asked, old)
		delete(h.keys, old)
	}
	tm := h.w.alloc()
	h.w.schedule(tm, when)
	h.timers[key] = tm
	h.asked[tm] = when
	h.keys[tm] = key
}

// reschedule moves key's timer, as a rewrite with a TTL does.
func (h *wheelHarness) reschedule(key string, when int64) {
	tm := h.timers[key]
	h.w.reschedule(tm, when)
	h.asked[tm] = when
}

func (h *wheelHarness) cancel(key string) {
	tm := h.timers[key]
	h.w.cancel(tm)
	h.w.release(tm)
	delete(h.timers, key)
	delete(h.asked, tm)
	delete(h.keys, tm)
}

// ceilTick is the first tick boundary at or after when (>= 0), computed
// here rather than with tickOf, which is under test. math.MaxInt64's is
// one past math.MaxInt64/wheelTick, as the wheel saturates.
func ceilTick(when int64) int64 {
	return when/wheelTick + min(when%wheelTick, 1)
}

// advance moves to now with the given budget, looping until done, and
// returns the keys fired in order. A timer must never fire before the
// deadline asked for; check then asserts that none due is left.
func (h *wheelHarness) advance(now int64, budget int) []string {
	h.t.Helper()
	h.now = now
	h.latest = max(h.latest, now)
	start := len(h.fired)
	fire := func(tm tref) {
		key, ok := h.keys[tm]
		if !ok || h.timers[key] != tm {
			h.t.Fatalf("timer %d (%q) fired but was cancelled or replaced", tm, key)
		}
		if asked := h.asked[tm]; asked > now {
			h.t.Fatalf("%s fired early: asked for %d, now %d", key, asked, now)
		}
		delete(h.timers, key)
		delete(h.asked, tm)
		delete(h.keys, tm)
		h.w.release(tm) // as the shard does: the pool reuses it
		h.fired = append(h.fired, key)
	}
	for rounds := 0; !h.w.advance(now, budget, fire); rounds++ {
		if rounds > 1e7 {
			h.t.Fatal("advance never finished")
		}
	}
	h.check()
	return h.fired[start:]
}

// check asserts the wheel's invariants against the harness's own record of
// the deadlines asked for: every timer asked for at or before now has fired
// (so a timer fires at the first advance past its deadline, hence by the
// first tick boundary at or after it), the count is right, and the wheel's
// due tick, when the reaper and quota reclaim next look at it, is no later
// than the first tick boundary at or after any held timer's deadline (or,
// for a deadline already behind the wheel, than the wheel's own time).
func (h *wheelHarness) check() {
	h.t.Helper()
	if h.w.n != len(h.timers) {
		h.t.Fatalf("wheel holds %d timers, want %d", h.w.n, len(h.timers))
	}
	due := h.w.due()
	if len(h.timers) == 0 && due != noTick {
		h.t.Fatalf("empty wheel due at %d", due)
	}
	for k, tm := range h.timers {
		asked := h.asked[tm]
		if asked <= h.now && h.now >= 0 {
			h.t.Fatalf("%s (asked for %d) still held at now %d", k, asked, h.now)
		}
		if h.w.at(tm).level < 0 {
			h.t.Fatalf("%s is not linked", k)
		}
		if bound := max(ceilTick(asked), ceilTick(max(h.latest, 0))); due > bound {
			h.t.Fatalf("due tick %d is after %d, the tick of %s's deadline %d", due, bound, k, asked)
		}
	}
}

func TestWheelFiresInDeadlineOrder(t *testing.T) {
	h := newWheelHarness(t)
	deadlines := []int64{5 * ms, 1 * ms, 64 * ms, 63 * ms, 65 * ms, 4095 * ms, 4096 * ms, 4097 * ms, 2*ms + 1, 0}
	for i, d := range deadlines {
		h.schedule(fmt.Sprint(i), d)
	}
	var got []int64
	for now := int64(0); now <= 5000*ms; now += ms / 2 {
		for _, k := range h.advance(now, math.MaxInt) {
			got = append(got, h.deadlineOf(k, deadlines))
		}
	}
	want := slices.Clone(deadlines)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("fired in order %v, want %v", got, want)
	}
}

func (h *wheelHarness) deadlineOf(k string, deadlines []int64) int64 {
	var i int
	fmt.Sscan(k, &i)
	return deadlines[i]
}

func TestWheelExactAtAnyNow(t *testing.T) {
	// advance(now) fires exactly the timers with deadline <= now, even for a
	// now inside a tick.
	tests := []struct {
		when, now int64
		fires     bool
	}{
		{when: 1500_000, now: 1499_999, fires: false},
		{when: 1500_000, now: 1500_000, fires: true},
		{when: 1500_000, now: 1700_000, fires: true},
		{when: 2 * ms, now: 2*ms - 1, fires: false},
		{when: 2 * ms, now: 2 * ms, fires: true},
		{when: 64*ms + 1, now: 64 * ms, fires: false},
		{when: 64*ms + 1, now: 64*ms + 1, fires: true},
		{when: 3*time.Hour.Nanoseconds() + 7, now: 3*time.Hour.Nanoseconds() + 6, fires: false},
		{when: 3*time.Hour.Nanoseconds() + 7, now: 3*time.Hour.Nanoseconds() + 7, fires: true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("when=%d/now=%d", tc.when, tc.now), func(t *testing.T) {
			h := newWheelHarness(t)
			h.schedule("k", tc.when)
			fired := h.advance(tc.now, math.MaxInt)
			if (len(fired) == 1) != tc.fires {
				t.Fatalf("fired %v, want fires=%v", fired, tc.fires)
			}
			if !tc.fires {
				// It fires on the next advance past its deadline.
				if got := h.advance(tc.when, math.MaxInt); len(got) != 1 {
					t.Fatalf("did not fire at its deadline: %v", got)
				}
			}
		})
	}
}

func TestWheelCancel(t *testing.T) {
	h := newWheelHarness(t)
	for i := range 200 {
		h.schedule(fmt.Sprint(i), int64(i)*37*ms)
	}
	for i := 0; i < 200; i += 2 {
		h.cancel(fmt.Sprint(i))
	}
	fired := h.advance(200*37*ms, math.MaxInt)
	if len(fired) != 100 {
		t.Fatalf("fired %d, want 100", len(fired))
	}
	for _, k := range fired {
		var i int
		fmt.Sscan(k, &i)
		if i%2 == 0 {
			t.Fatalf("cancelled timer %s fired", k)
		}
	}
	if h.w.due() != noTick || h.w.n != 0 {
		t.Fatalf("wheel not empty: due %d n %d", h.w.due(), h.w.n)
	}
}

func TestWheelCascadesAcrossLevels(t *testing.T) {
	year := 365 * 24 * time.Hour.Nanoseconds()
	deadlines := map[string]int64{
		"level0":    40 * ms,
		"level1":    3 * time.Second.Nanoseconds(),
		"level2":    200 * time.Second.Nanoseconds(),
		"level3":    3 * time.Hour.Nanoseconds(),
		"level4":    10 * 24 * time.Hour.Nanoseconds(),
		"level5":    2 * year,
		"level6":    100 * year,
		"overflow":  200 * year,
		"saturated": math.MaxInt64,
	}
	h := newWheelHarness(t)
	for k, d := range deadlines {
		h.schedule(k, d)
	}
	levels := map[string]int8{}
	for k, tm := range h.timers {
		levels[k] = h.w.at(tm).level
	}
	for k, want := range map[string]int8{"level0": 0, "level1": 1, "level2": 2, "level3": 3, "level4": 4, "level5": 5, "level6": 6, "overflow": wheelOverflow, "saturated": wheelOverflow} {
		if levels[k] != want {
			t.Errorf("%s placed at level %d, want %d", k, levels[k], want)
		}
	}
	// Walk time in uneven jumps; each timer fires at the first advance past
	// its deadline, never before.
	var now int64
	for len(h.timers) > 0 {
		step := max(ms, now/3)
		if now > math.MaxInt64-step {
			now = math.MaxInt64
		} else {
			now += step
		}
		for _, k := range h.advance(now, 7) { // small budget: chunked advance
			if deadlines[k] > now {
				t.Fatalf("%s fired early", k)
			}
		}
		if now == math.MaxInt64 {
			break
		}
	}
	if len(h.timers) != 0 {
		t.Fatalf("never fired: %v", h.timers)
	}
}

func TestWheelPastDeadlineFiresOnNextAdvance(t *testing.T) {
	h := newWheelHarness(t)
	h.advance(10*time.Second.Nanoseconds(), math.MaxInt)
	h.schedule("past", 3*ms)
	h.schedule("now", 10*time.Second.Nanoseconds())
	if got := h.advance(10*time.Second.Nanoseconds(), math.MaxInt); len(got) != 2 {
		t.Fatalf("fired %v, want both", got)
	}
}

func TestWheelClockBackwardsIsNoop(t *testing.T) {
	h := newWheelHarness(t)
	h.advance(100*ms, math.MaxInt)
	h.schedule("a", 150*ms)
	elapsed := h.w.elapsed
	if got := h.advance(20*ms, math.MaxInt); len(got) != 0 {
		t.Fatalf("fired %v going backwards", got)
	}
	if h.w.elapsed != elapsed {
		t.Fatalf("elapsed moved from %d to %d going backwards", elapsed, h.w.elapsed)
	}
	if got := h.advance(150*ms, math.MaxInt); len(got) != 1 {
		t.Fatalf("fired %v at the deadline", got)
	}
}

func TestWheelBudgetBoundsWork(t *testing.T) {
	var w wheel
	for range 1000 {
		w.schedule(w.alloc(), 5*ms)
	}
	fired := 0
	fire := func(tref) { fired++ }
	rounds := 0
	for !w.advance(5*ms, 100, fire) {
		rounds++
		if fired != rounds*100 {
			t.Fatalf("round %d fired %d, want %d", rounds, fired, rounds*100)
		}
	}
	if fired != 1000 || w.n != 0 {
		t.Fatalf("fired %d, held %d", fired, w.n)
	}
}

// TestTickOfNeverEarly: tickOf(when) is the first tick boundary at or after
// when: never before it (tick*wheelTick >= when) and minimal
// ((tick-1)*wheelTick < when, for when > 0), over the documented range
// when >= 0 up to math.MaxInt64 (a saturated deadline). The products are
// taken in uint64, where they cannot overflow: tick <= MaxInt64/wheelTick+1.
func TestTickOfNeverEarly(t *testing.T) {
	const maxTicks = math.MaxInt64 / wheelTick // whole ticks below MaxInt64
	tests := []struct {
		when, want int64
	}{
		{0, 0},
		{1, 1},
		{wheelTick - 1, 1},
		{wheelTick, 1},
		{wheelTick + 1, 2},
		{2*wheelTick - 1, 2},
		{2 * wheelTick, 2},
		{1500 * 1000, 2}, // 1.5 ms
		{64 * wheelTick, 64},
		{3*time.Hour.Nanoseconds() + 7, 3*3600*1000 + 1},
		{1 << 50, (1<<50)/wheelTick + 1}, // 2^50 is no multiple of 10^6
		{maxTicks*wheelTick - 1, maxTicks},
		{maxTicks * wheelTick, maxTicks},
		{maxTicks*wheelTick + 1, maxTicks + 1},
		{math.MaxInt64 - 1, maxTicks + 1},
		{math.MaxInt64, maxTicks + 1},
	}
	for _, tc := range tests {
		tick := tickOf(tc.when)
		if tick != tc.want {
			t.Errorf("tickOf(%d) = %d, want %d", tc.when, tick, tc.want)
		}
		if tick < 0 || uint64(tick)*uint64(wheelTick) < uint64(tc.when) {
			t.Errorf("tickOf(%d) = %d: its boundary %d*%d is before the deadline (fires early)", tc.when, tick, tick, wheelTick)
		}
		if tc.when > 0 && tick > 0 && uint64(tick-1)*uint64(wheelTick) >= uint64(tc.when) {
			t.Errorf("tickOf(%d) = %d: the boundary before, %d*%d, is already at or after the deadline (fires late)", tc.when, tick, tick-1, wheelTick)
		}
	}
}

// TestWheelReaperFiresAtDeadlineTick drives the wheel as the reaper does:
// it sleeps until the start of the due tick and advances to that instant.
// Every timer must fire on the wake at the first tick boundary at or after
// the deadline asked for: not on an earlier wake (early), and no wake may
// skip past that boundary (late).
func TestWheelReaperFiresAtDeadlineTick(t *testing.T) {
	day := 24 * time.Hour.Nanoseconds()
	deadlines := map[string]int64{
		"1ns":         1,
		"tick-1":      wheelTick - 1,
		"tick":        wheelTick,
		"tick+1":      wheelTick + 1,
		"level0":      40*ms + 3,
		"level1":      3*time.Second.Nanoseconds() + 1,
		"level1-edge": 64 * ms,
		"level2":      200 * time.Second.Nanoseconds(),
		"level3":      3*time.Hour.Nanoseconds() + 7,
		"level4":      10*day + 1,
		"level5":      2*365*day + 5,
	}
	h := newWheelHarness(t)
	for k, d := range deadlines {
		h.schedule(k, d)
	}
	firedAt := map[string]int64{}
	now := int64(0)
	for wakes := 0; len(h.timers) > 0; wakes++ {
		if wakes > 1000 {
			t.Fatalf("still holding %d timers after %d wakes", len(h.timers), wakes)
		}
		due := h.w.due()
		if due == noTick {
			t.Fatalf("%d timers held, nothing due", len(h.timers))
		}
		now = max(now, due*wheelTick) // the reaper's sleep ends at the due tick's start
		for _, k := range h.advance(now, math.MaxInt) {
			firedAt[k] = now
		}
	}
	for k, d := range deadlines {
		if want := ceilTick(d) * wheelTick; firedAt[k] != want {
			t.Errorf("%s (deadline %d) fired on the wake at %d, want %d (the first tick boundary at or after it)", k, d, firedAt[k], want)
		}
	}
}

// TestWheelRandomAgainstModel schedules, reschedules, cancels and advances at
// random, from sub-tick to multi-year steps, with random budgets, checking
// after every advance that exactly the due timers fired (wheelHarness.check).
func TestWheelRandomAgainstModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { wheelRandom(t, seed) })
	}
}

func wheelRandom(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	spans := []int64{ms / 3, ms, 70 * ms, 5 * time.Second.Nanoseconds(), time.Hour.Nanoseconds(), 400 * 24 * time.Hour.Nanoseconds()}
	h := newWheelHarness(t)
	keys := 300
	steps := 10000
	if testing.Short() {
		steps = 4000
	}
	for step := range steps {
		key := fmt.Sprint(rng.IntN(keys))
		switch op := rng.IntN(10); {
		case op < 5:
			span := spans[rng.IntN(len(spans))]
			when := h.now + rng.Int64N(2*span) - span/4 // some in the past
			h.schedule(key, max(when, 0))
		case op < 6:
			if _, ok := h.timers[key]; ok {
				h.cancel(key)
			}
		case op < 7:
			if _, ok := h.timers[key]; ok {
				span := spans[rng.IntN(len(spans))]
				h.reschedule(key, max(h.now+rng.Int64N(2*span)-span/4, 0)) // later or earlier
			}
		default:
			span := spans[rng.IntN(len(spans)-1)]
			budget := []int{1, 3, 64, math.MaxInt}[rng.IntN(4)]
			h.advance(h.now+rng.Int64N(span), budget)
		}
		if t.Failed() {
			t.Fatalf("failed at step %d", step)
		}
	}
}

// TestWheelOverflowDrainedWhole: when elapsed enters a new top-level window,
// every overflow timer is placed again, however small the budget; a partly
// drained overflow list would wait a whole window (139 years) more (found in
// review).
func TestWheelOverflowDrainedWhole(t *testing.T) {
	h := newWheelHarness(t)
	window := int64(1) << wheelSpan // ticks
	for i := range 5 {
		h.schedule(fmt.Sprint("k", i), (window+int64(10*i)+5)*ms)
	}
	h.schedule("far", (3*window)*ms)
	h.advance(window*ms, 1) // check() asserts due <= every timer's tick
	if got := h.advance((window+50)*ms, 1); len(got) != 5 {
		t.Fatalf("fired %v, want the 5 timers of the new window", got)
	}
}

// TestWheelReschedule: a later deadline is taken lazily (the timer stays in
// its slot and is placed again when that slot comes), an earlier one at
// once; either way the timer fires at its last deadline's tick, never at an
// earlier deadline and never late.
func TestWheelReschedule(t *testing.T) {
	tests := []struct {
		name        string
		first, then int64 // deadlines, ms
	}{
		{"later, same level", 10, 40},
		{"later, next level", 10, 500},
		{"later, far", 10, 3 * 24 * 3600 * 1000},
		{"earlier", 500, 10},
		{"earlier, far to near", 3 * 24 * 3600 * 1000, 7},
		{"same", 20, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newWheelHarness(t)
			h.schedule("k", tc.first*ms)
			h.reschedule("k", tc.then*ms)
			if got := h.advance(tc.then*ms-1, math.MaxInt); len(got) != 0 {
				t.Fatalf("fired %v before the new deadline", got)
			}
			if got := h.advance(tc.then*ms, math.MaxInt); !slices.Equal(got, []string{"k"}) {
				t.Fatalf("fired %v at the new deadline, want [k]", got)
			}
		})
	}
}
