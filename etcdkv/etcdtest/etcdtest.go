// Package etcdtest starts a real etcd server inside a test process: one
// member of go.etcd.io/etcd/server/v3/embed, on 127.0.0.1 ports picked at
// run time, with its data in the test's temporary directory, its logs
// silenced, and fast ticks (TickMs 10, ElectionMs 100: a member elects
// itself in about 100 ms, and the shortest lease is 1 s). It is stopped
// when the test ends. Tests of etcdkv and of programs built on it (such as
// cmd/shardkv-server) use it; nothing in it is for production.
package etcdtest

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Config tunes the server Start starts. The zero value is etcd's defaults
// but for the fast ticks.
type Config struct {
	// MaxRequestBytes is the server's --max-request-bytes; 0 means etcd's
	// default (1.5 MiB). etcdkv.RequestBytes gives what a store's
	// MaxValueSize needs.
	MaxRequestBytes int
}

// Server is a running embedded etcd member.
type Server struct {
	// Etcd is the embedded member: tests may stop it (Close) to see a
	// client fail; a stopped member is not closed again at the end.
	Etcd *embed.Etcd
	// Endpoint is its client URL ("http://127.0.0.1:port").
	Endpoint string
	cfg      Config
}

// Start starts a single-member etcd and waits until it serves. embed
// cannot listen on port 0, so Start picks two ports the kernel just handed
// out and closed (MemberConfig), and tries again with new ones if another
// process took one meanwhile. It fails the test if etcd does not start
// within 30 s.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	var lastErr error
	for range 5 {
		ec := MemberConfig(t, "n1", cfg)
		e, err := embed.StartEtcd(ec)
		if err != nil {
			lastErr = err
			if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
				continue
			}
			t.Fatalf("starting etcd: %v", err)
		}
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			e.Close()
			t.Fatal("etcd did not become ready in 30 s")
		}
		t.Cleanup(e.Close)
		return &Server{Etcd: e, Endpoint: ec.ListenClientUrls[0].String(), cfg: cfg}
	}
	t.Fatalf("starting etcd: no free ports after 5 tries: %v", lastErr)
	return nil
}

// MemberConfig is the configuration of one member named name, as Start
// uses it: fast ticks, data in a temporary directory of t, logs silenced,
// no fsync (a test's data need not survive a crash), cfg's request limit,
// client and peer URLs on two ports of 127.0.0.1 that were just free, and
// an initial cluster of itself alone. Tests that form a cluster of several
// members set InitialCluster (and a token) before embed.StartEtcd.
func MemberConfig(t testing.TB, name string, cfg Config) *embed.Config {
	t.Helper()
	ec := embed.NewConfig()
	ec.Name = name
	ec.Dir = t.TempDir()
	ec.TickMs = 10
	ec.ElectionMs = 100
	ec.LogLevel = "error"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	ec.UnsafeNoFsync = true
	if cfg.MaxRequestBytes > 0 {
		ec.MaxRequestBytes = uint(cfg.MaxRequestBytes)
	}
	cu := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(FreePort(t))}
	pu := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(FreePort(t))}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	return ec
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago:
// one the kernel handed out to a listener that is closed again.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Client returns a new client of s, closed when t ends, whose send limit
// is the server's request limit plus room for gRPC's framing.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	limit := s.cfg.MaxRequestBytes
	if limit <= 0 {
		limit = int(embed.DefaultMaxRequestBytes)
	}
	return NewClient(t, limit, s.Endpoint)
}

// NewClient returns a new client of the endpoints, closed when t ends, able
// to send requests of maxRequestBytes (plus 512 KiB for gRPC's framing),
// with a 10 s dial timeout and its logs silenced.
func NewClient(t testing.TB, maxRequestBytes int, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:          endpoints,
		DialTimeout:        10 * time.Second,
		MaxCallSendMsgSize: maxRequestBytes + 512<<10,
		Logger:             zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}
