package server

import (
	"fmt"
	"math"

	"github.com/shardkv/shardkv"
)

// MaxKeyBytes is the longest key ValidateKey accepts: 512 MiB, Redis'
// largest string.
const MaxKeyBytes = 512 << 20

// ValidateKey is the binary-safe key rule: any bytes, the empty key
// included, up to MaxKeyBytes. Its error wraps shardkv.ErrInvalidKey. It
// is a pure function, safe for concurrent use. StoreOptions installs the
// same rule as shardkv.WithBinaryKeys(MaxKeyBytes), which the store checks
// with no copy of the key; ValidateKey is for other stores (the cluster
// backend's validator).
func ValidateKey(key string) error {
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", shardkv.ErrInvalidKey, len(key), MaxKeyBytes)
	}
	return nil
}

// StoreOptions returns the options for a store built to be served with
// Redis' defaults: binary-safe keys (ValidateKey's rule), values up to 512 MiB,
// no key quota, and a watch capacity of 65536 events so that keyspace
// notifications rarely lag. Options given after them in shardkv.New
// override them.
func StoreOptions() []shardkv.Option {
	return []shardkv.Option{
		shardkv.WithBinaryKeys(MaxKeyBytes),
		shardkv.WithMaxValueSize(512 << 20),
		shardkv.WithMaxKeys(math.MaxInt),
		shardkv.WithWatchCapacity(1 << 16),
	}
}
