package fuzz

import (
	"flag"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails a plain test run (the seed corpus, the unit tests) if any
// goroutine outlives the tests. While fuzzing, the fuzzing engine's own
// goroutines are alive when m.Run returns, so the check is skipped; every
// store a fuzz input makes lives in a testing/synctest bubble or is closed
// before the input returns, so a leak still fails the input itself.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}
