//go:build linux

package server

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// loop is one epoll event loop: a goroutine that serves many clients,
// reading each one's socket when epoll reports it readable, running every
// complete command read, and writing the replies, with one read(2) and one
// write(2) a batch, as Redis does. A goroutine per client (conn.go's serve)
// pays, per unpipelined request, a read that finds nothing (Go's net reads
// before it waits), a park and a wake-up, and the scheduler's work between
// them; docs/evidence/eventloop measured that as most of the gap to
// redis-server's CPU per request.
//
// A client's fd is a dup of the accepted connection's, which is then
// closed (removing it from Go's poller), so the loop alone polls it; the
// dup shares the original's O_NONBLOCK file status. Level-triggered epoll:
// a client is read once per event, and epoll reports it again while it has
// more. A client whose replies the socket did not take is watched for
// EPOLLOUT instead of EPOLLIN until they are written, so a client that
// does not read stops being read (as a goroutine blocked in Write does),
// and its replies waiting in memory stay within one batch's.
//
// Every client field is the loop goroutine's alone once the client is
// registered, except what conn.go marks as read by others (atomics) and
// the outbox (its own mutex). Other goroutines reach the loop only through
// post and wake (the tasks list, under mu, and an eventfd): the accept
// path hands it new clients, a publisher the subscribers it queued frames
// for, Shutdown and Close their orders.
type loop struct {
	s      *Server
	epfd   int
	wakefd int // eventfd: written by wake, read by the loop
	events []unix.EpollEvent
	conns  map[int32]*client // registered clients by fd; loop goroutine only
	tick   time.Time         // when idle and stuck clients were last checked
	// now is read once as epoll_wait returns, for everything the
	// iteration stamps (lastActive, the sweep): a clock read per
	// iteration, not per client, as Redis caches its clock per event-loop
	// turn. A long command makes it stale by as much for the clients
	// served after it in that turn.
	now time.Time
	// lingering counts the clients closing in finishClose's way.
	lingering int
	discard   [4096]byte // what lingering clients send is read into it

	mu       sync.Mutex
	tasks    []*client // clients with news for the loop (new, frames queued, dropped)
	signaled bool      // wakefd has been written since the loop last read it
	force    bool      // close every client now (Close, or Shutdown's ctx ended)
	exited   bool      // run has returned: wakefd is closed (its number may be reused)
}

// closeGrace bounds how long a closing client's last replies may wait for
// it to read them (the goroutine engine's finalError and outbox drain wait
// as long, or less).
const closeGrace = 5 * time.Second

// newLoops makes n loops, or returns nil (the goroutine engine is used) if
// epoll or eventfd cannot be had.
func newLoops(s *Server, n int) []*loop {
	loops := make([]*loop, 0, n)
	for range n {
		lp, err := newLoop(s)
		if err != nil {
			s.log.Warn("server: no event loop; serving a goroutine per client", "err", err)
			for _, l := range loops {
				unix.Close(l.epfd)
				unix.Close(l.wakefd)
			}
			return nil
		}
		loops = append(loops, lp)
	}
	return loops
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, err
	}
	return &loop{
		s:      s,
		epfd:   epfd,
		wakefd: wakefd,
		events: make([]unix.EpollEvent, 256),
		conns:  make(map[int32]*client),
	}, nil
}

// detach takes the socket out of nc for a loop: a dup of its fd, with nc
// closed. ok is false when nc is not a *net.TCPConn or *net.UnixConn (a
// TLS connection, a wrapper, an in-memory pipe): it is then served by a
// goroutine, untouched.
func detach(nc net.Conn) (fd int, ok bool) {
	// Only the standard library's own sockets: a wrapper (counting,
	// PROXY protocol, bytes it has peeked) may embed one, and reading
	// its fd would bypass the wrapper.
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return -1, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, false
	}
	fd = -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || derr != nil {
		return -1, false
	}
	// O_NONBLOCK is the open file's, shared with the original; set it
	// anyway in case a listener handed out a blocking socket.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, false
	}
	nc.Close()
	return fd, true
}

// fdConn reads a loop client's socket, for its guard.
type fdConn int

func (fd fdConn) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(fd), p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err // unix.EAGAIN included
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// writeFD writes what the socket takes of b, without waiting.
func writeFD(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := unix.Write(fd, b[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return n, nil
		case err != nil:
			return n, err
		}
		n += k
	}
	return n, nil
}

// post hands c to the loop, which then registers it (a new client),
// writes its queued frames, or closes it (dropped). Safe for concurrent
// use; never blocks on the loop.
func (lp *loop) post(c *client) {
	lp.mu.Lock()
	if !c.posted {
		c.posted = true
		lp.tasks = append(lp.tasks, c)
	}
	lp.signalLocked()
	lp.mu.Unlock()
}

// wake makes the loop look at the server's state (Shutdown, Close).
func (lp *loop) wake() {
	lp.mu.Lock()
	lp.signalLocked()
	lp.mu.Unlock()
}

// forceClose makes the loop close every client at once.
func (lp *loop) forceClose() {
	lp.mu.Lock()
	lp.force = true
	lp.signalLocked()
	lp.mu.Unlock()
}

func (lp *loop) signalLocked() {
	if lp.signaled || lp.exited {
		return
	}
	lp.signaled = true
	var one = [8]byte{1}
	// The counter cannot overflow (the loop reads it before this is
	// written again), so the write does not fail with EAGAIN.
	unix.Write(lp.wakefd, one[:])
}

// run is the loop's goroutine. It ends once the server is shut down and
// every client it served is gone.
func (lp *loop) run() {
	s := lp.s
	defer s.wg.Done()
	defer func() {
		// Shutdown or Close may still wake the loop after it ends: mark
		// it first, so that nothing is written to a reused fd number.
		lp.mu.Lock()
		lp.exited = true
		lp.mu.Unlock()
		unix.Close(lp.wakefd)
		unix.Close(lp.epfd)
	}()
	lp.now = time.Now()
	lp.tick = lp.now
	for {
		n, err := unix.EpollWait(lp.epfd, lp.events, lp.timeout())
		lp.now = time.Now()
		if err != nil && err != unix.EINTR {
			// Only EBADF, EFAULT or EINVAL, which a correct loop never
			// gets: close everything rather than spin.
			s.log.Error("server: epoll_wait failed; closing the loop's clients", "err", err)
			for _, c := range lp.conns {
				lp.close(c)
			}
			time.Sleep(10 * time.Millisecond) // no spinning if it persists
		}
		woken := false
		for i := range max(n, 0) {
			ev := &lp.events[i]
			if int(ev.Fd) == lp.wakefd {
				woken = true
				continue
			}
			if c := lp.conns[ev.Fd]; c != nil {
				lp.handle(c, ev.Events)
			}
		}
		// Every post signals the eventfd (or finds it signalled and not
		// yet read), so tasks come only with a wake-up: no lock is taken
		// in an iteration without one.
		if woken {
			var b [8]byte
			unix.Read(lp.wakefd, b[:])
			force, tasks := lp.takeTasks()
			for _, c := range tasks {
				lp.task(c, force)
			}
			if force {
				for _, c := range lp.conns {
					lp.close(c)
				}
			}
		}
		if lp.now.Sub(lp.tick) >= lp.tickEvery() {
			lp.tick = lp.now
			lp.sweep(lp.now)
		}
		if s.shutdown.Load() {
			lp.shutdownStep()
			if len(lp.conns) == 0 && lp.idleAfterShutdown() {
				return
			}
		}
	}
}

// takeTasks empties the task list (and the eventfd's signal) under mu.
func (lp *loop) takeTasks() (force bool, tasks []*client) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.signaled = false
	tasks = lp.tasks
	lp.tasks = nil
	for _, c := range tasks {
		c.posted = false
	}
	return lp.force, tasks
}

// idleAfterShutdown reports whether nothing more can come to the loop:
// accept posts a client under s.mu only while the server is not shut down,
// so once shutdown is seen, an empty task list stays empty.
func (lp *loop) idleAfterShutdown() bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return len(lp.tasks) == 0
}

// timeout is epoll_wait's, in milliseconds: until the next sweep.
func (lp *loop) timeout() int {
	d := lp.tickEvery() - lp.now.Sub(lp.tick)
	return max(int(d/time.Millisecond), 1)
}

// tickEvery is how often idle and stuck clients are looked for: a tenth of
// the idle timeout, within [10 ms, 1 s], and every 10 ms while a client
// lingers (finishClose). CONFIG SET timeout may change it
// at any time; the next sweep, at most a second away, follows it.
func (lp *loop) tickEvery() time.Duration {
	if lp.lingering > 0 {
		return 10 * time.Millisecond // lingering clients close soon
	}
	idle := time.Duration(lp.s.idle.Load())
	if idle <= 0 {
		return time.Second
	}
	return min(max(idle/10, 10*time.Millisecond), time.Second)
}

// task acts on a posted client: registers it, closes it, or writes the
// frames queued for it.
func (lp *loop) task(c *client, force bool) {
	defer lp.recoverClient(c)
	if c.gone {
		return // posted by a publisher just before it went
	}
	if !c.registered {
		if lp.s.obs != nil {
			lp.s.obs.Connected() // here, so that it precedes Disconnected
		}
		if force || c.dropped.Load() {
			c.teardown()
			return
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
		if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			lp.s.log.Warn("server: cannot poll client; closing it", "client", c.id, "err", err)
			c.teardown()
			return
		}
		c.registered = true
		lp.conns[int32(c.fd)] = c
		return
	}
	if c.dropped.Load() {
		lp.close(c)
		return
	}
	if err := c.flush(); err != nil {
		c.writeFailed(err)
		lp.close(c)
	}
}

// handle serves one epoll event of c.
func (lp *loop) handle(c *client, events uint32) {
	defer lp.recoverClient(c)
	if c.dropped.Load() {
		lp.close(c)
		return
	}
	if c.outWait {
		if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		err := c.writePending()
		if err == nil && !c.outWait {
			err = c.flush() // a subscriber's frames queued meanwhile: one batch a turn
		}
		if err != nil {
			c.writeFailed(err)
			lp.close(c)
			return
		}
		if c.outWait {
			return // still more than the socket takes
		}
		if c.closing {
			lp.finishClose(c)
			return
		}
		// Written out: run what was read and not yet run.
		lp.serve(c, c.readErr)
		return
	}
	if c.lingering {
		lp.linger(c)
		return
	}
	if c.closing {
		return // waiting only for replies to drain
	}
	n, rerr := c.rd.fill()
	if rerr == unix.EAGAIN {
		rerr = nil
	}
	if n > 0 {
		c.lastActive.Store(lp.now.UnixNano()) // idle counts from the last byte read or written
	}
	lp.serve(c, rerr)
}

// serve runs the complete commands c's reader holds, writes their replies,
// and closes c if it is done (QUIT, the end of its stream, an error). It
// stops early, keeping the rest for when they are written, once replies
// wait for the socket.
func (lp *loop) serve(c *client, rerr error) {
	c.readErr = nil
	for !c.quit {
		if c.outWait {
			// Replies wait for the socket: run no more until they are
			// written (a goroutine would be blocked in Write), so that a
			// client that does not read holds one batch's replies at most.
			c.readErr = rerr // resumed by handle once written
			return
		}
		args, ok, perr := c.rd.next()
		if perr != nil {
			c.readFailed(perr)
			lp.closeAfterWrite(c)
			return
		}
		if !ok {
			break
		}
		c.exec(args)
		if len(c.out) >= flushAt {
			if err := c.flush(); err != nil {
				c.writeFailed(err)
				lp.close(c)
				return
			}
		}
	}
	if err := c.flush(); err != nil {
		c.writeFailed(err)
		lp.close(c)
		return
	}
	if rerr == nil && c.g.err != nil {
		// The guard refused a request after passing on the ones before
		// it, which have now run: refuse it now (a goroutine's next read
		// would), since the client may send nothing more.
		rerr = c.g.err
	}
	switch {
	case c.quit:
		lp.closeAfterWrite(c)
	case rerr != nil:
		c.readFailed(rerr)
		lp.closeAfterWrite(c)
	case lp.s.shutdown.Load():
		lp.closeAfterWrite(c)
	}
}

// closeAfterWrite closes c once its replies are written, or closeGrace
// from now if it does not read them.
func (lp *loop) closeAfterWrite(c *client) {
	if c.flush() != nil {
		lp.close(c)
		return
	}
	if !c.outWait {
		lp.finishClose(c)
		return
	}
	if !c.closing {
		c.closing = true
		c.closeBy = lp.now.Add(closeGrace)
	}
}

// finishClose closes c, whose replies are all written. If the client has
// sent bytes that will not be read (it pipelined past a QUIT, or was
// still sending at a Shutdown), or may yet send them while the kernel
// still holds replies it has not delivered (more of a pipeline still on
// its way), closing now would make the kernel answer with a reset, which
// throws away the replies it has not yet delivered; so c lingers instead, as HTTP servers do: its write side is shut (the
// client reads its replies, then the end), what it sends is discarded,
// and it is closed once the kernel holds no reply undelivered, or the
// client closes, or lingerMax has passed.
func (lp *loop) finishClose(c *client) {
	if !mustLinger(c.fd) {
		lp.close(c)
		return
	}
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		lp.close(c)
		return
	}
	c.closing, c.lingering = true, true
	c.closeBy = lp.now.Add(lingerMax)
	lp.lingering++
}

// lingerMax bounds a closing client's linger (finishClose).
const lingerMax = 2 * time.Second

// linger discards what a lingering client sent, and closes it at its end
// or once its replies are delivered.
func (lp *loop) linger(c *client) {
	for {
		n, err := unix.Read(c.fd, lp.discard[:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil || n == 0 {
			lp.close(c)
			return
		}
	}
	lp.lingerDone(c, lp.now)
}

// lingerDone closes a lingering c whose replies the peer has all
// acknowledged (nothing is left in the socket's send queue), or whose
// time is up.
func (lp *loop) lingerDone(c *client, now time.Time) {
	if n, err := unix.IoctlGetInt(c.fd, unix.SIOCOUTQ); err != nil || n == 0 || now.After(c.closeBy) {
		lp.close(c)
	}
}

// close tears c down at once.
func (lp *loop) close(c *client) {
	if c.lingering {
		c.lingering = false
		lp.lingering--
	}
	if c.registered {
		delete(lp.conns, int32(c.fd))
		unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		c.registered = false
	}
	c.teardown()
}

// recoverClient closes c after a panic in the loop's own code (a command's
// panic is answered by dispatch and does not reach here), so that one
// client's bug does not take the others down.
func (lp *loop) recoverClient(c *client) {
	if r := recover(); r != nil {
		lp.s.log.Error("server: panic serving client", "client", c.id, "panic", r, "stack", string(debug.Stack()))
		if !c.gone {
			lp.close(c)
		}
	}
}

// sweep closes idle clients (Config.IdleTimeout; subscribers are exempt)
// and closing ones whose last replies waited closeGrace unread.
func (lp *loop) sweep(now time.Time) {
	idle := time.Duration(lp.s.idle.Load())
	for _, c := range lp.conns {
		switch {
		case c.lingering:
			lp.lingerDone(c, now)
		case !c.closeBy.IsZero(): // closing, or shut down and not reading
			if now.After(c.closeBy) {
				lp.close(c)
			}
		case idle <= 0 || c.subscribed():
		case now.UnixNano()-c.lastActive.Load() <= int64(idle):
		case c.delivering():
			// Replies are still reaching the client from the socket's
			// queue (megabytes of it, which epoll reports writable only
			// once much has drained, or which the loop finished writing
			// long ago): it reads, so it is not idle.
			c.lastActive.Store(now.UnixNano())
		default:
			lp.s.log.Debug("server: closing idle client", "client", c.id, "remote", c.raddr)
			lp.close(c)
		}
	}
}

// shutdownStep closes, once shut down, every client that has no replies
// waiting. One whose replies wait is closed by serve once they are written
// and it has run the requests it had read (Shutdown's promise), or by the
// sweep if it has not read them closeGrace after the shutdown (as a
// goroutine's write gives up).
func (lp *loop) shutdownStep() {
	for _, c := range lp.conns {
		switch {
		case c.closing:
		case !c.outWait:
			lp.closeAfterWrite(c)
		case c.closeBy.IsZero():
			c.closeBy = lp.now.Add(closeGrace)
		}
	}
}

// loopFlush is flush for a loop's client: the pending replies are written
// as far as the socket takes them, the rest kept in wbuf (and EPOLLOUT
// watched) behind anything already waiting there. A subscriber's replies
// go through its outbox, behind the frames queued before them, and each
// call takes what is queued once: frames queued after that post the
// client again, so a busy subscriber gets one batch a turn and does not
// hold up its loop.
func (c *client) loopFlush() error {
	if c.ob != nil {
		if c.closing {
			// After QUIT (or an error, or a shutdown) nothing more is
			// written, as Redis stops a client's output there; a
			// lingering client's write side is shut.
			c.ob.take()
			c.out = c.out[:0]
			return nil
		}
		if len(c.out) > 0 {
			c.ob.push(c.out, true) // the outbox owns the slice now
			c.out = nil
		}
		if c.outWait {
			return nil // taken when wbuf is written
		}
		for _, f := range c.ob.take() {
			c.wbuf = append(c.wbuf, f...)
		}
		return c.writePending()
	}
	if len(c.out) == 0 {
		return nil
	}
	var err error
	if c.outWait {
		c.wbuf = append(c.wbuf, c.out...)
		err = c.waiting()
	} else {
		// The common case: written straight from out, with no copy.
		var n int
		if n, err = writeFD(c.fd, c.out); err == nil && n < len(c.out) {
			c.wbuf = append(c.wbuf[:0], c.out[n:]...)
			c.woff = 0
			err = c.waiting()
		}
	}
	if cap(c.out) > 1<<20 {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	return err
}

// writePending writes wbuf as far as the socket takes it.
func (c *client) writePending() error {
	if c.woff < len(c.wbuf) {
		n, err := writeFD(c.fd, c.wbuf[c.woff:])
		if err != nil {
			return err
		}
		if n > 0 {
			c.lastActive.Store(c.lp.now.UnixNano())
		}
		c.woff += n
	}
	if c.woff == len(c.wbuf) {
		if cap(c.wbuf) > 1<<20 {
			c.wbuf = nil
		} else {
			c.wbuf = c.wbuf[:0]
		}
		c.woff = 0
	}
	return c.waiting()
}

// waiting records what wbuf holds (CLIENT LIST's omem) and watches the
// socket for EPOLLOUT while it holds anything, for EPOLLIN once it is
// empty.
func (c *client) waiting() error {
	n := len(c.wbuf) - c.woff
	c.omem.Store(int64(n))
	return c.watchOut(n > 0)
}

// watchOut sets c's epoll interest: EPOLLOUT while replies wait, else
// EPOLLIN.
func (c *client) watchOut(on bool) error {
	if c.outWait == on {
		return nil
	}
	events := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if on {
		events = unix.EPOLLOUT
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(c.fd)}
	if err := unix.EpollCtl(c.lp.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		return err
	}
	c.outWait = on
	return nil
}

// delivering reports whether the socket holds replies not yet
// acknowledged and that queue has changed since the last call (made once
// an idle timeout has passed): the client is reading them. A client that
// stops reading is closed at the next timeout.
func (c *client) delivering() bool {
	q, err := unix.IoctlGetInt(c.fd, unix.SIOCOUTQ)
	moved := err == nil && q > 0 && q != c.outq
	c.outq = q
	return moved
}

// closeFD closes a loop client's socket.
func (c *client) closeFD() { unix.Close(c.fd) }

// lingerConn is finishClose for a client with a goroutine of its own,
// before its connection is closed: if the client sent bytes that will not
// be read, the write side is shut and the connection read (and discarded)
// until the kernel holds no reply undelivered, the client closes, or
// lingerMax has passed. It waits on the client's goroutine only.
func lingerConn(nc net.Conn) {
	hc, ok := nc.(interface {
		syscall.Conn
		CloseWrite() error
	})
	if !ok {
		return
	}
	if rc, err := hc.SyscallConn(); err != nil || rc.Control(func(fd uintptr) { ok = mustLinger(int(fd)) }) != nil || !ok {
		return
	}
	if hc.CloseWrite() != nil {
		return
	}
	deadline := time.Now().Add(lingerMax)
	var buf [4096]byte
	for time.Now().Before(deadline) && sockIoctl(hc, unix.SIOCOUTQ) > 0 {
		next := time.Now().Add(10 * time.Millisecond)
		if next.After(deadline) {
			next = deadline
		}
		nc.SetReadDeadline(next)
		if _, err := nc.Read(buf[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
	}
}

// mustLinger reports whether closing socket fd now could lose replies:
// it holds input that will not be read, or output not yet delivered (while
// it does, more input may arrive, and a closed socket answers it with a
// reset that throws that output away). A failed ioctl counts as nothing
// held.
func mustLinger(fd int) bool {
	for _, req := range []uint{unix.SIOCINQ, unix.SIOCOUTQ} {
		if n, err := unix.IoctlGetInt(fd, req); err == nil && n > 0 {
			return true
		}
	}
	return false
}

// sockIoctl returns the socket's SIOCINQ or SIOCOUTQ count, or -1.
func sockIoctl(sc syscall.Conn, req uint) int {
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	if rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), req); err == nil {
			n = v
		}
	}) != nil {
		return -1
	}
	return n
}

// loopsSupported: Linux has the event loop.
const loopsSupported = true
