package fuzz

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardkv/shardkv"
)

// FuzzConcurrent decodes its input into operations split across 2-4
// goroutines that run them (each its share, repeated 1 to 128 times) at once
// against one store, inside a testing/synctest bubble so TTLs run on fake
// time. No model can say which interleaving happened, so it checks only
// what the documented semantics guarantee whatever the interleaving. While
// the goroutines run:
//
//   - Len never exceeds MaxKeys (nor goes below 0), seen after every
//     operation: a new key's slot is reserved by a compare-and-swap loop
//     that never takes the count past MaxKeys, and this target never lowers
//     MaxKeys (SetMaxKeys below Len is the one way Len can exceed it);
//   - a ListKeys never lists a key twice, nor a key no goroutine had begun
//     to write. It is not checked against MaxKeys: ListKeys is a snapshot
//     of each shard, not of the store, so a key listed from one shard can be
//     deleted and its quota slot go to a new key in a shard not yet
//     scanned (testdata/fuzz/FuzzConcurrent/listkeys-not-a-store-snapshot).
//
// At the end, when every goroutine has returned and the reaper is idle
// (synctest.Wait) and after CleanExpired, the store is quiescent and these
// hold:
//
//   - Len equals the number of keys ListKeys lists, and both are at most
//     MaxKeys; a key is listed exactly when Get finds it;
//   - the increments of each counter key sum exactly, and their results
//     form one chain (each result minus its delta is 0 or another result);
//   - every value read, and every key's final value, is one some goroutine
//     wrote to that key;
//   - the events of each key (a subscriber opened at the start, never
//     lagging) are one EventSet per successful write and one EventDelete per
//     Delete that found the key, make sense in order (no Delete or Expire of
//     an absent key), leave the key present exactly when it is, and the last
//     EventSet of a present key carries its final value; a counter's
//     EventSets carry its results in increasing order. (Each key's events
//     are published under its shard's lock, so their order is the order of
//     that key's writes.)
//
// Run it with -race.
//
// Input: header[0] picks the goroutines (2 + b%3) and shards (bits 2-3:
// 1, 2, 4, 64); header[1] MaxKeys (bits 0-2) and repetitions (1 << bits
// 3-5). Then 3 bytes per operation: [goroutine<<4 | kind] [key] [argument].
func FuzzConcurrent(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		runConcurrent(t, data)
	})
}

type cKind uint8

const (
	cSet cKind = iota
	cSetWithTTL
	cDelete
	cGet
	cIncrCounter
	cCASNil
	cCASRead // read the value, then CompareAndSwap from it
	cCleanExpired
	cListKeys
	cExists
	cSleep
	cIncrKey // Increment a key that holds arbitrary values
	cYield
	cSet2
	cIncrCounter2
	cCASRead2
	numCKinds
)

var cKindNames = [numCKinds]string{
	"Set", "SetWithTTL", "Delete", "Get", "Increment(counter)", "CAS(nil)",
	"CAS(read value)", "CleanExpired", "ListKeys", "Exists", "Sleep",
	"Increment(key)", "Gosched", "Set", "Increment(counter)", "CAS(read value)",
}

var (
	cKeys         = []string{"k0", "k1", "k2", "k3"}
	cCounters     = []string{"n0", "n1"}
	cShards       = [4]int{1, 2, 4, 64}
	cMaxKeys      = [8]int{2, 3, 4, 5, 6, 8, 100, 10000}
	cTTLs         = []time.Duration{0, 1, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, time.Hour}
	cSleeps       = []time.Duration{1, 300 * time.Microsecond, time.Millisecond, 2 * time.Millisecond}
	maxConcurrent = 128
)

type cConfig struct {
	goroutines, shards, maxKeys, reps int
}

type cOp struct {
	g    int
	kind cKind
	key  byte
	arg  byte
}

func (o cOp) String() string {
	switch o.kind {
	case cIncrCounter, cIncrCounter2:
		return fmt.Sprintf("Increment(%s, %d)", cCounters[int(o.key)%len(cCounters)], int(o.arg)+1)
	case cSetWithTTL:
		return fmt.Sprintf("SetWithTTL(%s, %v)", cKeys[int(o.key)%len(cKeys)], cTTLs[int(o.arg)%len(cTTLs)])
	case cSleep:
		return fmt.Sprintf("Sleep(%v)", cSleeps[int(o.arg)%len(cSleeps)])
	case cCleanExpired, cListKeys, cYield:
		return cKindNames[o.kind]
	}
	return fmt.Sprintf("%s(%s)", cKindNames[o.kind], cKeys[int(o.key)%len(cKeys)])
}

func decodeConcurrent(data []byte) (cConfig, []cOp) {
	r := &reader{b: data}
	h0, h1 := r.byte(), r.byte()
	c := cConfig{
		goroutines: 2 + int(h0%3),
		shards:     cShards[h0>>2&3],
		maxKeys:    cMaxKeys[h1&7],
		reps:       1 << (h1 >> 3 & 7),
	}
	var ops []cOp
	for r.more() && len(ops) < maxConcurrent {
		b := r.byte()
		ops = append(ops, cOp{g: int(b>>4) % c.goroutines, kind: cKind(b&15) % numCKinds, key: r.byte(), arg: r.byte()})
	}
	return c, ops
}

type incResult struct{ delta, result int64 }

// cRecorder collects what the goroutines did, for the checks at the end.
type cRecorder struct {
	mu       sync.Mutex
	written  map[string]map[string]bool // values written to each key (recorded before the write)
	begun    map[string]bool            // keys some goroutine began to write (recorded before the write)
	sets     map[string]int             // successful writes of each key: its EventSets
	deletes  map[string]int             // Deletes that found the key: its EventDeletes
	incs     map[string][]incResult
	observed map[string][]string // values Get returned
	problems []string
}

func (r *cRecorder) do(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

func (r *cRecorder) problem(format string, args ...any) {
	r.do(func() {
		if len(r.problems) < 20 {
			r.problems = append(r.problems, fmt.Sprintf(format, args...))
		}
	})
}

// begin records that a write of k is about to start: from then on a
// ListKeys may list k.
func (r *cRecorder) begin(k string) {
	r.do(func() { r.begun[k] = true })
}

func (r *cRecorder) wrote(k, v string) {
	r.do(func() {
		r.begun[k] = true
		if r.written[k] == nil {
			r.written[k] = map[string]bool{}
		}
		r.written[k][v] = true
	})
}

func runConcurrent(t *testing.T, data []byte) {
	c, ops := decodeConcurrent(data)
	synctest.Test(t, func(t *testing.T) {
		s := shardkv.New(shardkv.WithShards(c.shards), shardkv.WithMaxKeys(c.maxKeys), shardkv.WithWatchCapacity(1<<16))
		defer s.Close()
		sub := s.Subscribe()
		defer sub.Close()
		rec := &cRecorder{
			written: map[string]map[string]bool{}, begun: map[string]bool{}, sets: map[string]int{}, deletes: map[string]int{},
			incs: map[string][]incResult{}, observed: map[string][]string{},
		}
		fail := func() {
			t.Helper()
			var b strings.Builder
			fmt.Fprintf(&b, "invariant broken (goroutines=%d shards=%d maxKeys=%d repetitions=%d):\n", c.goroutines, c.shards, c.maxKeys, c.reps)
			for _, p := range rec.problems {
				b.WriteString("  " + p + "\n")
			}
			for g := 0; g < c.goroutines; g++ {
				fmt.Fprintf(&b, "goroutine %d:", g)
				for i, o := range ops {
					if o.g == g {
						fmt.Fprintf(&b, " #%d %s;", i, o)
					}
				}
				b.WriteString("\n")
			}
			t.Fatal(b.String())
		}

		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < c.goroutines; g++ {
			wg.Go(func() {
				<-start
				for rep := 0; rep < c.reps; rep++ {
					for i, o := range ops {
						if o.g == g {
							concurrentOp(s, c, rec, o, fmt.Sprintf("v%d.%d.%d", g, i, rep))
						}
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if len(rec.problems) > 0 {
			fail()
		}

		// Quiescent from here: every goroutine of ours has returned, and
		// synctest.Wait returns only once the reaper is blocked too, so the
		// store-wide checks below see one state of the store.
		synctest.Wait()
		s.CleanExpired()
		synctest.Wait()
		keys, err := s.ListKeys("")
		if err != nil {
			rec.problem("ListKeys at the end: %v", err)
		}
		if n := s.Len(); n != len(keys) {
			rec.problem("at the end, after CleanExpired: Len() = %d but ListKeys lists %d keys %q", n, len(keys), keys)
		}
		if len(keys) > c.maxKeys {
			rec.problem("at the end the store holds %d keys %q, MaxKeys is %d", len(keys), keys, c.maxKeys)
		}
		checkListed(rec, "ListKeys at the end", keys)

		final := map[string]string{}
		for _, k := range append(slices.Clone(cKeys), cCounters...) {
			v, found, err := s.GetString(k)
			if err != nil {
				rec.problem("final Get(%s): %v", k, err)
			}
			if found {
				final[k] = v
			}
			if found && !slices.Contains(cCounters, k) && !rec.written[k][v] {
				rec.problem("final value of %s is %q, which no goroutine wrote", k, v)
			}
			if listed := slices.Contains(keys, k); listed != found {
				rec.problem("%s: ListKeys lists it %v, Get finds it %v", k, listed, found)
			}
		}
		for k, vs := range rec.observed {
			for _, v := range vs {
				if !rec.written[k][v] {
					rec.problem("Get(%s) returned %q, which no goroutine wrote", k, v)
				}
			}
		}
		for _, k := range cCounters {
			incs := rec.incs[k]
			var sum int64
			for _, in := range incs {
				sum += in.delta
			}
			switch v, found := final[k]; {
			case len(incs) == 0 && found:
				rec.problem("counter %s holds %q but no Increment of it succeeded", k, v)
			case len(incs) > 0 && v != strconv.FormatInt(sum, 10):
				rec.problem("counter %s holds %q (found=%v), want the sum of its %d increments, %d", k, v, found, len(incs), sum)
			}
			slices.SortFunc(incs, func(a, b incResult) int { return int(a.result - b.result) })
			prev := int64(0)
			for _, in := range incs {
				if in.result-in.delta != prev {
					rec.problem("counter %s: Increment by %d returned %d, but the previous result is %d: the increments do not form one chain", k, in.delta, in.result, prev)
					break
				}
				prev = in.result
			}
		}

		// The events.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		perKey := map[string][]shardkv.Event{}
		for {
			ev, err := sub.Recv(ctx)
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					rec.problem("Recv: %v (the watch capacity is far above the events published)", err)
				}
				break
			}
			perKey[ev.Key] = append(perKey[ev.Key], ev)
		}
		for _, k := range append(slices.Clone(cKeys), cCounters...) {
			evs := perKey[k]
			delete(perKey, k)
			present := false
			sets, dels := 0, 0
			var last []byte
			var setVals []string
			for j, ev := range evs {
				switch ev.Kind {
				case shardkv.EventSet:
					present, last = true, ev.Value
					sets++
					setVals = append(setVals, string(ev.Value))
				case shardkv.EventDelete, shardkv.EventExpire:
					if !present {
						rec.problem("%s: event #%d is %s of an absent key (events %s)", k, j, ev.Kind, evList(evs, j))
					}
					if ev.Value != nil {
						rec.problem("%s: %s event with a value %q", k, ev.Kind, ev.Value)
					}
					present = false
					if ev.Kind == shardkv.EventDelete {
						dels++
					}
				default:
					rec.problem("%s: event of kind %v", k, ev.Kind)
				}
			}
			v, found := final[k]
			if present != found {
				rec.problem("%s: its events leave it present=%v, Get finds it %v (events %s)", k, present, found, evList(evs, -1))
			} else if found && string(last) != v {
				rec.problem("%s: its last EventSet carries %q, its final value is %q (events %s)", k, last, v, evList(evs, -1))
			}
			if sets != rec.sets[k] {
				rec.problem("%s: %d EventSets for %d successful writes (events %s)", k, sets, rec.sets[k], evList(evs, -1))
			}
			if dels != rec.deletes[k] {
				rec.problem("%s: %d EventDeletes for %d Deletes that found it (events %s)", k, dels, rec.deletes[k], evList(evs, -1))
			}
			if incs := rec.incs[k]; slices.Contains(cCounters, k) && len(incs) == len(setVals) {
				for j, in := range incs {
					if setVals[j] != strconv.FormatInt(in.result, 10) {
						rec.problem("counter %s: its EventSets carry %q, not its results in order", k, setVals)
						break
					}
				}
			}
		}
		for k, evs := range perKey {
			rec.problem("events for a key nobody wrote: %s %s", k, evList(evs, -1))
		}
		if len(rec.problems) > 0 {
			fail()
		}
	})
}

// checkListed checks what any ListKeys guarantees, even alongside writes: no
// key twice (each key lives in one shard, and each shard is scanned once
// under its lock), and no key that no goroutine had begun to write.
func checkListed(rec *cRecorder, what string, keys []string) {
	seen := map[string]bool{}
	for _, k := range keys {
		var begun bool
		rec.do(func() { begun = rec.begun[k] })
		switch {
		case seen[k]:
			rec.problem("%s lists %q twice (%q)", what, k, keys)
		case !begun:
			rec.problem("%s lists %q, which no goroutine had begun to write (%q)", what, k, keys)
		}
		seen[k] = true
	}
}

// evList renders a key's events, at most the 16 around index at (the
// last 16 when at < 0), numbered.
func evList(evs []shardkv.Event, at int) string {
	if at < 0 {
		at = len(evs) - 1
	}
	lo, hi := max(at-8, 0), min(at+8, len(evs))
	var s []string
	if lo > 0 {
		s = append(s, fmt.Sprintf("…%d earlier…", lo))
	}
	for i := lo; i < hi; i++ {
		s = append(s, fmt.Sprintf("#%d %s", i, evString(evs[i].Kind, evs[i].Key, evs[i].Value)))
	}
	if hi < len(evs) {
		s = append(s, fmt.Sprintf("…%d more…", len(evs)-hi))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// concurrentOp runs one operation in a goroutine and records its outcome.
func concurrentOp(s *shardkv.Store, c cConfig, rec *cRecorder, o cOp, val string) {
	k := cKeys[int(o.key)%len(cKeys)]
	okOrQuota := func(what string, err error) bool {
		if err != nil && !errors.Is(err, shardkv.ErrQuotaExceeded) {
			rec.problem("%s: %v", what, err)
		}
		return err == nil
	}
	switch o.kind {
	case cSet, cSet2:
		rec.wrote(k, val)
		if okOrQuota(fmt.Sprintf("Set(%s, %s)", k, val), s.Set(k, []byte(val))) {
			rec.do(func() { rec.sets[k]++ })
		}
	case cSetWithTTL:
		rec.wrote(k, val)
		ttl := cTTLs[int(o.arg)%len(cTTLs)]
		if okOrQuota(fmt.Sprintf("SetWithTTL(%s, %s, %v)", k, val, ttl), s.SetWithTTL(k, []byte(val), ttl)) {
			rec.do(func() { rec.sets[k]++ })
		}
	case cDelete:
		existed, err := s.Delete(k)
		if err != nil {
			rec.problem("Delete(%s): %v", k, err)
		}
		if existed {
			rec.do(func() { rec.deletes[k]++ })
		}
	case cGet:
		v, found, err := s.Get(k)
		if err != nil {
			rec.problem("Get(%s): %v", k, err)
		}
		if found {
			rec.do(func() { rec.observed[k] = append(rec.observed[k], string(v)) })
		}
	case cIncrCounter, cIncrCounter2:
		n := cCounters[int(o.key)%len(cCounters)]
		d := int64(o.arg) + 1
		rec.begin(n)
		r, err := s.Increment(n, d)
		if okOrQuota(fmt.Sprintf("Increment(%s, %d)", n, d), err) {
			rec.do(func() {
				rec.incs[n] = append(rec.incs[n], incResult{d, r})
				rec.sets[n]++
			})
		}
	case cIncrKey:
		rec.begin(k)
		r, err := s.Increment(k, int64(o.arg)+1)
		var se *shardkv.StorageError
		if errors.As(err, &se) {
			break
		}
		if okOrQuota(fmt.Sprintf("Increment(%s)", k), err) {
			rec.wrote(k, strconv.FormatInt(r, 10))
			rec.do(func() { rec.sets[k]++ })
		}
	case cCASNil:
		rec.wrote(k, val)
		swapped, err := s.CompareAndSwap(k, nil, []byte(val))
		if okOrQuota(fmt.Sprintf("CompareAndSwap(%s, nil, %s)", k, val), err) && swapped {
			rec.do(func() { rec.sets[k]++ })
		}
	case cCASRead, cCASRead2:
		cur, found, err := s.Get(k)
		if err != nil {
			rec.problem("Get(%s): %v", k, err)
		}
		if found {
			rec.do(func() { rec.observed[k] = append(rec.observed[k], string(cur)) })
		} else {
			cur = nil
		}
		rec.wrote(k, val)
		swapped, err := s.CompareAndSwap(k, cur, []byte(val))
		if okOrQuota(fmt.Sprintf("CompareAndSwap(%s, %q, %s)", k, cur, val), err) && swapped {
			rec.do(func() { rec.sets[k]++ })
		}
	case cCleanExpired:
		s.CleanExpired()
	case cListKeys:
		// Not checked against MaxKeys: see FuzzConcurrent.
		keys, err := s.ListKeys("")
		if err != nil {
			rec.problem("ListKeys: %v", err)
		}
		checkListed(rec, "ListKeys", keys)
	case cExists:
		s.Exists(k)
	case cSleep:
		time.Sleep(cSleeps[int(o.arg)%len(cSleeps)])
	case cYield:
		runtime.Gosched()
	}
	// Len is the quota's count, reserved by a compare-and-swap loop that
	// never takes it past MaxKeys, which this target never lowers.
	if n := s.Len(); n > c.maxKeys || n < 0 {
		rec.problem("after %s: Len() = %d, MaxKeys is %d", o, n, c.maxKeys)
	}
}
