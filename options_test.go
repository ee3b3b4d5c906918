package shardkv

import (
	"math"
	"testing"
)

func TestWithBinaryKeysClamps(t *testing.T) {
	for _, tc := range []struct {
		maxLen int
		want   int64
	}{
		{-1, 0},
		{0, 0},
		{1 << 20, 1 << 20},
		{math.MaxInt, min(int64(math.MaxInt), maxRecordLen)},
	} {
		s := New(WithBinaryKeys(tc.maxLen), noReaper)
		if s.s.keys != binaryKeys || s.s.maxKey != tc.want {
			t.Errorf("WithBinaryKeys(%d): rule %d, limit %d; want %d, %d", tc.maxLen, s.s.keys, s.s.maxKey, binaryKeys, tc.want)
		}
		s.Close()
	}
}
