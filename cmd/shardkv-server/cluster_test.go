package main

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardkv/shardkv/etcdkv/etcdtest"
)

// TestRunCluster: two shardkv-servers started with --etcd-endpoints on one
// (embedded, real) etcd serve one keyspace: each reads what the other
// writes, an increment from each adds up, a subscriber of one gets the
// keyspace events of writes made through the other, and a TTL set through
// one expires for both.
func TestRunCluster(t *testing.T) {
	etcd := etcdtest.Start(t, etcdtest.Config{})
	args := []string{"--port", "0", "--etcd-endpoints", etcd.Endpoint, "--etcd-namespace", "t/", "--notify-keyspace-events", "KEA"}
	a, b := start(t, 1, args...), start(t, 1, args...)
	for _, in := range []*instance{a, b} {
		if !strings.Contains(in.stdout.String(), `"msg":"cluster mode: the data lives in etcd"`) {
			t.Fatalf("no cluster-mode banner:\n%s", in.stdout)
		}
	}
	ca, cb := dial(t, a.addrs[0]), dial(t, b.addrs[0])

	// b subscribes to every key event; the subscription is live once it
	// sees an event of a's.
	sub := dial(t, b.addrs[0])
	expect(t, sub, "[psubscribe __keyevent@0__:* (integer) 1]", "psubscribe", "__keyevent@0__:*")
	sub.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	live := make(chan string, 1)
	go func() {
		m, err := sub.read()
		if err != nil {
			m = err.Error()
		}
		live <- m
	}()
	var first string
	for first == "" {
		expect(t, ca, "OK", "set", "warm", "1")
		select {
		case first = <-live:
		case <-time.After(50 * time.Millisecond):
		}
	}
	if first != "[pmessage __keyevent@0__:* __keyevent@0__:set warm]" {
		t.Fatalf("first event through b: %q", first)
	}
	drain := func() {
		for {
			sub.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := sub.read(); err != nil {
				sub.r.Reset(sub.conn)
				return
			}
		}
	}
	drain()

	expect(t, ca, "OK", "set", "k", "from-a")
	expect(t, cb, "from-a", "get", "k")
	expect(t, cb, "OK", "set", "k", "from-b")
	expect(t, ca, "from-b", "get", "k")
	for i := 1; i <= 10; i++ {
		expect(t, ca, "(integer) "+strconv.Itoa(i), "incr", "n")
	}
	expect(t, cb, "(integer) 11", "incr", "n")
	expect(t, ca, "(integer) 1", "del", "k")
	expect(t, cb, "(nil)", "get", "k")
	expect(t, cb, "[n warm]", "keys", "*")
	expect(t, ca, "(integer) 2", "dbsize")
	expect(t, ca, "(error) ERR 'expire' is not supported in cluster mode", "expire", "n", "10")

	// The events of a's writes, in order, at b's subscriber: the writes
	// above, then a TTL's set and its expiry (etcd's shortest lease here is
	// 1 s and its expiry loop runs every 500 ms: the key goes within about
	// 2 s).
	expect(t, ca, "OK", "set", "e", "v", "ex", "1")
	want := []string{"set k", "set k"}
	for range 11 {
		want = append(want, "set n") // etcd's stream does not say INCR
	}
	want = append(want, "del k", "set e", "expired e")
	sub.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, w := range want {
		m, err := sub.read()
		if err != nil {
			t.Fatalf("event %d (%s): %v", i, w, err)
		}
		kind, key, _ := strings.Cut(w, " ")
		if exp := "[pmessage __keyevent@0__:* __keyevent@0__:" + kind + " " + key + "]"; m != exp {
			t.Fatalf("event %d: %q, want %q", i, m, exp)
		}
	}
	expect(t, ca, "(nil)", "get", "e")
	expect(t, cb, "(nil)", "get", "e")

	for _, in := range []*instance{a, b} {
		if err := in.stop(t); err != nil {
			t.Fatalf("run: %v", err)
		}
	}
}

// TestRunClusterUnreachable: with no etcd at the endpoint, the command
// does not start, and says why, within the dial timeout.
func TestRunClusterUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.Addr().String()
	l.Close() // nothing listens there now
	startAt := time.Now()
	var stdout, stderr syncBuffer
	err = run(context.Background(), []string{"--port", "0", "--etcd-endpoints", "http://" + ln, "--etcd-dial-timeout", "1"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "did not answer within --etcd-dial-timeout") {
		t.Fatalf("run = %v, want the etcd error", err)
	}
	if d := time.Since(startAt); d > 5*time.Second {
		t.Errorf("run took %v to give up, with a 1 s dial timeout", d)
	}
	if strings.Contains(stdout.String(), "Ready to accept") {
		t.Error("the server was ready with no etcd")
	}
}

// TestEtcdTLS: TLS is off for plain endpoints with no certificate given,
// and a bad certificate option is refused with a message naming it.
func TestEtcdTLS(t *testing.T) {
	cfg := defaultConfig()
	cfg.etcdEndpoints = []string{"http://127.0.0.1:2379"}
	if tc, err := etcdTLS(cfg); tc != nil || err != nil {
		t.Fatalf("plain endpoint: %v, %v; want no TLS", tc, err)
	}
	cfg.etcdEndpoints = []string{"https://127.0.0.1:2379"}
	if tc, err := etcdTLS(cfg); tc == nil || err != nil {
		t.Fatalf("https endpoint: %v, %v; want TLS with the system's roots", tc, err)
	}
	dir := t.TempDir()
	notPEM := dir + "/ca.pem"
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name             string
		ca, cert, key    string
		wantErrSubstring string
	}{
		{"missing CA file", dir + "/none.pem", "", "", "--etcd-cacert"},
		{"CA file without a certificate", notPEM, "", "", "no PEM certificate"},
		{"cert without key", "", notPEM, "", "go together"},
		{"unreadable pair", "", notPEM, notPEM, "--etcd-cert/--etcd-key"},
	} {
		c := cfg
		c.etcdCACert, c.etcdCert, c.etcdKey = tc.ca, tc.cert, tc.key
		if _, err := etcdTLS(c); err == nil || !strings.Contains(err.Error(), tc.wantErrSubstring) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.wantErrSubstring)
		}
	}
}

// TestRunClusterKeys: in cluster mode keys are binary-safe by default and
// checked by shardkv.ValidateKey with --strict-keys, as in local mode.
func TestRunClusterKeys(t *testing.T) {
	etcd := etcdtest.Start(t, etcdtest.Config{})
	loose := start(t, 1, "--port", "0", "--etcd-endpoints", etcd.Endpoint, "--etcd-namespace", "loose/")
	strict := start(t, 1, "--port", "0", "--etcd-endpoints", etcd.Endpoint, "--etcd-namespace", "strict/", "--strict-keys")
	cl, cs := dial(t, loose.addrs[0]), dial(t, strict.addrs[0])
	expect(t, cl, "OK", "set", "a b\x00", "v")
	expect(t, cl, "v", "get", "a b\x00")
	if got := cs.do(t, "set", "a b", "v"); !strings.HasPrefix(got, "(error) ERR invalid key format") {
		t.Errorf("strict server's SET of %q = %q, want the invalid-key error", "a b", got)
	}
	expect(t, cs, "OK", "set", "a-b", "v")
	expect(t, cs, "[a-b]", "keys", "*")
}
