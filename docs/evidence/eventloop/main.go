// Command eventloop is a feasibility probe, not a server: GET, SET and
// INCR of one shardkv store served by gnet's epoll loops (one read(2) per
// readable event, replies batched into one write), so that its server CPU
// per request can be set beside shardkv-server's (a goroutine per client,
// Go's netpoller) and redis-server's under the same redis-benchmark.
package main

import (
	"flag"
	"log"
	"strconv"

	"github.com/panjf2000/gnet/v2"
	"github.com/shardkv/shardkv"
	"github.com/tidwall/redcon"
)

type handler struct {
	gnet.BuiltinEventEngine
	s *shardkv.Store
}

type connState struct {
	args [][]byte
	out  []byte
	val  []byte
}

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&connState{})
	return nil, gnet.None
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	st := c.Context().(*connState)
	buf, _ := c.Peek(-1)
	in := buf
	out := st.out[:0]
	for len(in) > 0 {
		complete, args, _, left, err := redcon.ReadNextCommand(in, st.args[:0])
		if err != nil {
			out = redcon.AppendError(out, "ERR "+err.Error())
			c.Write(out)
			return gnet.Close
		}
		if !complete {
			break
		}
		st.args = args
		in = left
		out = h.exec(st, out, args)
	}
	c.Discard(len(buf) - len(in))
	if len(out) > 0 {
		c.Write(out)
	}
	st.out = out
	return gnet.None
}

func (h *handler) exec(st *connState, out []byte, args [][]byte) []byte {
	switch {
	case len(args) == 2 && eq(args[0], "get"):
		v, ok, err := h.s.AppendValue(st.val[:0], string(args[1]))
		st.val = v
		if err != nil || !ok {
			return redcon.AppendNull(out)
		}
		return redcon.AppendBulk(out, v)
	case len(args) == 3 && eq(args[0], "set"):
		if err := h.s.Set(string(args[1]), args[2]); err != nil {
			return redcon.AppendError(out, "ERR "+err.Error())
		}
		return redcon.AppendOK(out)
	case len(args) == 2 && eq(args[0], "incr"):
		// Increment counts a missing key as 0 and creates it.
		n, err := h.s.Increment(string(args[1]), 1)
		if err != nil {
			return redcon.AppendError(out, "ERR "+err.Error())
		}
		return redcon.AppendInt(out, n)
	case len(args) >= 1 && (eq(args[0], "ping")):
		return redcon.AppendString(out, "PONG")
	case len(args) >= 1 && eq(args[0], "config"):
		return redcon.AppendArray(out, 0)
	}
	return redcon.AppendError(out, "ERR unknown command")
}

func eq(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

func main() {
	port := flag.Int("port", 7788, "port on 127.0.0.1")
	loops := flag.Int("loops", 0, "event loops (0: one per core)")
	flag.Parse()
	s := shardkv.New(shardkv.WithBinaryKeys(512<<20), shardkv.WithMaxKeys(1<<30))
	defer s.Close()
	opts := []gnet.Option{gnet.WithMulticore(true), gnet.WithReusePort(false)}
	if *loops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(*loops))
	}
	log.Fatal(gnet.Run(&handler{s: s}, "tcp://127.0.0.1:"+strconv.Itoa(*port), opts...))
}
