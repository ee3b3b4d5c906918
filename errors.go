package shardkv

import (
	"errors"
	"strconv"
)

// The errors a [Store] returns. Callers test for them with [errors.Is]; the
// store may wrap them with more context (the key's fault, the limit).
var (
	// ErrNotFound reports a key that is absent or expired. The store's own
	// methods report a miss with found == false instead; ErrNotFound is
	// for callers (and backends) that need a miss as an error.
	ErrNotFound = errors.New("key not found")
	// ErrValueTooLarge reports a value longer than [Store.MaxValueSize].
	ErrValueTooLarge = errors.New("value too large")
	// ErrQuotaExceeded reports a new key refused because the store holds
	// [Store.MaxKeys] entries.
	ErrQuotaExceeded = errors.New("storage quota exceeded")
	// ErrInvalidKey reports a key that [ValidateKey] (or the function given
	// to [WithKeyValidator]) rejects.
	ErrInvalidKey = errors.New("invalid key format")
	// ErrClosed reports an operation on a store after [Store.Close], or a
	// [Subscription.Recv] after the subscription or its store closed.
	ErrClosed = errors.New("store closed")
)

// StorageError is the reference's generic storage error: Increment on a
// value that is not a decimal integer, GetString on bytes that are not
// UTF-8, or an error a [Backend] chooses to report this way. A backend
// sets Err to the failure it reports (an etcd or gRPC error, say), so
// that [errors.Is] and [errors.As] see through to it.
type StorageError struct {
	Msg string
	Err error // the cause, or nil
}

// Error returns "storage error: " followed by Msg.
func (e *StorageError) Error() string { return "storage error: " + e.Msg }

// Unwrap returns Err.
func (e *StorageError) Unwrap() error { return e.Err }

// LaggedError is returned by [Subscription.Recv] when the subscriber fell
// more than the watch capacity behind. Missed counts the events it will
// never see; the next Recv resumes from the oldest event still held.
type LaggedError struct{ Missed uint64 }

// Error says how many events were missed.
func (e *LaggedError) Error() string {
	return "shardkv: subscriber lagged, missed " + strconv.FormatUint(e.Missed, 10) + " events"
}
