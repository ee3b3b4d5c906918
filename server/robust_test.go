package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestPipeline(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	pipe := c.Pipeline()
	var incrs []*redis.IntCmd
	var gets []*redis.StringCmd
	for i := range 1000 {
		switch i % 4 {
		case 0:
			incrs = append(incrs, pipe.Incr(ctx, "pc"))
		case 1:
			pipe.Set(ctx, "pk"+strconv.Itoa(i), i, 0)
		case 2:
			gets = append(gets, pipe.Get(ctx, "pk"+strconv.Itoa(i-1)))
		case 3:
			pipe.Ping(ctx)
		}
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil || len(cmds) != 1000 {
		t.Fatalf("Exec: %d %v", len(cmds), err)
	}
	for i, cmd := range incrs {
		if cmd.Val() != int64(i+1) {
			t.Fatalf("INCR %d = %d", i, cmd.Val())
		}
	}
	for i, cmd := range gets {
		if want := strconv.Itoa(4*i + 1); cmd.Val() != want {
			t.Fatalf("GET %d = %q, want %q", i, cmd.Val(), want)
		}
	}

	// A raw pipeline larger than one read, answered in order.
	r := e.raw()
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "*2\r\n$4\r\nECHO\r\n$%d\r\n%d\r\n", len(strconv.Itoa(i)), i)
	}
	go r.send(b.String())
	for i := range 5000 {
		s := strconv.Itoa(i)
		r.expect("$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n")
	}
}

func TestConcurrentClients(t *testing.T) {
	e := newEnv(t, Config{})
	const clients, rounds = 200, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for g := range clients {
		c := e.client(func(o *redis.Options) { o.PoolSize = 1 })
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := "own:" + strconv.Itoa(g)
			for i := range rounds {
				if err := c.Incr(ctx, "shared").Err(); err != nil {
					errs <- err
					return
				}
				if err := c.Append(ctx, own, "x").Err(); err != nil {
					errs <- err
					return
				}
				if i%5 == 0 {
					v, err := c.Get(ctx, own).Result()
					if err != nil || v != strings.Repeat("x", i+1) {
						errs <- fmt.Errorf("%s = %q, %v", own, v, err)
						return
					}
					c.IncrByFloat(ctx, "fshared", 0.5)
					c.SetNX(ctx, "once", g, 0)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c := e.client()
	if n, _ := c.Get(ctx, "shared").Int(); n != clients*rounds {
		t.Errorf("shared = %d, want %d", n, clients*rounds)
	}
	if f, _ := c.Get(ctx, "fshared").Float64(); f != clients*4*0.5 {
		t.Errorf("fshared = %v", f)
	}
	for g := range clients {
		if n, _ := c.StrLen(ctx, "own:"+strconv.Itoa(g)).Result(); n != rounds {
			t.Fatalf("own:%d has %d", g, n)
		}
	}
	if info := c.Info(ctx, "stats").Val(); !strings.Contains(info, "total_connections_received:") {
		t.Error(info)
	}
}

func TestGarbage(t *testing.T) {
	e := newEnv(t, Config{MaxRequestBytes: 1024})
	good := e.client()
	for _, tc := range []struct {
		name, send, reply string
		closed            bool
	}{
		{"huge count", "*99999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n", true},
		{"negative count", "*-1\r\n", "-ERR Protocol error: invalid multibulk length\r\n", true},
		{"huge bulk", "*1\r\n$9999999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
		{"bulk over the limit", "*1\r\n$1025\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
		{"long header", "*1\r\n$" + strings.Repeat("1", 40) + "\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
		{"negative bulk", "*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
		{"negative bulk after a good one", "*2\r\n$4\r\nECHO\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n", true},
		{"empty request ignored", "*0\r\n*1\r\n$4\r\nPING\r\n", "+PONG\r\n", false},
		{"dollar line among requests", "*1\r\n$4\r\nPING\r\n$5 x\r\nPING\r\n",
			"+PONG\r\n-ERR unknown command '$5', with args beginning with: 'x' \r\n+PONG\r\n", false},
		{"bad bulk prefix", "*2\r\n$3\r\nGET\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n", true},
		{"bad CRLF", "*1\r\n$4\r\nPINGxx", "-ERR Protocol error: invalid bulk length\r\n", true},
		{"unbalanced quotes", "SET \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n", true},
		{"top-level dollar is inline", "$9999999999999\r\n", "-ERR unknown command '$9999999999999', with args beginning with: \r\n", false},
		{"good before bad", "PING\r\n*1\r\n$99999\r\n", "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n", true},
		{"inline too long", strings.Repeat("a", 70<<10), "-ERR Protocol error: too big inline request\r\n", true},
		{"request too large", "*7\r\n$4\r\nMSET\r\n" + strings.Repeat("$1\r\nk\r\n$1000\r\n"+strings.Repeat("v", 1000)+"\r\n", 3),
			"-ERR Protocol error: request too large\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.raw()
			go func() { io.WriteString(r.Conn, tc.send) }() // may fail once closed
			r.expect(tc.reply)
			if tc.closed {
				if rest := r.expectClosed(); rest != "" {
					t.Errorf("then %q", rest)
				}
			}
			check(t, good, "PONG", "PING")
		})
	}

	// A value just under the limit is fine.
	check(t, good, "OK", "SET", "k", strings.Repeat("v", 1000))
	if !strings.Contains(e.logs.String(), "level=WARN") || !strings.Contains(e.logs.String(), "size limit") {
		t.Error("limit breach not logged at warn")
	}

	// Truncated frames, then the client goes away: no reply, no harm.
	for _, frag := range []string{"*2\r\n$3\r\nGET\r\n$1", "*3\r\n", "*1\r\n$4\r\nPI", "GET k"} {
		r := e.raw()
		r.send(frag)
		r.Conn.(*net.TCPConn).CloseWrite()
		if rest := r.expectClosed(); rest != "" {
			t.Errorf("%q: got %q", frag, rest)
		}
	}

	// Random noise: every client gets error replies or is closed, and the
	// server keeps serving.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		noise := make([]byte, 1+rng.IntN(8192))
		for j := range noise {
			noise[j] = byte(rng.UintN(256))
		}
		if i%2 == 0 {
			noise[0] = '*' // look like RESP
		}
		r := e.raw()
		go func() {
			r.Conn.Write(noise)
			r.Conn.(*net.TCPConn).CloseWrite()
		}()
		r.expectClosed()
	}
	check(t, good, strings.Repeat("v", 1000), "GET", "k")
}

// The guard passes every valid stream, however it is split into reads.
func TestGuardPassesValidStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	for range 150 {
		if rng.IntN(4) == 0 {
			fmt.Fprintf(&b, "SET k%d v\r\n", rng.IntN(100))
			continue
		}
		n := 1 + rng.IntN(5)
		fmt.Fprintf(&b, "*%d\r\n", n)
		for range n {
			arg := strings.Repeat("x", rng.IntN(200))
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(arg), arg)
		}
	}
	stream := b.String()
	for _, chunk := range []int{1, 2, 7, 100, 4096, 1 << 20} {
		g := guard{r: &chunkReader{s: stream, n: chunk}, limit: func() int64 { return 600 }}
		for {
			p := make([]byte, 8192)
			_, err := g.Read(p)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
		}
		if g.st != sStart {
			t.Errorf("chunk %d: ended in state %d", chunk, g.st)
		}
	}
}

type chunkReader struct {
	s string
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.s) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.s)
	r.s = r.s[n:]
	return n, nil
}

func TestShutdownMidPipeline(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.raw()
	batch := strings.Repeat("*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n", 100)
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for range 1000 {
			if _, err := io.WriteString(r.Conn, batch); err != nil {
				return
			}
		}
	}()
	// go-redis clients pipelining at the same time.
	var wg sync.WaitGroup
	var pipeOK, pipeFailed atomic.Int64
	for range 4 {
		c := e.client(func(o *redis.Options) { o.PoolSize = 1 })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				pipe := c.Pipeline()
				for range 100 {
					pipe.Incr(ctx, "g")
				}
				_, err := pipe.Exec(ctx)
				if err != nil {
					var re redis.Error
					if errors.As(err, &re) {
						t.Errorf("pipeline got a Redis error: %v", err)
					}
					pipeFailed.Add(1)
					return
				}
				pipeOK.Add(1)
			}
		}()
	}

	if l := r.line(); l != ":1\r\n" { // the pipeline is flowing
		t.Fatalf("first reply %q", l)
	}
	sdCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sdErr := make(chan error, 1)
	go func() { sdErr <- e.srv.Shutdown(sdCtx) }()

	// Every INCR the server ran was answered, in order, before the close.
	n := 1
	for {
		r.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := r.r.ReadString('\n')
		if err != nil {
			t.Logf("DEBUG read end: %v", err)
			break
		}
		n++
		if l != ":"+strconv.Itoa(n)+"\r\n" {
			t.Fatalf("reply %d: %q", n, l)
		}
	}
	if err := <-sdErr; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-sendDone
	wg.Wait()
	if err := <-e.errc; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	e.errc <- ErrServerClosed // for the cleanup
	v, _, _ := e.store.GetString("c")
	if v != strconv.Itoa(n) {
		t.Errorf("c = %s, but %d replies", v, n)
	}
	if pipeFailed.Load() != 4 {
		t.Errorf("pipelines: %d ok, %d failed", pipeOK.Load(), pipeFailed.Load())
	}
	// After Shutdown: Serve refuses, Close and Shutdown are harmless.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := e.srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	e.srv.Close()
}

func TestShutdownDeadline(t *testing.T) {
	e := newEnv(t, Config{})
	// A client that never reads its replies blocks the server's write;
	// Shutdown's ctx bounds the wait and then everything is closed.
	r := e.raw()
	r.Conn.(*net.TCPConn).SetReadBuffer(4096)
	big := strings.Repeat("v", 1<<20)
	check(t, e.client(), "OK", "SET", "big", big)
	go func() {
		for range 200 {
			if _, err := io.WriteString(r.Conn, "GET big\r\n"); err != nil {
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	sdCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(sdCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestScanUnderChurn(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	const stable = 3000
	pipe := c.Pipeline()
	for i := range stable {
		pipe.Set(ctx, "s:"+strconv.Itoa(i), "v", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	churn := e.client()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := churn.Pipeline()
			for j := range 50 {
				p.Set(ctx, "c:"+strconv.Itoa(i*50+j), "v", 0)
				if i > 2 {
					p.Del(ctx, "c:"+strconv.Itoa((i-2)*50+j))
				}
			}
			p.Exec(ctx)
		}
	}()
	for round := range 3 {
		seen := make(map[string]bool, stable)
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, "s:*", 100).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				seen[k] = true
			}
			cursor = next
			if cursor == 0 {
				break
			}
		}
		if len(seen) != stable {
			t.Fatalf("round %d: %d of %d stable keys seen", round, len(seen), stable)
		}
	}
	close(stop)
	wg.Wait()
}

// guardRun reads stream through a guard whose connection hands it chunk
// bytes a Read, and returns how many bytes the guard passed on, the error
// that ended it (nil at the end of the stream) and the guard.
func guardRun(stream []byte, chunk int, limit int64) (int, error, *guard) {
	g := &guard{r: &chunkReader{s: string(stream), n: chunk}, limit: func() int64 { return limit }}
	passed := 0
	p := make([]byte, len(stream)+1)
	for {
		n, err := g.Read(p)
		passed += n
		if err == io.EOF {
			return passed, nil, g
		}
		if err != nil {
			return passed, err, g
		}
	}
}

// checkGuardSplits fails unless the guard passes the same bytes, refuses
// with the same error and ends in the same state whether stream comes in
// one read (so that headers take the guard's fast path) or one byte a read
// (so that every header takes the byte-by-byte path).
func checkGuardSplits(t *testing.T, stream []byte, limit int64) {
	t.Helper()
	wn, werr, wg := guardRun(stream, len(stream)+1, limit)
	bn, berr, bg := guardRun(stream, 1, limit)
	// On a refusal the bytes passed may end anywhere in the refused
	// request (the byte path passes more of a bulk it then refuses), which
	// is incomplete either way: what must match are the requests before it.
	wc, bc := completeRequests(stream[:wn]), completeRequests(stream[:bn])
	if fmt.Sprint(werr) != fmt.Sprint(berr) || wc != bc || (werr == nil && wn != bn) {
		t.Fatalf("limit %d, stream %q:\nwhole: passed %d (%s), err %v\nbytes: passed %d (%s), err %v",
			limit, stream, wn, wc, werr, bn, bc, berr)
	}
	if werr == nil && (wg.st != bg.st || wg.size != bg.size || wg.left != bg.left || wg.bulks != bg.bulks) {
		t.Fatalf("limit %d, stream %q: whole ends in state %d size %d left %d bulks %d, bytes in %d %d %d %d",
			limit, stream, wg.st, wg.size, wg.left, wg.bulks, bg.st, bg.size, bg.left, bg.bulks)
	}
}

// completeRequests says how many complete requests the reader parses from
// b, and how parsing ends.
func completeRequests(b []byte) string {
	r := &reader{buf: b, end: len(b)}
	for n := 0; ; n++ {
		_, ok, err := r.next()
		if err != nil || !ok {
			return fmt.Sprintf("%d requests, then %v", n, err)
		}
	}
}

// The guard's fast path for headers decides as its byte-by-byte path does,
// on valid streams and on ones broken in the ways that matter to it (long
// headers, signs, overflows, lengths at and past the limit, bare LFs).
func TestGuardFastPathMatchesBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	headers := []string{"0", "1", "3", "007", "+2", "-1", "-0", "", " 1", "1 ", "x",
		"99", "100", "101", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"2147483647", "2147483648", strings.Repeat("1", 31), strings.Repeat("1", 32), strings.Repeat("0", 40) + "1"}
	for range 3000 {
		var b strings.Builder
		for range 1 + rng.IntN(4) {
			if rng.IntN(10) == 0 {
				b.WriteString("PING x\r\n")
				continue
			}
			n := 1 + rng.IntN(3)
			if rng.IntN(8) == 0 {
				fmt.Fprintf(&b, "*%s\r\n", headers[rng.IntN(len(headers))])
			} else {
				fmt.Fprintf(&b, "*%d\r\n", n)
			}
			for range n {
				arg := strings.Repeat("v", rng.IntN(120))
				switch rng.IntN(12) {
				case 0:
					fmt.Fprintf(&b, "$%s\r\n%s\r\n", headers[rng.IntN(len(headers))], arg)
				case 1:
					fmt.Fprintf(&b, "$%d\n%s\r\n", len(arg), arg) // bare LF
				case 2:
					fmt.Fprintf(&b, "$%d\r%d\r\n%s\r\n", len(arg), len(arg), arg) // CR, no LF
				default:
					fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(arg), arg)
				}
			}
		}
		stream := []byte(b.String())
		if rng.IntN(4) == 0 { // cut it short
			stream = stream[:rng.IntN(len(stream)+1)]
		}
		checkGuardSplits(t, stream, int64(1+rng.IntN(150)))
	}
}

// atoi is strconv.Atoi, value and refusal, on every kind of header.
func TestAtoiIsStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	cases := []string{"", "0", "7", "007", "+3", "-3", "-0", "+", "-", " 1", "1 ", "1a", "a1", "/", ":",
		"999999999999999999", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"9999999999999999999", "18446744073709551617", strings.Repeat("0", 30) + "12"}
	for range 2000 {
		b := make([]byte, rng.IntN(22))
		for i := range b {
			b[i] = "0123456789+-x/:"[rng.IntN(15)]
			if rng.IntN(3) > 0 {
				b[i] = byte('0' + rng.IntN(10))
			}
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		got, gerr := atoi([]byte(c))
		want, werr := strconv.Atoi(c)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Errorf("atoi(%q) = %d, %v; strconv.Atoi: %d, %v", c, got, gerr, want, werr)
		}
	}
}

// FuzzGuard checks the guard's two paths against each other on any bytes
// (go test -fuzz FuzzGuard ./server).
func FuzzGuard(f *testing.F) {
	f.Add([]byte("*2\r\n$4\r\nINCR\r\n$3\r\nabc\r\n"), uint8(10))
	f.Add([]byte("*1\r\n$99999999999999999999\r\n"), uint8(200))
	f.Add([]byte("*-1\r\n*3\n$1\r\nx\r\n"), uint8(1))
	f.Add([]byte("SET k v\r\n*1\r\n$+3\r\nabc\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, stream []byte, limit uint8) {
		checkGuardSplits(t, stream, int64(limit)+1)
	})
}
