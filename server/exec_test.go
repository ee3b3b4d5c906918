package server

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/shardkvtest"
)

// TestExecAllocations pins what a plain GET, SET and INCR allocate in the
// server, from the parsed request to the encoded reply: nothing of their
// own (the key converted from the request's bytes included); SET and INCR
// pay, amortized, for the chunks their records fill (at most one
// allocation per 20 commands here).
func TestExecAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	st := shardkv.New(StoreOptions()...)
	defer st.Close()
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	c := newClient(New(st, Config{}), c1)
	k, v := []byte("key:000000000001"), make([]byte, 64)
	for _, tc := range []struct {
		args  [][]byte
		reply string // the first reply's start
		max   uint64 // in 1000 runs
	}{
		{[][]byte{[]byte("SET"), k, v}, "+OK\r\n", 50},
		{[][]byte{[]byte("GET"), k}, "$64\r\n", 0},
		{[][]byte{[]byte("get"), k}, "$64\r\n", 0},
		{[][]byte{[]byte("INCR"), []byte("counter:0001")}, ":1\r\n", 50},
		{[][]byte{[]byte("EXISTS"), k}, ":1\r\n", 0},
	} {
		op := func() {
			c.exec(tc.args)
			c.out = c.out[:0]
		}
		c.exec(tc.args)
		if !strings.HasPrefix(string(c.out), tc.reply) {
			t.Fatalf("%s: reply %q, want %q", tc.args[0], c.out, tc.reply)
		}
		c.out = c.out[:0]
		var got uint64
		for range 3 { // another goroutine's allocation can only add: measure again
			got = shardkvtest.Mallocs(1000, op)
			if got <= tc.max {
				break
			}
		}
		if got > tc.max {
			t.Errorf("%s: %d allocations in 1000 runs, want at most %d", tc.args[0], got, tc.max)
		}
	}
}

// BenchmarkExec runs single commands through the client's dispatch (the
// command table, the arity and auth checks, the handler and its reply),
// with no socket in the path: what one command costs the server beyond
// its system calls, and what it allocates. Keys cycle over 100k, as
// redis-benchmark's -r 100000.
func BenchmarkExec(b *testing.B) {
	const nkeys = 100_000
	keys := make([][]byte, nkeys)
	for i := range keys {
		keys[i] = []byte("key:" + strconv.Itoa(100_000_000+i))
	}
	value := make([]byte, 64)
	for _, bc := range []struct {
		name string
		args func(k []byte) [][]byte
	}{
		{"SET", func(k []byte) [][]byte { return [][]byte{[]byte("SET"), k, value} }},
		{"GET", func(k []byte) [][]byte { return [][]byte{[]byte("GET"), k} }},
		{"INCR", func(k []byte) [][]byte { return [][]byte{[]byte("INCR"), k} }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := shardkv.New(StoreOptions()...)
			defer st.Close()
			srv := New(st, Config{})
			c1, c2 := net.Pipe()
			defer c1.Close()
			defer c2.Close()
			c := newClient(srv, c1)
			args := make([][][]byte, nkeys)
			for i, k := range keys {
				args[i] = bc.args(k)
				if bc.name == "GET" {
					c.exec([][]byte{[]byte("SET"), k, value})
				}
			}
			c.out = c.out[:0]
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.exec(args[i%nkeys])
				if len(c.out) > 32<<10 {
					c.out = c.out[:0]
				}
			}
		})
	}
}
