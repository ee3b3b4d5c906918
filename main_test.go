package shardkv

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's test run if any goroutine (a reaper, a
// WatchPrefix feeder, a test's own worker) outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
