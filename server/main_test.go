package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shardkv/shardkv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{}) // go-redis' reconnect chatter after a Shutdown
	goleak.VerifyTestMain(m,
		// go-redis' pool re-dials in the background after dial failures
		// (clients that outlive a Shutdown); the goroutine ends within a
		// second of the client's Close.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

var ctx = context.Background()

// testEventLoops is the Config.EventLoops of the servers tests start when
// they ask for none: SHARDKV_TEST_EVENTLOOPS, so that the suite runs on
// either engine (-1: a goroutine per client), else the default.
var testEventLoops = func() int {
	n, _ := strconv.Atoi(os.Getenv("SHARDKV_TEST_EVENTLOOPS"))
	return n
}()

// env is a server on a loopback port, with its store.
type env struct {
	t     testing.TB
	store *shardkv.Store
	srv   *Server
	addr  string
	logs  *logBuffer
	errc  chan error
}

// logBuffer collects the server's log lines, for tests that look at them.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newEnv starts a server for a new store made with StoreOptions and opts.
// Everything is closed when the test ends.
func newEnv(t testing.TB, cfg Config, opts ...shardkv.Option) *env {
	t.Helper()
	st := shardkv.New(append(StoreOptions(), opts...)...)
	return newEnvStore(t, st, cfg)
}

func newEnvStore(t testing.TB, st *shardkv.Store, cfg Config) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, addr: ln.Addr().String(), logs: &logBuffer{}, errc: make(chan error, 1)}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.EventLoops == 0 {
		cfg.EventLoops = testEventLoops
	}
	e.srv = New(st, cfg)
	go func() { e.errc <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		e.srv.Close()
		if err := <-e.errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		st.Close()
	})
	return e
}

// serveOn serves srv on ln until the test ends, then closes it and checks
// that Serve returned ErrServerClosed.
func serveOn(t testing.TB, srv *Server, ln net.Listener) {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
}

func newTestStore(t testing.TB) *shardkv.Store {
	st := shardkv.New(StoreOptions()...)
	t.Cleanup(func() { st.Close() })
	return st
}

// client returns a go-redis client of the server, closed at the end of
// the test.
func (e *env) client(mod ...func(*redis.Options)) *redis.Client {
	opt := &redis.Options{Addr: e.addr, MaxRetries: -1, PoolSize: 4}
	for _, m := range mod {
		m(opt)
	}
	c := redis.NewClient(opt)
	e.t.Cleanup(func() { c.Close() })
	return c
}

// raw dials the server, for byte-level tests.
func (e *env) raw() *rawConn {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	return &rawConn{t: e.t, Conn: nc, r: bufio.NewReader(nc)}
}

type rawConn struct {
	t testing.TB
	net.Conn
	r *bufio.Reader
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// expect reads exactly len(want) bytes and compares them.
func (c *rawConn) expect(want string) {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.r, got); err != nil {
		c.t.Fatalf("read %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// line reads one CRLF-terminated line.
func (c *rawConn) line() string {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: %q, %v", l, err)
	}
	return l
}

// expectClosed reads until EOF (or a reset), failing if that takes long.
func (c *rawConn) expectClosed() string {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(c.r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if len(rest) > 200 {
			rest = rest[:200]
		}
		c.t.Fatalf("connection not closed; read %q...", rest)
	}
	return string(rest)
}

// Reply markers for table tests.
type errReply string // an error reply with this exact text

var nilReply = struct{ nilReply bool }{true}

// check runs args and compares the reply with want: a value as go-redis
// returns it (string, int64, []any), errReply, or nilReply.
func check(t testing.TB, c *redis.Client, want any, args ...any) {
	t.Helper()
	got, err := c.Do(ctx, args...).Result()
	switch w := want.(type) {
	case errReply:
		if err == nil || err.Error() != string(w) {
			t.Errorf("%v: got %#v, %v; want error %q", args, got, err, w)
		}
	default:
		if want == nilReply {
			if err != redis.Nil {
				t.Errorf("%v: got %#v, %v; want nil", args, got, err)
			}
			return
		}
		if err != nil {
			t.Errorf("%v: error %v; want %#v", args, err, want)
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v: got %#v; want %#v", args, got, want)
		}
	}
}

type step struct {
	args []any
	want any
}

func run(t *testing.T, c *redis.Client, steps []step) {
	t.Helper()
	for _, s := range steps {
		check(t, c, s.want, s.args...)
	}
}

func a(v ...any) []any { return v }

// eventually polls cond until it holds or 5 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
