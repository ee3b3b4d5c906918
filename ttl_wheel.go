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
// entry owns it, and the links make schedule and cancel O(1) with no
// allocation beyond the timer itself. A timer is touched only under its
// shard's lock.
type timer struct {
	key        string // the key, sharing the memory of its current record
	hash       uint64 // the key's hash
	when       int64  // the deadline, in store-clock nanoseconds
	tick       int64  // the tick it is placed for: ceil(when / wheelTick), or earlier after a lazy reschedule
	prev, next *timer
	level      int8 // 0..wheelLevels-1, wheelOverflow, or -1 when not in the wheel
	slot       uint8
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
	elapsed  int64 // every slot starting before this tick has been drained
	n        int   // timers held
	overflow *timer
	// levels is allocated by the first schedule, so that a shard that never
	// holds a TTL (and a store made and dropped quickly) does not pay its
	// 3.6 KB.
	levels *[wheelLevels]wheelLevel
}

type wheelLevel struct {
	occupied uint64
	slots    [wheelSlots]*timer
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
func (w *wheel) schedule(t *timer, when int64) int64 {
	t.when = when
	t.tick = tickOf(when)
	w.n++
	return w.place(t)
}

// place links an unlinked t into the slot its tick calls for.
func (w *wheel) place(t *timer) int64 {
	tick := max(t.tick, w.elapsed)
	level := levelFor(w.elapsed, tick)
	if level >= wheelLevels {
		t.level, t.slot = wheelOverflow, 0
		push(&w.overflow, t)
		return w.overflowDue()
	}
	shift := uint(level * wheelBits)
	slot := uint8(tick>>shift) & (wheelSlots - 1)
	t.level, t.slot = int8(level), slot
	if w.levels == nil {
		w.levels = new([wheelLevels]wheelLevel)
	}
	lv := &w.levels[level]
	push(&lv.slots[slot], t)
	lv.occupied |= 1 << slot
	return tick >> shift << shift
}

// reschedule moves the scheduled t to deadline when, and returns the tick
// at which the wheel must be looked at for it, or noTick when that does not
// change. A later deadline only updates t.when: the timer stays in its slot
// and is placed again when advance reaches that slot (lazily, as Caffeine
// does), so a key rewritten many times within its TTL costs no relink per
// write. An earlier deadline relinks at once, so nothing fires late.
func (w *wheel) reschedule(t *timer, when int64) int64 {
	if when >= t.when {
		t.when = when
		return noTick
	}
	w.unlink(t)
	t.when = when
	t.tick = tickOf(when)
	return w.place(t)
}

// cancel removes a scheduled t from the wheel in O(1).
func (w *wheel) cancel(t *timer) {
	w.unlink(t)
	w.n--
}

func (w *wheel) unlink(t *timer) {
	if t.level == wheelOverflow {
		remove(&w.overflow, t)
	} else {
		lv := &w.levels[t.level]
		head := &lv.slots[t.slot]
		remove(head, t)
		if *head == nil {
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
	if w.overflow != nil {
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
// is <= now (after unlinking it; fire owns it from then on). It works on at
// most budget timers and returns false if it stopped for the budget, with
// the wheel consistent and ready to be advanced again. A timer whose tick
// has come but whose deadline is still ahead of now (now inside its tick)
// stays put. A now behind the wheel's time does nothing.
func (w *wheel) advance(now int64, budget int, fire func(*timer)) (done bool) {
	limit := tickOf(max(now, 0))
	for {
		tick, level := w.next()
		if level < 0 || tick > limit {
			break
		}
		if tick > w.elapsed {
			w.elapsed = tick
		}
		var head **timer
		if level == wheelOverflow {
			head = &w.overflow
		} else {
			head = &w.levels[level].slots[uint8(tick>>uint(level*wheelBits))&(wheelSlots-1)]
		}
		kept := false
		for t := *head; t != nil; {
			next := t.next
			if level == wheelOverflow {
				// The overflow list is drained whole, uncharged: its timers
				// belong to the window elapsed just entered, and a partly
				// drained list would be looked at again only a window
				// (139 years) later. It holds only deadlines that far out.
				w.unlink(t)
				w.place(t)
				t = next
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
					t = next
					continue
				}
			}
			if budget <= 0 {
				return false
			}
			budget--
			w.unlink(t)
			if t.when <= now {
				w.n--
				fire(t)
			} else {
				// A cascade to a finer level, or a timer postponed by
				// reschedule going where its deadline now calls for.
				t.tick = due
				w.place(t)
			}
			t = next
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

// reset drops every timer. The timers themselves are left as they are: the
// caller drops the entries that own them.
func (w *wheel) reset() {
	*w = wheel{elapsed: w.elapsed, levels: w.levels}
	if w.levels != nil {
		*w.levels = [wheelLevels]wheelLevel{}
	}
}

func push(head **timer, t *timer) {
	t.prev = nil
	t.next = *head
	if *head != nil {
		(*head).prev = t
	}
	*head = t
}

func remove(head **timer, t *timer) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		*head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next = nil, nil
}
