//go:build linux

package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/shardkvtest"
)

// engines reports, for each client the server has, whether a loop serves
// it.
func engines(s *Server) (loop, goroutine int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		if c.lp != nil {
			loop++
		} else {
			goroutine++
		}
	}
	return loop, goroutine
}

// plainListener hides its connections' file descriptors, as a TLS
// listener would.
type plainListener struct{ net.Listener }

type plainConn struct{ net.Conn }

// embedListener's connections embed the *net.TCPConn, SyscallConn
// included, as a counting or PROXY-protocol wrapper may: a loop must not
// read past the wrapper.
type embedListener struct{ net.Listener }

type embedConn struct{ *net.TCPConn }

func (l embedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return embedConn{c.(*net.TCPConn)}, nil
}

func (l plainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return plainConn{c}, nil
}

func TestEngineChoice(t *testing.T) {
	for _, tc := range []struct {
		name     string
		loops    int
		cluster  bool
		wrap     string // "plain": hides the fd; "embed": embeds the *net.TCPConn
		wantLoop bool
	}{
		{"default", 0, false, "", true},
		{"three loops", 3, false, "", true},
		{"goroutines asked for", -1, false, "", false},
		{"clustered store", 0, true, "", false},
		{"no file descriptor", 0, false, "plain", false},
		{"a wrapper embedding the TCPConn", 0, false, "embed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := StoreOptions()
			if tc.cluster {
				shared := newTestStore(t)
				opts = append(opts, shardkv.WithBackend(shardkvtest.LocalBackend{Store: shared}))
			}
			st := shardkv.New(opts...)
			t.Cleanup(func() { st.Close() }) // after the server's, registered below
			srv := New(st, Config{EventLoops: tc.loops, Logger: discardLogger()})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			var l net.Listener = ln
			switch tc.wrap {
			case "plain":
				l = plainListener{ln}
			case "embed":
				l = embedListener{ln}
			}
			serveOn(t, srv, l)
			r := dialRaw(t, addr)
			r.send("PING\r\n")
			r.expect("+PONG\r\n")
			onLoop, onGoroutine := engines(srv)
			if tc.wantLoop && (onLoop != 1 || onGoroutine != 0) || !tc.wantLoop && (onLoop != 0 || onGoroutine != 1) {
				t.Errorf("clients on a loop %d, on a goroutine %d; want a loop: %v", onLoop, onGoroutine, tc.wantLoop)
			}
			if tc.wantLoop && tc.loops > 0 && len(srv.loops) != tc.loops {
				t.Errorf("%d loops, want %d", len(srv.loops), tc.loops)
			}
		})
	}
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, Conn: nc, r: bufio.NewReader(nc)}
}

// TestLoopClientNotReading: a client that pipelines large replies and does
// not read them is not read from any more while its replies wait (its
// loop holds one batch of them), the loop's other clients are served
// meanwhile, and once it reads, every reply comes, whole and in order.
func TestLoopClientNotReading(t *testing.T) {
	e := newEnv(t, Config{EventLoops: 1})
	val := strings.Repeat("v", 256<<10)
	if err := e.store.Set("big", []byte(val)); err != nil {
		t.Fatal(err)
	}
	const n = 400 // 100 MiB of replies
	slow := e.raw()
	sent := make(chan error, 1)
	go func() {
		var err error
		for i := range n {
			if _, err = io.WriteString(slow.Conn, "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n*2\r\n$4\r\nECHO\r\n$"+
				strconv.Itoa(len(strconv.Itoa(i)))+"\r\n"+strconv.Itoa(i)+"\r\n"); err != nil {
				break
			}
		}
		sent <- err
	}()
	// The slow client's replies fill the sockets; then its loop holds
	// the rest of a batch (CLIENT LIST's omem) and runs no more of its
	// commands.
	other := e.raw()
	omem := func() int {
		other.send("CLIENT LIST\r\n")
		l := other.line()
		n, _ := strconv.Atoi(strings.TrimSpace(l[1:]))
		b := make([]byte, n+2)
		other.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(other.r, b); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "addr="+slow.Conn.LocalAddr().String()+" ") {
				f := line[strings.Index(line, " omem=")+6:]
				m, _ := strconv.Atoi(f[:strings.IndexByte(f, ' ')])
				if strings.Contains(line, " events=w ") != (m > 0) {
					t.Errorf("omem=%d but events: %s", m, line)
				}
				return m
			}
		}
		t.Fatalf("slow client not in CLIENT LIST: %q", b)
		return 0
	}
	eventually(t, "the slow client's replies to wait", func() bool { return omem() > 0 })
	time.Sleep(50 * time.Millisecond)
	// Bounded: what one flush batch and one value hold, not 100 MiB.
	if w := omem(); w > flushAt+len(val)+64 {
		t.Errorf("%d bytes of replies held for the slow client", w)
	}
	for range 20 {
		other.send("PING\r\n")
		other.expect("+PONG\r\n")
	}
	want := "$" + strconv.Itoa(len(val)) + "\r\n" + val + "\r\n"
	got := make([]byte, len(want))
	for i := range n {
		slow.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(slow.r, got); err != nil || string(got) != want {
			t.Fatalf("reply %d: %v (%d bytes, equal %v)", i, err, len(got), string(got) == want)
		}
		s := strconv.Itoa(i)
		slow.expect("$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n")
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// TestLoopRepliesBeforeClose: replies written just before the server
// closes a client reach it, even when the client has sent more that will
// never be read (a close with unread input makes the kernel reset the
// connection, which loses what is still in flight: the loop lingers).
func TestLoopRepliesBeforeClose(t *testing.T) {
	e := newEnv(t, Config{})
	val := strings.Repeat("x", 1000)
	echo := "*2\r\n$4\r\nECHO\r\n$1000\r\n" + val + "\r\n"
	const n = 3000 // 3 MB of replies: more than the sockets buffer
	for range 3 {
		r := e.raw()
		junk := bytes.Repeat([]byte("*1\r\n$4\r\nPING\r\n"), 4096)
		go func() {
			io.WriteString(r.Conn, strings.Repeat(echo, n)+"QUIT\r\n")
			for range 50 {
				if _, err := r.Conn.Write(junk); err != nil {
					return
				}
			}
		}()
		// Read late, so that replies still wait in the server's socket
		// when it is done with the client.
		time.Sleep(100 * time.Millisecond)
		for i := range n {
			r.SetReadDeadline(time.Now().Add(5 * time.Second))
			l, err := r.r.ReadString('\n')
			if err != nil {
				t.Fatalf("reply %d of %d: %q, %v\nserver log:\n%s", i, n, l, err, e.logs.String())
			}
			if l != "$1000\r\n" {
				t.Fatalf("reply %d: %q", i, l)
			}
			r.expect(val + "\r\n")
		}
		r.expect("+OK\r\n")
		if rest := r.expectClosed(); rest != "" {
			t.Fatalf("after QUIT: %q", rest)
		}
	}
}

// TestLoopHalfClose: a client that sends its commands and shuts its write
// side (printf 'PING\r\n' | nc -N) gets its replies, then the end.
func TestLoopHalfClose(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.raw()
	r.send("PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n")
	r.Conn.(*net.TCPConn).CloseWrite()
	r.expect("+PONG\r\n$2\r\nhi\r\n")
	if rest := r.expectClosed(); rest != "" {
		t.Fatalf("after the replies: %q", rest)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkEngine measures a request's round trip over loopback TCP on
// each engine: 50 clients (goroutines of this process, sharing its
// cores with the server, as redis-benchmark shares the machine's), each
// sending depth requests and reading their replies before the next batch,
// until b.N requests are answered; ns/op is per request, the client's
// work included (the same on both engines). Keys cycle over 100k, as
// redis-benchmark's -r 100000.
func BenchmarkEngine(b *testing.B) {
	const (
		clients = 50
		nkeys   = 100_000
	)
	value := strings.Repeat("x", 64)
	for _, engine := range []struct {
		name  string
		loops int
	}{{"loop", 1}, {"goroutine", -1}} {
		for _, cmd := range []string{"GET", "INCR"} {
			for _, depth := range []int{1, 16} {
				b.Run("engine="+engine.name+"/cmd="+cmd+"/P="+strconv.Itoa(depth), func(b *testing.B) {
					st := newTestStore(b)
					if cmd == "GET" {
						for i := range nkeys {
							st.Set("key:"+strconv.Itoa(100_000_000+i), []byte(value))
						}
					}
					srv := New(st, Config{EventLoops: engine.loops, Logger: discardLogger()})
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						b.Fatal(err)
					}
					serveOn(b, srv, ln)
					batches := (b.N + depth - 1) / depth
					var next atomic.Int64
					conns := make([]net.Conn, clients)
					for i := range conns {
						if conns[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
							b.Fatal(err)
						}
						defer conns[i].Close()
					}
					var wg sync.WaitGroup
					var failed atomic.Value
					b.ResetTimer()
					for i, nc := range conns {
						wg.Add(1)
						go func() {
							defer wg.Done()
							br := bufio.NewReader(nc)
							var req []byte
							k := i * 7919
							for next.Add(1) <= int64(batches) {
								req = req[:0]
								for range depth {
									k = (k + 1) % nkeys
									req = append(req, resp(cmd, "key:"+strconv.Itoa(100_000_000+k))...)
								}
								if _, err := nc.Write(req); err != nil {
									failed.Store(err)
									return
								}
								for range depth {
									if err := skipReply(br); err != nil {
										failed.Store(err)
										return
									}
								}
							}
						}()
					}
					wg.Wait()
					b.StopTimer()
					if err := failed.Load(); err != nil {
						b.Fatal(err)
					}
				})
			}
		}
	}
}

// skipReply reads one reply: a line, and a bulk's bytes after it.
func skipReply(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	switch line[0] {
	case '$':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return err
		}
		if n >= 0 {
			_, err = br.Discard(n + 2)
		}
		return err
	case '-':
		return errors.New(string(line))
	}
	return nil
}

// After Shutdown has ended the loops (their eventfds closed), Close must
// not write to the loop's old wakefd number, which may now be another
// file (found in review: it did).
func TestLoopWakeAfterExit(t *testing.T) {
	st := newTestStore(t)
	srv := New(st, Config{EventLoops: 1, Logger: discardLogger()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, srv, ln)
	r := dialRaw(t, ln.Addr().String())
	r.send("PING\r\n")
	r.expect("+PONG\r\n")
	srv.mu.Lock()
	wakefd := srv.loops[0].wakefd
	srv.mu.Unlock()
	// Shutdown returns once the loop has ended and closed its eventfd.
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var victim *os.File
	for range 20 {
		f, err := os.CreateTemp(t.TempDir(), "victim")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if int(f.Fd()) == wakefd {
			victim = f
			break
		}
	}
	if victim == nil {
		// The kernel hands out the lowest free number, so one of these
		// takes the eventfd's; if not, the test would test nothing.
		t.Fatalf("no new file got the loop's old eventfd number %d", wakefd)
	}
	srv.Close() // "harmless" after Shutdown
	fi, _ := victim.Stat()
	t.Logf("wakefd was %d; unrelated file now %d bytes", wakefd, fi.Size())
	if fi.Size() != 0 {
		t.Errorf("Close wrote %d bytes into an unrelated file that reused the loop's eventfd number", fi.Size())
	}
}

// A subscriber that stops reading does not hold Shutdown up: either
// engine closes it closeGrace (5 s) after the shutdown.
func TestShutdownStuckSubscriber(t *testing.T) {
	for _, n := range []int{1, -1} {
		t.Run(map[int]string{1: "loop", -1: "goroutine"}[n], func(t *testing.T) {
			e := newEnv(t, Config{EventLoops: n, PubSubBacklog: 1 << 20})
			sub := e.raw()
			sub.send("SUBSCRIBE ch\r\n")
			sub.expect("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
			pub := e.raw()
			big := strings.Repeat("m", 64<<10)
			cmd := "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$65536\r\n" + big + "\r\n"
			for range 300 {
				pub.send(cmd)
				pub.expect(":1\r\n")
			}
			cctx, cancel := context.WithTimeout(context.Background(), 9*time.Second)
			defer cancel()
			start := time.Now()
			err := e.srv.Shutdown(cctx)
			t.Logf("Shutdown: %v after %v", err, time.Since(start).Round(time.Millisecond))
			if err != nil {
				t.Errorf("Shutdown did not finish: %v", err)
			}
		})
	}
}

// IdleTimeout is "sent nothing for that long": a client still sending a
// large request is not closed (found in review: the loop counted from the
// last command run).
func TestIdleDuringUpload(t *testing.T) {
	for _, n := range []int{1, -1} {
		t.Run(map[int]string{1: "loop", -1: "goroutine"}[n], func(t *testing.T) {
			e := newEnv(t, Config{EventLoops: n, IdleTimeout: 300 * time.Millisecond})
			r := e.raw()
			r.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n")
			for range 10 {
				time.Sleep(100 * time.Millisecond)
				if _, err := r.Conn.Write([]byte(strings.Repeat("x", 10))); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			r.send("\r\n")
			r.expect("+OK\r\n")
		})
	}
}

// A client slowly reading a large reply (bytes flowing all along) is not
// idle (found in review: the loop cut the reply short).
func TestIdleSlowReader(t *testing.T) {
	for _, n := range []int{1, -1} {
		t.Run(map[int]string{1: "loop", -1: "goroutine"}[n], func(t *testing.T) {
			e := newEnv(t, Config{EventLoops: n, IdleTimeout: 300 * time.Millisecond})
			val := strings.Repeat("v", 16<<20)
			e.store.Set("big", []byte(val))
			r := e.raw()
			r.Conn.(*net.TCPConn).SetReadBuffer(64 << 10)
			r.send("GET big\r\n")
			buf := make([]byte, 256<<10)
			total := 0
			want := len(val) + len("$16777216\r\n\r\n")
			start := time.Now()
			for total < want {
				r.SetReadDeadline(time.Now().Add(5 * time.Second))
				k, err := r.r.Read(buf)
				total += k
				if err != nil {
					t.Fatalf("after %d of %d bytes, %v: %v", total, want, time.Since(start), err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("read %d bytes in %v", total, time.Since(start))
		})
	}
}

// TestLoopUnixSocket: a Unix socket's clients are served on a loop too,
// and closing one that pipelined past QUIT still delivers its replies.
func TestLoopUnixSocket(t *testing.T) {
	st := newTestStore(t)
	srv := New(st, Config{Logger: discardLogger()})
	path := t.TempDir() + "/shardkv.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, srv, ln)
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := &rawConn{t: t, Conn: nc, r: bufio.NewReader(nc)}
	r.send("SET k v\r\nGET k\r\n")
	r.expect("+OK\r\n$1\r\nv\r\n")
	if onLoop, onGoroutine := engines(srv); onLoop != 1 || onGoroutine != 0 {
		t.Errorf("clients on a loop %d, on a goroutine %d; want the Unix socket's on a loop", onLoop, onGoroutine)
	}
	r.send("PING\r\nQUIT\r\nPING\r\nPING\r\n")
	r.expect("+PONG\r\n+OK\r\n")
	if rest := r.expectClosed(); rest != "" {
		t.Fatalf("after QUIT: %q", rest)
	}
}

// TestIdleClosesClientNotReading: on a loop, a client that stops reading
// a large reply is closed by the idle timeout (at most two timeouts after
// its replies stop moving), as Redis does; replies still moving keep it
// (TestIdleSlowReader).
func TestIdleClosesClientNotReading(t *testing.T) {
	e := newEnv(t, Config{EventLoops: 1, IdleTimeout: 200 * time.Millisecond})
	e.store.Set("big", []byte(strings.Repeat("v", 16<<20)))
	r := e.raw()
	r.Conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	r.send("PING\r\n") // accepted and registered
	r.expect("+PONG\r\n")
	r.send("GET big\r\n")
	start := time.Now()
	eventually(t, "the client not reading to be closed", func() bool {
		onLoop, _ := engines(e.srv)
		return onLoop == 0
	})
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("closed after %v, before its idle timeout", d)
	}
}
