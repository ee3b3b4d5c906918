package server

import (
	"net"
	"strconv"
	"testing"

	"github.com/shardkv/shardkv"
)

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
