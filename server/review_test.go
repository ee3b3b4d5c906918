package server

// Regression tests for bugs found in review, each checked against
// redis-server 7.0.15 where it is about a reply.

import (
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EXPIREAT and PEXPIREAT with a time far in the past: the key is deleted,
// as any time not in the future. deadline-now used to overflow into a TTL
// of ~292 years.
func TestExpireAtFarPastDeletes(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	for _, args := range [][]any{
		{"EXPIREAT", "k", "-9223372036854775"},
		{"PEXPIREAT", "k", "-9223372036854775808"},
		{"PEXPIREAT", "k", "-9223372036854775000", "LT"},
		{"PEXPIRE", "k", "-9223372036854775808"},
	} {
		check(t, c, "OK", "SET", "k", "v")
		check(t, c, int64(1), args...)
		check(t, c, int64(0), "EXISTS", "k")
	}
	for _, v := range []int64{math.MinInt64, math.MinInt64 / 1000 * 1000, -1} {
		if _, ttl, ok := expireDeadline(v, 1, true, time.Now()); !ok || ttl != 0 {
			t.Errorf("PEXPIREAT %d: ttl %v ok %v", v, ttl, ok)
		}
	}
}

// An absolute expire time is measured from now at full precision: the
// deadline is the very millisecond given, and PEXPIRETIME reads it back.
// It used to be measured from now truncated to the millisecond, up to
// 1 ms late.
func TestAbsoluteExpireIsExact(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000).Add(900 * time.Microsecond)
	const at = 1_700_000_100_000
	if _, ttl, _ := expireDeadline(at, 1, true, now); !now.Add(ttl).Equal(time.UnixMilli(at)) {
		t.Errorf("PEXPIREAT: deadline %v, want %v", now.Add(ttl), time.UnixMilli(at))
	}
	if _, ttl, _ := expireDeadline(at/1000, 1000, true, now); !now.Add(ttl).Equal(time.UnixMilli(at)) {
		t.Errorf("EXPIREAT: deadline %v, want %v", now.Add(ttl), time.UnixMilli(at))
	}
	for _, f := range []int{optPXAT, optEXAT} {
		arg := strconv.Itoa(at)
		if f == optEXAT {
			arg = strconv.Itoa(at / 1000)
		}
		ttl, msg := parseExpire(f, []byte(arg), "set", now)
		if msg != "" || !now.Add(ttl).Equal(time.UnixMilli(at)) {
			t.Errorf("SET %d %s: deadline %v (%q), want %v", f, arg, now.Add(ttl), msg, time.UnixMilli(at))
		}
	}

	e := newEnv(t, Config{})
	c := e.client()
	check(t, c, "OK", "SET", "k", "v")
	base := time.Now().UnixMilli() + 100_000
	for i := range int64(200) {
		check(t, c, int64(1), "PEXPIREAT", "k", base+i)
		check(t, c, base+i, "PEXPIRETIME", "k")
	}
}

// SETRANGE with an offset whose sum with the value's length overflows:
// Redis' size error, not a recovered panic ("ERR internal error", logged
// with a stack).
func TestSetRangeOffsetOverflow(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	tooLarge := errReply("ERR string exceeds maximum allowed size (536870912 bytes)")
	check(t, c, tooLarge, "SETRANGE", "r", "9223372036854775807", "x")
	check(t, c, tooLarge, "SETRANGE", "r", "9223372036854775800", "xxxxxxxxxx")
	check(t, c, int64(0), "EXISTS", "r")
	if strings.Contains(e.logs.String(), "panic") {
		t.Error("SETRANGE panicked")
	}
}

// proto-max-bulk-len may be set up to 2^63-1 (as Redis allows): the
// request limit (twice it) saturates. It overflowed, and every request
// was then "request too large", CONFIG SET back included.
func TestProtoMaxBulkLenHuge(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	for _, v := range []string{"9223372036854775807", "4611686018427387904"} {
		check(t, c, "OK", "CONFIG", "SET", "proto-max-bulk-len", v)
		check(t, c, "OK", "SET", "k", strings.Repeat("v", 200))
		check(t, c, []any{"proto-max-bulk-len", v}, "CONFIG", "GET", "proto-max-bulk-len")
	}
	if got := requestMax(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("requestMax(MaxInt64) = %d", got)
	}
	if got := requestMax(1 << 20); got != 2<<20+64 {
		t.Errorf("requestMax(1 MiB) = %d", got)
	}
}

// A client that connected while a password was set, and never
// authenticated, may run commands once CONFIG SET requirepass "" removes
// it (Redis asks for AUTH only while the default user has a password).
func TestRequirepassRemoved(t *testing.T) {
	e := newEnv(t, Config{Password: "pw"})
	admin := e.client(func(o *redis.Options) { o.Password = "pw" })
	r := e.raw()
	r.send("GET k\r\n")
	r.expect("-" + noAuth + "\r\n")
	check(t, admin, "OK", "CONFIG", "SET", "requirepass", "")
	r.send("GET k\r\n")
	r.expect("$-1\r\n")
	// As in Redis, HELLO still wants the client authenticated.
	r.send("HELLO 2\r\n")
	r.expect("-" + helloAuth + "\r\n")
	check(t, admin, "OK", "CONFIG", "SET", "requirepass", "again")
	r.send("GET k\r\n")
	r.expect("-" + noAuth + "\r\n")
}

// ACL user names are case-sensitive: "DEFAULT" is not the default user.
func TestAuthUserIsCaseSensitive(t *testing.T) {
	for _, pw := range []string{"", "pw"} {
		e := newEnv(t, Config{Password: pw})
		c := e.client(func(o *redis.Options) { o.Password = pw })
		check(t, c, errReply(wrongPwd), "AUTH", "DEFAULT", "pw")
		check(t, c, errReply(wrongPwd), "HELLO", "2", "AUTH", "Default", "pw")
		check(t, c, "OK", "AUTH", "default", "pw")
	}
}

// INCRBYFLOAT refuses, as "not a valid float", what strtold reports as
// out of range (string2ld): beyond the long double range, or so small it
// rounds to zero; and strings of 5120 bytes or more.
func TestIncrByFloatRange(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	notFloat := errReply("ERR value is not a valid float")
	run(t, c, []step{
		{a("INCRBYFLOAT", "f", "1e5000"), notFloat},
		{a("INCRBYFLOAT", "f", "-1e5000"), notFloat},
		{a("INCRBYFLOAT", "f", "1e-5000"), notFloat},
		{a("INCRBYFLOAT", "f", "1.82e-4951"), notFloat}, // below half the least subnormal
		{a("INCRBYFLOAT", "f", "1.823e-4951"), "0"},     // rounds to it, not to zero
		{a("INCRBYFLOAT", "f", "1e-4940"), "0"},
		{a("INCRBYFLOAT", "f", "1.19e+4932"), notFloat},
		{a("SET", "j", "1e5000"), "OK"},
		{a("INCRBYFLOAT", "j", "1"), notFloat},
		{a("SET", "j", "1e-5000"), "OK"},
		{a("INCRBYFLOAT", "j", "1"), notFloat},
		{a("INCRBYFLOAT", "w", strings.Repeat("0", 5118)+"1"), "1"},
		{a("INCRBYFLOAT", "w", strings.Repeat("0", 5119)+"1"), notFloat},
		{a("INCRBYFLOAT", "i", "inf"), errReply(errNaNInf)},
	})
}

// GETEX on a missing key is nil before its expire time is looked at, as
// in Redis; on an existing key a bad time is still an error.
func TestGetExMissingKeyBadExpire(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	run(t, c, []step{
		{a("GETEX", "nokey", "EX", "-1"), nilReply},
		{a("GETEX", "nokey", "PX", "abc"), nilReply},
		{a("GETEX", "nokey", "EXAT", "0"), nilReply},
		{a("SET", "k", "v"), "OK"},
		{a("GETEX", "k", "EX", "-1"), errReply("ERR invalid expire time in 'getex' command")},
		{a("GETEX", "k", "PX", "abc"), errReply(notInt)},
		{a("TTL", "k"), int64(-1)},
		{a("GETEX", "k", "EX", "100"), "v"},
		{a("TTL", "k"), int64(100)},
		{a("GETEX", "k", "FOO"), errReply(syntax)},
	})
}

// APPEND and SETRANGE build values in a per-client scratch buffer; one
// that grew past 1 MiB is let go, not held while the client idles.
func TestScratchBufferReleased(t *testing.T) {
	st := newTestStore(t)
	c := &client{s: &Server{store: st}}
	big := []byte(strings.Repeat("v", 4<<20))
	cmdAppend(c, [][]byte{[]byte("APPEND"), []byte("a"), big})
	cmdAppend(c, [][]byte{[]byte("APPEND"), []byte("a"), []byte("x")})
	if cap(c.num) > 1<<20 {
		t.Errorf("APPEND: client keeps a %d-byte buffer", cap(c.num))
	}
	cmdSetRange(c, [][]byte{[]byte("SETRANGE"), []byte("r"), []byte("3000000"), []byte("x")})
	if cap(c.num) > 1<<20 {
		t.Errorf("SETRANGE: client keeps a %d-byte buffer", cap(c.num))
	}
	cmdIncr(c, [][]byte{[]byte("INCR"), []byte("n")})
	if got := string(c.out); got != ":4194304\r\n:4194305\r\n:3000001\r\n:1\r\n" {
		t.Errorf("replies %q", got)
	}
}

// readAll runs r until it has read n commands, calling each with the
// index and arguments of every command and after with the buffer's size.
func readAll(t *testing.T, r *reader, n int, each func(i int, args [][]byte), after func(int)) {
	t.Helper()
	for i := 0; i < n; {
		args, ok, err := r.next()
		if err != nil {
			t.Fatalf("after %d commands: %v", i, err)
		}
		if !ok {
			if _, err := r.fill(); err != nil {
				t.Fatalf("after %d commands: %v", i, err)
			}
			continue
		}
		each(i, args)
		i++
		after(len(r.buf))
	}
}

// Pipelined requests that reads split mid-request: the reader's buffer
// stays about the size of one request (redcon's Reader, used before,
// doubled each time a read ended mid-request after complete ones).
func TestReaderBufferBounded(t *testing.T) {
	val := strings.Repeat("v", 100<<10)
	one := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + strconv.Itoa(len(val)) + "\r\n" + val + "\r\n"
	stream := strings.Repeat(one, 300) + "PING\r\n"
	g := guard{r: &chunkReader{s: stream, n: 64<<10 + 17}, limit: func() int64 { return 1 << 20 }}
	peak := 0
	readAll(t, newReader(&g), 301, func(n int, args [][]byte) {
		if n < 300 && (len(args) != 3 || string(args[2]) != val) ||
			n == 300 && string(args[0]) != "PING" {
			t.Fatalf("command %d: %d args", n, len(args))
		}
	}, func(size int) { peak = max(peak, size) })
	if peak > 4*len(one) {
		t.Errorf("reader buffer grew to %d bytes for %d-byte requests", peak, len(one))
	}
}

// After a large request, once the reader holds nothing, its grown buffer
// is replaced by a small one; nothing read is lost by the switch.
func TestReaderRenewedAfterLargeRequest(t *testing.T) {
	val := strings.Repeat("v", 3<<20)
	stream := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + strconv.Itoa(len(val)) + "\r\n" + val + "\r\n" +
		"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n" + "PING\r\n"
	g := guard{r: &chunkReader{s: stream, n: 1<<20 + 3}, limit: func() int64 { return 4 << 20 }}
	var got []string
	peak := 0
	rd := newReader(&g)
	readAll(t, rd, 3, func(_ int, args [][]byte) {
		last := args[len(args)-1]
		got = append(got, string(last[:min(5, len(last))]))
	}, func(size int) { peak = max(peak, size) })
	if strings.Join(got, ",") != "vvvvv,hello,PING" {
		t.Errorf("commands %q", got)
	}
	if _, err := rd.fill(); !errors.Is(err, io.EOF) || rd.start != rd.end {
		t.Fatalf("fill at the end: %v, %d bytes left", err, rd.end-rd.start)
	}
	if peak <= renewReaderAt || len(rd.buf) != readBufSize {
		t.Errorf("the buffer grew to %d bytes, then is %d (want %d)", peak, len(rd.buf), readBufSize)
	}
	for _, a := range rd.args[:cap(rd.args)] {
		if cap(a) > len(rd.buf) {
			t.Fatalf("the reader's arguments still hold a view of the old buffer (%d bytes)", cap(a))
		}
	}

	// The server itself: a client that sent a large value goes on.
	e := newEnv(t, Config{})
	r := e.raw()
	r.send(stream[:len(stream)-len("PING\r\n")])
	r.expect("+OK\r\n$5\r\nhello\r\n")
	r.send("PING\r\n")
	r.expect("+PONG\r\n")
}

// SCAN's cursor is parsed as Redis' strtoul: a sign, "" for 0.
func TestScanCursor(t *testing.T) {
	for in, want := range map[string]uint64{"": 0, "0": 0, "+5": 5, "-1": math.MaxUint64, "-0": 0,
		"18446744073709551615": math.MaxUint64, "007": 7} {
		if got, ok := parseCursor([]byte(in)); !ok || got != want {
			t.Errorf("parseCursor(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"-", "+", " 1", "1 ", "abc", "18446744073709551616", "0x1", "1.5"} {
		if _, ok := parseCursor([]byte(in)); ok {
			t.Errorf("parseCursor(%q) accepted", in)
		}
	}
	e := newEnv(t, Config{})
	c := e.client()
	check(t, c, "OK", "SET", "a", "1")
	check(t, c, []any{"0", []any{"a"}}, "SCAN", "", "COUNT", "1000")
	check(t, c, []any{"0", []any{"a"}}, "SCAN", "+0", "COUNT", "1000")
	check(t, c, errReply("ERR invalid cursor"), "SCAN", "-")
}

// Admin replies as Redis 7.0 gives them.
func TestAdminRepliesAsRedis(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()
	run(t, c, []step{
		{a("SELECT", "99999999999"), errReply("ERR value is out of range, value must between -2147483648 and 2147483647")},
		{a("SELECT", "-1"), errReply("ERR DB index is out of range")},
		{a("CONFIG", "SET", "timeout", "0", "maxclients"), errReply(syntax)},
		{a("CONFIG", "SET", "timeout"), arity("config|set")},
		// names are checked before values, and named as written
		{a("CONFIG", "SET", "timeout", "abc", "databases", "2"), errReply("ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config")},
		{a("CONFIG", "SET", "MAXCLIENTS", "abc"), errReply("ERR CONFIG SET failed (possibly related to argument 'MAXCLIENTS') - argument couldn't be parsed into an integer")},
		{a("CONFIG", "SET", "timeout", "abc", "nosuch", "1"), errReply("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")},
		{a("CONFIG", "SET", "Timeout", "5", "timeout", "6"), errReply("ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter")},
		{a("CONFIG", "GET", "timeout"), []any{"timeout", "0"}},
		{a("CONFIG", "GET", "MAXCLIENTS", "max*"), []any{"MAXCLIENTS", "10000", "maxmemory", "0"}},
		{a("COMMAND", "COUNT", "x"), arity("command|count")},
	})
	all, err := c.Do(ctx, "COMMAND", "INFO").Slice()
	if err != nil || len(all) != len(commands) {
		t.Errorf("COMMAND INFO: %d entries, %v", len(all), err)
	}
}
