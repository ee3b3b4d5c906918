package server

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

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
		totals := shardkvtest.MallocsUpTo(1000, tc.max, op)
		if got := totals[len(totals)-1]; got > tc.max {
			t.Errorf("%s: %d allocations in 1000 runs (attempts: %v), want at most %d", tc.args[0], got, totals, tc.max)
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

// BenchmarkServe runs a client's whole loop (reading, the size guard,
// parsing, the commands, writing) over an in-memory connection that hands
// it pipelines of 16 requests, as redis-benchmark -P 16 sends them, and
// discards the replies: what a pipelined command costs the server beyond
// its system calls. Keys cycle over 100k; ns/op is per command.
func BenchmarkServe(b *testing.B) {
	const (
		nkeys = 100_000
		depth = 16
	)
	value := strings.Repeat("x", 64)
	for _, bc := range []struct {
		name string
		req  func(key string) string
	}{
		{"SET", func(k string) string { return resp("SET", k, value) }},
		{"GET", func(k string) string { return resp("GET", k) }},
		{"INCR", func(k string) string { return resp("INCR", k) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// Batches of depth requests, over every key in turn.
			batches := make([][]byte, nkeys/depth)
			for i := range batches {
				var sb strings.Builder
				for j := range depth {
					sb.WriteString(bc.req("key:" + strconv.Itoa(100_000_000+i*depth+j)))
				}
				batches[i] = []byte(sb.String())
			}
			st := shardkv.New(StoreOptions()...)
			defer st.Close()
			if bc.name == "GET" {
				for i := range nkeys {
					st.Set("key:"+strconv.Itoa(100_000_000+i), []byte(value))
				}
			}
			conn := &pipelineConn{batches: batches, left: (b.N + depth - 1) / depth}
			srv := New(st, Config{})
			c := newClient(srv, conn)
			srv.wg.Add(1) // as accept does; serve's finish marks it done
			b.ReportAllocs()
			b.ResetTimer()
			c.serve()
			b.StopTimer()
			if conn.writes == 0 || conn.bytes < int64(b.N) {
				b.Fatalf("%d replies' bytes in %d writes for %d commands", conn.bytes, conn.writes, b.N)
			}
		})
	}
}

// resp is args as a RESP array of bulk strings.
func resp(args ...string) string {
	var sb strings.Builder
	sb.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		sb.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return sb.String()
}

// pipelineConn is a net.Conn that reads as left batches, one a Read, then
// io.EOF, and counts what is written to it.
type pipelineConn struct {
	net.Conn // nil: a method not defined here panics
	batches  [][]byte
	next     int
	left     int
	writes   int
	bytes    int64
}

func (p *pipelineConn) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	p.left--
	n := copy(b, p.batches[p.next])
	p.next = (p.next + 1) % len(p.batches)
	return n, nil
}

func (p *pipelineConn) Write(b []byte) (int, error) {
	p.writes++
	p.bytes += int64(len(b))
	return len(b), nil
}

func (p *pipelineConn) Close() error { return nil }
func (p *pipelineConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}
func (p *pipelineConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (p *pipelineConn) SetReadDeadline(time.Time) error  { return nil }
func (p *pipelineConn) SetWriteDeadline(time.Time) error { return nil }
