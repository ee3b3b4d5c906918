package shardkv

import (
	"math"
	"math/bits"
	"time"
)

// The wheel's geometry. A tick is the wheel's resolution: a timer fires at
// the first tick boundary at or after its deadline. Each level has 64
// slots and is 64 times coarser than the one below, so level L spans
// 64^(L+1) ticks: 64 ms, 4.1 s, 4.4 min, 4.7 h, 12.4 days, 2.2 years and
// 139 years at a 1 ms tick. Deadlines beyond the top level (only those
// saturated near math.MaxInt64 can be) wait on the overflow list.
const (
	wheelTick     = int64(time.Millisecond)
	wheelBits     = 6
	wheelSlots    = 1 << wheelBits
	wheelLevels   = 7
	wheelOverflow = wheelLevels // the level number of the overflow list
	wheelSpan     = wheelBits * wheelLevels
)

// noTick marks "nothing scheduled" wherever a tick is expected.
const noTick = int64(math.MaxInt64)

// timer is one entry's place in its shard's wheel. It is intrusive: the
// entry owns it, and the links make schedule and cancel O(1). Timers live
// in the wheel's pool, in pages of timerPage, and refer to each other by
// tref, never by pointer: a page is one pointer-free allocation, so the
// garbage collector marks one object per page, however many TTL entries
// there are. A timer is touched only under its shard's lock.
type timer struct {
	when       int64  // the deadline, in store-clock nanoseconds
	tick       int64  // the tick it is placed for: ceil(when / wheelTick), or earlier after a lazy reschedule
	hash       uint64 // the key's hash, with which the shard finds the key's slot
	prev, next tref
	level      int8 // 0..wheelLevels-1, wheelOverflow, or -1 when not in the wheel
	slot       uint8
}

// tref names a timer of a wheel's pool: its index plus one, so that the
// zero value is "no timer" and zeroed memory is a set of empty lists.
type tref uint32

// timerPage is the number of timers a pool page holds (40 KiB).
const (
	timerPageBits = 10
	timerPage     = 1 << timerPageBits
)

// pool holds a wheel's timers. Freed timers are kept on a free list
// (linked through next) and reused; pages are dropped only by reset, so the
// pool is as large as the most timers held at once.
type pool struct {
	pages []*[timerPage]timer
	free  tref // head of the free list
	n     int  // timers handed out of the pages so far (free ones included)
}

// at returns the timer r names. The pointer is good until the pool is
// reset; pages never move.
func (p *pool) at(r tref) *timer {
	i := uint32(r - 1)
	return &p.pages[i>>timerPageBits][i&(timerPage-1)]
}

// alloc returns an unlinked timer, reusing a freed one if there is one.
func (p *pool) alloc() tref {
	if r := p.free; r != 0 {
		t := p.at(r)
		p.free = t.next
		*t = timer{level: -1}
		return r
	}
	if p.n == len(p.pages)*timerPage {
		if uint64(p.n)+timerPage > math.MaxUint32 {
			panic("shardkv: more than 2^32 timers in one shard")
		}
		p.pages = append(p.pages, new([timerPage]timer))
	}
	p.n++
	r := tref(p.n)
	*p.at(r) = timer{level: -1}
	return r
}

// release puts the unlinked timer r back on the free list.
func (p *pool) release(r tref) {
	t := p.at(r)
	*t = timer{level: -1, next: p.free}
	p.free = r
}

// wheel is a hierarchical timing wheel (Varghese & Lauck's scheme 7, laid
// out as tokio's: 64 slots a level, an occupancy bitmap a level so the next
// due slot is found with one rotate and one count of trailing zeros, never
// by scanning). Timers are placed relative to elapsed: a timer goes to the
// lowest level whose current 64-slot window holds its tick, so slots behind
// the current one are always empty and each slot is visited once, when its
// start tick comes. A timer in a coarse slot is moved down (cascaded) when
// its slot comes due, and fired from level 0.
//
// A wheel is not safe for concurrent use; each shard guards its own with
// the shard lock.
type wheel struct {
	pool
	elapsed  int64 // every slot starting before this tick has been drained
	n        int   // timers held
	overflow tref
	// levels is allocated by the first schedule, so that a shard that never
	// holds a TTL (and a store made and dropped quickly) does not pay its
	// 1.8 KB.
	levels *[wheelLevels]wheelLevel
}

type wheelLevel struct {
	occupied uint64
	slots    [wheelSlots]tref
}

// tickOf is the tick at which a deadline fires: the first tick boundary at
// or after it, so a timer never fires early. Deadlines are >= 0.
func tickOf(when int64) int64 {
	t := when / wheelTick
	if when%wheelTick != 0 {
		t++
	}
	return t
}

// levelFor is the level whose current window, seen from elapsed, holds tick:
// the 6-bit group of the highest bit in which the two differ.
func levelFor(elapsed, tick int64) int {
	masked := uint64(elapsed^tick) | (wheelSlots - 1)
	return (63 - bits.LeadingZeros64(masked)) / wheelBits
}

// schedule puts t in the wheel to fire at deadline when. It returns the tick
// at which t's slot comes due (its start tick), which may be earlier than
// t.tick for a coarse slot. A deadline already past goes to the current
// slot, so it fires on the next advance.
func (w *wheel) schedule(r tref, when int64) int64 {
	t := w.at(r)
	t.when = when
	t.tick = tickOf(when)
	w.n++
	return w.place(r, t)
}

// place links the unlinked timer r (t is w.at(r)) into the slot its tick
// calls for.
func (w *wheel) place(r tref, t *timer) int64 {
	tick := max(t.tick, w.elapsed)
	level := levelFor(w.elapsed, tick)
	if level >= wheelLevels {
		t.level, t.slot = wheelOverflow, 0
		w.push(&w.overflow, r, t)
		return w.overflowDue()
	}
	shift := uint(level * wheelBits)
	slot := uint8(tick>>shift) & (wheelSlots - 1)
	t.level, t.slot = int8(level), slot
	if w.levels == nil {
		w.levels = new([wheelLevels]wheelLevel)
	}
	lv := &w.levels[level]
	w.push(&lv.slots[slot], r, t)
	lv.occupied |= 1 << slot
	return tick >> shift << shift
}

// reschedule moves the scheduled t to deadline when, and returns the tick
// at which the wheel must be looked at for it, or noTick when that does not
// change. A later deadline only updates t.when: the timer stays in its slot
// and is placed again when advance reaches that slot (lazily, as Caffeine
// does), so a key rewritten many times within its TTL costs no relink per
// write. An earlier deadline relinks at once, so nothing fires late.
func (w *wheel) reschedule(r tref, when int64) int64 {
	t := w.at(r)
	if when >= t.when {
		t.when = when
		return noTick
	}
	w.unlink(r, t)
	t.when = when
	t.tick = tickOf(when)
	return w.place(r, t)
}

// cancel removes the scheduled timer r from the wheel in O(1). It stays
// allocated: release it, or schedule it again.
func (w *wheel) cancel(r tref) {
	w.unlink(r, w.at(r))
	w.n--
}

func (w *wheel) unlink(r tref, t *timer) {
	if t.level == wheelOverflow {
		w.remove(&w.overflow, r, t)
	} else {
		lv := &w.levels[t.level]
		head := &lv.slots[t.slot]
		w.remove(head, r, t)
		if *head == 0 {
			lv.occupied &^= 1 << t.slot
		}
	}
	t.level = -1
}

// overflowDue is the tick at which the overflow list is looked at again: the
// start of the top level's next window.
func (w *wheel) overflowDue() int64 {
	return (w.elapsed>>wheelSpan + 1) << wheelSpan
}

// next returns the start tick of the earliest non-empty slot and its level
// (wheelOverflow for the overflow list), or noTick and -1 when the wheel is
// empty. On a tie the coarser level wins, so a cascade into a slot happens
// before that slot fires.
func (w *wheel) next() (tick int64, level int) {
	tick, level = noTick, -1
	if w.overflow != 0 {
		tick, level = w.overflowDue(), wheelOverflow
	}
	if w.levels == nil {
		return tick, level
	}
	for l := wheelLevels - 1; l >= 0; l-- {
		occ := w.levels[l].occupied
		if occ == 0 {
			continue
		}
		shift := uint(l * wheelBits)
		cur := uint(w.elapsed>>shift) & (wheelSlots - 1)
		// Slots behind cur are empty (see the type's comment), so the first
		// occupied slot at or after cur is the next one due.
		slot := cur + uint(bits.TrailingZeros64(bits.RotateLeft64(occ, -int(cur))))
		start := w.elapsed>>(shift+wheelBits)<<(shift+wheelBits) + int64(slot)<<shift
		if start < tick {
			tick, level = start, l
		}
	}
	return tick, level
}

// due returns the start tick of the earliest non-empty slot, or noTick.
func (w *wheel) due() int64 {
	t, _ := w.next()
	return t
}

// advance moves the wheel to now, calling fire for each timer whose deadline
// is <= now (after unlinking it; fire owns it from then on, and releases
// it or schedules it again). It works on at
// most budget timers and returns false if it stopped for the budget, with
// the wheel consistent and ready to be advanced again. A timer whose tick
// has come but whose deadline is still ahead of now (now inside its tick)
// stays put. A now behind the wheel's time does nothing.
func (w *wheel) advance(now int64, budget int, fire func(tref)) (done bool) {
	limit := tickOf(max(now, 0))
	for {
		tick, level := w.next()
		if level < 0 || tick > limit {
			break
		}
		if tick > w.elapsed {
			w.elapsed = tick
		}
		var head *tref
		if level == wheelOverflow {
			head = &w.overflow
		} else {
			head = &w.levels[level].slots[uint8(tick>>uint(level*wheelBits))&(wheelSlots-1)]
		}
		kept := false
		for r := *head; r != 0; {
			t := w.at(r)
			next := t.next
			if level == wheelOverflow {
				// The overflow list is drained whole, uncharged: its timers
				// belong to the window elapsed just entered, and a partly
				// drained list would be looked at again only a window
				// (139 years) later. It holds only deadlines that far out.
				w.unlink(r, t)
				w.place(r, t)
				r = next
				continue
			}
			var due int64
			if t.when > now {
				due = tickOf(t.when)
				if level == 0 && due <= tick {
					// Its tick has come but now is still inside the tick:
					// it stays, and is not charged to the budget (leaving
					// it is no work), so a chunked advance always makes
					// progress.
					kept = true
					r = next
					continue
				}
			}
			if budget <= 0 {
				return false
			}
			budget--
			w.unlink(r, t)
			if t.when <= now {
				w.n--
				fire(r)
			} else {
				// A cascade to a finer level, or a timer postponed by
				// reschedule going where its deadline now calls for.
				t.tick = due
				w.place(r, t)
			}
			r = next
		}
		if kept {
			// Only the level-0 slot of tick == limit can keep timers (a
			// timer is kept only when its deadline's tick is this slot's,
			// and that deadline is after now), and coarser slots starting
			// at limit were drained first (next's ties).
			return true
		}
	}
	if limit > w.elapsed {
		w.elapsed = limit
	}
	return true
}

// reset drops every timer and the pool that holds them: the caller drops
// the entries that own them.
func (w *wheel) reset() {
	*w = wheel{elapsed: w.elapsed, levels: w.levels}
	if w.levels != nil {
		*w.levels = [wheelLevels]wheelLevel{}
	}
}

// push links r (t is w.at(r)) at the head of the list *head.
func (w *wheel) push(head *tref, r tref, t *timer) {
	t.prev = 0
	t.next = *head
	if *head != 0 {
		w.at(*head).prev = r
	}
	*head = r
}

// remove unlinks r (t is w.at(r)) from the list *head.
func (w *wheel) remove(head *tref, r tref, t *timer) {
	if t.prev != 0 {
		w.at(t.prev).next = t.next
	} else {
		*head = t.next
	}
	if t.next != 0 {
		w.at(t.next).prev = t.prev
	}
	t.prev, t.next = 0, 0
}
