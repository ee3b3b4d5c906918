package server

import (
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	noAuth    = "NOAUTH Authentication required."
	wrongPwd  = "WRONGPASS invalid username-password pair or user is disabled."
	helloAuth = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, Config{Password: "s3cret"})

	// Without credentials go-redis connects (HELLO fails over to RESP2),
	// and every command but AUTH/HELLO/QUIT is refused.
	c := e.client(func(o *redis.Options) { o.PoolSize = 1 })
	run(t, c, []step{
		{a("GET", "k"), errReply(noAuth)},
		{a("PING"), errReply(noAuth)},
		{a("CONFIG", "GET", "*"), errReply(noAuth)},
		{a("FOO"), errReply("ERR unknown command 'FOO', with args beginning with: ")},
		{a("GET"), arity("get")},
		{a("HELLO", "2"), errReply(helloAuth)},
		{a("AUTH", "wrong"), errReply(wrongPwd)},
		{a("AUTH", "default", "wrong"), errReply(wrongPwd)},
		{a("AUTH", "bob", "s3cret"), errReply(wrongPwd)},
		{a("GET", "k"), errReply(noAuth)},
		{a("AUTH", "s3cret"), "OK"},
		{a("SET", "k", "v"), "OK"},
		{a("AUTH", "default", "s3cret"), "OK"},
		{a("GET", "k"), "v"},
		{a("RESET"), "RESET"},
		{a("GET", "k"), errReply(noAuth)},
	})

	// go-redis with a password: HELLO 3 AUTH is NOPROTO, then AUTH.
	for _, proto := range []int{2, 3} {
		ok := e.client(func(o *redis.Options) { o.Password = "s3cret"; o.Protocol = proto })
		if v, err := ok.Get(ctx, "k").Result(); err != nil || v != "v" {
			t.Errorf("protocol %d: GET %q %v", proto, v, err)
		}
		bad := e.client(func(o *redis.Options) { o.Password = "nope"; o.Protocol = proto })
		if err := bad.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("protocol %d: wrong password: %v", proto, err)
		}
	}

	// HELLO 2 AUTH authenticates and answers.
	r := e.raw()
	r.send("GET k\r\n")
	r.expect("-" + noAuth + "\r\n")
	r.send("HELLO 2 AUTH default wrong\r\n")
	r.expect("-" + wrongPwd + "\r\n")
	r.send("HELLO 2 AUTH default s3cret SETNAME me\r\n")
	if l := r.line(); l != "*14\r\n" {
		t.Fatalf("HELLO reply starts %q", l)
	}
	for range 13 * 2 { // 14 elements: skip them (the last is an empty array)
		if l := r.line(); l == "*0\r\n" {
			break
		}
	}
	r.send("CLIENT GETNAME\r\n")
	r.expect("$2\r\nme\r\n")

	// CONFIG SET requirepass: new clients need the new password, clients
	// already in stay in.
	admin := e.client(func(o *redis.Options) { o.Password = "s3cret"; o.PoolSize = 1 })
	check(t, admin, "OK", "CONFIG", "SET", "requirepass", "other")
	check(t, admin, []any{"requirepass", "other"}, "CONFIG", "GET", "requirepass")
	check(t, admin, "v", "GET", "k")
	r2 := e.raw()
	r2.send("AUTH s3cret\r\nAUTH other\r\nGET k\r\n")
	r2.expect("-" + wrongPwd + "\r\n+OK\r\n$1\r\nv\r\n")
	check(t, admin, "OK", "CONFIG", "SET", "requirepass", "")
	r3 := e.raw()
	r3.send("GET k\r\n")
	r3.expect("$1\r\nv\r\n")
}

func TestSecretCompare(t *testing.T) {
	s := newSecret("pw")
	for in, want := range map[string]bool{"pw": true, "": false, "p": false, "pw ": false, "PW": false} {
		if got := s.check([]byte(in)); got != want {
			t.Errorf("check(%q) = %v", in, got)
		}
	}
	if newSecret("") != nil {
		t.Error("empty password is a secret")
	}
}

type fakeAddr struct{ network, s string }

func (a fakeAddr) Network() string { return a.network }
func (a fakeAddr) String() string  { return a.s }

func TestProtectedMode(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv4(127, 3, 2, 1), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}, false},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}, false},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, true},
		{fakeAddr{"tcp", "192.168.1.2:6379"}, false},
		{fakeAddr{"tcp", "[::1]:6379"}, true},
		{fakeAddr{"pipe", "pipe"}, true},
		{fakeAddr{"tcp", "garbage"}, false},
		{nil, false},
	} {
		if got := isLoopback(tc.addr); got != tc.want {
			t.Errorf("isLoopback(%v) = %v", tc.addr, got)
		}
	}

	remote := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 4000}
	s := New(newTestStore(t), Config{})
	if reason, reply := s.admit(remote); reason != "protected-mode" || reply != deniedMsg {
		t.Errorf("admit remote: %q", reason)
	}
	if reason, _ := s.admit(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); reason != "" {
		t.Errorf("admit loopback: %q", reason)
	}
	s = New(newTestStore(t), Config{Password: "x"})
	if reason, _ := s.admit(remote); reason != "" {
		t.Errorf("admit with password: %q", reason)
	}
	s = New(newTestStore(t), Config{DisableProtectedMode: true})
	if reason, _ := s.admit(remote); reason != "" {
		t.Errorf("admit with protected mode off: %q", reason)
	}
	if !strings.HasPrefix(deniedMsg, "-DENIED Redis is running in protected mode") || !strings.HasSuffix(deniedMsg, "outside.\r\n") {
		t.Error("DENIED text")
	}

	// End to end, through a listener whose connections claim a remote
	// address.
	obs := &countObserver{}
	e := newEnvWrapped(t, Config{Observer: obs}, func(c net.Conn) net.Conn { return remoteConn{c, remote} })
	r := e.raw()
	got := r.expectClosed()
	if got != deniedMsg {
		t.Errorf("remote client got %q", got)
	}
	eventually(t, "rejection counted", func() bool { return obs.rejected.Load() == 1 })
	if obs.reason.Load().(string) != "protected-mode" {
		t.Errorf("reason %v", obs.reason.Load())
	}
}

type remoteConn struct {
	net.Conn
	addr net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.addr }

type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// newEnvWrapped is newEnv with a listener whose connections wrap changes.
func newEnvWrapped(t *testing.T, cfg Config, wrap func(net.Conn) net.Conn) *env {
	st := newTestStore(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, addr: ln.Addr().String(), logs: &logBuffer{}, errc: make(chan error, 1)}
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	e.srv = New(st, cfg)
	go func() { e.errc <- e.srv.Serve(wrapListener{ln, wrap}) }()
	t.Cleanup(func() {
		e.srv.Close()
		<-e.errc
	})
	return e
}

type countObserver struct {
	commands, failed, connected, disconnected, rejected atomic.Int64
	reason                                              atomic.Value
	last                                                atomic.Value
}

func (o *countObserver) Command(name string, d time.Duration, failed bool) {
	o.commands.Add(1)
	if failed {
		o.failed.Add(1)
	}
	o.last.Store(name)
}
func (o *countObserver) Connected()    { o.connected.Add(1) }
func (o *countObserver) Disconnected() { o.disconnected.Add(1) }
func (o *countObserver) Rejected(reason string) {
	o.reason.Store(reason)
	o.rejected.Add(1)
}

func TestMaxClientsAndObserver(t *testing.T) {
	obs := &countObserver{}
	e := newEnv(t, Config{MaxClients: 2, Observer: obs})
	r1, r2 := e.raw(), e.raw()
	r1.send("PING\r\n")
	r1.expect("+PONG\r\n")
	r2.send("GET x\r\nNOPE\r\n")
	r2.expect("$-1\r\n-ERR unknown command 'NOPE', with args beginning with: \r\n")
	r3 := e.raw()
	if got := r3.expectClosed(); got != "-ERR max number of clients reached\r\n" {
		t.Errorf("third client got %q", got)
	}
	if obs.reason.Load() != "maxclients" || obs.rejected.Load() != 1 {
		t.Errorf("rejected %v %v", obs.reason.Load(), obs.rejected.Load())
	}
	if !strings.Contains(e.logs.String(), "level=WARN") {
		t.Error("rejection not logged at warn")
	}
	r1.send("SET\r\n")
	r1.expect("-ERR wrong number of arguments for 'set' command\r\n")
	if obs.commands.Load() != 3 || obs.failed.Load() != 1 || obs.last.Load() != "set" {
		t.Errorf("commands %d failed %d last %v", obs.commands.Load(), obs.failed.Load(), obs.last.Load())
	}
	r1.Close()
	eventually(t, "a slot to free up", func() bool { return obs.disconnected.Load() == 1 })
	r4 := e.raw()
	r4.send("PING\r\n")
	r4.expect("+PONG\r\n")
	if obs.connected.Load() != 3 {
		t.Errorf("connected %d", obs.connected.Load())
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, Config{IdleTimeout: 100 * time.Millisecond})
	idle := e.raw()
	sub := e.raw()
	sub.send("SUBSCRIBE ch\r\n")
	sub.expect("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
	busy := e.raw()
	start := time.Now()
	for range 6 {
		busy.send("PING\r\n")
		busy.expect("+PONG\r\n")
		time.Sleep(40 * time.Millisecond)
	}
	idle.expectClosed()
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("idle client closed after %v", d)
	}
	// The subscriber is exempt and still gets messages.
	c := e.client()
	if n := c.Publish(ctx, "ch", "hi").Val(); n != 1 {
		t.Errorf("PUBLISH reached %d", n)
	}
	sub.expect("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n")
}

func TestCommandPanicIsContained(t *testing.T) {
	// Registered before the server starts and removed after it is closed
	// (cleanups run last-in first-out), so no goroutine races on the map.
	commands["panic-test"] = &command{name: "panic-test", arity: 1, fn: func(*client, [][]byte) { panic("boom") }}
	t.Cleanup(func() { delete(commands, "panic-test") })
	e := newEnv(t, Config{})
	r := e.raw()
	r.send("PANIC-TEST\r\nPING\r\n")
	r.expect("-ERR internal error\r\n+PONG\r\n")
	if !strings.Contains(e.logs.String(), "boom") {
		t.Error("panic not logged")
	}
}
