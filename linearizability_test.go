package shardkv

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// linOp names a point operation of the linearizability test.
type linOp uint8

const (
	linGet linOp = iota
	linView
	linExists
	linTTL
	linSet
	linSetTTL
	linDelete
	linCAS
	linIncr
)

var linOpNames = [...]string{"Get", "View", "Exists", "TTL", "Set", "SetWithTTL", "Delete", "CAS", "Incr"}

// linLongTTL is the TTL the checked keys get when they are meant to stay
// present: far longer than the test runs, so the model need not read a
// clock.
const linLongTTL = time.Hour

// linIn is an operation's input.
type linIn struct {
	op     linOp
	key    string
	val    string        // Set, SetWithTTL, CAS: the value stored
	exp    string        // CAS: the expected value, unless expNil
	expNil bool          // CAS: expected is nil (the key must be absent)
	ttl    time.Duration // SetWithTTL: <= 0 (absent at once) or linLongTTL
	delta  int64         // Incr
}

// linOut is an operation's output. err is "" for none, "storage" for a
// *StorageError, otherwise the error's text (which the model never accepts).
type linOut struct {
	found bool   // Get, View, Exists, TTL: present; Delete: existed; CAS: swapped
	val   string // Get, View: the value
	n     int64  // Incr: the result
	ttl   string // TTL: "none" (NoTTL), "long" (0 < ttl <= linLongTTL), or the odd value
	err   string
}

// linState is the sequential model of one key. hasTTL says a present key
// has a (long) deadline: Set and CompareAndSwap drop it, Increment keeps it.
type linState struct {
	present bool
	val     string
	hasTTL  bool
}

func linErr(err error) string {
	if err == nil {
		return ""
	}
	var se *StorageError
	if errors.As(err, &se) {
		return "storage"
	}
	return err.Error()
}

// linStep is the model's step: whether out is what in may return from st,
// and the state after.
func linStep(st linState, in linIn, out linOut) (bool, linState) {
	if out.err != "" && (in.op != linIncr || out.err != "storage") {
		return false, st // no checked operation may fail, bar Incr's parse error
	}
	switch in.op {
	case linGet, linView:
		return out.found == st.present && (!out.found || out.val == st.val), st
	case linExists:
		return out.found == st.present, st
	case linTTL:
		if out.found != st.present {
			return false, st
		}
		want := "none"
		if st.hasTTL {
			want = "long"
		}
		return !out.found || out.ttl == want, st
	case linSet:
		return true, linState{present: true, val: in.val}
	case linSetTTL:
		if in.ttl <= 0 {
			return true, linState{} // stored already expired: absent to every operation
		}
		return true, linState{present: true, val: in.val, hasTTL: true}
	case linDelete:
		return out.found == st.present, linState{}
	case linCAS:
		match := !st.present
		if !in.expNil {
			match = st.present && st.val == in.exp
		}
		if out.found != match {
			return false, st
		}
		if match {
			return true, linState{present: true, val: in.val} // swaps drop the TTL
		}
		return true, st
	case linIncr:
		cur := int64(0)
		if st.present {
			var err error
			if cur, err = strconv.ParseInt(st.val, 10, 64); err != nil {
				return out.err == "storage", st // left as it is
			}
		}
		if out.err != "" || out.n != cur+in.delta {
			return false, st
		}
		return true, linState{present: true, val: strconv.FormatInt(out.n, 10), hasTTL: st.present && st.hasTTL}
	}
	return false, st
}

func linDescribe(in linIn, out linOut) string {
	var arg string
	switch in.op {
	case linSet:
		arg = ", " + strconv.Quote(in.val)
	case linSetTTL:
		arg = fmt.Sprintf(", %q, %v", in.val, in.ttl)
	case linCAS:
		exp := "nil"
		if !in.expNil {
			exp = strconv.Quote(in.exp)
		}
		arg = fmt.Sprintf(", %s, %q", exp, in.val)
	case linIncr:
		arg = fmt.Sprintf(", %d", in.delta)
	}
	var res string
	switch {
	case out.err != "":
		res = "err " + out.err
	case in.op == linGet || in.op == linView:
		res = "miss"
		if out.found {
			res = strconv.Quote(out.val)
		}
	case in.op == linTTL:
		res = "miss"
		if out.found {
			res = out.ttl
		}
	case in.op == linIncr:
		res = strconv.FormatInt(out.n, 10)
	case in.op == linSet || in.op == linSetTTL:
		res = "ok"
	default:
		res = strconv.FormatBool(out.found)
	}
	return fmt.Sprintf("%s(%s%s) -> %s", linOpNames[in.op], in.key, arg, res)
}

var linModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(linIn).key
			byKey[k] = append(byKey[k], op)
		}
		keys := slices.Sorted(maps.Keys(byKey))
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return linState{} },
	Step: func(st, in, out any) (bool, any) {
		return linStep(st.(linState), in.(linIn), out.(linOut))
	},
	DescribeOperation: func(in, out any) string { return linDescribe(in.(linIn), out.(linOut)) },
	DescribeState: func(st any) string {
		s := st.(linState)
		switch {
		case !s.present:
			return "absent"
		case s.hasTTL:
			return strconv.Quote(s.val) + " (TTL)"
		}
		return strconv.Quote(s.val)
	},
}

// TestLinearizablePointOperations checks with porcupine that concurrent
// point operations are linearizable: four goroutines run Get, View, Exists,
// TTL, Set, SetWithTTL, Delete, CompareAndSwap and Increment on four keys
// (5000 operations each, 1000 with -short), and each key's history must
// match a sequential model of one key: present or not, its value, whether
// it has a deadline. The checked keys get only TTLs the model can judge
// without a clock: <= 0 (stored already expired, so absent at once) and an
// hour (present throughout). The last key is set first and never removed,
// so that any miss of it is a violation.
//
// Meanwhile other goroutines churn other keys of the same shard (the store
// has one), because that is where a reader of a checked key can go wrong:
// its lock-free probe runs through slots that the churn fills, turns into
// tombs and empties again; the table it probes is rebuilt under it (grown,
// or rebuilt to drop tombs); and the reaper and the quota retry reclaim its
// neighbours. Churn in another shard would touch none of that. Each churner
// keeps a window of its last churnPool keys, each a fresh name with no TTL
// or one of 1 µs to 2 ms, and deletes the oldest before it adds one, so
// deletes leave tombs behind and the table is rebuilt every couple of hundred
// churn operations. The filler now and then lowers the quota to what the
// store holds, so that some write finds it full and reclaims to retry.
//
// The quota must never refuse a checked key (the test fails if it does):
// maxKeys is every key the churners and the checked keys can hold at once,
// so a new key always has room except while the filler has the quota
// lowered. The filler does that holding gate exclusively, and the checked
// writes that may create a key hold gate shared; reads, deletes and
// compare-and-swaps of a present value run during a fill.
func TestLinearizablePointOperations(t *testing.T) {
	const (
		workers   = 4  // goroutines on the checked keys
		keys      = 4  // checked keys; the last one is never removed
		churners  = 2  // goroutines churning their own churnPool keys
		churnPool = 61 // keys per churner: with the checked keys, 126 at most
		maxKeys   = churners*churnPool + keys
	)
	opsPer := 5000 // per worker
	if testing.Short() {
		opsPer = 1000
	}

	var quotaRetries atomic.Int64
	var deepest atomic.Int64 // minus the deepest directory a churner saw
	s := New(WithShards(1), WithMaxKeys(maxKeys), func(o *options) {
		o.onQuotaRetry = func() { quotaRetries.Add(1) }
		o.tableSlots = 32 // so that the 126 keys split tables under the readers
	})
	defer s.Close()

	checked := make([]string, keys)
	for i := range checked {
		checked[i] = "lin/" + strconv.Itoa(i)
	}

	var (
		gate                        sync.RWMutex // held by the filler while it lowers the quota
		stop                        atomic.Bool
		rebuilds, fills, cops, gone atomic.Int64
		chunkChanges                atomic.Int64
		start                       = time.Now()
		histories                   = make([][]porcupine.Operation, workers)
	)
	// The stable key is set before the workers start; the history has that
	// write.
	stable := checked[keys-1]
	call := time.Since(start).Nanoseconds()
	if err := s.Set(stable, []byte("0")); err != nil {
		t.Fatal(err)
	}
	first := porcupine.Operation{ClientId: 0, Input: linIn{op: linSet, key: stable, val: "0"}, Call: call, Output: linOut{}, Return: time.Since(start).Nanoseconds()}

	// sawRebuild counts the index changes (tables rebuilt, grown or split)
	// and the chunk changes (chunks started, or dropped by compaction) one
	// churn goroutine sees.
	type shardSeen struct {
		dir    *directory
		tab    *table
		chunks *chunkRef
	}
	sawRebuild := func(last *shardSeen) {
		sh := &s.s.shards[0]
		d := sh.tab.Load()
		// A split or rebuild replaces tables in the directory's entries, in
		// place; a grow or a doubling makes a new directory. This looks at
		// the first entry's table and at the directory.
		if tb := d.entries[0].t.Load(); tb != last.tab || d != last.dir {
			last.tab, last.dir = tb, d
			rebuilds.Add(1)
		}
		lowerTo(&deepest, -int64(d.depth)) // deepest holds minus the depth

		if c := sh.chunks.Load(); c != last.chunks {
			last.chunks = c
			chunkChanges.Add(1)
		}
	}

	var churn sync.WaitGroup
	for c := range churners {
		churn.Go(func() {
			rng := rand.New(rand.NewPCG(0x11e4, uint64(100+c)))
			var last shardSeen
			// held is the churner's window of its last churnPool keys. Each
			// new key takes the place of the oldest, which is deleted
			// first, so the churner never holds more than churnPool keys;
			// and each is a fresh name, so the deletes leave tombs in the
			// runs and the table is rebuilt every so often to drop them.
			held := make([]string, churnPool)
			prefix := "churn/" + strconv.Itoa(c) + "/"
			for i := 0; !stop.Load(); i++ {
				j := i % churnPool
				if k := held[j]; k != "" {
					existed, err := s.Delete(k)
					if err != nil {
						t.Errorf("churn: Delete(%s): %v", k, err)
						return
					}
					if !existed {
						gone.Add(1) // expired (reclaimed, or reclaimed now), or refused
					}
					held[j] = ""
				}
				k, v := prefix+strconv.Itoa(i), []byte(strconv.Itoa(i))
				var err error
				switch rng.IntN(4) {
				case 0:
					err = s.Set(k, v)
				case 1:
					// A miss, mostly: a probe to the end of the run.
					if _, _, err = s.Get(prefix + strconv.Itoa(rng.IntN(i+1))); err == nil {
						err = s.Set(k, v)
					}
				default:
					err = s.SetWithTTL(k, v, time.Microsecond+time.Duration(rng.Int64N(int64(2*time.Millisecond))))
				}
				// ErrQuotaExceeded only while the filler has the quota lowered.
				if err != nil && !errors.Is(err, ErrQuotaExceeded) {
					t.Errorf("churn: %s: %v", k, err)
					return
				}
				held[j] = k
				sawRebuild(&last)
				cops.Add(1)
			}
		})
	}
	churn.Go(func() { // the filler
		rng := rand.New(rand.NewPCG(0x11e4, 200))
		for !stop.Load() {
			gate.Lock()
			// Lower the quota to what the store holds, so that the next new
			// key finds it full and its write reclaims what has expired
			// before it retries. Entries come and go meanwhile: lower it
			// again until some write has retried.
			before, n := quotaRetries.Load(), 0
			for ; n < 64 && quotaRetries.Load() == before; n++ {
				s.SetMaxKeys(s.Len())
				err := s.SetWithTTL("fill/"+strconv.Itoa(n), []byte("f"), time.Nanosecond)
				if err != nil && !errors.Is(err, ErrQuotaExceeded) {
					t.Errorf("fill: %v", err)
				}
			}
			for i := range n {
				if _, err := s.Delete("fill/" + strconv.Itoa(i)); err != nil {
					t.Errorf("fill: %v", err)
				}
			}
			s.SetMaxKeys(maxKeys)
			gate.Unlock()
			fills.Add(1)
			// Lock-free misses until the next fill.
			for range 256 {
				_ = s.Exists("churn/0/" + strconv.Itoa(rng.IntN(1<<20)))
			}
		}
	})

	var work sync.WaitGroup
	for w := range workers {
		work.Go(func() {
			rng := rand.New(rand.NewPCG(0x11e4, uint64(w)))
			seen := map[string]string{} // the last value this worker read, by key
			hist := make([]porcupine.Operation, 0, opsPer)
			// value is a small integer, mostly, so that Increment applies;
			// now and then one Increment must refuse.
			value := func() string {
				if rng.IntN(10) == 0 {
					return "x" + strconv.Itoa(rng.IntN(100))
				}
				return strconv.Itoa(rng.IntN(1000))
			}
			for range opsPer {
				in := linIn{key: checked[rng.IntN(keys)]}
				switch r := rng.IntN(100); {
				case r < 14:
					in.op = linGet
				case r < 24:
					in.op = linView
				case r < 32:
					in.op = linExists
				case r < 38:
					in.op = linTTL
				case r < 50:
					in.op, in.val = linSet, value()
				case r < 62:
					in.op, in.val, in.ttl = linSetTTL, value(), linLongTTL
					if rng.IntN(3) == 0 {
						in.ttl = -time.Duration(rng.IntN(2)) // 0 or -1ns
					}
				case r < 74:
					in.op = linDelete
				case r < 88:
					in.op, in.val = linCAS, value()
					switch rng.IntN(3) {
					case 0:
						in.expNil = true
					case 1:
						in.exp = seen[in.key]
					default:
						in.exp = value()
					}
				default:
					in.op, in.delta = linIncr, 1+rng.Int64N(9)
				}
				if in.key == stable { // kept present: a miss is always wrong
					switch {
					case in.op == linDelete:
						in.op = linExists
					case in.op == linSetTTL:
						in.ttl = linLongTTL
					case in.op == linCAS && in.expNil:
						in.expNil, in.exp = false, seen[in.key]
					}
				}
				// Writes that may create the key wait out a fill.
				creates := in.op == linSet || in.op == linSetTTL || in.op == linIncr || (in.op == linCAS && in.expNil)
				if creates {
					gate.RLock()
				}
				var out linOut
				var err error
				call := time.Since(start).Nanoseconds()
				switch in.op {
				case linGet:
					var v []byte
					v, out.found, err = s.Get(in.key)
					out.val = string(v)
				case linView:
					out.found, err = s.View(in.key, func(v []byte) { out.val = string(v) })
				case linExists:
					out.found = s.Exists(in.key)
				case linTTL:
					var ttl time.Duration
					ttl, out.found, err = s.TTL(in.key)
					switch {
					case ttl == NoTTL:
						out.ttl = "none"
					case ttl > 0 && ttl <= linLongTTL:
						out.ttl = "long"
					default:
						out.ttl = ttl.String()
					}
				case linSet:
					err = s.Set(in.key, []byte(in.val))
				case linSetTTL:
					err = s.SetWithTTL(in.key, []byte(in.val), in.ttl)
				case linDelete:
					out.found, err = s.Delete(in.key)
				case linCAS:
					var exp []byte
					if !in.expNil {
						exp = []byte(in.exp)
					}
					out.found, err = s.CompareAndSwap(in.key, exp, []byte(in.val))
				case linIncr:
					out.n, err = s.Increment(in.key, in.delta)
				}
				ret := time.Since(start).Nanoseconds()
				if creates {
					gate.RUnlock()
				}
				out.err = linErr(err)
				if errors.Is(err, ErrQuotaExceeded) {
					t.Errorf("%s: the quota refused a checked key", linDescribe(in, out))
				}
				if out.found && (in.op == linGet || in.op == linView) {
					seen[in.key] = out.val
				}
				hist = append(hist, porcupine.Operation{ClientId: w, Input: in, Call: call, Output: out, Return: ret})
			}
			histories[w] = hist
		})
	}
	work.Wait()
	stop.Store(true)
	churn.Wait()
	elapsed := time.Since(start)

	history := slices.Concat(append([][]porcupine.Operation{{first}}, histories...)...)
	t.Logf("%d checked ops on %d keys and %d churn ops in %v: %d table changes seen, %d churn keys gone before their delete, %d fills, %d quota retries",
		len(history), keys, cops.Load(), elapsed.Round(time.Millisecond), rebuilds.Load(), gone.Load(), fills.Load(), quotaRetries.Load())
	t.Logf("%d chunk directory changes seen (chunks started or dropped by compaction)", chunkChanges.Load())
	if -deepest.Load() < 2 {
		t.Errorf("the directory never went deeper than %d: no splits under the readers", -deepest.Load())
	}
	if rebuilds.Load() == 0 || chunkChanges.Load() == 0 || quotaRetries.Load() == 0 {
		t.Errorf("the churn did not exercise the shard: %d table changes, %d chunk changes seen, %d quota retries",
			rebuilds.Load(), chunkChanges.Load(), quotaRetries.Load())
	}

	const timeout = time.Minute
	checkStart := time.Now()
	res := porcupine.CheckOperationsTimeout(linModel, history, timeout)
	t.Logf("porcupine: %s in %v", res, time.Since(checkStart).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		t.Fatalf("porcupine could not decide within %v: shrink the history (%d ops)", timeout, len(history))
	}
	res, info := porcupine.CheckOperationsVerbose(linModel, history, timeout)
	path := filepath.Join(os.TempDir(), fmt.Sprintf("shardkv-linearizability-%d.html", time.Now().UnixNano()))
	if err := porcupine.VisualizePath(linModel, info, path); err != nil {
		t.Logf("visualization: %v", err)
	} else {
		t.Logf("visualization: %s", path)
	}
	linExcerpt(t, linModel.Partition(history), info)
	t.Fatalf("the history is not linearizable (%s)", res)
}

// linExcerpt logs, for each key whose history is not linearizable, the
// operations around the first one the longest partial linearization leaves
// out: the violation is there.
func linExcerpt(t *testing.T, parts [][]porcupine.Operation, info porcupine.LinearizationInfo) {
	partials := info.PartialLinearizationsOperations()
	for p, ops := range parts {
		if p >= len(partials) {
			break
		}
		var longest []porcupine.Operation
		for _, l := range partials[p] {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == len(ops) {
			continue
		}
		in := map[[2]int64]bool{}
		for _, op := range longest {
			in[[2]int64{op.Call, op.Return}] = true
		}
		sorted := slices.SortedFunc(slices.Values(ops), func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		first := slices.IndexFunc(sorted, func(op porcupine.Operation) bool { return !in[[2]int64{op.Call, op.Return}] })
		var b strings.Builder
		for i := max(first-12, 0); i < min(first+8, len(sorted)); i++ {
			op := sorted[i]
			mark := " "
			if i == first {
				mark = ">"
			}
			fmt.Fprintf(&b, "\n%s [%d, %d] w%d %s", mark, op.Call, op.Return, op.ClientId,
				linDescribe(op.Input.(linIn), op.Output.(linOut)))
		}
		t.Logf("key %s: %d of %d ops linearize; around the first left out (>), by call time (ns):%s",
			ops[0].Input.(linIn).key, len(longest), len(ops), b.String())
	}
}
