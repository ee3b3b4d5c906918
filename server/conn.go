package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"
)

// flushAt is the size of pending replies that makes a client write them
// out before the end of its batch of pipelined commands.
const flushAt = 64 << 10

// client is one connection. Its goroutine (serve) reads what the client
// has sent, runs every complete command in it one by one (parsed in place
// by its reader) appending each reply to out (encoded by redcon's Append
// functions), and writes out when that batch is done: replies are in
// command order and a pipeline costs one read and one write per batch.
// Fields not marked otherwise belong to that goroutine.
type client struct {
	s       *Server
	id      uint64
	conn    net.Conn
	g       guard
	rd      *reader
	out     []byte
	raddr   string
	laddr   string
	created time.Time

	authed   bool
	quit     bool // close once this batch's replies are written
	deadline bool // a read deadline is set

	// Read by CLIENT LIST / INFO from other clients' goroutines.
	name       atomic.Pointer[string]
	libName    atomic.Pointer[string]
	libVer     atomic.Pointer[string]
	lastCmd    atomic.Pointer[string]
	lastActive atomic.Int64 // unix nanoseconds
	ncmds      atomic.Uint64
	omem       atomic.Int64 // bytes of replies waiting in a loop's wbuf

	// Pub/sub. subs and psubs are guarded by s.hub.mu; nsub and npsub
	// mirror their sizes for lock-free reads. ob is set by this goroutine
	// before its first subscription is registered (under hub.mu), so a
	// publisher that finds the client in the hub sees it.
	subs    map[string]struct{}
	psubs   map[string]struct{}
	nsub    atomic.Int32
	npsub   atomic.Int32
	ob      *outbox
	dropped atomic.Bool

	bulkFn func([]byte) // c.writeBulk, bound once (View's callback)

	// The event-loop engine (loop.go): lp is the loop serving the client,
	// nil when the client has a goroutine of its own (serve) and conn is
	// its connection; with a loop, conn is nil and fd is the socket. These
	// fields are the loop goroutine's, but posted (lp.mu's).
	lp         *loop
	fd         int
	wbuf       []byte    // replies the socket has not taken yet, from woff
	woff       int       //
	outWait    bool      // replies wait in wbuf: polled for EPOLLOUT, not read
	closing    bool      // close once wbuf is written, or at closeBy
	lingering  bool      // closing, write side shut: see loop.finishClose
	closeBy    time.Time //
	readErr    error     // the end of the stream, seen while replies waited
	outq       int       // the socket's send queue at the last idle sweep
	registered bool      // in the loop's epoll set and conns
	posted     bool      // in the loop's task list; lp.mu
	gone       bool      // torn down

	lower []byte // the command name, lower-cased
	// The last command run and its name as the client sent it: a client
	// mostly repeats one command (a pipeline of INCRs, a GET loop), and
	// this spares it the lower-casing and the table lookup.
	last     *command
	lastName []byte
	num      []byte   // scratch for formatting numbers
	keys     []string // scratch for SCAN / KEYS
}

func newClient(s *Server, nc net.Conn) *client {
	c := &client{
		s:       s,
		id:      s.nextID.Add(1),
		conn:    nc,
		raddr:   addrString(nc.RemoteAddr()),
		laddr:   addrString(nc.LocalAddr()),
		created: time.Now(),
		authed:  s.password.Load() == nil,
	}
	c.lastActive.Store(c.created.UnixNano())
	c.bulkFn = c.writeBulk
	c.g = guard{r: nc, limit: s.maxRequest.Load}
	c.rd = newReader(&c.g)
	c.rd.hint = s.prefetch
	return c
}

// onLoop moves c from its connection to lp: c.conn is given up for fd
// (see detach), and the loop reads fd.
func (c *client) onLoop(lp *loop, fd int) {
	c.lp, c.fd, c.conn = lp, fd, nil
	c.g.r = fdConn(fd)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// subscribed reports whether the client is in subscribe mode (RESP2: only
// pub/sub commands, PING, QUIT and RESET are allowed).
func (c *client) subscribed() bool { return c.nsub.Load()+c.npsub.Load() > 0 }

// interrupt makes the client's goroutine stop at its next read: called by
// Shutdown after setting s.shutdown. The goroutine checks s.shutdown after
// setting its own read deadline, so whichever of the two deadlines is set
// last, it does not block in a read once shutdown is set.
// A loop's client needs none: Shutdown wakes the loops.
func (c *client) interrupt() {
	if c.conn != nil {
		c.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// serve is the goroutine engine: the client's own goroutine reads its
// connection, runs the commands, and writes the replies, until the client
// is done.
func (c *client) serve() {
	s := c.s
	defer c.finish()
	for {
		if s.shutdown.Load() {
			return
		}
		c.setDeadline()
		// Checked after the deadline is set: interrupt and deliver set a
		// past deadline after setting their flag, so whichever deadline
		// came last, the read below does not block.
		if s.shutdown.Load() || c.dropped.Load() {
			return
		}
		_, rerr := c.rd.fill()
		// What was read before an error is served first: the guard
		// passes on the requests before one it refuses.
		ran := false
		for !c.quit {
			args, ok, perr := c.rd.next()
			if perr != nil {
				c.readFailed(perr)
				return
			}
			if !ok {
				break
			}
			if !ran {
				c.lastActive.Store(time.Now().UnixNano())
				ran = true
			}
			c.exec(args)
			if len(c.out) >= flushAt {
				if err := c.flush(); err != nil {
					c.writeFailed(err)
					return
				}
			}
		}
		if err := c.flush(); err != nil {
			c.writeFailed(err)
			return
		}
		if c.quit {
			return
		}
		if rerr != nil {
			c.readFailed(rerr)
			return
		}
	}
}

// setDeadline applies the idle timeout to the next read; subscribers have
// none.
func (c *client) setDeadline() {
	idle := time.Duration(c.s.idle.Load())
	if idle > 0 && !c.subscribed() {
		c.conn.SetReadDeadline(time.Now().Add(idle))
		c.deadline = true
	} else if c.deadline {
		c.conn.SetReadDeadline(time.Time{})
		c.deadline = false
	}
}

func (c *client) readFailed(err error) {
	s := c.s
	var pe *protoError
	switch {
	case errors.As(err, &pe):
		s.queryDrops.Add(1)
		s.log.Warn("server: request over the size limit; closing client",
			"client", c.id, "remote", c.raddr, "err", pe.msg)
		c.finalError("ERR " + pe.Error())
	case strings.HasPrefix(err.Error(), "Protocol error"):
		// redcon's parser refused the bytes (its error type is not
		// exported); Redis answers these and closes, as here.
		s.log.Debug("server: protocol error; closing client", "client", c.id, "remote", c.raddr, "err", err)
		c.finalError("ERR " + err.Error())
	case errors.Is(err, os.ErrDeadlineExceeded):
		if !s.shutdown.Load() && !c.dropped.Load() {
			s.log.Debug("server: closing idle client", "client", c.id, "remote", c.raddr)
		}
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		s.log.Debug("server: client closed", "client", c.id, "remote", c.raddr)
	default:
		s.log.Debug("server: read failed; closing client", "client", c.id, "remote", c.raddr, "err", err)
	}
}

// finalError writes one last error before the client is closed, not
// waiting long for a peer that does not read.
func (c *client) finalError(msg string) {
	c.writeError(msg)
	if c.ob == nil && c.conn != nil {
		c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	}
	c.flush()
}

func (c *client) writeFailed(err error) {
	c.s.log.Debug("server: write failed; closing client", "client", c.id, "remote", c.raddr, "err", err)
}

// finish ends serve, after a panic too.
func (c *client) finish() {
	if r := recover(); r != nil {
		c.s.log.Error("server: panic serving client", "client", c.id, "panic", r, "stack", string(debug.Stack()))
	}
	c.teardown()
}

// teardown removes the client: out of the hub, its writer drained, the
// connection closed, its counters folded into the server's. It runs once,
// on the client's goroutine or its loop.
func (c *client) teardown() {
	if c.gone {
		return
	}
	c.gone = true
	s := c.s
	s.hub.removeClient(c)
	if c.ob != nil {
		c.ob.close(c.dropped.Load())
		<-c.ob.done
	}
	if c.lp != nil {
		c.closeFD()
	} else {
		lingerConn(c.conn)
		c.conn.Close()
	}
	s.mu.Lock()
	delete(s.clients, c)
	s.closedCmds.Add(c.ncmds.Load())
	s.mu.Unlock()
	if s.obs != nil {
		s.obs.Disconnected()
	}
	s.wg.Done()
}

// flush hands the pending replies to the connection: written directly, or
// queued behind the messages of a subscriber's writer.
func (c *client) flush() error {
	if c.lp != nil {
		return c.loopFlush()
	}
	if len(c.out) == 0 {
		return nil
	}
	if c.ob != nil {
		b := c.out
		c.out = nil // the outbox owns b now
		return c.ob.pushReply(b)
	}
	_, err := c.conn.Write(c.out)
	if cap(c.out) > 1<<20 {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	return err
}

// exec runs one command.
func (c *client) exec(args [][]byte) {
	if len(args) == 0 {
		return
	}
	cmd := c.last
	if cmd == nil || !bytes.Equal(args[0], c.lastName) {
		c.lower = appendLower(c.lower[:0], args[0])
		table := commands
		if c.s.cluster {
			table = clusterCommands
		}
		if cmd = table[string(c.lower)]; cmd == nil {
			c.unknownCommand(args)
			return
		}
		c.last, c.lastName = cmd, append(c.lastName[:0], args[0]...)
		c.lastCmd.Store(&cmd.name) // only on a change: the store is a full barrier
	}
	c.ncmds.Add(1)
	obs := c.s.obs
	var start time.Time
	if obs != nil {
		start = time.Now()
	}
	mark := len(c.out)
	c.dispatch(cmd, args, mark)
	if obs != nil {
		failed := len(c.out) > mark && c.out[mark] == '-'
		obs.Command(cmd.name, time.Since(start), failed)
	}
}

func (c *client) dispatch(cmd *command, args [][]byte, mark int) {
	defer func() {
		if r := recover(); r != nil {
			c.s.log.Error("server: panic in command", "command", cmd.name, "client", c.id,
				"panic", r, "stack", string(debug.Stack()))
			if len(c.out) >= mark {
				c.out = c.out[:mark]
			}
			c.writeError(errInternal)
		}
	}()
	if !cmd.arityOK(len(args)) {
		c.errArity(cmd.name)
		return
	}
	// As Redis' authRequired: only while a password is set, so that a
	// client that connected while there was one is not locked out once
	// CONFIG SET requirepass "" removes it.
	if !c.authed && cmd.flags&flagNoAuth == 0 && c.s.password.Load() != nil {
		c.writeError("NOAUTH Authentication required.")
		return
	}
	if cmd.flags&flagPubSubOK == 0 && c.subscribed() {
		c.writeError("ERR Can't execute '" + cmd.name + "': only (P|S)SUBSCRIBE / " +
			"(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
		return
	}
	cmd.fn(c, args)
}

func appendLower(dst, b []byte) []byte {
	for _, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		dst = append(dst, ch)
	}
	return dst
}

// unknownCommand answers as Redis 7 does.
func (c *client) unknownCommand(args [][]byte) {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.WriteString(truncate(args[0], 128))
	b.WriteString("', with args beginning with: ")
	n := 0
	for _, a := range args[1:] {
		if n >= 128 {
			break
		}
		s := "'" + truncate(a, 128-n) + "' "
		n += len(s)
		b.WriteString(s)
	}
	c.writeError(b.String())
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// Reply encoding, with redcon's RESP2 encoders.

func (c *client) writeOK()                 { c.out = append(c.out, "+OK\r\n"...) }
func (c *client) writeSimple(s string)     { c.out = redcon.AppendString(c.out, s) }
func (c *client) writeError(s string)      { c.out = redcon.AppendError(c.out, s) }
func (c *client) writeInt(n int64)         { c.out = redcon.AppendInt(c.out, n) }
func (c *client) writeBulk(b []byte)       { c.out = redcon.AppendBulk(c.out, b) }
func (c *client) writeBulkString(s string) { c.out = redcon.AppendBulkString(c.out, s) }
func (c *client) writeNull()               { c.out = redcon.AppendNull(c.out) }
func (c *client) writeArray(n int)         { c.out = redcon.AppendArray(c.out, n) }
func (c *client) writeNullArray()          { c.out = append(c.out, "*-1\r\n"...) }
func (c *client) writeBool(b bool)         { c.writeInt(b2i(b)) }
func (c *client) errArity(name string) {
	c.writeError("ERR wrong number of arguments for '" + name + "' command")
}
func (c *client) errSyntax() { c.writeError(errSyntax) }
func (c *client) writeBulkStrings(s ...string) {
	c.writeArray(len(s))
	for _, v := range s {
		c.writeBulkString(v)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
