package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/shardkvtest"
)

// The reader parses a batch of what it holds at once and hands it out in
// order; a protocol error comes after the commands before it; hint is
// given each batch's first arguments before the batch runs.
func TestReaderBatch(t *testing.T) {
	get := func(k string) string { return fmt.Sprintf("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k) }
	long := strings.Repeat("k", hintMax+1)
	// more than a batch: batchMax+6 GETs, hinted in two calls
	var many strings.Builder
	var manyWant, first, second []string
	for i := range batchMax + 6 {
		many.WriteString(get(fmt.Sprint(i)))
		manyWant = append(manyWant, fmt.Sprintf("GET %d", i))
		if i < batchMax {
			first = append(first, fmt.Sprint(i))
		} else {
			second = append(second, fmt.Sprint(i))
		}
	}
	for _, tc := range []struct {
		name   string
		stream string
		want   string // the commands, space-joined args, then "!" and the error, if any
		hints  string // each call to hint, its keys comma-joined
	}{
		{"one", get("a"), "GET a", ""},
		{"three", get("a") + get("b") + get("c"), "GET a|GET b|GET c", "a,b,c"},
		{"partial last", get("a") + get("b") + "*2\r\n$3\r\nGET", "GET a|GET b", "a,b"},
		{"inline and no args", "PING\r\n*0\r\n" + get("x") + "ECHO  hi\r\n", "PING||GET x|ECHO hi", "x,hi"},
		{"leading $ line", "$4 PING\r\n" + get("y") + get("z"), "$4 PING|GET y|GET z", "PING,y,z"},
		{"error after two", get("a") + get("b") + "*2\r\n+x\r\n", "GET a|GET b|!Protocol error: expected '$', got '+'", "a,b"},
		{"error first", "*x\r\n" + get("a"), "!Protocol error: invalid multibulk length", ""},
		{"key too long to hint", get(long) + get("b") + get("c"), "GET " + long + "|GET b|GET c", "b,c"},
		{"only one key to hint", get(long) + "PING\r\n", "GET " + long + "|PING", ""},
		{"more than a batch", many.String(), strings.Join(manyWant, "|"), strings.Join(first, ",") + ";" + strings.Join(second, ",")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &reader{buf: []byte(tc.stream), end: len(tc.stream)}
			var hints []string
			r.hint = func(keys ...string) {
				hints = append(hints, strings.Join(keys, ","))
				if len(r.keys) == 0 || &r.keys[0] != &keys[0] {
					t.Error("hint was not given the reader's reused keys")
				}
			}
			var got []string
			for {
				args, ok, err := r.next()
				if err != nil {
					got = append(got, "!"+err.Error())
					break
				}
				if !ok {
					break
				}
				var w []string
				for _, a := range args {
					w = append(w, string(a))
				}
				got = append(got, strings.Join(w, " "))
				// A handler appending to its args does not reach the
				// next command's.
				_ = append(args, []byte("junk"))
			}
			for _, k := range r.keys[:cap(r.keys)] {
				if k != "" {
					t.Fatal("the reader keeps views of its buffer after hint")
				}
			}
			if g := strings.Join(got, "|"); g != tc.want {
				t.Errorf("commands %q, want %q", g, tc.want)
			}
			if g := strings.Join(hints, ";"); g != tc.hints {
				t.Errorf("hints %q, want %q", g, tc.hints)
			}
		})
	}
}

// TestReaderAllocations: reading a pipeline, with the store's Prefetch as
// the hint, allocates nothing once the reader's buffers have grown.
func TestReaderAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	st := shardkv.New(StoreOptions()...)
	defer st.Close()
	var stream strings.Builder
	for i := range 40 {
		k := fmt.Sprintf("key:%012d", i)
		fmt.Fprintf(&stream, "*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n", len(k), k)
	}
	r := &reader{buf: []byte(stream.String()), hint: st.Prefetch}
	n := 0
	op := func() {
		r.start, r.end = 0, len(r.buf)
		for {
			_, ok, err := r.next()
			if err != nil || !ok {
				break
			}
			n++
		}
	}
	op()
	if n != 40 {
		t.Fatalf("%d commands read, want 40", n)
	}
	totals := shardkvtest.MallocsUpTo(1000, 0, op)
	if got := totals[len(totals)-1]; got != 0 {
		t.Errorf("%d allocations in 1000 pipelines of 40 commands (attempts: %v), want none", got, totals)
	}
}

// hintArgs gives hint the keys of a multi-key command: every step-th
// argument, when there are two keys or more, none too long.
func TestReaderHintArgs(t *testing.T) {
	long := strings.Repeat("k", hintMax+1)
	for _, tc := range []struct {
		args []string
		step int
		want string // hint's keys, comma-joined; "-": no call
	}{
		{[]string{"a", "b", "c"}, 1, "a,b,c"},
		{[]string{"a", "1", "b", "2"}, 2, "a,b"},
		{[]string{"a"}, 1, "-"},
		{[]string{"a", "1"}, 2, "-"},
		{[]string{"a", long, "b"}, 1, "a,b"},
		{[]string{long, "x", "b", "y"}, 2, "-"},
	} {
		r := &reader{}
		got := "-"
		r.hint = func(keys ...string) { got = strings.Join(keys, ",") }
		var args [][]byte
		for _, a := range tc.args {
			args = append(args, []byte(a))
		}
		r.hintArgs(args, 0, tc.step)
		if got != tc.want {
			t.Errorf("%q step %d: hint %q, want %q", tc.args, tc.step, got, tc.want)
		}
		if len(r.keys) != 0 {
			t.Errorf("%q: %d keys left", tc.args, len(r.keys))
		}
		for _, k := range r.keys[:cap(r.keys)] {
			if k != "" {
				t.Errorf("%q: a view of the arguments left behind", tc.args)
			}
		}
	}
	var r reader // no hint: nothing happens
	r.hintArgs([][]byte{[]byte("a"), []byte("b")}, 0, 1)
	var nr *reader // a client with no reader (tests build some)
	nr.hintArgs([][]byte{[]byte("a"), []byte("b")}, 0, 1)

	// A long MGET is hinted batchMax keys at a time, by its handler.
	var many [][]byte
	for i := range 3*batchMax + 1 {
		many = append(many, []byte(fmt.Sprint(i)))
	}
	var calls []int
	var firsts []string
	r.hint = func(keys ...string) { calls, firsts = append(calls, len(keys)), append(firsts, keys[0]) }
	for i := range many {
		r.hintArgs(many, i, 1)
	}
	if fmt.Sprint(calls) != fmt.Sprint([]int{batchMax, batchMax, batchMax}) || cap(r.keys) > 2*batchMax {
		t.Errorf("hints of %v keys, keys' capacity %d", calls, cap(r.keys))
	}
	if want := fmt.Sprint([]int{0, batchMax, 2 * batchMax}); fmt.Sprint(firsts) != want {
		t.Errorf("windows start at keys %v, want %s (the last, of one key, unhinted)", firsts, want)
	}
	e := newEnv(t, Config{})
	raw := e.raw()
	var req, rep strings.Builder
	fmt.Fprintf(&req, "*%d\r\n$4\r\nMGET\r\n", len(many)+1)
	fmt.Fprintf(&rep, "*%d\r\n", len(many))
	for _, k := range many {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(k), k)
		rep.WriteString("$-1\r\n")
	}
	raw.send(req.String())
	raw.expect(rep.String())
}

// fill with commands of the batch still to hand out would move the bytes
// they point into: it refuses.
func TestReaderFillMidBatch(t *testing.T) {
	stream := "PING\r\nPING\r\n"
	r := &reader{buf: []byte(stream), end: len(stream)}
	if _, ok, err := r.next(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	defer func() {
		if recover() == nil {
			t.Error("fill mid-batch did not panic")
		}
	}()
	r.fill()
}
