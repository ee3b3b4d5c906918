package etcdkv

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/etcdkv/etcdtest"
)

// TestMain fails the run if any goroutine outlives the tests: every
// embedded server, client, store and watch must be shut down by the
// cleanups. One goroutine of etcd's is ignored: the peer listener's
// /version handler of a member the cluster tests hard-stop while its peers
// still probe it. On the closed member, an earlier such request's bucket
// lookup (baseReadTx.UnsafeRange, storage/backend/read_tx.go) dereferences
// the closed transaction while holding txMu, with no deferred unlock;
// net/http recovers the panic but not the lock, and the next request
// blocks on it forever. That is etcd's, not ours to stop; it failed one CI
// run.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("go.etcd.io/etcd/server/v3/etcdserver/api/etcdhttp.newPeerHandler.versionHandler.func1"))
}

// testRequestBytes is the embedded server's --max-request-bytes: enough for
// a CompareAndSwap of two values of the store's default MaxValueSize.
var testRequestBytes = RequestBytes(shardkv.DefaultMaxValueSize)

// startEtcd starts a single-node etcd (etcdtest: fast ticks, so the
// minimum lease is 1 s; data in a temporary directory; logs silenced) whose
// request limit fits a CompareAndSwap of two largest values, and stops it
// when t ends.
func startEtcd(t testing.TB) *etcdtest.Server {
	t.Helper()
	return etcdtest.Start(t, etcdtest.Config{MaxRequestBytes: testRequestBytes})
}
