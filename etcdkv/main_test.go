package etcdkv

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
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/shardkv/shardkv"
)

// TestMain fails the run if any goroutine outlives the tests: every
// embedded server, client, store and watch must be shut down by the
// cleanups. No goroutine of etcd's needs to be ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testRequestBytes is the embedded server's --max-request-bytes: enough for
// a CompareAndSwap of two values of the store's default MaxValueSize.
var testRequestBytes = RequestBytes(shardkv.DefaultMaxValueSize)

// cluster is one embedded etcd member, serving on 127.0.0.1.
type cluster struct {
	etcd     *embed.Etcd
	endpoint string
}

// startEtcd starts a single-node etcd (fast ticks: TickMs 10, ElectionMs
// 100, so the minimum lease is 1 s) with its data in a temporary directory
// and its logs silenced, and stops it when t ends. embed cannot listen on
// port 0, so it picks two ports the kernel just handed out and closed, and
// tries again with new ones if another process took one meanwhile.
func startEtcd(t testing.TB) *cluster {
	t.Helper()
	var lastErr error
	for range 5 {
		cport, pport := freePort(t), freePort(t)
		cfg := embed.NewConfig()
		cfg.Name = "n1"
		cfg.Dir = t.TempDir()
		cfg.TickMs = 10
		cfg.ElectionMs = 100
		cfg.LogLevel = "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.UnsafeNoFsync = true // a test's data need not survive a crash
		cfg.MaxRequestBytes = uint(testRequestBytes)
		cu := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(cport)}
		pu := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(pport)}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		e, err := embed.StartEtcd(cfg)
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
		return &cluster{etcd: e, endpoint: cu.String()}
	}
	t.Fatalf("starting etcd: no free ports after 5 tries: %v", lastErr)
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// client returns a new client of c, closed when t ends, whose send limit
// fits a CompareAndSwap of two largest values.
func (c *cluster) client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:          []string{c.endpoint},
		DialTimeout:        10 * time.Second,
		MaxCallSendMsgSize: testRequestBytes + 512<<10,
		Logger:             zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}
