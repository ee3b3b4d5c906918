package fuzz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/shardkv/shardkv"
)

// FuzzOps decodes its input (see decode_test.go) into a store configuration
// and a sequence of operations, runs them one at a time against a Store
// made inside a testing/synctest bubble (so the store's clock and its
// reaper run on fake time), and compares every result, Len after every
// operation and every event a subscriber opened at the start receives with
// the model in model_test.go. The first difference fails the input with the
// trace of the operations so far.
//
// Time: the fake clock moves only in Advance operations. An Advance moves
// it in steps, stopping at every tick boundary where the model says the
// reaper owes a reclaim; at each stop the reaper must have reclaimed
// exactly the entries due by then (one EventExpire each, in any order among
// themselves). Between steps the clock may stop inside a tick, so entries
// can be expired but not yet reclaimed, which is what the writes that meet
// them, CleanExpired and the quota's reclaim-and-retry are for.
//
// Comparison: every result is compared exactly, every byte of every key
// and value (a hit must return exactly the model's bytes; a miss, no
// value at all), and printed shortened (see fmtr and result).
//
// The one thing the model cannot predict is a SetWithTTL whose ttl <= 0
// made while the clock is inside a tick: the write wakes the reaper, and
// whether the reaper reclaims the entry at once or at the next tick
// boundary depends on the state of the shard's wheel. The harness decides
// which from Len, which is otherwise compared exactly.
func FuzzOps(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		runOps(t, data, nil)
	})
}

// runOps runs one FuzzOps input; cov, if not nil, records what it reached.
func runOps(t *testing.T, data []byte, cov *coverage) {
	cfg, ops := decodeOps(data)
	synctest.Test(t, func(t *testing.T) {
		h := newOpsHarness(t, cfg, cov)
		defer h.shutdown()
		for i, o := range ops {
			h.do(i, o)
		}
		h.finish(len(ops))
	})
}

type opsHarness struct {
	t         *testing.T
	cfg       config
	s         *shardkv.Store
	sub       *shardkv.Subscription
	m         *model
	cov       *coverage
	capacity  int
	cancelled context.Context
	trace     []string
}

func newOpsHarness(t *testing.T, c config, cov *coverage) *opsHarness {
	opts := []shardkv.Option{shardkv.WithMaxKeys(c.maxKeys), shardkv.WithMaxValueSize(c.maxVal)}
	if c.shards != 0 {
		opts = append(opts, shardkv.WithShards(c.shards))
	}
	capacity := shardkv.DefaultWatchCapacity
	if c.watchCap != 0 {
		opts = append(opts, shardkv.WithWatchCapacity(c.watchCap))
		capacity = c.watchCap
	}
	if c.validator {
		opts = append(opts, shardkv.WithKeyValidator(func(k string) error {
			if strings.HasPrefix(k, "b") {
				return errors.New("keys starting with b are refused")
			}
			return nil
		}))
	}
	s := shardkv.New(opts...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := &opsHarness{t: t, cfg: c, s: s, sub: s.Subscribe(), m: newModel(c, cov), cov: cov, capacity: capacity, cancelled: ctx}
	if got, want := s.MaxKeys(), h.m.maxKeys; got != want {
		h.fail(-1, "New", "MaxKeys()", plain(fmt.Sprint(want)), plain(fmt.Sprint(got)))
	}
	if got, want := s.MaxValueSize(), h.m.maxVal; got != want {
		h.fail(-1, "New", "MaxValueSize()", plain(fmt.Sprint(want)), plain(fmt.Sprint(got)))
	}
	return h
}

func (h *opsHarness) shutdown() {
	h.sub.Close()
	h.s.Close()
}

// result is an operation's outcome rendered twice (see fmtr): exact is
// compared, show is printed.
type result struct{ exact, show string }

// render renders a result with both fmtrs.
func render(f func(p fmtr) string) result {
	return result{exact: f(exactFmt), show: f(showFmt)}
}

// plain is a result with no key or value in it.
func plain(s string) result { return result{s, s} }

// fail reports the first difference and the trace that led to it.
func (h *opsHarness) fail(i int, call, what string, want, got result) {
	h.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "shardkv differs from the model at op #%d %s (fake clock %s): %s\n", i, call, fmtDur(h.m.now), what)
	fmt.Fprintf(&b, "  want: %s\n  got:  %s\n", want.show, got.show)
	if want.exact != want.show || got.exact != got.show {
		fmt.Fprintf(&b, "  (shortened above; %s)\n", firstDiff(want.exact, got.exact))
	}
	fmt.Fprintf(&b, "config: %s\n", h.cfg)
	fmt.Fprintf(&b, "operations so far (#n @fake-clock call → result):\n")
	for _, l := range h.trace {
		b.WriteString("  " + l + "\n")
	}
	fmt.Fprintf(&b, "model after #%d (maxKeys=%d maxValueSize=%d closed=%v):\n", i, h.m.maxKeys, h.m.maxVal, h.m.closed)
	keys := make([]string, 0, len(h.m.m))
	for k := range h.m.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		e := h.m.m[k]
		if e.hasTTL {
			fmt.Fprintf(&b, "  %s = %s, deadline %s (expired %v, due at %s)\n", fmtKey(k), fmtVal(e.val), fmtDur(e.when), h.m.expired(e), fmtDur(dueAt(e.when)))
		} else {
			fmt.Fprintf(&b, "  %s = %s\n", fmtKey(k), fmtVal(e.val))
		}
	}
	if len(h.m.pending) > 0 {
		fmt.Fprintf(&b, "events not yet drained (watch capacity %d):", h.capacity)
		for _, e := range h.m.pending {
			fmt.Fprintf(&b, " %s@#%d", e, e.op)
		}
		b.WriteString("\n")
	}
	h.t.Fatal(b.String())
}

func (h *opsHarness) check(i int, call, what string, want, got result) {
	h.t.Helper()
	if want.exact != got.exact {
		h.fail(i, call, what, want, got)
	}
}

// firstDiff points at where two exact renderings part.
func firstDiff(want, got string) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	lo := max(i-20, 0)
	for lo > 0 && lo < len(want) && !utf8.RuneStart(want[lo]) {
		lo--
	}
	cut := func(s string) string {
		hi := min(i+20, len(s))
		for hi < len(s) && !utf8.RuneStart(s[hi]) {
			hi++
		}
		return "…" + s[min(lo, len(s)):hi] + "…"
	}
	return fmt.Sprintf("rendered in full they first differ at byte %d of the rendering: want %s, got %s", i, cut(want), cut(got))
}

// errClass names an error by what the contract lets callers test for.
func errClass(err error) string {
	var se *shardkv.StorageError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.Canceled):
		return "context.Canceled"
	case errors.Is(err, shardkv.ErrClosed):
		return "ErrClosed"
	case errors.Is(err, shardkv.ErrInvalidKey):
		return "ErrInvalidKey"
	case errors.Is(err, shardkv.ErrValueTooLarge):
		return "ErrValueTooLarge"
	case errors.Is(err, shardkv.ErrQuotaExceeded):
		return "ErrQuotaExceeded"
	case err == errStorage || errors.As(err, &se):
		return "*StorageError"
	}
	return fmt.Sprintf("unexpected error %q", err)
}

func rErr(err error) result { return plain(errClass(err)) }

// get renders a read: a hit with its value, a miss as "-" (and any value
// the miss came with, which it must not have: nil or empty only).
func (p fmtr) get(v []byte, found bool, err error) string {
	switch {
	case found:
		return p.val(v) + ", true, " + errClass(err)
	case len(v) > 0:
		return "-(with the value " + p.val(v) + "), false, " + errClass(err)
	}
	return "-, false, " + errClass(err)
}

func rGet(v []byte, found bool, err error) result {
	return render(func(p fmtr) string { return p.get(v, found, err) })
}

func rBool(b bool, err error) result { return plain(fmt.Sprintf("%v, %s", b, errClass(err))) }

func rInt(n int64, err error) result {
	if err != nil {
		return plain(errClass(err))
	}
	return plain(fmt.Sprintf("%d, ok", n))
}

// rKeys renders keys sorted, each in full in the exact form.
func rKeys(keys []string, err error) result {
	if err != nil {
		return plain(errClass(err))
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	return render(func(p fmtr) string {
		q := make([]string, len(keys))
		for i, k := range keys {
			q[i] = p.key(k)
		}
		return "[" + strings.Join(q, " ") + "], ok"
	})
}

// rPairs renders key=value pairs sorted by key, then value.
func rPairs(keys []string, vals [][]byte) result {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := strings.Compare(keys[a], keys[b]); c != 0 {
			return c
		}
		return bytes.Compare(vals[a], vals[b])
	})
	return render(func(p fmtr) string {
		q := make([]string, len(idx))
		for j, i := range idx {
			q[j] = p.key(keys[i]) + "=" + p.val(vals[i])
		}
		return strings.Join(q, " ")
	})
}

func rTTL(d time.Duration, found bool, err error) result {
	if !found && d != 0 {
		return plain(fmt.Sprintf("-(with the ttl %s), false, %s", fmtDur(int64(d)), errClass(err)))
	}
	if !found {
		return plain("-, false, " + errClass(err))
	}
	if d == shardkv.NoTTL {
		return plain("NoTTL, true, " + errClass(err))
	}
	return plain(fmtDur(int64(d)) + ", true, " + errClass(err))
}

// arg returns the caller's copy of a value argument (nil stays nil); the
// harness scribbles over it after the call, which must not change what the
// store holds.
func arg(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}

func scribble(b []byte) {
	for i := range b {
		b[i] ^= 0x5a
	}
}

// do runs operation i on the store and the model and compares them.
func (h *opsHarness) do(i int, o op) {
	h.t.Helper()
	h.m.op = i
	call := o.String()
	kind := o.kind
	ctx := context.Background()
	if kind == opCtx {
		kind = o.sub
		if o.cancel {
			ctx = h.cancelled
		}
		h.cov.hit(fmt.Sprintf("op %sContext cancelled=%v", kind, o.cancel))
	} else {
		h.cov.hit("op " + kind.String())
	}
	viaCtx := o.kind == opCtx
	cancelled := viaCtx && o.cancel
	line := fmt.Sprintf("#%d @%s %s", i, fmtDur(h.m.now), call)

	var got, want result
	candidate, hasCandidate := "", false // a key stored already expired: the reaper may take it now
	switch kind {
	case opGet:
		var v []byte
		var found bool
		var err error
		if viaCtx {
			v, found, err = h.s.GetContext(ctx, o.key)
		} else {
			v, found, err = h.s.Get(o.key)
		}
		got = rGet(v, found, err)
		if len(v) > 24 {
			h.cov.hit("a read returns a value over 24 bytes")
		}
		scribble(v)
		if cancelled {
			want = rGet(nil, false, context.Canceled)
		} else {
			want = rGet(h.m.get(o.key))
		}
		if !viaCtx {
			// the reads that lend the value: AppendValue (which must leave
			// dst's own bytes as they are, and append nothing on a miss)
			// and View (which must call fn exactly on a hit)
			wv, wfound, werr := h.m.get(o.key)
			dst, found, err := h.s.AppendValue([]byte("pre:"), o.key)
			n := min(4, len(dst))
			h.check(i, call, "AppendValue([]byte(\"pre:\"), key)",
				render(func(p fmtr) string { return p.val([]byte("pre:")) + " + " + p.get(wv, wfound, werr) }),
				render(func(p fmtr) string { return p.val(dst[:n]) + " + " + p.get(dst[n:], found, err) }))
			var seen []byte
			calls := 0
			found, err = h.s.View(o.key, func(v []byte) { seen = append([]byte{}, v...); calls++ })
			wantCalls := 0
			if wfound {
				wantCalls = 1
			}
			h.check(i, call, "View(key, fn)",
				render(func(p fmtr) string { return fmt.Sprintf("%s (fn called %d times)", p.get(wv, wfound, werr), wantCalls) }),
				render(func(p fmtr) string { return fmt.Sprintf("%s (fn called %d times)", p.get(seen, found, err), calls) }))
		}
	case opGetString:
		v, found, err := h.s.GetString(o.key)
		got = rGet([]byte(v), found, err)
		wv, wfound, werr := h.m.getString(o.key)
		want = rGet([]byte(wv), wfound, werr)
	case opSet, opSetString, opSetWithTTL:
		a := arg(o.val)
		var err error
		switch {
		case viaCtx && kind == opSet:
			err = h.s.SetContext(ctx, o.key, a)
		case viaCtx:
			err = h.s.SetWithTTLContext(ctx, o.key, a, o.ttl)
		case kind == opSet:
			err = h.s.Set(o.key, a)
		case kind == opSetString:
			err = h.s.SetString(o.key, string(a))
		default:
			err = h.s.SetWithTTL(o.key, a, o.ttl)
		}
		scribble(a)
		got = rErr(err)
		if cancelled {
			want = rErr(context.Canceled)
		} else {
			werr := h.m.put(o.key, o.val, kind == opSetWithTTL, o.ttl)
			want = rErr(werr)
			if kind == opSetWithTTL && werr == nil {
				h.cov.hit("SetWithTTL at " + levelOf(o.ttl))
				if o.ttl <= 0 {
					candidate, hasCandidate = o.key, true
				}
			}
		}
	case opDelete:
		var existed bool
		var err error
		if viaCtx {
			existed, err = h.s.DeleteContext(ctx, o.key)
		} else {
			existed, err = h.s.Delete(o.key)
		}
		got = rBool(existed, err)
		if cancelled {
			want = rBool(false, context.Canceled)
		} else {
			want = rBool(h.m.del(o.key))
		}
	case opExists:
		if viaCtx {
			ok, err := h.s.ExistsContext(ctx, o.key)
			got = rBool(ok, err)
			switch {
			case cancelled:
				want = rBool(false, context.Canceled)
			case h.m.closed:
				want = rBool(false, shardkv.ErrClosed)
			default:
				want = rBool(h.m.exists(o.key), nil)
			}
		} else {
			got = plain(fmt.Sprint(h.s.Exists(o.key)))
			want = plain(fmt.Sprint(h.m.exists(o.key)))
		}
	case opTTL:
		got = rTTL(h.s.TTL(o.key))
		want = rTTL(h.m.ttl(o.key))
	case opListKeys:
		var keys []string
		var err error
		if viaCtx {
			keys, err = h.s.ListKeysContext(ctx, o.prefix)
		} else {
			keys, err = h.s.ListKeys(o.prefix)
		}
		got = rKeys(keys, err)
		if cancelled {
			want = rKeys(nil, context.Canceled)
		} else {
			want = rKeys(h.m.listKeys(o.prefix))
		}
		if !viaCtx {
			// the iterators: the same keys (nothing once closed), with
			// their values
			var ks, allKeys []string
			var allVals, wantVals [][]byte
			for k := range h.s.Keys(o.prefix) {
				ks = append(ks, k)
			}
			for k, v := range h.s.All(o.prefix) {
				allKeys, allVals = append(allKeys, k), append(allVals, v)
			}
			wantKeys, _ := h.m.listKeys(o.prefix)
			for _, k := range wantKeys {
				wantVals = append(wantVals, h.m.m[k].val)
			}
			h.check(i, call, "Keys(prefix)", rKeys(wantKeys, nil), rKeys(ks, nil))
			h.check(i, call, "All(prefix)", rPairs(wantKeys, wantVals), rPairs(allKeys, allVals))
		}
	case opIncrement:
		var n int64
		var err error
		if viaCtx {
			n, err = h.s.IncrementContext(ctx, o.key, o.delta)
		} else {
			n, err = h.s.Increment(o.key, o.delta)
		}
		var se *shardkv.StorageError
		if errors.As(err, &se) && !strings.HasPrefix(se.Msg, "invalid number") {
			h.fail(i, call, "Increment's *StorageError message", plain(`"invalid number: ..."`), plain(fmt.Sprintf("%q", se.Msg)))
		}
		got = rInt(n, err)
		if cancelled {
			want = rInt(0, context.Canceled)
		} else {
			want = rInt(h.m.incr(o.key, o.delta))
		}
	case opCAS:
		var expected []byte
		switch o.exp {
		case expEmpty:
			expected = []byte{}
		case expCurrent:
			expected = []byte("x")
			if e, ok := h.m.live(o.key); ok {
				expected = e.val
			}
		case expValue:
			expected = o.expVal
		}
		a, ea := arg(o.val), arg(expected)
		if expected != nil && ea == nil {
			ea = []byte{}
		}
		var swapped bool
		var err error
		if viaCtx {
			swapped, err = h.s.CompareAndSwapContext(ctx, o.key, ea, a)
		} else {
			swapped, err = h.s.CompareAndSwap(o.key, ea, a)
		}
		scribble(a)
		got = rBool(swapped, err)
		if cancelled {
			want = rBool(false, context.Canceled)
		} else {
			want = rBool(h.m.cas(o.key, expected, o.val))
		}
		line += fmt.Sprintf(" [expected=%s]", fmtVal(ea))
	case opClear:
		h.s.Clear()
		h.m.clear()
	case opCleanExpired:
		h.s.CleanExpired()
		h.m.cleanExpired()
	case opSetMaxKeys:
		h.s.SetMaxKeys(o.n)
		h.m.maxKeys = max(o.n, 0)
		got, want = plain(fmt.Sprint(h.s.MaxKeys())), plain(fmt.Sprint(h.m.maxKeys))
	case opSetMaxValueSize:
		h.s.SetMaxValueSize(o.n)
		h.m.maxVal = max(o.n, 0)
		got, want = plain(fmt.Sprint(h.s.MaxValueSize())), plain(fmt.Sprint(h.m.maxVal))
	case opAdvance:
		h.trace = append(h.trace, line)
		h.advance(i, call, o.adv)
		return
	case opDrain:
		h.trace = append(h.trace, line)
		h.drain(i, call)
		return
	case opClose:
		got, want = rErr(h.s.Close()), plain("ok")
		h.m.closed = true
	case opNop:
	}
	if got.exact != "" || want.exact != "" {
		line += " → " + got.show
		h.cov.hit(fmt.Sprintf("result %s from %s", lastClass(got.exact), kind))
	}
	h.trace = append(h.trace, line)
	h.check(i, call, "result", want, got)
	synctest.Wait()
	if hasCandidate && !h.m.closed {
		if h.m.now%tick == 0 {
			h.m.reap() // due at this very boundary: the reaper takes it now
		} else if h.s.Len() == len(h.m.m)-1 {
			h.cov.hit("the reaper takes an expired-on-arrival entry mid-tick")
			h.m.reclaim([]string{candidate}, "reaper")
		}
	}
	h.checkLen(i, call)
}

// lastClass is the error class a rendered result ends with.
func lastClass(r string) string {
	if i := strings.LastIndex(r, ", "); i >= 0 {
		return r[i+2:]
	}
	return r
}

func (h *opsHarness) checkLen(i int, call string) {
	h.t.Helper()
	if h.m.closed {
		return // Len after Close is not part of the contract
	}
	h.check(i, call, "Len()", plain(fmt.Sprint(len(h.m.m))), plain(fmt.Sprint(h.s.Len())))
}

// advance moves the fake clock by d, stopping at each tick boundary where
// the reaper owes a reclaim.
func (h *opsHarness) advance(i int, call string, d time.Duration) {
	h.t.Helper()
	target := h.m.now
	if d > 0 {
		target = min(h.m.now+min(int64(d), maxTime), max(maxTime, h.m.now))
	}
	for !h.m.closed {
		next, ok := h.m.nextDue()
		if !ok || next > target {
			break
		}
		if next > h.m.now {
			time.Sleep(time.Duration(next - h.m.now))
			h.m.now = next
		}
		synctest.Wait()
		h.m.reap()
		h.checkLen(i, call+" at "+fmtDur(next))
	}
	if target > h.m.now {
		time.Sleep(time.Duration(target - h.m.now))
		h.m.now = target
	}
	synctest.Wait()
	h.checkLen(i, call)
}

// drain receives every event the subscriber has and compares them with the
// model's queue: all of them, or, when more than the watch capacity are
// queued, a LaggedError with the number missed and then the last capacity
// events. After Close the store may deliver what it holds or not, so the
// events received must be a prefix of that, followed by ErrClosed.
func (h *opsHarness) drain(i int, call string) {
	h.t.Helper()
	ctx, cancel := h.cancelled, context.CancelFunc(func() {})
	if h.m.closed {
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	}
	defer cancel()
	want := h.m.pending
	var got []shardkv.Event
	var lag *shardkv.LaggedError
	var end error
	for len(got) <= len(want) {
		ev, err := h.sub.Recv(ctx)
		if err == nil {
			got = append(got, ev)
			continue
		}
		var le *shardkv.LaggedError
		if errors.As(err, &le) && lag == nil && len(got) == 0 {
			lag = le
			continue
		}
		end = err
		break
	}
	// Events are compared in full (gotExact against the model's, also
	// rendered with exactFmt) and printed shortened (gotShow).
	gotExact, gotShow := make([]string, len(got)), make([]string, len(got))
	for j, ev := range got {
		gotExact[j] = exactFmt.event(ev.Kind, ev.Key, ev.Value)
		gotShow[j] = showFmt.event(ev.Kind, ev.Key, ev.Value)
	}
	renderGot := func() string {
		s := ""
		if lag != nil {
			s = fmt.Sprintf("LaggedError{Missed: %d} ", lag.Missed)
		}
		return s + "[" + strings.Join(gotShow, " ") + "] then " + errClass(end)
	}
	missed := max(len(want)-h.capacity, 0)
	tail := want[missed:]
	wantS := ""
	if missed > 0 {
		wantS = fmt.Sprintf("LaggedError{Missed: %d} ", missed)
	}
	var ws []string
	for _, e := range tail {
		ws = append(ws, fmt.Sprintf("%s@#%d", e, e.op))
	}
	wantEnd := "context.Canceled"
	if h.m.closed {
		wantEnd = "ErrClosed"
	}
	wantS += "[" + strings.Join(ws, " ") + "] then " + wantEnd
	if len(tail) > 1 {
		wantS += " (events of one reclaim pass in any order)"
	}
	if h.m.closed {
		wantS += " (after Close: a prefix of this, then ErrClosed)"
	}
	h.trace[len(h.trace)-1] += " → " + renderGot()
	bad := func(detail string) {
		h.t.Helper()
		h.fail(i, call, "events received"+detail, plain(wantS), plain(renderGot()))
	}

	if errClass(end) != wantEnd {
		bad("")
	}
	switch {
	case lag != nil && (missed == 0 || lag.Missed != uint64(missed)):
		bad("")
	case lag == nil && missed > 0 && !(h.m.closed && len(got) == 0):
		bad("")
	case len(got) > len(tail), len(got) < len(tail) && !h.m.closed:
		bad("")
	}
	if lag != nil {
		h.cov.hit("LaggedError")
	}
	// Compare batch by batch: within a batch (one reclaim pass) any order.
	for j := 0; j < len(got); {
		b := tail[j].batch
		k := j
		for k < len(tail) && tail[k].batch == b {
			k++
		}
		var pool []string
		for l, e := range want {
			// a batch cut by the lag: what is left of it is some of it
			if e.batch == b && (l >= missed || j == 0) {
				pool = append(pool, exactFmt.event(e.kind, e.key, e.val))
			}
		}
		if at := subMultiset(gotExact[j:min(k, len(got))], pool); at >= 0 {
			bad(fmt.Sprintf(": event %d, %s, is not the model's (compared in full)", j+at, gotShow[j+at]))
		}
		j = k
	}
	h.m.pending = nil
	h.checkLen(i, call)
}

// subMultiset returns -1 if every element of a is in b, counting repeats,
// else the index in a of the first one that is not.
func subMultiset(a, b []string) int {
	left := map[string]int{}
	for _, s := range b {
		left[s]++
	}
	for i, s := range a {
		if left[s] == 0 {
			return i
		}
		left[s]--
	}
	return -1
}

// finish drains what is left, closes the store and checks that the
// subscription ends.
func (h *opsHarness) finish(n int) {
	h.t.Helper()
	h.trace = append(h.trace, fmt.Sprintf("#%d @%s Drain() (end of input)", n, fmtDur(h.m.now)))
	h.drain(n, "Drain() (end of input)")
	if !h.m.closed {
		h.check(n+1, "Close()", "result", plain("ok"), rErr(h.s.Close()))
		h.m.closed = true
	}
	h.trace = append(h.trace, fmt.Sprintf("#%d @%s Close(); Drain()", n+1, fmtDur(h.m.now)))
	h.drain(n+1, "Drain() after Close")
	h.check(n+1, "Close() again", "result", plain("ok"), rErr(h.s.Close()))
	h.sub.Close()
	_, err := h.sub.Recv(context.Background())
	h.check(n+1, "Recv after Subscription.Close", "error", plain("ErrClosed"), plain(errClass(err)))
}

// coverage records what inputs reached: operations, results, wheel levels,
// reclaims. A nil *coverage records nothing.
type coverage struct{ seen map[string]bool }

func (c *coverage) hit(what string) {
	if c != nil {
		c.seen[what] = true
	}
}
