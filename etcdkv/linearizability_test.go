package etcdkv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/shardkv/shardkv"
)

// regKind names an operation of the linearizability check.
type regKind uint8

const (
	regGet regKind = iota
	regSet
	regCAS
	regIncr
)

var regKindNames = [...]string{"Get", "Set", "CAS", "Incr"}

// regIn is an operation's input.
type regIn struct {
	kind   regKind
	key    string
	val    string // Set, CAS: the value stored
	exp    string // CAS: the expected value, unless expNil
	expNil bool   // CAS: expected is nil (the key must be missing)
	delta  int64  // Incr
}

// regOut is an operation's output. unknown marks a write that failed with
// ErrAmbiguous: it may have taken effect, at any time after its call (its
// return is put after the whole history's end), and its output says
// nothing.
type regOut struct {
	unknown bool
	found   bool   // Get: present; CAS: swapped
	val     string // Get: the value
	n       int64  // Incr: the result
}

// regState is the sequential model of one key: a register that may be
// missing.
type regState struct {
	present bool
	val     string
}

// regModel is a register per key (the history partitioned by key) with
// the store's Get, Set, CompareAndSwap and Increment.
var regModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(regIn).key
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(byKey))
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range byKey {
				if !yield(k) {
					return
				}
			}
		}) {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return regState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(regState), input.(regIn), output.(regOut)
		switch in.kind {
		case regGet:
			return out.found == s.present && out.val == s.val, s
		case regSet:
			return true, regState{present: true, val: in.val}
		case regCAS:
			swap := (in.expNil && !s.present) || (!in.expNil && s.present && s.val == in.exp)
			next := s
			if swap {
				next = regState{present: true, val: in.val}
			}
			return out.unknown || out.found == swap, next
		case regIncr:
			var cur int64
			if s.present {
				var err error
				if cur, err = strconv.ParseInt(s.val, 10, 64); err != nil {
					return out.unknown, s // the store refuses it and changes nothing
				}
			}
			n := satAdd(cur, in.delta)
			return out.unknown || out.n == n, regState{present: true, val: strconv.FormatInt(n, 10)}
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regIn), output.(regOut)
		var args, res string
		switch in.kind {
		case regGet:
			res = "missing"
			if out.found {
				res = strconv.Quote(out.val)
			}
		case regSet:
			args, res = strconv.Quote(in.val), "ok"
		case regCAS:
			exp := "nil"
			if !in.expNil {
				exp = strconv.Quote(in.exp)
			}
			args, res = exp+", "+strconv.Quote(in.val), strconv.FormatBool(out.found)
		case regIncr:
			args, res = strconv.FormatInt(in.delta, 10), strconv.FormatInt(out.n, 10)
		}
		if out.unknown {
			res = "unknown"
		}
		return fmt.Sprintf("%s(%s%s) -> %s", regKindNames[in.kind], in.key, prefixed(args), res)
	},
	DescribeState: func(state any) string {
		if s := state.(regState); s.present {
			return strconv.Quote(s.val)
		}
		return "missing"
	},
}

func prefixed(s string) string {
	if s == "" {
		return ""
	}
	return ", " + s
}

// checkLinearizable fails t unless porcupine finds history linearizable
// under regModel within timeout; an Illegal history's visualization is
// written to a file named in the log.
func checkLinearizable(t *testing.T, history []porcupine.Operation, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(regModel, history, timeout)
	t.Logf("porcupine: %s for %d operations in %v", res, len(history), time.Since(start).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		t.Fatalf("porcupine could not decide within %v: shrink the history (%d operations)", timeout, len(history))
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("etcdkv-linearizability-%d.html", time.Now().UnixNano()))
	if err := porcupine.VisualizePath(regModel, info, path); err != nil {
		t.Logf("visualization: %v", err)
	} else {
		t.Logf("visualization: %s", path)
	}
	t.Fatalf("the history is not linearizable (%s)", res)
}

// Linearizability across a leader's crash: four clients (stores of their
// own, on clients of their own, through the store's Context methods) run
// 150 operations each, a random mix of Get, Set, CompareAndSwap and
// Increment (delta 1 to 3) on three keys, with no pause between them; the
// leader is hard-stopped when a quarter of them are done. Every value a
// Set or CompareAndSwap stores is a decimal number of its own (so that
// Increment applies to any key), and a CompareAndSwap expects what its
// client last saw of the key, or a missing key, or a stale value.
//
// A write that fails with ErrAmbiguous is recorded as possibly applied: its
// output unconstrained and its return after the whole history, so that
// porcupine may place it anywhere after its call, or (last) nowhere. Any
// other failure is left out of the history: a failed read says nothing,
// and a write that failed otherwise was not applied, by the package's
// contract (which the check so tests as well). porcupine must find the
// history linearizable (a register per key) within 30 s.
func TestCluster_Linearizable(t *testing.T) {
	c := startCluster(t, 3)
	ns := freshNS()
	const (
		clients  = 4
		opsEach  = 150
		killAt   = clients * opsEach / 4
		nKeys    = 3
		opTimout = time.Second
	)
	stores := make([]*shardkv.Store, clients)
	for i := range stores {
		stores[i] = shardkv.New(shardkv.WithBackend(New(c.client(t), WithNamespace(ns))))
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() }) // should the test fail before the end
	t0 := time.Now()
	now := func() int64 { return time.Since(t0).Nanoseconds() }
	var done atomic.Int64
	histories := make([][]porcupine.Operation, clients)
	var unknown, dropped [len(regKindNames)]atomic.Int64
	for ci, s := range stores {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(ci)))
			seen := map[string]string{} // the key's last value this client saw
			for seq := range opsEach {
				if ctx.Err() != nil {
					return
				}
				in := regIn{key: "k" + strconv.Itoa(rng.IntN(nKeys))}
				val := strconv.Itoa((ci+1)*1_000_000 + seq*1000)
				switch p := rng.IntN(100); {
				case p < 35:
					in.kind = regGet
				case p < 55:
					in.kind, in.val = regSet, val
				case p < 80:
					in.kind, in.val = regCAS, val
					switch last, ok := seen[in.key]; {
					case ok && rng.IntN(4) != 0:
						in.exp = last
					case rng.IntN(2) == 0:
						in.expNil = true
					default:
						in.exp = "1" // most likely stale
					}
				default:
					in.kind, in.delta = regIncr, int64(1+rng.IntN(3))
				}
				var out regOut
				var err error
				octx, ocancel := context.WithTimeout(ctx, opTimout)
				call := now()
				switch in.kind {
				case regGet:
					var v []byte
					v, out.found, err = s.GetContext(octx, in.key)
					out.val = string(v)
				case regSet:
					err = s.SetContext(octx, in.key, []byte(in.val))
				case regCAS:
					var exp []byte
					if !in.expNil {
						exp = []byte(in.exp)
					}
					out.found, err = s.CompareAndSwapContext(octx, in.key, exp, []byte(in.val))
				case regIncr:
					out.n, err = s.IncrementContext(octx, in.key, in.delta)
				}
				ret := now()
				ocancel()
				done.Add(1)
				switch {
				case err == nil:
					switch {
					case in.kind == regGet && out.found:
						seen[in.key] = out.val
					case in.kind == regSet || (in.kind == regCAS && out.found):
						seen[in.key] = in.val
					case in.kind == regIncr:
						seen[in.key] = strconv.FormatInt(out.n, 10)
					}
				case in.kind != regGet && errors.Is(err, ErrAmbiguous):
					unknown[in.kind].Add(1)
					out, ret = regOut{unknown: true}, -1 // its return: set below
				default:
					dropped[in.kind].Add(1)
				}
				if err == nil || out.unknown {
					histories[ci] = append(histories[ci], porcupine.Operation{ClientId: ci, Input: in, Call: call, Output: out, Return: ret})
				}
				if err != nil {
					time.Sleep(50 * time.Millisecond) // no spinning through the election
				}
			}
		})
	}

	waitFor(t, 30*time.Second, "the operations before the kill", func() bool { return done.Load() >= killAt })
	lead := c.waitLeader(t, -1)
	killed := now()
	c.kill(lead)
	next := c.waitLeader(t, lead)
	recovered := now()
	t.Logf("killed the leader %s after %d operations; %s leads %v later",
		c.members[lead].name, done.Load(), c.members[next].name, time.Duration(recovered-killed).Round(time.Millisecond))
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the clients did not finish in 60 s (%d operations done)", done.Load())
	}

	history := slices.Concat(histories...)
	end := int64(0)
	after := 0 // successful operations called once the new leader was known
	for _, op := range history {
		end = max(end, op.Call, op.Return)
		if !op.Output.(regOut).unknown && op.Call > recovered {
			after++
		}
	}
	for i := range history {
		if history[i].Return < 0 {
			history[i].Return = end + 1
		}
	}
	slices.SortFunc(history, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var counts string
	for k, name := range regKindNames {
		counts += fmt.Sprintf(" %s: %d unknown, %d failed;", name, unknown[k].Load(), dropped[k].Load())
	}
	t.Logf("%d operations in the history, %d of them after the new leader;%s", len(history), after, counts)
	if after < 50 {
		t.Errorf("only %d operations succeeded after the new leader was elected: the check saw little of the new term", after)
	}
	checkLinearizable(t, history, 30*time.Second)
}

// The checker can fail: hand-made histories that are not linearizable are
// found Illegal, and their linearizable neighbours Ok.
func TestLinearizableModel(t *testing.T) {
	op := func(client int, call, ret int64, in regIn, out regOut) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	set := func(key, val string) regIn { return regIn{kind: regSet, key: key, val: val} }
	get := func(key string) regIn { return regIn{kind: regGet, key: key} }
	incr := func(key string, d int64) regIn { return regIn{kind: regIncr, key: key, delta: d} }
	cas := func(key string, exp *string, val string) regIn {
		if exp == nil {
			return regIn{kind: regCAS, key: key, expNil: true, val: val}
		}
		return regIn{kind: regCAS, key: key, exp: *exp, val: val}
	}
	found := func(v string) regOut { return regOut{found: true, val: v} }
	ok, unknown := regOut{}, regOut{unknown: true}
	one := "1"
	for _, tc := range []struct {
		name string
		want porcupine.CheckResult
		h    []porcupine.Operation
	}{
		{"a value never written", porcupine.Illegal, []porcupine.Operation{
			op(0, 0, 10, set("k", "1"), ok),
			op(1, 20, 30, get("k"), found("2")),
		}},
		{"a stale read", porcupine.Illegal, []porcupine.Operation{
			op(0, 0, 10, set("k", "1"), ok),
			op(0, 20, 30, set("k", "2"), ok),
			op(1, 40, 50, get("k"), found("1")),
		}},
		{"a concurrent read of either", porcupine.Ok, []porcupine.Operation{
			op(0, 0, 10, set("k", "1"), ok),
			op(0, 20, 30, set("k", "2"), ok),
			op(1, 25, 50, get("k"), found("1")),
			op(2, 25, 50, get("k"), found("2")),
		}},
		{"another key's value", porcupine.Illegal, []porcupine.Operation{
			op(0, 0, 10, set("a", "1"), ok),
			op(1, 20, 30, get("b"), found("1")),
		}},
		{"an ambiguous write seen later", porcupine.Ok, []porcupine.Operation{
			op(0, 0, 10, set("k", "1"), ok),
			op(0, 20, 1000, set("k", "2"), unknown),
			op(1, 40, 50, get("k"), found("2")),
			op(1, 60, 70, get("k"), found("2")),
		}},
		{"an ambiguous write never applied", porcupine.Ok, []porcupine.Operation{
			op(0, 0, 10, set("k", "1"), ok),
			op(0, 20, 1000, set("k", "2"), unknown),
			op(1, 40, 50, get("k"), found("1")),
		}},
		{"an ambiguous write seen before its call", porcupine.Illegal, []porcupine.Operation{
			op(1, 0, 10, get("k"), found("2")),
			op(0, 20, 1000, set("k", "2"), unknown),
		}},
		{"an ambiguous write undone", porcupine.Illegal, []porcupine.Operation{
			op(0, 0, 10, set("k", "1"), ok),
			op(0, 20, 1000, set("k", "2"), unknown),
			op(1, 40, 50, get("k"), found("2")),
			op(1, 60, 70, get("k"), found("1")),
		}},
		{"an increment applied twice", porcupine.Illegal, []porcupine.Operation{
			op(0, 0, 10, incr("n", 1), regOut{n: 1}),
			op(0, 20, 30, get("n"), found("2")),
		}},
		{"two increments with one result", porcupine.Illegal, []porcupine.Operation{
			op(0, 0, 10, incr("n", 1), regOut{n: 1}),
			op(1, 5, 15, incr("n", 1), regOut{n: 1}),
		}},
		{"an ambiguous increment", porcupine.Ok, []porcupine.Operation{
			op(0, 0, 1000, incr("n", 5), unknown),
			op(1, 5, 15, incr("n", 1), regOut{n: 6}),
		}},
		{"a swap whose expected value was not there", porcupine.Illegal, []porcupine.Operation{
			op(0, 0, 10, set("k", "2"), ok),
			op(1, 20, 30, cas("k", &one, "3"), regOut{found: true}),
		}},
		{"a swap of a missing key that failed", porcupine.Illegal, []porcupine.Operation{
			op(0, 0, 10, cas("k", nil, "3"), regOut{found: false}),
		}},
		{"swaps in order", porcupine.Ok, []porcupine.Operation{
			op(0, 0, 10, cas("k", nil, "1"), regOut{found: true}),
			op(1, 20, 30, cas("k", &one, "3"), regOut{found: true}),
			op(0, 40, 50, get("k"), found("3")),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(regModel, tc.h, 10*time.Second); got != tc.want {
				t.Errorf("porcupine says %s, want %s", got, tc.want)
			}
		})
	}
}
