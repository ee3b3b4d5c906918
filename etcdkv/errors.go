package etcdkv

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shardkv/shardkv"
)

// ErrAmbiguous is matched (with [errors.Is]) by the error of a write whose
// outcome is unknown: the request may have reached etcd and been applied
// before the failure (ctx ended, the connection broke, the leader changed,
// etcd timed the request out). Read the key to learn what happened.
var ErrAmbiguous = errors.New("etcdkv: the write may or may not have taken effect")

// wrapRead wraps the error of a request that changed nothing, whatever
// became of it: a read, or a lease grant.
func wrapRead(ctx context.Context, op, key string, err error) error {
	return wrap(ctx, op, key, err, false)
}

// wrapWrite wraps the error of a write, marking it ErrAmbiguous unless
// the failure shows the write was not applied.
func wrapWrite(ctx context.Context, op, key string, err error) error {
	return wrap(ctx, op, key, err, ambiguous(err))
}

func wrap(ctx context.Context, op, key string, err error, unsure bool) error {
	causes := []error{err}
	// The etcd client reports a ctx that ended as ctx.Err(), but a
	// deadline gRPC met first may come back as a status: add ctx's error
	// so that errors.Is(err, context.DeadlineExceeded) holds either way.
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		causes = append(causes, cerr)
	}
	msg := fmt.Sprintf("etcd %s %q: %v", op, key, err)
	if unsure {
		msg += " (outcome unknown: the write may have been applied)"
		causes = append(causes, ErrAmbiguous)
	}
	// A *shardkv.StorageError for errors.As, whose Err holds the causes
	// (the etcd, gRPC or context error, and ErrAmbiguous where it
	// applies) for errors.Is.
	return &shardkv.StorageError{Msg: msg, Err: errors.Join(causes...)}
}

// ambiguous reports whether a write that failed with err may still have
// been applied. Only a refusal is sure: an error etcd's server returns for
// a request it rejected before proposing it (an empty key, a request too
// large, a lease not found: the gRPC codes below), or a gRPC error for a
// request the client never sent (a message over its send limit). A ctx
// that ended, a broken connection, etcd's timeouts and leader changes
// (codes Unavailable, DeadlineExceeded, Canceled, Unknown, Internal...)
// leave the outcome unknown.
func ambiguous(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var code codes.Code
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if st, ok := status.FromError(err); ok {
		code = st.Code()
	} else {
		return true
	}
	switch code {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.Unauthenticated, codes.FailedPrecondition, codes.OutOfRange, codes.ResourceExhausted:
		return false
	}
	return true
}
