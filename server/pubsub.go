package server

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"
)

// The server keeps its own subscriber registry rather than redcon's
// PubSub: that one writes each message to the subscriber's socket while
// holding its locks, so one subscriber that stops reading blocks every
// publisher (and would block the keyspace watch), and nothing bounds what
// is queued for it. Here publishing only appends an encoded frame to the
// subscriber's outbox; each subscriber's own writer goroutine does the
// writing, and one that has PubSubBacklog frames pending is disconnected.

// hub is the registry of channel and pattern subscriptions.
type hub struct {
	mu       sync.RWMutex
	channels map[string]map[*client]struct{}
	patterns map[string]map[*client]struct{}
	// n counts subscriptions, so that a publish with no subscriber at all
	// (the keyspace watch's common case) takes no lock.
	n atomic.Int64
}

func (h *hub) init() {
	h.channels = make(map[string]map[*client]struct{})
	h.patterns = make(map[string]map[*client]struct{})
}

func (h *hub) counts() (channels, patterns int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.channels), len(h.patterns)
}

// subscribe registers c for name and queues the confirmation. Both happen
// under the write lock, so a message published to name after it is
// queued after the confirmation, as Redis orders them. It never blocks on
// the client's writer.
func (h *hub) subscribe(c *client, pattern bool, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	idx, own, kind := h.channels, &c.subs, "subscribe"
	if pattern {
		idx, own, kind = h.patterns, &c.psubs, "psubscribe"
	}
	if *own == nil {
		*own = make(map[string]struct{})
	}
	if _, dup := (*own)[name]; !dup {
		(*own)[name] = struct{}{}
		set := idx[name]
		if set == nil {
			set = make(map[*client]struct{})
			idx[name] = set
		}
		set[c] = struct{}{}
		h.n.Add(1)
	}
	c.nsub.Store(int32(len(c.subs)))
	c.npsub.Store(int32(len(c.psubs)))
	c.ob.push(subscriptionFrame(kind, name, true, len(c.subs)+len(c.psubs)), true)
}

// unsubscribe removes c from the names given, or from all of its
// channels (or patterns) when names is empty, queuing Redis' replies.
func (h *hub) unsubscribe(c *client, pattern bool, names [][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	own, kind := c.subs, "unsubscribe"
	if pattern {
		own, kind = c.psubs, "punsubscribe"
	}
	var list []string
	if len(names) == 0 {
		for name := range own {
			list = append(list, name)
		}
	} else {
		for _, n := range names {
			list = append(list, string(n))
		}
	}
	if len(list) == 0 {
		c.ob.push(subscriptionFrame(kind, "", false, len(c.subs)+len(c.psubs)), true)
		return
	}
	for _, name := range list {
		h.remove(c, pattern, name)
		c.ob.push(subscriptionFrame(kind, name, true, len(c.subs)+len(c.psubs)), true)
	}
}

// remove drops one subscription; h.mu must be held.
func (h *hub) remove(c *client, pattern bool, name string) {
	idx, own := h.channels, c.subs
	if pattern {
		idx, own = h.patterns, c.psubs
	}
	if _, ok := own[name]; !ok {
		return
	}
	delete(own, name)
	if set := idx[name]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(idx, name)
		}
	}
	h.n.Add(-1)
	c.nsub.Store(int32(len(c.subs)))
	c.npsub.Store(int32(len(c.psubs)))
}

// removeClient drops every subscription of c (it is going away).
func (h *hub) removeClient(c *client) {
	if c.ob == nil {
		return // never subscribed
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for name := range c.subs {
		h.remove(c, false, name)
	}
	for name := range c.psubs {
		h.remove(c, true, name)
	}
}

// publish queues msg for every subscriber of channel and of a pattern
// matching it, and returns how many subscriptions received it. It never
// blocks on a subscriber: one with a full outbox is disconnected instead.
// Safe for concurrent use.
func (h *hub) publish(s *Server, channel, msg string) int {
	if h.n.Load() == 0 {
		return 0
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	if set := h.channels[channel]; len(set) > 0 {
		frame := messageFrame(channel, msg)
		for c := range set {
			c.deliver(s, frame)
			n++
		}
	}
	for pat, set := range h.patterns {
		if globMatch(pat, channel, false) {
			frame := pmessageFrame(pat, channel, msg)
			for c := range set {
				c.deliver(s, frame)
				n++
			}
		}
	}
	return n
}

func messageFrame(channel, msg string) []byte {
	b := make([]byte, 0, 32+len(channel)+len(msg))
	b = redcon.AppendArray(b, 3)
	b = redcon.AppendBulkString(b, "message")
	b = redcon.AppendBulkString(b, channel)
	return redcon.AppendBulkString(b, msg)
}

func pmessageFrame(pattern, channel, msg string) []byte {
	b := make([]byte, 0, 48+len(pattern)+len(channel)+len(msg))
	b = redcon.AppendArray(b, 4)
	b = redcon.AppendBulkString(b, "pmessage")
	b = redcon.AppendBulkString(b, pattern)
	b = redcon.AppendBulkString(b, channel)
	return redcon.AppendBulkString(b, msg)
}

func subscriptionFrame(kind, name string, hasName bool, count int) []byte {
	b := make([]byte, 0, 32+len(name))
	b = redcon.AppendArray(b, 3)
	b = redcon.AppendBulkString(b, kind)
	if hasName {
		b = redcon.AppendBulkString(b, name)
	} else {
		b = redcon.AppendNull(b)
	}
	return redcon.AppendInt(b, int64(count))
}

// deliver queues a published frame for c, or disconnects c if it has too
// many pending (Redis' client-output-buffer-limit pubsub). Called under
// hub.mu (read), so never blocks.
func (c *client) deliver(s *Server, frame []byte) {
	if c.ob.push(frame, false) {
		return
	}
	if c.dropped.Swap(true) {
		return
	}
	s.pubsubDrops.Add(1)
	s.log.Warn("server: subscriber lagging beyond the pub/sub backlog; disconnecting it",
		"client", c.id, "remote", c.raddr, "backlog", s.backlog)
	c.ob.close(true)
	if c.lp != nil {
		c.lp.post(c) // the loop closes it
		return
	}
	// Past deadlines end the writer's Write and the reader's Read at once
	// (the reader's goroutine then cleans up and closes the socket);
	// closing the socket here would wait for the writer's Write to unwind,
	// under hub.mu.
	past := time.Unix(1, 0)
	c.conn.SetWriteDeadline(past)
	c.conn.SetReadDeadline(past)
}

var errOutboxClosed = errors.New("server: connection closing")

// outbox is a subscriber's queue of encoded frames (published messages
// and the client's own replies, in order) and the goroutine that writes
// them, so that publishers never wait for the socket.
//
// A loop's client (loop.go) has an outbox with no goroutine: its loop
// takes the frames and writes them, posted by push when the queue stops
// being empty.
type outbox struct {
	conn  net.Conn
	limit int
	c     *client // with a loop: the client, posted to c.lp

	mu      sync.Mutex
	cond    sync.Cond // signalled when q grows, pending shrinks, or closed
	q       [][]byte
	pending int // frames queued or being written
	closed  bool
	failed  bool // a write failed, or the client was dropped
	done    chan struct{}
}

func newOutbox(conn net.Conn, limit int) *outbox {
	o := &outbox{conn: conn, limit: limit, done: make(chan struct{})}
	o.cond.L = &o.mu
	go o.run()
	return o
}

// newLoopOutbox is the outbox of a loop's client.
func newLoopOutbox(c *client, limit int) *outbox {
	o := &outbox{limit: limit, c: c, done: make(chan struct{})}
	o.cond.L = &o.mu
	return o
}

// take returns the queued frames, for the loop to write.
func (o *outbox) take() [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.q
	o.q = nil
	o.pending -= len(q)
	return q
}

// push queues b. A published message (reply false) is refused when limit
// frames are pending: push returns false and the caller drops the client.
// A reply is always queued (the client's goroutine waits for room
// afterwards, in waitRoom, never while holding hub.mu).
func (o *outbox) push(b []byte, reply bool) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return true
	}
	if !reply && o.pending >= o.limit {
		o.mu.Unlock()
		return false
	}
	o.q = append(o.q, b)
	o.pending++
	first := len(o.q) == 1
	o.mu.Unlock()
	if o.c != nil {
		if first {
			o.c.lp.post(o.c)
		}
		return true
	}
	o.cond.Broadcast()
	return true
}

// pushReply queues the client's own replies, then waits while the outbox
// is over its limit: a subscriber that pipelines commands without reading
// is slowed down like any client whose socket is full.
func (o *outbox) pushReply(b []byte) error {
	if b != nil {
		o.push(b, true)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	// A loop's client does not wait: its loop reads no more from it while
	// its replies wait for the socket.
	for o.c == nil && o.pending > o.limit && !o.closed {
		o.cond.Wait()
	}
	if o.failed {
		return errOutboxClosed
	}
	return nil
}

// close stops the outbox: the writer writes what is queued (unless
// discard) and ends. A final drain waits at most 5 s for the peer to read.
func (o *outbox) close(discard bool) {
	o.mu.Lock()
	if discard {
		o.q = nil
		o.failed = true
	}
	already := o.closed
	o.closed = true
	o.mu.Unlock()
	if o.c != nil {
		// No writer to end: the loop writes what it took before it
		// closes the client, and drops the rest.
		if !already {
			close(o.done)
		}
		return
	}
	if !already && !discard {
		o.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	}
	o.cond.Broadcast()
}

func (o *outbox) run() {
	defer close(o.done)
	for {
		o.mu.Lock()
		for len(o.q) == 0 && !o.closed {
			o.cond.Wait()
		}
		if len(o.q) == 0 || o.failed {
			o.mu.Unlock()
			return
		}
		batch := o.q
		o.q = nil
		o.mu.Unlock()

		n := len(batch)
		bufs := net.Buffers(batch)
		_, err := bufs.WriteTo(o.conn) // one writev for the batch

		o.mu.Lock()
		o.pending -= n
		if err != nil {
			o.failed = true
			o.closed = true
			o.q = nil
		}
		o.mu.Unlock()
		o.cond.Broadcast()
		if err != nil {
			o.conn.Close() // the reader then sees the end too
			return
		}
	}
}

// enterPubSub gives c its outbox (and writer) before its first
// subscription: replies already pending are written first, directly.
func (c *client) enterPubSub() bool {
	if c.ob != nil {
		return true
	}
	if err := c.flush(); err != nil {
		c.quit = true
		return false
	}
	if c.lp != nil {
		c.ob = newLoopOutbox(c, c.s.backlog)
	} else {
		c.ob = newOutbox(c.conn, c.s.backlog)
	}
	return true
}

func cmdSubscribe(c *client, args [][]byte)  { c.subscribe(args, false) }
func cmdPSubscribe(c *client, args [][]byte) { c.subscribe(args, true) }

func (c *client) subscribe(args [][]byte, pattern bool) {
	if !c.enterPubSub() {
		return
	}
	if c.flush() != nil { // earlier replies of the batch, in order
		c.quit = true
		return
	}
	for _, name := range args[1:] {
		c.s.hub.subscribe(c, pattern, string(name))
	}
	if c.ob.pushReply(nil) != nil { // wait for room, outside hub.mu
		c.quit = true
	}
}

func cmdUnsubscribe(c *client, args [][]byte)  { c.unsubscribe(args, false) }
func cmdPUnsubscribe(c *client, args [][]byte) { c.unsubscribe(args, true) }

func (c *client) unsubscribe(args [][]byte, pattern bool) {
	if c.ob == nil { // never subscribed: nothing to remove, answer directly
		kind := "unsubscribe"
		if pattern {
			kind = "punsubscribe"
		}
		if len(args) == 1 {
			c.out = append(c.out, subscriptionFrame(kind, "", false, 0)...)
		}
		for _, name := range args[1:] {
			c.out = append(c.out, subscriptionFrame(kind, string(name), true, 0)...)
		}
		return
	}
	if c.flush() != nil {
		c.quit = true
		return
	}
	c.s.hub.unsubscribe(c, pattern, args[1:])
	if c.ob.pushReply(nil) != nil {
		c.quit = true
	}
}

func cmdPublish(c *client, args [][]byte) {
	c.writeInt(int64(c.s.hub.publish(c.s, string(args[1]), string(args[2]))))
}
