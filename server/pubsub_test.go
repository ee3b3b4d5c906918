package server

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// frame reads one reply of the shapes pub/sub uses: an array of bulks,
// nil bulks and integers, rendered as strings ("<nil>", ":3").
func (c *rawConn) frame() []string {
	c.t.Helper()
	head := c.line()
	if !strings.HasPrefix(head, "*") {
		c.t.Fatalf("not an array: %q", head)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	out := make([]string, 0, n)
	for range n {
		l := c.line()
		switch l[0] {
		case ':':
			out = append(out, strings.TrimSpace(l))
		case '$':
			size, _ := strconv.Atoi(strings.TrimSpace(l[1:]))
			if size < 0 {
				out = append(out, "<nil>")
				continue
			}
			b := make([]byte, size+2)
			if _, err := io.ReadFull(c.r, b); err != nil {
				c.t.Fatal(err)
			}
			out = append(out, string(b[:size]))
		default:
			c.t.Fatalf("unexpected %q", l)
		}
	}
	return out
}

func (c *rawConn) expectFrame(want ...string) {
	c.t.Helper()
	if got := c.frame(); strings.Join(got, "|") != strings.Join(want, "|") {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSubscribeMode(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.raw()
	r.send("UNSUBSCRIBE\r\n")
	r.expectFrame("unsubscribe", "<nil>", ":0")
	r.send("SET k v\r\nSUBSCRIBE a b\r\nPSUBSCRIBE p*\r\nSUBSCRIBE a\r\n")
	r.expect("+OK\r\n")
	r.expectFrame("subscribe", "a", ":1")
	r.expectFrame("subscribe", "b", ":2")
	r.expectFrame("psubscribe", "p*", ":3")
	r.expectFrame("subscribe", "a", ":3")
	r.send("GET k\r\nPING\r\nping hi\r\n")
	r.expect("-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
	r.expectFrame("pong", "")
	r.expectFrame("pong", "hi")

	c := e.client()
	run(t, c, []step{
		{a("PUBLISH", "a", "m1"), int64(1)},
		{a("PUBLISH", "p1", "m2"), int64(1)},
		{a("PUBLISH", "nobody", "m3"), int64(0)},
	})
	r.expectFrame("message", "a", "m1")
	r.expectFrame("pmessage", "p*", "p1", "m2")
	info := c.Info(ctx, "stats").Val()
	if !strings.Contains(info, "pubsub_channels:2\r\n") || !strings.Contains(info, "pubsub_patterns:1\r\n") {
		t.Errorf("INFO stats: %s", info)
	}

	r.send("UNSUBSCRIBE\r\n")
	got := []string{strings.Join(r.frame(), "|"), strings.Join(r.frame(), "|")}
	sort.Strings(got)
	if got[0] != "unsubscribe|a|:1" && got[0] != "unsubscribe|a|:2" || !strings.HasPrefix(got[1], "unsubscribe|b|") {
		t.Errorf("UNSUBSCRIBE: %q", got)
	}
	r.send("PUNSUBSCRIBE nope\r\nPUNSUBSCRIBE\r\n")
	r.expectFrame("punsubscribe", "nope", ":1")
	r.expectFrame("punsubscribe", "p*", ":0")
	r.send("GET k\r\nPING\r\n") // out of subscribe mode again
	r.expect("$1\r\nv\r\n+PONG\r\n")
	r.send("SUBSCRIBE x\r\nRESET\r\nPING\r\n")
	r.expectFrame("subscribe", "x", ":1")
	r.expect("+RESET\r\n+PONG\r\n")
	r.send("QUIT\r\n")
	r.expect("+OK\r\n")
	r.expectClosed()
}

func TestPublishBetweenClients(t *testing.T) {
	e := newEnv(t, Config{})
	pub := e.client()
	subc := e.client()
	sub := subc.Subscribe(ctx, "news")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}
	psub := subc.PSubscribe(ctx, "ne*")
	defer psub.Close()
	if _, err := psub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := pub.Publish(ctx, "news", "hello").Result(); err != nil || n != 2 {
		t.Fatalf("PUBLISH: %d %v", n, err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Channel != "news" || msg.Payload != "hello" {
		t.Fatalf("message %+v %v", msg, err)
	}
	pmsg, err := psub.ReceiveMessage(ctx)
	if err != nil || pmsg.Pattern != "ne*" || pmsg.Channel != "news" || pmsg.Payload != "hello" {
		t.Fatalf("pmessage %+v %v", pmsg, err)
	}
	// go-redis pings a subscribed connection: the RESP2 pong shape.
	if err := sub.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestKeyspaceNotifications(t *testing.T) {
	e := newEnv(t, Config{NotifyKeyspaceEvents: "KEA"})
	c := e.client()
	r := e.raw()
	r.send("PSUBSCRIBE __key*@0__:*\r\n")
	r.expectFrame("psubscribe", "__key*@0__:*", ":1")
	const p = "__key*@0__:*"
	expect := func(key string, events ...string) {
		t.Helper()
		for _, ev := range events {
			r.expectFrame("pmessage", p, "__keyspace@0__:"+key, ev)
			r.expectFrame("pmessage", p, "__keyevent@0__:"+ev, key)
		}
	}
	for _, tc := range []struct {
		args   []any
		key    string
		events []string
	}{
		{a("SET", "k", "v"), "k", []string{"set"}},
		{a("SET", "k", "v", "EX", "100"), "k", []string{"set"}},
		{a("APPEND", "k", "x"), "k", []string{"append"}},
		{a("SETRANGE", "k", "0", "y"), "k", []string{"setrange"}},
		{a("INCR", "n"), "n", []string{"incrby"}},
		{a("DECRBY", "n", "3"), "n", []string{"incrby"}},
		{a("INCRBYFLOAT", "n", "1.5"), "n", []string{"incrbyfloat"}},
		{a("EXPIRE", "n", "100"), "n", []string{"expire"}},
		{a("EXPIRE", "n", "200", "GT"), "n", []string{"expire"}},
		{a("PERSIST", "n"), "n", []string{"persist"}},
		{a("GETEX", "n", "EX", "100"), "n", []string{"expire"}},
		{a("GETEX", "n", "PERSIST"), "n", []string{"persist"}},
		{a("GETSET", "n", "1"), "n", []string{"set"}},
		{a("SETNX", "nx", "1"), "nx", []string{"set"}},
		{a("DEL", "nx"), "nx", []string{"del"}},
		{a("GETDEL", "n"), "n", []string{"del"}},
		{a("CAS", "k", "yx", "z"), "k", []string{"set"}},
	} {
		if err := c.Do(ctx, tc.args...).Err(); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		expect(tc.key, tc.events...)
	}
	// RENAME: rename_from on the source, then rename_to on the target.
	check(t, c, "OK", "RENAME", "k", "k2")
	expect("k", "rename_from")
	expect("k2", "rename_to")
	check(t, c, int64(1), "EXPIRE", "k2", "0")
	expect("k2", "del")
	// A real short TTL: "set", then "expired" once the reaper reclaims it.
	check(t, c, "OK", "SET", "short", "v", "PX", "50")
	expect("short", "set")
	expect("short", "expired")

	// 'n' fires "new" before the event that created the key.
	check(t, c, "OK", "CONFIG", "SET", "notify-keyspace-events", "KE$n")
	check(t, c, "OK", "SET", "fresh", "1")
	expect("fresh", "new", "set")
	check(t, c, "OK", "SET", "fresh", "2")
	expect("fresh", "set")                // not new any more
	check(t, c, int64(1), "DEL", "fresh") // 'g' is off: no event
	check(t, c, int64(3), "INCRBY", "fresh2", "3")
	expect("fresh2", "new", "incrby")

	// Only keyevent, only expired.
	check(t, c, "OK", "CONFIG", "SET", "notify-keyspace-events", "Ex")
	check(t, c, "OK", "SET", "gone", "v", "PX", "20")
	r.expectFrame("pmessage", p, "__keyevent@0__:expired", "gone")

	// Off: the watch is stopped; nothing more arrives.
	check(t, c, "OK", "CONFIG", "SET", "notify-keyspace-events", "")
	check(t, c, "OK", "SET", "quiet", "v")
	check(t, c, int64(1), "PUBLISH", "__keyevent@0__:marker", "m")
	r.expectFrame("pmessage", p, "__keyevent@0__:marker", "m")
}

func TestLaggingSubscriberDropped(t *testing.T) {
	e := newEnv(t, Config{PubSubBacklog: 8, NotifyKeyspaceEvents: "E$"})
	c := e.client()

	// A subscriber that never reads, with a tiny receive buffer.
	lazy := func(channel string) *rawConn {
		r := e.raw()
		r.Conn.(*net.TCPConn).SetReadBuffer(4096)
		r.send("SUBSCRIBE " + channel + "\r\n")
		r.expectFrame("subscribe", channel, ":1")
		return r
	}
	dropped := func(n int) bool {
		return strings.Contains(c.Info(ctx, "stats").Val(), fmt.Sprintf("client_output_buffer_limit_disconnections:%d\r\n", n))
	}

	// PUBLISH: the publisher is never slowed; the subscriber is dropped.
	r1 := lazy("flood")
	msg := strings.Repeat("m", 64<<10)
	for i := 0; !dropped(1); i++ {
		if i == 4000 {
			t.Fatal("subscriber never dropped")
		}
		start := time.Now()
		if err := c.Publish(ctx, "flood", msg).Err(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("PUBLISH took %v", d)
		}
	}
	// The server has let it go (the kernel still trickles out what it had
	// sent to the tiny window, so the test does not wait for the EOF).
	clients := func() string {
		return c.Info(ctx, "clients").Val()
	}
	eventually(t, "the subscriber to be gone", func() bool {
		return strings.Contains(clients(), "pubsub_clients:0\r\n")
	})
	_ = r1
	if !strings.Contains(e.logs.String(), "subscriber lagging") {
		t.Error("drop not logged")
	}

	// Keyspace events: writers go on, the watch is not blocked.
	r2 := lazy("__keyevent@0__:set")
	key := strings.Repeat("k", 8<<10)
	for i := 0; !dropped(2); i++ {
		if i == 100 {
			t.Fatal("keyspace subscriber never dropped")
		}
		start := time.Now()
		pipe := c.Pipeline()
		for j := range 100 {
			pipe.Set(ctx, key+strconv.Itoa(j), "v", 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("SETs took %v", d)
		}
	}
	eventually(t, "the keyspace subscriber to be gone", func() bool {
		return strings.Contains(clients(), "pubsub_clients:0\r\n")
	})
	_ = r2

	// A new subscriber works. Not on the "set" channel: the watch may
	// still be publishing the backlog of the SETs above there, a burst
	// that would drop this subscriber too (PubSubBacklog is 8).
	sub := c.Subscribe(ctx, "__keyevent@0__:incrby")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, c, int64(1), "INCR", "after")
	m, err := sub.ReceiveMessage(ctx)
	if err != nil || m.Payload != "after" {
		t.Fatalf("%+v %v", m, err)
	}
}

func TestNotifyFlags(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"", ""}, {"KEA", "AKE"}, {"A", "A"}, {"AKn", "AK"}, {"gx", "gx"}, {"$gK", "g$K"},
		{"Kxegn", "gxenK"}, {"lshztdm", "lshztdm"}, {"g$lshzxetdKE", "AKE"}, {"EK", "KE"},
	} {
		f, ok := parseNotifyFlags(tc.in)
		if !ok {
			t.Errorf("parse %q failed", tc.in)
			continue
		}
		if got := formatNotifyFlags(f); got != tc.out {
			t.Errorf("%q: got %q want %q", tc.in, got, tc.out)
		}
	}
	for _, bad := range []string{"a", "KEQ", " ", "k"} {
		if _, ok := parseNotifyFlags(bad); ok {
			t.Errorf("parse %q succeeded", bad)
		}
	}
	if watchable(nKeyspace) || watchable(nString) || !watchable(nKeyevent|nExpired) || watchable(nKeyspace|nList) {
		t.Error("watchable")
	}
}

var _ = redis.Nil
