package shardkv_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardkv/shardkv"
)

// A StorageError a backend returns wraps its cause: errors.Is and
// errors.As see through it, and its text is still the reference's.
func TestStorageErrorWrapsItsCause(t *testing.T) {
	err := error(&shardkv.StorageError{Msg: "etcd: unavailable", Err: context.DeadlineExceeded})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var se *shardkv.StorageError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "storage error: etcd: unavailable", err.Error())
	require.NotErrorIs(t, err, io.EOF)
	require.Nil(t, errors.Unwrap(&shardkv.StorageError{Msg: "no cause"}))
}
