package etcdkv

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shardkv/shardkv"
)

// lossyClient is a client whose next armed write loses its response: the
// request reaches etcd and is applied, and the client is told Unavailable,
// as when the connection breaks between the two. It is how a write whose
// outcome is unknown is made on purpose.
type lossyClient struct {
	*clientv3.Client
	armed atomic.Int32 // how many more Put and Txn responses to lose
	lost  atomic.Int32 // how many were lost
}

func newLossyClient(t *testing.T, endpoint string) *lossyClient {
	t.Helper()
	lc := &lossyClient{}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(
			func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				err := invoker(ctx, method, req, reply, cc, opts...)
				write := strings.HasSuffix(method, "/Put") || strings.HasSuffix(method, "/Txn")
				if err == nil && write && lc.armed.Add(-1) >= 0 {
					lc.lost.Add(1)
					return status.Error(codes.Unavailable, "test: response lost after the write was applied")
				}
				return err
			})},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	lc.Client = cli
	return lc
}

// TestAmbiguousWriteApplied: a write applied by etcd whose response was
// lost is reported as ErrAmbiguous (not as a failure), and is not retried:
// an Increment so lost added its delta exactly once, and a CompareAndSwap
// so lost took effect once.
func TestAmbiguousWriteApplied(t *testing.T) {
	c := startEtcd(t)
	lc := newLossyClient(t, c.Endpoint)
	b := New(lc.Client, WithNamespace(freshNS()))
	ctx := testCtx(t)

	lc.armed.Store(1)
	err := b.Set(ctx, "s", []byte("v"))
	require.ErrorIs(t, err, ErrAmbiguous)
	var se *shardkv.StorageError
	require.ErrorAs(t, err, &se)
	v, ok, err := b.Get(ctx, "s")
	require.NoError(t, err)
	require.True(t, ok, "the lost Set was applied")
	require.Equal(t, "v", string(v))

	_, err = b.Increment(ctx, "n", 5)
	require.NoError(t, err)
	lc.armed.Store(1)
	_, err = b.Increment(ctx, "n", 1)
	require.ErrorIs(t, err, ErrAmbiguous, "an Increment whose commit's response was lost")
	v, _, err = b.Get(ctx, "n")
	require.NoError(t, err)
	require.Equal(t, "6", string(v), "the ambiguous Increment applied once, never retried")

	lc.armed.Store(1)
	_, err = b.CompareAndSwap(ctx, "n", []byte("6"), []byte("7"))
	require.ErrorIs(t, err, ErrAmbiguous)
	v, _, err = b.Get(ctx, "n")
	require.NoError(t, err)
	require.Equal(t, "7", string(v))
	require.Equal(t, int32(3), lc.lost.Load(), "each armed write lost its response")

	// A clustered store passes the same error through.
	s := shardkv.New(shardkv.WithBackend(b))
	defer s.Close()
	lc.armed.Store(1)
	_, err = s.IncrementContext(ctx, "n", 1)
	require.ErrorIs(t, err, ErrAmbiguous)
	v, _, err = s.GetContext(ctx, "n")
	require.NoError(t, err)
	require.Equal(t, "8", string(v))
}
