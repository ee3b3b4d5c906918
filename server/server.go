package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardkv/shardkv"
)

// Defaults for the zero values of [Config].
const (
	// DefaultMaxClients is the client limit when Config.MaxClients is 0
	// (Redis' maxclients default).
	DefaultMaxClients = 10000
	// DefaultMaxRequestBytes is the bulk-length limit when
	// Config.MaxRequestBytes is 0 (Redis' proto-max-bulk-len default).
	DefaultMaxRequestBytes = 512 << 20
	// DefaultPubSubBacklog is the number of messages a subscriber may have
	// queued when Config.PubSubBacklog is 0.
	DefaultPubSubBacklog = 4096
	// DefaultVersion is the version reported when Config.Version is "".
	// It is a Redis version so that clients enable the features the
	// server speaks (RESP2, Redis 7 commands and replies).
	DefaultVersion = "7.0.0"
)

// inlineMax is the longest inline (telnet-style) request line accepted, as
// Redis' PROTO_INLINE_MAX_SIZE.
const inlineMax = 64 << 10

// Config configures a [Server]. The zero value is usable: no password,
// protected mode on, Redis' limits, no idle timeout, no keyspace
// notifications. A Config is copied by [New]; changing it afterwards has
// no effect (use CONFIG SET at run time).
type Config struct {
	// Password is the requirepass: clients must AUTH (or HELLO ... AUTH)
	// with it before other commands. "" means none. It is compared in
	// constant time.
	Password string
	// DisableProtectedMode turns Redis' protected mode off. With it on
	// (the default) and no Password, clients that do not come from a
	// loopback address (or a Unix socket) get Redis 7's DENIED error and
	// are closed.
	DisableProtectedMode bool
	// MaxClients is the most clients served at once; 0 means
	// DefaultMaxClients. One more is told "ERR max number of clients
	// reached" and closed.
	MaxClients int
	// MaxRequestBytes is the longest bulk string a request may carry;
	// 0 means DefaultMaxRequestBytes (Redis' proto-max-bulk-len). A whole
	// request may be up to twice that (as Redis' client-query-buffer-limit
	// is twice its proto-max-bulk-len), an inline request 64 KiB. A client
	// that sends more gets Redis' protocol error and is closed; others are
	// not affected.
	MaxRequestBytes int64
	// IdleTimeout closes a client that sent nothing for that long (Redis'
	// timeout); 0 means never. Clients in subscribe mode are exempt, and
	// so is one still reading replies. On an event loop, a client that
	// stops reading its replies is closed too (as in Redis); with a
	// goroutine per client it waits in the write.
	IdleTimeout time.Duration
	// NotifyKeyspaceEvents are the initial notify-keyspace-events flags,
	// as CONFIG SET takes them ("" none, e.g. "KEA"). An invalid string is
	// logged and taken as "".
	NotifyKeyspaceEvents string
	// PubSubBacklog is how many messages may be queued for a subscriber
	// before it is disconnected (Redis' client-output-buffer-limit
	// pubsub); 0 means DefaultPubSubBacklog.
	PubSubBacklog int
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
	// Observer receives per-command and per-connection events; nil none.
	Observer Observer
	// Version is the version INFO server and HELLO report; "" means
	// DefaultVersion.
	Version string
	// ClusterTimeout bounds each backend call a command makes when the
	// store is clustered (shardkv.WithBackend); 0 means
	// DefaultClusterTimeout. A command whose call times out is answered
	// with the store's error; a write that timed out may or may not have
	// been applied (etcdkv.ErrAmbiguous says which errors mean that).
	ClusterTimeout time.Duration
	// EventLoops is how many epoll event loops serve the clients, each a
	// goroutine serving its share of them (Linux; see loop.go): 0 means
	// DefaultEventLoops(). A negative value, another OS, a clustered store
	// (whose commands wait on the network, which would stall a loop's
	// every client) and a connection that is not a *net.TCPConn or
	// *net.UnixConn (TLS, a wrapper, an in-memory pipe) get a goroutine
	// per client instead. The replies and every behaviour are the same
	// either way; a loop costs less CPU per request when clients wait for
	// each reply. A command runs on its client's loop: a slow one (KEYS
	// over a large store, FLUSHALL) delays the other clients of that loop,
	// as it delays every client in Redis.
	EventLoops int
}

// DefaultEventLoops is the number of event loops when Config.EventLoops
// is 0: half of GOMAXPROCS, at least one. The other half is left to the
// store's own work (compaction, expiry, the keyspace watch) and to the
// program embedding the server; on two cores one loop also measured the
// least CPU per request (docs/evidence/eventloop).
func DefaultEventLoops() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// Observer receives the server's events, for metrics. Its methods are
// called from the server's connection goroutines, concurrently: they must
// be safe for concurrent use and cheap, since they run on the path of
// every command.
type Observer interface {
	// Command is called once per command the server dispatched (not for
	// unknown commands), with its lower-case name ("get", "config"), the
	// time it took, and whether it was answered with an error.
	Command(name string, d time.Duration, failed bool)
	// Connected is called when a client is accepted.
	Connected()
	// Disconnected is called when an accepted client has gone away; it
	// pairs with Connected.
	Disconnected()
	// Rejected is called when a connection is refused before it is
	// served: reason is "maxclients" or "protected-mode".
	Rejected(reason string)
}

// ErrServerClosed is what [Server.Serve] returns after [Server.Shutdown] or
// [Server.Close].
var ErrServerClosed = errors.New("server: closed")

// Server serves one [shardkv.Store] over the Redis protocol. Create it with
// [New]; its methods are safe for concurrent use. It never closes the store.
type Server struct {
	store *shardkv.Store
	// cluster is store.IsClustered(): commands go to the backend through
	// the cluster command table (cluster.go).
	cluster        bool
	clusterTimeout time.Duration
	// prefetch is store.Prefetch, each client's reader's hint; nil for
	// a clustered store, whose keys are not in its memory.
	prefetch func(keys ...string)
	log      *slog.Logger
	obs      Observer
	version  string
	backlog  int
	started  time.Time
	runID    string

	// Settings CONFIG SET may change while clients run: each is one
	// atomic, read where it is applied.
	password   atomic.Pointer[secret] // nil: no password
	protected  atomic.Bool
	maxClients atomic.Int64
	maxRequest atomic.Int64
	idle       atomic.Int64 // time.Duration

	// The event loops (loop.go), started by the first Serve; nil for the
	// goroutine engine. nloops is how many were asked for.
	nloops int
	loops  []*loop

	// shutdown is set once, under mu, by Shutdown or Close: accept
	// refuses new clients and each client goroutine stops between
	// batches of commands.
	shutdown atomic.Bool
	done     chan struct{} // closed with shutdown

	mu        sync.Mutex
	listeners map[*net.Listener]struct{} // by pointer: a Listener may not be hashable
	clients   map[*client]struct{}
	serving   bool // Serve was called: the keyspace watch may run
	port      int
	// wg counts client goroutines and rejection writers; Add is only
	// called under mu while !shutdown, so Wait after shutdown is sound.
	wg sync.WaitGroup

	nextID atomic.Uint64

	// counters for INFO
	totalConns   atomic.Uint64
	rejected     atomic.Uint64
	closedCmds   atomic.Uint64 // commands of clients that went away
	pubsubDrops  atomic.Uint64 // subscribers dropped for lagging
	queryDrops   atomic.Uint64 // clients closed for too large requests
	notifyLost   atomic.Uint64 // keyspace events lost to the watch's lag
	notifyErrors atomic.Uint64

	hub    hub
	notify notifier
}

// secret is a password kept as its SHA-256, so that comparing takes the
// same time whatever the lengths (as Redis' ACL does).
type secret struct {
	plain string
	sum   [sha256.Size]byte
}

func newSecret(p string) *secret {
	if p == "" {
		return nil
	}
	return &secret{plain: p, sum: sha256.Sum256([]byte(p))}
}

// check compares in constant time.
func (s *secret) check(p []byte) bool {
	sum := sha256.Sum256(p)
	return subtle.ConstantTimeCompare(sum[:], s.sum[:]) == 1
}

// New returns a server for store configured by cfg. It starts nothing:
// [Server.Serve] does. store must stay open while the server serves.
func New(store *shardkv.Store, cfg Config) *Server {
	if store == nil {
		panic("server: nil store")
	}
	s := &Server{
		store:          store,
		cluster:        store.IsClustered(),
		clusterTimeout: cmp0(cfg.ClusterTimeout, DefaultClusterTimeout),
		log:            cfg.Logger,
		obs:            cfg.Observer,
		version:        cfg.Version,
		backlog:        cfg.PubSubBacklog,
		started:        time.Now(),
		runID:          newRunID(),
		done:           make(chan struct{}),
		listeners:      make(map[*net.Listener]struct{}),
		clients:        make(map[*client]struct{}),
	}
	if !s.cluster {
		s.prefetch = store.Prefetch
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.version == "" {
		s.version = DefaultVersion
	}
	if s.backlog <= 0 {
		s.backlog = DefaultPubSubBacklog
	}
	s.password.Store(newSecret(cfg.Password))
	s.protected.Store(!cfg.DisableProtectedMode)
	s.maxClients.Store(int64(cmp0(cfg.MaxClients, DefaultMaxClients)))
	s.maxRequest.Store(cmp0(cfg.MaxRequestBytes, DefaultMaxRequestBytes))
	s.idle.Store(int64(max(cfg.IdleTimeout, 0)))
	s.nloops = cfg.EventLoops
	if s.nloops == 0 {
		s.nloops = DefaultEventLoops()
	}
	if s.cluster || !loopsSupported {
		s.nloops = 0
	}
	s.hub.init()
	s.notify.s = s
	if cfg.NotifyKeyspaceEvents != "" {
		flags, ok := parseNotifyFlags(cfg.NotifyKeyspaceEvents)
		if !ok {
			s.log.Error("server: invalid NotifyKeyspaceEvents, notifications off", "flags", cfg.NotifyKeyspaceEvents)
			flags = 0
		}
		s.notify.flags.Store(flags)
	}
	return s
}

// EventLoops returns how many event loops serve (or, before Serve, will
// serve) the clients: 0 when each client has a goroutine of its own (see
// Config.EventLoops).
func (s *Server) EventLoops() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		return len(s.loops)
	}
	return max(s.nloops, 0)
}

func cmp0[T ~int | ~int64](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close, then returns ErrServerClosed; it returns
// another error if ln fails for good (temporary Accept errors are retried
// with a backoff). Serve closes ln when it returns. Several Serve calls
// may run at once, on different listeners.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[&ln] = struct{}{}
	first := !s.serving
	s.serving = true
	if first && s.nloops > 0 {
		s.loops = newLoops(s, s.nloops)
		for _, lp := range s.loops {
			s.wg.Add(1) // under mu while !shutdown, as wg's rule asks
			go lp.run()
		}
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && s.port == 0 {
		s.port = a.Port
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &ln)
		s.mu.Unlock()
		ln.Close()
	}()
	if first {
		s.notify.sync() // start the keyspace watch if flags ask for it
	}

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Probably temporary (EMFILE, ECONNABORTED): back off as
			// net/http does, waking up for a shutdown.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("server: accept failed; retrying", "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		s.accept(nc)
	}
}

// deniedMsg is Redis 7's protected-mode refusal.
const deniedMsg = "-DENIED Redis is running in protected mode because protected " +
	"mode is enabled and no password is set for the default user. " +
	"In this mode connections are only accepted from the loopback interface. " +
	"If you want to connect from external computers to Redis you " +
	"may adopt one of the following solutions: " +
	"1) Just disable protected mode sending the command " +
	"'CONFIG SET protected-mode no' from the loopback interface " +
	"by connecting to Redis from the same host the server is " +
	"running, however MAKE SURE Redis is not publicly accessible " +
	"from internet if you do so. Use CONFIG REWRITE to make this " +
	"change permanent. " +
	"2) Alternatively you can just disable the protected mode by " +
	"editing the Redis configuration file, and setting the protected " +
	"mode option to 'no', and then restarting the server. " +
	"3) If you started the server manually just for testing, restart " +
	"it with the '--protected-mode no' option. " +
	"4) Set up an authentication password for the default user. " +
	"NOTE: You only need to do one of the above things in order for " +
	"the server to start accepting connections from the outside.\r\n"

const maxClientsMsg = "-ERR max number of clients reached\r\n"

// isLoopback reports whether addr is a loopback IP address or a local
// (Unix socket, in-memory pipe) endpoint, the clients protected mode lets
// in.
func isLoopback(addr net.Addr) bool {
	if addr == nil {
		return false
	}
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	switch addr.Network() {
	case "unix", "unixpacket", "unixgram", "pipe":
		return true
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		host = addr.String()
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// admit decides whether a connection from remote may be served: "" yes,
// else the reason it is refused and the reply to send. It does not look
// at the client count (accept does, under mu).
func (s *Server) admit(remote net.Addr) (reason, reply string) {
	if s.protected.Load() && s.password.Load() == nil && !isLoopback(remote) {
		return "protected-mode", deniedMsg
	}
	return "", ""
}

func (s *Server) accept(nc net.Conn) {
	reason, reply := s.admit(nc.RemoteAddr())
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if reason == "" && int64(len(s.clients)) >= s.maxClients.Load() {
		reason, reply = "maxclients", maxClientsMsg
	}
	if reason != "" {
		s.wg.Add(1)
		s.mu.Unlock()
		s.reject(nc, reason, reply)
		return
	}
	c := newClient(s, nc)
	s.clients[c] = struct{}{}
	s.wg.Add(1)
	onLoop := false
	if len(s.loops) > 0 {
		if fd, ok := detach(nc); ok {
			// Posted under mu, before a Shutdown can be seen: a loop
			// that has seen the shutdown and found no tasks may end (see
			// loop.idleAfterShutdown). The loop calls Observer.Connected.
			lp := s.loops[c.id%uint64(len(s.loops))]
			c.onLoop(lp, fd)
			lp.post(c)
			onLoop = true
		}
	}
	s.mu.Unlock()
	s.totalConns.Add(1)
	if onLoop {
		return
	}
	if s.obs != nil {
		s.obs.Connected()
	}
	go c.serve()
}

// reject writes reply to nc and closes it, on its own goroutine so that a
// slow peer cannot stall the accept loop.
func (s *Server) reject(nc net.Conn, reason, reply string) {
	s.rejected.Add(1)
	if s.obs != nil {
		s.obs.Rejected(reason)
	}
	s.log.Warn("server: connection refused", "reason", reason, "remote", nc.RemoteAddr().String())
	go func() {
		defer s.wg.Done()
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write([]byte(reply))
		nc.Close()
	}()
}

// beginShutdown marks the server shut down, closes its listeners, stops
// the keyspace watch and returns the clients to stop.
func (s *Server) beginShutdown() []*client {
	s.mu.Lock()
	if !s.shutdown.Swap(true) {
		close(s.done)
	}
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, *ln)
	}
	cs := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		cs = append(cs, c)
	}
	loops := s.loops
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, lp := range loops {
		lp.wake() // each closes its clients as their replies are written
	}
	s.notify.sync() // shutdown is set: stops the watch
	return cs
}

// Shutdown stops the server gracefully: it closes the listeners, lets each
// client finish the commands it has already read (their replies are
// written), then closes it; idle clients are closed at once. It returns
// when every client is gone, or when ctx ends, in which case the remaining
// connections are closed forcibly (Close) and ctx's error is returned.
// Serve returns ErrServerClosed. Calling it again, or after Close, is
// harmless.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, c := range s.beginShutdown() {
		c.interrupt()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.closeClients()
		<-done
		return ctx.Err()
	}
}

// Close stops the server at once: listeners and every client connection
// are closed, without waiting for commands in flight to be answered. It
// returns when the server's goroutines have ended. Serve returns
// ErrServerClosed.
func (s *Server) Close() error {
	s.beginShutdown()
	s.closeClients()
	s.wg.Wait()
	return nil
}

func (s *Server) closeClients() {
	s.mu.Lock()
	cs := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		if c.lp == nil {
			cs = append(cs, c)
		}
	}
	loops := s.loops
	s.mu.Unlock()
	for _, c := range cs {
		c.conn.Close()
	}
	for _, lp := range loops {
		lp.forceClose()
	}
}

func newRunID() string {
	var b [20]byte
	// crypto/rand never fails on supported platforms.
	randRead(b[:])
	const hex = "0123456789abcdef"
	out := make([]byte, 40)
	for i, v := range b {
		out[2*i], out[2*i+1] = hex[v>>4], hex[v&15]
	}
	return string(out)
}

var pid = os.Getpid()
